//! Multipart bodies read within bounds. The multipart parser under axum (multer) buffers
//! the preamble before the first boundary and each part's headers until they end, with no
//! limit: one request whose part header never ends grew the API's memory until it died.
//! [`BoundedMultipart`] puts a scanner between the body and the parser that follows the
//! body's structure as the parser will read it and stops the request as soon as the
//! preamble, a part's headers or the number of parts passes its bound. Part bodies pass
//! through unbuffered (their sizes are the handler's to bound: the file's by the upload
//! limit, a text field's by its own).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use futures_util::Stream;
use memchr::memmem::Finder;

/// The bounds a form is read within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormBounds {
    /// Bytes before the first boundary (browsers and clients send none).
    pub preamble: usize,
    /// Bytes of one part's boundary line and headers.
    pub part_header: usize,
    /// Parts in the form.
    pub parts: usize,
}

impl FormBounds {
    /// The upload form's: it has eight fields, each header a line or two.
    pub const UPLOAD: FormBounds = FormBounds { preamble: 4096, part_header: 8192, parts: 16 };
}

/// Which bound a form passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FormLimitExceeded {
    /// Too much before the first boundary.
    #[error("the form has more than {0} bytes before its first part")]
    Preamble(usize),
    /// A part's headers did not end in time.
    #[error("a part's headers are longer than {0} bytes")]
    PartHeader(usize),
    /// Too many parts.
    #[error("the form has more than {0} parts")]
    Parts(usize),
}

impl FormLimitExceeded {
    /// The bound behind a multipart error, when one was passed.
    pub fn behind(error: &MultipartError) -> Option<FormLimitExceeded> {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(error) = source {
            if let Some(limit) = error.downcast_ref::<FormLimitExceeded>() {
                return Some(*limit);
            }
            source = error.source();
        }
        None
    }
}

/// The `multipart/form-data` extractor with [`FormBounds::UPLOAD`]: the same result as
/// axum's, with a body that ends in [`FormLimitExceeded`] once a bound is passed.
pub struct BoundedMultipart(pub Result<Multipart, MultipartRejection>);

impl<S: Send + Sync> FromRequest<S> for BoundedMultipart {
    type Rejection = Infallible;

    async fn from_request(request: Request, state: &S) -> Result<Self, Infallible> {
        let boundary = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| multer::parse_boundary(value).ok());
        let request = match boundary {
            Some(boundary) => {
                let (parts, body) = request.into_parts();
                let scanner = Scanner::new(&boundary, FormBounds::UPLOAD);
                let guarded = Guarded { inner: body.into_data_stream(), scanner, failed: false };
                Request::from_parts(parts, Body::from_stream(guarded))
            }
            // Not a form: axum's extractor says so.
            None => request,
        };
        Ok(BoundedMultipart(Multipart::from_request(request, state).await))
    }
}

/// The body stream, checked chunk by chunk.
struct Guarded<S> {
    inner: S,
    scanner: Scanner,
    failed: bool,
}

