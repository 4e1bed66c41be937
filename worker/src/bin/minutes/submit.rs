//! `minutes submit PATH...`: uploads recordings (files, or folders searched recursively)
//! through the API, with a progress bar per file and one overall; `--wait` follows the jobs
//! until they end.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use minutes_shared::jobs::JobState;

use crate::client::{table, ApiArgs, Client, JobView};
use crate::follow::follow;

/// Arguments of `minutes submit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Recordings, or folders to search for them (recursively).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Only files whose name matches one of these globs (e.g. "*.m4a"); default: all.
    #[arg(long, env = "MINUTES_INCLUDE", value_delimiter = ',')]
    include: Vec<String>,
    /// Skip files whose name matches one of these globs.
    #[arg(long, env = "MINUTES_EXCLUDE", value_delimiter = ',')]
    exclude: Vec<String>,
    /// Meeting title for every file (default: from each file's name).
    #[arg(long, env = "MINUTES_TITLE")]
    title: Option<String>,
    /// Where the minutes are emailed.
    #[arg(long, env = "MINUTES_EMAIL")]
    email: Option<String>,
    /// Spoken language (ISO 639-1).
    #[arg(long, env = "MINUTES_LANGUAGE")]
    language: Option<String>,
    /// extractive or openai (default: the workers').
    #[arg(long, env = "MINUTES_SUMMARIZER")]
    summarizer: Option<String>,
    /// A Whisper model the service offers, by name (default: the workers').
    #[arg(long, env = "MINUTES_SUBMIT_MODEL")]
    model: Option<String>,
    /// Names and jargon to expect, e.g. "Kubernetes, Sarah Chen".
    #[arg(long, env = "MINUTES_VOCABULARY")]
    vocabulary: Option<String>,
    /// Follow the jobs until they end; the exit status says whether any failed.
    #[arg(long, env = "MINUTES_SUBMIT_WAIT")]
    wait: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// `*` matches any run, `?` one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn wanted(args: &Args, path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    (args.include.is_empty() || args.include.iter().any(|g| glob_match(g, &name)))
        && !args.exclude.iter().any(|g| glob_match(g, &name))
}

/// The files `paths` name, folders expanded (sorted, so runs are repeatable).
fn collect(args: &Args) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack: Vec<PathBuf> = args.paths.clone();
    while let Some(path) = stack.pop() {
        let meta =
            std::fs::metadata(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if meta.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            stack.extend(entries.into_iter().rev());
        } else if wanted(args, &path) {
            files.push(path);
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let files = collect(&args)?;
    if files.is_empty() {
        eprintln!("minutes: no recordings matched");
        return Ok(());
    }
    let client = Client::new(&args.api)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let bars = MultiProgress::new();
    if args.api.json {
        bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let total_bytes: u64 =
        files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
    let overall = bars.add(ProgressBar::new(total_bytes));
    overall.set_style(
        ProgressStyle::with_template("{msg:>28} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    overall.set_message(format!("{} files", files.len()));
    let mut fields: Vec<(&str, String)> = Vec::new();
    for (name, value) in [
        ("title", &args.title),
        ("email", &args.email),
        ("language", &args.language),
        ("summarizer", &args.summarizer),
        ("model", &args.model),
        ("vocabulary", &args.vocabulary),
    ] {
        if let Some(value) = value {
            fields.push((name, value.clone()));
        }
    }
    let mut submitted: Vec<JobView> = Vec::new();
    let mut failures = 0;
    let mut done_bytes = 0;
    for file in &files {
        let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        let bar = bars.insert_before(&overall, ProgressBar::new(size));
        bar.set_style(
            ProgressStyle::with_template("{msg:>28} [{bar:30}] {bytes}/{total_bytes}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let name: String =
            file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        bar.set_message(name.chars().take(28).collect::<String>());
        let (file_bar, all, base) = (bar.clone(), overall.clone(), done_bytes);
        let outcome = runtime.block_on(client.submit(file, &fields, move |sent| {
            file_bar.set_position(sent);
            all.set_position(base + sent);
        }));
        done_bytes += size;
        overall.set_position(done_bytes);
        match outcome {
            Ok(job) => {
                bar.finish_with_message(format!(
                    "{} queued",
                    name.chars().take(21).collect::<String>()
                ));
                submitted.push(job);
            }
            Err(error) => {
                failures += 1;
                bar.abandon_with_message(format!(
                    "{} FAILED",
                    name.chars().take(21).collect::<String>()
                ));
                bars.println(format!("minutes: {}: {error:#}", file.display()))?;
            }
        }
    }
    overall.finish();
    let mut jobs = submitted;
    if args.wait && !jobs.is_empty() {
        jobs = runtime.block_on(follow(&client, &jobs, &bars, Duration::from_millis(500)))?;
    }
    if args.api.json {
        println!("{}", serde_json::to_string_pretty(&jobs)?);
    } else {
        print!("{}", table(&jobs));
    }
    let failed_jobs = jobs.iter().filter(|j| args.wait && j.state != JobState::Done).count();
    if failures > 0 || failed_jobs > 0 {
        bail!("{failures} upload(s) refused, {failed_jobs} job(s) not done");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_names() {
        assert!(glob_match("*.m4a", "weekly.m4a"));
        assert!(!glob_match("*.m4a", "weekly.mp3"));
        assert!(glob_match("w?ek*", "weekly sync.flac"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a*b", "ac"));
    }
}
