//! The service end to end: the API served in this process on port 0, `minutes-worker`
//! processes (real OS processes, so SIGKILL and SIGTERM are real), Postgres with a fresh
//! database per test, Redis with a queue of the test's own, a local or S3 object store and
//! the SMTP test server. Checks R1, R7 and R12 of ../shared/reliability.md, and that
//! several workers share jobs with each running once.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Instant;

use mail_parser::{MessageParser, MimeHeaders};
use minutes_api::settings::{AccessSettings, ApiSettings};
use minutes_api::Application;
use minutes_shared::accounts::Role;
use minutes_shared::jobs::{Job, JobRepo, JobState};
use minutes_shared::settings::ServiceSettings;
use minutes_shared::testing::{
    add_user, files_under, forget_queue, queue_name, redis_url, TestDatabase,
};
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::*;

/// Heartbeat of the test workers: a lease lapses after 3 missed beats (6 s).
const HEARTBEAT_SECS: &str = "2";

pub(super) struct Service {
    pub(super) base: String,
    /// Signed in (by token) as the first user, ann@example.com.
    http: reqwest::Client,
    /// That token, for the command line's MINUTES_API_TOKEN.
    pub(super) token: String,
    pub(super) repo: JobRepo,
    service: ServiceSettings,
    db: Option<TestDatabase>,
    pub(super) dir: PathBuf,
    workers: Vec<Worker>,
    stop_api: Option<tokio::sync::oneshot::Sender<()>>,
}

struct Worker {
    name: String,
    child: Child,
    log: PathBuf,
    /// Base URL of its /healthz and /metrics.
    http: String,
}

impl Worker {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

pub(super) enum Store {
    Local,
    S3,
}

/// The file the APIs of this test process log to, as JSON lines (one subscriber for the
/// process, installed by the first service started).
fn api_log() -> &'static Path {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let path = std::env::temp_dir().join(format!(
            "minutes-test-api-{}-{}.log",
            std::process::id(),
            Uuid::new_v4()
        ));
        let file = std::fs::File::create(&path).expect("API log file");
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_env_filter("info")
            .with_writer(std::sync::Mutex::new(file))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        path
    })
}

/// The JSON log lines in `text` one of whose spans has `field` equal to `value`.
fn lines_in_span(text: &str, field: &str, value: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| {
            line["spans"]
                .as_array()
                .is_some_and(|spans| spans.iter().any(|span| span[field].as_str() == Some(value)))
        })
        .collect()
}

fn bearer_client(token: &str) -> reqwest::Client {
    minutes_shared::tls::use_ring();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    reqwest::Client::builder().default_headers(headers).build().unwrap()
}

impl Service {
    pub(super) async fn start(store: Store) -> Service {
        api_log();
        let db = TestDatabase::create().await.expect("Postgres (started by scripts/test)");
        let dir = tempdir();
        let env =
            |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name}: run scripts/test"));
        let service = ServiceSettings {
            database_url: db.url.clone(),
            database_max_connections: 5,
            redis_url: redis_url(),
            queue: queue_name(),
            heartbeat_secs: 2,
            missed_heartbeats: 3,
            stranded_secs: 120,
            storage_url: match store {
                Store::Local => dir.join("store").display().to_string(),
                Store::S3 => format!("s3://{}", env("MINUTES_TEST_S3_BUCKET")),
            },
            s3_endpoint: matches!(store, Store::S3).then(|| env("MINUTES_TEST_S3_ENDPOINT")),
            s3_region: matches!(store, Store::S3).then(|| "us-east-1".to_string()),
            s3_access_key_id: matches!(store, Store::S3).then(|| env("MINUTES_TEST_S3_ACCESS_KEY")),
            s3_secret_access_key: matches!(store, Store::S3)
                .then(|| env("MINUTES_TEST_S3_SECRET_KEY")),
            public_url: Some("https://minutes.example.test/".parse().unwrap()),
            models: "tiny.en".parse().unwrap(),
        };
        let app = Application::build(ApiSettings {
            log: Default::default(),
            service: service.clone(),
            listen: "127.0.0.1:0".parse().unwrap(),
            max_upload_bytes: 1 << 30,
            reconcile_secs: 1,
            access: AccessSettings {
                uploads_per_minute: 0,
                user_quota_bytes: 0,
                // The tests mail fresh addresses at example.test (see `mail::recipient`).
                mail_allowed_recipients: "example.test".parse().unwrap(),
                ..AccessSettings::from_environment().unwrap()
            },
        })
        .await
        .expect("the API starts");
        let base = format!("http://{}", app.address().unwrap());
        let (stop_api, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        let repo = JobRepo::new(sqlx::PgPool::connect(&db.url).await.unwrap());
        let token = add_user(repo.pool(), "ann@example.com", Role::Member).await.unwrap().1;
        Service {
            base,
            http: bearer_client(&token),
            token,
            repo,
            service,
            db: Some(db),
            dir,
            workers: Vec::new(),
            stop_api: Some(stop_api),
        }
    }

