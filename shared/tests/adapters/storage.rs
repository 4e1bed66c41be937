//! The object store: the same contract, run against a local folder and against a real
//! S3-compatible server (`s3s-fs`, started by the README's test command, which exports
//! `MINUTES_TEST_S3_ENDPOINT`, `_BUCKET`, `_ACCESS_KEY` and `_SECRET_KEY`).

use bytes::Bytes;
use minutes_shared::storage::{
    artifact_key, job_prefix, upload_key, Storage, StorageError, StorageSettings, PART_SIZE,
};
use uuid::Uuid;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name}: run the tests with the README's test command (scripts/test)")
    })
}

fn local() -> (Storage, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("minutes-store-{}", Uuid::new_v4().simple()));
    let url = url::Url::from_directory_path(&dir).expect("absolute").to_string();
    (Storage::new(&StorageSettings { url, ..Default::default() }).expect("local store"), dir)
}

fn s3() -> Storage {
    Storage::new(&StorageSettings {
        url: format!("s3://{}", env("MINUTES_TEST_S3_BUCKET")),
        endpoint: Some(env("MINUTES_TEST_S3_ENDPOINT")),
        region: Some("us-east-1".into()),
        access_key_id: Some(env("MINUTES_TEST_S3_ACCESS_KEY")),
        secret_access_key: Some(env("MINUTES_TEST_S3_SECRET_KEY")),
    })
    .expect("s3 store")
}

/// Deterministic bytes that no compression or deduplication could flatter.
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

async fn keeps_the_contract(storage: &Storage) {
    storage.check().await.expect("the store answers");
    let job = Uuid::new_v4();
    let transcript = artifact_key(job, 1, 1, "transcript.json");
    storage.put(&transcript, Bytes::from_static(b"{\"segments\":[]}")).await.expect("put");
    assert_eq!(storage.get(&transcript).await.expect("get"), &b"{\"segments\":[]}"[..]);
    assert!(storage.exists(&transcript).await.expect("exists"));
    assert_eq!(storage.size(&transcript).await.expect("size"), 15);
    let missing = artifact_key(job, 1, 1, "minutes.pdf");
    assert!(!storage.exists(&missing).await.expect("exists"));
    assert!(matches!(storage.get(&missing).await, Err(StorageError::NotFound(_))));

    // A streamed upload of several parts, written in small chunks, comes back byte for byte.
    let source = noise(2 * PART_SIZE + 123_457);
    let mut upload = storage.start_upload(&upload_key(job)).await.expect("start");
    for chunk in source.chunks(64 * 1024) {
        upload.write(chunk).await.expect("write");
    }
    assert_eq!(upload.finish().await.expect("finish"), source.len() as u64);
    let stored = storage.get(&upload_key(job)).await.expect("get upload");
    assert!(stored.len() == source.len() && stored[..] == source[..], "upload intact");

    // An aborted upload leaves nothing behind.
    let other = Uuid::new_v4();
    let mut partial = storage.start_upload(&upload_key(other)).await.expect("start");
    partial.write(&source[..PART_SIZE + 10]).await.expect("write");
    partial.abort().await.expect("abort");
    assert!(!storage.exists(&upload_key(other)).await.expect("exists"));

    assert_eq!(storage.delete_prefix(&job_prefix(job)).await.expect("delete"), 2);
    assert!(!storage.exists(&transcript).await.expect("exists"));
    assert!(!storage.exists(&upload_key(job)).await.expect("exists"));

    for bad in ["../outside", "jobs/../../etc/passwd", "/etc/passwd", "jobs/a\r\nb"] {
        let refused = storage.put(bad, Bytes::from_static(b"x")).await;
        assert!(matches!(refused, Err(StorageError::InvalidKey(_))), "{bad:?}");
    }
}

#[tokio::test]
async fn the_local_store_keeps_the_contract() {
    let (storage, dir) = local();
    keeps_the_contract(&storage).await;
    // Nothing was written outside the store's folder, and nothing is left in it.
    let parent = dir.parent().expect("parent");
    assert!(!parent.join("outside").exists() && !parent.join("etc").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_s3_store_keeps_the_contract() {
    keeps_the_contract(&s3()).await;
}
