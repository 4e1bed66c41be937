//! The OpenAPI document at `/api/v1/openapi.json`, generated from the handlers'
//! annotations; a test checks that every path it lists is served. Every operation needs a
//! bearer token unless it says otherwise.

use axum::Json;
use utoipa::OpenApi;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "minutes",
        description = "Meeting recordings to PDF minutes: upload, follow, download."
    ),
    paths(
        crate::upload::create,
        crate::jobs::list,
        crate::jobs::show,
        crate::jobs::retry,
        crate::jobs::cancel,
        crate::jobs::reprocess,
        crate::jobs::delete,
        crate::events::stream,
        crate::downloads::download,
        crate::downloads::download_version,
        crate::versions::list,
        crate::versions::restore,
        crate::health::healthz,
        crate::health::readyz,
        crate::health::metrics,
        crate::auth::tokens::list,
        crate::auth::tokens::create,
        crate::auth::tokens::revoke,
        document,
    ),
    components(schemas(
        crate::jobs::JobView,
        crate::jobs::Links,
        crate::jobs::JobPage,
        crate::jobs::ReprocessBody,
        crate::versions::VersionView,
        crate::versions::VersionList,
        minutes_shared::jobs::VersionOutcome,
        minutes_shared::options::SummarizerKind,
        crate::events::ProgressEvent,
        minutes_shared::readiness::Readiness,
        crate::error::ErrorBody,
        crate::upload::UploadForm,
        minutes_shared::credentials::ApiToken,
        crate::auth::tokens::NewTokenView,
        crate::auth::tokens::CreateToken,
    )),
    modifiers(&Security),
    security(("bearer" = []))
)]
pub struct ApiDoc;

/// The two ways to authenticate: a bearer token everywhere, HTTP Basic (email and
/// password) only to make a token.
struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components
            .add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        components
            .add_security_scheme("basic", SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)));
    }
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", security(()), responses((status = 200, description = "OpenAPI 3.1 JSON")))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
