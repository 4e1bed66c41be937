//! `minutes users add|list|disable|enable|reset-password`: accounts, managed directly in
//! Postgres (the first admin exists before any API runs). Passwords are read by
//! [`crate::password`].

use anyhow::{bail, Context as _};
use minutes_shared::accounts::{check_password, hash_password, Role, UserRepo};
use minutes_shared::jobs::JobRepo;
use sqlx::postgres::PgPoolOptions;

/// `minutes users ...`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Postgres URL of the installation.
    #[arg(
        long,
        env = "MINUTES_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/minutes",
        hide_env_values = true,
        global = true
    )]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Add a user; the password is prompted for (or read from standard input).
    Add {
        /// Their email (the sign-in name; notifications go there).
        email: String,
        /// Name shown on pages (default: the email's first part).
        #[arg(long)]
        name: Option<String>,
        /// Make them an admin (sees every user's jobs).
        #[arg(long)]
        admin: bool,
    },
    /// List users.
    List,
    /// Stop a user signing in; their sessions and tokens stop working at once.
    Disable {
        /// Their email.
        email: String,
    },
    /// Let a disabled user sign in again.
    Enable {
        /// Their email.
        email: String,
    },
    /// Set a new password (prompted for, or from standard input); signs them out.
    ResetPassword {
        /// Their email.
        email: String,
    },
}

/// Runs `minutes users ...`.
pub fn run(args: Args) -> anyhow::Result<()> {
    crate::jobs::runtime()?.block_on(run_async(args))
}

async fn run_async(args: Args) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect(&args.database_url)
        .await
        .context("cannot connect to Postgres (set MINUTES_DATABASE_URL or --database-url)")?;
    // The first admin may be made before any API or worker ran the migrations.
    JobRepo::new(pool.clone()).migrate().await?;
    let users = UserRepo::new(pool);
    match args.command {
        Command::Add { email, name, admin } => {
            let password = read_password(&format!("Password for {email}: "))?;
            let hash = tokio::task::spawn_blocking(move || hash_password(&password)).await??;
            let role = if admin { Role::Admin } else { Role::Member };
            let user = users.add(&email, name.as_deref().unwrap_or(""), &hash, role).await?;
            println!("added {} ({}, {})", user.email, user.display_name, user.role);
        }
        Command::List => {
            println!(
                "{:<32}  {:<20}  {:<6}  {:<8}  {:<16}  LAST SIGN-IN",
                "EMAIL", "NAME", "ROLE", "STATE", "CREATED"
            );
            for user in users.list().await? {
                println!(
                    "{:<32}  {:<20}  {:<6}  {:<8}  {:<16}  {}",
                    user.email,
                    user.display_name,
                    user.role,
                    if user.disabled_at.is_some() { "disabled" } else { "active" },
                    user.created_at.format("%Y-%m-%d %H:%M"),
                    user.last_login_at
                        .map(|at| at.format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_else(|| "never".into()),
                );
            }
        }
        Command::Disable { email } => {
            let user = users.set_disabled(&email, true).await?;
            println!("disabled {}: signed out everywhere, tokens stopped", user.email);
        }
        Command::Enable { email } => {
            let user = users.set_disabled(&email, false).await?;
            println!("enabled {}", user.email);
        }
        Command::ResetPassword { email } => {
            if users.by_email(&email).await?.is_none() {
                bail!("no user has the email {email}");
            }
            let password = read_password(&format!("New password for {email}: "))?;
            let hash = tokio::task::spawn_blocking(move || hash_password(&password)).await??;
            let user = users.set_password(&email, &hash).await?;
            println!("new password set for {}; their sessions ended", user.email);
        }
    }
    Ok(())
}

/// A new password, checked against the password rules.
fn read_password(prompt: &str) -> anyhow::Result<String> {
    let password = crate::password::read(prompt, true)?;
    check_password(&password)?;
    Ok(password)
}
