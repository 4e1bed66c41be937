//! The OpenAPI document at `/api/v1/openapi.json`: this file's header (title, schemas,
//! security schemes) completed with the operations of the router itself
//! (`crate::routes`, utoipa-axum), so the paths it lists are the routes served. Every
//! operation needs credentials (a bearer token, or the session with its CSRF token on
//! writes) unless it says otherwise.

use std::sync::OnceLock;

use axum::Json;
use serde_json::{json, Value};
use utoipa::OpenApi;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "minutes",
        description = "Meeting recordings to PDF minutes: upload, follow, download."
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
    security(("bearer" = []), ("session" = [], "csrf" = []))
)]
pub struct ApiDoc;

/// The ways to authenticate: a bearer token; or the browser's session cookie, with the
/// session's `X-CSRF-Token` header on every write; and HTTP Basic (email and password)
/// only to make a token.
struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components
            .add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        components
            .add_security_scheme("basic", SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)));
        let cookie = ApiKeyValue::with_description(
            crate::auth::SESSION_COOKIE,
            "the session cookie set by signing in at /login",
        );
        components.add_security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(cookie)));
        let csrf = ApiKeyValue::with_description(
            "X-CSRF-Token",
            "the session's CSRF token (in the pages' meta csrf-token); needed on writes",
        );
        components.add_security_scheme("csrf", SecurityScheme::ApiKey(ApiKey::Header(csrf)));
    }
}

/// Adds what every operation shares, made from the operations themselves so a new route
/// cannot forget it: the 401 answer (with the error body) where credentials are needed,
/// the 503 answer where a backing service is used (all but liveness, metrics and the
/// document), and the `X-Request-Id` header on every answer.
fn document_shared_answers(document: &mut Value) {
    let error_answer = |description: &str| json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } } });
    let request_id = json!({
        "description": "this request's id (the caller's, or a new one): it names the request in the logs",
        "schema": { "type": "string" }
    });
    let Some(paths) = document["paths"].as_object_mut() else { return };
    for operation in
        paths.values_mut().filter_map(Value::as_object_mut).flat_map(|item| item.values_mut())
    {
        // `security: [{}]` is an operation that needs no credentials.
        let public = operation["security"].as_array().is_some_and(|alternatives| {
            alternatives.iter().any(|a| a.as_object().is_some_and(|o| o.is_empty()))
        });
        let standalone =
            matches!(operation["operationId"].as_str(), Some("healthz" | "metrics" | "document"));
        let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        if !public {
            responses.entry("401").or_insert_with(|| {
                error_answer("no credentials, or credentials that are not valid")
            });
        }
        if !standalone {
            responses.entry("503").or_insert_with(|| {
                error_answer("the database, queue or store is not available; try again")
            });
        }
        // A `$ref` answer takes no siblings; every answer here is written out.
        for response in responses.values_mut().filter_map(Value::as_object_mut) {
            if response.contains_key("$ref") {
                continue;
            }
            let headers = response.entry("headers").or_insert_with(|| json!({}));
            if let Some(headers) = headers.as_object_mut() {
                headers.entry("X-Request-Id").or_insert_with(|| request_id.clone());
            }
        }
    }
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", security(()), responses((status = 200, description = "OpenAPI 3.1 JSON")))]
pub async fn document() -> Json<Value> {
    Json(served().clone())
}

/// The document of the routes served, made once.
pub fn served() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        // Serialising the document's own types cannot fail; an empty one would fail the
        // document's tests.
        let mut document = serde_json::to_value(crate::routes().into_openapi()).unwrap_or_default();
        document_shared_answers(&mut document);
        link_created_jobs(&mut document);
        document
    })
}

/// OpenAPI links from the job an upload made (`create_job`'s 202) to every operation on
/// one job, its `id` taken from the answer: a client (or a stateful tester) can follow
/// them. Made from the router's own operations, so a new job route is linked. Written into
/// the JSON, like the shared answers (utoipa 5.5 spells a link's `operationId` as
/// `operation_id`).
fn link_created_jobs(document: &mut Value) {
    let mut links = serde_json::Map::new();
    if let Some(paths) = document["paths"].as_object() {
        for (path, item) in paths.iter().filter(|(path, _)| path.starts_with("/api/v1/jobs/{id}")) {
            for operation in item.as_object().into_iter().flat_map(|o| o.values()) {
                let Some(id) = operation["operationId"].as_str() else { continue };
                let mut parameters = json!({ "id": "$response.body#/id" });
                if path.contains("{number}") {
                    // A new job's first version is 1.
                    parameters["number"] = "1".into();
                }
                links.insert(id.into(), json!({ "operationId": id, "parameters": parameters }));
            }
        }
    }
    let created = &mut document["paths"]["/api/v1/jobs"]["post"]["responses"]["202"];
    if created.is_object() {
        created["links"] = links.into();
    }
}
