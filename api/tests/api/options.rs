//! Job options as a contract: only the models the installation offers, hints within
//! bounds, unknown options refused, at upload and at reprocessing alike.

use super::*;

/// The hole: `reprocess` took `model` as any string, which the worker loaded as a folder
/// and cached forever (`/m/../m`, `/m/../m/../m`, ... each a new copy), and the failure
/// said whether the path existed. Now anything not in `MINUTES_MODELS` is 400 and nothing
/// about the job changes.
#[tokio::test]
async fn a_model_not_offered_is_refused_at_upload_and_reprocess_and_the_job_is_untouched() {
    let app = TestApp::spawn().await;
    let bytes = read(&fixture("formats/hello_s16_16k.wav"));
    for model in ["/etc", "../models/whisper-base", "small", "/m/../m", "tiny.en/../../etc"] {
        let response = app.upload("a.wav", bytes.clone(), &[("model", model)]).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{model}");
        let error: Value = response.json().await.unwrap();
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("not offered here") && message.contains("tiny.en, base"),
            "{message}"
        );
    }
    assert!(app.stored_files().is_empty(), "nothing stored: {:?}", app.stored_files());
    let (_, page) = app.get_json("/api/v1/jobs").await;
    assert!(page["jobs"].as_array().unwrap().is_empty());

    let job = finished_job(&app, &app.http).await;
    let id: Uuid = job["id"].as_str().unwrap().parse().unwrap();
    let reprocess = |body: Value| {
        let url = app.url(&format!("/api/v1/jobs/{id}/reprocess"));
        let http = app.http.clone();
        async move { http.post(url).json(&body).send().await.unwrap() }
    };
    for body in [
        serde_json::json!({"from": "transcribe", "model": "/etc"}),
        serde_json::json!({"from": "transcribe", "model": "/m/../m"}),
        serde_json::json!({"from": "transcribe", "vocabulary": "x".repeat(501)}),
        serde_json::json!({"from": "transcribe", "summarizer": "gpt-4"}),
        serde_json::json!({"from": "transcribe", "modle": "base"}),
    ] {
        let response = reprocess(body.clone()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    let untouched = app.repo.get(id).await.unwrap().unwrap();
    assert_eq!(untouched.state.as_str(), "done");
    assert_eq!(untouched.options, Default::default());
    let events = app.repo.events(id, 0).await.unwrap();
    assert!(events.iter().all(|e| e.stage != "reprocess"), "no reprocess was recorded");

    let response = reprocess(serde_json::json!({
        "from": "transcribe", "model": "base", "vocabulary": " Kubernetes,  Sarah Chen "
    }))
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let queued = app.repo.get(id).await.unwrap().unwrap();
    assert_eq!(queued.options.model.as_deref(), Some("base"));
    assert_eq!(queued.options.vocabulary.as_deref(), Some("Kubernetes, Sarah Chen"));
    assert_eq!(queued.options.notify, Some(false));
    app.finish().await;
}

#[tokio::test]
async fn an_upload_carries_its_vocabulary_and_model_to_the_job() {
    let app = TestApp::spawn().await;
    let bytes = read(&fixture("formats/hello_s16_16k.wav"));
    let response =
        app.upload("a.wav", bytes, &[("model", "base"), ("vocabulary", "ComfyUI, Hetzner")]).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let id: Uuid = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().parse().unwrap();
    let job = app.repo.get(id).await.unwrap().unwrap();
    assert_eq!(job.options.model.as_deref(), Some("base"));
    assert_eq!(job.options.vocabulary.as_deref(), Some("ComfyUI, Hetzner"));
    // The upload page offers the choice of model when there are several.
    let page = app.http.get(app.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(r#"name="vocabulary""#) && page.contains(r#"<option value="base">"#));
    app.finish().await;
}

/// The hole: a member could choose the LLM summarizer though the operator chose the offline
/// one. Now a summarizer not in `MINUTES_SUMMARIZERS` is 400 at upload and at reprocess.
#[tokio::test]
async fn a_summarizer_the_operator_did_not_offer_is_refused_at_upload_and_reprocess() {
    let app = TestApp::spawn_with(|s| s.service.summarizers = "extractive".parse().unwrap()).await;
    let bytes = read(&fixture("formats/hello_s16_16k.wav"));
    let response = app.upload("a.wav", bytes.clone(), &[("summarizer", "openai")]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.unwrap();
    assert_eq!(
        error["message"], "summarizer openai is not offered here (offered: extractive)",
        "{error}"
    );
    assert!(app.stored_files().is_empty(), "nothing stored: {:?}", app.stored_files());
    let response = app.upload("b.wav", bytes, &[("summarizer", "extractive")]).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);

    let job = finished_job(&app, &app.http).await;
    let id = job["id"].as_str().unwrap();
    let url = app.url(&format!("/api/v1/jobs/{id}/reprocess"));
    let body = serde_json::json!({"from": "summarize", "summarizer": "openai"});
    let response = app.http.post(url).json(&body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let stored = app.repo.get(id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.state.as_str(), "done", "the job is untouched");
    app.finish().await;
}
