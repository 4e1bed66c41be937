//! Decode stage: any supported recording to mono `f32` samples at the source rate.
//!
//! symphonia demuxes every container (WAV, FLAC, MP3, Ogg, WebM/Matroska, MP4/M4A/MOV)
//! and decodes every codec but Opus, which [`opus`](self::opus) hands to libopus. The
//! decoder is pulled chunk by chunk ([`AudioDecoder::next_chunk`]) so that a caller can
//! resample as it goes: nothing holds the whole file in a wider type than the output.
//!
//! Bad input never escapes as a panic: every call into symphonia runs under
//! [`crate::panic_guard::catch`], decoding stops after a budget of consecutive corrupt
//! packets, and the decoded length is checked against the maximum duration as it grows.
//! What this module cannot contain (a decoder that loops forever, or aborts on a huge
//! allocation) is contained one level up: the pipeline runs it in a child process with
//! memory and CPU limits and a watchdog ([`crate::decoder_process`]).

mod error;
mod opus;

use error::io_failure;
pub use error::DecodeError;

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{
    CodecType, Decoder, DecoderOptions, CODEC_TYPE_AAC, CODEC_TYPE_NULL, CODEC_TYPE_OPUS,
};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::panic_guard;

/// Lowest and highest sample rates accepted; outside this range a header is taken to be
/// corrupt rather than a real recording.
const MIN_SAMPLE_RATE: u32 = 1_000;
const MAX_SAMPLE_RATE: u32 = 384_000;
/// More channels than this is not a recording of a meeting but a corrupt header.
const MAX_CHANNELS: usize = 64;
/// AAC encoders prepend one frame of priming samples. MP4 records it in an edit list that
/// symphonia 0.5 does not apply, so it is dropped here (as ffmpeg does when no list says
/// otherwise); left in, it would shift every timestamp.
const AAC_PRIMING_SAMPLES: usize = 1024;
/// A file that ends before this fraction of its declared length is reported truncated.
const TRUNCATION_TOLERANCE: f64 = 0.98;

/// Limits applied while decoding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeOptions {
    /// Longest recording accepted; longer ones fail with [`DecodeError::TooLong`].
    pub max_duration: Duration,
    /// Corrupt packets in a row tolerated before giving up with [`DecodeError::Corrupt`].
    pub max_consecutive_errors: u32,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self { max_duration: Duration::from_secs(6 * 3600), max_consecutive_errors: 20 }
    }
}

/// What the decoder found out about the audio track before decoding it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SourceInfo {
    /// Short name of the codec, e.g. `"aac"` or `"opus"`.
    pub codec: String,
    /// Sample rate of the decoded samples.
    pub sample_rate: u32,
    /// Channels in the source (the output is always mono).
    pub channels: usize,
    /// Duration the header declares, when it declares one.
    pub declared_duration: Option<f64>,
}

/// Mono samples decoded from one packet.
#[derive(Debug, Clone, Copy)]
pub struct Chunk<'a> {
    /// The samples, mono.
    pub samples: &'a [f32],
    /// Their rate (fixed for a whole file).
    pub sample_rate: u32,
}

/// The codec-specific half of decoding: turns one packet into interleaved `f32` samples.
enum PacketDecoder {
    Symphonia {
        decoder: Box<dyn Decoder>,
        buffer: Option<SampleBuffer<f32>>,
        /// Leading samples still to drop (encoder priming the container did not trim).
        skip: usize,
    },
    Opus(opus::OpusPacketDecoder),
}

/// A pull decoder over one recording, yielding mono `f32` chunks at the source rate.
pub struct AudioDecoder {
    format: Box<dyn FormatReader>,
    track_id: u32,
    packets: PacketDecoder,
    info: SourceInfo,
    options: DecodeOptions,
    max_frames: u64,
    frames: u64,
    consecutive_errors: u32,
    mono: Vec<f32>,
    finished: bool,
}

