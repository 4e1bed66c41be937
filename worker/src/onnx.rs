//! ONNX Runtime, loaded once per process from the shared library the set-up installed.
//!
//! Every ONNX model of the worker (speech detection, speaker segmentation) runs on one copy
//! of `libonnxruntime.so`, loaded at run time (`ort` with `load-dynamic`: nothing is linked
//! or downloaded at build time). The library comes from the PyPI `onnxruntime` wheel, which
//! `minutes models install` unpacks (see [`crate::models`]). A missing or unusable library
//! is a [`OnnxError`] that names the file and the command that installs it; it never panics.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;
use ort::session::Session;

/// The command that installs the library and the ONNX models, for error messages.
pub const INSTALL_HINT: &str = "run `minutes models install` (or scripts/demo) to install it";

/// Why ONNX Runtime or an ONNX model cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The library file is not there.
    #[error("ONNX Runtime is not installed at {}: {INSTALL_HINT}", path.display())]
    MissingLibrary {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The file is there but is not a usable ONNX Runtime library.
    #[error("{} is not a usable ONNX Runtime library ({reason}): {INSTALL_HINT}", path.display())]
    BadLibrary {
        /// The file.
        path: PathBuf,
        /// What the loader said.
        reason: String,
    },
    /// A model file is not there.
    #[error("the ONNX model {} is missing: {INSTALL_HINT}", path.display())]
    MissingModel {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The model could not be loaded or run.
    #[error("the ONNX model {}: {source}", path.display())]
    Model {
        /// The model file.
        path: PathBuf,
        /// What ONNX Runtime said.
        #[source]
        source: ort::Error,
    },
}

/// The process's ONNX Runtime environment and the library it was loaded from.
struct Loaded {
    library: PathBuf,
    environment: Environment,
}

/// Loaded at most once; a failed load may be retried (with another path).
static RUNTIME: OnceLock<Loaded> = OnceLock::new();
static LOADING: Mutex<()> = Mutex::new(());

/// The environment, loading `library` the first time. Later calls with another path get
/// the library already loaded (a process holds one copy), which is what the worker wants:
/// every model shares it.
fn environment(library: &Path) -> Result<&'static Environment, OnnxError> {
    if let Some(loaded) = RUNTIME.get() {
        return Ok(&loaded.environment);
    }
    let _guard = LOADING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(loaded) = RUNTIME.get() {
        return Ok(&loaded.environment);
    }
    if !library.is_file() {
        return Err(OnnxError::MissingLibrary { path: library.to_path_buf() });
    }
    let bad = |reason: String| OnnxError::BadLibrary { path: library.to_path_buf(), reason };
    // A truncated library would be mapped past its end by the loader, which kills the
    // process (SIGBUS): check that the file holds what its header says first.
    check_elf(library).map_err(bad)?;
    let builder = ort::init_from(library).map_err(|e| bad(e.to_string()))?;
    let environment = builder.with_name("minutes").build().map_err(|e| bad(e.to_string()))?;
    let loaded = RUNTIME.get_or_init(|| Loaded { library: library.to_path_buf(), environment });
    Ok(&loaded.environment)
}

/// Checks that `path` is a 64-bit little-endian ELF file whose loadable segments and
/// section table lie inside it.
fn check_elf(path: &Path) -> Result<(), String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let length = file.metadata().map_err(|e| e.to_string())?.len();
    let mut header = [0u8; 64];
    file.read_exact(&mut header).map_err(|_| "not a shared library (too short)".to_string())?;
    if &header[..4] != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Err("not a 64-bit ELF shared library".into());
    }
    let u16_at = |b: &[u8], at: usize| u64::from(u16::from_le_bytes([b[at], b[at + 1]]));
    let u64_at = |b: &[u8], at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(bytes)
    };
    let truncated = || format!("the file is truncated ({length} bytes)");
    let (sections_at, section_size, sections) =
        (u64_at(&header, 0x28), u16_at(&header, 0x3a), u16_at(&header, 0x3c));
    if sections_at.saturating_add(section_size.saturating_mul(sections)) > length {
        return Err(truncated());
    }
    let (programs_at, program_size, programs) =
        (u64_at(&header, 0x20), u16_at(&header, 0x36), u16_at(&header, 0x38));
    if program_size < 56 || programs_at.saturating_add(program_size * programs) > length {
        return Err(truncated());
    }
    let mut table = vec![0u8; (program_size * programs) as usize];
    file.seek(SeekFrom::Start(programs_at)).map_err(|e| e.to_string())?;
    file.read_exact(&mut table).map_err(|_| truncated())?;
    for entry in table.chunks(program_size as usize) {
        let loadable = u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]) == 1;
        if loadable && u64_at(entry, 0x08).saturating_add(u64_at(entry, 0x20)) > length {
            return Err(truncated());
        }
    }
    Ok(())
}

/// The library the process loaded, once one was.
pub fn loaded_library() -> Option<&'static Path> {
    RUNTIME.get().map(|loaded| loaded.library.as_path())
}

/// Checks that `library` loads (the start-up check of both binaries' recognition settings).
pub fn check_library(library: &Path) -> Result<(), OnnxError> {
    environment(library).map(|_| ())
}

/// A session on `model` with one intra-op thread (the callers run their own threads).
pub fn session(library: &Path, model: &Path) -> Result<Session, OnnxError> {
    session_with_threads(library, model, 1)
}

/// A session on `model` whose operators use `threads` threads.
pub fn session_with_threads(
    library: &Path,
    model: &Path,
    threads: usize,
) -> Result<Session, OnnxError> {
    let environment = environment(library)?;
    if !model.is_file() {
        return Err(OnnxError::MissingModel { path: model.to_path_buf() });
    }
    let failed = |source: ort::Error| OnnxError::Model { path: model.to_path_buf(), source };
    let mut builder = Session::builder(environment)
        .map_err(failed)?
        .with_intra_threads(threads.max(1))
        .map_err(|e| failed(e.into()))?
        .with_inter_threads(1)
        .map_err(|e| failed(e.into()))?;
    builder.commit_from_file(model).map_err(failed)
}
