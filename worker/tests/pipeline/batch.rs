//! The batch commands (`minutes submit`, `jobs`, `reprocess`) against the real service:
//! the API in this process, worker processes, Postgres, Redis, a local store, the SMTP
//! server and the OpenAI-compatible LLM server.

use minutes_shared::jobs::JobState;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::service::{Service, Store};
use super::*;

/// Runs `minutes ARGS` against the service's API.
fn cli(service: &Service, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_minutes"))
        .args(args)
        .env("MINUTES_API_URL", &service.base)
        .env("MINUTES_API_TOKEN", &service.token)
        .env("MINUTES_CONFIG_DIR", service.dir.join("no-config"))
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run minutes")
}

fn json_of(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "--json output does not parse ({e}):\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

async fn counts(service: &Service) -> (i64, i64, i64, usize) {
    let pool = service.repo.pool();
    let count = |table: &str| format!("SELECT count(*) FROM {table}");
    let jobs: i64 = sqlx::query_scalar(&count("jobs")).fetch_one(pool).await.unwrap();
    let events: i64 = sqlx::query_scalar(&count("job_events")).fetch_one(pool).await.unwrap();
    let intents: i64 = sqlx::query_scalar(&count("email_intents")).fetch_one(pool).await.unwrap();
    (jobs, events, intents, service.stored_files().len())
}

async fn download(service: &Service, id: &str, file: &str) -> Vec<u8> {
    let response = service.download(id.parse().unwrap(), file).await;
    assert_eq!(response.status(), reqwest::StatusCode::OK, "{id} {file}");
    response.bytes().await.unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_a_folder_then_reprocess_with_another_provider_dry_run_and_a_lost_upload() {
    let mut service = Service::start(Store::Local).await;
    let llm = llm::llm_url();
    let worker_env = [
        ("MINUTES_LLM_URL", llm.as_str()),
        ("MINUTES_LLM_MODEL", "SmolLM2-135M-Instruct"),
        ("MINUTES_LLM_CONTEXT_TOKENS", "2048"),
        ("MINUTES_LLM_MAX_OUTPUT_TOKENS", "512"),
        ("MINUTES_LLM_TIMEOUT_SECS", "600"),
    ];
    service.spawn_worker(&worker_env);
    service.spawn_worker(&worker_env);

    // A folder of 10 recordings in subfolders, and a text file the exclude glob skips.
    let folder = tempdir();
    let formats = fixture("formats");
    let mut names: Vec<String> = std::fs::read_dir(&formats)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("hello_") && !n.contains("96k") && !n.contains("6ch"))
        .collect();
    names.sort();
    names.truncate(10);
    assert_eq!(names.len(), 10);
    for (i, name) in names.iter().enumerate() {
        let sub = folder.join(if i % 2 == 0 { "monday" } else { "tuesday" });
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::copy(formats.join(name), sub.join(name)).unwrap();
    }
    std::fs::copy(formats.join("hello.txt"), folder.join("notes.txt")).unwrap();
    let to = mail::recipient("batch");
    let submitted = cli(
        &service,
        &[
            "submit",
            folder.to_str().unwrap(),
            "--exclude",
            "*.txt",
            "--email",
            &to,
            "--wait",
            "--json",
        ],
    );
    assert!(submitted.status.success(), "{}", String::from_utf8_lossy(&submitted.stderr));
    let jobs = json_of(&submitted);
    let jobs = jobs.as_array().expect("a list");
    assert_eq!(jobs.len(), 10);
    assert!(jobs.iter().all(|j| j["state"] == "done"), "{jobs:?}\n{}", service.logs());
    let ids: Vec<String> = jobs.iter().map(|j| j["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(mail::received(&to).len(), 10, "one email per job");

    let listed = json_of(&cli(&service, &["jobs", "list", "--state", "done", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 10);
    let shown = json_of(&cli(&service, &["jobs", "show", &ids[0], "--json"]));
    assert_eq!(shown["id"], ids[0].as_str());
    assert_eq!(shown["versions"][0]["number"], 1, "{shown}");
    assert_eq!(shown["versions"][0]["current"], true);

    // --dry-run changes nothing.
    let before = counts(&service).await;
    let dry = cli(
        &service,
        &[
            "reprocess",
            "--state",
            "done",
            "--from",
            "summarize",
            "--summarizer",
            "openai",
            "--dry-run",
            "--json",
        ],
    );
    assert!(dry.status.success(), "{}", String::from_utf8_lossy(&dry.stderr));
    assert_eq!(json_of(&dry)["jobs"].as_array().unwrap().len(), 10);
    assert_eq!(counts(&service).await, before, "rows and objects unchanged by a dry run");

    // Every done job again from summarize with the other provider.
    let mut transcripts = Vec::new();
    let mut minutes_before = Vec::new();
    for id in &ids {
        transcripts.push(Sha256::digest(download(&service, id, "transcript.json").await));
        minutes_before.push(download(&service, id, "minutes.json").await);
    }
    let again = cli(
        &service,
        &[
            "reprocess",
            "--state",
            "done",
            "--from",
            "summarize",
            "--summarizer",
            "openai",
            "--yes",
            "--json",
        ],
    );
    assert!(
        again.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&again.stderr),
        service.logs()
    );
    let again = json_of(&again);
    assert_eq!(again.as_array().unwrap().len(), 10);
    for (i, id) in ids.iter().enumerate() {
        let job = service.job(id.parse().unwrap()).await;
        assert_eq!(job.state, JobState::Done);
        assert_eq!(
            Sha256::digest(download(&service, id, "transcript.json").await),
            transcripts[i],
            "the transcript is reused"
        );
        let minutes: Value =
            serde_json::from_slice(&download(&service, id, "minutes.json").await).unwrap();
        let summarizer = &minutes["summarizer"];
        assert!(
            summarizer["provider"] == "openai"
                || summarizer["fallback_reason"].as_str().is_some_and(|r| r.starts_with("openai")),
            "the openai provider wrote (or was tried for) the new minutes: {summarizer}"
        );
        assert_ne!(
            download(&service, id, "minutes.json").await,
            minutes_before[i],
            "minutes regenerated"
        );
        assert!(download(&service, id, "minutes.pdf").await.starts_with(b"%PDF-"));
        let events = service.repo.events(job.id, 0).await.unwrap();
        let logged =
            events.iter().find(|e| e.stage == "reprocess").expect("recorded in the event log");
        assert!(logged.message.contains("openai"), "{}", logged.message);
    }
    assert_eq!(mail::received(&to).len(), 10, "no new email");
    let shown = cli(&service, &["jobs", "show", &ids[2]]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("*2") && shown.contains("from summarize"), "{shown}");
    assert!(shown.contains(" 1   ready"), "version 1 is listed beside the current one:\n{shown}");

    // A job whose upload is gone fails alone, with a clear reason; the exit status says so.
    std::fs::remove_file(service.dir.join(format!("store/jobs/{}/upload", ids[0]))).unwrap();
    let lost = cli(
        &service,
        &["reprocess", "--id", &ids[0], "--id", &ids[1], "--from", "transcribe", "--json"],
    );
    assert!(!lost.status.success(), "a failed job makes the exit status non-zero");
    let lost_jobs = json_of(&lost);
    let field_of = |id: &str, field: &str| {
        lost_jobs.as_array().unwrap().iter().find(|j| j["id"] == id).unwrap()[field].clone()
    };
    assert_eq!(field_of(&ids[0], "state"), "done", "the failed reprocess keeps the minutes");
    assert_eq!(field_of(&ids[0], "reprocess_failure")["code"], "upload_missing");
    assert_eq!(field_of(&ids[1], "state"), "done");
    assert!(field_of(&ids[1], "reprocess_failure").is_null());
    let failed = service.job(ids[0].parse().unwrap()).await;
    assert!(
        failed.reprocess_failure.map(|r| r.code) == Some(FailureCode::UploadMissing),
        "clear reason"
    );
    assert_eq!(failed.current_version, Some(2), "the first reprocess's version stands");
    assert!(download(&service, &ids[0], "minutes.pdf").await.starts_with(b"%PDF-"));

    // The follow-ups a person would try: watch a finished job, cancel one that cannot be,
    // reprocess the one that failed again (it fails again, the upload is still gone).
    let watched = cli(&service, &["jobs", "watch", &ids[1]]);
    assert!(watched.status.success(), "{}", String::from_utf8_lossy(&watched.stderr));
    assert!(String::from_utf8_lossy(&watched.stdout).contains("transcribe"));
    let cancel = cli(&service, &["cancel", &ids[1]]);
    assert!(!cancel.status.success());
    assert!(String::from_utf8_lossy(&cancel.stderr).contains("already done"));
    let retried = cli(&service, &["retry", &ids[0], "--json"]);
    assert!(!retried.status.success(), "a done job is not retried");
    let again = cli(&service, &["reprocess", "--id", &ids[0], "--from", "decode", "--json"]);
    assert!(!again.status.success(), "it fails again, the upload is still gone");
    let again = service.job(ids[0].parse().unwrap()).await;
    assert_eq!((again.state, again.current_version), (JobState::Done, Some(2)));

    // Issue 14: the CLI fetches a job's file and deletes jobs. The PDF it saves is the one
    // the API serves; an unknown file is a clear error that writes nothing; a deleted job
    // is gone from the API and the store.
    let saved = service.dir.join("saved-minutes.pdf");
    let fetched = cli(&service, &["jobs", "download", &ids[3], "--out", saved.to_str().unwrap()]);
    assert!(fetched.status.success(), "{}", String::from_utf8_lossy(&fetched.stderr));
    assert_eq!(std::fs::read(&saved).unwrap(), download(&service, &ids[3], "minutes.pdf").await);
    let nothing = service.dir.join("nothing.bin");
    let unknown = cli(
        &service,
        &["jobs", "download", &ids[3], "--file", "secrets.txt", "--out", nothing.to_str().unwrap()],
    );
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("secrets.txt"));
    assert!(!nothing.exists(), "a refused download writes nothing");
    let deleted = cli(&service, &["jobs", "delete", &ids[4], "not-a-job"]);
    assert!(!deleted.status.success(), "one of the two was not a job");
    let deleted_err = String::from_utf8_lossy(&deleted.stderr);
    assert!(deleted_err.contains(&format!("deleted {}", ids[4])), "{deleted_err}");
    assert!(deleted_err.contains("1 of 2 jobs not deleted"), "{deleted_err}");
    let gone = cli(&service, &["jobs", "show", &ids[4]]);
    assert!(!gone.status.success());
    assert!(!service.dir.join(format!("store/jobs/{}", ids[4])).exists(), "its files are gone");

    // Selecting nothing is not an error, but says so.
    let none =
        cli(&service, &["reprocess", "--filename", "nothing-like-this*", "--from", "render"]);
    assert!(none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("no jobs match"));
    service.stop().await;
}

/// Runs `minutes ARGS` with `stdin` as standard input, no token in the environment and
/// `config` as the config folder.
fn cli_with_input(
    service: &Service,
    config: &Path,
    args: &[&str],
    stdin: &str,
) -> std::process::Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_minutes"))
        .args(args)
        .env("MINUTES_API_URL", &service.base)
        .env("MINUTES_DATABASE_URL", service.database_url())
        .env("MINUTES_CONFIG_DIR", config)
        .env_remove("MINUTES_API_TOKEN")
        .env_remove("RUST_BACKTRACE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run minutes");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// The first admin from the command line, a token made with the password and saved with
/// mode 600, used by the next command, refused when others can read it, revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_tokens_from_the_command_line() {
    let service = Service::start(Store::Local).await;
    let config = service.dir.join("config");
    let text = |output: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    };
    let short = cli_with_input(
        &service,
        &config,
        &["users", "add", "root@example.com", "--admin"],
        "short\n",
    );
    assert!(!short.status.success() && text(&short).contains("too short"), "{}", text(&short));
    let added = cli_with_input(
        &service,
        &config,
        &["users", "add", "root@example.com", "--admin", "--name", "Root"],
        "a long admin passphrase\n",
    );
    assert!(added.status.success(), "{}", text(&added));
    let again = cli_with_input(
        &service,
        &config,
        &["users", "add", "ROOT@example.com"],
        "another passphrase\n",
    );
    assert!(!again.status.success() && text(&again).contains("exists already"), "{}", text(&again));
    let listed = cli_with_input(&service, &config, &["users", "list"], "");
    assert!(
        text(&listed).contains("root@example.com") && text(&listed).contains("admin"),
        "{}",
        text(&listed)
    );
    let hash: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE email = 'root@example.com'")
            .fetch_one(service.repo.pool())
            .await
            .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");

    // No token yet: the commands say how to get one.
    let none = cli_with_input(&service, &config, &["jobs", "list"], "");
    assert!(
        !none.status.success() && text(&none).contains("minutes tokens create"),
        "{}",
        text(&none)
    );
    let made = cli_with_input(
        &service,
        &config,
        &["tokens", "create", "laptop", "--email", "root@example.com", "--save"],
        "a long admin passphrase\n",
    );
    assert!(made.status.success(), "{}", text(&made));
    let secret = String::from_utf8_lossy(&made.stdout).trim().to_string();
    assert!(secret.starts_with("mnt_"), "{secret}");
    let saved = config.join("token");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777, 0o600);
    let listed = cli_with_input(&service, &config, &["jobs", "list"], "");
    assert!(listed.status.success(), "{}", text(&listed));
    let tokens = cli_with_input(&service, &config, &["tokens", "list"], "");
    assert!(
        text(&tokens).contains("laptop") && !text(&tokens).contains(&secret),
        "{}",
        text(&tokens)
    );
    std::fs::set_permissions(&saved, std::fs::Permissions::from_mode(0o644)).unwrap();
    let exposed = cli_with_input(&service, &config, &["jobs", "list"], "");
    assert!(
        !exposed.status.success() && text(&exposed).contains("chmod 600"),
        "{}",
        text(&exposed)
    );
    std::fs::set_permissions(&saved, std::fs::Permissions::from_mode(0o600)).unwrap();
    let id = text(&tokens)
        .lines()
        .find(|l| l.contains("laptop"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let revoked = cli_with_input(&service, &config, &["tokens", "revoke", &id], "");
    assert!(revoked.status.success(), "{}", text(&revoked));
    let after = cli_with_input(&service, &config, &["jobs", "list"], "");
    assert!(!after.status.success() && text(&after).contains("not valid"), "{}", text(&after));

    // Disabling and resetting work on the same database.
    let disabled = cli_with_input(&service, &config, &["users", "disable", "ann@example.com"], "");
    assert!(disabled.status.success(), "{}", text(&disabled));
    let ann = service.api_status("/api/v1/jobs").await;
    assert_eq!(ann, reqwest::StatusCode::UNAUTHORIZED, "a disabled user's token stops working");
    let reset = cli_with_input(
        &service,
        &config,
        &["users", "reset-password", "nobody@example.com"],
        "x\n",
    );
    assert!(!reset.status.success() && text(&reset).contains("no user"), "{}", text(&reset));
    service.stop().await;
}
