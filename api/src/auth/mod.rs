//! Who a request comes from, and what it may touch.
//!
//! A request is signed in by an API token (`Authorization: Bearer mnt_...`) or by a session
//! cookie from the sign-in page. [`ApiUser`] guards the JSON API (401 without either;
//! a cookie-authenticated write must also carry the session's `X-CSRF-Token`), [`PageUser`]
//! guards the pages (a redirect to the sign-in page without a session). Both give a
//! [`Principal`], whose [`Principal::scope`] every job query uses: a member sees only
//! their own jobs, an admin every job, and a job outside the scope is answered like one
//! that does not exist.
//!
//! Submodules: [`signin`] (the sign-in and sign-out pages, the throttle), [`tokens`] (API
//! token routes and the settings page), [`password`] (changing one's password).

pub mod password;
pub mod signin;
pub mod tokens;

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use minutes_shared::accounts::User;
use minutes_shared::jobs::Scope;

use crate::error::ApiError;
use crate::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "minutes_session";
/// The header a cookie-authenticated API write carries the session's form token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How a request proved who it is.
#[derive(Debug, Clone)]
pub enum Via {
    /// An API token: no cookie, so no cross-site forgery to guard against.
    Token,
    /// A session cookie; writes must carry this form token.
    Session {
        /// The session's form token.
        csrf: String,
        /// The cookie's secret (to end the session).
        secret: String,
    },
}

/// A signed-in user and how they signed in.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user.
    pub user: User,
    /// Token or session.
    pub via: Via,
}

impl Principal {
    /// The jobs this user may see.
    pub fn scope(&self) -> Scope {
        if self.user.is_admin() {
            Scope::All
        } else {
            Scope::Owner(self.user.id)
        }
    }

    /// The session's form token, for forms on pages.
    pub fn csrf(&self) -> &str {
        match &self.via {
            Via::Session { csrf, .. } => csrf,
            Via::Token => "",
        }
    }

    /// Whether writes must carry the form token (cookie sessions do).
    pub fn needs_csrf(&self) -> bool {
        matches!(self.via, Via::Session { .. })
    }

    /// Checks a form's (or header's) token: 403 when a session's write lacks it.
    pub fn check_csrf(&self, given: Option<&str>) -> Result<(), ApiError> {
        match &self.via {
            Via::Token => Ok(()),
            Via::Session { csrf, .. } => match given {
                Some(given) if same(given.as_bytes(), csrf.as_bytes()) => Ok(()),
                _ => Err(csrf_refused()),
            },
        }
    }
}

/// 403 for a write without its form token.
pub fn csrf_refused() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf",
        "the form's security token is missing or stale; reload the page and try again",
    )
}

/// Compares in time independent of where the inputs differ.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Secure when served over https.
pub fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    path: &str,
    max_age: u64,
) -> HeaderValue {
    let secure =
        state.settings.service.public_url.as_ref().is_some_and(|url| url.scheme() == "https");
    let text = format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// Who the request comes from: a bearer token (which must be valid if sent) or a session
/// cookie; `None` when it carries neither.
pub async fn identify(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Principal>, ApiError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let text = value.to_str().unwrap_or("");
        let Some(secret) = text.strip_prefix("Bearer ").map(str::trim) else {
            return Err(unauthorized("use Authorization: Bearer <token>"));
        };
        return match state.credentials.token_user(secret).await {
            Ok(Some(user)) => Ok(Some(Principal { user, via: Via::Token })),
            Ok(None) => Err(unauthorized("the API token is not valid (revoked, or mistyped)")),
            Err(error) => Err(error.into()),
        };
    }
    let Some(secret) = cookie(headers, SESSION_COOKIE) else { return Ok(None) };
    Ok(state.credentials.session_user(secret).await?.map(|(user, csrf)| Principal {
        user,
        via: Via::Session { csrf, secret: secret.to_string() },
    }))
}

/// 401 with a `WWW-Authenticate` challenge.
pub fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// The principal of an API request: 401 without one, 403 for a cookie-authenticated write
/// without the session's `X-CSRF-Token`.
pub async fn api_principal(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Principal, ApiError> {
    let principal = identify(state, headers).await?.ok_or_else(|| {
        unauthorized("sign in, or send Authorization: Bearer <token> (see minutes tokens create)")
    })?;
    if !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        principal.check_csrf(headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()))?;
    }
    Ok(principal)
}

/// An API request's user (see [`api_principal`]).
#[derive(Debug, Clone)]
pub struct ApiUser(pub Principal);

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        api_principal(state, &parts.method, &parts.headers).await.map(ApiUser)
    }
}

/// A page request's user: without a session, a redirect to the sign-in page that comes
/// back here afterwards.
#[derive(Debug, Clone)]
pub struct PageUser(pub Principal);

impl FromRequestParts<AppState> for PageUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match identify(state, &parts.headers).await {
            Ok(Some(principal)) => Ok(PageUser(principal)),
            Ok(None) | Err(_) if parts.method == Method::GET => {
                let path = OriginalUri::from_request_parts(parts, state)
                    .await
                    .map(|uri| uri.0.path().to_string())
                    .unwrap_or_else(|_| "/".into());
                let next: String = percent_encoding::utf8_percent_encode(
                    &path,
                    percent_encoding::NON_ALPHANUMERIC,
                )
                .to_string();
                Err(Redirect::to(&format!("/login?next={next}")).into_response())
            }
            Ok(None) | Err(_) => Err(Redirect::to("/login").into_response()),
        }
    }
}
