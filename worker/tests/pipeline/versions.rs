//! Versions of a job's results through the service: reprocessing never takes away the
//! minutes a person has, a version that only redoes the summary shares the recording and
//! the transcript, and a worker that lost its lease changes nothing of a finished job.

use minutes_shared::failure::FailureCode;
use minutes_shared::jobs::JobState;
use minutes_shared::stage::JobStage;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::service::*;
use super::*;

/// An address nothing listens on: the summarizer's endpoint refuses every connection.
const DEAD_LLM: &str = "http://127.0.0.1:9/v1";

async fn bytes_at(service: &Service, path: &str) -> Vec<u8> {
    let response = service.http.get(format!("{}{path}", service.base)).send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK, "{path}");
    response.bytes().await.unwrap().to_vec()
}

async fn json_at(service: &Service, path: &str) -> Value {
    serde_json::from_slice(&bytes_at(service, path).await).unwrap()
}

async fn reprocess(service: &Service, id: Uuid, body: Value) {
    let url = format!("{}/api/v1/jobs/{id}/reprocess", service.base);
    let response = service.http.post(url).json(&body).send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
    let job: Value = response.json().await.unwrap();
    assert!(job["links"]["files"]["minutes.pdf"].is_string(), "the PDF is served meanwhile");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_reprocesses_failing_in_summarize_keep_every_pdf_and_a_good_one_makes_version_2() {
    let mut service = Service::start(Store::Local).await;
    let settings = [
        ("MINUTES_BEAM_SIZE", "1"),
        ("MINUTES_LLM_URL", DEAD_LLM),
        ("MINUTES_SUMMARY_FALLBACK", "false"),
    ];
    service.spawn_worker(&settings);
    service.spawn_worker(&settings);
    let to = mail::recipient("versions");
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(service.submit("formats/hello_s16_16k.wav", Some(&to)).await);
    }
    let mut original = Vec::new();
    for id in &ids {
        let job = service.wait_final(*id, Duration::from_secs(300)).await;
        assert_eq!(job.state, JobState::Done, "{:?}\n{}", job.failure_reason, service.logs());
        original.push(bytes_at(&service, &format!("/api/v1/jobs/{id}/files/minutes.pdf")).await);
    }
    assert_eq!(mail::received(&to).len(), 20);

    // Every reprocess fails in summarize: the endpoint is down and falling back is off.
    let failing = json!({"from": "summarize", "summarizer": "openai", "notify": true});
    for id in &ids {
        reprocess(&service, *id, failing.clone()).await;
    }
    for (id, pdf) in ids.iter().zip(&original) {
        let job = service.wait_final(*id, Duration::from_secs(120)).await;
        assert_eq!(job.state, JobState::Done, "not a failed meeting\n{}", service.logs());
        assert_eq!(job.current_version, Some(1));
        let reason = job.reprocess_failure.expect("the job says the reprocess failed");
        assert_eq!(reason.code, FailureCode::SummaryFailed);
        assert!(reason.detail.contains("openai"), "{reason}");
        let served = bytes_at(&service, &format!("/api/v1/jobs/{id}/files/minutes.pdf")).await;
        assert_eq!(Sha256::digest(&served), Sha256::digest(pdf), "the original PDF, byte for byte");
        let view = json_at(&service, &format!("/api/v1/jobs/{id}")).await;
        assert_eq!(view["reprocess_failure"]["code"], "summary_failed");
        assert_eq!(view["current_version"], 1);
    }
    assert_eq!(mail::received(&to).len(), 20, "a failed reprocess sends no email");

    // A reprocess that succeeds makes version 2 current; version 1 stays downloadable.
    let good = json!({"from": "summarize", "summarizer": "extractive", "notify": true,
                      "title": "Renamed"});
    for id in &ids {
        reprocess(&service, *id, good.clone()).await;
    }
    for (id, pdf) in ids.iter().zip(&original) {
        let job = service.wait_final(*id, Duration::from_secs(120)).await;
        assert_eq!(
            (job.state, job.current_version, job.reprocess_failure.clone()),
            (JobState::Done, Some(2), None),
            "{}",
            service.logs()
        );
        let old =
            bytes_at(&service, &format!("/api/v1/jobs/{id}/versions/1/files/minutes.pdf")).await;
        assert_eq!(Sha256::digest(&old), Sha256::digest(pdf), "version 1 is kept as it was");
        let new = bytes_at(&service, &format!("/api/v1/jobs/{id}/files/minutes.pdf")).await;
        assert_ne!(Sha256::digest(&new), Sha256::digest(pdf), "version 2 has the new title");
        assert_eq!(received_with_id(&to, &format!("minutes-{id}-v2@minutes")), 1);
    }
    assert_eq!(mail::received(&to).len(), 40, "one email per successful reprocess");

    // Storage: a reprocess from summarize stores no second recording or transcript.
    let id = ids[0];
    let files = files_of(&service, id);
    let count = |suffix: &str| files.iter().filter(|f| f.ends_with(suffix)).count();
    assert_eq!(count("upload"), 1, "{files:?}");
    assert_eq!(count("/transcript.json"), 1, "{files:?}");
    assert_eq!(count("/transcript.txt"), 1, "{files:?}");
    let second: Vec<_> = files.iter().filter(|f| f.starts_with("v2/")).collect();
    assert_eq!(second.len(), 2, "version 2 holds only its minutes: {files:?}");
    assert!(second.iter().all(|f| f.ends_with("/minutes.json") || f.ends_with("/minutes.pdf")));

    // The history, then version 1 made current again.
    let history = json_at(&service, &format!("/api/v1/jobs/{id}/versions")).await;
    let versions = history["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{history}");
    assert_eq!(
        (versions[0]["number"].clone(), versions[0]["current"].clone()),
        (json!(2), json!(true))
    );
    assert_eq!(versions[0]["requested_by"], "ann@example.com");
    assert_eq!(versions[0]["from_stage"], "summarize");
    assert_eq!(versions[1]["outcome"], "ready");
    let restore = format!("{}/api/v1/jobs/{id}/versions/1/restore", service.base);
    let restored = service.http.post(restore).send().await.unwrap();
    assert_eq!(restored.status(), reqwest::StatusCode::OK);
    let served = bytes_at(&service, &format!("/api/v1/jobs/{id}/files/minutes.pdf")).await;
    assert_eq!(Sha256::digest(&served), Sha256::digest(&original[0]));
    let missing = format!("{}/api/v1/jobs/{id}/versions/7/restore", service.base);
    assert_eq!(
        service.http.post(missing).send().await.unwrap().status(),
        reqwest::StatusCode::NOT_FOUND
    );
    service.stop().await;
}

