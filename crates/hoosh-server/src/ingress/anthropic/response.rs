//! A canonical chat answer → an Anthropic Messages answer.

use hoosh_types::anthropic::{ContentBlock, MessagesResponse, Role, StopReason, Usage};
use hoosh_types::openai::{ChatCompletionResponse, FinishReason, Usage as OpenAiUsage};
use serde_json::Value;

/// The Messages answer for a canonical one (its first choice: Anthropic has no `n`).
pub fn encode(resp: ChatCompletionResponse) -> MessagesResponse {
    let usage = resp.usage.map(usage).unwrap_or_default();
    let id = message_id(&resp.id);
    let choice = resp.choices.into_iter().next();
    let mut content = Vec::new();
    let mut stop_reason = None;
    if let Some(c) = choice {
        stop_reason = c.finish_reason.map(stop_reason_of);
        let m = c.message;
        if let Some(thinking) = m.reasoning_content.filter(|t| !t.is_empty()) {
            content.push(ContentBlock::Thinking { thinking, signature: Some(String::new()) });
        }
        if let Some(text) = m.content.or(m.refusal).filter(|t| !t.is_empty()) {
            content.push(ContentBlock::Text { text });
        }
        for call in m.tool_calls.unwrap_or_default() {
            content.push(ContentBlock::ToolUse {
                id: call.id,
                name: call.function.name,
                input: tool_input(&call.function.arguments),
            });
        }
    }
    MessagesResponse {
        id,
        kind: "message".into(),
        role: Role::Assistant,
        content,
        model: resp.model,
        stop_reason: Some(stop_reason.unwrap_or(StopReason::EndTurn)),
        stop_sequence: None,
        usage,
    }
}

/// `msg_…` from the canonical id (kept recognisable in logs).
pub fn message_id(id: &str) -> String {
    let bare = id.strip_prefix("chatcmpl-").unwrap_or(id);
    if bare.starts_with("msg_") { bare.to_owned() } else { format!("msg_{bare}") }
}

pub fn stop_reason_of(f: FinishReason) -> StopReason {
    match f {
        FinishReason::Stop => StopReason::EndTurn,
        FinishReason::Length => StopReason::MaxTokens,
        FinishReason::ToolCalls | FinishReason::FunctionCall => StopReason::ToolUse,
        FinishReason::ContentFilter => StopReason::Refusal,
    }
}

/// Anthropic's usage: `input_tokens` excludes what was read from or written
/// to the prompt cache, which are reported apart.
pub fn usage(u: OpenAiUsage) -> Usage {
    let details = u.prompt_tokens_details.unwrap_or_default();
    let cached = details.cached_tokens + details.cache_write_tokens;
    Usage {
        input_tokens: u.prompt_tokens.saturating_sub(cached),
        output_tokens: u.completion_tokens,
        cache_creation_input_tokens: Some(details.cache_write_tokens),
        cache_read_input_tokens: Some(details.cached_tokens),
    }
}

/// A tool call's arguments as the object Anthropic clients expect; text
/// that is not a JSON object (a model's slip) is kept under `_raw`.
pub fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ if arguments.trim().is_empty() => Value::Object(Default::default()),
        _ => serde_json::json!({ "_raw": arguments }),
    }
}

#[cfg(test)]
mod tests {
    use hoosh_types::openai::{
        Choice, FunctionCall, PromptTokensDetails, ResponseMessage, Role as OpenAiRole, ToolCall, ToolKind,
    };
    use serde_json::json;

    use super::*;

    #[test]
    fn text_tool_calls_and_cache_usage_map_to_the_messages_shape() {
        let mut msg = ResponseMessage::assistant(Some("Let me look.".into()));
        msg.role = OpenAiRole::Assistant;
        msg.tool_calls = Some(vec![ToolCall {
            id: "call_9".into(),
            kind: ToolKind::Function,
            function: FunctionCall { name: "Read".into(), arguments: "{\"path\":\"a\"}".into() },
        }]);
        let mut u = OpenAiUsage::new(100, 7);
        u.prompt_tokens_details = Some(PromptTokensDetails { cached_tokens: 60, cache_write_tokens: 10 });
        let resp = ChatCompletionResponse {
            native: None,
            id: "chatcmpl-abc".into(),
            object: "chat.completion".into(),
            created: 0,
            model: "gpt-4o".into(),
            choices: vec![Choice {
                index: 0,
                message: msg,
                finish_reason: Some(FinishReason::ToolCalls),
                logprobs: None,
            }],
            usage: Some(u),
            system_fingerprint: None,
        };
        assert_eq!(
            serde_json::to_value(encode(resp)).unwrap(),
            json!({
                "id": "msg_abc", "type": "message", "role": "assistant", "model": "gpt-4o",
                "content": [{"type": "text", "text": "Let me look."},
                            {"type": "tool_use", "id": "call_9", "name": "Read", "input": {"path": "a"}}],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 30, "output_tokens": 7,
                          "cache_creation_input_tokens": 10, "cache_read_input_tokens": 60}
            })
        );
    }

    #[test]
    fn arguments_that_are_not_an_object_are_kept_not_lost() {
        assert_eq!(tool_input(""), json!({}));
        assert_eq!(tool_input("[1,2]"), json!({"_raw": "[1,2]"}));
        assert_eq!(tool_input("{\"a\":"), json!({"_raw": "{\"a\":"}));
    }
}
