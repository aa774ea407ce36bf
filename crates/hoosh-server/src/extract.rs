//! `ApiJson<T>`: a JSON body extractor whose failures are OpenAI-shaped 400s
//! naming the offending field (`messages[0].role`), 413 past the body
//! limit and 408 past the body deadline — axum's own `Json` answers in plain text.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if content_type.starts_with("multipart/") {
            return Err(ApiError::invalid(
                "This endpoint takes a JSON body (Content-Type: application/json), not multipart form data.",
                None,
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else if crate::edge::deadline::timed_out(&rej) {
                ApiError::BodyTimeout
            } else {
                ApiError::invalid(format!("Could not read the request body: {rej}"), None)
            }
        })?;
        parse(&bytes).map(ApiJson)
    }
}

/// Parses a JSON body, naming the path of the first offending field.
///
/// A body that parses is read once, without path tracking (which costs an
/// allocation per key); only a failing one is read again to name the field.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid("The request body is empty; expected a JSON object.", None));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(field_error)?;
    de.end().map_err(|e| {
        ApiError::invalid(format!("The request body has trailing data after the JSON value: {e}"), None)
    })?;
    Ok(value)
}

/// Reads an already parsed JSON value as `T`, naming the path of the first
/// offending field as [`parse`] does (for a body also kept as it came).
pub fn from_value<T: DeserializeOwned>(value: &serde_json::Value) -> Result<T, ApiError> {
    if let Ok(v) = T::deserialize(value) {
        return Ok(v);
    }
    serde_path_to_error::deserialize(value).map_err(field_error)
}

fn field_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let inner = e.inner();
    let path = e.path().to_string();
    let path = if path == "." { String::new() } else { path };
    if inner.is_syntax() || inner.is_eof() {
        return ApiError::invalid(format!("The request body is not valid JSON: {inner}"), None);
    }
    let msg = inner.to_string();
    // serde reports a missing field at its parent's path; name the field itself.
    let param = match missing_field(&msg) {
        Some(field) if path.is_empty() => field.to_owned(),
        Some(field) => format!("{path}.{field}"),
        None => path,
    };
    let message = if param.is_empty() {
        format!("Invalid request body: {msg}")
    } else {
        format!("Invalid value for `{param}`: {msg}")
    };
    ApiError::invalid(message, (!param.is_empty()).then_some(param))
}

fn missing_field(msg: &str) -> Option<&str> {
    let rest = msg.strip_prefix("missing field `")?;
    rest.split_once('`').map(|(f, _)| f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoosh_types::openai::ChatCompletionRequest;

    fn err(body: &str) -> (String, Option<String>) {
        match parse::<ChatCompletionRequest>(body.as_bytes()) {
            Err(ApiError::InvalidRequest { message, param, .. }) => (message, param),
            other => panic!("expected invalid request, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn names_the_field() {
        let (m, p) = err(r#"{"model":"x","messages":[{"role":"robot","content":"hi"}]}"#);
        assert_eq!(p.as_deref(), Some("messages[0].role"), "{m}");
        assert!(m.contains("robot"), "{m}");
        let (_, p) = err(r#"{"model":"x"}"#);
        assert_eq!(p.as_deref(), Some("messages"));
        let (m, p) = err(r#"{"model":"x","messages":[],"temperature":"hot"}"#);
        assert_eq!(p.as_deref(), Some("temperature"), "{m}");
        let (_, p) = err(r#"{"model":"x","messages":[{"role":"user"}],"tools":[{"type":"function"}]}"#);
        assert_eq!(p.as_deref(), Some("tools[0].function"));
    }

    #[test]
    fn syntax_and_empty() {
        assert!(err("{").0.contains("not valid JSON"));
        assert!(err("").0.contains("empty"));
        assert!(err(r#"{"model":"x","messages":[]} x"#).0.contains("trailing"));
    }
}
