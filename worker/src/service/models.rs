//! The Whisper models a worker holds: the configured one, loaded at start, and the others
//! the operator offers (`MINUTES_MODELS`), loaded on a job's first use and kept.
//!
//! A job names a model only by a name on that list; anything else is refused here as well
//! as at the API, without touching the file system. So a job's text never becomes a path,
//! and the models held in memory are bounded by the list.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use minutes_shared::models::ModelList;

use crate::models::{resolve_model, Locations, ModelError};
use crate::stages::transcribe::{ModelOptions, TranscribeError, WhisperModel};

/// Why a job's model cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelRefused {
    /// The name is not on the operator's list.
    #[error("the model {0:?} is not offered here (offered: {1})")]
    NotOffered(String, String),
    /// The offered model is not installed.
    #[error(transparent)]
    Missing(#[from] ModelError),
    /// Its folder does not hold a usable model.
    #[error(transparent)]
    Load(#[from] TranscribeError),
}

/// Loaded models by name.
pub struct Models {
    default: Arc<WhisperModel>,
    options: ModelOptions,
    offered: ModelList,
    locations: Locations,
    loaded: Mutex<HashMap<String, Arc<WhisperModel>>>,
}

impl Models {
    /// Starts with `default`, loaded with `options`; the offered models load the same way.
    pub fn new(
        default: WhisperModel,
        options: ModelOptions,
        offered: ModelList,
        locations: Locations,
    ) -> Self {
        Models {
            default: Arc::new(default),
            options,
            offered,
            locations,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// The configured model.
    pub fn default_model(&self) -> Arc<WhisperModel> {
        Arc::clone(&self.default)
    }

    /// The offered model `name`, loading it on this blocking thread the first time.
    pub fn get(&self, name: &str) -> Result<Arc<WhisperModel>, ModelRefused> {
        let offered = self
            .offered
            .get(name)
            .ok_or_else(|| ModelRefused::NotOffered(name.into(), self.offered.names()))?;
        if let Some(model) = self.loaded.lock().ok().and_then(|m| m.get(name).cloned()) {
            return Ok(model);
        }
        let dir: PathBuf = match &offered.dir {
            Some(dir) => dir.clone(),
            None => resolve_model(&offered.name, &self.locations)?,
        };
        if dir == self.options.model_dir {
            return Ok(self.default_model());
        }
        let model =
            Arc::new(WhisperModel::load(&ModelOptions { model_dir: dir, ..self.options.clone() })?);
        if let Ok(mut loaded) = self.loaded.lock() {
            loaded.insert(name.to_string(), Arc::clone(&model));
        }
        Ok(model)
    }
}
