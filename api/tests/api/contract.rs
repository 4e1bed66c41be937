//! Issue 18: the served OpenAPI document checked by a tool no one here wrote.
//! schemathesis (PyPI, pinned in scripts/lib.sh) generates requests from the document,
//! every check enabled (`api/tests/contract/schemathesis.toml`, which also says why two
//! operations have an exception), its phases the coverage, fuzzing and stateful ones, and
//! checks each answer against what the document promises: as a member with a token, and
//! with no credentials at all.

use super::*;

/// Runs schemathesis against `app`'s document; returns its whole output.
async fn schemathesis(app: &TestApp, token: Option<&str>) -> (bool, String) {
    let venv = std::env::var("MINUTES_TEST_VENV")
        .expect("MINUTES_TEST_VENV: run the tests with the README's test command (scripts/test)");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contract/schemathesis.toml");
    let mut command = std::process::Command::new(format!("{venv}/bin/schemathesis"));
    command
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(app.url("/api/v1/openapi.json"))
        // Bounded and repeatable: ten examples an operation, one seed, no memory of
        // earlier runs.
        .args(["--max-examples", "10", "--seed", "18", "--generation-database", "none"])
        .args(["--no-color", "--wait-for-schema", "10"])
        .current_dir(&app.store_dir);
    if let Some(token) = token {
        command.arg("-H").arg(format!("Authorization: Bearer {token}"));
    }
    std::fs::create_dir_all(&app.store_dir).unwrap();
    // On a blocking thread: the API under test is served by this process's runtime.
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("schemathesis (installed by scripts/test)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

/// The "N generated, N passed" line, printed so the run's figure can be quoted.
fn summary(said: &str) -> String {
    said.lines().find(|line| line.contains(" generated, ")).unwrap_or("").trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_failure_as_a_member_or_unauthenticated() {
    let app = TestApp::spawn().await;
    let (_, token) = add_user(app.repo.pool(), "member@example.com", Role::Member).await.unwrap();
    // A real job of the member's, so some generated ids and pages have something to find.
    app.upload("a.wav", read(&fixture("formats/hello_u8_8k.wav")), &[]).await;

    let (passed, said) = schemathesis(&app, Some(&token)).await;
    let line = summary(&said);
    println!("schemathesis as a member: {line}");
    assert!(passed, "schemathesis failed as a member:\n{said}");
    assert!(line.contains(" passed") && !line.contains("fail"), "{said}");
    assert!(said.contains("Stateful"), "the stateful phase ran:\n{said}");

    let (passed, said) = schemathesis(&app, None).await;
    let line = summary(&said);
    println!("schemathesis unauthenticated: {line}");
    assert!(passed, "schemathesis failed unauthenticated:\n{said}");
    assert!(line.contains(" passed") && !line.contains("fail"), "{said}");
    app.finish().await;
}
