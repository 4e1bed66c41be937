//! `GET /api/v1/jobs/{id}/events`: a job's progress as Server-Sent Events.
//!
//! Workers append to `job_events` and `NOTIFY job_events, '<job id>'`. One `LISTEN`
//! connection per API process (the [`EventHub`]) fans the notifications out to every open
//! stream; each stream then reads the new rows of its job. A stream first replays the
//! events after `Last-Event-ID` (all of them on a first connect), so a reconnecting browser
//! misses nothing, and closes with an `end` event once the job is done, failed or
//! cancelled, or a `deleted` event when it is deleted. A notification can be missed while
//! the listener reconnects, so streams also look every few seconds on their own. A user has
//! at most `MINUTES_EVENT_STREAMS_PER_USER` streams open in one API process, and every
//! stream ends when the process shuts down (the browser reconnects elsewhere).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use minutes_shared::jobs::EVENTS_CHANNEL;
use serde::Serialize;
use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use crate::auth::{ApiUser, Principal};
use crate::error::{ApiError, ErrorBody};
use crate::jobs::find;
use crate::AppState;

/// How long a stream waits for a notification before looking by itself.
const POLL: Duration = Duration::from_secs(5);

/// Relays `job_events` notifications (job ids) to the open streams, counts each user's open
/// streams, and ends them all when the API shuts down.
#[derive(Debug, Clone)]
pub struct EventHub {
    sender: broadcast::Sender<Uuid>,
    closing: watch::Sender<bool>,
    open: Arc<Mutex<HashMap<Uuid, usize>>>,
}

impl EventHub {
    /// Starts listening; reconnects after an outage.
    pub fn start(pool: PgPool) -> Self {
        let (sender, _) = broadcast::channel(1024);
        let hub = EventHub {
            sender: sender.clone(),
            closing: watch::channel(false).0,
            open: Arc::default(),
        };
        tokio::spawn(async move {
            loop {
                match PgListener::connect_with(&pool).await {
                    Ok(mut listener) => {
                        if listener.listen(EVENTS_CHANNEL).await.is_ok() {
                            while let Ok(notification) = listener.recv().await {
                                if let Ok(id) = Uuid::parse_str(notification.payload()) {
                                    let _ = sender.send(id);
                                }
                            }
                        }
                    }
                    Err(error) => tracing::warn!(%error, "event listener lost; reconnecting"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        hub
    }

    /// Ends every open stream and refuses new ones (the API is shutting down: a graceful
    /// shutdown waits for open requests, and a stream would otherwise never end).
    pub fn close_all(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`Self::close_all`] was called.
    pub async fn closed(&self) {
        let _ = self.closing.subscribe().wait_for(|closing| *closing).await;
    }

    fn subscribe(&self) -> broadcast::Receiver<Uuid> {
        self.sender.subscribe()
    }

    /// A place for one more stream of `user`, unless they have `cap` open in this process.
    fn admit(&self, user: Uuid, cap: usize) -> Option<StreamPermit> {
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = open.entry(user).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(StreamPermit { open: Arc::clone(&self.open), user })
    }
}

/// One open stream of a user; gives its place back when the stream is dropped (it ended,
/// or the client went away).
#[derive(Debug)]
struct StreamPermit {
    open: Arc<Mutex<HashMap<Uuid, usize>>>,
    user: Uuid,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = open.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.user);
            }
        }
    }
}

/// One `progress` event's data.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProgressEvent {
    /// The stage at the time.
    pub stage: String,
    /// Percent of the whole job.
    pub percent: f32,
    /// What happened, for people.
    pub message: String,
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
}

struct Cursor {
    state: AppState,
    viewer: Principal,
    id: Uuid,
    last: i64,
    updates: broadcast::Receiver<Uuid>,
    closing: watch::Receiver<bool>,
    first: bool,
    ended: bool,
    _permit: StreamPermit,
}

