//! Recognises the media types the workers can decode from a file's first bytes, whatever
//! its name or declared type says (a `.mp3` that is really an `.exe` is refused).

/// Bytes to look at: enough for every signature below.
pub const SNIFF_LEN: usize = 64;

/// A supported container, recognised by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    /// WAV (RIFF .. WAVE).
    Wav,
    /// FLAC.
    Flac,
    /// Ogg (Vorbis, Opus).
    Ogg,
    /// MP3, with an ID3 tag or starting at a frame.
    Mp3,
    /// AAC in ADTS frames.
    Aac,
    /// MP4 family: m4a, mp4, mov (an `ftyp` box).
    Mp4,
    /// Matroska and WebM (EBML).
    Matroska,
}

impl MediaType {
    /// The content type recorded for the upload.
    pub fn content_type(self) -> &'static str {
        match self {
            MediaType::Wav => "audio/wav",
            MediaType::Flac => "audio/flac",
            MediaType::Ogg => "audio/ogg",
            MediaType::Mp3 => "audio/mpeg",
            MediaType::Aac => "audio/aac",
            MediaType::Mp4 => "video/mp4",
            MediaType::Matroska => "video/webm",
        }
    }
}

/// The supported formats, for error messages.
pub const SUPPORTED: &str = "WAV, FLAC, Ogg (Vorbis/Opus), MP3, AAC, MP4/M4A/MOV, WebM/MKV";

/// The media type `head` (the file's first bytes) starts like, if supported.
pub fn sniff(head: &[u8]) -> Option<MediaType> {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    if at(0, b"RIFF") && at(8, b"WAVE") {
        Some(MediaType::Wav)
    } else if at(0, b"fLaC") {
        Some(MediaType::Flac)
    } else if at(0, b"OggS") {
        Some(MediaType::Ogg)
    } else if at(0, b"ID3") {
        Some(MediaType::Mp3)
    } else if at(4, b"ftyp") {
        Some(MediaType::Mp4)
    } else if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        Some(MediaType::Matroska)
    } else if head.len() >= 4 && head[0] == 0xFF && head[1] & 0xF6 == 0xF0 {
        // ADTS: 12-bit sync, layer bits 00.
        Some(MediaType::Aac)
    } else if head.len() >= 4 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0 && mp3_header(head) {
        Some(MediaType::Mp3)
    } else {
        None
    }
}

/// An MPEG audio frame header with a valid layer, bitrate and sample rate.
fn mp3_header(head: &[u8]) -> bool {
    let layer = (head[1] >> 1) & 0b11;
    let version = (head[1] >> 3) & 0b11;
    let bitrate = head[2] >> 4;
    let rate = (head[2] >> 2) & 0b11;
    layer != 0 && version != 1 && bitrate != 0 && bitrate != 0xF && rate != 0b11
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_recognised_and_impostors_are_not() {
        assert_eq!(sniff(b"RIFF\x24\0\0\0WAVEfmt "), Some(MediaType::Wav));
        assert_eq!(sniff(b"fLaC\0\0\0\x22"), Some(MediaType::Flac));
        assert_eq!(sniff(b"ID3\x04\0\0\0\0\0\0"), Some(MediaType::Mp3));
        assert_eq!(sniff(&[0xFF, 0xFB, 0x90, 0x64]), Some(MediaType::Mp3));
        assert_eq!(sniff(&[0xFF, 0xF1, 0x50, 0x80]), Some(MediaType::Aac));
        assert_eq!(sniff(b"\0\0\0\x20ftypM4A "), Some(MediaType::Mp4));
        assert_eq!(sniff(&[0x1A, 0x45, 0xDF, 0xA3, 0x9F]), Some(MediaType::Matroska));
        assert_eq!(sniff(b"MZ\x90\0\x03\0\0\0"), None, "a Windows executable");
        assert_eq!(sniff(b"<!doctype html>"), None);
        assert_eq!(sniff(b"%PDF-1.7"), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(&[0xFF, 0xFF, 0xFF, 0xFF]), None, "not a valid frame header");
    }
}
