//! The `minutes` HTTP API: uploads, jobs, progress events, downloads, health and metrics.
//!
//! It links no audio or machine-learning code: the API only moves files and rows. An
//! upload streams into the object store, becomes a job row in Postgres, and a ticket on
//! the Redis queue; workers do the rest and report progress in Postgres, which the event
//! stream relays.
//!
//! Code map: [`settings`] (flags and environment), [`upload`] (`POST /api/v1/jobs`),
//! [`jobs`] (list, show, retry, cancel, delete), [`versions`] (the versions of a job's
//! results, restore), [`events`] (Server-Sent Events fed by Postgres `LISTEN`),
//! [`downloads`] (artifacts), [`health`] (`/healthz`, `/readyz`, `/metrics`), [`openapi`]
//! (the document generated from the handlers), [`error`] (JSON errors), [`headers`]
//! (security headers on every response), [`request_id`] (the id of each request, in its
//! span and response), [`sniff`] and [`filename`] (what uploads are checked and cleaned
//! with), and
//! [`web`] (the pages people use: upload, job, recent jobs), [`auth`] (users, sign-in,
//! sessions, API tokens, the owner scope of every job query), [`signing`] (expiring
//! download links), [`limits`] (per-user upload rate and storage quota) and [`recipients`]
//! (who minutes may be mailed to).

pub mod auth;
pub mod downloads;
pub mod error;
pub mod events;
pub mod filename;
pub mod form;
pub mod headers;
pub mod health;
pub mod jobs;
pub mod limits;
pub mod openapi;
pub mod query;
pub mod recipients;
pub mod request_id;
pub mod settings;
pub mod signing;
pub mod sniff;
pub mod upload;
pub mod versions;
pub mod web;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use minutes_shared::accounts::UserRepo;
use minutes_shared::credentials::CredentialRepo;
use minutes_shared::jobs::JobRepo;
use minutes_shared::queue::{push_due, JobQueue};
use minutes_shared::settings::{ConnectError, Services};
use minutes_shared::storage::{job_prefix, Storage};
use minutes_shared::throttle::LoginThrottle;
use tokio::net::TcpListener;

use crate::error::ApiError;
use crate::events::EventHub;
use crate::settings::ApiSettings;
use crate::signing::Signer;

/// Body limit of every route but the upload.
const SMALL_BODY_LIMIT: usize = 64 * 1024;
/// Pending uploads older than this with no job are deleted.
const STALE_UPLOAD_AGE: Duration = Duration::from_secs(3600);

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The job repository.
    pub repo: JobRepo,
    /// The object store.
    pub storage: Storage,
    /// The job queue.
    pub queue: JobQueue,
    /// The process settings.
    pub settings: Arc<ApiSettings>,
    /// Relays progress notifications to event streams.
    pub hub: EventHub,
    /// Upload counters for /metrics.
    pub counters: Arc<Counters>,
    /// Users.
    pub users: UserRepo,
    /// Sessions and API tokens.
    pub credentials: CredentialRepo,
    /// The sign-in throttle.
    pub throttle: LoginThrottle,
    /// Signs download links.
    pub signer: Signer,
}

impl AppState {
    /// Puts job `id` on the queue and records it; when Redis cannot take it now the
    /// reconciler pushes it within seconds, so the caller need not fail.
    pub async fn enqueue(&self, id: uuid::Uuid) -> Result<(), ApiError> {
        match self.queue.push(id).await {
            Ok(()) => self.repo.mark_enqueued(id).await?,
            Err(error) => {
                tracing::warn!(job_id = %id, %error, "not pushed yet; the reconciler will")
            }
        }
        Ok(())
    }
}

/// The API's own counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Uploads accepted.
    pub uploads: AtomicU64,
    /// Uploads refused (size, type, bad form).
    pub uploads_rejected: AtomicU64,
}

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Postgres, Redis or the object store could not be used.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The signing key is unusable or could not be stored.
    #[error("signing key: {0}")]
    SigningKey(String),
    /// The port could not be opened.
    #[error("cannot listen on {0}")]
    Listen(String),
}

/// A built application, listening, not yet serving.
pub struct Application {
    listener: TcpListener,
    router: Router,
    hub: EventHub,
    grace: Duration,
}

