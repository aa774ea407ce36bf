//! Canonical (OpenAI chat) request → local generation request, and local
//! generation events → canonical responses and chunks. Pure functions.

use hoosh_core::{ErrorKind, ProviderError};
use hoosh_llm::{Finish, GenerateRequest, LlmError, SamplingParams};
use hoosh_types::openai::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, Choice, Delta, FinishReason,
    PromptTokensDetails, ResponseFormat, ResponseMessage, Role, Usage,
};
use serde_json::Value;

/// Vendor-extension sampling knobs a client may send next to the OpenAI ones
/// (`top_k`, `min_p`, `repeat_penalty`, as llama.cpp's server accepts them).
fn extra_f32(req: &ChatCompletionRequest, key: &str) -> Option<f32> {
    req.extra.get(key).and_then(Value::as_f64).map(|v| v as f32)
}

/// Builds the generation request for an already-rendered prompt.
pub fn generate_request(req: &ChatCompletionRequest, prompt: String) -> GenerateRequest {
    let mut sampling = SamplingParams::default();
    if let Some(t) = req.temperature {
        sampling.temperature = t as f32;
    }
    if let Some(p) = req.top_p {
        sampling.top_p = p as f32;
    }
    if let Some(p) = req.presence_penalty {
        sampling.presence_penalty = p as f32;
    }
    if let Some(p) = req.frequency_penalty {
        sampling.frequency_penalty = p as f32;
    }
    if let Some(k) = extra_f32(req, "top_k") {
        sampling.top_k = k.max(0.0) as u32;
    }
    if let Some(m) = extra_f32(req, "min_p") {
        sampling.min_p = m;
    }
    if let Some(r) = extra_f32(req, "repeat_penalty") {
        sampling.repeat_penalty = r;
    }
    // A negative seed is a valid OpenAI seed; keep its bits.
    sampling.seed = req.seed.map(|s| s as u64);
    let json = matches!(req.response_format, Some(ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. }));
    GenerateRequest {
        prompt,
        max_tokens: req.output_cap(),
        sampling,
        stop: req.stop.as_ref().map(|s| s.to_vec()).unwrap_or_default(),
        json,
    }
}

/// Usage with the prompt tokens served from the KV cache reported the way
/// OpenAI reports cached input.
pub fn usage(prompt: u32, completion: u32, cached: u32) -> Usage {
    let mut u = Usage::new(u64::from(prompt), u64::from(completion));
    if cached > 0 {
        u.prompt_tokens_details = Some(PromptTokensDetails { cached_tokens: u64::from(cached), ..Default::default() });
    }
    u
}

pub fn finish_reason(f: Finish) -> FinishReason {
    match f {
        Finish::Stop => FinishReason::Stop,
        Finish::Length => FinishReason::Length,
    }
}

/// Engine errors in the gateway's terms: a full queue is a retryable 503, a
/// prompt that does not fit is the caller's 400.
pub fn provider_error(e: LlmError) -> ProviderError {
    match e {
        LlmError::QueueFull { retry_after_secs } => {
            ProviderError::from_status(503, e.to_string(), Some(std::time::Duration::from_secs(retry_after_secs)))
                .public()
        }
        LlmError::ContextOverflow { .. } | LlmError::InvalidRequest(_) | LlmError::Template(_) => {
            ProviderError::new(ErrorKind::BadRequest, e.to_string())
        }
        LlmError::Unsupported(_) => ProviderError::unsupported(e.to_string()),
        LlmError::Load(_) | LlmError::Inference(_) | LlmError::EngineStopped => {
            ProviderError::new(ErrorKind::Upstream, e.to_string())
        }
    }
}

pub fn response(
    id: String,
    created: u64,
    model: &str,
    text: String,
    finish: Finish,
    usage: Usage,
) -> ChatCompletionResponse {
    ChatCompletionResponse {
        native: None,
        id,
        object: "chat.completion".into(),
        created,
        model: model.to_owned(),
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage::assistant(Some(text)),
            finish_reason: Some(finish_reason(finish)),
            logprobs: None,
        }],
        usage: Some(usage),
        system_fingerprint: None,
    }
}

pub fn role_chunk(id: &str, created: u64, model: &str) -> ChatCompletionChunk {
    ChatCompletionChunk::delta(id, created, model, Delta::role(Role::Assistant), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoosh_types::content::OneOrMany;
    use hoosh_types::openai::{ChatMessage, Role};

    #[test]
    fn maps_sampling_stop_and_json_mode() {
        let mut req = ChatCompletionRequest {
            model: "smollm2-135m".into(),
            messages: vec![ChatMessage::text(Role::User, "hi")],
            temperature: Some(0.0),
            top_p: Some(0.5),
            seed: Some(-1),
            max_completion_tokens: Some(7),
            max_tokens: Some(99),
            stop: Some(OneOrMany::Many(vec!["a".into(), "b".into()])),
            response_format: Some(ResponseFormat::JsonObject),
            ..Default::default()
        };
        req.extra.insert("top_k".into(), 5.into());
        req.extra.insert("min_p".into(), serde_json::json!(0.1));
        let g = generate_request(&req, "P".into());
        assert_eq!(g.prompt, "P");
        assert_eq!(g.max_tokens, Some(7));
        assert_eq!(g.sampling.temperature, 0.0);
        assert_eq!(g.sampling.top_p, 0.5);
        assert_eq!(g.sampling.top_k, 5);
        assert!((g.sampling.min_p - 0.1).abs() < 1e-6);
        assert_eq!(g.sampling.seed, Some(u64::MAX));
        assert_eq!(g.stop, vec!["a", "b"]);
        assert!(g.json);
    }

    #[test]
    fn queue_full_is_a_retryable_503() {
        let e = provider_error(LlmError::QueueFull { retry_after_secs: 2 });
        assert_eq!(e.status, Some(503));
        assert!(e.retryable());
        assert_eq!(e.retry_after, Some(std::time::Duration::from_secs(2)));
        let e = provider_error(LlmError::ContextOverflow { prompt_tokens: 9000, limit: 4096 });
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert!(e.message.contains("9000"));
    }
}
