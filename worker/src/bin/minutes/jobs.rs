//! `minutes jobs list|show|watch|download|delete`, `minutes retry ID...` and
//! `minutes cancel ID...`: looking at jobs, fetching their files and acting on a few,
//! through the API.

use anyhow::bail;
use minutes_shared::jobs::JobState;

use crate::client::{clock, table, ApiArgs, Client, Selector};

/// Arguments of `minutes jobs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Jobs, newest first.
    List(Selector),
    /// One job in full.
    Show {
        /// The job's id.
        id: String,
    },
    /// Live stage and percent of a job until it ends.
    Watch {
        /// The job's id.
        id: String,
    },
    /// Save one of a job's files (of its current version).
    Download {
        /// The job's id.
        id: String,
        /// minutes.pdf, minutes.json, transcript.txt, transcript.srt, transcript.vtt,
        /// transcript.json or upload (the recording).
        #[arg(long, short, default_value = "minutes.pdf")]
        file: String,
        /// Where to write it (default: the file's name, in the current folder).
        #[arg(long, short)]
        out: Option<std::path::PathBuf>,
    },
    /// Delete jobs with their recordings, transcripts and minutes (cannot be undone).
    Delete {
        /// Job ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

/// Arguments of `minutes retry` and `minutes cancel`.
#[derive(Debug, clap::Args)]
pub struct IdsArgs {
    /// Job ids.
    #[arg(required = true)]
    ids: Vec<String>,
    #[command(flatten)]
    api: ApiArgs,
}

/// The one-thread runtime the service commands run their requests on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::new(&args.api)?;
    let runtime = runtime()?;
    match args.command {
        Command::List(selector) => {
            let jobs = runtime.block_on(client.list(&selector))?;
            if args.api.json {
                println!("{}", serde_json::to_string_pretty(&jobs)?);
            } else if jobs.is_empty() {
                eprintln!("no jobs match");
            } else {
                print!("{}", table(&jobs));
            }
        }
        Command::Show { id } => {
            let job = runtime.block_on(client.job(&id))?;
            let versions = runtime.block_on(client.versions(&id))?;
            if args.api.json {
                let mut shown = serde_json::to_value(&job)?;
                shown["versions"] = serde_json::to_value(&versions)?;
                println!("{}", serde_json::to_string_pretty(&shown)?);
            } else {
                println!("id:        {}", job.id);
                println!("file:      {}", job.filename);
                println!("title:     {}", job.title.as_deref().unwrap_or("-"));
                println!(
                    "state:     {} ({} {:.0}%) {}",
                    job.state, job.stage, job.percent, job.message
                );
                println!(
                    "length:    {}",
                    job.duration_seconds.map(clock).unwrap_or_else(|| "-".into())
                );
                println!("attempts:  {}", job.attempts);
                println!("created:   {}", job.created_at);
                println!(
                    "finished:  {}",
                    job.finished_at.map_or_else(|| "-".to_string(), |t| t.to_string())
                );
                if let Some(reason) = &job.failure_reason {
                    println!("failed:    {reason}");
                }
                if let Some(reason) = &job.reprocess_failure {
                    println!("reprocess: failed ({reason}); the current version stands");
                }
                println!("versions:");
                for version in &versions {
                    let failure =
                        version.failure.as_ref().map(|r| format!(" ({r})")).unwrap_or_default();
                    println!(
                        "  {}{:<3} {:<9} from {:<10} {} by {}{failure}",
                        if version.current { "*" } else { " " },
                        version.number,
                        version.outcome,
                        version.from_stage,
                        version.created_at,
                        version.requested_by.as_deref().unwrap_or("-"),
                    );
                }
            }
        }
        Command::Download { id, file, out } => {
            let target = out.unwrap_or_else(|| std::path::PathBuf::from(&file));
            let written = runtime.block_on(client.download(&id, &file, &target))?;
            eprintln!("{}: {written} bytes", target.display());
        }
        Command::Delete { ids } => {
            let mut failed = 0;
            for id in &ids {
                match runtime.block_on(client.delete(id)) {
                    Ok(()) => eprintln!("deleted {id}"),
                    Err(error) => {
                        failed += 1;
                        eprintln!("minutes: delete {id}: {error:#}");
                    }
                }
            }
            if failed > 0 {
                bail!("{failed} of {} jobs not deleted", ids.len());
            }
        }
        Command::Watch { id } => {
            let json = args.api.json;
            runtime.block_on(client.watch(&id, |event| {
                if json {
                    println!("{event}");
                } else if let Some(stage) = event["stage"].as_str() {
                    println!(
                        "{:<10} {:>5.1}%  {}",
                        stage,
                        event["percent"].as_f64().unwrap_or(0.0),
                        event["message"].as_str().unwrap_or("")
                    );
                } else if let Some(state) = event["state"].as_str() {
                    println!(
                        "ended: {state}{}",
                        event["failure_reason"]
                            .as_str()
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default()
                    );
                }
            }))?;
            let job = runtime.block_on(client.job(&id))?;
            if let Some(reason) = &job.reprocess_failure {
                bail!("job {id}: the reprocess failed ({reason}); its earlier minutes stand");
            }
            if job.state != JobState::Done {
                bail!("job {id} ended {}", job.state);
            }
        }
    }
    Ok(())
}

/// `minutes retry` (`action` "retry") and `minutes cancel` ("cancel").
pub fn act(args: IdsArgs, action: &str) -> anyhow::Result<()> {
    let client = Client::new(&args.api)?;
    let runtime = runtime()?;
    let mut results = Vec::new();
    let mut failed = 0;
    for id in &args.ids {
        match runtime.block_on(client.action(id, action, None)) {
            Ok(job) => results.push(job),
            Err(error) => {
                failed += 1;
                eprintln!("minutes: {action} {id}: {error:#}");
            }
        }
    }
    if args.api.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else if !results.is_empty() {
        print!("{}", table(&results));
    }
    if failed > 0 {
        let past = if action == "retry" { "retried" } else { "cancelled" };
        bail!("{failed} of {} jobs could not be {past}", args.ids.len());
    }
    Ok(())
}
