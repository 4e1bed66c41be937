//! Cutting a transcript into parts that fit a language model's context.
//!
//! We do not have the served model's tokenizer, so sizes are estimated conservatively
//! (one token per three characters; English averages about four). When the estimate is
//! still too small, the server says "exceeds the context" and the caller halves the part.

use minutes_shared::subtitles::clock;
use minutes_shared::Transcript;

/// One transcript line as the model sees it: `[hh:mm:ss] text`.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Start of the segment, in seconds.
    pub start: f64,
    /// End of the segment, in seconds.
    pub end: f64,
    /// What was said.
    pub text: String,
}

impl Line {
    /// The line as it appears in a prompt.
    pub fn render(&self) -> String {
        format!("[{}] {}", clock(self.start), self.text)
    }
}

/// Estimated tokens of `text` for an unknown tokenizer, rounded up.
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(3)
}

/// The transcript's non-empty segments as prompt lines.
pub fn lines(transcript: &Transcript) -> Vec<Line> {
    transcript
        .segments
        .iter()
        .filter(|s| !s.text.trim().is_empty())
        .map(|s| Line { start: s.start, end: s.end, text: s.text.trim().to_string() })
        .collect()
}

/// Consecutive runs of `lines` whose rendered size stays within `budget` tokens each. A
/// single line larger than the budget gets a part of its own (the server will say whether
/// it fits); no line is ever cut or left out.
pub fn split(lines: &[Line], budget: usize) -> Vec<Vec<Line>> {
    let mut parts = Vec::new();
    let mut current: Vec<Line> = Vec::new();
    let mut used = 0;
    for line in lines {
        let cost = estimate_tokens(&line.render()) + 1;
        if !current.is_empty() && used + cost > budget {
            parts.push(std::mem::take(&mut current));
            used = 0;
        }
        used += cost;
        current.push(line.clone());
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(i: usize) -> Line {
        Line { start: i as f64 * 5.0, end: i as f64 * 5.0 + 4.0, text: format!("sentence {i}") }
    }

    #[test]
    fn parts_respect_the_budget_and_keep_every_line_in_order() {
        let all: Vec<Line> = (0..100).map(line).collect();
        let parts = split(&all, 40);
        assert!(parts.len() > 5, "{}", parts.len());
        for part in &parts {
            let size: usize = part.iter().map(|l| estimate_tokens(&l.render()) + 1).sum();
            assert!(size <= 40, "{size}");
        }
        let joined: Vec<Line> = parts.into_iter().flatten().collect();
        assert_eq!(joined, all);
    }

    #[test]
    fn a_line_larger_than_the_budget_is_kept_whole() {
        let mut all: Vec<Line> = (0..3).map(line).collect();
        all[1].text = "word ".repeat(100);
        let parts = split(&all, 20);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[1][0].text, all[1].text);
    }

    #[test]
    fn lines_render_with_their_start_time() {
        assert_eq!(line(13).render(), "[00:01:05] sentence 13");
    }
}
