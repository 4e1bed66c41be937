//! The pipe between the decoder process and its supervisor: length-prefixed frames.
//!
//! Each frame is a tag byte, a little-endian `u32` payload length and the payload. Samples
//! travel as raw little-endian `f32` (JSON would triple the bytes of an hour of audio);
//! the outcome, sent once at the end, is a typed value in JSON.

use std::io::{self, Read, Write};

use minutes_shared::failure::FailureReason;
use serde::{Deserialize, Serialize};

use crate::stages::decode::SourceInfo;

/// The largest payload a frame may carry; anything bigger is a broken stream.
pub const MAX_FRAME: usize = 4 << 20;

const TAG_SAMPLES: u8 = b'A';
const TAG_PROGRESS: u8 = b'P';
const TAG_OUTCOME: u8 = b'O';

/// How decoding ended, as the decoder process saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// Every sample was sent; this is the source track.
    Decoded(SourceInfo),
    /// The input cannot be decoded, for this reason.
    Rejected(FailureReason),
    /// The input file could not be read (a local fault, worth trying again).
    Unreadable(String),
}

/// One message from the decoder process.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// 16 kHz mono samples, in order.
    Samples(Vec<f32>),
    /// The fraction of the file decoded so far.
    Progress(f64),
    /// The end.
    Outcome(Outcome),
}

/// Writes one frame.
pub fn write_frame(out: &mut impl Write, frame: &Frame) -> io::Result<()> {
    let (tag, payload) = match frame {
        Frame::Samples(samples) => {
            (TAG_SAMPLES, samples.iter().flat_map(|s| s.to_le_bytes()).collect::<Vec<u8>>())
        }
        Frame::Progress(fraction) => (TAG_PROGRESS, fraction.to_le_bytes().to_vec()),
        Frame::Outcome(outcome) => (TAG_OUTCOME, serde_json::to_vec(outcome)?),
    };
    let length = u32::try_from(payload.len())
        .ok()
        .filter(|&length| length as usize <= MAX_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    out.write_all(&[tag])?;
    out.write_all(&length.to_le_bytes())?;
    out.write_all(&payload)
}

/// Reads one frame; `Ok(None)` at a clean end of the stream (between frames).
pub fn read_frame(input: &mut impl Read) -> io::Result<Option<Frame>> {
    let mut tag = [0u8; 1];
    if input.read(&mut tag)? == 0 {
        return Ok(None);
    }
    let mut length = [0u8; 4];
    input.read_exact(&mut length)?;
    let length = u32::from_le_bytes(length) as usize;
    if length > MAX_FRAME {
        return Err(invalid(format!("a frame of {length} bytes is over the limit")));
    }
    let mut payload = vec![0u8; length];
    input.read_exact(&mut payload)?;
    let frame = match tag[0] {
        TAG_SAMPLES if length.is_multiple_of(4) => Frame::Samples(
            payload.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        ),
        TAG_PROGRESS if length == 8 => {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&payload);
            Frame::Progress(f64::from_le_bytes(bytes))
        }
        TAG_OUTCOME => Frame::Outcome(serde_json::from_slice(&payload).map_err(io::Error::from)?),
        other => return Err(invalid(format!("unknown frame tag {other} of {length} bytes"))),
    };
    Ok(Some(frame))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use minutes_shared::failure::FailureCode;

    #[test]
    fn frames_read_back_as_written() {
        let frames = vec![
            Frame::Samples(vec![0.5, -1.0, 0.25]),
            Frame::Progress(0.75),
            Frame::Outcome(Outcome::Rejected(FailureReason::new(FailureCode::Corrupt, "bad"))),
        ];
        let mut bytes = Vec::new();
        for frame in &frames {
            write_frame(&mut bytes, frame).unwrap();
        }
        let mut reader = bytes.as_slice();
        let mut read = Vec::new();
        while let Some(frame) = read_frame(&mut reader).unwrap() {
            read.push(frame);
        }
        assert_eq!(read, frames);
    }

    #[test]
    fn a_stream_cut_inside_a_frame_is_an_error_not_an_end() {
        let mut bytes = Vec::new();
        write_frame(&mut bytes, &Frame::Samples(vec![1.0; 8])).unwrap();
        bytes.truncate(bytes.len() - 3);
        assert!(read_frame(&mut bytes.as_slice()).is_err());
    }

    #[test]
    fn an_oversized_length_is_refused_before_allocating() {
        let mut bytes = vec![TAG_SAMPLES];
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(read_frame(&mut bytes.as_slice()).is_err());
    }
}
