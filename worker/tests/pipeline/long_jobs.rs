//! R6: a long CPU-bound transcription on a live worker is never re-queued and never started
//! twice: the lease keeper's heartbeats run on the async runtime while the stages hold the
//! blocking threads. The lease is made short (4 s, renewed every second) so that the
//! transcription outlasts it many times over, and a second worker waits to take any job
//! whose lease lapses; `MINUTES_R6_REPEATS` makes the recording longer (scripts/reliability).

use std::time::Instant;

use minutes_shared::jobs::JobState;
use minutes_shared::stage::JobStage;

use super::service::*;
use super::*;

/// The meeting fixture `repeats` times over, as a 16 kHz mono 16-bit WAV file.
fn long_recording(dir: &Path, repeats: usize) -> PathBuf {
    let audio = audio::load(&fixture("meeting.flac"), DecodeOptions::default(), &mut |_| {})
        .expect("decode the fixture");
    let samples: Vec<i16> = (0..repeats)
        .flat_map(|_| audio.samples.iter())
        .map(|s| (s.clamp(-1.0, 1.0) * f32::from(i16::MAX)) as i16)
        .collect();
    let data_len = (samples.len() * 2) as u32;
    let mut wav = Vec::with_capacity(44 + data_len as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&16_000u32.to_le_bytes());
    wav.extend_from_slice(&32_000u32.to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for sample in samples {
        wav.extend_from_slice(&sample.to_le_bytes());
    }
    let path = dir.join(format!("meeting-x{repeats}.wav"));
    std::fs::write(&path, wav).expect("write the long recording");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r6_a_transcription_many_leases_long_is_never_requeued_or_started_twice() {
    let repeats: usize =
        std::env::var("MINUTES_R6_REPEATS").ok().and_then(|r| r.parse().ok()).unwrap_or(6);
    let mut service = Service::start(Store::Local).await;
    // A 4 s lease, renewed every second; the base model, beam 5 on one thread.
    let short_lease = [
        ("MINUTES_HEARTBEAT_SECS", "1"),
        ("MINUTES_MISSED_HEARTBEATS", "4"),
        ("MINUTES_MODEL", "base"),
        ("MINUTES_MODELS", "base"),
        ("MINUTES_LANGUAGE", "en"),
    ];
    service.spawn_worker(&short_lease);
    service.spawn_worker(&short_lease);
    let recording = long_recording(&service.dir, repeats);
    let id = service.submit(recording.to_str().expect("utf-8"), None).await;
    let started = Instant::now();
    let mut transcribing_since: Option<Instant> = None;
    let mut holders = std::collections::BTreeSet::new();
    // The least time left on the lease seen while it ran (a figure, not a bound: the
    // assertions are on attempts and holders).
    let mut least_left = f64::INFINITY;
    let job = loop {
        let job = service.job(id).await;
        if job.state == JobState::Running {
            holders.extend(job.worker_name.clone());
            if let Some(lease) = job.lease_expires_at {
                let left = (lease - chrono::Utc::now()).num_milliseconds() as f64 / 1000.0;
                least_left = least_left.min(left);
            }
            if job.stage == JobStage::Transcribe && transcribing_since.is_none() {
                transcribing_since = Some(Instant::now());
            }
        }
        if job.state.is_final() {
            break job;
        }
        assert!(started.elapsed() < Duration::from_secs(1800), "not done after 30 min");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let transcribed = transcribing_since.map(|t| t.elapsed()).unwrap_or_default();
    assert_eq!(job.state, JobState::Done, "{}", service.logs());
    assert_eq!(job.attempts, 1, "started once");
    assert_eq!(holders.len(), 1, "one worker held it: {holders:?}");
    let events = service.repo.events(id, 0).await.expect("events");
    let starts = events.iter().filter(|e| e.message.starts_with("started by")).count();
    assert_eq!(starts, 1, "one start in the event log");
    assert!(
        transcribed > Duration::from_secs(8),
        "the run must outlast the lease: {transcribed:?}"
    );
    println!(
        "R6: {:.0} s of audio; transcription and the rest ran {:.1} s ({:.0} leases of 4 s): \
         1 attempt, 1 worker; least time left on the lease seen: {least_left:.1} s",
        job.media_duration.unwrap_or_default(),
        transcribed.as_secs_f64(),
        transcribed.as_secs_f64() / 4.0
    );
    service.stop().await;
}
