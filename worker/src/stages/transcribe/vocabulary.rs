//! The model's token vocabulary: special token ids and byte-level BPE text decoding.
//!
//! CTranslate2 model directories ship the vocabulary as `vocabulary.txt` (one token per
//! line) or `vocabulary.json` (an array); a token's id is its position. Text tokens are
//! GPT-2 byte-level BPE: each byte is drawn as a printable character, which
//! [`Vocabulary::decode`] maps back before reading the bytes as UTF-8.

use std::collections::HashMap;
use std::path::Path;

use super::TranscribeError;

/// The vocabulary and the ids of the special tokens transcription needs.
#[derive(Debug)]
pub struct Vocabulary {
    tokens: Vec<String>,
    ids: HashMap<String, usize>,
    byte_of_char: HashMap<char, u8>,
    /// `<|endoftext|>`; every id at or above it is a special token.
    pub end_of_text: usize,
    /// `<|0.00|>`; ids from here on are timestamps in steps of 20 ms.
    pub timestamp_begin: usize,
}

impl Vocabulary {
    /// Reads `vocabulary.txt` or `vocabulary.json` from a model directory.
    pub fn load(model_dir: &Path) -> Result<Self, TranscribeError> {
        let txt = model_dir.join("vocabulary.txt");
        let json = model_dir.join("vocabulary.json");
        let tokens: Vec<String> = if txt.is_file() {
            std::fs::read_to_string(&txt)
                .map_err(|e| {
                    TranscribeError::invalid_model(model_dir, format!("{}: {e}", txt.display()))
                })?
                .lines()
                .map(str::to_string)
                .collect()
        } else if json.is_file() {
            let text = std::fs::read_to_string(&json).map_err(|e| {
                TranscribeError::invalid_model(model_dir, format!("{}: {e}", json.display()))
            })?;
            serde_json::from_str(&text).map_err(|e| {
                TranscribeError::invalid_model(model_dir, format!("{}: {e}", json.display()))
            })?
        } else {
            return Err(TranscribeError::invalid_model(
                model_dir,
                "no vocabulary.txt or vocabulary.json".into(),
            ));
        };
        Self::from_tokens(tokens)
            .map_err(|reason| TranscribeError::invalid_model(model_dir, reason))
    }

    /// Builds the vocabulary from its tokens in id order.
    pub fn from_tokens(tokens: Vec<String>) -> Result<Self, String> {
        let ids: HashMap<String, usize> =
            tokens.iter().enumerate().map(|(id, token)| (token.clone(), id)).collect();
        let find = |token: &str| {
            ids.get(token).copied().ok_or_else(|| format!("the vocabulary has no {token}"))
        };
        let end_of_text = find("<|endoftext|>")?;
        let timestamp_begin = find("<|0.00|>")?;
        Ok(Self { tokens, ids, byte_of_char: byte_decoder(), end_of_text, timestamp_begin })
    }

    /// The id of `token`, if the vocabulary has it.
    pub fn id(&self, token: &str) -> Option<usize> {
        self.ids.get(token).copied()
    }

    /// The token string of `id`.
    pub fn token(&self, id: usize) -> Option<&str> {
        self.tokens.get(id).map(String::as_str)
    }

    /// Whether `id` is a timestamp token.
    pub fn is_timestamp(&self, id: usize) -> bool {
        id >= self.timestamp_begin
    }

    /// Whether `id` is ordinary text (not a special or timestamp token).
    pub fn is_text(&self, id: usize) -> bool {
        id < self.end_of_text
    }

    /// The time a timestamp token stands for, in seconds from the window start.
    pub fn timestamp_seconds(&self, id: usize) -> f64 {
        (id - self.timestamp_begin) as f64 * 0.02
    }

    /// The raw bytes of text tokens (special tokens are skipped).
    pub fn bytes(&self, ids: &[usize], out: &mut Vec<u8>) {
        for &id in ids.iter().filter(|&&id| self.is_text(id)) {
            if let Some(token) = self.tokens.get(id) {
                out.extend(token.chars().filter_map(|c| self.byte_of_char.get(&c).copied()));
            }
        }
    }

    /// The text of `ids`, special tokens skipped; invalid UTF-8 becomes U+FFFD.
    pub fn decode(&self, ids: &[usize]) -> String {
        let mut bytes = Vec::new();
        self.bytes(ids, &mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// GPT-2's `bytes_to_unicode`, reversed: printable stand-in character to byte.
fn byte_decoder() -> HashMap<char, u8> {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
    let mut map = HashMap::with_capacity(256);
    let mut shifted = 0u32;
    for byte in 0..=255u8 {
        let stand_in = if printable(byte) {
            u32::from(byte)
        } else {
            shifted += 1;
            255 + shifted
        };
        if let Some(c) = char::from_u32(stand_in) {
            map.insert(c, byte);
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> Vocabulary {
        let tokens = [
            "Hello",
            "Ġworld",
            "Ã©",
            "<|endoftext|>",
            "<|startoftranscript|>",
            "<|0.00|>",
            "<|0.02|>",
        ];
        Vocabulary::from_tokens(tokens.iter().map(|t| t.to_string()).collect())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn decodes_byte_level_tokens_and_skips_specials() {
        let v = vocab();
        assert_eq!(v.decode(&[0, 1, 4, 2]), "Hello worldé");
        assert!(v.is_timestamp(6));
        assert!((v.timestamp_seconds(6) - 0.02).abs() < 1e-9);
    }

    #[test]
    fn space_and_newline_stand_ins_map_back() {
        let decoder = byte_decoder();
        assert_eq!(decoder.get(&'Ġ'), Some(&b' '));
        assert_eq!(decoder.get(&'Ċ'), Some(&b'\n'));
        assert_eq!(decoder.len(), 256);
    }
}
