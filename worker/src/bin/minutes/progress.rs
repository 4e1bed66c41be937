//! The terminal progress bar: drawn when standard error is a terminal, silent otherwise.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar with a stage name; a no-op when standard error is a pipe or a file.
#[derive(Clone)]
pub struct Progress(Option<ProgressBar>);

impl Progress {
    pub fn new() -> Self {
        if !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let bar = ProgressBar::new(1000);
        let style =
            ProgressStyle::with_template("{msg:>20} [{bar:40}] {percent:>3}% {elapsed_precise}")
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        Self(Some(bar))
    }

    pub fn stage(&self, name: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(name.to_string());
            bar.set_position(0);
        }
    }

    pub fn set(&self, fraction: f64) {
        if let Some(bar) = &self.0 {
            bar.set_position((fraction.clamp(0.0, 1.0) * 1000.0) as u64);
        }
    }

    /// Clears the bar; prints `summary` only on a terminal (pipes get the data alone).
    pub fn finish(&self, summary: &str) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
            if !summary.is_empty() {
                eprintln!("{summary}");
            }
        }
    }

    /// Prints a line above the bar (or plainly, without one).
    pub fn println(&self, line: &str) {
        match &self.0 {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }
}

/// "0.04 s", "12.3 s" or "2 min 05 s".
pub fn seconds(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs < 10.0 {
        format!("{secs:.2} s")
    } else if secs < 60.0 {
        format!("{secs:.1} s")
    } else {
        format!("{} min {:02} s", (secs / 60.0) as u64, (secs % 60.0) as u64)
    }
}
