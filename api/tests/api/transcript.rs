//! The transcript on the job page: every line with its time, the unsure ones marked, the
//! quality note above.

use super::*;
use minutes_shared::minutes::{Minutes, Quality, SummarizerInfo, MINUTES_FORMAT_VERSION};
use minutes_shared::transcript::Segment;

#[tokio::test]
async fn the_job_page_shows_the_transcript_with_unsure_lines_marked() {
    let app = TestApp::spawn().await;
    let job = finished_job(&app, &app.http).await;
    let id: Uuid = job["id"].as_str().unwrap().parse().unwrap();
    let line = |start: f64, text: &str, logprob: f32| Segment {
        start,
        end: start + 3.0,
        text: text.into(),
        language: "en".into(),
        avg_logprob: Some(logprob),
        no_speech_prob: Some(0.01),
        ..Segment::default()
    };
    let transcript =
        vec![line(0.0, "We ship in March.", -0.1), line(3.0, "Mumbled <words>.", -1.4)];
    let minutes = Minutes {
        version: MINUTES_FORMAT_VERSION,
        title: "T".into(),
        date: "2026-12-01".into(),
        duration: 6.0,
        language: "en".into(),
        source_filename: "a.wav".into(),
        summary: "S".into(),
        key_points: vec![],
        decisions: vec![],
        action_items: vec![],
        open_questions: vec![],
        summarizer: SummarizerInfo::extractive(),
        quality: Some(Quality {
            model: "whisper-tiny.en".into(),
            languages: vec![minutes_shared::minutes::LanguageShare {
                language: "en".into(),
                share: 1.0,
            }],
            speech_share: 1.0,
            low_confidence_share: 0.5,
        }),
        participants: vec![],
        transcript,
    };
    let job = app.repo.get(id).await.unwrap().unwrap();
    let key = job.artifacts["minutes.json"].as_str().unwrap().to_string();
    app.storage.put(&key, bytes::Bytes::from(serde_json::to_vec(&minutes).unwrap())).await.unwrap();
    let page =
        app.http.get(app.url(&format!("/jobs/{id}"))).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains(r#"<li><span class="at">[00:00:00]</span> We ship in March.</li>"#),
        "{page}"
    );
    assert!(
        page.contains(
            r#"<li class="unsure"><span class="at">[00:00:03]</span> Mumbled &lt;words&gt;."#
        ),
        "{page}"
    );
    assert!(
        page.contains("English 100 %") && page.contains("50 % of lines marked unsure"),
        "{page}"
    );
    app.finish().await;
}
