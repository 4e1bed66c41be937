//! From chunks and clustered local speakers to the recording's turns: every frame of the
//! recording is seen by several chunks; each says how many people talk there and, through
//! the clustering, who. A frame goes to the speakers with the most support among the
//! chunks over it, as many as the chunks count on average (rounded), as pyannote's
//! reconstruction does.

use super::segmentation::{Chunk, FRAMES, FRAME_SPAN, FRAME_STEP, LOCAL};
use super::{Diarization, SAMPLE_RATE};

/// One speaker talking from `start` to `end` (seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Turn {
    /// Start in seconds.
    pub start: f64,
    /// End in seconds.
    pub end: f64,
    /// The speaker, from 0.
    pub speaker: usize,
}

/// The turns of `speakers` speakers; `speaker_of[chunk][local]` is the speaker of a chunk's
/// local speaker (none when it was not embedded: its frames count talkers, not who).
pub fn place(
    chunks: &[Chunk],
    speaker_of: &[[Option<usize>; LOCAL]],
    speakers: usize,
    samples: usize,
) -> Diarization {
    if speakers == 0 {
        return Diarization::default();
    }
    let frames = samples.div_ceil(FRAME_STEP) + FRAMES;
    let mut support = vec![0f32; frames * speakers];
    let mut seen = vec![0u16; frames];
    let mut talking = vec![0u16; frames];
    for (chunk, owners) in chunks.iter().zip(speaker_of) {
        let offset = (chunk.start as f64 / FRAME_STEP as f64).round() as usize;
        for (frame, who) in chunk.active.iter().enumerate() {
            let at = offset + frame;
            if at >= frames {
                break;
            }
            seen[at] = seen[at].saturating_add(1);
            talking[at] = talking[at].saturating_add(who.iter().filter(|&&on| on).count() as u16);
            // Two local speakers of one chunk clustered together count once.
            let mut counted = [false; 32];
            for (local, &on) in who.iter().enumerate() {
                if let (true, Some(speaker)) = (on, owners[local]) {
                    if speaker < counted.len() && !counted[speaker] {
                        counted[speaker] = true;
                        support[at * speakers + speaker] += 1.0;
                    }
                }
            }
        }
    }
    let last_frame = samples.div_ceil(FRAME_STEP).min(frames);
    let mut active = vec![false; frames * speakers];
    let mut order: Vec<usize> = (0..speakers).collect();
    for at in 0..last_frame {
        if seen[at] == 0 {
            continue;
        }
        let count = (f32::from(talking[at]) / f32::from(seen[at])).round() as usize;
        let row = &support[at * speakers..(at + 1) * speakers];
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        for &speaker in order.iter().take(count.min(speakers)) {
            if row[speaker] > 0.0 {
                active[at * speakers + speaker] = true;
            }
        }
    }
    let time = |frame: usize| {
        // A frame's centre, minus half a step: the frames tile the recording.
        ((frame * FRAME_STEP) as f64 + FRAME_SPAN as f64 / 2.0 - FRAME_STEP as f64 / 2.0)
            / f64::from(SAMPLE_RATE)
    };
    let duration = samples as f64 / f64::from(SAMPLE_RATE);
    let mut turns = Vec::new();
    for speaker in 0..speakers {
        let mut open: Option<usize> = None;
        for at in 0..=last_frame {
            let on = at < last_frame && active[at * speakers + speaker];
            match (on, open) {
                (true, None) => open = Some(at),
                (false, Some(from)) => {
                    turns.push(Turn {
                        start: time(from).min(duration),
                        end: time(at).min(duration),
                        speaker,
                    });
                    open = None;
                }
                _ => {}
            }
        }
    }
    renumber_by_talk_time(turns, speakers)
}

/// Numbers the speakers who talk from 0, the one with the most talk time first; speakers
/// left with no turn are dropped.
fn renumber_by_talk_time(mut turns: Vec<Turn>, speakers: usize) -> Diarization {
    let mut talk = vec![0f64; speakers];
    for turn in &turns {
        talk[turn.speaker] += turn.end - turn.start;
    }
    let mut order: Vec<usize> = (0..speakers).filter(|&s| talk[s] > 0.0).collect();
    order.sort_by(|&a, &b| talk[b].total_cmp(&talk[a]));
    let mut new_id = vec![usize::MAX; speakers];
    for (id, &speaker) in order.iter().enumerate() {
        new_id[speaker] = id;
    }
    turns.retain(|turn| new_id[turn.speaker] != usize::MAX);
    for turn in &mut turns {
        turn.speaker = new_id[turn.speaker];
    }
    turns.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.speaker.cmp(&b.speaker)));
    Diarization { turns, speakers: order.len() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_chunks_agreeing_make_one_turn_and_silence_makes_none() {
        let mut active = vec![[false; LOCAL]; FRAMES];
        for who in active.iter_mut().take(300).skip(100) {
            who[1] = true;
        }
        let chunk = Chunk { start: 0, active };
        let silent = Chunk { start: 0, active: vec![[false; LOCAL]; FRAMES] };
        let placed = place(&[chunk.clone(), chunk], &[[None, Some(0), None]; 2], 1, 160_000);
        assert_eq!(placed.speakers, 1);
        assert_eq!(placed.turns.len(), 1);
        let turn = placed.turns[0];
        assert!((turn.start - 1.71).abs() < 0.05 && (turn.end - 5.08).abs() < 0.05, "{turn:?}");
        let none = place(&[silent], &[[Some(0), None, None]], 1, 160_000);
        assert_eq!(none, Diarization::default());
    }
}
