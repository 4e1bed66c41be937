//! The service end to end, the harness: the API served in this process on port 0,
//! `minutes-worker` processes (real OS processes, so SIGKILL and SIGTERM are real),
//! Postgres with a fresh database per test, Redis with a queue of the test's own, a local
//! or S3 object store and the SMTP test server. The tests are in `service_flows` (jobs
//! through the service) and `service_failures` (kills, signals, bad files, lost tickets).

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Instant;

use mail_parser::MessageParser;
use minutes_api::settings::{AccessSettings, ApiSettings};
use minutes_api::Application;
use minutes_shared::accounts::Role;
use minutes_shared::jobs::{Job, JobRepo, JobState};
use minutes_shared::settings::ServiceSettings;
use minutes_shared::stage::JobStage;
use minutes_shared::testing::{add_user, files_under, queue_name, redis_url, TestDatabase};
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use uuid::Uuid;

use super::*;

/// Heartbeat of the test workers: a lease lapses after 3 missed beats (6 s).
const HEARTBEAT_SECS: &str = "2";

pub(super) struct Service {
    pub(super) base: String,
    /// Signed in (by token) as the first user, ann@example.com.
    pub(super) http: reqwest::Client,
    /// That token, for the command line's MINUTES_API_TOKEN.
    pub(super) token: String,
    pub(super) repo: JobRepo,
    pub(super) service: ServiceSettings,
    db: Option<TestDatabase>,
    pub(super) dir: PathBuf,
    pub(super) workers: Vec<Worker>,
    stop_api: Option<tokio::sync::oneshot::Sender<()>>,
}

pub(super) struct Worker {
    pub(super) name: String,
    pub(super) child: Child,
    log: PathBuf,
    /// Base URL of its /healthz and /metrics.
    pub(super) http: String,
}

impl Worker {
    pub(super) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

pub(super) enum Store {
    Local,
    S3,
}

/// The file the APIs of this test process log to, as JSON lines (one subscriber for the
/// process, installed by the first service started).
pub(super) fn api_log() -> &'static Path {
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
pub(super) fn lines_in_span(text: &str, field: &str, value: &str) -> Vec<Value> {
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
        Service::start_on(store, redis_url()).await
    }

    /// [`Service::start`] with the queue on the Redis at `redis` (a test's own server).
    pub(super) async fn start_on(store: Store, redis: String) -> Service {
        api_log();
        let db = TestDatabase::create().await.expect("Postgres (started by scripts/test)");
        let dir = tempdir();
        let env =
            |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name}: run scripts/test"));
        let service = ServiceSettings {
            database_url: db.url.clone(),
            database_max_connections: 5,
            redis_url: redis,
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
            summarizers: "extractive,openai".parse().unwrap(),
        };
        let app = Application::build(ApiSettings {
            log: Default::default(),
            service: service.clone(),
            listen: "127.0.0.1:0".parse().unwrap(),
            max_upload_bytes: 1 << 30,
            reconcile_secs: 1,
            shutdown_grace_secs: 5,
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
            .env("MINUTES_SUMMARIZERS", "extractive,openai")
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

    pub(super) async fn submit(&self, fixture_name: &str, email: Option<&str>) -> Uuid {
        self.submit_as(&self.http, fixture_name, email).await
    }

    pub(super) async fn submit_as(
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
    pub(super) async fn worker_metrics(&self, index: usize) -> String {
        let url = format!("{}/metrics", self.workers[index].http);
        self.http.get(url).send().await.unwrap().text().await.unwrap()
    }

    /// Waits until the running job is at `stage`.
    pub(super) async fn wait_stage(&self, id: Uuid, stage: JobStage) {
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

pub(super) fn signal(child: &Child, name: &str) {
    let status = Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status();
    assert!(status.is_ok_and(|s| s.success()), "kill -{name}");
}

/// Messages the SMTP server received for `to` with `message_id`.
pub(super) fn received_with_id(to: &str, message_id: &str) -> usize {
    mail::received(to)
        .iter()
        .filter(|raw| {
            MessageParser::default().parse(raw).and_then(|m| m.message_id().map(str::to_owned))
                == Some(message_id.to_string())
        })
        .count()
}
