//! Word error rate: how far a transcript is from a reference text.
//!
//! WER = (substitutions + deletions + insertions) / reference words, from a word-level
//! Levenshtein alignment. Both texts are normalised first (lower case, punctuation removed,
//! digits and letters kept), so "Friday." and "friday" count as the same word.

/// Counts of an alignment between a reference and a hypothesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WordErrors {
    /// Reference words replaced by another word.
    pub substitutions: usize,
    /// Reference words missing from the hypothesis.
    pub deletions: usize,
    /// Hypothesis words not in the reference.
    pub insertions: usize,
    /// Words in the normalised reference.
    pub reference_words: usize,
}

impl WordErrors {
    /// The word error rate; 0 for an empty reference matched by an empty hypothesis,
    /// and the insertion count (as a rate over one word) when only the reference is empty.
    pub fn rate(&self) -> f64 {
        let errors = (self.substitutions + self.deletions + self.insertions) as f64;
        errors / self.reference_words.max(1) as f64
    }
}

/// Lower-cases `text`, turns every character that is not a letter, digit or apostrophe
/// into a space, and splits on white space. Apostrophes inside words are kept ("I'll").
pub fn normalise(text: &str) -> Vec<String> {
    let cleaned: String = text
        .chars()
        .map(|c| match c {
            '’' | '\'' => '\'',
            c if c.is_alphanumeric() => c,
            _ => ' ',
        })
        .flat_map(char::to_lowercase)
        .collect();
    cleaned
        .split_whitespace()
        .map(|word| word.trim_matches('\'').to_string())
        .filter(|word| !word.is_empty())
        .collect()
}

/// Aligns the normalised words of `hypothesis` against `reference`.
pub fn word_errors(reference: &str, hypothesis: &str) -> WordErrors {
    let reference = normalise(reference);
    let hypothesis = normalise(hypothesis);
    // dp[j] = (cost, subs, dels, ins) for reference[..i] vs hypothesis[..j]; one row kept.
    type Cell = (usize, usize, usize, usize);
    let mut previous: Vec<Cell> = (0..=hypothesis.len()).map(|j| (j, 0, 0, j)).collect();
    for (i, ref_word) in reference.iter().enumerate() {
        let mut current: Vec<Cell> = Vec::with_capacity(hypothesis.len() + 1);
        current.push((i + 1, 0, i + 1, 0));
        for (j, hyp_word) in hypothesis.iter().enumerate() {
            let diagonal = previous[j];
            let matched = if ref_word == hyp_word {
                diagonal
            } else {
                (diagonal.0 + 1, diagonal.1 + 1, diagonal.2, diagonal.3)
            };
            let up = previous[j + 1];
            let deleted = (up.0 + 1, up.1, up.2 + 1, up.3);
            let left = current[j];
            let inserted = (left.0 + 1, left.1, left.2, left.3 + 1);
            let best = [matched, deleted, inserted]
                .into_iter()
                .min_by_key(|cell| cell.0)
                .unwrap_or(matched);
            current.push(best);
        }
        previous = current;
    }
    let (_, substitutions, deletions, insertions) = previous[hypothesis.len()];
    WordErrors { substitutions, deletions, insertions, reference_words: reference.len() }
}

/// The word error rate of `hypothesis` against `reference`.
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    word_errors(reference, hypothesis).rate()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_texts_after_normalising_have_no_errors() {
        assert_eq!(word_error_rate("Hello, World! I'll go.", "hello world i'll go"), 0.0);
    }

    #[test]
    fn counts_each_kind_of_error() {
        let errors = word_errors("the cat sat on the mat", "the sat on the mat today");
        assert_eq!(errors.deletions, 1);
        assert_eq!(errors.insertions, 1);
        assert_eq!(errors.substitutions, 0);
        assert_eq!(errors.reference_words, 6);
        assert!((errors.rate() - 2.0 / 6.0).abs() < 1e-9);
    }

    #[test]
    fn substitution_is_one_error_not_two() {
        let errors = word_errors("move the release", "move a release");
        assert_eq!((errors.substitutions, errors.deletions, errors.insertions), (1, 0, 0));
    }

    #[test]
    fn empty_hypothesis_deletes_everything() {
        assert_eq!(word_error_rate("one two three", ""), 1.0);
        assert_eq!(word_error_rate("", ""), 0.0);
    }

    #[test]
    fn normalise_keeps_inner_apostrophes_and_digits() {
        assert_eq!(normalise("It's 15th — 'quoted' ‘x’"), vec!["it's", "15th", "quoted", "x"]);
    }
}
