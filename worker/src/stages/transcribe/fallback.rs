//! Whether a decoding is good enough, as faster-whisper's `generate_with_fallback` judges:
//! a loop (text that compresses too well) or a guess (low average log-probability) is
//! decoded again at the next temperature; when every temperature fails, the most confident
//! attempt that is not a loop is kept; non-speech with low confidence is dropped.

use super::decoding::{Attempt, Piece};
use super::features::SAMPLE_RATE;
use super::repetition::compression_ratio;
use super::segments::WindowResult;
use super::{TranscribeOptions, WhisperModel};

/// What [`WhisperModel::judge`] decided.
pub(super) enum Judgement {
    Keep(Attempt),
    Retry(Piece),
    Silence,
}

impl WhisperModel {
    pub(super) fn attempt(
        &self,
        piece: &Piece,
        ids: Vec<usize>,
        score: f32,
        no_speech_prob: f32,
        language: String,
    ) -> Attempt {
        let seconds = piece.range.len() as f64 / SAMPLE_RATE as f64;
        let result = WindowResult::from_ids(&self.vocabulary, &ids, seconds);
        // faster-whisper's measure: the score is the log-probability per token (length
        // penalty 1); its average over the tokens and the end of text.
        let length = ids.len() as f32;
        let avg_logprob = score * length / (length + 1.0);
        let compression_ratio = compression_ratio(&result.text());
        Attempt { result, language, avg_logprob, compression_ratio, no_speech_prob }
    }
}

/// Keep, retry hotter or drop, as faster-whisper's `generate_with_fallback` decides.
pub(super) fn judge(options: &TranscribeOptions, piece: &Piece, attempt: Attempt) -> Judgement {
    let silent = attempt.no_speech_prob > options.no_speech_threshold
        && attempt.avg_logprob < options.log_prob_threshold;
    let poor = attempt.compression_ratio > options.compression_ratio_threshold
        || attempt.avg_logprob < options.log_prob_threshold;
    if silent {
        return Judgement::Silence;
    }
    if !poor {
        return Judgement::Keep(attempt);
    }
    if piece.temperature + 1 < options.temperatures.len() {
        let mut next = piece.clone();
        next.temperature += 1;
        next.tried.push(attempt);
        return Judgement::Retry(next);
    }
    // Every temperature failed: the most confident attempt that is not a loop, else
    // the most confident of all.
    let mut all = piece.tried.clone();
    all.push(attempt);
    let most_confident = |a: &Attempt, b: &Attempt| a.avg_logprob.total_cmp(&b.avg_logprob);
    let not_loops: Vec<&Attempt> =
        all.iter().filter(|a| a.compression_ratio <= options.compression_ratio_threshold).collect();
    let best = match not_loops.into_iter().max_by(|a, b| most_confident(a, b)) {
        Some(best) => best.clone(),
        None => {
            all.iter().max_by(|a, b| most_confident(a, b)).cloned().unwrap_or_else(|| Attempt {
                result: WindowResult::default(),
                language: String::new(),
                avg_logprob: f32::NEG_INFINITY,
                compression_ratio: 0.0,
                no_speech_prob: 1.0,
            })
        }
    };
    match best.no_speech_prob > options.no_speech_threshold
        && best.avg_logprob < options.log_prob_threshold
    {
        true => Judgement::Silence,
        false => Judgement::Keep(best),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(avg_logprob: f32, compression_ratio: f32, no_speech_prob: f32) -> Attempt {
        Attempt {
            result: WindowResult::default(),
            language: "en".into(),
            avg_logprob,
            compression_ratio,
            no_speech_prob,
        }
    }

    #[test]
    fn a_loop_or_a_guess_is_decoded_again_hotter() {
        let options = TranscribeOptions::default();
        let piece = Piece::default();
        assert!(matches!(judge(&options, &piece, attempt(-0.3, 1.6, 0.1)), Judgement::Keep(_)));
        let Judgement::Retry(next) = judge(&options, &piece, attempt(-0.3, 3.1, 0.1)) else {
            panic!("a window that compresses 3.1 times is a loop");
        };
        assert_eq!(next.temperature, 1);
        assert_eq!(next.tried.len(), 1);
        assert!(matches!(judge(&options, &piece, attempt(-1.4, 1.5, 0.1)), Judgement::Retry(_)));
    }

    #[test]
    fn silence_is_dropped_but_confident_text_is_not() {
        let options = TranscribeOptions::default();
        let piece = Piece::default();
        assert!(matches!(judge(&options, &piece, attempt(-1.3, 1.5, 0.9)), Judgement::Silence));
        // faster-whisper: a confident result stays even when the model says "no speech".
        assert!(matches!(judge(&options, &piece, attempt(-0.4, 1.5, 0.9)), Judgement::Keep(_)));
    }

    #[test]
    fn when_every_temperature_fails_the_most_confident_non_loop_is_kept() {
        let options = TranscribeOptions::default();
        let last = options.temperatures.len() - 1;
        let piece = Piece {
            temperature: last,
            tried: vec![attempt(-0.2, 3.0, 0.1), attempt(-1.2, 1.4, 0.1), attempt(-1.1, 1.5, 0.1)],
            ..Piece::default()
        };
        let Judgement::Keep(kept) = judge(&options, &piece, attempt(-1.5, 1.3, 0.1)) else {
            panic!("the last temperature keeps the best attempt");
        };
        assert!((kept.avg_logprob + 1.1).abs() < 1e-6, "kept {kept:?}");
    }
}
