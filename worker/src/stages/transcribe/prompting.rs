//! What the model is given and asked: the prompt (vocabulary hints and earlier text before
//! `<|startoftranscript|>`, then language, task and `<|notimestamps|>`), the search
//! options of a temperature, and the alignment of text tokens to audio frames that times
//! the words.

use ct2rs::sys::{StorageView, WhisperOptions};

use super::decoding::{Attempt, Context, Piece};
use super::features::HOP;
use super::{Task, TranscribeError, TranscribeOptions, WhisperModel};

/// Longest prompt before `<|startoftranscript|>`, in tokens (half the model's context).
const MAX_PROMPT_TOKENS: usize = 223;

impl WhisperModel {
    /// `<|startofprev|>` hints and earlier text, then the start of transcript, language and
    /// task tokens.
    pub(super) fn prompt(
        &self,
        language: &str,
        previous: &[String],
        context: &Context<'_>,
    ) -> Result<Vec<String>, TranscribeError> {
        let mut prompt = Vec::new();
        if !context.hints.is_empty() || !previous.is_empty() {
            prompt.push("<|startofprev|>".to_string());
            let hints = &context.hints[..context.hints.len().min(MAX_PROMPT_TOKENS)];
            prompt.extend(hints.iter().cloned());
            let room = MAX_PROMPT_TOKENS - hints.len();
            prompt.extend(previous[previous.len().saturating_sub(room)..].iter().cloned());
        }
        prompt.push("<|startoftranscript|>".to_string());
        if self.is_multilingual() {
            let token = format!("<|{language}|>");
            if self.vocabulary.id(&token).is_none() {
                return Err(TranscribeError::UnknownLanguage(language.into()));
            }
            prompt.push(token);
            prompt.push(match context.options.task {
                Task::Transcribe => "<|transcribe|>".into(),
                Task::Translate => "<|translate|>".into(),
            });
        }
        // Text without timestamp tokens; words are timed by alignment instead.
        prompt.push("<|notimestamps|>".into());
        Ok(prompt)
    }

    pub(super) fn generation_options(
        &self,
        options: &TranscribeOptions,
        temperature: f32,
    ) -> WhisperOptions {
        let sampling = temperature > 0.0;
        WhisperOptions {
            beam_size: if sampling { 1 } else { options.beam_size.max(1) },
            num_hypotheses: if sampling { options.best_of.max(1) } else { 1 },
            sampling_temperature: if sampling { temperature } else { 1.0 },
            sampling_topk: if sampling { 0 } else { 1 },
            return_scores: true,
            return_no_speech_prob: true,
            ..WhisperOptions::default()
        }
    }

    pub(super) fn align_words(
        &self,
        encoded: &StorageView,
        prompts: &[Vec<String>],
        group: &[Piece],
        accepted: &mut [Option<Attempt>],
    ) -> Result<(), TranscribeError> {
        // Alignment takes one start sequence for the whole batch (from
        // `<|startoftranscript|>` on); pieces in other languages wait for their own call.
        let starts: Vec<Vec<usize>> = prompts
            .iter()
            .map(|prompt| {
                let from = prompt.iter().position(|t| t == "<|startoftranscript|>").unwrap_or(0);
                prompt[from..].iter().filter_map(|t| self.vocabulary.id(t)).collect()
            })
            .collect();
        let mut distinct: Vec<&Vec<usize>> = Vec::new();
        for (start, attempt) in starts.iter().zip(accepted.iter()) {
            if attempt.is_some() && !distinct.contains(&start) {
                distinct.push(start);
            }
        }
        let frames: Vec<usize> = group.iter().map(|p| p.range.len() / HOP).collect();
        for start_sequence in distinct {
            let text_tokens: Vec<Vec<usize>> = accepted
                .iter()
                .zip(&starts)
                .map(|(attempt, start)| match attempt {
                    Some(attempt) if start == start_sequence => attempt.result.text_tokens(),
                    _ => Vec::new(),
                })
                .collect();
            if text_tokens.iter().all(Vec::is_empty) {
                continue;
            }
            let alignments = self
                .whisper
                .align(encoded, start_sequence, &text_tokens, &frames, 7)
                .map_err(|e| TranscribeError::Engine(e.to_string()))?;
            for ((attempt, alignment), tokens) in
                accepted.iter_mut().zip(alignments).zip(&text_tokens)
            {
                if let (Some(attempt), false) = (attempt, tokens.is_empty()) {
                    attempt.result.attach_words(
                        &self.vocabulary,
                        &alignment.alignments,
                        &alignment.text_token_probs,
                    );
                }
            }
        }
        Ok(())
    }
}