/// Streams a job's progress: `progress` events (id = event number), then one `end` event
/// with the job when it reaches a final state.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/events", operation_id = "job_events", params(("id" = Uuid, Path, description = "job id")),
    responses((status = 200, content_type = "text/event-stream", body = String, description = "text/event-stream of `progress` events (ProgressEvent), then a final `end` event (JobView), or `deleted` (the job id) when the job is deleted while watched; the stream also ends when this API process shuts down (reconnect with Last-Event-ID)"),
              (status = 404, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "too many open streams (MINUTES_EVENT_STREAMS_PER_USER)"),
              (status = 503, body = ErrorBody, description = "the API is shutting down")))]
pub async fn stream(
    State(state): State<AppState>,
    ApiUser(viewer): ApiUser,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let job = find(&state, &viewer, &id).await?;
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(0);
    let closing = state.hub.closing.subscribe();
    if *closing.borrow() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "this server is shutting down; connect again",
        )
        .retry_after(1));
    }
    let cap = state.settings.access.event_streams_per_user;
    let Some(permit) = state.hub.admit(viewer.user.id, cap) else {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_streams",
            format!("at most {cap} event streams open at once; close one first"),
        )
        .retry_after(15));
    };
    let cursor = Cursor {
        state: state.clone(),
        viewer,
        id: job.id,
        last,
        updates: state.hub.subscribe(),
        closing,
        first: true,
        ended: false,
        _permit: permit,
    };
    let events = stream::unfold(cursor, next_batch).flat_map(stream::iter);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The next events of the stream (after waiting for news unless it is the first look).
async fn next_batch(mut cursor: Cursor) -> Option<(Vec<Result<Event, Infallible>>, Cursor)> {
    if cursor.ended {
        return None;
    }
    if !cursor.first {
        wait_for_news(&mut cursor).await;
    }
    if *cursor.closing.borrow() {
        return None;
    }
    cursor.first = false;
    let mut batch = Vec::new();
    let rows = match cursor.state.repo.events(cursor.id, cursor.last).await {
        Ok(rows) => rows,
        Err(error) => {
            tracing::warn!(job_id = %cursor.id, %error, "events not read");
            return Some((batch, cursor));
        }
    };
    for row in rows {
        cursor.last = row.id;
        let data = ProgressEvent {
            stage: row.stage,
            percent: row.percent,
            message: row.message,
            at: row.at,
        };
        if let Ok(event) =
            Event::default().id(row.id.to_string()).event("progress").json_data(&data)
        {
            batch.push(Ok(event));
        }
    }
    match cursor.state.repo.get(cursor.id).await {
        Ok(Some(job)) if job.state.is_final() => {
            if let Ok(event) = Event::default().event("end").json_data(crate::jobs::job_view(
                &cursor.state,
                &cursor.viewer,
                &job,
            )) {
                batch.push(Ok(event));
            }
            cursor.ended = true;
        }
        // Deleted while watched: nothing more will come.
        Ok(None) => {
            batch.push(Ok(Event::default().event("deleted").data(cursor.id.to_string())));
            cursor.ended = true;
        }
        _ => {}
    }
    Some((batch, cursor))
}

/// Returns when this job was notified, the API began shutting down, or after [`POLL`].
async fn wait_for_news(cursor: &mut Cursor) {
    let mut closing = cursor.closing.clone();
    let wait = async {
        loop {
            match cursor.updates.recv().await {
                Ok(id) if id == cursor.id => return,
                Ok(_) => {}
                // Missed some: look now rather than risk having missed ours.
                Err(broadcast::error::RecvError::Lagged(_)) => return,
                Err(broadcast::error::RecvError::Closed) => {
                    std::future::pending::<()>().await;
                }
            }
        }
    };
    tokio::select! {
        _ = tokio::time::timeout(POLL, wait) => {}
        _ = closing.wait_for(|closing| *closing) => {}
    }
}
