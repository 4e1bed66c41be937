//! Text to Whisper token ids: GPT-2's byte-level BPE, for the prompt text that steers
//! recognition (vocabulary hints, the text decoded just before a window).
//!
//! The merges come from the model directory's `tokenizer.json` (every faster-whisper model
//! has one). Text is split as GPT-2's pre-tokenizer does (contractions, an optional space
//! and a run of letters, digits or other symbols, runs of white space), each piece is
//! written in the byte-level alphabet, and adjacent symbols are merged lowest rank first.

use std::collections::HashMap;
use std::path::Path;

/// The BPE merges of a model.
pub struct Encoder {
    ranks: HashMap<(String, String), usize>,
    char_of_byte: [char; 256],
}

impl Encoder {
    /// Reads the merges of `tokenizer.json` in `model_dir`; `Err` says what is wrong.
    pub fn load(model_dir: &Path) -> Result<Self, String> {
        let path = model_dir.join("tokenizer.json");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let merges = json
            .pointer("/model/merges")
            .and_then(|m| m.as_array())
            .ok_or_else(|| format!("{}: no BPE merges", path.display()))?;
        let mut ranks = HashMap::with_capacity(merges.len());
        for (rank, merge) in merges.iter().enumerate() {
            // Two spellings exist: "a b" (older files) and ["a", "b"].
            let pair = match merge {
                serde_json::Value::String(s) => {
                    s.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string()))
                }
                serde_json::Value::Array(parts) => match parts.as_slice() {
                    [a, b] => a.as_str().zip(b.as_str()).map(|(a, b)| (a.into(), b.into())),
                    _ => None,
                },
                _ => None,
            };
            let pair =
                pair.ok_or_else(|| format!("{}: merge {rank} unreadable", path.display()))?;
            ranks.entry(pair).or_insert(rank);
        }
        Ok(Self { ranks, char_of_byte: byte_alphabet() })
    }

    /// The BPE tokens of `text`, in the byte-level alphabet (look them up in the vocabulary).
    pub fn tokens(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for piece in pre_tokenize(text) {
            let symbols: Vec<String> =
                piece.bytes().map(|b| self.char_of_byte[usize::from(b)].to_string()).collect();
            out.extend(self.merge(symbols));
        }
        out
    }

    fn merge(&self, mut symbols: Vec<String>) -> Vec<String> {
        loop {
            let best = symbols
                .windows(2)
                .enumerate()
                .filter_map(|(i, pair)| {
                    self.ranks.get(&(pair[0].clone(), pair[1].clone())).map(|&rank| (rank, i))
                })
                .min();
            let Some((rank, _)) = best else { return symbols };
            let mut merged = Vec::with_capacity(symbols.len());
            let mut i = 0;
            while i < symbols.len() {
                let joins = i + 1 < symbols.len()
                    && self.ranks.get(&(symbols[i].clone(), symbols[i + 1].clone())) == Some(&rank);
                if joins {
                    merged.push(format!("{}{}", symbols[i], symbols[i + 1]));
                    i += 2;
                } else {
                    merged.push(std::mem::take(&mut symbols[i]));
                    i += 1;
                }
            }
            symbols = merged;
        }
    }
}

/// GPT-2's `bytes_to_unicode`: each byte's printable stand-in character.
fn byte_alphabet() -> [char; 256] {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
    let mut alphabet = ['\0'; 256];
    let mut shifted = 0u32;
    for byte in 0..=255u8 {
        let code = if printable(byte) {
            u32::from(byte)
        } else {
            shifted += 1;
            255 + shifted
        };
        alphabet[usize::from(byte)] = char::from_u32(code).unwrap_or('\u{fffd}');
    }
    alphabet
}

/// GPT-2's pre-tokenizer, `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`,
/// written out (the `regex` crate has no look-ahead).
fn pre_tokenize(text: &str) -> Vec<&str> {
    #[derive(PartialEq, Clone, Copy)]
    enum Class {
        Letter,
        Number,
        Other,
        Space,
    }
    let class = |c: char| {
        if c.is_alphabetic() {
            Class::Letter
        } else if c.is_numeric() {
            Class::Number
        } else if c.is_whitespace() {
            Class::Space
        } else {
            Class::Other
        }
    };
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let at = |i: usize| chars.get(i).map_or(text.len(), |&(offset, _)| offset);
    let mut pieces = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (_, c) = chars[i];
        if c == '\'' {
            let rest = &text[at(i + 1)..];
            if let Some(suffix) =
                ["s", "t", "re", "ve", "m", "ll", "d"].iter().find(|s| rest.starts_with(**s))
            {
                let end = i + 1 + suffix.len();
                pieces.push(&text[at(i)..at(end)]);
                i = end;
                continue;
            }
        }
        let start = i;
        // An optional single space joins the run that follows it.
        let (run_from, run_class) = match class(c) {
            Class::Space
                if c == ' ' && i + 1 < chars.len() && class(chars[i + 1].1) != Class::Space =>
            {
                (i + 1, class(chars[i + 1].1))
            }
            other => (i, other),
        };
        let mut end = run_from;
        while end < chars.len() && class(chars[end].1) == run_class {
            end += 1;
        }
        if run_class == Class::Space && end < chars.len() && end - start > 1 {
            // `\s+(?!\S)`: leave the last space to prefix the next word.
            end -= 1;
        }
        pieces.push(&text[at(start)..at(end)]);
        i = end;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pre_tokenizer_matches_gpt2() {
        assert_eq!(pre_tokenize(" Hello, world"), vec![" Hello", ",", " world"]);
        assert_eq!(pre_tokenize("it's 2026!"), vec!["it", "'s", " 2026", "!"]);
        assert_eq!(pre_tokenize("a   b"), vec!["a", "  ", " b"]);
        assert_eq!(pre_tokenize(" Sarah Chen, ComfyUI"), vec![" Sarah", " Chen", ",", " ComfyUI"]);
        assert_eq!(pre_tokenize("end  "), vec!["end", "  "]);
    }

    #[test]
    fn merges_apply_lowest_rank_first() {
        let mut ranks = HashMap::new();
        ranks.insert(("Ġ".to_string(), "t".to_string()), 0);
        ranks.insert(("h".to_string(), "e".to_string()), 1);
        ranks.insert(("Ġt".to_string(), "he".to_string()), 2);
        let encoder = Encoder { ranks, char_of_byte: byte_alphabet() };
        assert_eq!(encoder.tokens(" the"), vec!["Ġthe"]);
        assert_eq!(encoder.tokens(" tea"), vec!["Ġt", "e", "a"]);
    }
}
