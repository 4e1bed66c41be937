//! The OpenAPI document at `/api/v1/openapi.json`, generated from the handlers'
//! annotations; a test checks that every path it lists is served.

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
        crate::health::healthz,
        crate::health::readyz,
        crate::health::metrics,
        document,
    ),
    components(schemas(
        crate::jobs::JobView,
        crate::jobs::Links,
        crate::jobs::JobPage,
        crate::jobs::ReprocessRequest,
        crate::events::ProgressEvent,
        crate::health::Readiness,
        crate::error::ErrorBody,
        crate::upload::UploadForm,
    ))
)]
pub struct ApiDoc;

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", responses((status = 200, description = "OpenAPI 3.1 JSON")))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
