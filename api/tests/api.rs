//! Integration tests of the API against real services: each test serves the application on
//! port 0 with a fresh Postgres database, its own Redis queue name and its own local object
//! store (the S3-compatible server process for the S3 test).

// In a test, a failed expectation is the test failing: say what was expected and stop.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use minutes_api::settings::{AccessSettings, ApiSettings};
use minutes_api::Application;
use minutes_shared::accounts::{Role, User};
use minutes_shared::jobs::{Claim, JobRepo, NewJob};
use minutes_shared::queue::{JobQueue, QueueSettings};
use minutes_shared::settings::ServiceSettings;
use minutes_shared::storage::{artifact_key, Storage};
use minutes_shared::testing::{
    add_user, files_under, queue_name, redis_url, TestDatabase, PASSWORD,
};
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

#[path = "api/form_limits.rs"]
mod form_limits;
#[path = "api/invariants.rs"]
mod invariants;
#[path = "api/limits.rs"]
mod limits;
#[path = "api/options.rs"]
mod options;
#[path = "api/streams.rs"]
mod streams;
#[path = "api/transcript.rs"]
mod transcript;

struct TestApp {
    base: String,
    /// Signed in as `user` with an API token.
    http: reqwest::Client,
    /// No credentials, no redirects followed.
    anon: reqwest::Client,
    user: User,
    repo: JobRepo,
    storage: Storage,
    store_dir: PathBuf,
    queue: String,
    db: TestDatabase,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The server task: it ends once the API has shut down.
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(name)
}

fn settings(db: &TestDatabase, store_dir: &Path, queue: &str) -> ApiSettings {
    ApiSettings {
        log: Default::default(),
        service: ServiceSettings {
            database_url: db.url.clone(),
            database_max_connections: 5,
            redis_url: redis_url(),
            queue: queue.to_string(),
            heartbeat_secs: 10,
            missed_heartbeats: 3,
            stranded_secs: 120,
            storage_url: store_dir.display().to_string(),
            s3_endpoint: None,
            s3_region: None,
            s3_access_key_id: None,
            s3_secret_access_key: None,
            public_url: None,
            models: "tiny.en,base".parse().unwrap(),
            summarizers: "extractive,openai".parse().unwrap(),
        },
        listen: "127.0.0.1:0".parse().unwrap(),
        max_upload_bytes: 4 * 1024 * 1024 * 1024,
        reconcile_secs: 5,
        shutdown_grace_secs: 5,
        access: AccessSettings {
            // Tests upload many fixtures in a row; the limit tests set their own.
            uploads_per_minute: 0,
            user_quota_bytes: 0,
            ..AccessSettings::from_environment().unwrap()
        },
    }
}

