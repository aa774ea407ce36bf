//! Checks of a decoded request that types cannot express, with OpenAI's
//! documented limits. Each failure names the parameter.

use hoosh_types::openai::{ChatCompletionRequest, EmbeddingRequest, Role};

use crate::error::ApiError;

/// Most stop sequences OpenAI accepts.
pub const MAX_STOP: usize = 4;
/// Most choices per request.
pub const MAX_N: u32 = 128;
/// Most tools per request.
pub const MAX_TOOLS: usize = 128;
/// Most inputs per embeddings request.
pub const MAX_EMBEDDING_INPUTS: usize = 2048;

fn range(name: &str, v: Option<f64>, lo: f64, hi: f64) -> Result<(), ApiError> {
    match v {
        Some(x) if !(lo..=hi).contains(&x) || x.is_nan() => {
            Err(ApiError::invalid(format!("`{name}` must be between {lo} and {hi}, got {x}."), Some(name.to_owned())))
        }
        _ => Ok(()),
    }
}

fn model(model: &str) -> Result<(), ApiError> {
    if model.trim().is_empty() {
        return Err(ApiError::invalid("`model` must not be empty.", Some("model".to_owned())));
    }
    if model.len() > 256 || model.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "`model` must be at most 256 characters without control characters.",
            Some("model".to_owned()),
        ));
    }
    Ok(())
}

pub fn chat(req: &ChatCompletionRequest) -> Result<(), ApiError> {
    model(&req.model)?;
    if req.messages.is_empty() {
        return Err(ApiError::invalid("`messages` must contain at least one message.", Some("messages".to_owned())));
    }
    for (i, m) in req.messages.iter().enumerate() {
        let p = |f: &str| Some(format!("messages[{i}].{f}"));
        match m.role {
            Role::System | Role::Developer | Role::User if m.content.is_none() => {
                return Err(ApiError::invalid(
                    format!("messages[{i}]: a {:?} message needs `content`.", m.role).to_lowercase(),
                    p("content"),
                ));
            }
            Role::Tool if m.tool_call_id.as_deref().is_none_or(str::is_empty) => {
                return Err(ApiError::invalid(
                    format!("messages[{i}]: a tool message needs `tool_call_id`."),
                    p("tool_call_id"),
                ));
            }
            Role::Tool if m.content.is_none() => {
                return Err(ApiError::invalid(format!("messages[{i}]: a tool message needs `content`."), p("content")));
            }
            Role::Assistant
                if m.content.is_none() && m.tool_calls.as_ref().is_none_or(Vec::is_empty) && m.refusal.is_none() =>
            {
                return Err(ApiError::invalid(
                    format!("messages[{i}]: an assistant message needs `content` or `tool_calls`."),
                    p("content"),
                ));
            }
            _ => {}
        }
    }
    range("temperature", req.temperature, 0.0, 2.0)?;
    range("top_p", req.top_p, 0.0, 1.0)?;
    range("presence_penalty", req.presence_penalty, -2.0, 2.0)?;
    range("frequency_penalty", req.frequency_penalty, -2.0, 2.0)?;
    if let Some(n) = req.n
        && !(1..=MAX_N).contains(&n)
    {
        return Err(ApiError::invalid(format!("`n` must be between 1 and {MAX_N}, got {n}."), Some("n".to_owned())));
    }
    for (name, v) in [("max_tokens", req.max_tokens), ("max_completion_tokens", req.max_completion_tokens)] {
        if v == Some(0) {
            return Err(ApiError::invalid(format!("`{name}` must be at least 1."), Some(name.to_owned())));
        }
    }
    if let Some(stop) = &req.stop
        && stop.len() > MAX_STOP
    {
        return Err(ApiError::invalid(format!("`stop` takes at most {MAX_STOP} sequences."), Some("stop".to_owned())));
    }
    if let Some(k) = req.top_logprobs
        && k > 20
    {
        return Err(ApiError::invalid("`top_logprobs` must be between 0 and 20.", Some("top_logprobs".to_owned())));
    }
    if let Some(tools) = &req.tools {
        if tools.len() > MAX_TOOLS {
            return Err(ApiError::invalid(
                format!("`tools` takes at most {MAX_TOOLS} tools."),
                Some("tools".to_owned()),
            ));
        }
        for (i, t) in tools.iter().enumerate() {
            let name = &t.function.name;
            let valid = !name.is_empty()
                && name.len() <= 64
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid {
                return Err(ApiError::invalid(
                    format!("tools[{i}].function.name `{name}` must be 1-64 characters of a-z, A-Z, 0-9, _ or -."),
                    Some(format!("tools[{i}].function.name")),
                ));
            }
        }
    }
    if req.stream_options.is_some() && !req.stream {
        return Err(ApiError::invalid(
            "`stream_options` is only allowed when `stream` is true.",
            Some("stream_options".to_owned()),
        ));
    }
    Ok(())
}

pub fn embeddings(req: &EmbeddingRequest) -> Result<(), ApiError> {
    model(&req.model)?;
    let inputs = req.input.len();
    if inputs == 0 {
        return Err(ApiError::invalid("`input` must not be empty.", Some("input".to_owned())));
    }
    if inputs > MAX_EMBEDDING_INPUTS {
        return Err(ApiError::invalid(
            format!("`input` takes at most {MAX_EMBEDDING_INPUTS} items, got {inputs}."),
            Some("input".to_owned()),
        ));
    }
    if req.input.to_vec().iter().any(String::is_empty) {
        return Err(ApiError::invalid("`input` must not contain empty strings.", Some("input".to_owned())));
    }
    if req.dimensions == Some(0) {
        return Err(ApiError::invalid("`dimensions` must be at least 1.", Some("dimensions".to_owned())));
    }
    Ok(())
}
