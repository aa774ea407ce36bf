//! `multipart`: the `/v1/audio/transcriptions` and `/translations` form, as
//! a client sends it — axum's real `Multipart` extractor over a request
//! whose body is the fuzz bytes, then the route's own form checks
//! ([`check_form`]), up to where the file would be decoded.
//!
//! Input: a byte choosing the task (transcribe or translate), one choosing
//! the file-size limit (64 B to 8 KiB, so the limit is reached), one
//! choosing the network chunks, then the body; the boundary is
//! [`BOUNDARY`]. Invariants: the outcome does not depend on the chunking;
//! an accepted form's file is non-empty and within the limit; a refused one
//! is a 4xx, never a 500.

use axum::body::Body;
use axum::extract::multipart::Multipart;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use hoosh_core::audio::AudioTask;
use hoosh_server::routes::audio::check_form;

use crate::input::{Input, block_on, chunks};

/// The boundary the corpus forms use.
pub const BOUNDARY: &str = "hoosh-fuzz-boundary";

pub fn multipart(data: &[u8]) {
    let mut input = Input::new(data);
    let task = if input.bool() { AudioTask::Translate } else { AudioTask::Transcribe };
    let max = 64usize << (input.byte() % 8);
    let seed = input.byte();
    let body = input.rest();

    let whole = read(&[body], task, max);
    assert_eq!(read(&chunks(body, seed), task, max), whole, "the chunking changed the outcome");
    if let Ok(size) = whole {
        assert!(size > 0 && size <= max, "accepted a file of {size} bytes with a limit of {max}");
    }
}

/// The form's file size, or the status it was refused with.
fn read(pieces: &[&[u8]], task: AudioTask, max: usize) -> Result<usize, StatusCode> {
    let owned: Vec<Result<bytes::Bytes, std::io::Error>> =
        pieces.iter().map(|p| Ok(bytes::Bytes::copy_from_slice(p))).collect();
    let request = Request::builder()
        .method("POST")
        .uri("/v1/audio/transcriptions")
        .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(Body::from_stream(futures_util::stream::iter(owned)));
    let request = match request {
        Ok(r) => r,
        Err(e) => panic!("the harness built a bad request: {e}"),
    };
    block_on(async {
        let form = Multipart::from_request(request, &()).await.map_err(|e| e.status())?;
        check_form(form, task, max).await.map_err(|e| {
            let status = e.into_response().status();
            assert!(status.is_client_error(), "a malformed form answered {status}");
            status
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, filename, value) in parts {
            out.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
            let disposition = match filename {
                Some(f) => format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n"),
                None => format!("Content-Disposition: form-data; name=\"{name}\"\r\n"),
            };
            out.extend_from_slice(disposition.as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        out
    }

    #[test]
    fn a_real_form_is_read_and_checked() {
        let body = form(&[("model", None, b"whisper-1"), ("file", Some("a.wav"), b"RIFF....WAVE")]);
        assert_eq!(read(&[&body], AudioTask::Transcribe, 64), Ok(12));
        assert_eq!(read(&[&body], AudioTask::Transcribe, 8), Err(StatusCode::PAYLOAD_TOO_LARGE));
        let unknown = form(&[("model", None, b"whisper-1"), ("colour", None, b"red")]);
        assert_eq!(read(&[&unknown], AudioTask::Transcribe, 64), Err(StatusCode::BAD_REQUEST));
        for seed in 0..=255u8 {
            multipart(&[[0, 0, seed].as_slice(), &body].concat());
        }
    }
}
