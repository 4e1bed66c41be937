//! One TLS crypto provider for every process: ring. reqwest (the S3 client, the LLM client,
//! the command line's API client, the model installer), lettre and sqlx all use rustls,
//! built without a bundled provider so that aws-lc (a second C build) is never compiled.

/// Makes ring the process's provider; later calls find it installed, which is fine.
pub fn use_ring() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