impl<S> Stream for Guarded<S>
where
    S: Stream<Item = Result<Bytes, axum::Error>> + Unpin,
{
    type Item = Result<Bytes, axum::BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => match self.scanner.feed(&chunk) {
                Ok(()) => Poll::Ready(Some(Ok(chunk))),
                Err(limit) => {
                    self.failed = true;
                    Poll::Ready(Some(Err(Box::new(limit))))
                }
            },
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(Box::new(error)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Where the scanner is in the form, as the parser reads it: the preamble up to the first
/// `--boundary`; after each boundary its line (a close delimiter `--` ends the form) up to
/// CRLF; then the headers up to the first CRLF CRLF after that line; then the part's body up
/// to the next CRLF `--boundary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Preamble,
    BoundaryLine,
    Headers,
    Body,
    End,
}

/// Follows a form's structure over its chunks.
struct Scanner {
    bounds: FormBounds,
    place: Place,
    /// What the current preamble, boundary line or header block holds so far (bounded).
    held: Vec<u8>,
    /// The last bytes of the body, in case a delimiter spans two chunks.
    tail: Vec<u8>,
    /// Bytes of the current part's boundary line and headers.
    header_bytes: usize,
    parts: usize,
    first: Finder<'static>,
    delimiter: Finder<'static>,
    line_end: Finder<'static>,
    headers_end: Finder<'static>,
}

impl Scanner {
    fn new(boundary: &str, bounds: FormBounds) -> Scanner {
        Scanner {
            bounds,
            place: Place::Preamble,
            held: Vec::new(),
            tail: Vec::new(),
            header_bytes: 0,
            parts: 0,
            first: Finder::new(format!("--{boundary}").as_bytes()).into_owned(),
            delimiter: Finder::new(format!("\r\n--{boundary}").as_bytes()).into_owned(),
            line_end: Finder::new(b"\r\n").into_owned(),
            headers_end: Finder::new(b"\r\n\r\n").into_owned(),
        }
    }

    fn feed(&mut self, mut data: &[u8]) -> Result<(), FormLimitExceeded> {
        while !data.is_empty() {
            let used = match self.place {
                Place::Preamble => self.preamble(data)?,
                Place::BoundaryLine => self.boundary_line(data)?,
                Place::Headers => self.headers(data)?,
                Place::Body => self.body(data)?,
                Place::End => data.len(),
            };
            data = &data[used..];
        }
        Ok(())
    }

    fn preamble(&mut self, data: &[u8]) -> Result<usize, FormLimitExceeded> {
        // Hold at most what the bound allows, plus the boundary.
        let most = self.bounds.preamble + self.first.needle().len();
        let room = most.saturating_sub(self.held.len());
        if room == 0 {
            return Err(FormLimitExceeded::Preamble(self.bounds.preamble));
        }
        let data = &data[..data.len().min(room)];
        match hold_until(&mut self.held, data, &self.first) {
            Some(used) => {
                self.start_part();
                Ok(used)
            }
            None if self.held.len() >= most => {
                Err(FormLimitExceeded::Preamble(self.bounds.preamble))
            }
            None => Ok(data.len()),
        }
    }

    fn start_part(&mut self) {
        self.place = Place::BoundaryLine;
        self.header_bytes = 0;
        self.held.clear();
    }

    fn boundary_line(&mut self, data: &[u8]) -> Result<usize, FormLimitExceeded> {
        let data = self.within_header_bound(data)?;
        // `--` right after the boundary closes the form; the parser reads no further.
        let start: Vec<u8> = self.held.iter().chain(data).take(2).copied().collect();
        if start == b"--" {
            self.place = Place::End;
            return Ok(data.len());
        }
        match hold_until(&mut self.held, data, &self.line_end) {
            Some(used) => {
                self.parts += 1;
                if self.parts > self.bounds.parts {
                    return Err(FormLimitExceeded::Parts(self.bounds.parts));
                }
                self.header_bytes += used;
                self.place = Place::Headers;
                Ok(used)
            }
            None => self.count_header(data.len()),
        }
    }

    fn headers(&mut self, data: &[u8]) -> Result<usize, FormLimitExceeded> {
        let data = self.within_header_bound(data)?;
        match hold_until(&mut self.held, data, &self.headers_end) {
            Some(used) => {
                self.place = Place::Body;
                self.tail.clear();
                Ok(used)
            }
            None => self.count_header(data.len()),
        }
    }

    /// `data` cut to what the header bound has room for (one byte past it, to see it passed).
    fn within_header_bound<'d>(&self, data: &'d [u8]) -> Result<&'d [u8], FormLimitExceeded> {
        let room = (self.bounds.part_header + 1).saturating_sub(self.header_bytes);
        if room == 0 {
            return Err(FormLimitExceeded::PartHeader(self.bounds.part_header));
        }
        Ok(&data[..data.len().min(room)])
    }

    fn count_header(&mut self, used: usize) -> Result<usize, FormLimitExceeded> {
        self.header_bytes += used;
        if self.header_bytes > self.bounds.part_header {
            return Err(FormLimitExceeded::PartHeader(self.bounds.part_header));
        }
        Ok(used)
    }

    /// Passes body bytes until the next delimiter, which may begin in the previous chunk.
    fn body(&mut self, data: &[u8]) -> Result<usize, FormLimitExceeded> {
        let needle = self.delimiter.needle().len();
        if !self.tail.is_empty() {
            let mut junction = self.tail.clone();
            junction.extend_from_slice(&data[..data.len().min(needle - 1)]);
            if let Some(at) = self.delimiter.find(&junction) {
                let used = at + needle - self.tail.len();
                self.tail.clear();
                self.start_part();
                return Ok(used);
            }
        }
        if let Some(at) = self.delimiter.find(data) {
            self.tail.clear();
            self.start_part();
            return Ok(at + needle);
        }
        let keep = needle - 1;
        if data.len() >= keep {
            self.tail.clear();
            self.tail.extend_from_slice(&data[data.len() - keep..]);
        } else {
            self.tail.extend_from_slice(data);
            let excess = self.tail.len().saturating_sub(keep);
            self.tail.drain(..excess);
        }
        Ok(data.len())
    }
}

