//! File names people upload, made safe to store and to send back: the name is only ever
//! shown and offered in `Content-Disposition`; object keys come from job ids.

/// Longest kept name, in characters.
const MAX_CHARS: usize = 200;

/// The last path component of `raw` without control characters, trimmed and shortened;
/// `recording` when nothing is left.
pub fn sanitize(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String =
        last.chars().filter(|c| !c.is_control() && !is_bidi_control(*c)).take(MAX_CHARS).collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    if trimmed.is_empty() {
        "recording".into()
    } else {
        trimmed.to_string()
    }
}

/// The Unicode controls that reorder displayed text (an `exe` shown as `...3pm.exe` read
/// backwards): marks, embeddings, overrides and isolates.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A `Content-Disposition: attachment` value offering `name`: a plain-ASCII fallback and
/// the exact name percent-encoded (RFC 6266), so it is always one well-formed header.
pub fn attachment(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// `weekly sync.m4a` -> `weekly sync` (the stem downloads are named after).
pub fn stem(name: &str) -> &str {
    match name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_lose_their_paths_and_control_characters() {
        assert_eq!(sanitize("../../etc/passwd"), "passwd");
        assert_eq!(sanitize("..\\x"), "x");
        assert_eq!(sanitize("%2e%2e/"), "recording");
        assert_eq!(sanitize("a\0b\r\nc.mp3"), "abc.mp3");
        assert_eq!(sanitize(".."), "recording");
        assert_eq!(sanitize(&"x".repeat(1000)).chars().count(), 200);
        assert_eq!(sanitize("réunion 🎙.m4a"), "réunion 🎙.m4a");
    }

    /// Bidi override characters survived in file names: `invoice\u{202E}fdp.exe` is shown
    /// as `invoiceexe.pdf`.
    #[test]
    fn bidi_controls_are_stripped_from_file_names() {
        assert_eq!(sanitize("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
        assert_eq!(sanitize("\u{2066}a\u{2069}\u{200F}b.m4a\u{061C}"), "ab.m4a");
        assert_eq!(sanitize("שלום.m4a"), "שלום.m4a", "right-to-left letters stay");
    }

    #[test]
    fn the_disposition_header_is_plain_ascii() {
        let value = attachment("réunion \"q\" 🎙.pdf");
        assert!(value.is_ascii(), "{value}");
        assert!(value.starts_with("attachment; filename=\"r_union _q_ _.pdf\"; filename*=UTF-8''"));
        assert!(axum::http::HeaderValue::from_str(&value).is_ok());
    }
}
