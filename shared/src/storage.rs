//! The object store: uploads and artifacts, in a local folder or any S3-compatible store,
//! chosen by one URL (`file:///dir` or `s3://bucket`).
//!
//! Keys are made here from job ids ([`upload_key`], [`artifact_key`]), never from what a
//! person typed, and are checked before use, so nothing is ever written outside the store's
//! root. Large uploads stream through [`Storage::start_upload`]: parts of 8 MiB, at most a
//! few in flight, so memory stays bounded whatever the file's size; an upload that is not
//! finished is aborted and leaves nothing behind.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use url::Url;
use uuid::Uuid;

/// Size of one part of a streamed upload (S3 wants at least 5 MiB but for the last).
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts uploading at once; with [`PART_SIZE`] this bounds an upload's memory to ~24 MiB.
const PARTS_IN_FLIGHT: usize = 2;

/// An object's bytes, streamed.
pub type ByteStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, StorageError>> + Send>>;

/// Where objects live.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StorageSettings {
    /// `file:///absolute/dir` or `s3://bucket`.
    pub url: String,
    /// S3 endpoint for stores other than AWS (MinIO, Garage, Ceph, s3s), e.g.
    /// `http://127.0.0.1:9000`.
    pub endpoint: Option<String>,
    /// S3 region (`us-east-1` when unset).
    pub region: Option<String>,
    /// S3 access key id.
    pub access_key_id: Option<String>,
    /// S3 secret access key.
    pub secret_access_key: Option<String>,
}

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The URL or credentials cannot be used.
    #[error("storage settings: {0}")]
    Settings(String),
    /// A key that could leave the store's root or is not one of ours.
    #[error("invalid object key {0:?}")]
    InvalidKey(String),
    /// No object at that key.
    #[error("no object at {0}")]
    NotFound(String),
    /// The store failed.
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// A local file next to the store (a download's target) could not be written.
    #[error("local file {0}")]
    Local(String),
}

/// The key of a job's upload.
pub fn upload_key(job: Uuid) -> String {
    format!("jobs/{job}/upload")
}

/// The key of an artifact (`transcript.json`, `minutes.pdf`, ...) stored by attempt
/// `attempt` while building version `version` of a job's results. Each attempt has keys of
/// its own, so a worker that lost its lease can never overwrite what another stored; the
/// job's rows say which key each version uses.
pub fn artifact_key(job: Uuid, version: i32, attempt: i32, name: &str) -> String {
    format!("jobs/{job}/v{version}/a{attempt}/{name}")
}

/// The prefix of everything stored while building version `version` of a job's results.
pub fn version_prefix(job: Uuid, version: i32) -> String {
    format!("jobs/{job}/v{version}/")
}

/// The prefix under which everything of a job is stored.
pub fn job_prefix(job: Uuid) -> String {
    format!("jobs/{job}/")
}

/// `key` as an object path, when it is a relative path of plain segments.
fn path(key: &str) -> Result<Path, StorageError> {
    let plain = !key.is_empty()
        && !key.starts_with('/')
        && key.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    if !plain {
        return Err(StorageError::InvalidKey(key.to_string()));
    }
    Path::parse(key).map_err(|_| StorageError::InvalidKey(key.to_string()))
}

/// A configured object store.
#[derive(Debug, Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
}

impl Storage {
    /// The store `settings.url` names; a local folder is created when missing.
    pub fn new(settings: &StorageSettings) -> Result<Self, StorageError> {
        let url = Url::parse(&settings.url).map_err(|e| {
            StorageError::Settings(format!(
                "{:?} is not a URL ({e}): use file:///dir or s3://bucket",
                settings.url
            ))
        })?;
        let store: Arc<dyn ObjectStore> = match url.scheme() {
            "file" => {
                let dir = url.to_file_path().map_err(|()| {
                    StorageError::Settings(format!("{:?} is not a local folder", settings.url))
                })?;
                std::fs::create_dir_all(&dir).map_err(|e| {
                    StorageError::Settings(format!(
                        "{}: cannot create the folder: {e}",
                        dir.display()
                    ))
                })?;
                Arc::new(LocalFileSystem::new_with_prefix(&dir)?.with_automatic_cleanup(true))
            }
            "s3" => {
                crate::tls::use_ring();
                let bucket = url.host_str().filter(|b| !b.is_empty()).ok_or_else(|| {
                    StorageError::Settings(format!("{:?} names no bucket", settings.url))
                })?;
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_region(settings.region.clone().unwrap_or_else(|| "us-east-1".into()));
                if let Some(endpoint) = &settings.endpoint {
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"))
                        .with_virtual_hosted_style_request(false);
                }
                if let (Some(id), Some(secret)) =
                    (&settings.access_key_id, &settings.secret_access_key)
                {
                    builder = builder.with_access_key_id(id).with_secret_access_key(secret);
                }
                Arc::new(builder.build()?)
            }
            other => {
                return Err(StorageError::Settings(format!(
                    "unknown storage scheme {other:?}: use file:///dir or s3://bucket"
                )))
            }
        };
        Ok(Storage { store })
    }

