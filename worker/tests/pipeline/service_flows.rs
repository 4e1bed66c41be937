//! Jobs through the service: upload to done with downloads, events and the email; workers
//! sharing jobs; the per-user running limit; request ids through the logs; options the
//! workers refuse or replace.

use mail_parser::{MessageParser, MimeHeaders};
use minutes_shared::jobs::JobState;
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::service::*;
use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_upload_to_done_with_downloads_events_and_the_email_with_its_pdf() {
    let mut service = Service::start(Store::S3).await;
    service.spawn_worker(&[]);
    let to = mail::recipient("service");
    let id = service.submit("meeting.flac", Some(&to)).await;
    let events = service.http.get(format!("{}/api/v1/jobs/{id}/events", service.base)).send();
    let events = tokio::time::timeout(Duration::from_secs(300), async {
        events.await.unwrap().text().await.unwrap()
    })
    .await
    .expect("the event stream ends with the job");
    let job = service.wait_final(id, Duration::from_secs(60)).await;
    assert_eq!(job.state, JobState::Done, "{}", service.logs());
    assert_eq!(job.percent, 100.0);
    assert!(job.media_duration.is_some_and(|d| (d - 62.0).abs() < 2.0), "{:?}", job.media_duration);
    for stage in ["decode", "transcribe", "summarize", "render", "notify"] {
        assert!(events.contains(&format!("\"stage\":\"{stage}\"")), "{stage} missing:\n{events}");
    }
    assert!(events.contains("event: end") && events.contains("\"state\":\"done\""), "{events}");

    let pdf = service.download(id, "minutes.pdf").await;
    assert_eq!(pdf.status(), reqwest::StatusCode::OK);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    let pdf = pdf.bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    let transcript = service.download(id, "transcript.txt").await.text().await.unwrap();
    assert!(transcript.to_lowercase().contains("budget"), "{transcript}");
    for file in ["minutes.json", "transcript.srt", "transcript.vtt", "transcript.json"] {
        assert_eq!(service.download(id, file).await.status(), reqwest::StatusCode::OK, "{file}");
    }

    let messages = mail::received(&to);
    assert_eq!(messages.len(), 1, "one email");
    let message = MessageParser::default().parse(&messages[0]).expect("parses");
    assert_eq!(message.subject(), Some("Minutes: Service test"));
    let attachment = message.attachments().next().expect("the PDF is attached");
    assert_eq!(attachment.attachment_name(), Some("meeting.pdf"));
    assert_eq!(
        Sha256::digest(attachment.contents()),
        Sha256::digest(&pdf),
        "the attached PDF is the stored one"
    );
    let text = message.body_text(0).expect("text part");
    assert!(text.contains(&format!("https://minutes.example.test/jobs/{id}")), "{text}");
    service.stop().await;
}

/// A user at their running limit waits; another user's job goes ahead meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_at_the_running_limit_waits_without_holding_up_others() {
    let mut service = Service::start(Store::Local).await;
    for _ in 0..2 {
        service.spawn_worker(&[("MINUTES_BEAM_SIZE", "1"), ("MINUTES_MAX_RUNNING_PER_USER", "1")]);
    }
    let to = mail::recipient("limit");
    let mut ann = Vec::new();
    for _ in 0..3 {
        ann.push(service.submit("formats/hello_s16_16k.wav", Some(&to)).await);
    }
    let bob_client = service.other_user("bob@example.com").await;
    let bob = service.submit_as(&bob_client, "formats/hello_s16_16k.wav", Some(&to)).await;
    let mut spans = Vec::new();
    for id in &ann {
        let job = service.wait_final(*id, Duration::from_secs(300)).await;
        assert_eq!(job.state, JobState::Done, "{:?}\n{}", job.failure_reason, service.logs());
        spans.push((job.started_at.unwrap(), job.finished_at.unwrap()));
    }
    spans.sort();
    for pair in spans.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "ann's jobs overlapped: {spans:?}");
    }
    let bob = service.wait_final(bob, Duration::from_secs(300)).await;
    assert_eq!(bob.state, JobState::Done);
    let last_of_ann = spans.last().unwrap().1;
    assert!(
        bob.started_at.unwrap() < last_of_ann,
        "bob's job waited for all of ann's: {spans:?} {:?}",
        bob.started_at
    );
    eprintln!(
        "running limit: ann's jobs ran one at a time {spans:?}; bob's started {:?}",
        bob.started_at
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_share_20_jobs_and_each_runs_exactly_once() {
    let mut service = Service::start(Store::Local).await;
    for _ in 0..3 {
        service.spawn_worker(&[("MINUTES_BEAM_SIZE", "1")]);
    }
    let to = mail::recipient("share");
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(service.submit("formats/hello_s16_16k.wav", Some(&to)).await);
    }
    let mut by_worker = std::collections::BTreeMap::<String, usize>::new();
    for id in &ids {
        let job = service.wait_final(*id, Duration::from_secs(300)).await;
        assert_eq!(job.state, JobState::Done, "{:?}\n{}", job.failure_reason, service.logs());
        assert_eq!(job.attempts, 1, "job {id} ran once");
        *by_worker.entry(job.worker_name.clone().unwrap_or_default()).or_default() += 1;
        let done_events: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM job_events WHERE job_id = $1 AND stage = 'done'",
        )
        .bind(id)
        .fetch_one(service.repo.pool())
        .await
        .unwrap();
        assert_eq!(done_events, 1);
    }
    eprintln!("jobs per worker: {by_worker:?}");
    assert!(by_worker.len() >= 2, "the work was shared: {by_worker:?}");
    assert_eq!(mail::received(&to).len(), 20, "one email per job");
    service.stop().await;
}

