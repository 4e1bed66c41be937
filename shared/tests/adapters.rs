//! Integration tests of the `shared` crate's adapters against real services: Postgres for
//! the job repository and accounts, a local folder and an S3-compatible server process (`s3s-fs`,
//! started by the README's test command) for the object store.

// In a test, a failed expectation is the test failing: say what was expected and stop.
#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "adapters/accounts.rs"]
mod accounts;
#[path = "adapters/jobs.rs"]
mod jobs;
#[path = "adapters/storage.rs"]
mod storage;
#[path = "adapters/versions.rs"]
mod versions;
