//! The Whisper models a worker holds: the configured one, loaded at start, and any other
//! directory a job asks for (reprocessing with a bigger model), loaded on first use and
//! kept for the next jobs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::stages::transcribe::{ModelOptions, TranscribeError, WhisperModel};

/// Loaded models by directory.
pub struct Models {
    default: Arc<WhisperModel>,
    options: ModelOptions,
    others: Mutex<HashMap<PathBuf, Arc<WhisperModel>>>,
}

impl Models {
    /// Starts with `default`, loaded with `options`; other directories load the same way.
    pub fn new(default: WhisperModel, options: ModelOptions) -> Self {
        Models { default: Arc::new(default), options, others: Mutex::new(HashMap::new()) }
    }

    /// The configured model.
    pub fn default_model(&self) -> Arc<WhisperModel> {
        Arc::clone(&self.default)
    }

    /// The model in `dir` (the configured one when it is that directory), loading it on
    /// this blocking thread the first time.
    pub fn get(&self, dir: &Path) -> Result<Arc<WhisperModel>, TranscribeError> {
        if dir == self.options.model_dir {
            return Ok(self.default_model());
        }
        if let Some(model) = self.others.lock().ok().and_then(|m| m.get(dir).cloned()) {
            return Ok(model);
        }
        let model = Arc::new(WhisperModel::load(&ModelOptions {
            model_dir: dir.to_path_buf(),
            ..self.options.clone()
        })?);
        if let Ok(mut others) = self.others.lock() {
            others.insert(dir.to_path_buf(), Arc::clone(&model));
        }
        Ok(model)
    }
}
