//! `minutes reprocess`: runs chosen jobs again from a stage, with new options, through the
//! API. Jobs are chosen by the same selectors as `jobs list` or by `--id`; `--dry-run`
//! shows what would happen and changes nothing; above `--confirm-above` jobs it asks first
//! unless `--yes`. It follows the batch to the end (unless `--detach`), prints a summary
//! table, and exits non-zero when any job failed.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::time::Duration;

use anyhow::bail;
use indicatif::MultiProgress;
use minutes_shared::jobs::JobState;
use minutes_shared::options::SummarizerKind;
use serde_json::json;

use crate::client::{table, ApiArgs, Client, JobView, ReprocessBody, Selector};
use crate::follow::follow;

/// The first stage to run again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum From {
    Decode,
    Transcribe,
    Summarize,
    Render,
    Notify,
}

impl From {
    fn name(self) -> &'static str {
        match self {
            From::Decode => "decode",
            From::Transcribe => "transcribe",
            From::Summarize => "summarize",
            From::Render => "render",
            From::Notify => "notify",
        }
    }

    /// What running from here redoes, for the dry run.
    fn reruns(self) -> &'static str {
        match self {
            From::Decode | From::Transcribe => "transcribe, summarize, render",
            From::Summarize => "summarize, render",
            From::Render => "render",
            From::Notify => "email only",
        }
    }
}

/// Arguments of `minutes reprocess`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Jobs by id (instead of, or on top of, the selectors).
    #[arg(long = "id", value_name = "ID", env = "MINUTES_REPROCESS_IDS", value_delimiter = ',')]
    ids: Vec<String>,
    #[command(flatten)]
    selector: Selector,
    /// The first stage to run again; earlier results are reused, later ones replaced.
    #[arg(long, value_enum, env = "MINUTES_REPROCESS_FROM")]
    from: From,
    /// A Whisper model the service offers, by name (e.g. base).
    #[arg(long, env = "MINUTES_REPROCESS_MODEL")]
    model: Option<String>,
    /// Names and jargon to expect, e.g. "Kubernetes, Sarah Chen".
    #[arg(long, env = "MINUTES_REPROCESS_VOCABULARY")]
    vocabulary: Option<String>,
    /// Who speaks when from now on: auto, a number of speakers, or off (with --from
    /// transcribe or earlier).
    #[arg(long, env = "MINUTES_REPROCESS_SPEAKERS")]
    speakers: Option<minutes_shared::options::Speakers>,
    /// Spoken language (ISO 639-1).
    #[arg(long, env = "MINUTES_REPROCESS_LANGUAGE")]
    language: Option<String>,
    /// extractive or openai.
    #[arg(long, env = "MINUTES_REPROCESS_SUMMARIZER", value_parser = parse_summarizer)]
    summarizer: Option<SummarizerKind>,
    /// A new meeting title.
    #[arg(long, env = "MINUTES_REPROCESS_TITLE")]
    title: Option<String>,
    /// Send the minutes email again.
    #[arg(long, env = "MINUTES_REPROCESS_NOTIFY", overrides_with = "no_notify")]
    notify: bool,
    /// Send no new email (the default).
    #[arg(long)]
    no_notify: bool,
    /// Show the jobs that match and what would run; change nothing.
    #[arg(long, env = "MINUTES_REPROCESS_DRY_RUN")]
    dry_run: bool,
    /// Do not ask, however many jobs match.
    #[arg(long, short, env = "MINUTES_REPROCESS_YES")]
    yes: bool,
    /// Ask before reprocessing more jobs than this.
    #[arg(long, env = "MINUTES_CONFIRM_ABOVE", default_value_t = 20)]
    confirm_above: usize,
    /// Queue the jobs and return without following them.
    #[arg(long, env = "MINUTES_REPROCESS_DETACH")]
    detach: bool,
    #[command(flatten)]
    api: ApiArgs,
}

fn has_selector(selector: &Selector) -> bool {
    selector.state.is_some()
        || selector.since.is_some()
        || selector.until.is_some()
        || selector.filename.is_some()
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.ids.is_empty() && !has_selector(&args.selector) {
        bail!("choose jobs with --id, --state, --since, --until or --filename");
    }
    if args.from == From::Notify && !args.notify {
        bail!("--from notify only sends the email again: add --notify");
    }
    let client = Client::new(&args.api)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut jobs: Vec<JobView> = Vec::new();
    if has_selector(&args.selector) {
        jobs = runtime.block_on(client.list(&args.selector))?;
    }
    for id in &args.ids {
        if !jobs.iter().any(|j| j.id.to_string() == *id) {
            match runtime.block_on(client.job(id)) {
                Ok(job) => jobs.push(job),
                Err(error) => eprintln!("minutes: job {id}: {error:#}"),
            }
        }
    }
    if jobs.is_empty() {
        if args.api.json {
            println!("[]");
        }
        eprintln!("minutes: no jobs match; nothing to reprocess");
        return Ok(());
    }
    let options = ReprocessBody {
        from: args.from.name().to_string(),
        notify: args.notify,
        model: args.model.clone(),
        language: args.language.clone(),
        summarizer: args.summarizer,
        vocabulary: args.vocabulary.clone(),
        speakers: args.speakers,
        title: args.title.clone(),
    };
    if args.dry_run {
        if args.api.json {
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({ "dry_run": true, "request": options, "jobs": jobs })
                )?
            );
        } else {
            print!("{}", table(&jobs));
            println!(
                "dry run: {} job(s) would run again from {} ({}), {}; nothing was changed",
                jobs.len(),
                args.from.name(),
                args.from.reruns(),
                if args.notify { "with a new email" } else { "without email" }
            );
        }
        return Ok(());
    }
    if jobs.len() > args.confirm_above && !args.yes && !confirm(jobs.len(), args.from.name())? {
        bail!("not confirmed; nothing was changed");
    }
    let mut queued = Vec::new();
    let mut refused = 0;
    for job in &jobs {
        match runtime.block_on(client.action(&job.id.to_string(), "reprocess", Some(&options))) {
            Ok(job) => queued.push(job),
            Err(error) => {
                refused += 1;
                eprintln!("minutes: {} ({}): {error:#}", job.id, job.filename);
            }
        }
    }
    let bars = MultiProgress::new();
    if args.api.json {
        bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let ended = if args.detach || queued.is_empty() {
        queued
    } else {
        runtime.block_on(follow(&client, &queued, &bars, Duration::from_millis(500)))?
    };
    if args.api.json {
        println!("{}", serde_json::to_string_pretty(&ended)?);
    } else {
        print!("{}", table(&ended));
        let done = ended.iter().filter(|j| j.state == JobState::Done && !j.run_failed()).count();
        println!(
            "{} reprocessed from {}: {done} done, {} failed, {refused} refused{}",
            ended.len(),
            args.from.name(),
            ended.iter().filter(|j| j.run_failed()).count(),
            if args.detach { " (detached: still running)" } else { "" }
        );
    }
    let failed = ended.iter().filter(|j| j.run_failed()).count();
    if refused > 0 || (!args.detach && failed > 0) {
        bail!("{failed} job(s) failed, {refused} refused");
    }
    Ok(())
}

/// Asks on the terminal; refuses when there is no terminal to ask on.
fn confirm(count: usize, from: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("{count} jobs match: confirm with --yes (no terminal to ask on)");
    }
    eprint!("reprocess {count} jobs from {from}? [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// `--summarizer`: a summarizer the API knows.
fn parse_summarizer(text: &str) -> Result<SummarizerKind, String> {
    text.parse().map_err(|error: minutes_shared::options::OptionsError| error.to_string())
}
