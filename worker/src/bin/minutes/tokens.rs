//! `minutes tokens create|list|revoke`: API tokens for the command line and scripts. The
//! first token can be made with an email and password (prompted for, or read from standard
//! input); `--save` keeps it in the config folder, readable by its owner only.

use anyhow::{bail, Context as _};
use serde_json::Value;

use crate::client::{save_token, ApiArgs, Client};

/// `minutes tokens ...`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    api: ApiArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Make a token; it is printed once.
    Create {
        /// What it is for ("laptop", "nightly batch").
        name: String,
        /// Sign in with this email and a password instead of an existing token.
        #[arg(long)]
        email: Option<String>,
        /// Save it in the config folder (mode 600), where the commands find it.
        #[arg(long)]
        save: bool,
    },
    /// List your tokens.
    List,
    /// Revoke one of your tokens.
    Revoke {
        /// Its id (see `minutes tokens list`).
        id: String,
    },
}

/// Runs `minutes tokens ...`.
pub fn run(args: Args) -> anyhow::Result<()> {
    crate::jobs::runtime()?.block_on(run_async(args))
}

async fn run_async(args: Args) -> anyhow::Result<()> {
    let client = Client::new(&args.api)?;
    match args.command {
        Command::Create { name, email, save } => {
            let made = match email {
                Some(email) => {
                    let password =
                        crate::password::read(&format!("Password for {email}: "), false)?;
                    client.without_token().create_token(&name, Some((&email, &password))).await?
                }
                None if client.has_token() => client.create_token(&name, None).await?,
                None => bail!("no token yet: add --email YOU to sign in with your password"),
            };
            let secret = made["secret"].as_str().context("the API sent no token")?;
            if args.api.json {
                println!("{made}");
            } else {
                println!("{secret}");
                eprintln!(
                    "token {:?} made; it is not shown again",
                    made["name"].as_str().unwrap_or("")
                );
            }
            if save {
                let path = save_token(secret)?;
                eprintln!("saved in {}", path.display());
            }
        }
        Command::List => {
            let tokens = client.get_json("/api/v1/tokens").await?;
            if args.api.json {
                println!("{tokens}");
                return Ok(());
            }
            println!(
                "{:<36}  {:<20}  {:<12}  {:<16}  {:<16}  STATE",
                "ID", "NAME", "STARTS", "CREATED", "LAST USED"
            );
            for token in tokens.as_array().into_iter().flatten() {
                let time = |field: &str| -> String {
                    token[field]
                        .as_str()
                        .map(|t| t.replace('T', " ").chars().take(16).collect())
                        .unwrap_or_else(|| "never".into())
                };
                println!(
                    "{:<36}  {:<20}  {:<12}  {:<16}  {:<16}  {}",
                    text(token, "id"),
                    text(token, "name"),
                    text(token, "prefix"),
                    time("created_at"),
                    time("last_used_at"),
                    if token["revoked_at"].is_string() { "revoked" } else { "active" },
                );
            }
        }
        Command::Revoke { id } => {
            client.revoke_token(&id).await?;
            println!("revoked {id}");
        }
    }
    Ok(())
}

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or("")
}
