//! The pipeline stages, one module each, each a plain function (or pull-object) from typed
//! input to typed output. None of them touches storage, the queue or the database: the
//! daemon and the command line fetch inputs, call a stage and store what it returns.

pub mod decode;
pub mod diarize;
pub mod notify;
pub mod render;
pub mod resample;
pub mod summarize;
pub mod transcribe;
