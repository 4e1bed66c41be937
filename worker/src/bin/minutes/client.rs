//! The HTTP client of the service commands (`submit`, `jobs`, `reprocess`, `retry`,
//! `cancel`, `tokens`): where the API is, the token, and one method per route used.
//!
//! The token comes from `MINUTES_API_TOKEN`, else from the file `token` in the config
//! folder (`$MINUTES_CONFIG_DIR`, else `$XDG_CONFIG_HOME/minutes`, else
//! `~/.config/minutes`), which must not be readable by group or others.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _};
use futures_util::StreamExt as _;
pub use minutes_shared::api::{JobPage, JobView, ReprocessBody, VersionList, VersionView};
use serde_json::Value;

/// Where the API is; the token comes from the environment so it stays out of process lists.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiArgs {
    /// Base URL of the minutes API.
    #[arg(long, env = "MINUTES_API_URL", default_value = "http://127.0.0.1:8080", global = true)]
    pub api: String,
    /// API token (sent as `Authorization: Bearer`); set MINUTES_API_TOKEN or save one with
    /// `minutes tokens create NAME --save`.
    #[arg(long, env = "MINUTES_API_TOKEN", hide_env_values = true, hide = true)]
    pub token: Option<String>,
    /// Print JSON instead of tables (for scripts).
    #[arg(long, env = "MINUTES_JSON", global = true)]
    pub json: bool,
}

/// Which jobs to list.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Selector {
    /// Only jobs in this state (queued, running, done, failed, cancelled).
    #[arg(long, env = "MINUTES_SELECT_STATE")]
    pub state: Option<String>,
    /// Only jobs created on or after this date (2026-11-01) or time (RFC 3339).
    #[arg(long, env = "MINUTES_SELECT_SINCE")]
    pub since: Option<String>,
    /// Only jobs created before this date or time.
    #[arg(long, env = "MINUTES_SELECT_UNTIL")]
    pub until: Option<String>,
    /// Only jobs whose file name matches this glob ("*.m4a", "weekly*").
    #[arg(long, env = "MINUTES_SELECT_FILENAME")]
    pub filename: Option<String>,
    /// At most this many jobs.
    #[arg(long, env = "MINUTES_SELECT_LIMIT", default_value_t = 1000)]
    pub limit: usize,
}

