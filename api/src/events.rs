//! `GET /api/v1/jobs/{id}/events`: a job's progress as Server-Sent Events.
//!
//! Workers append to `job_events` and `NOTIFY job_events, '<job id>'`. One `LISTEN`
//! connection per API process (the [`EventHub`]) fans the notifications out to every open
//! stream; each stream then reads the new rows of its job. A stream first replays the
//! events after `Last-Event-ID` (all of them on a first connect), so a reconnecting browser
//! misses nothing, and closes with an `end` event once the job is done, failed or
//! cancelled. A notification can be missed while the listener reconnects, so streams also
//! look every few seconds on their own.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use minutes_shared::jobs::EVENTS_CHANNEL;
use serde::Serialize;
use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::auth::{ApiUser, Principal};
use crate::error::{ApiError, ErrorBody};
use crate::jobs::{find, JobView};
use crate::AppState;

/// How long a stream waits for a notification before looking by itself.
const POLL: Duration = Duration::from_secs(5);

/// Relays `job_events` notifications (job ids) to the open streams.
#[derive(Debug, Clone)]
pub struct EventHub {
    sender: broadcast::Sender<Uuid>,
}

impl EventHub {
    /// Starts listening; reconnects after an outage.
    pub fn start(pool: PgPool) -> Self {
        let (sender, _) = broadcast::channel(1024);
        let hub = EventHub { sender: sender.clone() };
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

    fn subscribe(&self) -> broadcast::Receiver<Uuid> {
        self.sender.subscribe()
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
    first: bool,
    ended: bool,
}

/// Streams a job's progress: `progress` events (id = event number), then one `end` event
/// with the job when it reaches a final state.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/events", params(("id" = Uuid, Path, description = "job id")),
    responses((status = 200, description = "text/event-stream of `progress` events (ProgressEvent) and a final `end` event (JobView)"),
              (status = 404, body = ErrorBody)))]
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
    let cursor = Cursor {
        state: state.clone(),
        viewer,
        id: job.id,
        last,
        updates: state.hub.subscribe(),
        first: true,
        ended: false,
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
            if let Ok(event) = Event::default().event("end").json_data(JobView::of(
                &cursor.state,
                &cursor.viewer,
                &job,
            )) {
                batch.push(Ok(event));
            }
            cursor.ended = true;
        }
        // Deleted while watched: nothing more will come.
        Ok(None) => cursor.ended = true,
        _ => {}
    }
    Some((batch, cursor))
}

/// Returns when this job was notified, or after [`POLL`].
async fn wait_for_news(cursor: &mut Cursor) {
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
    let _ = tokio::time::timeout(POLL, wait).await;
}
