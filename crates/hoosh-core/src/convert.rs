//! Legacy text completions (`/v1/completions`) expressed as chat, for
//! providers that only speak chat: the prompt becomes one user message and
//! the answer's text comes back as `choices[].text`.

use hoosh_types::openai::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, ChatMessage, CompletionChoice,
    CompletionRequest, CompletionResponse, Role,
};

/// The chat request equivalent to a text completion request. Only a single
/// prompt maps onto one conversation; the caller rejects prompt arrays.
pub fn completion_to_chat(req: &CompletionRequest, prompt: &str) -> ChatCompletionRequest {
    ChatCompletionRequest {
        model: req.model.clone(),
        messages: vec![ChatMessage::text(Role::User, prompt)],
        max_tokens: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        n: req.n,
        stop: req.stop.clone(),
        seed: req.seed,
        presence_penalty: req.presence_penalty,
        frequency_penalty: req.frequency_penalty,
        user: req.user.clone(),
        stream: req.stream,
        stream_options: req.stream_options.clone(),
        extra: req.extra.clone(),
        ..Default::default()
    }
}

pub fn chat_to_completion(resp: ChatCompletionResponse) -> CompletionResponse {
    CompletionResponse {
        id: resp.id,
        object: "text_completion".into(),
        created: resp.created,
        model: resp.model,
        choices: resp
            .choices
            .into_iter()
            .map(|c| CompletionChoice {
                index: c.index,
                text: c.message.content.unwrap_or_default(),
                finish_reason: c.finish_reason,
                logprobs: None,
            })
            .collect(),
        usage: resp.usage,
    }
}

/// A streamed chat chunk as a streamed text-completion chunk (same shape as
/// the non-streaming response, one choice with a text fragment).
pub fn chunk_to_completion(chunk: ChatCompletionChunk) -> CompletionResponse {
    CompletionResponse {
        id: chunk.id,
        object: "text_completion".into(),
        created: chunk.created,
        model: chunk.model,
        choices: chunk
            .choices
            .into_iter()
            .map(|c| CompletionChoice {
                index: c.index,
                text: c.delta.content.unwrap_or_default(),
                finish_reason: c.finish_reason,
                logprobs: None,
            })
            .collect(),
        usage: chunk.usage,
    }
}
