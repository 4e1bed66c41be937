//! Opus packets to `f32` samples with libopus (symphonia demuxes Opus but cannot decode it).
//!
//! Ogg and Matroska both carry the `OpusHead` identification header as the track's extra
//! data; its channel count and pre-skip (encoder delay, in 48 kHz samples) are read here so
//! that the output starts where the recording starts.

use symphonia::core::codecs::CodecParameters;

use super::{mix_to_mono, DecodeError, PacketError};

/// libopus always decodes at 48 kHz here (it resamples internally for narrower bands).
pub(super) const OPUS_RATE: u32 = 48_000;
/// The longest Opus packet is 120 ms: 5760 samples per channel at 48 kHz.
const MAX_PACKET_FRAMES: usize = 5760;

pub(super) struct OpusPacketDecoder {
    decoder: opus::Decoder,
    channels: usize,
    pre_skip_remaining: usize,
    interleaved: Vec<f32>,
}

impl OpusPacketDecoder {
    pub(super) fn new(params: &CodecParameters) -> Result<Self, DecodeError> {
        let head = params.extra_data.as_deref().and_then(parse_opus_head);
        let channels =
            head.map(|h| h.channels).or_else(|| params.channels.map(|c| c.count())).unwrap_or(1);
        let pre_skip = head.map(|h| h.pre_skip).unwrap_or(params.delay.unwrap_or(0) as usize);
        let layout = match channels {
            1 => opus::Channels::Mono,
            2 => opus::Channels::Stereo,
            n => {
                return Err(DecodeError::UnsupportedCodec(format!(
                    "opus with {n} channels (multistream)"
                )))
            }
        };
        let decoder = opus::Decoder::new(OPUS_RATE, layout)
            .map_err(|e| DecodeError::Corrupt(format!("libopus refused the stream: {e}")))?;
        Ok(Self {
            decoder,
            channels,
            pre_skip_remaining: pre_skip,
            interleaved: vec![0.0; MAX_PACKET_FRAMES * channels],
        })
    }

    pub(super) fn channels(&self) -> usize {
        self.channels
    }

    pub(super) fn decode(&mut self, packet: &[u8], mono: &mut Vec<f32>) -> Result<(), PacketError> {
        let frames = self
            .decoder
            .decode_float(packet, &mut self.interleaved, false)
            .map_err(|e| PacketError::Corrupt(format!("opus: {e}")))?;
        let samples = &self.interleaved[..frames * self.channels];
        mix_to_mono(samples, self.channels, mono);
        let skip = self.pre_skip_remaining.min(mono.len());
        if skip > 0 {
            mono.drain(..skip);
            self.pre_skip_remaining -= skip;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct OpusHead {
    channels: usize,
    pre_skip: usize,
}

/// Parses RFC 7845's identification header: "OpusHead", version, channels, pre-skip.
fn parse_opus_head(bytes: &[u8]) -> Option<OpusHead> {
    if bytes.len() < 19 || &bytes[..8] != b"OpusHead" {
        return None;
    }
    let channels = usize::from(bytes[9]);
    let pre_skip = usize::from(u16::from_le_bytes([bytes[10], bytes[11]]));
    (channels > 0).then_some(OpusHead { channels, pre_skip })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_channels_and_pre_skip_from_opus_head() {
        let mut head = b"OpusHead".to_vec();
        head.extend_from_slice(&[1, 2, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, 0]);
        assert_eq!(parse_opus_head(&head), Some(OpusHead { channels: 2, pre_skip: 312 }));
        assert_eq!(parse_opus_head(b"OpusTags"), None);
    }
}