/// Holds `data` in `held` and looks for `finder`'s needle there; returns how much of `data`
/// the needle's end consumed, if it was found (and then `held` is emptied).
fn hold_until(held: &mut Vec<u8>, data: &[u8], finder: &Finder<'static>) -> Option<usize> {
    let needle = finder.needle().len();
    let before = held.len();
    let from = before.saturating_sub(needle - 1);
    held.extend_from_slice(data);
    let found = finder.find(&held[from..]).map(|at| from + at + needle - before);
    if found.is_some() {
        held.clear();
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: FormBounds = FormBounds { preamble: 16, part_header: 64, parts: 3 };

    fn form(parts: &[(&str, &str)]) -> Vec<u8> {
        let mut body = Vec::new();
        for (name, value) in parts {
            body.extend_from_slice(
                format!(
                    "--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(b"--XyZ--\r\n");
        body
    }

    /// The result of feeding `body` in chunks of `size`.
    fn scan(body: &[u8], size: usize) -> Result<(Place, usize), FormLimitExceeded> {
        let mut scanner = Scanner::new("XyZ", BOUNDS);
        for chunk in body.chunks(size) {
            scanner.feed(chunk)?;
        }
        Ok((scanner.place, scanner.parts))
    }

    #[test]
    fn a_well_formed_form_passes_however_it_is_cut() {
        // Bodies holding things that look like delimiters but are not.
        let body = form(&[("title", "a\r\n--XyY\r\n\r\nb"), ("file", "\r\n-\r\n--Xy")]);
        for size in 1..=body.len() {
            assert_eq!(scan(&body, size), Ok((Place::End, 2)), "chunks of {size}");
        }
    }

    #[test]
    fn each_bound_is_enforced_however_the_body_is_cut() {
        let long_header = format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\n\r\nx",
            "a".repeat(100)
        );
        let never_ends = format!("--XyZ\r\nX-A: {}", "a".repeat(1000));
        let long_line = format!("--XyZ{}", " ".repeat(1000));
        let preamble = format!("{}--XyZ\r\n", "p".repeat(40));
        let many = form(&[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]);
        let cases = [
            (long_header.as_bytes(), FormLimitExceeded::PartHeader(64)),
            (never_ends.as_bytes(), FormLimitExceeded::PartHeader(64)),
            (long_line.as_bytes(), FormLimitExceeded::PartHeader(64)),
            (preamble.as_bytes(), FormLimitExceeded::Preamble(16)),
            (&many[..], FormLimitExceeded::Parts(3)),
        ];
        for (body, limit) in cases {
            for size in [1, 2, 7, 64, body.len()] {
                assert_eq!(scan(body, size), Err(limit), "chunks of {size}");
            }
        }
    }

    #[test]
    fn a_short_preamble_and_headers_within_the_bound_pass() {
        let mut body = b"preamble\r\n".to_vec();
        body.extend(form(&[("a", "1")]));
        assert_eq!(scan(&body, 3), Ok((Place::End, 1)));
    }
}
