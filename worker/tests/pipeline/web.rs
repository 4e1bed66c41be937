//! The web pages in a real browser: Debian's Chromium driven by `scripts/browser/test.mjs`
//! (playwright-core from npm, installed by the README's test command) against the API
//! served here and a real worker process. Screenshots go to `artifacts/web/`.

use super::service::{Service, Store};

use super::*;

/// `hello_s16_16k.wav` repeated `times` over: a long recording made from a fixture.
fn long_recording(times: usize) -> PathBuf {
    let bytes = std::fs::read(fixture("formats/hello_s16_16k.wav")).expect("fixture");
    let data_at = bytes.windows(4).position(|w| w == b"data").expect("a data chunk") + 8;
    let (header, data) = bytes.split_at(data_at);
    let mut out = header.to_vec();
    let total = data.len() * times;
    out[data_at - 4..data_at].copy_from_slice(&(total as u32).to_le_bytes());
    let riff = (data_at - 8 + total) as u32;
    out[4..8].copy_from_slice(&riff.to_le_bytes());
    for _ in 0..times {
        out.extend_from_slice(data);
    }
    let path = tempdir().join("long meeting.wav");
    std::fs::write(&path, out).expect("write");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upload_and_job_pages_work_in_chromium() {
    let node_modules = std::env::var("MINUTES_NODE_MODULES").expect(
        "MINUTES_NODE_MODULES: run the tests with the README's test command (scripts/test)",
    );
    let mut service = Service::start(Store::Local).await;
    service.spawn_worker(&[("MINUTES_THREADS", "1")]);
    let long = long_recording(60);
    let artifacts = root().join("artifacts/web");
    let base = service.base.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(root().join("scripts/browser/test.mjs"))
            .env("MINUTES_NODE_MODULES", &node_modules)
            .env("MINUTES_WEB_BASE", base)
            .env("MINUTES_WEB_FIXTURES", root().join("fixtures"))
            .env("MINUTES_WEB_LONG", long)
            .env("MINUTES_WEB_ARTIFACTS", artifacts)
            .env("MINUTES_WEB_EMAIL", "ann@example.com")
            .env("MINUTES_WEB_PASSWORD", minutes_shared::testing::PASSWORD)
            .output()
            .expect("run node")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}");
    assert!(output.status.success(), "{stdout}\n{stderr}\n{}", service.logs());
    assert!(stdout.contains("ok: the downloaded PDF holds the minutes"), "{stdout}");
    service.stop().await;
}
