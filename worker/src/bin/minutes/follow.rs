//! Following jobs until they end, with one progress bar for the batch.

use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use minutes_shared::jobs::JobState;

use crate::client::{Client, JobView};

/// Polls `jobs` every `every` until each is done, failed or cancelled; returns them as they
/// ended.
pub async fn follow(
    client: &Client,
    jobs: &[JobView],
    bars: &MultiProgress,
    every: Duration,
) -> anyhow::Result<Vec<JobView>> {
    let bar = bars.add(ProgressBar::new(jobs.len() as u64));
    bar.set_style(
        ProgressStyle::with_template("{msg:>28} [{bar:30}] {pos}/{len} ended, {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut latest: Vec<JobView> = jobs.to_vec();
    loop {
        for job in latest.iter_mut().filter(|j| !j.is_final()) {
            match client.job(&job.id.to_string()).await {
                Ok(fresh) => *job = fresh,
                Err(error) => bars.println(format!("minutes: job {}: {error:#}", job.id))?,
            }
        }
        let ended = latest.iter().filter(|j| j.is_final()).count();
        let running: Vec<String> = latest
            .iter()
            .filter(|j| j.state == JobState::Running)
            .map(|j| format!("{} {:.0}%", j.stage, j.percent))
            .take(2)
            .collect();
        bar.set_position(ended as u64);
        bar.set_message(running.join(", "));
        if ended == latest.len() {
            bar.finish_with_message("all ended");
            return Ok(latest);
        }
        tokio::time::sleep(every).await;
    }
}