impl AudioDecoder {
    /// Opens the file at `path`, using its extension as a hint for the container.
    pub fn open(path: &Path, options: DecodeOptions) -> Result<Self, DecodeError> {
        let file = File::open(path)?;
        // Only a regular file's length is known up front; a pipe is read until it ends.
        let metadata = file.metadata()?;
        if metadata.is_file() && metadata.len() == 0 {
            return Err(DecodeError::Empty);
        }
        let mut hint = Hint::new();
        if let Some(extension) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(extension);
        }
        let stream = MediaSourceStream::new(Box::new(file), MediaSourceStreamOptions::default());
        panic_guard::catch(|| Self::probe(stream, hint, options)).map_err(DecodeError::Internal)?
    }

    fn probe(
        stream: MediaSourceStream,
        hint: Hint,
        options: DecodeOptions,
    ) -> Result<Self, DecodeError> {
        let format_options = FormatOptions { enable_gapless: true, ..Default::default() };
        let probed = symphonia::default::get_probe()
            .format(&hint, stream, &format_options, &MetadataOptions::default())
            .map_err(|error| match error {
                SymphoniaError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    DecodeError::NotMedia
                }
                SymphoniaError::IoError(e) => io_failure(e),
                _ => DecodeError::NotMedia,
            })?;
        let format = probed.format;
        let audio_tracks = || format.tracks().iter().filter(|t| is_audio(&t.codec_params));
        let track = match audio_tracks().find(|t| t.codec_params.codec != CODEC_TYPE_NULL) {
            Some(track) => track,
            // An audio track whose codec the demuxer could not even name (AC-3 in Matroska).
            None if audio_tracks().next().is_some() => {
                return Err(DecodeError::UnsupportedCodec("unknown to this build".into()))
            }
            None => return Err(DecodeError::NoAudioTrack),
        };
        let params = track.codec_params.clone();
        let track_id = track.id;
        let codec = codec_name(params.codec);

        let packets = if params.codec == CODEC_TYPE_OPUS {
            PacketDecoder::Opus(opus::OpusPacketDecoder::new(&params)?)
        } else {
            let decoder = symphonia::default::get_codecs()
                .make(&params, &DecoderOptions::default())
                .map_err(|_| DecodeError::UnsupportedCodec(codec.clone()))?;
            let skip = if params.codec == CODEC_TYPE_AAC && params.delay.is_none() {
                AAC_PRIMING_SAMPLES
            } else {
                0
            };
            PacketDecoder::Symphonia { decoder, buffer: None, skip }
        };
        let sample_rate = match &packets {
            PacketDecoder::Opus(_) => opus::OPUS_RATE,
            PacketDecoder::Symphonia { .. } => params.sample_rate.unwrap_or(0),
        };
        // Some containers only state the rate in the first decoded packet; 0 means "later".
        if sample_rate != 0 && !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&sample_rate) {
            return Err(DecodeError::Corrupt(format!("impossible sample rate {sample_rate} Hz")));
        }
        let channels = match &packets {
            PacketDecoder::Opus(decoder) => decoder.channels(),
            PacketDecoder::Symphonia { .. } => params.channels.map(|c| c.count()).unwrap_or(0),
        };
        if channels > MAX_CHANNELS {
            return Err(DecodeError::Corrupt(format!("impossible channel count {channels}")));
        }
        let declared_duration = match (params.n_frames, sample_rate) {
            (Some(frames), rate) if rate > 0 && frames > 0 => Some(frames as f64 / rate as f64),
            _ => None,
        };
        let max_secs = options.max_duration.as_secs_f64();
        if declared_duration.is_some_and(|declared| declared > max_secs + 1.0) {
            return Err(DecodeError::TooLong { max: options.max_duration });
        }
        let info = SourceInfo { codec, sample_rate, channels, declared_duration };
        Ok(Self {
            format,
            track_id,
            packets,
            max_frames: max_frames(options.max_duration, sample_rate),
            info,
            options,
            frames: 0,
            consecutive_errors: 0,
            mono: Vec::new(),
            finished: false,
        })
    }

    /// What is known about the audio track.
    pub fn info(&self) -> &SourceInfo {
        &self.info
    }

    /// Seconds decoded so far.
    pub fn decoded_seconds(&self) -> f64 {
        self.frames as f64 / self.info.sample_rate.max(1) as f64
    }

    /// The fraction of the declared duration decoded so far, when a duration is declared.
    pub fn progress(&self) -> Option<f64> {
        self.info.declared_duration.map(|declared| (self.decoded_seconds() / declared).min(1.0))
    }

    /// The next chunk of mono samples, or `None` at the end of the audio. Chunks may be
    /// empty (a packet of silence padding). Errors end decoding for good.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk<'_>>, DecodeError> {
        if self.finished {
            return Ok(None);
        }
        let mut mono = std::mem::take(&mut self.mono);
        let outcome = panic_guard::catch(|| self.decode_next(&mut mono));
        self.mono = mono;
        match outcome {
            Ok(Ok(true)) => {
                Ok(Some(Chunk { samples: &self.mono, sample_rate: self.info.sample_rate }))
            }
            Ok(Ok(false)) => {
                self.finished = true;
                self.check_complete()?;
                Ok(None)
            }
            Ok(Err(error)) => {
                self.finished = true;
                Err(error)
            }
            Err(panic) => {
                self.finished = true;
                Err(DecodeError::Internal(panic))
            }
        }
    }

    /// Decodes packets until one yields samples (true) or the stream ends (false).
    fn decode_next(&mut self, mono: &mut Vec<f32>) -> Result<bool, DecodeError> {
        loop {
            let packet = match self.format.next_packet() {
                Ok(packet) => packet,
                Err(SymphoniaError::IoError(e))
                    if e.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    return Ok(false);
                }
                Err(SymphoniaError::ResetRequired) => return Ok(false),
                Err(SymphoniaError::IoError(e)) => return Err(io_failure(e)),
                Err(error) => {
                    self.note_error(&error.to_string())?;
                    continue;
                }
            };
            if packet.track_id() != self.track_id {
                continue;
            }
            let decoded = match &mut self.packets {
                PacketDecoder::Opus(decoder) => decoder.decode(packet.buf(), mono),
                PacketDecoder::Symphonia { decoder, buffer, skip } => {
                    decode_symphonia(decoder.as_mut(), buffer, &packet, mono, &mut self.info).map(
                        |()| {
                            let dropped = (*skip).min(mono.len());
                            mono.drain(..dropped);
                            *skip -= dropped;
                        },
                    )
                }
            };
            match decoded {
                Ok(()) => {
                    self.consecutive_errors = 0;
                    if self.max_frames == 0 {
                        self.max_frames =
                            max_frames(self.options.max_duration, self.info.sample_rate);
                    }
                    self.frames += mono.len() as u64;
                    if self.frames > self.max_frames {
                        return Err(DecodeError::TooLong { max: self.options.max_duration });
                    }
                    return Ok(true);
                }
                Err(PacketError::Fatal(error)) => return Err(error),
                Err(PacketError::Corrupt(message)) => self.note_error(&message)?,
            }
        }
    }

    fn note_error(&mut self, message: &str) -> Result<(), DecodeError> {
        self.consecutive_errors += 1;
        if self.consecutive_errors > self.options.max_consecutive_errors {
            return Err(DecodeError::Corrupt(format!(
                "{} packets in a row failed to decode (last: {message})",
                self.consecutive_errors
            )));
        }
        Ok(())
    }

    /// At the end of the stream: a file that stops well short of its declared length,
    /// or that yields nothing at all, is truncated.
    fn check_complete(&self) -> Result<(), DecodeError> {
        let decoded = self.decoded_seconds();
        match self.info.declared_duration {
            Some(declared) if decoded < declared * TRUNCATION_TOLERANCE => {
                Err(DecodeError::Truncated { decoded, declared })
            }
            None if self.frames == 0 && self.consecutive_errors > 0 => {
                Err(DecodeError::Corrupt("no packet could be decoded".into()))
            }
            _ => Ok(()),
        }
    }
}