    /// Starts a worker process with `extra` settings; returns once it is ready.
    pub(super) fn spawn_worker(&mut self, extra: &[(&str, &str)]) -> usize {
        let index = self.workers.len();
        let name = format!("test-worker-{index}-{}", &Uuid::new_v4().simple().to_string()[..6]);
        let log = self.dir.join(format!("{name}.log"));
        let smtp = mail::state();
        let mut command = Command::new(env!("CARGO_BIN_EXE_minutes-worker"));
        let s = &self.service;
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("MINUTES_DATABASE_URL", &s.database_url)
            .env("MINUTES_REDIS_URL", &s.redis_url)
            .env("MINUTES_QUEUE", &s.queue)
            .env("MINUTES_STORAGE_URL", &s.storage_url)
            .env("MINUTES_HEARTBEAT_SECS", HEARTBEAT_SECS)
            .env("MINUTES_MISSED_HEARTBEATS", "3")
            .env("MINUTES_PUBLIC_URL", "https://minutes.example.test/")
            .env("MINUTES_DATA_DIR", Locations::from_env().data)
            .env("MINUTES_MODEL", "tiny.en")
            .env("MINUTES_MODELS", "tiny.en")
            .env("MINUTES_THREADS", "1")
            .env("MINUTES_WORKER_NAME", &name)
            .env("MINUTES_WORKER_HTTP_ADDR", "127.0.0.1:0")
            .env("MINUTES_RECONCILE_SECS", "1")
            .env("MINUTES_RETRY_BACKOFF_SECS", "1")
            .env("MINUTES_WORK_DIR", self.dir.join(format!("{name}-work")))
            .env("MINUTES_MAIL_URL", mail::url("smtp", &smtp.starttls))
            .env("MINUTES_MAIL_CA_FILE", &smtp.ca_file)
            .env("MINUTES_MAIL_BACKOFF_MS", "100")
            // One test user submits most jobs; the limit's own test sets it.
            .env("MINUTES_MAX_RUNNING_PER_USER", "0");
        for (key, value) in [
            ("MINUTES_S3_ENDPOINT", &s.s3_endpoint),
            ("MINUTES_S3_REGION", &s.s3_region),
            ("MINUTES_S3_ACCESS_KEY_ID", &s.s3_access_key_id),
            ("MINUTES_S3_SECRET_ACCESS_KEY", &s.s3_secret_access_key),
        ] {
            if let Some(value) = value {
                command.env(key, value);
            }
        }
        for (key, value) in extra {
            command.env(key, value);
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start minutes-worker");
        // Copy stderr to the log file, and wait for the ready line.
        let stderr = child.stderr.take().expect("stderr");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let log_path = log.clone();
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(&log_path).expect("log file");
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                use std::io::Write as _;
                let _ = writeln!(file, "{line}");
                // Text or JSON lines: the address ends at a space or the JSON string's end.
                if let Some((_, rest)) = line.split_once("health and metrics on ") {
                    let address: String =
                        rest.chars().take_while(|c| !c.is_whitespace() && *c != '"').collect();
                    let _ = ready_tx.send(address);
                }
            }
        });
        let ready = ready_rx.recv_timeout(Duration::from_secs(120));
        let mut worker = Worker { name, child, log, http: String::new() };
        match ready {
            Ok(address) => worker.http = address,
            Err(_) => panic!("the worker did not start:\n{}", worker.log()),
        }
        self.workers.push(worker);
        index
    }

    /// The installation's Postgres URL.
    pub(super) fn database_url(&self) -> &str {
        &self.service.database_url
    }

    /// The status of `GET path` as the first user.
    pub(super) async fn api_status(&self, path: &str) -> reqwest::StatusCode {
        self.http.get(format!("{}{path}", self.base)).send().await.unwrap().status()
    }

    /// Another user, and a client signed in as them.
    pub(super) async fn other_user(&self, email: &str) -> reqwest::Client {
        bearer_client(&add_user(self.repo.pool(), email, Role::Member).await.unwrap().1)
    }

    async fn submit(&self, fixture_name: &str, email: Option<&str>) -> Uuid {
        self.submit_as(&self.http, fixture_name, email).await
    }

    async fn submit_as(
        &self,
        client: &reqwest::Client,
        fixture_name: &str,
        email: Option<&str>,
    ) -> Uuid {
        let bytes = std::fs::read(fixture(fixture_name)).expect("fixture");
        let file_name = Path::new(fixture_name).file_name().unwrap().to_string_lossy().into_owned();
        let mut form = Form::new()
            .part("file", Part::bytes(bytes).file_name(file_name))
            .text("title", "Service test");
        if let Some(email) = email {
            form = form.text("email", email.to_string());
        }
        let response =
            client.post(format!("{}/api/v1/jobs", self.base)).multipart(form).send().await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
        let job: Value = response.json().await.unwrap();
        job["id"].as_str().unwrap().parse().unwrap()
    }

    pub(super) async fn job(&self, id: Uuid) -> Job {
        self.repo.get(id).await.unwrap().expect("the job exists")
    }

    /// Waits until the job reaches a final state.
    pub(super) async fn wait_final(&self, id: Uuid, limit: Duration) -> Job {
        let started = Instant::now();
        loop {
            let job = self.job(id).await;
            if job.state.is_final() {
                return job;
            }
            if started.elapsed() > limit {
                panic!(
                    "job {id} still {} at {} after {limit:?}\n{}",
                    job.state,
                    job.stage,
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every file under the local store's folder, relative to it.
    pub(super) fn stored_files(&self) -> Vec<String> {
        files_under(&self.dir.join("store"))
    }

    /// The `/metrics` text of worker `index`.
    async fn worker_metrics(&self, index: usize) -> String {
        let url = format!("{}/metrics", self.workers[index].http);
        self.http.get(url).send().await.unwrap().text().await.unwrap()
    }

    /// Waits until the running job is at `stage`.
    async fn wait_stage(&self, id: Uuid, stage: &str) {
        let started = Instant::now();
        loop {
            let job = self.job(id).await;
            if job.state == JobState::Running && job.stage == stage {
                return;
            }
            assert!(!job.state.is_final(), "job {id} ended {} before {stage}", job.state);
            assert!(started.elapsed() < Duration::from_secs(120), "job {id} never reached {stage}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(super) fn logs(&self) -> String {
        self.workers.iter().map(|w| format!("--- {}\n{}", w.name, w.log())).collect()
    }

    pub(super) async fn download(&self, id: Uuid, file: &str) -> reqwest::Response {
        self.http.get(format!("{}/api/v1/jobs/{id}/files/{file}", self.base)).send().await.unwrap()
    }

    pub(super) async fn stop(mut self) {
        for worker in &mut self.workers {
            let _ = worker.child.kill();
            let _ = worker.child.wait();
        }
        if let Some(stop) = self.stop_api.take() {
            let _ = stop.send(());
        }
        self.repo.pool().close().await;
        if let Some(db) = self.db.take() {
            db.drop_database().await.expect("drop db");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status();
    assert!(status.is_ok_and(|s| s.success()), "kill -{name}");
}

/// Messages the SMTP server received for `to` with `message_id`.
fn received_with_id(to: &str, message_id: &str) -> usize {
    mail::received(to)
        .iter()
        .filter(|raw| {
            MessageParser::default().parse(raw).and_then(|m| m.message_id().map(str::to_owned))
                == Some(message_id.to_string())
        })
        .count()
}

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

/// R1: a worker killed (SIGKILL) in the middle of a transcription; with 3 workers another
/// resumes it within 60 s and it ends `done` with exactly one PDF and one email.
/// `MINUTES_R1_RUNS` sets how many times (scripts/bench-service runs 20).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r1_a_worker_killed_mid_transcription_is_replaced_and_the_job_ends_done_once() {
    let runs: usize =
        std::env::var("MINUTES_R1_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    let mut service = Service::start(Store::Local).await;
    for _ in 0..3 {
        service.spawn_worker(&[]);
    }
    let mut recoveries = Vec::new();
    for run in 0..runs {
        let to = mail::recipient("r1");
        let id = service.submit("meeting.flac", Some(&to)).await;
        let started = Instant::now();
        let victim = loop {
            let job = service.job(id).await;
            if job.state == JobState::Running && job.stage == "transcribe" {
                break job.worker_name.expect("a worker holds it");
            }
            assert!(started.elapsed() < Duration::from_secs(120), "never transcribing");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // A random point inside the transcription.
        tokio::time::sleep(Duration::from_millis(u64::from(Uuid::new_v4().as_bytes()[0]) * 4))
            .await;
        let index = service.workers.iter().position(|w| w.name == victim).expect("known worker");
        let killed_at = Instant::now();
        service.workers[index].child.kill().expect("SIGKILL");
        let _ = service.workers[index].child.wait();
        let resumed = loop {
            let job = service.job(id).await;
            if job.state.is_final() || job.worker_name.as_deref() != Some(victim.as_str()) {
                break killed_at.elapsed();
            }
            assert!(
                killed_at.elapsed() < Duration::from_secs(60),
                "run {run}: not resumed within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let job = service.wait_final(id, Duration::from_secs(120)).await;
        assert_eq!(
            job.state,
            JobState::Done,
            "run {run}: {:?}\n{}",
            job.failure_reason,
            service.logs()
        );
        assert_eq!(
            received_with_id(&to, &format!("minutes-{id}@minutes")),
            1,
            "run {run}: one email"
        );
        assert_eq!(mail::received(&to).len(), 1, "run {run}: one email in all");
        let pdfs = std::fs::read_dir(service.dir.join(format!("store/jobs/{id}")))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".pdf"))
            .count();
        assert_eq!(pdfs, 1, "run {run}: one PDF");
        recoveries.push(resumed.as_secs_f64());
        // Keep three workers for the next run.
        service.workers.remove(index);
        service.spawn_worker(&[]);
    }
    eprintln!("R1: {runs} of {runs} runs done; resumed after (s): {recoveries:.1?}");
    service.stop().await;
}

/// R7: SIGTERM to a busy worker: it fetches nothing new, finishes its job within the grace
/// period, exits 0, and the job's email goes out once. With no grace left the job is
/// handed back and another worker finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r7_sigterm_finishes_or_hands_back_the_running_job_and_exits_0() {
    let mut service = Service::start(Store::Local).await;
    let patient = service.spawn_worker(&[("MINUTES_SHUTDOWN_GRACE_SECS", "120")]);
    let to = mail::recipient("r7");
    let first = service.submit("meeting.flac", Some(&to)).await;
    let second = service.submit("formats/hello_s16_16k.wav", Some(&to)).await;
    service.wait_stage(first, "transcribe").await;
    signal(&service.workers[patient].child, "TERM");
    let status = service.workers[patient].child.wait().expect("exit status");
    assert!(status.success(), "exit 0: {status:?}\n{}", service.logs());
    assert_eq!(service.job(first).await.state, JobState::Done, "finished within the grace period");
    let waiting = service.job(second).await;
    assert_eq!(waiting.state, JobState::Queued, "nothing new was fetched");
    assert_eq!(waiting.attempts, 0);

    // No grace: the running job is handed back and a new worker finishes it.
    let hasty = service.spawn_worker(&[("MINUTES_SHUTDOWN_GRACE_SECS", "0")]);
    let third = service.submit("meeting.flac", Some(&to)).await;
    service.wait_final(second, Duration::from_secs(120)).await;
    service.wait_stage(third, "transcribe").await;
    signal(&service.workers[hasty].child, "TERM");
    let status = service.workers[hasty].child.wait().expect("exit status");
    assert!(status.success(), "exit 0: {status:?}\n{}", service.logs());
    let handed = service.job(third).await;
    assert_eq!(handed.state, JobState::Queued, "handed back: {handed:?}");
    service.spawn_worker(&[]);
    let done = service.wait_final(third, Duration::from_secs(120)).await;
    assert_eq!(done.state, JobState::Done);
    for id in [first, second, third] {
        assert_eq!(
            received_with_id(&to, &format!("minutes-{id}@minutes")),
            1,
            "one email for {id}"
        );
    }
    service.stop().await;
}

/// R12 (worker side): a recording whose header passes the upload check but whose data is
/// cut short fails with a readable reason and a failure email; the worker keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r12_a_truncated_recording_fails_clearly_and_the_worker_keeps_serving() {
    let mut service = Service::start(Store::Local).await;
    service.spawn_worker(&[]);
    let to = mail::recipient("r12");
    let bad = service.submit("bad/truncated.flac", Some(&to)).await;
    let good = service.submit("formats/hello_44k.m4a", Some(&to)).await;
    let failed = service.wait_final(bad, Duration::from_secs(120)).await;
    assert_eq!(failed.state, JobState::Failed);
    let reason = failed.failure_reason.expect("a reason");
    assert_eq!(reason.code, FailureCode::Truncated, "{reason}");
    assert!(reason.detail.starts_with("the file is truncated"), "{reason}");
    let reason = reason.to_string();
    assert_eq!(failed.attempts, 1, "a permanent error is not retried");
    assert_eq!(service.wait_final(good, Duration::from_secs(120)).await.state, JobState::Done);
    assert_eq!(received_with_id(&to, &format!("failed-{bad}@minutes")), 1, "one failure email");
    let (status, body) = {
        let response =
            service.http.get(format!("{}/api/v1/jobs/{bad}", service.base)).send().await.unwrap();
        (response.status(), response.json::<Value>().await.unwrap())
    };
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(body["failure_reason"].as_str(), Some(reason.as_str()));

    // The worker's own health and counters.
    let worker = &service.workers[0];
    let health = service.http.get(format!("{}/healthz", worker.http)).send().await.unwrap();
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    let ready = service.http.get(format!("{}/readyz", worker.http)).send().await.unwrap();
    assert_eq!(ready.status(), reqwest::StatusCode::OK);
    let ready: Value = ready.json().await.unwrap();
    for dependency in ["postgres", "redis", "storage"] {
        assert_eq!(ready[dependency], "ok", "{ready}");
    }
    let metrics = service.worker_metrics(0).await;
    for line in [
        "minutes_worker_jobs_total{outcome=\"failed\"} 1",
        "minutes_worker_jobs_total{outcome=\"done\"} 1",
        "minutes_worker_jobs_in_flight 0",
        "minutes_worker_stage_seconds_count{stage=\"transcribe\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    service.stop().await;
}

/// R5: a recording that aborts the decoder (a 32 GiB table reservation, over the decoder
/// process's memory limit) ends `failed: invalid_media` at once; the worker, which decoded
/// in its own process before, lives on and finishes the next job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r5_a_file_that_aborts_the_decoder_fails_invalid_media_and_the_worker_keeps_serving() {
    let mut service = Service::start(Store::Local).await;
    service.spawn_worker(&[]);
    let bad = service.submit("bad/huge_table.m4a", None).await;
    let good = service.submit("formats/hello_44k.m4a", None).await;
    let failed = service.wait_final(bad, Duration::from_secs(120)).await;
    assert_eq!(failed.state, JobState::Failed);
    let reason = failed.failure_reason.expect("a reason");
    assert_eq!(reason.code, FailureCode::InvalidMedia, "{reason}");
    assert!(reason.detail.contains("memory limit"), "{reason}");
    assert_eq!(failed.attempts, 1, "a file that aborts the decoder is not retried");
    assert_eq!(service.wait_final(good, Duration::from_secs(120)).await.state, JobState::Done);
    assert!(service.workers[0].child.try_wait().unwrap().is_none(), "the worker is still running");
    service.stop().await;
}

/// Stranded job: the ticket of a queued job is lost in Redis after the API recorded the
/// push (a flushed Redis, or the last second of writes lost in a restart). The reconciler
/// pushes any job no worker claimed within MINUTES_STRANDED_SECS, so it still ends done;
/// before, only jobs never pushed were pushed again and this one stayed queued for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stranded_job_a_ticket_lost_in_redis_is_pushed_again_and_the_job_ends_done() {
    let mut service = Service::start(Store::Local).await;
    let id = service.submit("formats/hello_s16_16k.wav", None).await;
    let pushed = service.job(id).await;
    assert_eq!(pushed.state, JobState::Queued);
    assert!(pushed.enqueued_at.is_some(), "the API pushed it");
    let forgotten =
        forget_queue(&service.service.redis_url, &service.service.queue).await.expect("Redis");
    assert!(forgotten > 0, "the ticket was on the queue");
    service.spawn_worker(&[("MINUTES_STRANDED_SECS", "2")]);
    let job = service.wait_final(id, Duration::from_secs(120)).await;
    assert_eq!(job.state, JobState::Done, "{:?}\n{}", job.failure_reason, service.logs());
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

/// Cancelling a running job stops it at the next chunk: it stays `cancelled`, no email is
/// sent, and the worker takes the next job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_job_stops_it_and_sends_nothing() {
    let mut service = Service::start(Store::Local).await;
    service.spawn_worker(&[]);
    let to = mail::recipient("cancel");
    let id = service.submit("meeting.flac", Some(&to)).await;
    let next = service.submit("formats/hello_s16_16k.wav", None).await;
    service.wait_stage(id, "transcribe").await;
    let response = service
        .http
        .post(format!("{}/api/v1/jobs/{id}/cancel", service.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(service.wait_final(next, Duration::from_secs(120)).await.state, JobState::Done);
    let job = service.job(id).await;
    assert_eq!(job.state, JobState::Cancelled);
    assert!(
        !job.artifacts.as_object().is_some_and(|a| a.contains_key("minutes.pdf")),
        "stopped before the PDF"
    );
    assert!(mail::received(&to).is_empty(), "no email for a cancelled job");
    let metrics = service.worker_metrics(0).await;
    assert!(metrics.contains("minutes_worker_jobs_total{outcome=\"lost\"} 1"), "{metrics}");
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
