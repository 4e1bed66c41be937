//! Signing in and out: the sign-in page, the password check behind it (also used by
//! `minutes tokens create` with HTTP Basic), and the throttle.
//!
//! The sign-in form carries its own form token in a short-lived cookie (there is no
//! session yet to hold it). Every refusal reads the same, whether the email exists, the
//! password is wrong or the account is disabled; an unknown email costs the same argon2
//! work as a wrong password. Failures count per account and per client address; past the
//! limit the answer is 429 with `Retry-After`, even for the right password.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use minutes_shared::accounts::{decoy_hash, verify_password, User};
use minutes_shared::credentials::random_secret;
use minutes_shared::throttle::{account_key, address_key};
use serde::Deserialize;
use uuid::Uuid;

use super::{cookie, csrf_refused, identify, same, set_cookie, Via, SESSION_COOKIE};
use crate::error::ApiError;
use crate::web::html::{escape, page};
use crate::AppState;

/// The cookie holding the sign-in form's token.
const LOGIN_COOKIE: &str = "minutes_login";
/// Its lifetime: a sign-in page left open longer must be reloaded.
const LOGIN_FORM_SECS: u64 = 3600;

/// Why a password sign-in was refused.
#[derive(Debug)]
pub enum SignInError {
    /// Too many failures: wait this many seconds.
    Throttled(u64),
    /// Unknown email, wrong password or disabled account (never said which).
    Refused,
    /// Postgres failed.
    Unavailable(ApiError),
}

impl From<SignInError> for ApiError {
    fn from(error: SignInError) -> Self {
        match error {
            SignInError::Throttled(wait) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                format!("too many failed sign-ins; try again in {}", minutes_text(wait)),
            )
            .retry_after(wait),
            SignInError::Refused => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the email or password is wrong",
            ),
            SignInError::Unavailable(error) => error,
        }
    }
}

fn minutes_text(seconds: u64) -> String {
    match seconds.div_ceil(60) {
        1 => "a minute".to_string(),
        n => format!("{n} minutes"),
    }
}

/// The client's address for the throttle: the peer, unless the peer is one of the
/// `trusted` reverse proxies; then the nearest address in `X-Forwarded-For` that is not a
/// trusted proxy (the ones further left are the client's to forge).
pub fn client_address(
    connection: Option<&ConnectInfo<SocketAddr>>,
    headers: &HeaderMap,
    trusted: &[IpAddr],
) -> String {
    let Some(peer) = connection.map(|c| c.0.ip()) else { return "unknown".to_string() };
    if !trusted.contains(&peer) {
        return peer.to_string();
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse().ok())
        .collect();
    forwarded.into_iter().rev().find(|hop| !trusted.contains(hop)).unwrap_or(peer).to_string()
}

/// Checks `email` and `password` under the throttle; the user on success.
pub async fn authenticate(
    state: &AppState,
    email: &str,
    password: &str,
    address: &str,
) -> Result<User, SignInError> {
    let access = &state.settings.access;
    let window = Duration::from_secs(access.login_window_secs);
    let account = account_key(email);
    let address = address_key(address);
    let unavailable =
        |e: minutes_shared::accounts::AccountError| SignInError::Unavailable(e.into());
    for (key, limit) in [
        (&account, access.login_attempts_per_account),
        (&address, access.login_attempts_per_address),
    ] {
        if let Some(wait) =
            state.throttle.blocked_for(key, limit, window).await.map_err(unavailable)?
        {
            return Err(SignInError::Throttled(wait));
        }
    }
    let found = state.users.by_email(email).await.map_err(unavailable)?;
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), hash),
        None => (None, decoy_hash().to_string()),
    };
    let password = password.to_string();
    // argon2 takes tens of milliseconds of CPU: off the async runtime.
    let matches = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    match user {
        Some(user) if matches && user.disabled_at.is_none() => {
            state.throttle.clear(&account).await.map_err(unavailable)?;
            state.users.signed_in(user.id).await.map_err(unavailable)?;
            Ok(user)
        }
        _ => {
            state.throttle.failed(&[account, address]).await.map_err(unavailable)?;
            Err(SignInError::Refused)
        }
    }
}

/// Query of `GET /login`.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    /// Where to go after signing in (a path on this site).
    pub next: Option<String>,
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

/// Only paths on this site: `/jobs/1`, never `//evil.example` or `https://...`. Browsers
/// drop tabs and line breaks from a URL before reading it, so `/\t/evil.example` would
/// become `//evil.example`: a path must be visible ASCII only (anything else arrives
/// percent-encoded from our own links).
fn safe_next(next: &str) -> &str {
    let visible = next.chars().all(|c| c.is_ascii_graphic());
    if visible && next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/"
    }
}

