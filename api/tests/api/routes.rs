//! The other routes: cancel, retry and delete; JSON 404s and small bodies; health,
//! readiness, metrics and the OpenAPI document.

use super::*;

#[tokio::test]
async fn cancel_retry_and_delete_change_state_and_remove_files() {
    let app = TestApp::spawn().await;
    let response = app.upload("a.wav", read(&fixture("formats/hello_u8_8k.wav")), &[]).await;
    let id = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let post = |path: String| app.http.post(app.url(&path)).send();
    let cancelled = post(format!("/api/v1/jobs/{id}/cancel")).await.unwrap();
    assert_eq!(cancelled.status(), StatusCode::OK);
    assert_eq!(cancelled.json::<Value>().await.unwrap()["state"], "cancelled");
    let again = post(format!("/api/v1/jobs/{id}/cancel")).await.unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let retried = post(format!("/api/v1/jobs/{id}/retry")).await.unwrap();
    assert_eq!(retried.status(), StatusCode::ACCEPTED);
    assert_eq!(retried.json::<Value>().await.unwrap()["state"], "queued");
    let not_again = post(format!("/api/v1/jobs/{id}/retry")).await.unwrap();
    assert_eq!(not_again.status(), StatusCode::CONFLICT);
    let deleted = app.http.delete(app.url(&format!("/api/v1/jobs/{id}"))).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert!(app.stored_files().is_empty());
    assert_eq!(app.get_json(&format!("/api/v1/jobs/{id}")).await.0, StatusCode::NOT_FOUND);
    let state = app.repo.get(id.parse().unwrap()).await.unwrap();
    assert!(state.is_none());
    app.finish().await;
}

