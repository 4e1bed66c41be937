//! The fonts the minutes are set in, and text measurement.
//!
//! DejaVu Sans (regular and bold; Bitstream Vera licence, `worker/assets/fonts/LICENSE`)
//! is compiled into the binary, so rendering needs nothing from the system. It covers
//! Latin, Greek and Cyrillic; any character it lacks is replaced by U+FFFD (a visible
//! "�"), never dropped silently and never an error.

use ttf_parser::Face;

use super::RenderError;

/// The regular face's bytes.
pub const REGULAR_TTF: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
/// The bold face's bytes.
pub const BOLD_TTF: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-Bold.ttf");

/// Which face a run of text is set in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weight {
    /// Body text.
    Regular,
    /// Headings and table headers.
    Bold,
}

/// Advance widths of both faces, for line breaking.
pub struct Fonts {
    regular: Face<'static>,
    bold: Face<'static>,
}

impl Fonts {
    /// Parses the bundled faces.
    pub fn load() -> Result<Self, RenderError> {
        let parse = |bytes: &'static [u8]| {
            Face::parse(bytes, 0).map_err(|e| RenderError::Font(e.to_string()))
        };
        Ok(Self { regular: parse(REGULAR_TTF)?, bold: parse(BOLD_TTF)? })
    }

    fn face(&self, weight: Weight) -> &Face<'static> {
        match weight {
            Weight::Regular => &self.regular,
            Weight::Bold => &self.bold,
        }
    }

    /// `text` with every character the face cannot draw (and every control character)
    /// replaced by U+FFFD; tabs and newlines become spaces.
    pub fn printable(&self, text: &str, weight: Weight) -> String {
        let face = self.face(weight);
        text.chars()
            .map(|c| match c {
                '\t' | '\n' | '\r' => ' ',
                c if c.is_control() => '\u{FFFD}',
                c if face.glyph_index(c).is_none() => '\u{FFFD}',
                c => c,
            })
            .collect()
    }

    /// Width of `text` in points at `size` points.
    pub fn width(&self, text: &str, weight: Weight, size: f32) -> f32 {
        let face = self.face(weight);
        let units: u32 = text
            .chars()
            .map(|c| {
                face.glyph_index(c)
                    .and_then(|g| face.glyph_hor_advance(g))
                    .map(u32::from)
                    .unwrap_or(u32::from(face.units_per_em()) / 2)
            })
            .sum();
        units as f32 * size / f32::from(face.units_per_em())
    }

    /// Breaks `text` into lines no wider than `max_width` points: at spaces, and inside a
    /// word only when the word alone is too wide.
    pub fn wrap(&self, text: &str, weight: Weight, size: f32, max_width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = String::new();
        for word in text.split_whitespace() {
            let candidate =
                if line.is_empty() { word.to_string() } else { format!("{line} {word}") };
            if self.width(&candidate, weight, size) <= max_width {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            // A word wider than the line is cut wherever it must be.
            let mut piece = String::new();
            for c in word.chars() {
                piece.push(c);
                if self.width(&piece, weight, size) > max_width && piece.chars().count() > 1 {
                    piece.pop();
                    lines.push(std::mem::take(&mut piece));
                    piece.push(c);
                }
            }
            line = piece;
        }
        if !line.is_empty() || lines.is_empty() {
            lines.push(line);
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_characters_become_a_visible_replacement() {
        let fonts = Fonts::load().unwrap_or_else(|e| panic!("{e}"));
        let printable = fonts.printable("Ünïcödé Ωμέγα Привет 会議\u{7}", Weight::Regular);
        assert!(printable.starts_with("Ünïcödé Ωμέγα Привет "), "{printable}");
        assert!(printable.ends_with("\u{FFFD}\u{FFFD}\u{FFFD}"), "{printable}");
    }

    #[test]
    fn wrapped_lines_fit_and_keep_every_word() {
        let fonts = Fonts::load().unwrap_or_else(|e| panic!("{e}"));
        let text = "The quarterly budget review for the marketing department moves to Tuesday \
                    Supercalifragilisticexpialidociousandthensomemorelettersthatneverend.";
        let lines = fonts.wrap(text, Weight::Regular, 10.0, 120.0);
        assert!(lines.len() > 3);
        for line in &lines {
            assert!(fonts.width(line, Weight::Regular, 10.0) <= 120.0, "{line}");
        }
        assert_eq!(lines.concat().replace(' ', ""), text.replace(' ', ""));
    }
}
