//! Where the models and runtimes live, which model a `--model` value names, and the
//! installer behind `minutes models`.
//!
//! Everything is installed below one data folder (`MINUTES_DATA_DIR`, by default
//! `$XDG_DATA_HOME/minutes` or `~/.local/share/minutes`), never relative to the current
//! folder: `models/whisper-NAME/`, `models/silero-vad/`, `onnxruntime-VERSION/`. Wheels are
//! kept in the cache folder (`MINUTES_CACHE_DIR`, by default `~/.cache/minutes/wheels`).

pub mod catalogue;
mod install;

use std::path::{Path, PathBuf};

pub use catalogue::{component, Component, Kind, COMPONENTS};
pub use install::{install, is_installed, InstallError, Installed};

/// The data and cache folders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locations {
    /// Where components are installed.
    pub data: PathBuf,
    /// Where downloaded wheels are kept.
    pub cache: PathBuf,
}

impl Locations {
    /// The folders given (the `--data-dir` and `--cache-dir` settings), else the XDG
    /// folders, else below `~`.
    pub fn new(data: Option<PathBuf>, cache: Option<PathBuf>) -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let home = || var("HOME").unwrap_or_else(|| PathBuf::from("/"));
        let data = data.unwrap_or_else(|| {
            var("XDG_DATA_HOME").unwrap_or_else(|| home().join(".local/share")).join("minutes")
        });
        let cache = cache.unwrap_or_else(|| {
            var("XDG_CACHE_HOME").unwrap_or_else(|| home().join(".cache")).join("minutes")
        });
        Self { data, cache }
    }

    /// As [`Self::new`] with `MINUTES_DATA_DIR` and `MINUTES_CACHE_DIR` (what the settings
    /// read; for code that has no settings, such as tests).
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        Self::new(var("MINUTES_DATA_DIR"), var("MINUTES_CACHE_DIR"))
    }

    /// The folder `component` is installed into.
    pub fn folder(&self, component: &Component) -> PathBuf {
        self.data.join(component.folder)
    }

    /// The default ONNX Runtime library.
    pub fn onnxruntime(&self) -> PathBuf {
        self.installed_file("onnxruntime")
    }

    /// The default Silero VAD model.
    pub fn silero_vad(&self) -> PathBuf {
        self.installed_file("silero-vad")
    }

    /// The default speaker-segmentation model.
    pub fn segmentation(&self) -> PathBuf {
        self.installed_file("pyannote-segmentation")
    }

    /// The default voice encoder.
    pub fn voice_encoder(&self) -> PathBuf {
        self.installed_file("resemblyzer")
    }

    fn installed_file(&self, name: &str) -> PathBuf {
        match component(name) {
            Some(component) => {
                let file = component.files.first().map_or("", |f| f.name);
                self.folder(component).join(file)
            }
            None => self.data.join(name),
        }
    }
}

/// Why a `--model` value names no usable model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A catalogue name that is not installed.
    #[error("the model {name} is not installed (looked in {}): run `minutes models install {name}`", dir.display())]
    NotInstalled {
        /// The name.
        name: String,
        /// Where it would be.
        dir: PathBuf,
    },
    /// A name the catalogue does not know, and not a folder either.
    #[error("no model called {0:?}: name one of {names} (see `minutes models list`) or give a model folder", names = whisper_names().join(", "))]
    Unknown(String),
    /// A catalogue model that cannot be used.
    #[error("the model {0} cannot be installed: {1}")]
    Unusable(String, &'static str),
}

/// The Whisper models of the catalogue, by name.
pub fn whisper_names() -> Vec<&'static str> {
    COMPONENTS.iter().filter(|c| c.kind == Kind::Whisper).map(|c| c.name).collect()
}

/// The folder `value` names: a catalogue name ("tiny.en", "base") is looked up in the data
/// folder; anything with a path separator, or an existing folder, is taken as it is.
pub fn resolve_model(value: &str, locations: &Locations) -> Result<PathBuf, ModelError> {
    let path = Path::new(value);
    if value.contains('/') || value.starts_with('.') || path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let component = component(value)
        .filter(|c| c.kind == Kind::Whisper)
        .ok_or_else(|| ModelError::Unknown(value.to_string()))?;
    if let Some(reason) = component.unusable {
        return Err(ModelError::Unusable(value.to_string(), reason));
    }
    let dir = locations.folder(component);
    if !dir.join("model.bin").is_file() {
        return Err(ModelError::NotInstalled { name: value.to_string(), dir });
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_in_the_data_folder_and_paths_stay_paths() {
        let locations =
            Locations { data: PathBuf::from("/nonexistent/data"), cache: PathBuf::from("/c") };
        assert!(matches!(
            resolve_model("base", &locations),
            Err(ModelError::NotInstalled { dir, .. }) if dir == Path::new("/nonexistent/data/models/whisper-base")
        ));
        assert_eq!(
            resolve_model("/models/my-whisper", &locations).ok(),
            Some(PathBuf::from("/models/my-whisper"))
        );
        assert!(matches!(resolve_model("large-v9", &locations), Err(ModelError::Unknown(_))));
        assert!(matches!(resolve_model("small", &locations), Err(ModelError::Unusable(..))));
        assert!(matches!(resolve_model("silero-vad", &locations), Err(ModelError::Unknown(_))));
    }
}