/// One request id from the upload's HTTP request to the worker's log lines for its job:
/// the caller's X-Request-Id comes back in the response, is in the API's JSON log line
/// for the upload, and in the `job` span of every worker line about the job (its stages
/// included). Without the caller's id, a new one is made and returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_one_request_id_from_the_upload_to_the_workers_job_spans() {
    let mut service = Service::start(Store::Local).await;
    // The recognizer's own lines are debug ones: the stage span is seen on them.
    service
        .spawn_worker(&[("MINUTES_LOG_FORMAT", "json"), ("RUST_LOG", "info,minutes_worker=debug")]);
    let request_id = format!("trace-{}", Uuid::new_v4().simple());
    let bytes = std::fs::read(fixture("formats/hello_s16_16k.wav")).expect("fixture");
    let form =
        || Form::new().part("file", Part::bytes(bytes.clone()).file_name("hello.wav".to_string()));
    let url = format!("{}/api/v1/jobs", service.base);
    let response = service
        .http
        .post(&url)
        .header("x-request-id", &request_id)
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
    assert_eq!(response.headers()["x-request-id"], request_id.as_str());
    let id: Uuid = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().parse().unwrap();
    let job = service.wait_final(id, Duration::from_secs(120)).await;
    assert_eq!(job.state, JobState::Done, "{}", service.logs());
    assert_eq!(job.request_id.as_deref(), Some(request_id.as_str()));

    let api = std::fs::read_to_string(api_log()).expect("API log");
    let upload = lines_in_span(&api, "request_id", &request_id);
    assert!(
        upload.iter().any(|line| line["fields"]["message"] == "upload queued"
            && line["fields"]["job_id"] == id.to_string().as_str()),
        "the API's upload line names the request: {upload:?}"
    );
    let worker = lines_in_span(&service.workers[0].log(), "request_id", &request_id);
    let messages: Vec<&str> =
        worker.iter().filter_map(|line| line["fields"]["message"].as_str()).collect();
    for expected in ["started", "stage finished", "done"] {
        assert!(messages.contains(&expected), "{expected:?} missing from {messages:?}");
    }
    for line in &worker {
        let spans = line["spans"].as_array().unwrap();
        assert!(spans.iter().any(|span| span["name"] == "job"
            && span["job_id"] == id.to_string().as_str()
            && span["attempt"] == 1));
    }
    assert!(
        worker.iter().any(|line| line["fields"]["message"] == "stage finished"
            && line["fields"]["stage"] == "transcribe"),
        "{messages:?}"
    );
    assert!(
        worker
            .iter()
            .any(|line| line["span"]["name"] == "stage" && line["span"]["stage"] == "transcribe"),
        "the recognizer's own lines are in the transcribe stage's span"
    );

    // No id given: one is made, returned, and recorded on the job.
    let response = service.http.post(&url).multipart(form()).send().await.unwrap();
    let made = response.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(Uuid::parse_str(&made).is_ok(), "{made}");
    let id: Uuid = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(service.job(id).await.request_id, Some(made));
    service.stop().await;
}

