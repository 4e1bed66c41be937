//! `minutes process`'s artifact store: one folder per recording under the output folder
//! (`.minutes/{stem}-{key}/`, the key made from the recording's path, size and time of last
//! change), each artifact a file in it, so a run that was stopped resumes where it left
//! off. A stage's artifacts are kept only while what made them is unchanged (recorded in
//! `inputs.json`): another model or language transcribes again, another title or
//! summarizer summarizes again, another paper size renders again.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use minutes_shared::failure::FailureCode;
use minutes_shared::stage::Stage;
use serde::{Deserialize, Serialize};

use super::{Artifacts, LocalRecording, PipelineError};

/// What each stage's output depends on, as any text that changes when it does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageInputs {
    /// Model, language, decoding and recognition settings.
    pub transcribe: String,
    /// Title, date and summarizer.
    pub summarize: String,
    /// Paper size.
    pub render: String,
}

/// What `inputs.json` records: the inputs of the artifacts in the folder, and the version
/// of the results they make (one more each time the inputs changed).
#[derive(Debug, Serialize, Deserialize)]
struct Recorded {
    version: i32,
    inputs: StageInputs,
}

/// A folder that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FolderError {
    path: PathBuf,
    #[source]
    source: io::Error,
}

impl FolderError {
    /// `source` met at `path`.
    pub fn new(path: &Path, source: io::Error) -> Self {
        Self { path: path.to_path_buf(), source }
    }
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> FolderError + '_ {
    move |source| FolderError::new(path, source)
}

/// The artifacts of one recording in a local folder.
#[derive(Debug)]
pub struct FolderArtifacts {
    dir: PathBuf,
    key: String,
    version: i32,
    recording: PathBuf,
}

const INPUTS: &str = "inputs.json";

impl FolderArtifacts {
    /// The folder of `recording` under `root`, created when missing, with the artifacts
    /// that `inputs` no longer match removed (all of them with `fresh`).
    pub fn open(
        root: &Path,
        recording: &Path,
        inputs: &StageInputs,
        fresh: bool,
    ) -> Result<Self, FolderError> {
        let metadata = std::fs::metadata(recording).map_err(at(recording))?;
        let key = key_of(recording, Some(&metadata));
        let stem = recording.file_stem().map(|s| s.to_string_lossy().into_owned());
        let dir = root.join(".minutes").join(format!("{}-{key}", stem.unwrap_or_default()));
        std::fs::create_dir_all(&dir).map_err(at(&dir))?;
        let earlier = std::fs::read(dir.join(INPUTS))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Recorded>(&bytes).ok());
        let stale_from = match &earlier {
            Some(_) if fresh => Some(Stage::Decode),
            Some(earlier) if earlier.inputs.transcribe != inputs.transcribe => Some(Stage::Decode),
            Some(earlier) if earlier.inputs.summarize != inputs.summarize => Some(Stage::Summarize),
            Some(earlier) if earlier.inputs.render != inputs.render => Some(Stage::Render),
            Some(_) => None,
            None => Some(Stage::Decode),
        };
        if let Some(stage) = stale_from {
            for name in stage.artifacts_from() {
                let path = dir.join(name);
                match std::fs::remove_file(&path) {
                    Err(error) if error.kind() != io::ErrorKind::NotFound => {
                        return Err(at(&path)(error))
                    }
                    _ => {}
                }
            }
        }
        let version = match (&earlier, stale_from) {
            (Some(earlier), Some(_)) => earlier.version.saturating_add(1),
            (Some(earlier), None) => earlier.version,
            (None, _) => 1,
        };
        let recorded = Recorded { version, inputs: inputs.clone() };
        let json = serde_json::to_vec_pretty(&recorded).map_err(|e| at(&dir)(e.into()))?;
        let path = dir.join(INPUTS);
        write_atomically(&path, &json).map_err(at(&path))?;
        Ok(Self { dir, key, version, recording: recording.to_path_buf() })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A stable name for this recording (for the email's Message-ID).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The version of the results this folder holds: 1, and one more each time the
    /// inputs changed (for the email's Message-ID).
    pub fn version(&self) -> i32 {
        self.version
    }

    /// Where artifact `name` is kept.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Artifacts for FolderArtifacts {
    async fn recording(&self) -> Result<LocalRecording, PipelineError> {
        if !self.recording.is_file() {
            return Err(PipelineError::permanent(FailureCode::UploadMissing, "no such file"));
        }
        Ok(LocalRecording::original(&self.recording))
    }

    async fn load(&self, name: &str) -> Result<Option<Bytes>, PipelineError> {
        match std::fs::read(self.path(name)) {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(PipelineError::transient(at(&self.path(name))(error))),
        }
    }

    async fn store(&self, name: &str, bytes: Bytes) -> Result<(), PipelineError> {
        let path = self.path(name);
        write_atomically(&path, &bytes).map_err(|error| PipelineError::transient(at(&path)(error)))
    }

    async fn media(&self, _duration: f64, _language: Option<&str>) -> Result<(), PipelineError> {
        Ok(())
    }
}

/// A stable name for `recording`: from its absolute path, size and time of last change (or
/// the path alone when it cannot be read).
pub fn recording_key(recording: &Path) -> String {
    key_of(recording, std::fs::metadata(recording).ok().as_ref())
}

fn key_of(recording: &Path, metadata: Option<&std::fs::Metadata>) -> String {
    let absolute = std::path::absolute(recording).unwrap_or_else(|_| recording.to_path_buf());
    let changed = metadata
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let size = metadata.map_or(0, |m| m.len());
    format!("{:016x}", fnv1a(format!("{}|{size}|{changed}", absolute.display()).as_bytes()))
}

/// Writes beside the target and renames, so a reader never sees half a file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = path.with_file_name(format!(".{file_name}.partial"));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

/// FNV-1a, 64 bits: a stable fingerprint (the same file gives the same folder).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(transcribe: &str, summarize: &str) -> StageInputs {
        StageInputs {
            transcribe: transcribe.into(),
            summarize: summarize.into(),
            render: "a4".into(),
        }
    }

    #[tokio::test]
    async fn changed_inputs_drop_what_they_made_and_keep_the_rest() {
        let root = std::env::temp_dir().join(format!("minutes-folder-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&root).expect("root");
        let recording = root.join("call.wav");
        std::fs::write(&recording, b"RIFF").expect("recording");
        let first =
            FolderArtifacts::open(&root, &recording, &inputs("tiny", "A"), false).expect("open");
        for name in ["transcript.json", "minutes.json", "minutes.pdf"] {
            first.store(name, Bytes::from_static(b"x")).await.expect("store");
        }
        let same =
            FolderArtifacts::open(&root, &recording, &inputs("tiny", "A"), false).expect("open");
        assert_eq!(same.dir(), first.dir());
        assert_eq!((first.version(), same.version()), (1, 1));
        assert!(same.load("minutes.pdf").await.expect("load").is_some());
        let retitled =
            FolderArtifacts::open(&root, &recording, &inputs("tiny", "B"), false).expect("open");
        assert!(retitled.load("transcript.json").await.expect("load").is_some());
        assert!(retitled.load("minutes.json").await.expect("load").is_none());
        assert!(retitled.load("minutes.pdf").await.expect("load").is_none());
        assert_eq!(retitled.version(), 2, "new minutes are a new version");
        let fresh =
            FolderArtifacts::open(&root, &recording, &inputs("tiny", "B"), true).expect("open");
        assert!(fresh.load("transcript.json").await.expect("load").is_none());
        std::fs::remove_dir_all(&root).expect("clean up");
    }
}
