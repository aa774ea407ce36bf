//! `chat_request`, `embeddings_request`, `speech_request`: JSON request
//! bodies as the routes read them — [`parse`] (the `ApiJson` extractor's
//! decoder), then the route's checks ([`validate`]).
//!
//! Invariants: a refused body (undecodable or invalid) is a 400, never
//! another status; a decoded request, written back out as JSON, decodes to
//! the same request — what hoosh forwards to an OpenAI-compatible upstream
//! is what it checked.

use std::fmt::Debug;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use hoosh_server::error::ApiError;
use hoosh_server::extract::parse;
use hoosh_server::routes::audio::SpeechBody;
use hoosh_server::validate;
use hoosh_types::openai::{ChatCompletionRequest, EmbeddingRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub fn chat_request(data: &[u8]) {
    decode_validate_reencode::<ChatCompletionRequest>(data, validate::chat);
}

pub fn embeddings_request(data: &[u8]) {
    decode_validate_reencode::<EmbeddingRequest>(data, validate::embeddings);
}

/// `POST /v1/audio/speech`. Its checks live in the handler, past auth; here
/// the body's decoding.
pub fn speech_request(data: &[u8]) {
    if let Err(e) = parse::<SpeechBody>(data) {
        assert_bad_request(e);
    }
}

fn decode_validate_reencode<T>(data: &[u8], validate: fn(&T) -> Result<(), ApiError>)
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    let request: T = match parse(data) {
        Ok(r) => r,
        Err(e) => return assert_bad_request(e),
    };
    if let Err(e) = validate(&request) {
        assert_bad_request(e);
    }
    let text = match serde_json::to_vec(&request) {
        Ok(t) => t,
        Err(e) => panic!("a decoded request does not serialise: {e}: {request:?}"),
    };
    match parse::<T>(&text) {
        Ok(again) => assert_eq!(again, request, "written out as {}", String::from_utf8_lossy(&text)),
        Err(e) => {
            panic!("a decoded request does not decode once written out ({e:?}): {}", String::from_utf8_lossy(&text))
        }
    }
}

fn assert_bad_request(e: ApiError) {
    let message = format!("{e:?}");
    let status = e.into_response().status();
    assert_eq!(status, StatusCode::BAD_REQUEST, "a refused body answered {status}: {message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_bodies_and_refusals() {
        chat_request(br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"top_k":5}"#);
        chat_request(br#"{"model":"gpt-4o","messages":[{"role":"robot","content":"hi"}]}"#);
        chat_request(b"");
        embeddings_request(br#"{"model":"text-embedding-3-small","input":["a","b"],"dimensions":256}"#);
        embeddings_request(br#"{"model":"m","input":[]}"#);
        speech_request(br#"{"model":"tts-1","input":"hello","voice":"alloy"}"#);
        speech_request(br#"{"model":"tts-1","input":"hello","voice":"alloy","pitch":3}"#);
    }

    #[test]
    #[should_panic(expected = "answered")]
    fn a_refusal_that_is_not_a_400_is_caught() {
        assert_bad_request(ApiError::Internal("boom".into()));
    }
}
