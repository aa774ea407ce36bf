//! Canonical request → the body an OpenAI-compatible upstream accepts, and
//! its lenient answers → canonical responses. Pure functions.

use hoosh_core::params::{self, DroppedParams};
use hoosh_core::{EmbedRequest, ProviderError};
use hoosh_types::openai::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, Choice, ChunkChoice, Role, StreamOptions, Usage,
};
use hoosh_types::unix_now;
use serde_json::{Value, json};

use super::wire;
use crate::presets::Preset;

/// The body for `chat/completions`: the canonical request itself (it is
/// this wire format) minus dropped parameters, with the preset's dialect
/// fix-ups. Streams always ask for a usage chunk so that streamed calls can
/// be accounted; the server strips it again when the client did not ask.
pub fn chat_body(
    req: &ChatCompletionRequest,
    dropped: &DroppedParams,
    preset: &Preset,
    stream: bool,
) -> ChatCompletionRequest {
    let mut body = req.clone();
    params::strip(&mut body, dropped);
    if preset.legacy_max_tokens
        && let Some(v) = body.max_completion_tokens.take()
    {
        body.max_tokens = Some(v);
    }
    if !preset.developer_role {
        for m in &mut body.messages {
            if m.role == Role::Developer {
                m.role = Role::System;
            }
        }
    }
    body.stream = stream;
    body.stream_options = stream.then_some(StreamOptions { include_usage: Some(true) });
    body
}

pub fn chat_response(w: wire::ChatResponse, requested_model: &str) -> ChatCompletionResponse {
    ChatCompletionResponse {
        native: None,
        id: if w.id.is_empty() { format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()) } else { w.id },
        object: "chat.completion".into(),
        created: if w.created == 0 { unix_now() } else { w.created },
        model: if w.model.is_empty() { requested_model.to_owned() } else { w.model },
        choices: w
            .choices
            .into_iter()
            .map(|c| Choice {
                index: c.index,
                message: c.message,
                finish_reason: c.finish_reason,
                logprobs: c.logprobs,
            })
            .collect(),
        usage: w.usage,
        system_fingerprint: w.system_fingerprint,
    }
}

/// One streamed chunk, or the upstream's in-band error.
pub fn chunk(
    w: wire::Chunk,
    requested_model: &str,
    fallback_id: &str,
    created: u64,
) -> Result<ChatCompletionChunk, ProviderError> {
    if let Some(err) = w.error {
        let msg = err.get("message").and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| err.to_string());
        return Err(ProviderError::new(hoosh_core::ErrorKind::StreamInterrupted, msg));
    }
    Ok(ChatCompletionChunk {
        native: None,
        id: if w.id.is_empty() { fallback_id.to_owned() } else { w.id },
        object: ChatCompletionChunk::OBJECT.into(),
        created: if w.created == 0 { created } else { w.created },
        model: if w.model.is_empty() { requested_model.to_owned() } else { w.model },
        choices: w
            .choices
            .into_iter()
            .map(|c| ChunkChoice {
                index: c.index,
                delta: c.delta,
                finish_reason: c.finish_reason,
                logprobs: c.logprobs,
            })
            .collect(),
        usage: w.usage,
        system_fingerprint: w.system_fingerprint,
    })
}

pub fn embed_body(req: &EmbedRequest) -> Value {
    let mut body = json!({"model": req.model, "input": req.input, "encoding_format": "float"});
    if let Some(d) = req.dimensions {
        body["dimensions"] = json!(d);
    }
    if let Some(u) = &req.user {
        body["user"] = json!(u);
    }
    body
}

/// Vectors in input order (servers may answer out of order).
pub fn embed_response(w: wire::EmbeddingResponse, inputs: usize) -> Result<(Vec<Vec<f32>>, Usage), ProviderError> {
    if w.data.len() != inputs {
        return Err(ProviderError::invalid_response(format!(
            "upstream returned {} embeddings for {inputs} inputs",
            w.data.len()
        )));
    }
    let mut data = w.data;
    data.sort_by_key(|d| d.index);
    let tokens = w.usage.map(|u| u.prompt_tokens).unwrap_or(0);
    Ok((data.into_iter().map(|d| d.embedding).collect(), Usage::new(tokens, 0)))
}
