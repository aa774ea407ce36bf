//! [`ClientError`], the one error type of this crate, and how an HTTP error
//! response becomes one.

use hoosh_types::openai::{ErrorObject, ErrorResponse};

/// Everything a call can fail with. The `Display` text is meant to be shown
/// to a CLI user as is.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an OpenAI-shaped error body, either as an
    /// HTTP error status or in-band on a stream (then `status` is the 2xx of
    /// the stream response).
    #[error("{}", api_message(.status, .error, .request_id))]
    Api {
        status: u16,
        error: ErrorObject,
        /// The `x-request-id` response header, to quote when reporting a problem.
        request_id: Option<String>,
    },
    /// An error status whose body is not the OpenAI error envelope (a proxy's
    /// HTML page, a plain-text 404, ...).
    #[error("{}", http_message(.status, .body))]
    Http { status: u16, body: String },
    /// The request or the response body could not be sent or read
    /// (connection refused, TLS, timeout, connection dropped mid-stream).
    #[error("request failed: {0}")]
    Transport(String),
    /// A 2xx response whose body is not what the endpoint promises.
    #[error("unexpected response: {0}")]
    Decode(String),
    /// The event stream ended without `data: [DONE]`, so the answer may be
    /// incomplete.
    #[error("the stream ended before [DONE]: the answer may be incomplete")]
    StreamTruncated,
    /// The client was built with settings that cannot work.
    #[error("invalid client configuration: {0}")]
    Config(String),
}

impl ClientError {
    /// The HTTP status the server answered with, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } | ClientError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Turns a non-2xx response into an error, reading its body.
    pub(crate) async fn from_response(response: reqwest::Response) -> ClientError {
        let status = response.status().as_u16();
        let request_id = request_id(&response);
        match response.bytes().await {
            Ok(body) => ClientError::from_body(status, &body, request_id),
            Err(e) => ClientError::Http { status, body: format!("(body unreadable: {})", error_chain(&e)) },
        }
    }

    /// `Api` when `body` is the OpenAI error envelope, else `Http`.
    pub(crate) fn from_body(status: u16, body: &[u8], request_id: Option<String>) -> ClientError {
        match serde_json::from_slice::<ErrorResponse>(body) {
            Ok(envelope) => ClientError::Api { status, error: envelope.error, request_id },
            Err(_) => ClientError::Http { status, body: String::from_utf8_lossy(body).into_owned() },
        }
    }

    /// A failure of reqwest while sending or reading.
    pub(crate) fn transport(e: &reqwest::Error) -> ClientError {
        if e.is_timeout() {
            ClientError::Transport(format!("timed out: {}", error_chain(e)))
        } else {
            ClientError::Transport(error_chain(e))
        }
    }
}

/// The `x-request-id` header of a response.
pub(crate) fn request_id(response: &reqwest::Response) -> Option<String> {
    response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// At most this many characters of a body go into an error message.
const SNIPPET_CHARS: usize = 300;

/// The start of `text`, trimmed, for an error message.
pub(crate) fn snippet(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(SNIPPET_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// reqwest's own message is often just "error sending request"; the cause
/// ("connection refused", "unexpected EOF") is further down the chain.
fn error_chain(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

fn api_message(status: &u16, error: &ErrorObject, request_id: &Option<String>) -> String {
    let label = error.code.as_deref().unwrap_or(&error.kind);
    let mut out = if (200..300).contains(status) {
        format!("error in stream: {label}: {}", error.message)
    } else {
        format!("{status} {label}: {}", error.message)
    };
    if let Some(param) = &error.param {
        out.push_str(&format!(" (param: {param})"));
    }
    if let Some(id) = request_id {
        out.push_str(&format!(" (request id: {id})"));
    }
    out
}

fn http_message(status: &u16, body: &str) -> String {
    let reason = reqwest::StatusCode::from_u16(*status).ok().and_then(|s| s.canonical_reason()).unwrap_or("error");
    let body = snippet(body);
    if body.is_empty() { format!("{status} {reason}") } else { format!("{status} {reason}: {body}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(code: Option<&str>) -> ErrorObject {
        ErrorObject {
            message: "The model `nope` does not exist".into(),
            kind: "invalid_request_error".into(),
            param: None,
            code: code.map(str::to_owned),
        }
    }

    #[test]
    fn api_display_prefers_code_and_names_request_id() {
        let e =
            ClientError::Api { status: 404, error: object(Some("model_not_found")), request_id: Some("req_1".into()) };
        assert_eq!(e.to_string(), "404 model_not_found: The model `nope` does not exist (request id: req_1)");
        let e = ClientError::Api { status: 404, error: object(None), request_id: None };
        assert_eq!(e.to_string(), "404 invalid_request_error: The model `nope` does not exist");
        let e = ClientError::Api { status: 200, error: object(None), request_id: None };
        assert_eq!(e.to_string(), "error in stream: invalid_request_error: The model `nope` does not exist");
    }

    #[test]
    fn body_decides_between_api_and_http() {
        let body = br#"{"error":{"message":"slow down","type":"rate_limit_error","param":null,"code":null}}"#;
        assert!(matches!(ClientError::from_body(429, body, None), ClientError::Api { status: 429, .. }));
        let e = ClientError::from_body(502, b"<html>bad gateway</html>", None);
        assert!(matches!(&e, ClientError::Http { status: 502, .. }));
        assert_eq!(e.to_string(), "502 Bad Gateway: <html>bad gateway</html>");
        assert_eq!(ClientError::from_body(404, b"", None).to_string(), "404 Not Found");
    }

    #[test]
    fn long_bodies_are_cut_on_a_char_boundary() {
        let long = "é".repeat(SNIPPET_CHARS + 10);
        let cut = snippet(&long);
        assert_eq!(cut.chars().count(), SNIPPET_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}
