//! The service under failure, with real processes: R1 (a worker killed mid-job), R7
//! (SIGTERM), R12 (a truncated recording), R5 (a file that aborts the decoder), a ticket
//! lost in Redis, and a cancel while running.

use std::time::Instant;

use minutes_shared::jobs::JobState;
use minutes_shared::stage::JobStage;
use minutes_shared::testing::{files_under, forget_queue};
use serde_json::Value;
use uuid::Uuid;

use super::service::*;
use super::*;

/// R1: a worker killed (SIGKILL) in the middle of a transcription; with 3 workers another
/// resumes it within 60 s and it ends `done` with exactly one PDF and one email.
/// `MINUTES_R1_RUNS` sets how many times (scripts/bench-service runs 20).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r1_a_worker_killed_mid_transcription_is_replaced_and_the_job_ends_done_once() {
    let runs: usize =
        std::env::var("MINUTES_R1_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    let mut service = Service::start(Store::Local).await;
    for _ in 0..3 {
        service.spawn_worker(&[]);
    }
    let mut recoveries = Vec::new();
    for run in 0..runs {
        let to = mail::recipient("r1");
        let id = service.submit("meeting.flac", Some(&to)).await;
        let started = Instant::now();
        let victim = loop {
            let job = service.job(id).await;
            if job.state == JobState::Running && job.stage == JobStage::Transcribe {
                break job.worker_name.expect("a worker holds it");
            }
            assert!(started.elapsed() < Duration::from_secs(120), "never transcribing");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // A random point inside the transcription.
        tokio::time::sleep(Duration::from_millis(u64::from(Uuid::new_v4().as_bytes()[0]) * 4))
            .await;
        let index = service.workers.iter().position(|w| w.name == victim).expect("known worker");
        let killed_at = Instant::now();
        service.workers[index].child.kill().expect("SIGKILL");
        let _ = service.workers[index].child.wait();
        let resumed = loop {
            let job = service.job(id).await;
            if job.state.is_final() || job.worker_name.as_deref() != Some(victim.as_str()) {
                break killed_at.elapsed();
            }
            assert!(
                killed_at.elapsed() < Duration::from_secs(60),
                "run {run}: not resumed within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let job = service.wait_final(id, Duration::from_secs(120)).await;
        assert_eq!(
            job.state,
            JobState::Done,
            "run {run}: {:?}\n{}",
            job.failure_reason,
            service.logs()
        );
        assert_eq!(
            received_with_id(&to, &format!("minutes-{id}-v1@minutes")),
            1,
            "run {run}: one email"
        );
        assert_eq!(mail::received(&to).len(), 1, "run {run}: one email in all");
        let pdfs = files_under(&service.dir.join(format!("store/jobs/{id}")))
            .into_iter()
            .filter(|file| file.ends_with(".pdf"))
            .count();
        assert_eq!(pdfs, 1, "run {run}: one PDF");
        recoveries.push(resumed.as_secs_f64());
        // Keep three workers for the next run.
        service.workers.remove(index);
        service.spawn_worker(&[]);
    }
    eprintln!("R1: {runs} of {runs} runs done; resumed after (s): {recoveries:.1?}");
    service.stop().await;
}

/// R7: SIGTERM to a busy worker: it fetches nothing new, finishes its job within the grace
/// period, exits 0, and the job's email goes out once. With no grace left the job is
/// handed back and another worker finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r7_sigterm_finishes_or_hands_back_the_running_job_and_exits_0() {
    let mut service = Service::start(Store::Local).await;
    let patient = service.spawn_worker(&[("MINUTES_SHUTDOWN_GRACE_SECS", "120")]);
    let to = mail::recipient("r7");
    let first = service.submit("meeting.flac", Some(&to)).await;
    let second = service.submit("formats/hello_s16_16k.wav", Some(&to)).await;
    service.wait_stage(first, JobStage::Transcribe).await;
    signal(&service.workers[patient].child, "TERM");
    let status = service.workers[patient].child.wait().expect("exit status");
    assert!(status.success(), "exit 0: {status:?}\n{}", service.logs());
    assert_eq!(service.job(first).await.state, JobState::Done, "finished within the grace period");
    let waiting = service.job(second).await;
    assert_eq!(waiting.state, JobState::Queued, "nothing new was fetched");
    assert_eq!(waiting.attempts, 0);

    // No grace: the running job is handed back and a new worker finishes it.
    let hasty = service.spawn_worker(&[("MINUTES_SHUTDOWN_GRACE_SECS", "0")]);
    let third = service.submit("meeting.flac", Some(&to)).await;
    service.wait_final(second, Duration::from_secs(120)).await;
    service.wait_stage(third, JobStage::Transcribe).await;
    signal(&service.workers[hasty].child, "TERM");
    let status = service.workers[hasty].child.wait().expect("exit status");
    assert!(status.success(), "exit 0: {status:?}\n{}", service.logs());
    let handed = service.job(third).await;
    assert_eq!(handed.state, JobState::Queued, "handed back: {handed:?}");
    service.spawn_worker(&[]);
    let done = service.wait_final(third, Duration::from_secs(120)).await;
    assert_eq!(done.state, JobState::Done);
    for id in [first, second, third] {
        assert_eq!(
            received_with_id(&to, &format!("minutes-{id}-v1@minutes")),
            1,
            "one email for {id}"
        );
    }
    service.stop().await;
}

/// R12 (worker side): a recording whose header passes the upload check but whose data is
/// cut short fails with a readable reason and a failure email; the worker keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r12_a_truncated_recording_fails_clearly_and_the_worker_keeps_serving() {
    let mut service = Service::start(Store::Local).await;
    service.spawn_worker(&[]);
    let to = mail::recipient("r12");
    let bad = service.submit("bad/truncated.flac", Some(&to)).await;
    let good = service.submit("formats/hello_44k.m4a", Some(&to)).await;
    let failed = service.wait_final(bad, Duration::from_secs(120)).await;
    assert_eq!(failed.state, JobState::Failed);
    let reason = failed.failure_reason.expect("a reason");
    assert_eq!(reason.code, FailureCode::Truncated, "{reason}");
    assert!(reason.detail.starts_with("the file is truncated"), "{reason}");
    let reason = reason.to_string();
    assert_eq!(failed.attempts, 1, "a permanent error is not retried");
    assert_eq!(service.wait_final(good, Duration::from_secs(120)).await.state, JobState::Done);
    assert_eq!(received_with_id(&to, &format!("failed-{bad}-v1@minutes")), 1, "one failure email");
    let (status, body) = {
        let response =
            service.http.get(format!("{}/api/v1/jobs/{bad}", service.base)).send().await.unwrap();
        (response.status(), response.json::<Value>().await.unwrap())
    };
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(body["failure_reason"].as_str(), Some(reason.as_str()));

    // The worker's own health and counters.
    let worker = &service.workers[0];
    let health = service.http.get(format!("{}/healthz", worker.http)).send().await.unwrap();
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    let ready = service.http.get(format!("{}/readyz", worker.http)).send().await.unwrap();
    assert_eq!(ready.status(), reqwest::StatusCode::OK);
    let ready: Value = ready.json().await.unwrap();
    for dependency in ["postgres", "redis", "storage"] {
        assert_eq!(ready[dependency], "ok", "{ready}");
    }
    let metrics = service.worker_metrics(0).await;
    for line in [
        "minutes_worker_jobs_total{outcome=\"failed\"} 1",
        "minutes_worker_jobs_total{outcome=\"done\"} 1",
        "minutes_worker_jobs_in_flight 0",
        "minutes_worker_stage_seconds_count{stage=\"transcribe\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    service.stop().await;
}

/// R5: a recording that aborts the decoder (a 32 GiB table reservation, over the decoder
/// process's memory limit) ends `failed: invalid_media` at once; the worker, which decoded
/// in its own process before, lives on and finishes the next job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r5_a_file_that_aborts_the_decoder_fails_invalid_media_and_the_worker_keeps_serving() {
    let mut service = Service::start(Store::Local).await;
    service.spawn_worker(&[]);
    let bad = service.submit("bad/huge_table.m4a", None).await;
    let good = service.submit("formats/hello_44k.m4a", None).await;
    let failed = service.wait_final(bad, Duration::from_secs(120)).await;
    assert_eq!(failed.state, JobState::Failed);
    let reason = failed.failure_reason.expect("a reason");
    assert_eq!(reason.code, FailureCode::InvalidMedia, "{reason}");
    assert!(reason.detail.contains("memory limit"), "{reason}");
    assert_eq!(failed.attempts, 1, "a file that aborts the decoder is not retried");
    assert_eq!(service.wait_final(good, Duration::from_secs(120)).await.state, JobState::Done);
    assert!(service.workers[0].child.try_wait().unwrap().is_none(), "the worker is still running");
    service.stop().await;
}

/// Stranded job: the ticket of a queued job is lost in Redis after the API recorded the
/// push (a flushed Redis, or the last second of writes lost in a restart). The reconciler
/// pushes any job no worker claimed within MINUTES_STRANDED_SECS, so it still ends done;
/// before, only jobs never pushed were pushed again and this one stayed queued for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stranded_job_a_ticket_lost_in_redis_is_pushed_again_and_the_job_ends_done() {
    let mut service = Service::start(Store::Local).await;
    let id = service.submit("formats/hello_s16_16k.wav", None).await;
    let pushed = service.job(id).await;
    assert_eq!(pushed.state, JobState::Queued);
    assert!(pushed.enqueued_at.is_some(), "the API pushed it");
    let forgotten =
        forget_queue(&service.service.redis_url, &service.service.queue).await.expect("Redis");
    assert!(forgotten > 0, "the ticket was on the queue");
    service.spawn_worker(&[("MINUTES_STRANDED_SECS", "2")]);
    let job = service.wait_final(id, Duration::from_secs(120)).await;
    assert_eq!(job.state, JobState::Done, "{:?}\n{}", job.failure_reason, service.logs());
    service.stop().await;
}

