//! API tokens: `GET/POST /api/v1/tokens`, `DELETE /api/v1/tokens/{id}`, and the settings
//! page where a person makes and revokes them. A token's secret is shown once, in the
//! answer that made it; only its SHA-256 is kept. Making a token also accepts HTTP Basic
//! (email and password, under the sign-in throttle), so the command line can get its first
//! token without a browser.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use minutes_shared::credentials::ApiToken;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::signin::{authenticate, client_address};
use super::{api_principal, ApiUser, PageUser, Principal};
use crate::error::{ApiError, ErrorBody};
use crate::web::error_page;
use crate::web::html::{csrf_field, escape, page};
use crate::AppState;

/// A new token, with its secret (shown this once).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewTokenView {
    /// The token.
    #[serde(flatten)]
    pub token: ApiToken,
    /// The secret to send as `Authorization: Bearer ...`; it cannot be shown again.
    pub secret: String,
}

/// Body of `POST /api/v1/tokens`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// What the token is for ("laptop", "nightly batch"): some visible text (kept to its
    /// first 100 characters, control characters dropped).
    #[schema(min_length = 1, pattern = r"[^\s\x00-\x1f\x7f]")]
    pub name: String,
}

/// Lists the caller's tokens (revoked ones too), newest first.
#[utoipa::path(get, path = "/api/v1/tokens", operation_id = "list_tokens", security(("bearer" = [])),
    responses((status = 200, body = [ApiToken]), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
) -> Result<Json<Vec<ApiToken>>, ApiError> {
    Ok(Json(state.credentials.tokens(principal.user.id).await?))
}

/// Makes a token for the caller (signed in, a token, or HTTP Basic email and password).
#[utoipa::path(post, path = "/api/v1/tokens", operation_id = "create_token", security(("bearer" = []), ("basic" = [])),
    request_body = CreateToken,
    responses((status = 201, body = NewTokenView), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    connection: Option<Extension<ConnectInfo<SocketAddr>>>,
    method: Method,
    headers: HeaderMap,
    body: Result<Json<CreateToken>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<NewTokenView>), ApiError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .map(str::to_string);
    let user = match basic {
        Some(encoded) => {
            let decoded = STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| {
                    ApiError::bad_request("Basic credentials: base64 of email:password")
                })?;
            let (email, password) = decoded
                .split_once(':')
                .ok_or_else(|| ApiError::bad_request("Basic credentials: email:password"))?;
            let address = client_address(
                connection.as_ref().map(|c| &c.0),
                &headers,
                &state.settings.access.trusted_proxies.0,
            );
            authenticate(&state, email, password, &address).await?
        }
        None => api_principal(&state, &method, &headers).await?.user,
    };
    let Json(request) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let (token, secret) = state.credentials.create_token(user.id, &request.name).await?;
    Ok((StatusCode::CREATED, Json(NewTokenView { token, secret })))
}

/// Revokes one of the caller's tokens; another user's token id answers 404.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", operation_id = "revoke_token", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "token id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    ApiUser(principal): ApiUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such token");
    let id = Uuid::parse_str(&id).map_err(|_| not_found())?;
    if state.credentials.revoke_token(principal.user.id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found())
    }
}