/// Talks to the API.
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// A client for `args`.
    pub fn new(args: &ApiArgs) -> anyhow::Result<Self> {
        let base = args.api.trim_end_matches('/').to_string();
        url::Url::parse(&base).with_context(|| format!("--api {base:?} is not a URL"))?;
        minutes_shared::tls::use_ring();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("cannot make an HTTP client")?;
        let token = match args.token.clone().filter(|t| !t.is_empty()) {
            Some(token) => Some(token),
            None => saved_token()?,
        };
        Ok(Client { base, token, http })
    }

    /// The same client with no token (for signing in with a password).
    pub fn without_token(mut self) -> Self {
        self.token = None;
        self
    }

    /// Whether a token was found.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends `request`; an answer other than a success is an error with the API's message
    /// (and, for a 401 without a token, how to get one).
    async fn answered(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<reqwest::Response> {
        let response =
            request.send().await.with_context(|| format!("cannot reach {}", self.base))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        if status == reqwest::StatusCode::UNAUTHORIZED && self.token.is_none() {
            bail!(
                "the API needs a token: set MINUTES_API_TOKEN, or run `minutes tokens create NAME --email YOU --save`"
            );
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        bail!("{} ({status})", error_message(body));
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = self.answered(request).await?;
        Ok(response.json().await.unwrap_or(Value::Null))
    }

    /// Downloads `file` of job `id` into `target` (written beside it, then renamed, so a
    /// failed download leaves nothing half-written); returns the bytes written.
    pub async fn download(&self, id: &str, file: &str, target: &Path) -> anyhow::Result<u64> {
        let path = format!("/api/v1/jobs/{id}/files/{file}");
        let response = self
            .answered(self.request(reqwest::Method::GET, &path))
            .await
            .with_context(|| file.to_string())?;
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let partial = target.with_file_name(format!(".{name}.partial"));
        let written = async {
            use tokio::io::AsyncWriteExt as _;
            let mut out = tokio::fs::File::create(&partial).await?;
            let mut stream = response.bytes_stream();
            let mut written = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(std::io::Error::other)?;
                out.write_all(&chunk).await?;
                written += chunk.len() as u64;
            }
            out.flush().await?;
            std::io::Result::Ok(written)
        }
        .await;
        match written {
            Ok(written) => {
                std::fs::rename(&partial, target)
                    .with_context(|| format!("{}: cannot write", target.display()))?;
                Ok(written)
            }
            Err(error) => {
                let _ = std::fs::remove_file(&partial);
                Err(error).with_context(|| format!("{}: download failed", target.display()))
            }
        }
    }

    /// Deletes job `id` with its files.
    pub async fn delete(&self, id: &str) -> anyhow::Result<()> {
        self.send(self.request(reqwest::Method::DELETE, &format!("/api/v1/jobs/{id}"))).await?;
        Ok(())
    }

    /// `GET` `path`, as JSON.
    pub async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    /// `POST /api/v1/tokens`, with the client's token or with `email` and `password`.
    pub async fn create_token(
        &self,
        name: &str,
        password_login: Option<(&str, &str)>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .request(reqwest::Method::POST, "/api/v1/tokens")
            .json(&serde_json::json!({ "name": name }));
        if let Some((email, password)) = password_login {
            request = request.basic_auth(email, Some(password));
        }
        self.send(request).await
    }

    /// `DELETE /api/v1/tokens/{id}`.
    pub async fn revoke_token(&self, id: &str) -> anyhow::Result<()> {
        self.answered(self.request(reqwest::Method::DELETE, &format!("/api/v1/tokens/{id}")))
            .await?;
        Ok(())
    }

    /// One job.
    pub async fn job(&self, id: &str) -> anyhow::Result<JobView> {
        let body =
            self.send(self.request(reqwest::Method::GET, &format!("/api/v1/jobs/{id}"))).await?;
        Ok(serde_json::from_value(body)?)
    }

    /// The versions of job `id`'s results, newest first.
    pub async fn versions(&self, id: &str) -> anyhow::Result<Vec<VersionView>> {
        let path = format!("/api/v1/jobs/{id}/versions");
        let body = self.send(self.request(reqwest::Method::GET, &path)).await?;
        Ok(serde_json::from_value::<VersionList>(body)?.versions)
    }

    /// Jobs matching `selector`, newest first, every page up to its limit.
    pub async fn list(&self, selector: &Selector) -> anyhow::Result<Vec<JobView>> {
        let mut jobs = Vec::new();
        let mut cursor: Option<String> = None;
        while jobs.len() < selector.limit {
            let page = (selector.limit - jobs.len()).min(500);
            let mut query: Vec<(&str, String)> = vec![("limit", page.to_string())];
            for (name, value) in [
                ("state", &selector.state),
                ("since", &selector.since),
                ("until", &selector.until),
                ("filename", &selector.filename),
                ("cursor", &cursor),
            ] {
                if let Some(value) = value {
                    query.push((name, value.clone()));
                }
            }
            let mut url = url::Url::parse(&format!("{}/api/v1/jobs", self.base))?;
            url.query_pairs_mut().extend_pairs(&query);
            let path = format!("/api/v1/jobs?{}", url.query().unwrap_or(""));
            let body = self.send(self.request(reqwest::Method::GET, &path)).await?;
            let batch: JobPage = serde_json::from_value(body)?;
            jobs.extend(batch.jobs);
            match batch.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(jobs)
    }

    /// Uploads `path`; `progress` hears the bytes sent so far.
    pub async fn submit(
        &self,
        path: &Path,
        fields: &[(&str, String)],
        progress: impl Fn(u64) + Send + Sync + 'static,
    ) -> anyhow::Result<JobView> {
        let size = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?.len();
        let file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let chunks = futures_util::stream::unfold(
            (file, sent, progress),
            |(mut file, sent, progress)| async move {
                use std::io::Read as _;
                let mut buffer = vec![0u8; 256 * 1024];
                match file.read(&mut buffer) {
                    Ok(0) => None,
                    Ok(n) => {
                        buffer.truncate(n);
                        let total = sent.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed)
                            + n as u64;
                        progress(total);
                        Some((Ok::<_, std::io::Error>(buffer), (file, sent, progress)))
                    }
                    Err(error) => Some((Err(error), (file, sent, progress))),
                }
            },
        );
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let part =
            reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(chunks), size)
                .file_name(name);
        let mut form = reqwest::multipart::Form::new().part("file", part);
        for (field, value) in fields {
            form = form.text(field.to_string(), value.clone());
        }
        let body =
            self.send(self.request(reqwest::Method::POST, "/api/v1/jobs").multipart(form)).await?;
        Ok(serde_json::from_value(body)?)
    }

    /// `POST /api/v1/jobs/{id}/{action}` with an optional JSON body.
    pub async fn action(
        &self,
        id: &str,
        action: &str,
        body: Option<&ReprocessBody>,
    ) -> anyhow::Result<JobView> {
        let mut request =
            self.request(reqwest::Method::POST, &format!("/api/v1/jobs/{id}/{action}"));
        if let Some(body) = body {
            request = request.json(body);
        }
        Ok(serde_json::from_value(self.send(request).await?)?)
    }

    /// Calls `on_event` with each `progress` event's data until the stream ends.
    pub async fn watch(&self, id: &str, mut on_event: impl FnMut(&Value)) -> anyhow::Result<()> {
        let response = self
            .answered(self.request(reqwest::Method::GET, &format!("/api/v1/jobs/{id}/events")))
            .await?;
        let mut stream = response.bytes_stream();
        let mut pending = String::new();
        while let Some(chunk) = stream.next().await {
            pending.push_str(&String::from_utf8_lossy(&chunk.context("the event stream broke")?));
            while let Some(end) = pending.find("\n\n") {
                let event: String = pending.drain(..end + 2).collect();
                if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                    if let Ok(value) = serde_json::from_str::<Value>(data) {
                        on_event(&value);
                    }
                }
            }
        }
        Ok(())
    }
}

