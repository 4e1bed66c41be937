//! The upload form read within bounds: part headers, the number of parts and each text
//! field's size, each refused with a 400 that names the bound and nothing stored.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// A form body with `head` as the file part's header lines and a small WAV after them.
fn form_with_header(boundary: &str, head: &str, wav: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n{head}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(wav);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

async fn post_form(app: &TestApp, boundary: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let response = app
        .http
        .post(app.url("/api/v1/jobs"))
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The hole: multipart part headers were buffered without limit on the upload route (its
/// body limit is off and multer has none for headers), so one request whose part header
/// never ends grew the API's memory until it died. A megabyte of header was accepted.
#[tokio::test]
async fn multipart_part_headers_field_count_and_field_size_are_bounded() {
    let app = TestApp::spawn().await;
    let wav = read(&fixture("formats/hello_u8_8k.wav"));
    let boundary = "b0undary";
    // Within the bounds a hand-made form is accepted, so what follows is the bounds.
    let (status, body) =
        post_form(&app, boundary, form_with_header(boundary, "Content-Type: audio/wav", &wav))
            .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let files = app.stored_files();

    let huge = format!("X-Padding: {}", "a".repeat(1024 * 1024));
    let (status, body) = post_form(&app, boundary, form_with_header(boundary, &huge, &wav)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "form_limit_exceeded", "{body}");
    assert!(body["message"].as_str().unwrap().contains("headers are longer than"), "{body}");

    // Seventeen parts: more than the form's bound of sixteen, though each is a known field.
    let mut many = Form::new();
    for _ in 0..17 {
        many = many.text("title", "again");
    }
    let response = app.http.post(app.url("/api/v1/jobs")).multipart(many).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "form_limit_exceeded", "{body}");
    assert!(body["message"].as_str().unwrap().contains("more than 16 parts"), "{body}");

    // A text field over its size.
    let long_title = "t".repeat(2000);
    let response = app.upload("a.wav", wav.clone(), &[("title", &long_title)]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("title: at most 1024 bytes"), "{body}");
    assert_eq!(app.stored_files(), files, "nothing stored for a refused form");
    app.finish().await;
}

/// A part header that never ends is refused while it streams: the answer comes after a few
/// kilobytes, not after the client gives up.
#[tokio::test]
async fn a_part_header_that_never_ends_is_refused_while_it_streams() {
    let app = TestApp::spawn().await;
    let (_, token) = add_user(app.repo.pool(), "raw@example.com", Role::Member).await.unwrap();
    let address = app.base.trim_start_matches("http://").to_string();
    let stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = sent.clone();
    let writing = tokio::spawn(async move {
        let head = format!(
            "POST /api/v1/jobs HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: multipart/form-data; boundary=xx\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        writer.write_all(head.as_bytes()).await?;
        let start = b"--xx\r\nContent-Disposition: form-data; name=\"file\"\r\nX-Endless: ";
        writer.write_all(format!("{:x}\r\n", start.len()).as_bytes()).await?;
        writer.write_all(start).await?;
        writer.write_all(b"\r\n").await?;
        let chunk = vec![b'a'; 64 * 1024];
        // Up to 256 MiB of one header line, until the server stops reading.
        for _ in 0..4096 {
            writer.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
            writer.write_all(&chunk).await?;
            writer.write_all(b"\r\n").await?;
            counter.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        Ok::<(), std::io::Error>(())
    });
    let answer = async {
        let mut answer = Vec::new();
        let mut buffer = [0_u8; 4096];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            let read = reader.read(&mut buffer).await.unwrap();
            assert!(read > 0, "the server closed without an answer");
            answer.extend_from_slice(&buffer[..read]);
        }
        answer
    };
    // Unbounded, the server would read all 256 MiB and wait for more: no answer at all.
    let answer = tokio::time::timeout(Duration::from_secs(120), answer)
        .await
        .expect("an answer while the header streams");
    let answered_after = sent.load(std::sync::atomic::Ordering::Relaxed);
    let status = String::from_utf8_lossy(&answer).lines().next().unwrap_or("").to_string();
    assert!(status.starts_with("HTTP/1.1 400"), "{status}");
    assert!(answered_after < 16 * 1024 * 1024, "answered after {answered_after} bytes");
    writing.abort();
    drop(reader);
    app.finish().await;
}
