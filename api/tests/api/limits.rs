//! Per-user upload limits: the rate (429 with Retry-After) and the storage quota (413),
//! each with nothing written, per user, and taken atomically so parallel uploads cannot
//! pass them together.

use super::*;

async fn upload_as(
    app: &TestApp,
    client: &reqwest::Client,
    name: &str,
    bytes: Vec<u8>,
) -> reqwest::Response {
    let form = Form::new().part("file", Part::bytes(bytes).file_name(name.to_string()));
    client.post(app.url("/api/v1/jobs")).multipart(form).send().await.unwrap()
}

#[tokio::test]
async fn over_the_storage_quota_an_upload_is_413_with_nothing_written() {
    let wav = read(&fixture("formats/hello_u8_8k.wav"));
    let quota = wav.len() as u64 * 3 / 2;
    let app = TestApp::spawn_with(|s| s.access.user_quota_bytes = quota).await;
    let (_, bob) = app.other_user("bob@example.com", Role::Member).await;
    assert_eq!(app.upload("1.wav", wav.clone(), &[]).await.status(), StatusCode::ACCEPTED);
    let files = app.stored_files();
    // With Content-Length (refused before reading) and chunked (refused while streaming,
    // the partial upload aborted).
    let over = app.upload("2.wav", wav.clone(), &[]).await;
    assert_eq!(over.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(over.json::<Value>().await.unwrap()["error"], "quota_exceeded");
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        wav.chunks(4096).map(|c| Ok(c.to_vec())).collect();
    let streamed = Part::stream(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .file_name("3.wav");
    let form = Form::new().part("file", streamed);
    let response = app.http.post(app.url("/api/v1/jobs")).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "quota_exceeded");
    assert_eq!(app.stored_files(), files, "nothing written over the quota");
    // The quota is per user; deleting a job frees its room.
    assert_eq!(upload_as(&app, &bob, "b.wav", wav.clone()).await.status(), StatusCode::ACCEPTED);
    let (_, page) = app.get_json("/api/v1/jobs").await;
    let id = page["jobs"][0]["id"].as_str().unwrap().to_string();
    app.http.delete(app.url(&format!("/api/v1/jobs/{id}"))).send().await.unwrap();
    assert_eq!(app.upload("4.wav", wav, &[]).await.status(), StatusCode::ACCEPTED);
    app.finish().await;
}

#[tokio::test]
async fn past_the_upload_rate_an_upload_is_429_with_retry_after() {
    let wav = read(&fixture("formats/hello_u8_8k.wav"));
    let app = TestApp::spawn_with(|s| s.access.uploads_per_minute = 2).await;
    let (_, bob) = app.other_user("bob@example.com", Role::Member).await;
    for name in ["1.wav", "2.wav"] {
        assert_eq!(app.upload(name, wav.clone(), &[]).await.status(), StatusCode::ACCEPTED);
    }
    let files = app.stored_files();
    let limited = app.upload("3.wav", wav.clone(), &[]).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(limited.json::<Value>().await.unwrap()["error"], "rate_limited");
    assert_eq!(app.stored_files(), files, "nothing written");
    // Another user is not held back by ann's uploads.
    assert_eq!(upload_as(&app, &bob, "b.wav", wav).await.status(), StatusCode::ACCEPTED);
    app.finish().await;
}

/// The hole: the rate and the quota were read, then acted on, so uploads sent together all
/// passed both. Eight parallel uploads against a rate of three: exactly three accepted.
#[tokio::test]
async fn rate_limit_and_quota_hold_for_parallel_uploads() {
    let wav = read(&fixture("formats/hello_u8_8k.wav"));
    let app = TestApp::spawn_with(|s| s.access.uploads_per_minute = 3).await;
    let statuses = parallel_uploads(&app, &wav, 8).await;
    let accepted = statuses.iter().filter(|s| **s == StatusCode::ACCEPTED).count();
    let limited = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((accepted, limited), (3, 5), "{statuses:?}");
    app.finish().await;

    // A quota with room for two and a half recordings (each declaring its length).
    let quota = wav.len() as u64 * 5 / 2 + 4096;
    let app = TestApp::spawn_with(|s| s.access.user_quota_bytes = quota).await;
    let statuses = parallel_uploads(&app, &wav, 8).await;
    let accepted = statuses.iter().filter(|s| **s == StatusCode::ACCEPTED).count();
    let over = statuses.iter().filter(|s| **s == StatusCode::PAYLOAD_TOO_LARGE).count();
    assert_eq!((accepted, over), (2, 6), "{statuses:?}");
    let (_, page) = app.get_json("/api/v1/jobs").await;
    let kept: i64 = page["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["size_bytes"].as_i64().unwrap())
        .sum();
    assert!(kept as u64 <= quota, "{kept} bytes kept over a quota of {quota}");
    assert_eq!(app.stored_files().len(), 2, "only the accepted uploads are stored");
    app.finish().await;
}

/// `count` uploads of `wav` sent at once; their statuses.
async fn parallel_uploads(app: &TestApp, wav: &[u8], count: usize) -> Vec<StatusCode> {
    let uploads = (0..count).map(|n| {
        let form =
            Form::new().part("file", Part::bytes(wav.to_vec()).file_name(format!("{n}.wav")));
        app.http.post(app.url("/api/v1/jobs")).multipart(form).send()
    });
    futures_util::future::join_all(uploads)
        .await
        .into_iter()
        .map(|response| response.unwrap().status())
        .collect()
}
