//! `compose/` checked statically (no Docker engine runs here): the services of the design,
//! their ports, Redis's durability settings, and every variable the two binaries read
//! documented in `.env.example`, which the API and worker services load.

use std::collections::BTreeSet;

use clap::CommandFactory;
use minutes_api::settings::ApiSettings;
use minutes_worker::service::settings::WorkerSettings;

use super::*;

#[derive(clap::Parser)]
struct Api {
    #[command(flatten)]
    settings: ApiSettings,
}

#[derive(clap::Parser)]
struct Worker {
    #[command(flatten)]
    settings: WorkerSettings,
}

fn variables(command: clap::Command) -> BTreeSet<String> {
    command
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .collect()
}

fn compose_dir() -> PathBuf {
    root().join("compose")
}

fn compose() -> serde_yaml::Value {
    let text =
        std::fs::read_to_string(compose_dir().join("docker-compose.yml")).expect("compose file");
    let mut value: serde_yaml::Value = serde_yaml::from_str(&text).expect("valid YAML");
    // Docker Compose resolves `<<:` merge keys; so must the check.
    value.apply_merge().expect("merge keys resolve");
    value
}

#[test]
fn every_variable_the_binaries_read_is_in_the_env_example() {
    let example =
        std::fs::read_to_string(compose_dir().join(".env.example")).expect(".env.example");
    let documented: BTreeSet<String> = example
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('=').map(|(name, _)| name.trim().to_string()))
        .collect();
    let read: BTreeSet<String> =
        variables(Api::command()).into_iter().chain(variables(Worker::command())).collect();
    assert!(read.len() > 40, "{read:?}");
    let missing: Vec<_> = read.difference(&documented).collect();
    assert!(missing.is_empty(), "read by the binaries but not in .env.example: {missing:?}");
    let unknown: Vec<_> = documented
        .iter()
        .filter(|name| name.starts_with("MINUTES_") && !read.contains(*name))
        .collect();
    assert!(unknown.is_empty(), "in .env.example but read by no binary: {unknown:?}");
}

#[test]
fn the_compose_file_has_the_services_ports_and_settings_of_the_design() {
    let compose = compose();
    let services = compose["services"].as_mapping().expect("services");
    for name in ["redis", "postgres", "s3", "mail", "llm", "api", "worker"] {
        assert!(services.contains_key(name), "service {name} missing");
    }
    let service = |name: &str| &compose["services"][name];
    let redis_command: Vec<&str> = service("redis")["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(redis_command.windows(2).any(|w| w == ["--appendonly", "yes"]), "{redis_command:?}");
    assert!(redis_command.windows(2).any(|w| w == ["--maxmemory-policy", "noeviction"]));
    let ports = |name: &str| -> Vec<String> {
        service(name)["ports"].as_sequence().map_or(Vec::new(), |p| {
            p.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()
        })
    };
    assert!(ports("api").contains(&"8080:8080".to_string()));
    assert!(ports("mail").contains(&"8025:8025".to_string()), "the mail web UI");
    assert!(service("worker")["deploy"]["replicas"].as_u64().unwrap_or(0) >= 2, "several workers");
    for (name, listen_var, port) in
        [("api", "MINUTES_API_LISTEN", "8080"), ("worker", "MINUTES_WORKER_HTTP_ADDR", "9464")]
    {
        let listen = service(name)["environment"][listen_var].as_str().unwrap_or("");
        assert_eq!(
            listen,
            format!("0.0.0.0:{port}"),
            "{name} must listen beyond loopback in a container"
        );
        let dockerfile = service(name)["build"]["dockerfile"].as_str().expect("built here");
        let text = std::fs::read_to_string(root().join(dockerfile)).expect("the Dockerfile exists");
        assert!(text.matches("FROM ").count() >= 2, "{dockerfile}: multi-stage");
        assert!(
            text.contains(&format!("--bin minutes-{name}")),
            "{dockerfile} builds minutes-{name}"
        );
        if name == "worker" {
            // compose/README.md makes the first admin with the CLI from this image.
            assert!(
                text.contains("--bin minutes\n")
                    && text.contains("/release/minutes /usr/local/bin/minutes\n"),
                "{dockerfile} carries the minutes command line"
            );
        }
        let env_files = service(name)["env_file"].as_sequence().expect("env_file");
        assert!(env_files.iter().any(|f| f["path"].as_str() == Some(".env.example")));
    }
    // The addresses in .env.example name the compose services.
    let example = std::fs::read_to_string(compose_dir().join(".env.example")).unwrap();
    for (var, host) in [
        ("MINUTES_DATABASE_URL", "@postgres:5432/"),
        ("MINUTES_REDIS_URL", "redis://redis:6379"),
        ("MINUTES_S3_ENDPOINT", "http://s3:9000"),
        ("MINUTES_MAIL_URL", "smtp://mail:1025"),
        ("MINUTES_LLM_URL", "http://llm:8080/v1"),
    ] {
        let line = example.lines().find(|l| l.starts_with(&format!("{var}="))).expect(var);
        assert!(line.contains(host), "{line}");
    }
}