/// The stored files of job `id`, relative to its folder.
fn files_of(service: &Service, id: Uuid) -> Vec<String> {
    minutes_shared::testing::files_under(&service.dir.join(format!("store/jobs/{id}")))
}

/// R4 with two real workers: the worker holding a job is paused (SIGSTOP) until its lease
/// lapses; the other one takes the job over and finishes it; then the paused one resumes.
/// It must change nothing: the finished job's files and PDF stay as they were, and one
/// email went out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r4_a_paused_worker_that_resumes_after_losing_its_lease_changes_nothing() {
    let mut service = Service::start(Store::Local).await;
    let first = service.spawn_worker(&[]);
    let to = mail::recipient("r4");
    let id = service.submit("meeting.flac", Some(&to)).await;
    service.wait_stage(id, JobStage::Transcribe).await;
    signal(&service.workers[first].child, "STOP");
    let second = service.spawn_worker(&[]);
    let job = service.wait_final(id, Duration::from_secs(300)).await;
    assert_eq!(job.state, JobState::Done, "{}", service.logs());
    assert_eq!(job.worker_name.as_deref(), Some(service.workers[second].name.as_str()));
    let files = files_of(&service, id);
    let pdf = bytes_at(&service, &format!("/api/v1/jobs/{id}/files/minutes.pdf")).await;

    signal(&service.workers[first].child, "CONT");
    // The resumed worker finds its lease gone at its next write or heartbeat and drops
    // the job: wait for its metrics to say so.
    let started = std::time::Instant::now();
    let metrics = format!("{}/metrics", service.workers[first].http);
    loop {
        // A fresh connection each time: connections made during the pause are reset.
        let text = match reqwest::Client::new().get(&metrics).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(error) => error.to_string(),
        };
        if text.contains("minutes_worker_jobs_total{outcome=\"lost\"} 1") {
            break;
        }
        let exited = service.workers[first].child.try_wait().ok().flatten();
        assert!(
            exited.is_none() && started.elapsed() < Duration::from_secs(120),
            "{exited:?} {text}\n{}",
            service.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(files_of(&service, id), files, "no file of the finished job changed");
    let after = bytes_at(&service, &format!("/api/v1/jobs/{id}/files/minutes.pdf")).await;
    assert_eq!(Sha256::digest(&after), Sha256::digest(&pdf));
    assert_eq!(mail::received(&to).len(), 1, "one email");
    let job = service.job(id).await;
    assert_eq!((job.state, job.current_version), (JobState::Done, Some(1)));
    eprintln!(
        "R4: the resumed worker dropped the job; {} stored files and the PDF unchanged, 1 email",
        files.len()
    );
    service.stop().await;
}

/// Pruning on a real store: with `MINUTES_KEEP_VERSIONS=2`, three reprocesses from render
/// leave versions 3 and 4 (and, once restored, the current one); the PDFs of the pruned
/// versions are deleted, the recording and the transcript they shared stay, and what is
/// left still downloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_versions_are_pruned_without_deleting_what_the_kept_ones_share() {
    let mut service = Service::start(Store::Local).await;
    service.spawn_worker(&[("MINUTES_BEAM_SIZE", "1"), ("MINUTES_KEEP_VERSIONS", "2")]);
    let id = service.submit("formats/hello_s16_16k.wav", None).await;
    assert_eq!(service.wait_final(id, Duration::from_secs(120)).await.state, JobState::Done);
    for round in 0..3 {
        reprocess(&service, id, json!({"from": "render", "title": format!("Round {round}")})).await;
        let job = service.wait_final(id, Duration::from_secs(120)).await;
        assert_eq!(job.current_version, Some(round + 2), "{}", service.logs());
    }
    let versions: Vec<i32> =
        service.repo.versions(id).await.unwrap().iter().map(|v| v.number).collect();
    assert_eq!(versions, [4, 3], "the newest two are kept");
    let files = files_of(&service, id);
    assert!(files.iter().all(|f| !f.starts_with("v2/")), "version 2 is gone: {files:?}");
    let pdfs: Vec<_> = files.iter().filter(|f| f.ends_with("minutes.pdf")).collect();
    assert_eq!(pdfs.len(), 2, "the PDFs of versions 3 and 4 only: {files:?}");
    assert!(
        files.iter().any(|f| f.starts_with("v1/") && f.ends_with("transcript.json")),
        "version 1's transcript stays: versions 3 and 4 share it: {files:?}"
    );
    assert!(!files.iter().any(|f| f.starts_with("v1/") && f.ends_with("minutes.pdf")), "{files:?}");
    for number in [3, 4] {
        for file in ["minutes.pdf", "transcript.json", "minutes.json"] {
            bytes_at(&service, &format!("/api/v1/jobs/{id}/versions/{number}/files/{file}")).await;
        }
    }
    service.stop().await;
}