/// Why one packet produced no samples.
enum PacketError {
    /// This packet is bad; the next one may be fine.
    Corrupt(String),
    /// Decoding cannot go on.
    Fatal(DecodeError),
}

fn decode_symphonia(
    decoder: &mut dyn Decoder,
    buffer: &mut Option<SampleBuffer<f32>>,
    packet: &symphonia::core::formats::Packet,
    mono: &mut Vec<f32>,
    info: &mut SourceInfo,
) -> Result<(), PacketError> {
    let decoded = match decoder.decode(packet) {
        Ok(decoded) => decoded,
        Err(SymphoniaError::DecodeError(message)) => {
            return Err(PacketError::Corrupt(message.into()))
        }
        Err(SymphoniaError::IoError(e)) => return Err(PacketError::Corrupt(e.to_string())),
        Err(SymphoniaError::Unsupported(what)) => {
            return Err(PacketError::Fatal(DecodeError::UnsupportedCodec(what.into())))
        }
        Err(error) => return Err(PacketError::Corrupt(error.to_string())),
    };
    let spec = *decoded.spec();
    let channels = spec.channels.count();
    if channels == 0 || channels > MAX_CHANNELS {
        return Err(PacketError::Fatal(DecodeError::Corrupt(format!(
            "impossible channel count {channels}"
        ))));
    }
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&spec.rate) {
        return Err(PacketError::Fatal(DecodeError::Corrupt(format!(
            "impossible sample rate {} Hz",
            spec.rate
        ))));
    }
    if info.sample_rate == 0 {
        info.sample_rate = spec.rate;
    } else if info.sample_rate != spec.rate {
        return Err(PacketError::Fatal(DecodeError::Corrupt(format!(
            "the sample rate changes mid-stream from {} to {} Hz",
            info.sample_rate, spec.rate
        ))));
    }
    info.channels = channels;
    let frames = decoded.frames();
    let needed = decoded.capacity() as u64;
    let buffer = match buffer {
        Some(existing) if existing.capacity() >= frames * channels => existing,
        _ => buffer.insert(SampleBuffer::new(needed, spec)),
    };
    buffer.copy_interleaved_ref(decoded);
    mix_to_mono(buffer.samples(), channels, mono);
    Ok(())
}

