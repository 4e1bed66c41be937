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

#[path = "api/accounts.rs"]
mod accounts;
#[path = "api/contract.rs"]
mod contract;
#[path = "api/form_limits.rs"]
mod form_limits;
#[path = "api/invariants.rs"]
mod invariants;
#[path = "api/limits.rs"]
mod limits;
#[path = "api/options.rs"]
mod options;
#[path = "api/routes.rs"]
mod routes;
#[path = "api/streams.rs"]
mod streams;
#[path = "api/transcript.rs"]
mod transcript;
#[path = "api/uploads.rs"]
mod uploads;

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
        let key = artifact_key(id, lease.version, lease.attempt, name);
        app.storage.put(&key, bytes::Bytes::from(format!("{name} of {id}"))).await.unwrap();
        app.repo.store_artifact(lease, name, &key).await.unwrap();
    }
    app.repo.finish(lease, None).await.unwrap();
    let response = client.get(app.url(&format!("/api/v1/jobs/{id}"))).send().await.unwrap();
    response.json().await.unwrap()
}