/// The worker's side of the model hole: a job whose stored options name a path (written
/// before the API checked them, or by hand) fails with `model_unavailable` and never
/// reaches the file system; an offered name works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_refuses_a_model_that_is_not_offered_without_touching_the_file_system() {
    let mut service = Service::start(Store::Local).await;
    let path_job = service.submit("formats/hello_44k.m4a", None).await;
    let named_job = service.submit("formats/hello_44k.m4a", None).await;
    for (id, options) in
        [(path_job, r#"{"model": "/etc"}"#), (named_job, r#"{"model": "tiny.en"}"#)]
    {
        sqlx::query("UPDATE jobs SET options = $2::jsonb WHERE id = $1")
            .bind(id)
            .bind(options)
            .execute(service.repo.pool())
            .await
            .unwrap();
    }
    service.spawn_worker(&[]);
    let failed = service.wait_final(path_job, Duration::from_secs(120)).await;
    assert_eq!(failed.state, JobState::Failed);
    let reason = failed.failure_reason.map(|r| r.to_string()).unwrap_or_default();
    assert!(
        reason.starts_with("model_unavailable: the model \"/etc\" is not offered here"),
        "{reason}"
    );
    assert_eq!(service.wait_final(named_job, Duration::from_secs(120)).await.state, JobState::Done);
    service.stop().await;
}

/// The hole: the language model's error text (its endpoint, the server's words) landed in
/// the PDF. Now the minutes say in general words that the offline summarizer wrote them;
/// the error itself is in the job's events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_summarizer_is_explained_in_the_events_and_its_error_kept_out_of_the_pdf() {
    let mut service = Service::start(Store::Local).await;
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        format!("http://127.0.0.1:{port}/v1")
    };
    service.spawn_worker(&[
        ("MINUTES_LLM_URL", &dead),
        ("MINUTES_LLM_ATTEMPTS", "1"),
        ("MINUTES_LLM_BACKOFF_MS", "10"),
    ]);
    let bytes = std::fs::read(fixture("formats/hello_s16_16k.wav")).unwrap();
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(bytes).file_name("hello.wav"))
        .text("summarizer", "openai");
    let response =
        service.http.post(format!("{}/api/v1/jobs", service.base)).multipart(form).send().await;
    let job: Value = response.unwrap().json().await.unwrap();
    let id: Uuid = job["id"].as_str().unwrap().parse().unwrap();
    let job = service.wait_final(id, Duration::from_secs(300)).await;
    assert_eq!(job.state, JobState::Done, "{}", service.logs());

    let minutes: Value =
        serde_json::from_slice(&service.download(id, "minutes.json").await.bytes().await.unwrap())
            .unwrap();
    let reason = minutes["summarizer"]["fallback_reason"].as_str().unwrap_or_default();
    assert_eq!(reason, "openai (default): it could not be reached", "{minutes}");
    let pdf = service.download(id, "minutes.pdf").await.bytes().await.unwrap();
    let path = service.dir.join("minutes.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let text = Command::new("pdftotext").arg(&path).arg("-").output().unwrap();
    let text =
        String::from_utf8_lossy(&text.stdout).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("it could not be reached"), "{text}");
    assert!(!text.contains("127.0.0.1") && !text.contains("cannot reach"), "{text}");
    let events = service.repo.events(id, 0).await.unwrap();
    assert!(
        events.iter().any(|e| e.message.contains(&format!("cannot reach {dead}"))),
        "the detail is in the job's events: {events:?}"
    );
    service.stop().await;
}

/// An upload's `speakers` field reaches the worker: `off` gives a transcript without
/// speakers, `2` one with two and minutes with two participants; a bad value is a 400
/// naming the field, before anything is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_speakers_upload_option_turns_diarization_off_or_fixes_the_count() {
    let mut service = Service::start(Store::Local).await;
    let upload = |speakers: &str| {
        let bytes = std::fs::read(fixture("speakers/three_voices.flac")).expect("fixture");
        let form = Form::new()
            .part("file", Part::bytes(bytes).file_name("three_voices.flac"))
            .text("speakers", speakers.to_string());
        service.http.post(format!("{}/api/v1/jobs", service.base)).multipart(form).send()
    };
    let bad = upload("lots").await.unwrap();
    assert_eq!(bad.status(), reqwest::StatusCode::BAD_REQUEST);
    assert!(bad.text().await.unwrap().contains("speakers: expected auto, off or a number"));
    let mut ids = Vec::new();
    for speakers in ["off", "2"] {
        let response = upload(speakers).await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
        let job: Value = response.json().await.unwrap();
        ids.push(job["id"].as_str().unwrap().parse::<Uuid>().unwrap());
    }
    service.spawn_worker(&[]);
    let mut found = Vec::new();
    for &id in &ids {
        let job = service.wait_final(id, Duration::from_secs(180)).await;
        assert_eq!(job.state, JobState::Done, "{}", service.logs());
        let transcript: Value = service.download(id, "transcript.json").await.json().await.unwrap();
        let minutes: Value = service.download(id, "minutes.json").await.json().await.unwrap();
        let count = |value: &Value, key: &str| value[key].as_array().map_or(0, Vec::len);
        found.push((count(&transcript, "speakers"), count(&minutes, "participants")));
    }
    assert_eq!(found, [(0, 0), (2, 2)], "(speakers, participants) for off and 2");
    service.stop().await;
}