/// A client that sends `token` as a bearer token.
fn bearer_client(token: &str) -> reqwest::Client {
    minutes_shared::tls::use_ring();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl TestApp {
    async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    async fn spawn_with(configure: impl FnOnce(&mut ApiSettings)) -> TestApp {
        minutes_shared::tls::use_ring();
        let db = TestDatabase::create().await.expect("Postgres (started by scripts/test)");
        let store_dir =
            std::env::temp_dir().join(format!("minutes-api-{}", Uuid::new_v4().simple()));
        let queue = queue_name();
        let mut settings = settings(&db, &store_dir, &queue);
        configure(&mut settings);
        let storage = Storage::new(&settings.service.storage().unwrap()).expect("store");
        let app = Application::build(settings).await.expect("the app starts");
        let base = format!("http://{}", app.address().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        let (user, token) = add_user(&pool, "ann@example.com", Role::Member).await.unwrap();
        TestApp {
            base,
            http: bearer_client(&token),
            anon: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            user,
            repo: JobRepo::new(pool),
            storage,
            store_dir,
            queue,
            db,
            stop: Some(stop),
            served: Some(served),
        }
    }

    /// Another user of this installation and a client signed in as them with a token.
    async fn other_user(&self, email: &str, role: Role) -> (User, reqwest::Client) {
        let (user, token) = add_user(self.repo.pool(), email, role).await.unwrap();
        (user, bearer_client(&token))
    }

    /// Signs in through the sign-in page: the session cookie and the page's form token.
    async fn sign_in(&self, email: &str) -> Session {
        let login = self.anon.get(self.url("/login")).send().await.unwrap();
        let login_cookie = set_cookie_pair(&login, "minutes_login");
        let page = login.text().await.unwrap();
        let form_token = hidden_value(&page, "csrf");
        let response = self
            .anon
            .post(self.url("/login"))
            .header("cookie", &login_cookie)
            .form(&[("email", email), ("password", PASSWORD), ("csrf", &form_token), ("next", "/")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "signed in");
        let set = response.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax"), "{set}");
        let cookie = set_cookie_pair(&response, "minutes_session");
        let home = self.anon.get(self.url("/")).header("cookie", &cookie).send().await.unwrap();
        let csrf = meta_value(&home.text().await.unwrap(), "csrf-token");
        Session { cookie, csrf }
    }

    /// `POST /api/v1/tokens` with HTTP Basic `email` and `password`, for a token `name`.
    async fn token_by_password(
        &self,
        email: &str,
        password: &str,
        name: &str,
    ) -> reqwest::Response {
        self.anon
            .post(self.url("/api/v1/tokens"))
            .basic_auth(email, Some(password))
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn upload(
        &self,
        name: &str,
        bytes: Vec<u8>,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        self.upload_with_key(name, bytes, fields, None).await
    }

    async fn upload_with_key(
        &self,
        name: &str,
        bytes: Vec<u8>,
        fields: &[(&str, &str)],
        key: Option<&str>,
    ) -> reqwest::Response {
        let mut form = Form::new().part("file", Part::bytes(bytes).file_name(name.to_string()));
        for (field, value) in fields {
            form = form.text(field.to_string(), value.to_string());
        }
        let mut request = self.http.post(self.url("/api/v1/jobs")).multipart(form);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.expect("upload request")
    }

    async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let response = self.http.get(self.url(path)).send().await.expect("request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn queue_depth(&self) -> u64 {
        let settings = QueueSettings::new(redis_url(), self.queue.clone());
        JobQueue::connect(&settings).await.unwrap().depth().await.unwrap()
    }

    /// Waits up to 15 s for `expected` tickets: a push the API could not make at once is
    /// made by the reconciler within 10 s, which is the promise.
    async fn wait_depth(&self, expected: u64) {
        let started = Instant::now();
        loop {
            let depth = self.queue_depth().await;
            if depth == expected || started.elapsed() > Duration::from_secs(15) {
                assert_eq!(depth, expected, "tickets on the queue");
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every file under the store's folder, relative to it.
    fn stored_files(&self) -> Vec<String> {
        files_under(&self.store_dir)
    }

    /// Signals the API to shut down and waits until it has (within its grace of 5 s,
    /// whatever is still open).
    async fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            let ended = tokio::time::timeout(Duration::from_secs(60), served).await;
            ended.expect("the API shuts down").unwrap().unwrap();
        }
    }

    async fn finish(mut self) {
        self.shut_down().await;
        self.repo.pool().close().await;
        let _ = std::fs::remove_dir_all(&self.store_dir);
        self.db.drop_database().await.expect("drop db");
    }
}

/// A signed-in browser's cookie and form token.
struct Session {
    cookie: String,
    csrf: String,
}

/// `name=value` of a `Set-Cookie` the response carries.
fn set_cookie_pair(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_string()
}

fn attribute_after(page: &str, marker: &str, attribute: &str) -> String {
    let at = page.find(marker).unwrap_or_else(|| panic!("{marker} not in the page"));
    let rest = &page[at..];
    let start = rest.find(&format!("{attribute}=\"")).unwrap() + attribute.len() + 2;
    rest[start..start + rest[start..].find('"').unwrap()].to_string()
}

fn hidden_value(page: &str, name: &str) -> String {
    attribute_after(page, &format!("name=\"{name}\""), "value")
}

fn meta_value(page: &str, name: &str) -> String {
    attribute_after(page, &format!("<meta name=\"{name}\""), "content")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn an_upload_is_stored_queued_and_shown() {
    let app =
        TestApp::spawn_with(|s| s.access.mail_allowed_recipients = "example.com".parse().unwrap())
            .await;
    let bytes = read(&fixture("formats/hello_s16_16k.wav"));
    let response = app
        .upload(
            "weekly sync.wav",
            bytes.clone(),
            &[("title", "Weekly sync"), ("email", "team@example.com")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let job: Value = response.json().await.unwrap();
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/api/v1/jobs/{id}"));
    assert_eq!(job["state"], "queued");
    assert_eq!(job["filename"], "weekly sync.wav");
    assert_eq!(job["content_type"], "audio/wav");
    assert_eq!(job["size_bytes"], bytes.len());
    assert_eq!(job["title"], "Weekly sync");
    assert_eq!(job["links"]["events"], format!("/api/v1/jobs/{id}/events"));
    app.wait_depth(1).await;

    let (status, shown) = app.get_json(&location).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["id"], id.as_str());
    let stored = app.storage.get(&format!("jobs/{id}/upload")).await.expect("stored");
    assert_eq!(stored.as_ref(), bytes.as_slice(), "the stored object is the upload, byte for byte");
    let (_, page) = app.get_json("/api/v1/jobs?state=queued").await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 1);
    let (_, none) = app.get_json("/api/v1/jobs?state=done").await;
    assert!(none["jobs"].as_array().unwrap().is_empty());
    let (status, error) = app.get_json("/api/v1/jobs?state=paused").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"], "bad_request");
    app.finish().await;
}

#[tokio::test]
async fn every_supported_fixture_is_accepted_by_its_magic_bytes() {
    let app = TestApp::spawn().await;
    let dir = fixture("formats");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("hello_"))
        .collect();
    names.sort();
    for name in &names {
        // A misleading name: the type comes from the bytes.
        let response = app.upload("recording.bin", read(&dir.join(name)), &[]).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED, "{name}");
    }
    app.wait_depth(names.len() as u64).await;
    app.finish().await;
}

/// R3: the same upload twice with one Idempotency-Key makes one job.
#[tokio::test]
async fn r3_one_idempotency_key_gives_one_job() {
    let app = TestApp::spawn().await;
    let bytes = read(&fixture("formats/hello_44k.flac"));
    let first = app.upload_with_key("a.flac", bytes.clone(), &[], Some("upload-7")).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.unwrap();
    let second = app.upload_with_key("a.flac", bytes, &[], Some("upload-7")).await;
    assert_eq!(second.status(), StatusCode::ACCEPTED);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    let second: Value = second.json().await.unwrap();
    assert_eq!(first["id"], second["id"]);
    let (_, page) = app.get_json("/api/v1/jobs").await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 1, "one job");
    assert_eq!(app.stored_files().len(), 1, "one stored upload");
    app.finish().await;
}

/// R12: renamed non-media, wrong Content-Type, empty files are refused at upload and
/// nothing is stored; a truncated recording is accepted (its header is fine) and fails in
/// the worker (see the worker's service tests).
#[tokio::test]
async fn r12_non_media_and_malformed_uploads_are_refused_with_nothing_stored() {
    let app = TestApp::spawn().await;
    let cases: [(&str, Vec<u8>, StatusCode); 5] = [
        (
            "setup.mp3",
            b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "page.mp3",
            b"<!doctype html><html><body>hi</body></html>".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "report.mp3",
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        ("notes.mp3", read(&fixture("bad/notes.mp3")), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ("empty.mp3", Vec::new(), StatusCode::BAD_REQUEST),
    ];
    for (name, bytes, expected) in cases {
        let response = app.upload(name, bytes, &[]).await;
        assert_eq!(response.status(), expected, "{name}");
        let body: Value = response.json().await.expect("a JSON error");
        assert!(body["error"].is_string() && body["message"].is_string(), "{body}");
    }
    // Not multipart at all.
    let response = app
        .http
        .post(app.url("/api/v1/jobs"))
        .header("content-type", "audio/mpeg")
        .body(read(&fixture("formats/hello_11k.mp3")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // A form cut off in the middle of the file.
    let response = app
        .http
        .post(app.url("/api/v1/jobs"))
        .header("content-type", "multipart/form-data; boundary=XYZ")
        .body(b"--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF\x24\0\0\0WAVEfmt ".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // Bad fields after a good file: the stored file is removed again.
    let response = app
        .upload("a.wav", read(&fixture("formats/hello_u8_8k.wav")), &[("email", "not an address")])
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let truncated = app.upload("t.flac", read(&fixture("bad/truncated.flac")), &[]).await;
    assert_eq!(truncated.status(), StatusCode::ACCEPTED, "the header is valid");
    let files = app.stored_files();
    assert_eq!(files.len(), 1, "only the truncated recording is stored: {files:?}");
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM pending_uploads")
        .fetch_one(app.repo.pool())
        .await
        .unwrap();
    assert_eq!(pending, 0, "no upload left without a job");
    app.finish().await;
}

/// R11 (limit part): over the maximum size the answer is 413 and the partial upload is
/// removed. (The 2 GiB memory figure is measured by scripts/bench-service.)
#[tokio::test]
async fn r11_an_upload_over_the_limit_is_413_and_leaves_nothing() {
    let app = TestApp::spawn_with(|s| s.max_upload_bytes = 10 * 1024 * 1024).await;
    let mut bytes = read(&fixture("formats/hello_s16_16k.wav"));
    bytes.resize(25 * 1024 * 1024, 0);
    let response = app.upload("long.wav", bytes.clone(), &[]).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "too_large");
    // Without Content-Length the stream is counted: send it chunked.
    let stream = futures_util::stream::iter(
        bytes.chunks(1024 * 1024).map(|c| Ok::<_, std::io::Error>(c.to_vec())).collect::<Vec<_>>(),
    );
    let form = Form::new()
        .part("file", Part::stream(reqwest::Body::wrap_stream(stream)).file_name("long.wav"));
    let response = app.http.post(app.url("/api/v1/jobs")).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(app.stored_files().is_empty(), "{:?}", app.stored_files());
    let (_, page) = app.get_json("/api/v1/jobs").await;
    assert!(page["jobs"].as_array().unwrap().is_empty());
    app.finish().await;
}

/// R13: whatever the file name, the stored key is server-made, nothing lands outside the
/// store, and the download's Content-Disposition is one well-formed header.
#[tokio::test]
async fn r13_hostile_file_names_never_reach_a_path_or_a_header() {
    let app = TestApp::spawn().await;
    let long = "x".repeat(1000) + ".wav";
    let names = [
        "../../etc/passwd",
        "..\\..\\x.wav",
        "%2e%2e/%2e%2e/y.wav",
        "a\0b.wav",
        "a\r\nContent-Type: text/html\r\n\r\n.wav",
        long.as_str(),
        "réunion 🎙️ équipe.wav",
    ];
    let bytes = read(&fixture("formats/hello_u8_8k.wav"));
    for name in names {
        let response = app.upload(name, bytes.clone(), &[]).await;
        if name.contains(['\0', '\r', '\n']) && response.status() == StatusCode::BAD_REQUEST {
            // The form parser refuses control characters in a part's header: the upload
            // is refused and nothing is stored (checked below).
            continue;
        }
        assert_eq!(response.status(), StatusCode::ACCEPTED, "{name:?}");
        let job: Value = response.json().await.unwrap();
        let id: Uuid = job["id"].as_str().unwrap().parse().unwrap();
        let filename = job["filename"].as_str().unwrap();
        assert!(!filename.contains(['/', '\\', '\0', '\r', '\n']), "{filename:?}");
        assert!(filename.chars().count() <= 200);
        let stored = app.repo.get(id).await.unwrap().unwrap();
        assert_eq!(stored.source_key, format!("jobs/{id}/upload"));

        // Pretend a worker made the PDF, then download it.
        let Claim::Leased(lease, _) =
            app.repo.claim(id, "w", Duration::from_secs(30), 3).await.unwrap()
        else {
            panic!("claimable")
        };
        app.storage
            .put(&artifact_key(id, "minutes.pdf"), bytes::Bytes::from_static(b"%PDF-1.7"))
            .await
            .unwrap();
        app.repo
            .store_artifact(lease, "minutes.pdf", &artifact_key(id, "minutes.pdf"))
            .await
            .unwrap();
        let response = app
            .http
            .get(app.url(&format!("/api/v1/jobs/{id}/files/minutes.pdf")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/pdf");
        let dispositions: Vec<_> =
            response.headers().get_all("content-disposition").iter().collect();
        assert_eq!(dispositions.len(), 1);
        let disposition = dispositions[0].to_str().expect("ASCII");
        assert!(disposition.starts_with("attachment; filename=\""), "{disposition}");
        assert!(!disposition.contains(['\r', '\n', '/', '\\']), "{disposition}");
        assert_eq!(response.headers().get_all("content-type").iter().count(), 1);
        assert_eq!(response.bytes().await.unwrap().as_ref(), b"%PDF-1.7");
    }
    for file in app.stored_files() {
        assert!(
            file.starts_with("jobs/")
                && (file.ends_with("/upload") || file.ends_with("/minutes.pdf")),
            "{file}"
        );
    }
    assert!(!Path::new("/etc/passwd.wav").exists());
    app.finish().await;
}

/// R10: a job committed but never pushed (the API died in between) is pushed by the
/// reconciler within 10 s.
#[tokio::test]
async fn r10_a_job_never_pushed_is_enqueued_within_10_seconds() {
    let app = TestApp::spawn().await;
    let id = Uuid::new_v4();
    app.storage
        .put(&format!("jobs/{id}/upload"), bytes::Bytes::from_static(b"RIFF"))
        .await
        .unwrap();
    let started = Instant::now();
    app.repo
        .create(&NewJob {
            id,
            source_key: format!("jobs/{id}/upload"),
            original_filename: "a.wav".into(),
            content_type: "audio/wav".into(),
            size_bytes: 4,
            title: None,
            language: None,
            notify_email: None,
            options: Default::default(),
            idempotency_key: None,
            owner_id: Some(app.user.id),
            request_id: None,
        })
        .await
        .unwrap();
    loop {
        if app.repo.get(id).await.unwrap().unwrap().enqueued_at.is_some() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "not enqueued within 10 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.queue_depth().await, 1);
    eprintln!("R10: enqueued {:.1} s after the commit", started.elapsed().as_secs_f64());
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
        for (stage, percent) in [("decode", 5.0), ("transcribe", 50.0), ("render", 95.0)] {
            tokio::time::sleep(Duration::from_millis(100)).await;
            repo.progress(lease, stage, percent, stage).await.unwrap();
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
        let concrete = path.replace("{id}", &id).replace("{file}", "minutes.pdf");
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

/// Makes `owner`'s job done with every downloadable artifact stored, acting as a worker
/// through the repository (the worker's own tests run the real pipeline).
async fn finished_job(app: &TestApp, client: &reqwest::Client) -> Value {
    let form = Form::new()
        .part("file", Part::bytes(read(&fixture("formats/hello_u8_8k.wav"))).file_name("a.wav"));
    let response = client.post(app.url("/api/v1/jobs")).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let id: Uuid = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().parse().unwrap();
    let Claim::Leased(lease, _) =
        app.repo.claim(id, "w", Duration::from_secs(30), 3).await.unwrap()
    else {
        panic!("claimable")
    };
    for name in [
        "minutes.pdf",
        "minutes.json",
        "transcript.txt",
        "transcript.srt",
        "transcript.vtt",
        "transcript.json",
    ] {
        let key = artifact_key(id, name);
        app.storage.put(&key, bytes::Bytes::from(format!("{name} of {id}"))).await.unwrap();
        app.repo.store_artifact(lease, name, &key).await.unwrap();
    }
    app.repo.finish(lease, None).await.unwrap();
    let response = client.get(app.url(&format!("/api/v1/jobs/{id}"))).send().await.unwrap();
    response.json().await.unwrap()
}

/// R14: every route that takes an id, as user B (token and signed-in session) against user
/// A's job: 404 every time, never 403, never data; A and an admin are served. Signed
/// download links work without credentials; altered or expired ones are 403.
#[tokio::test]
async fn r14_another_users_job_is_404_on_every_route_and_bad_links_are_403() {
    let app = TestApp::spawn().await;
    let job = finished_job(&app, &app.http).await;
    let id = job["id"].as_str().unwrap().to_string();
    let (bob, bob_http) = app.other_user("bob@example.com", Role::Member).await;
    let (_, admin_http) = app.other_user("root@example.com", Role::Admin).await;
    let bob_session = app.sign_in("bob@example.com").await;

    // Every documented route with {id}, every method, plus the pages and every file.
    let (_, doc) = app.get_json("/api/v1/openapi.json").await;
    let mut routes: Vec<(reqwest::Method, String)> = Vec::new();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        if !path.contains("{id}") || path.starts_with("/api/v1/tokens") {
            continue;
        }
        for method in operations.as_object().unwrap().keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            if path.contains("{file}") {
                for file in [
                    "minutes.pdf",
                    "minutes.json",
                    "transcript.txt",
                    "transcript.srt",
                    "transcript.vtt",
                    "transcript.json",
                ] {
                    routes
                        .push((method.clone(), path.replace("{id}", &id).replace("{file}", file)));
                }
            } else {
                routes.push((method.clone(), path.replace("{id}", &id)));
            }
        }
    }
    routes.push((reqwest::Method::GET, format!("/jobs/{id}")));
    routes.push((reqwest::Method::POST, format!("/jobs/{id}/retry")));
    assert!(routes.len() >= 14, "{routes:?}");
    let mut report = Vec::new();
    for (method, path) in &routes {
        let body = serde_json::json!({"from": "summarize"});
        let by_token =
            bob_http.request(method.clone(), app.url(path)).json(&body).send().await.unwrap();
        let token_status = by_token.status();
        let token_body = by_token.text().await.unwrap();
        let by_session = app
            .anon
            .request(method.clone(), app.url(path))
            .header("cookie", &bob_session.cookie)
            .header("x-csrf-token", &bob_session.csrf)
            .form(&[("csrf", bob_session.csrf.as_str())])
            .send()
            .await
            .unwrap();
        let session_status = by_session.status();
        let session_body = by_session.text().await.unwrap();
        assert_eq!(
            token_status,
            StatusCode::NOT_FOUND,
            "{method} {path} as B by token: {token_body}"
        );
        assert_eq!(
            session_status,
            StatusCode::NOT_FOUND,
            "{method} {path} as B by session: {session_body}"
        );
        for body in [&token_body, &session_body] {
            assert!(
                !body.contains("a.wav") && !body.contains(" of "),
                "{method} {path} leaked: {body}"
            );
        }
        report.push(format!("{method} {path}: token {token_status}, session {session_status}"));
    }
    eprintln!("R14 sweep as user B against user A's job:\n  {}", report.join("\n  "));
    // Without credentials: 401 for the API, the sign-in page for pages.
    let anonymous = app.anon.get(app.url(&format!("/api/v1/jobs/{id}"))).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let page = app.anon.get(app.url(&format!("/jobs/{id}"))).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert!(page.headers()["location"].to_str().unwrap().starts_with("/login?next="));
    // B's own list has nothing; A's and the admin's have the job.
    let bob_list: Value =
        bob_http.get(app.url("/api/v1/jobs")).send().await.unwrap().json().await.unwrap();
    assert!(bob_list["jobs"].as_array().unwrap().is_empty());
    let bob_page = bob_http.get(app.url("/jobs")).send().await.unwrap().text().await.unwrap();
    assert!(!bob_page.contains(&id), "B's recent jobs page lists nothing of A's");
    let admin_view = admin_http.get(app.url(&format!("/api/v1/jobs/{id}"))).send().await.unwrap();
    assert_eq!(admin_view.status(), StatusCode::OK);
    assert_eq!(app.get_json(&format!("/api/v1/jobs/{id}")).await.0, StatusCode::OK);

    // A's signed link works with no credentials, for its file only.
    let link = job["links"]["files"]["minutes.pdf"].as_str().unwrap().to_string();
    assert!(link.contains("&expires=") && link.contains("&sig="), "{link}");
    let fetched = app.anon.get(app.url(&link)).send().await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(fetched.text().await.unwrap(), format!("minutes.pdf of {id}"));
    let (path, query) = link.split_once('?').unwrap();
    let param = |name: &str| {
        query.split('&').find_map(|p| p.strip_prefix(&format!("{name}="))).unwrap().to_string()
    };
    let (user, expires, sig) = (param("user"), param("expires"), param("sig"));
    let mut flipped = sig.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    let other_job = finished_job(&app, &bob_http).await;
    let other_id = other_job["id"].as_str().unwrap();
    let expired = {
        let key: Vec<u8> =
            sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = 'download_links'")
                .fetch_one(app.repo.pool())
                .await
                .unwrap();
        let signer = minutes_api::signing::Signer::new(key, 900);
        let past = chrono::Utc::now().timestamp() - 1;
        format!(
            "{path}?{}",
            signer.sign_until(
                user.parse().unwrap(),
                &artifact_key(id.parse().unwrap(), "minutes.pdf"),
                past
            )
        )
    };
    let tampered = [
        ("signature changed", format!("{path}?user={user}&expires={expires}&sig={flipped}")),
        (
            "expiry moved",
            format!(
                "{path}?user={user}&expires={}&sig={sig}",
                expires.parse::<i64>().unwrap() + 3600
            ),
        ),
        ("user changed", format!("{path}?user={}&expires={expires}&sig={sig}", bob.id)),
        ("file changed", format!("{}?{query}", path.replace("minutes.pdf", "transcript.txt"))),
        ("job changed", format!("{}?{query}", path.replace(&id, other_id))),
        ("signature cut", format!("{path}?user={user}&expires={expires}&sig=")),
        ("garbage", format!("{path}?user=x&expires=y&sig=%00")),
        ("expired", expired),
    ];
    for (what, url) in tampered {
        let response = app.anon.get(app.url(&url)).send().await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {url}: {body}");
        assert!(!body.contains(" of "), "{what}: {body}");
        eprintln!("R14 link {what}: {status}");
    }
    // B's token cannot revoke A's tokens either.
    let tokens: Value =
        app.http.get(app.url("/api/v1/tokens")).send().await.unwrap().json().await.unwrap();
    let token_id = tokens[0]["id"].as_str().unwrap();
    let revoke =
        bob_http.delete(app.url(&format!("/api/v1/tokens/{token_id}"))).send().await.unwrap();
    assert_eq!(revoke.status(), StatusCode::NOT_FOUND);
    let revoke_page = app
        .anon
        .post(app.url(&format!("/settings/tokens/{token_id}/revoke")))
        .header("cookie", &bob_session.cookie)
        .form(&[("csrf", bob_session.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke_page.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get_json("/api/v1/jobs").await.0, StatusCode::OK, "A's token still works");
    app.finish().await;
}

#[tokio::test]
async fn cookie_sessions_need_the_form_token_on_every_write() {
    let app = TestApp::spawn().await;
    let session = app.sign_in("ann@example.com").await;
    let id = app.upload("a.wav", read(&fixture("formats/hello_u8_8k.wav")), &[]).await;
    let id = id.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    app.http.post(app.url(&format!("/api/v1/jobs/{id}/cancel"))).send().await.unwrap();
    let with_cookie = |method: reqwest::Method, path: &str| {
        app.anon.request(method, app.url(path)).header("cookie", &session.cookie)
    };
    // Forms without the token, with a wrong one: 403, nothing changes.
    for token in [None, Some("wrong")] {
        let mut form: Vec<(&str, &str)> = vec![("name", "x")];
        if let Some(token) = token {
            form.push(("csrf", token));
        }
        for path in [format!("/jobs/{id}/retry"), "/settings/tokens".into(), "/logout".into()] {
            let response =
                with_cookie(reqwest::Method::POST, &path).form(&form).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path} with {token:?}");
        }
        let api = with_cookie(reqwest::Method::POST, &format!("/api/v1/jobs/{id}/retry"))
            .send()
            .await
            .unwrap();
        assert_eq!(api.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(
        app.repo.get(id.parse().unwrap()).await.unwrap().unwrap().state.as_str(),
        "cancelled"
    );
    // The upload form: no token, or the token after the file: 403 and nothing stored.
    let before = app.stored_files();
    let wav = read(&fixture("formats/hello_u8_8k.wav"));
    for with_token_after in [false, true] {
        let mut form = Form::new().part("file", Part::bytes(wav.clone()).file_name("b.wav"));
        if with_token_after {
            form = form.text("csrf", session.csrf.clone());
        }
        let response =
            with_cookie(reqwest::Method::POST, "/upload").multipart(form).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(app.stored_files(), before, "nothing stored");
    // The sign-in form without its cookie.
    let login = app
        .anon
        .post(app.url("/login"))
        .form(&[("email", "ann@example.com"), ("password", PASSWORD), ("csrf", "made-up")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::FORBIDDEN);
    // With the token everything works.
    let retry = with_cookie(reqwest::Method::POST, &format!("/jobs/{id}/retry"))
        .form(&[("csrf", session.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.repo.get(id.parse().unwrap()).await.unwrap().unwrap().state.as_str(), "queued");
    let form = Form::new()
        .text("csrf", session.csrf.clone())
        .part("file", Part::bytes(wav).file_name("c.wav"));
    let upload =
        with_cookie(reqwest::Method::POST, "/upload").multipart(form).send().await.unwrap();
    assert_eq!(upload.status(), StatusCode::SEE_OTHER);
    let logout = with_cookie(reqwest::Method::POST, "/logout")
        .form(&[("csrf", session.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    let after = with_cookie(reqwest::Method::GET, "/").send().await.unwrap();
    assert_eq!(after.status(), StatusCode::SEE_OTHER, "the session ended");
    app.finish().await;
}

#[tokio::test]
async fn sign_in_is_throttled_per_account_and_address_and_never_says_whether_an_email_exists() {
    let app = TestApp::spawn_with(|s| {
        s.access.login_attempts_per_account = 3;
        s.access.login_attempts_per_address = 6;
    })
    .await;
    let stored: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE email = 'ann@example.com'")
            .fetch_one(app.repo.pool())
            .await
            .unwrap();
    assert!(stored.starts_with("$argon2id$v=19$"), "argon2id: {stored}");
    let app_ref = &app;
    let attempt = |email: &'static str, password: &'static str| async move {
        let login = app_ref.anon.get(app_ref.url("/login")).send().await.unwrap();
        let cookie = set_cookie_pair(&login, "minutes_login");
        let token = hidden_value(&login.text().await.unwrap(), "csrf");
        let response = app_ref
            .anon
            .post(app_ref.url("/login"))
            .header("cookie", cookie)
            .form(&[("email", email), ("password", password), ("csrf", &token)])
            .send()
            .await
            .unwrap();
        let status = response.status();
        let retry_after =
            response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
        let page = response.text().await.unwrap();
        let error =
            page.split("id=\"error\">").nth(1).map(|r| r.split('<').next().unwrap().to_string());
        (status, retry_after, error)
    };
    let wrong = attempt("ann@example.com", "not the password").await;
    let unknown = attempt("nobody@example.com", "not the password").await;
    assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
    assert_eq!((wrong.0, &wrong.2), (unknown.0, &unknown.2), "the same answer either way");
    attempt("ann@example.com", "still not it").await;
    attempt("ann@example.com", "nor this").await;
    // The account is now locked for a while, even with the right password.
    let locked = attempt("ann@example.com", PASSWORD).await;
    assert_eq!(locked.0, StatusCode::TOO_MANY_REQUESTS, "{locked:?}");
    let wait: u64 = locked.1.expect("Retry-After").parse().unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    // An unknown email locks the same way: no hint that it does not exist.
    for _ in 0..2 {
        attempt("nobody@example.com", "guess").await;
    }
    assert_eq!(attempt("nobody@example.com", "guess").await.0, StatusCode::TOO_MANY_REQUESTS);
    // Six failures from this address: every account is refused from here now.
    let (_, _) = app.other_user("carl@example.com", Role::Member).await;
    let from_here = attempt("carl@example.com", PASSWORD).await;
    assert_eq!(from_here.0, StatusCode::TOO_MANY_REQUESTS, "{from_here:?}");
    // The token route's password sign-in is under the same throttle.
    let basic = app.token_by_password("carl@example.com", PASSWORD, "cli").await;
    assert_eq!(basic.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(basic.headers().contains_key("retry-after"));
    app.finish().await;
}

#[tokio::test]
async fn tokens_are_shown_once_stored_hashed_and_stop_when_revoked() {
    let app = TestApp::spawn().await;
    let made = app.token_by_password("ann@example.com", PASSWORD, "laptop").await;
    assert_eq!(made.status(), StatusCode::CREATED);
    let made: Value = made.json().await.unwrap();
    let secret = made["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("mnt_") && secret.len() > 40, "{secret}");
    let client = bearer_client(&secret);
    assert_eq!(client.get(app.url("/api/v1/jobs")).send().await.unwrap().status(), StatusCode::OK);
    let listed = client.get(app.url("/api/v1/tokens")).send().await.unwrap().text().await.unwrap();
    assert!(listed.contains("laptop") && !listed.contains(&secret), "{listed}");
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
        .fetch_all(app.repo.pool())
        .await
        .unwrap();
    assert!(stored.iter().all(|h| h.len() == 32 && h.as_slice() != secret.as_bytes()));
    let wrong_password = app.token_by_password("ann@example.com", "nope", "x").await;
    assert_eq!(wrong_password.status(), StatusCode::UNAUTHORIZED);
    let revoked = client
        .delete(app.url(&format!("/api/v1/tokens/{}", made["id"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let after = client.get(app.url("/api/v1/jobs")).send().await.unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    assert!(after.headers().contains_key("www-authenticate"));
    // The settings page shows a new token once and lists it after.
    let session = app.sign_in("ann@example.com").await;
    let page = app
        .anon
        .post(app.url("/settings/tokens"))
        .header("cookie", &session.cookie)
        .form(&[("csrf", session.csrf.as_str()), ("name", "from the page")])
        .send()
        .await
        .unwrap();
    assert_eq!(page.headers()["cache-control"], "no-store");
    let page = page.text().await.unwrap();
    let shown = page.split("<code id=\"new-token\">").nth(1).unwrap().split('<').next().unwrap();
    assert_eq!(
        bearer_client(shown).get(app.url("/api/v1/jobs")).send().await.unwrap().status(),
        StatusCode::OK
    );
    let again = app
        .anon
        .get(app.url("/settings"))
        .header("cookie", &session.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(again.contains("from the page") && !again.contains(shown));
    app.finish().await;
}

/// Uploads `name` as the client's user.
/// Recipients: minutes went to any address the uploader typed, from the operator's sender.
/// Only the uploader's own address unless MINUTES_MAIL_ALLOWED_RECIPIENTS allows more.
#[tokio::test]
async fn recipients_limited_to_the_uploaders_own_address_unless_the_operator_allows_more() {
    let wav = read(&fixture("formats/hello_u8_8k.wav"));
    let app = TestApp::spawn().await;
    let files = app.stored_files();
    let refused = app.upload("a.wav", wav.clone(), &[("email", "anyone@elsewhere.example")]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "recipient_not_allowed", "{body}");
    assert_eq!(app.stored_files(), files, "nothing kept");
    let own = app.upload("b.wav", wav.clone(), &[("email", "ANN@example.com")]).await;
    assert_eq!(own.status(), StatusCode::ACCEPTED);
    app.finish().await;

    let app = TestApp::spawn_with(|s| {
        s.access.mail_allowed_recipients = "@elsewhere.example".parse().unwrap()
    })
    .await;
    let allowed = app.upload("c.wav", wav, &[("email", "anyone@elsewhere.example")]).await;
    assert_eq!(allowed.status(), StatusCode::ACCEPTED);
    app.finish().await;
}

#[tokio::test]
async fn a_password_change_needs_the_current_one_and_signs_out_other_browsers() {
    let app = TestApp::spawn().await;
    let here = app.sign_in("ann@example.com").await;
    let elsewhere = app.sign_in("ann@example.com").await;
    let change = |current: &'static str, new: &'static str, repeat: &'static str| {
        app.anon
            .post(app.url("/settings/password"))
            .header("cookie", &here.cookie)
            .form(&[
                ("csrf", here.csrf.as_str()),
                ("current", current),
                ("new", new),
                ("repeat", repeat),
            ])
            .send()
    };
    for (current, new, repeat, says) in [
        ("wrong password!", "a new passphrase", "a new passphrase", "current password is wrong"),
        (PASSWORD, "a new passphrase", "another phrase!!", "differ"),
        (PASSWORD, "short", "short", "too short"),
    ] {
        let refused = change(current, new, repeat).await.unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        assert!(refused.text().await.unwrap().contains(says), "{says}");
    }
    let changed = change(PASSWORD, "a new passphrase", "a new passphrase").await.unwrap();
    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    let renewed = set_cookie_pair(&changed, "minutes_session");
    let page = |cookie: String| app.anon.get(app.url("/settings")).header("cookie", cookie).send();
    assert_eq!(page(renewed).await.unwrap().status(), StatusCode::OK, "this browser stays in");
    assert_eq!(
        page(elsewhere.cookie.clone()).await.unwrap().status(),
        StatusCode::SEE_OTHER,
        "others are out"
    );
    assert_eq!(
        page(here.cookie.clone()).await.unwrap().status(),
        StatusCode::SEE_OTHER,
        "the old cookie is dead"
    );
    let stored: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE email = 'ann@example.com'")
            .fetch_one(app.repo.pool())
            .await
            .unwrap();
    assert!(
        stored.starts_with("$argon2id$")
            && minutes_shared::accounts::verify_password("a new passphrase", &stored)
    );
    app.finish().await;
}
