//! The web pages, rendered on the server with a small plain script (`assets/app.js`) for
//! the upload progress bar and live job progress; no build step. Everything works without
//! the script except the live parts: the form posts to `/upload`, downloads are links.
//!
//! - `/`: upload a recording (drag and drop or picker), title, email, language.
//! - `/jobs/{id}`: the stage timeline, percent, elapsed time and estimate, the failure
//!   reason with a Retry button, the current version's downloads and the minutes' summary,
//!   decisions and action items, and the history of versions with Restore buttons
//!   ([`results`]).
//! - `/jobs`: recent jobs.
//!
//! Every page but sign-in needs a session ([`PageUser`]); every form carries the
//! session's form token.

pub mod html;
pub mod results;

use crate::form::BoundedMultipart;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use minutes_shared::jobs::{Job, JobFilter, JobState};
use minutes_shared::stage::JobStage;
use minutes_shared::subtitles::clock as stamp;
use minutes_shared::Minutes;
use serde::Deserialize;

use crate::auth::{PageUser, Principal};
use crate::error::ApiError;
use crate::jobs::{find, signed_link};
use crate::sniff::SUPPORTED;
use crate::AppState;
use html::{clock, csrf_field, escape, page, size};

/// File name endings the upload page accepts before sending (the server checks the bytes).
const EXTENSIONS: &str = ".wav,.flac,.ogg,.oga,.opus,.mp3,.aac,.m4a,.mp4,.mov,.m4v,.webm,.mkv,.mka";

/// The timeline, in order: (the job's stage, label on the page).
const TIMELINE: [(JobStage, &str); 6] = [
    (JobStage::Upload, "Upload"),
    (JobStage::Decode, "Decode"),
    (JobStage::Transcribe, "Transcribe"),
    (JobStage::Summarize, "Summarize"),
    (JobStage::Render, "PDF"),
    (JobStage::Notify, "Email"),
];

/// Languages offered on the upload page (ISO 639-1 code, name).
const LANGUAGES: [(&str, &str); 10] = [
    ("en", "English"),
    ("de", "German"),
    ("fr", "French"),
    ("es", "Spanish"),
    ("it", "Italian"),
    ("nl", "Dutch"),
    ("pt", "Portuguese"),
    ("pl", "Polish"),
    ("sv", "Swedish"),
    ("ja", "Japanese"),
];