/// Averages interleaved channels into `mono`, replacing its contents.
pub(crate) fn mix_to_mono(interleaved: &[f32], channels: usize, mono: &mut Vec<f32>) {
    mono.clear();
    if channels <= 1 {
        mono.extend_from_slice(interleaved);
        return;
    }
    let scale = 1.0 / channels as f32;
    mono.extend(interleaved.chunks_exact(channels).map(|frame| frame.iter().sum::<f32>() * scale));
}

fn max_frames(max_duration: Duration, sample_rate: u32) -> u64 {
    (max_duration.as_secs_f64() * sample_rate as f64).ceil() as u64
}

fn is_audio(params: &symphonia::core::codecs::CodecParameters) -> bool {
    params.sample_rate.is_some() || params.channels.is_some() || params.codec == CODEC_TYPE_OPUS
}

fn codec_name(codec: CodecType) -> String {
    symphonia::default::get_codecs()
        .get_codec(codec)
        .map(|descriptor| descriptor.short_name.to_string())
        .unwrap_or_else(
            || {
                if codec == CODEC_TYPE_OPUS {
                    "opus".into()
                } else {
                    format!("{codec}")
                }
            },
        )
}

/// Decodes a whole file into mono samples at its own rate. Meant for short clips and
/// tests; the pipeline streams through [`AudioDecoder::next_chunk`] instead.
pub fn decode_file(
    path: &Path,
    options: DecodeOptions,
) -> Result<(SourceInfo, Vec<f32>), DecodeError> {
    let mut decoder = AudioDecoder::open(path, options)?;
    let mut samples = Vec::new();
    while let Some(chunk) = decoder.next_chunk()? {
        samples.extend_from_slice(chunk.samples);
    }
    Ok((decoder.info().clone(), samples))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixdown_averages_channels() {
        let mut mono = vec![9.0];
        mix_to_mono(&[1.0, 3.0, -1.0, 1.0], 2, &mut mono);
        assert_eq!(mono, vec![2.0, 0.0]);
    }
}