/// Cancelling a running job stops it at the next chunk: it stays `cancelled`, no email is
/// sent, and the worker takes the next job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_job_stops_it_and_sends_nothing() {
    let mut service = Service::start(Store::Local).await;
    service.spawn_worker(&[]);
    let to = mail::recipient("cancel");
    let id = service.submit("meeting.flac", Some(&to)).await;
    let next = service.submit("formats/hello_s16_16k.wav", None).await;
    service.wait_stage(id, JobStage::Transcribe).await;
    let response = service
        .http
        .post(format!("{}/api/v1/jobs/{id}/cancel", service.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(service.wait_final(next, Duration::from_secs(120)).await.state, JobState::Done);
    let job = service.job(id).await;
    assert_eq!(job.state, JobState::Cancelled);
    assert!(
        !job.artifacts.as_object().is_some_and(|a| a.contains_key("minutes.pdf")),
        "stopped before the PDF"
    );
    assert!(mail::received(&to).is_empty(), "no email for a cancelled job");
    let metrics = service.worker_metrics(0).await;
    assert!(metrics.contains("minutes_worker_jobs_total{outcome=\"lost\"} 1"), "{metrics}");
    service.stop().await;
}

/// A Redis server of the test's own on a free port, stopped when dropped (so the test can
/// pause it without touching the other tests' queues).
struct OwnRedis {
    child: std::process::Child,
    url: String,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (installed by scripts/test)");
        let url = format!("redis://127.0.0.1:{port}");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        OwnRedis { child, url }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// R17 (the Redis part): Redis paused (SIGSTOP) while a job runs, for
/// `MINUTES_R17_PAUSE_SECS` (20 here; scripts/reliability asks 60). Meanwhile `/readyz`
/// says Redis is not ready; the job ends done once with one email, and the worker, whose
/// queue registration lapsed meanwhile, registers again and takes the next job (it used to
/// exit: "worker not registered"). Prints how long after Redis came back the next job was
/// done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r17_redis_paused_mid_job_the_job_ends_done_once_and_the_worker_keeps_serving() {
    let pause: u64 =
        std::env::var("MINUTES_R17_PAUSE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let redis = OwnRedis::start();
    let mut service = Service::start_on(Store::Local, redis.url.clone()).await;
    let worker = service.spawn_worker(&[]);
    let to = mail::recipient("r17");
    let id = service.submit("meeting.flac", Some(&to)).await;
    service.wait_stage(id, JobStage::Transcribe).await;
    let paused_at = Instant::now();
    let paused = Command::new("kill").args(["-STOP", &redis.child.id().to_string()]).status();
    assert!(paused.is_ok_and(|s| s.success()));
    // Readiness turns unhealthy while Redis does not answer (an event, waited for).
    loop {
        let ready = service.http.get(format!("{}/readyz", service.base)).send().await.unwrap();
        if ready.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            let body: Value = ready.json().await.unwrap();
            assert_ne!(body["redis"], "ok", "{body}");
            break;
        }
        assert!(paused_at.elapsed() < Duration::from_secs(pause), "/readyz stayed ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The condition under test is a long pause, not a deadline.
    tokio::time::sleep(Duration::from_secs(pause).saturating_sub(paused_at.elapsed())).await;
    let resumed = Command::new("kill").args(["-CONT", &redis.child.id().to_string()]).status();
    assert!(resumed.is_ok_and(|s| s.success()));
    let back = Instant::now();
    let job = service.wait_final(id, Duration::from_secs(120)).await;
    assert_eq!((job.state, job.attempts), (JobState::Done, 1), "{}", service.logs());
    assert_eq!(received_with_id(&to, &format!("minutes-{id}-v1@minutes")), 1);
    let next = service.submit("formats/hello_s16_16k.wav", None).await;
    let next = service.wait_final(next, Duration::from_secs(120)).await;
    assert_eq!(next.state, JobState::Done, "{}", service.logs());
    eprintln!(
        "R17: Redis paused {pause} s; the next job was done {:.1} s after it came back",
        back.elapsed().as_secs_f64()
    );
    assert!(
        service.workers[worker].child.try_wait().unwrap().is_none(),
        "the worker is still running\n{}",
        service.logs()
    );
    service.stop().await;
    drop(redis);
}