/// The folder the CLI keeps its token in.
pub fn config_dir() -> Option<std::path::PathBuf> {
    let from =
        |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(std::path::PathBuf::from);
    from("MINUTES_CONFIG_DIR")
        .or_else(|| from("XDG_CONFIG_HOME").map(|dir| dir.join("minutes")))
        .or_else(|| from("HOME").map(|home| home.join(".config").join("minutes")))
}

/// The saved token, if there is one; an error when its file is readable by others.
fn saved_token() -> anyhow::Result<Option<String>> {
    let Some(path) = config_dir().map(|dir| dir.join("token")) else { return Ok(None) };
    let Ok(metadata) = std::fs::metadata(&path) else { return Ok(None) };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} is readable by other users (mode {:o}): run chmod 600 on it, or make a new token",
                path.display(),
                mode & 0o777
            );
        }
    }
    #[cfg(not(unix))]
    let _ = metadata;
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    Ok(Some(text.trim().to_string()).filter(|t| !t.is_empty()))
}

/// Saves `token` where [`Client::new`] finds it, readable by its owner only.
pub fn save_token(token: &str) -> anyhow::Result<std::path::PathBuf> {
    let dir = config_dir().context("no config folder: set MINUTES_CONFIG_DIR or HOME")?;
    std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
    let path = dir.join("token");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&path).with_context(|| format!("{}", path.display()))?;
    #[cfg(unix)]
    {
        // An existing file keeps its mode on open: tighten it.
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("{}", path.display()))?;
    }
    use std::io::Write as _;
    writeln!(file, "{token}").with_context(|| format!("{}", path.display()))?;
    Ok(path)
}

/// `1:02:05` / `3:07` from seconds.
pub fn clock(seconds: f64) -> String {
    let total = seconds.max(0.0) as u64;
    match (total / 3600, total % 3600 / 60, total % 60) {
        (0, m, s) => format!("{m}:{s:02}"),
        (h, m, s) => format!("{h}:{m:02}:{s:02}"),
    }
}

/// Jobs as an aligned table.
pub fn table(jobs: &[JobView]) -> String {
    let mut out = format!(
        "{:<36}  {:<9}  {:<10}  {:>5}  {:>8}  {:<19}  {}\n",
        "ID", "STATE", "STAGE", "%", "LENGTH", "CREATED", "FILE"
    );
    for job in jobs {
        let created = job.created_at.format("%Y-%m-%d %H:%M:%S").to_string();
        out.push_str(&format!(
            "{:<36}  {:<9}  {:<10}  {:>5.0}  {:>8}  {:<19}  {}{}\n",
            job.id,
            job.state,
            job.stage,
            job.percent,
            job.duration_seconds.map(clock).unwrap_or_else(|| "-".into()),
            created,
            job.filename,
            match (&job.failure_reason, &job.reprocess_failure) {
                (Some(reason), _) => format!("  ({reason})"),
                (None, Some(reason)) => format!("  (reprocess failed: {reason})"),
                (None, None) => String::new(),
            },
        ));
    }
    out
}

/// The message of an API error body (`{"error", "message"}`), whatever else came back.
fn error_message(body: Value) -> String {
    serde_json::from_value::<minutes_shared::api::ErrorBody>(body)
        .map(|error| error.message)
        .unwrap_or_else(|_| "no details".into())
}