#[tokio::test]
async fn unknown_ids_and_routes_are_json_404s_and_small_routes_refuse_big_bodies() {
    let app = TestApp::spawn().await;
    for path in [
        format!("/api/v1/jobs/{}", Uuid::new_v4()),
        "/api/v1/jobs/not-a-uuid".to_string(),
        "/api/v1/jobs/%2e%2e".to_string(),
        format!("/api/v1/jobs/{}/files/minutes.pdf", Uuid::new_v4()),
        "/api/v1/nothing".to_string(),
    ] {
        let (status, body) = app.get_json(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body["error"], "not_found", "{path}");
    }
    // Outside the API a person gets a page, not JSON.
    let page = app.http.get(app.url("/nothing/here")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = app.http.get(app.url(&format!("/jobs/{}", Uuid::new_v4()))).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(page.text().await.unwrap().contains("no such job"));
    let big = app
        .http
        .post(app.url(&format!("/api/v1/jobs/{}/retry", Uuid::new_v4())))
        .body(vec![b'x'; 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert!(big.status() == StatusCode::PAYLOAD_TOO_LARGE || big.status() == StatusCode::NOT_FOUND);
    app.finish().await;
}

#[tokio::test]
async fn health_readiness_metrics_and_the_openapi_document_match_the_routes() {
    let app = TestApp::spawn().await;
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    // Security headers on pages, API answers and errors alike.
    for path in ["/", "/jobs", "/api/v1/jobs", "/nothing/here", "/static/app.js"] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert!(headers.contains_key("referrer-policy"), "{path}");
    }
    let upload_page = app.http.get(app.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(
        !upload_page.contains("<script>") && !upload_page.contains("style="),
        "no inline script or style"
    );
    let (status, ready) = app.get_json("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(ready["postgres"], "ok");
    app.upload("a.wav", read(&fixture("formats/hello_u8_8k.wav")), &[]).await;
    app.wait_depth(1).await;
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for line in [
        "minutes_jobs{state=\"queued\"} 1",
        "minutes_queue_depth 1",
        "minutes_uploads_total{outcome=\"accepted\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    assert!(metrics.contains("minutes_oldest_queued_seconds"), "{metrics}");

    let (status, doc) = app.get_json("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 9, "{paths:?}");
    let id = Uuid::new_v4().to_string();
    for (path, operations) in paths {
        let concrete =
            path.replace("{id}", &id).replace("{file}", "minutes.pdf").replace("{number}", "1");
        for method in operations.as_object().unwrap().keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response =
                app.http.request(method.clone(), app.url(&concrete)).send().await.unwrap();
            assert_ne!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            let body = response.text().await.unwrap_or_default();
            assert!(
                !body.contains("no such route"),
                "{method} {path} is documented but not served"
            );
        }
    }
    app.finish().await;
}

/// The served OpenAPI document is valid OpenAPI 3.1 as `openapi-spec-validator` (PyPI,
/// pinned in scripts/lib.sh) reads it. The bug: the list's query parameters were declared
/// `in: path`, so the validator (and client generators) refused the document.
#[tokio::test]
async fn the_openapi_document_is_valid_for_openapi_spec_validator() {
    let app = TestApp::spawn().await;
    let doc = app.http.get(app.url("/api/v1/openapi.json")).send().await.unwrap();
    let doc = doc.text().await.unwrap();
    let file = app.store_dir.join("openapi.json");
    std::fs::create_dir_all(&app.store_dir).unwrap();
    std::fs::write(&file, &doc).unwrap();
    let venv = std::env::var("MINUTES_TEST_VENV")
        .expect("MINUTES_TEST_VENV: run the tests with the README's test command (scripts/test)");
    let output = std::process::Command::new(format!("{venv}/bin/openapi-spec-validator"))
        .arg(&file)
        .output()
        .expect("openapi-spec-validator (installed by scripts/test)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{said}");
    assert!(said.contains("OK"), "{said}");
    app.finish().await;
}

/// Issue 18: every operation of the served document, called without credentials, answers
/// with a status that operation documents: 401 with the JSON error body for all but the
/// public ones (health, readiness, metrics, the document itself), which answer 200.
#[tokio::test]
async fn unauthenticated_every_operation_answers_a_status_it_documents() {
    let app = TestApp::spawn().await;
    let (_, doc) = app.get_json("/api/v1/openapi.json").await;
    let schemes = doc["components"]["securitySchemes"].as_object().expect("security schemes");
    for scheme in ["bearer", "session", "csrf", "basic"] {
        assert!(schemes.contains_key(scheme), "{scheme} missing: {schemes:?}");
    }
    assert_eq!(schemes["session"]["in"], "cookie");
    assert_eq!(schemes["csrf"]["name"], "X-CSRF-Token");
    let anonymous = reqwest::Client::new();
    let id = Uuid::new_v4().to_string();
    let mut checked = 0;
    for (path, operations) in doc["paths"].as_object().expect("paths") {
        let concrete =
            path.replace("{id}", &id).replace("{file}", "minutes.pdf").replace("{number}", "1");
        for (method, operation) in operations.as_object().unwrap() {
            let public = operation["security"].as_array().is_some_and(|alternatives| {
                alternatives.iter().any(|a| a.as_object().is_some_and(|o| o.is_empty()))
            });
            let http_method =
                reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = anonymous.request(http_method, app.url(&concrete)).send().await.unwrap();
            let status = response.status();
            let documented = operation["responses"].as_object().expect("responses");
            assert!(
                documented.contains_key(status.as_str()),
                "{method} {path} answered {status}, which it does not document ({:?})",
                documented.keys().collect::<Vec<_>>()
            );
            if public {
                assert_eq!(status, StatusCode::OK, "{method} {path} is public");
            } else {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
                let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
                assert!(
                    content_type.starts_with("application/json"),
                    "{method} {path}: {content_type}"
                );
                let body: Value = response.json().await.unwrap();
                assert!(body["error"].is_string() && body["message"].is_string(), "{body}");
                assert!(
                    documented["401"]["content"]["application/json"]["schema"]["$ref"]
                        .as_str()
                        .is_some_and(|r| r.ends_with("/ErrorBody")),
                    "{method} {path}: the 401 names the error body"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 18, "only {checked} operations");
    app.finish().await;
}

/// Bug fixed (found by schemathesis): a NUL in the list's `filename` glob reached Postgres,
/// which refused the text, and the answer was 503 "the database is not available". Now it
/// is 400, and a repeated query parameter is the JSON error too, not axum's plain text.
#[tokio::test]
async fn a_control_character_in_the_filename_filter_is_a_400_not_a_503() {
    let app = TestApp::spawn().await;
    for query in ["filename=a%00b", "filename=%C2%89", "limit=0", "limit=abc", "state=x&state=y"] {
        let response =
            app.http.get(app.url(&format!("/api/v1/jobs?{query}"))).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
        assert!(content_type.starts_with("application/json"), "{query}: {content_type}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "bad_request", "{query}: {body}");
    }
    let (status, _) = app.get_json("/api/v1/jobs?filename=weekly*").await;
    assert_eq!(status, StatusCode::OK);
    app.finish().await;
}

/// Issue 18: the document says which headers answers carry (the upload's Location,
/// Idempotent-Replayed and Retry-After; the request id on every answer), that the event
/// stream is `text/event-stream`, and links the created job to the operations on it.
#[tokio::test]
async fn the_document_names_the_headers_the_event_stream_and_the_links() {
    let app = TestApp::spawn().await;
    let (_, doc) = app.get_json("/api/v1/openapi.json").await;
    let upload = &doc["paths"]["/api/v1/jobs"]["post"]["responses"];
    for header in ["Location", "Idempotent-Replayed", "X-Request-Id"] {
        assert!(upload["202"]["headers"][header].is_object(), "202 lacks {header}: {upload}");
    }
    assert!(upload["429"]["headers"]["Retry-After"].is_object(), "{upload}");
    let links = upload["202"]["links"].as_object().expect("links from the created job");
    assert_eq!(links["show_job"]["parameters"]["id"], "$response.body#/id");
    assert!(links.contains_key("download_file") && links.contains_key("cancel_job"));
    let events = &doc["paths"]["/api/v1/jobs/{id}/events"]["get"]["responses"]["200"];
    assert!(events["content"]["text/event-stream"].is_object(), "{events}");
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                assert!(
                    response["headers"]["X-Request-Id"].is_object(),
                    "{method} {path} {status} lacks X-Request-Id"
                );
            }
        }
    }
    app.finish().await;
}
