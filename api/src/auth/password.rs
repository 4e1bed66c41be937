//! `POST /settings/password`: a signed-in user changes their password. The current
//! password is checked under the sign-in throttle; the change ends every session of the
//! user (other browsers are signed out) and starts a new one for this browser.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Form};
use minutes_shared::accounts::{check_password, hash_password};
use serde::Deserialize;

use super::signin::{authenticate, capitalised, client_address, start_session};
use super::PageUser;
use crate::error::ApiError;
use crate::web::error_page;
use crate::web::html::{escape, page};
use crate::AppState;

/// The password form.
#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    repeat: String,
}

/// `POST /settings/password`.
pub async fn change(
    State(state): State<AppState>,
    PageUser(viewer): PageUser,
    connection: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Response {
    if let Err(error) = viewer.check_csrf(Some(&form.csrf)) {
        return error_page(Some(&viewer), error);
    }
    let refuse = |message: String| {
        let body = format!(
            r#"<h1>The password was not changed</h1><p class="error" role="alert" id="error">{}</p><p><a href="/settings">Back to the settings</a></p>"#,
            escape(&message)
        );
        (StatusCode::BAD_REQUEST, Html(page(Some(&viewer), "Password", &body))).into_response()
    };
    if form.new != form.repeat {
        return refuse("The two new passwords differ.".into());
    }
    if let Err(error) = check_password(&form.new) {
        return refuse(format!("{}.", capitalised(&error.to_string())));
    }
    let address = client_address(
        connection.as_ref().map(|c| &c.0),
        &headers,
        &state.settings.access.trusted_proxies.0,
    );
    if let Err(error) = authenticate(&state, &viewer.user.email, &form.current, &address).await {
        let error = ApiError::from(error);
        if error.status == StatusCode::UNAUTHORIZED {
            return refuse("The current password is wrong.".into());
        }
        return error_page(Some(&viewer), error);
    }
    let new = form.new.clone();
    let hash = match tokio::task::spawn_blocking(move || hash_password(&new)).await {
        Ok(Ok(hash)) => hash,
        Ok(Err(error)) => return error_page(Some(&viewer), error.into()),
        Err(error) => {
            let error =
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", error.to_string());
            return error_page(Some(&viewer), error);
        }
    };
    if let Err(error) = state.users.set_password(&viewer.user.email, &hash).await {
        return error_page(Some(&viewer), error.into());
    }
    start_session(&state, viewer.user.id, "/settings?password=changed")
        .await
        .unwrap_or_else(|error| error_page(Some(&viewer), error))
}
