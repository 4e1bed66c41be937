//! Which local speakers are the same person: agglomerative clustering of their voice
//! embeddings (centroid linkage, cosine distance), stopped at a distance threshold; then,
//! as pyannote does with its minimum cluster size, clusters holding too little of the
//! speech join the nearest large one, so that a cough or a noisy stretch does not become a
//! participant. A count of speakers given by the user (or a minimum and maximum) chooses
//! how many large clusters are kept.

use super::encoder::{normalise, EMBEDDING};

/// How many speakers to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeakerCount {
    /// At least this many (when the speech allows).
    pub min: usize,
    /// At most this many.
    pub max: usize,
}

impl SpeakerCount {
    /// Found from the recording, up to `max`.
    pub const AUTO: Self = Self { min: 1, max: 20 };

    /// Exactly `n`.
    pub fn exactly(n: usize) -> Self {
        Self { min: n, max: n }
    }
}

/// The clustering's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClusterOptions {
    /// Cosine distance between centroids over which two clusters stay apart.
    pub threshold: f32,
    /// Share of the embedded speech under which a cluster is not a speaker of its own.
    pub min_share: f32,
    /// How many speakers.
    pub count: SpeakerCount,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self { threshold: 0.1, min_share: 0.05, count: SpeakerCount::AUTO }
    }
}

/// An embedding and the seconds of speech it was made from.
#[derive(Debug, Clone)]
pub struct Voice {
    /// Unit-length embedding.
    pub embedding: [f32; EMBEDDING],
    /// Seconds of speech behind it.
    pub seconds: f32,
}

fn cosine_distance(a: &[f32; EMBEDDING], b: &[f32; EMBEDDING]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    1.0 - dot
}

struct Cluster {
    sum: [f32; EMBEDDING],
    centroid: [f32; EMBEDDING],
    members: Vec<usize>,
    seconds: f32,
}

impl Cluster {
    fn refresh(&mut self) {
        self.centroid = self.sum;
        normalise(&mut self.centroid);
    }
}

/// Agglomerative clustering of `voices` while the nearest clusters are within `threshold`
/// and more than `floor` clusters are left.
fn agglomerate(voices: &[Voice], threshold: f32, floor: usize) -> Vec<Cluster> {
    let mut clusters: Vec<Cluster> = voices
        .iter()
        .enumerate()
        .map(|(index, voice)| Cluster {
            sum: voice.embedding,
            centroid: voice.embedding,
            members: vec![index],
            seconds: voice.seconds,
        })
        .collect();
    // Each cluster's nearest other cluster and its distance, kept up to date so that a
    // merge costs one pass over the clusters, not a pass over all pairs.
    let nearest_of = |clusters: &[Cluster], i: usize| -> (usize, f32) {
        let mut best = (usize::MAX, f32::INFINITY);
        for (j, other) in clusters.iter().enumerate() {
            if j != i {
                let d = cosine_distance(&clusters[i].centroid, &other.centroid);
                if d < best.1 {
                    best = (j, d);
                }
            }
        }
        best
    };
    let mut nearest: Vec<(usize, f32)> =
        (0..clusters.len()).map(|i| nearest_of(&clusters, i)).collect();
    while clusters.len() > floor.max(1) {
        let Some((i, &(j, distance))) =
            nearest.iter().enumerate().min_by(|a, b| a.1 .1.total_cmp(&b.1 .1))
        else {
            break;
        };
        if distance > threshold || j == usize::MAX {
            break;
        }
        let (keep, gone) = (i.min(j), i.max(j));
        let removed = clusters.swap_remove(gone);
        nearest.swap_remove(gone);
        let moved = clusters.len();
        let target = &mut clusters[keep];
        for (s, v) in target.sum.iter_mut().zip(&removed.sum) {
            *s += v;
        }
        target.members.extend(removed.members);
        target.seconds += removed.seconds;
        target.refresh();
        for k in 0..clusters.len() {
            let (to, _) = nearest[k];
            // Indices moved by the swap_remove, and neighbours that merged, are stale.
            if k == keep || to == keep || to == gone || to == moved {
                nearest[k] = nearest_of(&clusters, k);
            } else {
                let d = cosine_distance(&clusters[k].centroid, &clusters[keep].centroid);
                if d < nearest[k].1 {
                    nearest[k] = (keep, d);
                }
            }
        }
    }
    clusters
}

/// The speaker of each voice, numbered from 0 by how much they speak (most first).
pub fn cluster(voices: &[Voice], options: &ClusterOptions) -> Vec<usize> {
    if voices.is_empty() {
        return Vec::new();
    }
    let total: f32 = voices.iter().map(|v| v.seconds).sum();
    let max = options.count.max.max(1);
    let min = options.count.min.clamp(1, max);
    // Merging stops at the minimum asked for: the greedy merges are the same, so this is
    // the cut of the full tree where `min` clusters are left.
    let mut clusters = agglomerate(voices, options.threshold, min);
    let large = |clusters: &[Cluster]| {
        clusters.iter().filter(|c| c.seconds >= options.min_share * total).count()
    };
    clusters.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    let keep = large(&clusters).clamp(min.min(clusters.len()), max).max(1);
    let (kept, rest) = clusters.split_at(keep.min(clusters.len()));
    let mut speaker = vec![0usize; voices.len()];
    for (index, cluster) in kept.iter().enumerate() {
        for &member in &cluster.members {
            speaker[member] = index;
        }
    }
    for cluster in rest {
        for &member in &cluster.members {
            let closest = kept
                .iter()
                .enumerate()
                .map(|(index, c)| (index, cosine_distance(&voices[member].embedding, &c.centroid)))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map_or(0, |(index, _)| index);
            speaker[member] = closest;
        }
    }
    speaker
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voice(direction: usize, wobble: f32, seconds: f32) -> Voice {
        let mut embedding = [0f32; EMBEDDING];
        embedding[direction] = 1.0;
        embedding[(direction + 1) % EMBEDDING] = wobble;
        normalise(&mut embedding);
        Voice { embedding, seconds }
    }

    #[test]
    fn two_distinct_voices_make_two_speakers_and_a_short_stray_joins_one() {
        let voices = vec![
            voice(0, 0.0, 5.0),
            voice(10, 0.0, 5.0),
            voice(0, 0.1, 5.0),
            voice(10, 0.1, 4.0),
            voice(50, 0.0, 0.2),
        ];
        let speakers = cluster(&voices, &ClusterOptions::default());
        assert_eq!(speakers[0], speakers[2]);
        assert_eq!(speakers[1], speakers[3]);
        assert_ne!(speakers[0], speakers[1]);
        assert!(speakers[4] <= 1, "the stray is not a third speaker: {speakers:?}");
        assert_eq!(speakers[0], 0, "the one who speaks most is the first");
    }

    #[test]
    fn a_given_count_is_kept() {
        let voices = vec![voice(0, 0.0, 5.0), voice(0, 0.05, 5.0), voice(0, 0.1, 5.0)];
        let auto = cluster(&voices, &ClusterOptions::default());
        assert!(auto.iter().all(|&s| s == 0), "one voice is one speaker: {auto:?}");
        let options = ClusterOptions { count: SpeakerCount::exactly(1), ..Default::default() };
        assert!(cluster(&voices, &options).iter().all(|&s| s == 0));
        let two = ClusterOptions { count: SpeakerCount::exactly(2), ..Default::default() };
        let split = cluster(&voices, &two);
        assert_eq!(split.iter().max(), Some(&1), "two asked, two given: {split:?}");
    }
}