/// `GET /`: the upload page.
pub async fn upload_page(
    State(state): State<AppState>,
    PageUser(viewer): PageUser,
) -> Html<String> {
    let max = state.settings.max_upload_bytes;
    let languages: String = LANGUAGES
        .iter()
        .map(|(code, name)| format!(r#"<option value="{code}">{name}</option>"#))
        .collect();
    let body = format!(
        r#"<h1>Make minutes from a recording</h1>
<p class="lead">Upload a meeting recording (audio or video). You get PDF minutes with a summary, decisions and action items, and the full transcript.</p>
<form id="upload" class="card" action="/upload" method="post" enctype="multipart/form-data" data-max-bytes="{max}" data-extensions="{EXTENSIONS}">
  {csrf}
  <div id="drop" class="drop">
    <label for="file">Recording</label>
    <input type="file" id="file" name="file" required accept="audio/*,video/*,{EXTENSIONS}" aria-describedby="file-help">
    <p id="file-help" class="help">Drop a file here or choose one. {SUPPORTED}; up to {max_text}.</p>
  </div>
  <label for="title">Title <span class="optional">(optional)</span></label>
  <input type="text" id="title" name="title" maxlength="300" autocomplete="off">
  <label for="email">Email the minutes to <span class="optional">(optional)</span></label>
  <input type="email" id="email" name="email" autocomplete="email" placeholder="{own_email}" aria-describedby="email-help">
  <p id="email-help" class="help">Empty: to you, {own_email}.</p>
  <label for="language">Spoken language</label>
  <select id="language" name="language"><option value="">Detect automatically</option>{languages}</select>
  <label for="vocabulary">Names and terms to expect <span class="optional">(optional)</span></label>
  <input type="text" id="vocabulary" name="vocabulary" maxlength="500" autocomplete="off" aria-describedby="vocabulary-help">
  <p id="vocabulary-help" class="help">People, products and jargon, separated by commas, e.g. Kubernetes, Sarah Chen: the speech recognition spells them this way.</p>
  <label for="speakers">Speakers</label>
  <select id="speakers" name="speakers" aria-describedby="speakers-help"><option value="auto">Find them from the voices</option><option value="1">1</option><option value="2">2</option><option value="3">3</option><option value="4">4</option><option value="5">5</option><option value="6">6</option><option value="8">8</option><option value="10">10</option><option value="off">Do not identify speakers</option></select>
  <p id="speakers-help" class="help">Knowing how many people speak helps tell their voices apart.</p>
  {models}<button type="submit" id="submit">Upload and make minutes</button>
  <div id="progress" class="progress" hidden>
    <label for="upload-bar">Uploading</label>
    <progress id="upload-bar" max="100" value="0"></progress>
    <span id="upload-text" aria-live="polite"></span>
    <button type="button" id="cancel" class="secondary">Cancel upload</button>
  </div>
  <p id="error" class="error" role="alert"></p>
</form>"#,
        max_text = size(i64::try_from(max).unwrap_or(i64::MAX)),
        csrf = csrf_field(&viewer),
        own_email = escape(&viewer.user.email),
        models = model_choice(&state),
    );
    Html(page(Some(&viewer), "Upload", &body))
}

/// A choice of speech model when the installation offers more than one.
fn model_choice(state: &AppState) -> String {
    let offered = state.settings.service.models.models();
    if offered.len() < 2 {
        return String::new();
    }
    let options: String = offered
        .iter()
        .map(|m| format!(r#"<option value="{0}">{0}</option>"#, escape(&m.name)))
        .collect();
    format!(
        r#"<label for="model">Speech model</label>
  <select id="model" name="model"><option value="">The default</option>{options}</select>
  "#
    )
}

/// `POST /upload`: the form without the script; answers with the job page.
pub async fn upload_form(
    State(state): State<AppState>,
    PageUser(viewer): PageUser,
    headers: HeaderMap,
    BoundedMultipart(multipart): BoundedMultipart,
) -> Response {
    // A form post: the form's csrf field must precede the file.
    match crate::upload::accept(&state, &viewer, viewer.needs_csrf(), &headers, multipart).await {
        Ok((job, _)) => Redirect::to(&format!("/jobs/{}", job.id)).into_response(),
        Err(error) => error_page(Some(&viewer), error),
    }
}

/// A page saying what went wrong, with the error's status (and `Retry-After`).
pub fn error_page(viewer: Option<&Principal>, error: ApiError) -> Response {
    let body = format!(
        r#"<h1>That did not work</h1><p class="error" role="alert">{}</p><p><a href="/">Back to the upload page</a></p>"#,
        escape(&error.message)
    );
    let mut response = (error.status, Html(page(viewer, "Error", &body))).into_response();
    if let Some(seconds) = error.retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

fn stage_index(stage: JobStage) -> usize {
    TIMELINE.iter().position(|(step, _)| *step == stage).unwrap_or(0)
}

fn timeline(job: &Job) -> String {
    let current = stage_index(job.stage);
    TIMELINE
        .iter()
        .enumerate()
        .map(|(i, (name, label))| {
            let class = match job.state {
                JobState::Done => "done",
                JobState::Queued if i == 0 => "done",
                JobState::Queued => "pending",
                JobState::Failed | JobState::Cancelled if i == current => "failed",
                _ if i < current => "done",
                _ if i == current => "current",
                _ => "pending",
            };
            let aria = if class == "current" { r#" aria-current="step""# } else { "" };
            let note = if class == "failed" {
                r#"<span class="visually-hidden"> (stopped here)</span>"#
            } else {
                ""
            };
            format!(r#"<li data-stage="{name}" class="{class}"{aria}>{label}{note}</li>"#)
        })
        .collect()
}

fn state_words(job: &Job) -> &'static str {
    match job.state {
        JobState::Queued => "Waiting for a worker",
        JobState::Running => "Working",
        JobState::Done => "Done",
        JobState::Failed => "Failed",
        JobState::Cancelled => "Cancelled",
    }
}

async fn minutes_of(state: &AppState, job: &Job) -> Option<Minutes> {
    let key = job.artifacts.get("minutes.json")?.as_str()?;
    let bytes = state.storage.get(key).await.ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Who took part: name, talk time and share, when the speakers are known.
fn participants_html(minutes: &Minutes) -> String {
    if minutes.participants.is_empty() {
        return String::new();
    }
    let rows: String = minutes
        .participants
        .iter()
        .map(|p| {
            format!(
                r#"<tr><td>{}</td><td class="at">{}</td><td>{:.0} %</td></tr>"#,
                escape(p.display_name()),
                stamp(p.talk_time),
                p.share * 100.0
            )
        })
        .collect();
    format!(
        r#"<section aria-labelledby="participants-h"><h2 id="participants-h">Participants</h2><table id="participants"><thead><tr><th>Name</th><th>Talk time</th><th>Share</th></tr></thead><tbody>{rows}</tbody></table></section>"#
    )
}

fn minutes_html(minutes: &Minutes) -> String {
    let points = |items: &[minutes_shared::Point]| -> String {
        items
            .iter()
            .map(|p| {
                format!(r#"<li><span class="at">[{}]</span> {}</li>"#, stamp(p.at), escape(&p.text))
            })
            .collect()
    };
    let mut out = participants_html(minutes);
    out += &format!(
        r#"<section aria-labelledby="summary-h"><h2 id="summary-h">Summary</h2><p id="summary">{}</p></section>"#,
        escape(&minutes.summary)
    );
    if !minutes.decisions.is_empty() {
        out += &format!(
            r#"<section aria-labelledby="decisions-h"><h2 id="decisions-h">Decisions</h2><ul id="decisions">{}</ul></section>"#,
            points(&minutes.decisions)
        );
    }
    if !minutes.action_items.is_empty() {
        let rows: String = minutes
            .action_items
            .iter()
            .map(|a| {
                format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"at\">{}</td></tr>",
                    escape(a.owner.as_deref().unwrap_or("-")),
                    escape(a.due.as_deref().unwrap_or("-")),
                    escape(&a.text),
                    stamp(a.at)
                )
            })
            .collect();
        out += &format!(
            r#"<section aria-labelledby="actions-h"><h2 id="actions-h">Action items</h2><div class="scroll"><table id="actions"><thead><tr><th scope="col">Owner</th><th scope="col">Due</th><th scope="col">Item</th><th scope="col">Time</th></tr></thead><tbody>{rows}</tbody></table></div></section>"#
        );
    }
    out + &transcript_html(minutes)
}

/// The transcript, lines the model was unsure of marked, under the quality note.
fn transcript_html(minutes: &Minutes) -> String {
    if minutes.transcript.is_empty() {
        return String::new();
    }
    let note = minutes
        .quality
        .as_ref()
        .map(|q| format!(r#"<p id="quality" class="help">{}</p>"#, escape(&q.describe())))
        .unwrap_or_default();
    let legend = match minutes.transcript.iter().any(|s| s.is_low_confidence()) {
        true => {
            r#"<p class="help">Lines marked <span class="unsure-mark">(?)</span> are ones the speech recognition was unsure of: check their words.</p>"#
        }
        false => "",
    };
    let lines: String = minutes
        .transcript
        .iter()
        .map(|segment| {
            let (class, mark) = match segment.is_low_confidence() {
                true => (r#" class="unsure""#, r#" <span class="unsure-mark" title="the speech recognition was unsure of this line">(?)</span>"#),
                false => ("", ""),
            };
            let speaker = minutes.speaker_name(segment).map_or(String::new(), |name| {
                format!(r#"<span class="speaker">{}:</span> "#, escape(name))
            });
            format!(
                r#"<li{class}><span class="at">[{}]</span> {speaker}{}{mark}</li>"#,
                stamp(segment.start),
                escape(&segment.text)
            )
        })
        .collect();
    format!(
        r#"<section aria-labelledby="transcript-h"><h2 id="transcript-h">Transcript</h2>{note}{legend}<ol id="transcript" class="transcript">{lines}</ol></section>"#
    )
}

/// `GET /jobs/{id}`: one job.
pub async fn job_page(
    State(state): State<AppState>,
    PageUser(viewer): PageUser,
    Path(id): Path<String>,
) -> Response {
    let job = match find(&state, &viewer, &id).await {
        Ok(job) => job,
        Err(error) => return error_page(Some(&viewer), error),
    };
    // The current version's minutes name the meeting as its PDF does (a restored version
    // keeps its own title).
    let minutes = match job.current_version {
        Some(_) => minutes_of(&state, &job).await,
        None => None,
    };
    let title = minutes
        .as_ref()
        .map(|m| m.title.clone())
        .filter(|t| !t.is_empty())
        .or_else(|| job.title.clone())
        .unwrap_or_else(|| job.original_filename.clone());
    let started = job.started_at.unwrap_or(job.created_at);
    let elapsed = (job.finished_at.unwrap_or_else(chrono::Utc::now) - started).num_milliseconds()
        as f64
        / 1000.0;
    let mut body = format!(
        r#"<h1>{title}</h1>
<p class="meta">{file} · {size}{duration} · uploaded {created}</p>
<section class="card" id="job" data-job="{id}" data-state="{state}" data-started="{started}" aria-labelledby="progress-h">
  <h2 id="progress-h">Progress: <span id="state">{words}</span></h2>
  <ol class="timeline" id="timeline">{timeline}</ol>
  <label for="job-bar" class="visually-hidden">Percent done</label>
  <progress id="job-bar" max="100" value="{percent:.0}"></progress> <span id="percent">{percent:.0}%</span>
  <p id="status" aria-live="polite">{message}</p>
  <p id="timing" class="help">{timing}</p>
</section>"#,
        title = escape(&title),
        file = escape(&job.original_filename),
        size = size(job.size_bytes),
        duration = job.media_duration.map(|d| format!(" · {}", clock(d))).unwrap_or_default(),
        created = job.created_at.format("%Y-%m-%d %H:%M UTC"),
        id = job.id,
        state = job.state,
        started = started.to_rfc3339(),
        words = state_words(&job),
        timeline = timeline(&job),
        percent = job.percent,
        message = escape(&job.message),
        timing = if job.state.is_final() {
            format!("Took {}", clock(elapsed))
        } else {
            format!("Elapsed {}", clock(elapsed))
        },
    );
    if matches!(job.state, JobState::Failed | JobState::Cancelled) {
        let reason = match &job.failure_reason {
            Some(reason) => reason.plain(),
            None => "The job was cancelled.".to_string(),
        };
        body += &format!(
            r#"<section class="card failure" aria-labelledby="failure-h"><h2 id="failure-h">Why it stopped</h2><p id="reason">{}</p>
<form method="post" action="/jobs/{}/retry">{}<button type="submit" id="retry">Retry</button></form></section>"#,
            escape(&reason),
            job.id,
            csrf_field(&viewer),
        );
    }
    // The current version stays downloadable while a reprocess runs, and after one failed.
    if job.current_version.is_some() {
        body += &results::downloads(&state, &viewer, &job);
        if let Some(minutes) = &minutes {
            body += &format!(r#"<div class="card minutes">{}</div>"#, minutes_html(minutes));
        }
    }
    body += &results::history(&state, &viewer, &job).await;
    Html(page(Some(&viewer), &title, &body)).into_response()
}

/// A form whose only field is the session's form token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /jobs/{id}/retry`: the Retry button.
pub async fn retry_form(
    State(state): State<AppState>,
    PageUser(viewer): PageUser,
    Path(id): Path<String>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    // A request that is not a form (an API client's) is judged like one without a token.
    let given = form.ok().map(|Form(form)| form.csrf);
    if let Err(error) = viewer.check_csrf(given.as_deref()) {
        return error_page(Some(&viewer), error);
    }
    let id = match find(&state, &viewer, &id).await {
        Ok(job) => job.id,
        Err(error) => return error_page(Some(&viewer), error),
    };
    match state.repo.retry(id).await {
        Ok(true) => match state.enqueue(id).await {
            Ok(()) => Redirect::to(&format!("/jobs/{id}")).into_response(),
            Err(error) => error_page(Some(&viewer), error),
        },
        Ok(false) => Redirect::to(&format!("/jobs/{id}")).into_response(),
        Err(error) => error_page(Some(&viewer), error.into()),
    }
}

/// `GET /jobs`: recent jobs (the viewer's; an admin's page shows everyone's).
pub async fn jobs_page(State(state): State<AppState>, PageUser(viewer): PageUser) -> Response {
    let jobs = match state.repo.list(viewer.scope(), &JobFilter::default(), 50, None).await {
        Ok(jobs) => jobs,
        Err(error) => return error_page(Some(&viewer), error.into()),
    };
    let rows: String = jobs
        .iter()
        .map(|job| {
            let title = job.title.clone().unwrap_or_else(|| job.original_filename.clone());
            let pdf = if job.artifacts.get("minutes.pdf").is_some() {
                let href = escape(&signed_link(&state, &viewer, job.id, "minutes.pdf"));
                format!(r#"<a href="{href}" download>PDF</a>"#)
            } else {
                String::new()
            };
            format!(
                r#"<tr><td><a href="/jobs/{id}">{title}</a></td><td class="state-{state}">{state}</td><td>{duration}</td><td>{created}</td><td>{pdf}</td></tr>"#,
                id = job.id,
                title = escape(&title),
                state = job.state,
                duration = job.media_duration.map(clock).unwrap_or_else(|| "-".into()),
                created = job.created_at.format("%Y-%m-%d %H:%M"),
            )
        })
        .collect();
    let body = if jobs.is_empty() {
        r#"<h1>Recent jobs</h1><p>No jobs yet. <a href="/">Upload a recording</a>.</p>"#.to_string()
    } else {
        format!(
            r#"<h1>Recent jobs</h1><div class="scroll"><table id="jobs"><thead><tr><th scope="col">Meeting</th><th scope="col">State</th><th scope="col">Length</th><th scope="col">Uploaded (UTC)</th><th scope="col">Minutes</th></tr></thead><tbody>{rows}</tbody></table></div>"#
        )
    };
    Html(page(Some(&viewer), "Recent jobs", &body)).into_response()
}

/// The stylesheet.
pub async fn stylesheet() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("../../assets/app.css"))
}

/// The script.
pub async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../assets/app.js"),
    )
}

/// The answer to a path no route serves: a page for people, JSON under `/api/`.
pub async fn not_found(uri: axum::http::Uri) -> Response {
    let error = ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route");
    if uri.path().starts_with("/api/") {
        error.into_response()
    } else {
        error_page(
            None,
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "There is no such page."),
        )
    }
}