impl Application {
    /// Connects to Postgres (and migrates), Redis and the object store, starts the event
    /// hub and the reconciler, and opens the port.
    pub async fn build(settings: ApiSettings) -> Result<Self, StartError> {
        let Services { repo, storage, queue } = settings.service.connect().await?;
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|e| StartError::Listen(format!("{}: {e}", settings.listen)))?;
        let hub = EventHub::start(repo.pool().clone());
        let pool = repo.pool().clone();
        let credentials = CredentialRepo::new(pool.clone());
        // An empty value (as compose passes an unset variable) means none.
        let given =
            settings.access.signing_key.as_deref().filter(|k| !k.is_empty()).map(str::as_bytes);
        if given.is_some_and(|key| key.len() < 32) {
            return Err(StartError::SigningKey("use at least 32 characters".into()));
        }
        let key = credentials
            .server_secret("download_links", given)
            .await
            .map_err(|e| StartError::SigningKey(e.to_string()))?;
        let signer = Signer::new(key, settings.access.download_link_secs);
        let state = AppState {
            users: UserRepo::new(pool.clone()),
            throttle: LoginThrottle::new(pool),
            credentials,
            signer,
            repo,
            storage,
            queue,
            settings: Arc::new(settings),
            hub,
            counters: Arc::default(),
        };
        tokio::spawn(reconcile(state.clone()));
        let grace = Duration::from_secs(state.settings.shutdown_grace_secs);
        let hub = state.hub.clone();
        Ok(Application { listener, router: router(state), hub, grace })
    }

    /// Where it listens.
    pub fn address(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then ends the event streams and finishes the
    /// requests in progress, waiting at most the shutdown grace for them.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Application { listener, router, hub, grace } = self;
        // The peer address feeds the sign-in throttle.
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let closing = hub.clone();
        let shutdown = async move {
            shutdown.await;
            tracing::info!("shutting down: ending event streams, finishing requests");
            closing.close_all();
        };
        let serving = axum::serve(listener, service).with_graceful_shutdown(shutdown);
        tokio::select! {
            served = serving.into_future() => served,
            () = async {
                hub.closed().await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(grace_secs = grace.as_secs(),
                    "requests still open after the shutdown grace; stopping anyway");
                Ok(())
            }
        }
    }
}

/// Every route.
pub fn router(state: AppState) -> Router {
    let (routes, _) = routes().split_for_parts();
    routes
        .fallback(web::not_found)
        .layer(axum::middleware::from_fn(headers::security_headers))
        // Outermost: the id exists before the request's span is made and anything logs.
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(request_id::span))
        .layer(axum::middleware::from_fn(request_id::assign))
        .with_state(state)
}

/// The routes with the OpenAPI operations of those that have one: the document
/// (`openapi::document`) is made from this same router, so it cannot list a route that is
/// not served or miss one that is. The pages are routes without operations.
pub fn routes() -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(jobs::list))
        .routes(routes!(jobs::show, jobs::delete))
        .routes(routes!(jobs::retry))
        .routes(routes!(jobs::cancel))
        .routes(routes!(jobs::reprocess))
        .routes(routes!(events::stream))
        .routes(routes!(downloads::download))
        .routes(routes!(versions::list))
        .routes(routes!(versions::restore))
        .routes(routes!(downloads::download_version))
        .routes(routes!(openapi::document))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(auth::tokens::list, auth::tokens::create))
        .routes(routes!(auth::tokens::revoke))
        .route("/login", get(auth::signin::login_form).post(auth::signin::login))
        .route("/logout", post(auth::signin::logout))
        .route("/settings", get(auth::tokens::settings_page))
        .route("/settings/tokens", post(auth::tokens::create_form))
        .route("/settings/password", post(auth::password::change))
        .route("/settings/tokens/{id}/revoke", post(auth::tokens::revoke_form))
        .route("/", get(web::upload_page))
        .route("/jobs", get(web::jobs_page))
        .route("/jobs/{id}", get(web::job_page))
        .route("/jobs/{id}/retry", post(web::retry_form))
        .route("/jobs/{id}/versions/{number}/restore", post(web::results::restore_form))
        .route("/static/app.css", get(web::stylesheet))
        .route("/static/app.js", get(web::script))
        .layer(DefaultBodyLimit::max(SMALL_BODY_LIMIT));
    // The upload route counts bytes itself against the maximum upload size.
    let upload = OpenApiRouter::new()
        .routes(routes!(upload::create))
        .route("/upload", post(web::upload_form))
        .layer(DefaultBodyLimit::disable());
    api.merge(upload)
}

/// Pushes jobs Postgres says should be on the queue, and deletes uploads whose API died
/// before their job was recorded.
async fn reconcile(state: AppState) {
    let every = Duration::from_secs(state.settings.reconcile_secs.max(1));
    let mut passes: u64 = 0;
    loop {
        tokio::time::sleep(every).await;
        if let Err(error) =
            push_due(&state.repo, &state.queue, state.settings.service.push_policy(every)).await
        {
            tracing::warn!(%error, "reconciler pass failed");
        }
        passes += 1;
        if passes.is_multiple_of(12) {
            sweep_stale_uploads(&state).await;
            sweep_old_credentials(&state).await;
        }
    }
}

/// Expired sessions and sign-in failures older than a day go; neither is needed any more.
async fn sweep_old_credentials(state: &AppState) {
    if let Err(error) = state.credentials.forget_expired_sessions().await {
        tracing::warn!(%error, "expired sessions not deleted");
    }
    let day = Duration::from_secs(24 * 3600);
    let window = Duration::from_secs(state.settings.access.login_window_secs);
    if let Err(error) = state.throttle.forget_older_than(day.max(window)).await {
        tracing::warn!(%error, "old sign-in failures not deleted");
    }
}

async fn sweep_stale_uploads(state: &AppState) {
    let stale = match state.repo.stale_uploads(STALE_UPLOAD_AGE).await {
        Ok(stale) => stale,
        Err(error) => {
            tracing::warn!(%error, "stale uploads not listed");
            return;
        }
    };
    for id in stale {
        if state.storage.delete_prefix(&job_prefix(id)).await.is_ok() {
            let _ = state.repo.upload_abandoned(id).await;
        }
    }
}
