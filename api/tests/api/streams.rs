//! Progress streams that end: when the job is deleted, when the API shuts down (whose
//! graceful shutdown waited for them forever), and no more than a user's cap at once.

use futures_util::StreamExt;
use minutes_shared::stage::Stage;

use super::*;

/// A queued job (no worker takes it here) and its events URL.
async fn queued_job(app: &TestApp) -> (Uuid, String) {
    let response = app.upload("a.wav", read(&fixture("formats/hello_u8_8k.wav")), &[]).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let id: Uuid = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().parse().unwrap();
    (id, app.url(&format!("/api/v1/jobs/{id}/events")))
}

/// The whole body of an event stream, once it ends (a failure guard of 60 s, not a figure).
async fn rest_of(response: reqwest::Response) -> String {
    tokio::time::timeout(Duration::from_secs(60), response.text())
        .await
        .expect("the stream ends")
        .unwrap()
}

/// The hole: streams never ended for a deleted job and were unbounded per user.
#[tokio::test]
async fn event_streams_end_when_the_job_is_deleted_and_are_capped_per_user() {
    let app = TestApp::spawn_with(|s| s.access.event_streams_per_user = 2).await;
    let (id, url) = queued_job(&app).await;
    let watching = app.http.get(&url).send().await.unwrap();
    assert_eq!(watching.status(), StatusCode::OK);
    let deleted = app.http.delete(app.url(&format!("/api/v1/jobs/{id}"))).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    // Deleting a queued job cancels it first: the stream ends with the cancelled job, or
    // with `deleted` when the row was gone before the stream read the cancelled state
    // (both changes notify; which one the stream sees first is a race it must survive).
    let body = rest_of(watching).await;
    let ended_cancelled = body.contains("event: end") && body.contains("\"state\":\"cancelled\"");
    let ended_deleted = body.contains("event: deleted") && body.contains(&id.to_string());
    assert!(ended_cancelled || ended_deleted, "{body}");
    // A row gone without a final state seen (deleted by another process): `deleted`.
    let (id, url) = queued_job(&app).await;
    let watching = app.http.get(&url).send().await.unwrap();
    app.repo.delete(id).await.unwrap();
    let body = rest_of(watching).await;
    assert!(body.contains("event: deleted") && body.contains(&id.to_string()), "{body}");

    let (_, url) = queued_job(&app).await;
    let first = app.http.get(&url).send().await.unwrap();
    let second = app.http.get(&url).send().await.unwrap();
    assert_eq!((first.status(), second.status()), (StatusCode::OK, StatusCode::OK));
    let third = app.http.get(&url).send().await.unwrap();
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(third.headers().contains_key("retry-after"));
    assert_eq!(third.json::<Value>().await.unwrap()["error"], "too_many_streams");
    // Another user has places of their own.
    let (_, bob) = app.other_user("bob@example.com", Role::Member).await;
    let (_, bobs) = upload_as_client(&app, &bob).await;
    assert_eq!(bob.get(&bobs).send().await.unwrap().status(), StatusCode::OK);
    // A stream the client closes gives its place back (once the server notices, at its
    // next write: wait for that).
    drop(first);
    let mut again = app.http.get(&url).send().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while again.status() == StatusCode::TOO_MANY_REQUESTS {
        assert!(Instant::now() < deadline, "the closed stream's place never came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
        again = app.http.get(&url).send().await.unwrap();
    }
    assert_eq!(again.status(), StatusCode::OK);
    drop((second, again));
    app.finish().await;
}

async fn upload_as_client(app: &TestApp, client: &reqwest::Client) -> (Uuid, String) {
    let form = Form::new()
        .part("file", Part::bytes(read(&fixture("formats/hello_u8_8k.wav"))).file_name("b.wav"));
    let response = client.post(app.url("/api/v1/jobs")).multipart(form).send().await.unwrap();
    let id: Uuid = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().parse().unwrap();
    (id, app.url(&format!("/api/v1/jobs/{id}/events")))
}

/// The hole: the API's graceful shutdown waited for open event streams, so SIGTERM hung
/// while a browser watched a job. Now the streams end at the signal, and a request that
/// does not finish (an upload that stalls) is given up after the grace.
#[tokio::test]
async fn the_api_shutdown_ends_event_streams_and_finishes_within_the_grace() {
    let mut app = TestApp::spawn_with(|s| s.shutdown_grace_secs = 2).await;
    let (_, url) = queued_job(&app).await;
    let watching = app.http.get(&url).send().await.unwrap();
    assert_eq!(watching.status(), StatusCode::OK);
    let mut body = watching.bytes_stream();
    // An upload that sends half its declared body, then nothing.
    let address = app.base.trim_start_matches("http://").to_string();
    let mut stalled = tokio::net::TcpStream::connect(&address).await.unwrap();
    let (_, token) = add_user(app.repo.pool(), "stall@example.com", Role::Member).await.unwrap();
    let head = format!(
        "POST /api/v1/jobs HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary=zz\r\nContent-Length: 100000\r\n\r\n\
         --zz\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhalf"
    );
    tokio::io::AsyncWriteExt::write_all(&mut stalled, head.as_bytes()).await.unwrap();

    app.shut_down().await;
    // The stream ended at the signal with a complete body, not cut when the grace ran out.
    let rest = async {
        while let Some(chunk) = body.next().await {
            if let Err(error) = chunk {
                panic!("the stream was cut, not ended: {error}");
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), rest).await.expect("the stream ends");
    drop(stalled);
    app.finish().await;
}

#[tokio::test]
async fn progress_streams_as_server_sent_events_until_the_job_ends() {
    let app = TestApp::spawn().await;
    let response = app.upload("a.wav", read(&fixture("formats/hello_u8_8k.wav")), &[]).await;
    let id: Uuid = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().parse().unwrap();
    let events = app.http.get(app.url(&format!("/api/v1/jobs/{id}/events"))).send().await.unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    assert!(events.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let repo = app.repo.clone();
    let worker = tokio::spawn(async move {
        let Claim::Leased(lease, _) =
            repo.claim(id, "w", Duration::from_secs(30), 3).await.unwrap()
        else {
            panic!("claimable")
        };
        for (stage, percent) in
            [(Stage::Decode, 5.0), (Stage::Transcribe, 50.0), (Stage::Render, 95.0)]
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
            repo.progress(lease, stage, percent, stage.as_str()).await.unwrap();
        }
        repo.finish(lease, None).await.unwrap();
    });
    let body = tokio::time::timeout(Duration::from_secs(20), events.text())
        .await
        .expect("the stream closes when the job ends")
        .unwrap();
    worker.await.unwrap();
    let stages: Vec<String> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v.get("stage").and_then(|s| s.as_str()).map(str::to_owned))
        .collect();
    for stage in ["decode", "transcribe", "render"] {
        assert!(stages.iter().any(|s| s == stage), "{body}");
    }
    assert!(body.contains("event: end"), "{body}");
    assert!(body.contains("\"state\":\"done\""), "{body}");

    // A reconnect after the last event seen gets only what came later.
    let replay = app
        .http
        .get(app.url(&format!("/api/v1/jobs/{id}/events")))
        .header("Last-Event-ID", "999999")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!replay.contains("event: progress") && replay.contains("event: end"), "{replay}");
    app.finish().await;
}
