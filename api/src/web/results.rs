//! The results part of the job page: the current version's downloads, a failed reprocess's
//! notice, the history of versions with their downloads, and the Restore button
//! (`POST /jobs/{id}/versions/{number}/restore`).

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use minutes_shared::jobs::{Job, VersionOutcome};

use super::html::{csrf_field, escape};
use super::{error_page, CsrfForm};
use crate::auth::{PageUser, Principal};
use crate::downloads::FILES;
use crate::jobs::{find, signed_link};
use crate::versions::{restore_version, views, VersionView};
use crate::AppState;

/// What a download is called on the page.
fn label(file: &str) -> &'static str {
    match file {
        "minutes.pdf" => "Minutes (PDF)",
        "minutes.json" => "Minutes (JSON)",
        "transcript.txt" => "Transcript (text)",
        "transcript.srt" => "Subtitles (SRT)",
        "transcript.vtt" => "Subtitles (WebVTT)",
        _ => "Transcript (JSON)",
    }
}

/// What a download is called in the history table, where a row has all of them.
fn short_label(file: &str) -> &'static str {
    match file {
        "minutes.pdf" => "PDF",
        "minutes.json" => "minutes JSON",
        "transcript.txt" => "text",
        "transcript.srt" => "SRT",
        "transcript.vtt" => "WebVTT",
        _ => "transcript JSON",
    }
}

/// The current version's downloads, and why the last reprocess failed when it did.
pub fn downloads(state: &AppState, viewer: &Principal, job: &Job) -> String {
    let links: String = FILES
        .iter()
        .filter(|f| job.artifacts.get(f.name).is_some())
        .map(|f| {
            let class = if f.name == "minutes.pdf" { "button" } else { "button secondary" };
            let href = escape(&signed_link(state, viewer, job.id, f.name));
            format!(r#"<li><a class="{class}" href="{href}" download>{}</a></li>"#, label(f.name))
        })
        .collect();
    let version = job.current_version.map(|n| format!(" (version {n})")).unwrap_or_default();
    let mut out = format!(
        r#"<section class="card" aria-labelledby="downloads-h"><h2 id="downloads-h">Downloads{version}</h2><ul class="downloads" id="downloads">{links}</ul></section>"#
    );
    if let Some(reason) = &job.reprocess_failure {
        out += &format!(
            r#"<section class="card failure" aria-labelledby="reprocess-h"><h2 id="reprocess-h">The reprocess failed</h2><p id="reprocess-reason">{}</p><p>The minutes above are still the current version.</p></section>"#,
            escape(&reason.plain())
        );
    }
    out
}

/// One row of the history table.
fn version_row(viewer: &Principal, job: &Job, version: &VersionView) -> String {
    let what = match version.from_stage.as_str() {
        "decode" if version.number == 1 => "First run".to_string(),
        stage => format!("Reprocessed from {stage}"),
    };
    let mut changes: Vec<String> = Vec::new();
    if let Some(model) = &version.options.model {
        changes.push(format!("model {model}"));
    }
    if let Some(summarizer) = version.options.summarizer {
        changes.push(format!("summarizer {}", summarizer.as_str()));
    }
    let changes =
        if changes.is_empty() { String::new() } else { format!(" ({})", changes.join(", ")) };
    let outcome = match (version.current, version.outcome) {
        (true, _) => "current".to_string(),
        (false, VersionOutcome::Failed) => match &version.failure {
            Some(reason) => format!("failed: {}", reason.plain()),
            None => "failed".into(),
        },
        (false, outcome) => outcome.as_str().to_string(),
    };
    let files: String = version
        .files
        .iter()
        .map(|(name, href)| {
            format!(r#"<a href="{}" download>{}</a>"#, escape(href), short_label(name))
        })
        .collect::<Vec<_>>()
        .join(" · ");
    let restore = if !version.current
        && version.outcome == VersionOutcome::Ready
        && job.state.is_final()
    {
        format!(
            r#"<form method="post" action="/jobs/{id}/versions/{n}/restore">{csrf}<button type="submit" class="secondary" id="restore-{n}">Restore</button></form>"#,
            id = job.id,
            n = version.number,
            csrf = csrf_field(viewer),
        )
    } else {
        String::new()
    };
    format!(
        r#"<tr id="version-{n}"><td>{n}</td><td>{what}{changes}</td><td>{who}</td><td>{when}</td><td class="outcome">{outcome}</td><td>{files}</td><td>{restore}</td></tr>"#,
        n = version.number,
        what = escape(&what),
        changes = escape(&changes),
        who = escape(version.requested_by.as_deref().unwrap_or("-")),
        when = version.created_at.format("%Y-%m-%d %H:%M UTC"),
        outcome = escape(&outcome),
    )
}

/// The history of versions, when there is more than one (one version is no history).
pub async fn history(state: &AppState, viewer: &Principal, job: &Job) -> String {
    let versions = match views(state, viewer, job).await {
        Ok(versions) => versions,
        Err(error) => {
            tracing::warn!(job_id = %job.id, error = ?error, "versions not listed");
            return String::new();
        }
    };
    if versions.len() < 2 {
        return String::new();
    }
    let rows: String = versions.iter().map(|v| version_row(viewer, job, v)).collect();
    format!(
        r#"<section class="card" aria-labelledby="history-h"><h2 id="history-h">Versions</h2><div class="scroll"><table id="versions"><thead><tr><th scope="col">#</th><th scope="col">What</th><th scope="col">By</th><th scope="col">When</th><th scope="col">State</th><th scope="col">Downloads</th><th scope="col"></th></tr></thead><tbody>{rows}</tbody></table></div></section>"#
    )
}

/// `POST /jobs/{id}/versions/{number}/restore`: the Restore button.
pub async fn restore_form(
    State(state): State<AppState>,
    PageUser(viewer): PageUser,
    Path((id, number)): Path<(String, String)>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let given = form.ok().map(|Form(form)| form.csrf);
    if let Err(error) = viewer.check_csrf(given.as_deref()) {
        return error_page(Some(&viewer), error);
    }
    let job = match find(&state, &viewer, &id).await {
        Ok(job) => job,
        Err(error) => return error_page(Some(&viewer), error),
    };
    match restore_version(&state, &job, &number).await {
        Ok(job) => Redirect::to(&format!("/jobs/{}", job.id)).into_response(),
        Err(error) => error_page(Some(&viewer), error),
    }
}