fn login_page(state: &AppState, next: &str, error: Option<&str>, status: StatusCode) -> Response {
    let token = random_secret(24).unwrap_or_default();
    let error = error
        .map(|e| format!(r#"<p class="error" role="alert" id="error">{}</p>"#, escape(e)))
        .unwrap_or_default();
    let body = format!(
        r#"<h1>Sign in</h1>
<form class="card narrow" method="post" action="/login" id="login">
  <input type="hidden" name="csrf" value="{token}">
  <input type="hidden" name="next" value="{next}">
  <label for="email">Email</label>
  <input type="email" id="email" name="email" required autocomplete="username" autofocus>
  <label for="password">Password</label>
  <input type="password" id="password" name="password" required autocomplete="current-password">
  <button type="submit" id="signin">Sign in</button>
  {error}
</form>
<p class="help">No account? Ask your administrator (<code>minutes users add</code>).</p>"#,
        next = escape(safe_next(next)),
    );
    let mut response = (status, Html(page(None, "Sign in", &body))).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, LOGIN_COOKIE, &token, "/login", LOGIN_FORM_SECS),
    );
    response
}

/// `GET /login`.
pub async fn login_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let next = query.next.unwrap_or_else(|| "/".into());
    if let Ok(Some(_)) = identify(&state, &headers).await {
        return Redirect::to(safe_next(&next)).into_response();
    }
    login_page(&state, &next, None, StatusCode::OK)
}

/// `POST /login`.
pub async fn login(
    State(state): State<AppState>,
    connection: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !same(expected.as_bytes(), form.csrf.as_bytes()) {
        let error = csrf_refused();
        return login_page(&state, &form.next, Some(&error.message), error.status);
    }
    let address = client_address(
        connection.as_ref().map(|c| &c.0),
        &headers,
        &state.settings.access.trusted_proxies.0,
    );
    let user = match authenticate(&state, &form.email, &form.password, &address).await {
        Ok(user) => user,
        Err(error) => {
            let error = ApiError::from(error);
            let wait = error.retry_after;
            let message = match error.status {
                StatusCode::UNAUTHORIZED => "The email or password is wrong.".to_string(),
                _ => format!("{}.", capitalised(&error.message)),
            };
            let mut response = login_page(&state, &form.next, Some(&message), error.status);
            if let Some(wait) = wait {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
            }
            return response;
        }
    };
    match start_session(&state, user.id, safe_next(&form.next)).await {
        Ok(mut response) => {
            let cleared = set_cookie(&state, LOGIN_COOKIE, "", "/login", 0);
            response.headers_mut().append(header::SET_COOKIE, cleared);
            response
        }
        Err(error) => login_page(&state, &form.next, Some(&error.message), error.status),
    }
}

/// Starts a session for `user` and answers with a redirect to `to` that sets its cookie
/// (signing in, and after a password change, which ended the old sessions).
pub async fn start_session(state: &AppState, user: Uuid, to: &str) -> Result<Response, ApiError> {
    let lifetime = Duration::from_secs(state.settings.access.session_hours * 3600);
    let session = state.credentials.start_session(user, lifetime).await?;
    let mut response = Redirect::to(to).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, SESSION_COOKIE, &session.secret, "/", lifetime.as_secs()),
    );
    Ok(response)
}

pub(crate) fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// The sign-out form.
#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`: ends the session (with its form token, so no other site can).
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    if let Ok(Some(principal)) = identify(&state, &headers).await {
        if let Err(error) = principal.check_csrf(Some(&form.csrf)) {
            return crate::web::error_page(Some(&principal), error);
        }
        if let Via::Session { secret, .. } = &principal.via {
            if let Err(error) = state.credentials.end_session(secret).await {
                return crate::web::error_page(Some(&principal), error.into());
            }
        }
    }
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(&state, SESSION_COOKIE, "", "/", 0));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next("/jobs/1"), "/jobs/1");
        assert_eq!(safe_next("//evil.example/x"), "/");
        assert_eq!(safe_next("https://evil.example"), "/");
        assert_eq!(safe_next("/\\evil.example"), "/");
        assert_eq!(
            safe_next("/jobs?state=done&since=2026-11-01"),
            "/jobs?state=done&since=2026-11-01"
        );
    }

    /// Open redirect: a tab (or line break, or space) between the slashes, which browsers
    /// remove, made `/\t/evil.example` a link to another site after signing in.
    #[test]
    fn open_redirect_through_whitespace_in_the_next_path_is_refused() {
        for hostile in
            ["/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", "/ /evil.example"]
        {
            assert_eq!(safe_next(hostile), "/", "{hostile:?}");
        }
        assert_eq!(minutes_text(61), "2 minutes");
        assert_eq!(minutes_text(30), "a minute");
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let proxy = IpAddr::from([10, 0, 0, 2]);
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4, 203.0.113.9"));
        let from = |ip: IpAddr| ConnectInfo(SocketAddr::new(ip, 5000));
        // Direct: the peer, whatever the header claims.
        assert_eq!(client_address(Some(&from(proxy)), &headers, &[]), "10.0.0.2");
        // Behind the proxy: the address it saw, not the forgeable one further left.
        assert_eq!(client_address(Some(&from(proxy)), &headers, &[proxy]), "203.0.113.9");
        let untrusted = IpAddr::from([192, 0, 2, 1]);
        assert_eq!(client_address(Some(&from(untrusted)), &headers, &[proxy]), "192.0.2.1");
        assert_eq!(client_address(Some(&from(proxy)), &HeaderMap::new(), &[proxy]), "10.0.0.2");
        assert_eq!(client_address(None, &headers, &[proxy]), "unknown");
    }
}