fn settings_body(
    viewer: &Principal,
    tokens: &[ApiToken],
    new_secret: Option<(&str, &str)>,
) -> String {
    let csrf = csrf_field(viewer);
    let shown = new_secret
        .map(|(name, secret)| {
            format!(
                r#"<section class="card notice" aria-labelledby="new-token-h"><h2 id="new-token-h">Token “{}” made</h2><p>Copy it now: it is not shown again.</p><p><code id="new-token">{}</code></p><p class="help">Use it as <code>Authorization: Bearer …</code>, or for the command line: <code>export MINUTES_API_TOKEN=…</code></p></section>"#,
                escape(name),
                escape(secret)
            )
        })
        .unwrap_or_default();
    let rows: String = tokens
        .iter()
        .map(|t| {
            let action = if t.revoked_at.is_some() {
                "revoked".to_string()
            } else {
                format!(
                    r#"<form method="post" action="/settings/tokens/{id}/revoke">{csrf}<button type="submit" class="secondary" aria-label="Revoke {name}">Revoke</button></form>"#,
                    id = t.id,
                    name = escape(&t.name),
                )
            };
            format!(
                "<tr><td>{}</td><td><code>{}…</code></td><td>{}</td><td>{}</td><td>{action}</td></tr>",
                escape(&t.name),
                escape(&t.prefix),
                t.created_at.format("%Y-%m-%d %H:%M"),
                t.last_used_at.map(|at| at.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| "never".into()),
            )
        })
        .collect();
    let table = if tokens.is_empty() {
        "<p>No tokens yet.</p>".to_string()
    } else {
        format!(
            r#"<div class="scroll"><table id="tokens"><thead><tr><th scope="col">Name</th><th scope="col">Starts with</th><th scope="col">Made (UTC)</th><th scope="col">Last used</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead><tbody>{rows}</tbody></table></div>"#
        )
    };
    format!(
        r#"<h1>Settings</h1>
<section class="card" aria-labelledby="account-h"><h2 id="account-h">Account</h2><p>{name} · {email} · {role}</p></section>
{shown}
<section class="card" aria-labelledby="tokens-h"><h2 id="tokens-h">API tokens</h2>
<p class="help">For the REST API and the <code>minutes</code> command line.</p>
{table}
<form method="post" action="/settings/tokens" id="new-token-form">{csrf}
  <label for="token-name">New token's name</label>
  <input type="text" id="token-name" name="name" required maxlength="100" autocomplete="off">
  <button type="submit" id="create-token">Make a token</button>
</form></section>
<section class="card" aria-labelledby="password-h"><h2 id="password-h">Password</h2>
<form method="post" action="/settings/password" id="password-form">{csrf}
  <label for="current-password">Current password</label>
  <input type="password" id="current-password" name="current" required autocomplete="current-password">
  <label for="new-password">New password <span class="optional">(at least {min} characters)</span></label>
  <input type="password" id="new-password" name="new" required minlength="{min}" autocomplete="new-password">
  <label for="repeat-password">New password again</label>
  <input type="password" id="repeat-password" name="repeat" required minlength="{min}" autocomplete="new-password">
  <button type="submit" id="change-password">Change the password</button>
</form></section>"#,
        min = minutes_shared::accounts::MIN_PASSWORD_CHARS,
        name = escape(&viewer.user.display_name),
        email = escape(&viewer.user.email),
        role = viewer.user.role,
    )
}

/// Query of `GET /settings`.
#[derive(Debug, Deserialize)]
pub struct SettingsQuery {
    /// `changed` right after a password change.
    pub password: Option<String>,
}

/// `GET /settings`: the account, its tokens and the password form.
pub async fn settings_page(
    State(state): State<AppState>,
    PageUser(viewer): PageUser,
    Query(query): Query<SettingsQuery>,
) -> Response {
    match state.credentials.tokens(viewer.user.id).await {
        Ok(tokens) => {
            let mut body = settings_body(&viewer, &tokens, None);
            if query.password.as_deref() == Some("changed") {
                body = body.replacen(
                    "<h1>Settings</h1>",
                    r#"<h1>Settings</h1><p class="notice" role="status" id="notice">Your password was changed; other browsers were signed out.</p>"#,
                    1,
                );
            }
            Html(page(Some(&viewer), "Settings", &body)).into_response()
        }
        Err(error) => error_page(Some(&viewer), error.into()),
    }
}

/// The new-token form.
#[derive(Debug, Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

/// `POST /settings/tokens`: makes a token and shows it once.
pub async fn create_form(
    State(state): State<AppState>,
    PageUser(viewer): PageUser,
    Form(form): Form<TokenForm>,
) -> Response {
    if let Err(error) = viewer.check_csrf(Some(&form.csrf)) {
        return error_page(Some(&viewer), error);
    }
    let made = state.credentials.create_token(viewer.user.id, &form.name).await;
    let (token, secret) = match made {
        Ok(made) => made,
        Err(error) => return error_page(Some(&viewer), error.into()),
    };
    match state.credentials.tokens(viewer.user.id).await {
        Ok(tokens) => {
            let body = settings_body(&viewer, &tokens, Some((&token.name, &secret)));
            // The secret is on this page only: not kept in any cache.
            ([(header::CACHE_CONTROL, "no-store")], Html(page(Some(&viewer), "Settings", &body)))
                .into_response()
        }
        Err(error) => error_page(Some(&viewer), error.into()),
    }
}

/// The revoke button's form.
#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /settings/tokens/{id}/revoke`.
pub async fn revoke_form(
    State(state): State<AppState>,
    PageUser(viewer): PageUser,
    Path(id): Path<String>,
    Form(form): Form<RevokeForm>,
) -> Response {
    if let Err(error) = viewer.check_csrf(Some(&form.csrf)) {
        return error_page(Some(&viewer), error);
    }
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not_found", "There is no such token.");
    let Ok(id) = Uuid::parse_str(&id) else { return error_page(Some(&viewer), not_found()) };
    match state.credentials.revoke_token(viewer.user.id, id).await {
        Ok(true) => Redirect::to("/settings").into_response(),
        Ok(false) => error_page(Some(&viewer), not_found()),
        Err(error) => error_page(Some(&viewer), error.into()),
    }
}
