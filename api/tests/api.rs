//! Integration tests of the API binary's router, served on port 0.

// In a test, a failed expectation is the test failing: say what was expected and stop.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Serves the router on a fresh port and returns the raw HTTP response to `GET path`.
async fn get(path: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, minutes_api::router()).await });
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write request");
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut response))
        .await
        .expect("response within 10 s")
        .expect("read response");
    response
}

#[tokio::test]
async fn healthz_answers_ok_over_http() {
    let response = get("/healthz").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok\n"), "{response}");
}

#[tokio::test]
async fn unknown_routes_are_404() {
    let response = get("/api/v1/jobs/1").await;
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
}
