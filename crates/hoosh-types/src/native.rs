//! A request or answer in a client API's own shape, carried beside its
//! canonical (OpenAI chat) form. When the provider that serves a request
//! speaks the client's API itself (an Anthropic client in front of
//! Anthropic), it sends the client's body untranslated — betas,
//! `cache_control`, thinking signatures intact — and hands the upstream's
//! answer back the same way, while the canonical form beside it is what the
//! gateway meters. Never serialized: a provider of another API never sees it.

use std::sync::Arc;

use serde_json::{Map, Value};

/// Which client API a native body speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NativeApi {
    /// Anthropic's `POST /v1/messages`.
    AnthropicMessages,
}

/// The client's request body, and the headers of its API that a native
/// provider forwards (e.g. `anthropic-beta`).
#[derive(Debug, Clone, PartialEq)]
pub struct NativeRequest {
    pub api: NativeApi,
    pub body: Map<String, Value>,
    pub headers: Vec<(String, String)>,
}

/// One event of a native stream, as the upstream sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeEvent {
    /// The SSE event name (`message_start`, `content_block_delta`, …).
    pub event: String,
    /// Its `data:` payload, verbatim.
    pub data: String,
}

pub type Native<T> = Option<Arc<T>>;