    /// Stores `bytes` at `key` in one request (artifacts; uploads use [`Self::start_upload`]).
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        self.store.put(&path(key)?, PutPayload::from_bytes(bytes)).await?;
        Ok(())
    }

    /// The object at `key`.
    pub async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        match self.store.get(&path(key)?).await {
            Ok(result) => Ok(result.bytes().await?),
            Err(object_store::Error::NotFound { .. }) => {
                Err(StorageError::NotFound(key.to_string()))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The object at `key` as a stream of chunks, with its size (downloads: memory stays
    /// at one chunk whatever the object's size).
    pub async fn get_stream(&self, key: &str) -> Result<(u64, ByteStream), StorageError> {
        match self.store.get(&path(key)?).await {
            Ok(result) => {
                let size = result.meta.size;
                Ok((size, Box::pin(result.into_stream().map_err(StorageError::from))))
            }
            Err(object_store::Error::NotFound { .. }) => {
                Err(StorageError::NotFound(key.to_string()))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Copies the object at `key` into the file `target` (created or truncated), chunk by
    /// chunk; returns the bytes written.
    pub async fn download_to(
        &self,
        key: &str,
        target: &std::path::Path,
    ) -> Result<u64, StorageError> {
        use std::io::Write as _;
        let (_, mut stream) = self.get_stream(key).await?;
        let io = |e: std::io::Error| StorageError::Local(format!("{}: {e}", target.display()));
        let mut file = std::io::BufWriter::new(std::fs::File::create(target).map_err(io)?);
        let mut written = 0;
        while let Some(chunk) = stream.try_next().await? {
            file.write_all(&chunk).map_err(io)?;
            written += chunk.len() as u64;
        }
        file.flush().map_err(io)?;
        Ok(written)
    }

    /// Whether an object is at `key`.
    pub async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        match self.store.head(&path(key)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// The size of the object at `key`.
    pub async fn size(&self, key: &str) -> Result<u64, StorageError> {
        match self.store.head(&path(key)?).await {
            Ok(meta) => Ok(meta.size),
            Err(object_store::Error::NotFound { .. }) => {
                Err(StorageError::NotFound(key.to_string()))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Deletes every object under `prefix` (which must end in `/`); returns how many.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<usize, StorageError> {
        let trimmed =
            prefix.strip_suffix('/').ok_or_else(|| StorageError::InvalidKey(prefix.into()))?;
        let base = path(trimmed)?;
        let keys: Vec<Path> =
            self.store.list(Some(&base)).map_ok(|meta| meta.location).try_collect().await?;
        for key in &keys {
            match self.store.delete(key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(keys.len())
    }

    /// The keys of every object under `prefix` (which must end in `/`).
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let trimmed =
            prefix.strip_suffix('/').ok_or_else(|| StorageError::InvalidKey(prefix.into()))?;
        let base = path(trimmed)?;
        Ok(self
            .store
            .list(Some(&base))
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await?)
    }

    /// Deletes the object at `key`; one already gone is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.store.delete(&path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Whether the store answers (for readiness checks).
    pub async fn check(&self) -> Result<(), StorageError> {
        self.store.list_with_delimiter(Some(&Path::from("jobs"))).await?;
        Ok(())
    }

    /// Starts a streamed upload to `key`.
    pub async fn start_upload(&self, key: &str) -> Result<Upload, StorageError> {
        let upload = self.store.put_multipart(&path(key)?).await?;
        Ok(Upload { writer: WriteMultipart::new_with_chunk_size(upload, PART_SIZE), written: 0 })
    }
}

/// An upload in progress. Call [`Upload::finish`] or [`Upload::abort`]; dropping it
/// without either leaves an incomplete multipart upload to the store's cleanup.
pub struct Upload {
    writer: WriteMultipart,
    written: u64,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload").field("written", &self.written).finish()
    }
}

impl Upload {
    /// Adds `chunk`, waiting while too many parts are in flight.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), StorageError> {
        self.writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
        self.writer.write(chunk);
        self.written += chunk.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Completes the object.
    pub async fn finish(self) -> Result<u64, StorageError> {
        self.writer.finish().await?;
        Ok(self.written)
    }

    /// Gives up: the parts uploaded so far are removed.
    pub async fn abort(self) -> Result<(), StorageError> {
        self.writer.abort().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_outside_the_root_or_with_odd_characters_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "jobs/../../x",
            "jobs//x",
            "jobs/a b",
            "jobs/\0",
            "jobs/%2e%2e",
        ] {
            assert!(matches!(path(bad), Err(StorageError::InvalidKey(_))), "{bad:?}");
        }
        let job = Uuid::nil();
        assert!(path(&upload_key(job)).is_ok());
        assert!(path(&artifact_key(job, 2, 7, "transcript.json")).is_ok());
    }

    #[test]
    fn urls_choose_the_store_and_bad_ones_say_why() {
        for bad in ["ftp://x", "nonsense", "s3://"] {
            let settings = StorageSettings { url: bad.into(), ..Default::default() };
            assert!(matches!(Storage::new(&settings), Err(StorageError::Settings(_))), "{bad}");
        }
    }
}
