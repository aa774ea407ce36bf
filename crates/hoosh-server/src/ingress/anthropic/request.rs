//! An Anthropic Messages request → the canonical (OpenAI chat) request the
//! pipeline runs.
//!
//! - `system` (a string or text blocks) becomes one leading system message;
//!   a `system` turn mid-conversation (Claude Code's
//!   `mid-conversation-system` beta) a system message in its place.
//! - A user turn's text and image blocks become one user message; each
//!   `tool_result` block becomes a `tool` message (placed first, as OpenAI
//!   wants tool answers right after the assistant turn that called them).
//! - An assistant turn's text becomes its content, `tool_use` blocks its
//!   `tool_calls` (input as JSON text); `thinking` blocks are dropped — their
//!   signatures only mean something to Anthropic.
//! - `max_tokens` → `max_completion_tokens`, `stop_sequences` → `stop`,
//!   `metadata.user_id` → `user`, `top_k` passes through as an extension,
//!   `thinking` → `reasoning_effort` (budget < 4096 low, < 16384 medium,
//!   else high; `adaptive` medium), `tool_choice` → its OpenAI twin, and
//!   `disable_parallel_tool_use` → `parallel_tool_calls: false`.
//! - Client tools become function tools. Anthropic's server tools
//!   (`web_search_…`, `bash_…`) cannot run anywhere but at Anthropic: they
//!   are left out and named in [`Decoded::dropped`].
//!
//! Refused with a 400 naming the field: a block type hoosh does not know, a
//! PDF document, a tool result or `tool_use` in the wrong turn.

use hoosh_types::anthropic::{
    ContentBlock, ImageSource, Message, MessagesRequest, Role as AnthropicRole, TextBlock,
    ToolChoice as AnthropicChoice, ToolDef,
};
use hoosh_types::content::{OneOrMany, TextOrParts};
use hoosh_types::openai::{
    ChatCompletionRequest, ChatMessage, ContentPart, FunctionCall, FunctionDef, FunctionName, ImageUrl, MessageContent,
    NamedToolChoice, Role, Tool, ToolCall, ToolChoice, ToolChoiceMode, ToolKind,
};
use serde_json::Value;

use crate::error::ApiError;

/// The canonical request and what was left out of it.
pub struct Decoded {
    pub req: ChatCompletionRequest,
    /// What could not be expressed for a non-Anthropic target, e.g.
    /// `tools[web_search_20250305]`.
    pub dropped: Vec<String>,
}

pub fn decode(req: MessagesRequest) -> Result<Decoded, ApiError> {
    if req.max_tokens == 0 {
        return Err(invalid("`max_tokens` must be at least 1.", "max_tokens"));
    }
    if req.messages.is_empty() {
        return Err(invalid("`messages` must contain at least one message.", "messages"));
    }
    let mut dropped = Vec::new();
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = req.system.as_ref().map(system_text).filter(|s| !s.is_empty()) {
        messages.push(ChatMessage::text(Role::System, system));
    }
    for (i, m) in req.messages.iter().enumerate() {
        turn(m, i, &mut messages)?;
    }
    let tools = tools(req.tools.as_deref().unwrap_or_default(), &mut dropped);
    let (tool_choice, parallel_tool_calls) = match (&req.tool_choice, tools.is_empty()) {
        (Some(choice), false) => tool_choice(choice),
        _ => (None, None),
    };
    let mut extra = serde_json::Map::new();
    if let Some(k) = req.top_k {
        extra.insert("top_k".into(), k.into());
    }
    let canonical = ChatCompletionRequest {
        model: req.model,
        messages,
        max_completion_tokens: Some(req.max_tokens),
        temperature: req.temperature,
        top_p: req.top_p,
        stop: req.stop_sequences.filter(|s| !s.is_empty()).map(OneOrMany::Many),
        user: req.metadata.and_then(|m| m.user_id),
        stream: req.stream,
        tools: (!tools.is_empty()).then_some(tools),
        tool_choice,
        parallel_tool_calls,
        reasoning_effort: req.thinking.as_ref().and_then(reasoning_effort),
        extra,
        ..ChatCompletionRequest::default()
    };
    Ok(Decoded { req: canonical, dropped })
}

fn invalid(message: impl Into<String>, param: impl Into<String>) -> ApiError {
    ApiError::invalid(message, Some(param.into()))
}

fn system_text(system: &TextOrParts<TextBlock>) -> String {
    match system {
        TextOrParts::Text(t) => t.clone(),
        TextOrParts::Parts(blocks) => blocks.iter().map(|b| b.text.as_str()).collect::<Vec<_>>().join("\n\n"),
    }
}

/// One Anthropic turn as one or more canonical messages.
fn turn(m: &Message, i: usize, out: &mut Vec<ChatMessage>) -> Result<(), ApiError> {
    let blocks: Vec<ContentBlock> = match &m.content {
        TextOrParts::Text(t) => vec![ContentBlock::Text { text: t.clone() }],
        TextOrParts::Parts(b) => b.clone(),
    };
    let mut parts = Vec::new();
    let mut calls = Vec::new();
    let mut results = Vec::new();
    for (j, block) in blocks.into_iter().enumerate() {
        let at = || format!("messages[{i}].content[{j}]");
        match block {
            ContentBlock::Text { text } => parts.push(ContentPart::Text { text }),
            ContentBlock::Image { source } => parts.push(ContentPart::ImageUrl { image_url: image(source) }),
            ContentBlock::Document { source } => parts.push(document(&source).ok_or_else(|| {
                invalid("Only text documents (`source.type` `text`) can be sent through hoosh to this model.", at())
            })?),
            ContentBlock::ToolUse { id, name, input } if m.role == AnthropicRole::Assistant => {
                let arguments = serde_json::to_string(&input).unwrap_or_else(|_| "{}".into());
                calls.push(ToolCall { id, kind: ToolKind::Function, function: FunctionCall { name, arguments } });
            }
            ContentBlock::ToolResult { tool_use_id, content, is_error } if m.role == AnthropicRole::User => {
                let mut text = content.as_ref().map(tool_result_text).unwrap_or_default();
                if is_error == Some(true) {
                    text = format!("Error: {text}");
                }
                let mut msg = ChatMessage::text(Role::Tool, text);
                msg.tool_call_id = Some(tool_use_id);
                results.push(msg);
            }
            ContentBlock::ToolUse { .. } => {
                return Err(invalid("`tool_use` blocks belong in assistant turns.", at()));
            }
            ContentBlock::ToolResult { .. } => {
                return Err(invalid("`tool_result` blocks belong in user turns.", at()));
            }
            ContentBlock::Thinking { .. } | ContentBlock::RedactedThinking { .. } => {}
            ContentBlock::Unknown => {
                return Err(invalid(
                    "This content block type is not supported by hoosh; supported: text, image, document (text), \
                     tool_use, tool_result, thinking.",
                    format!("{}.type", at()),
                ));
            }
        }
    }
    out.extend(results);
    let content = match parts.as_slice() {
        [] => None,
        [ContentPart::Text { text }] => Some(MessageContent::Text(text.clone())),
        _ => Some(MessageContent::Parts(parts)),
    };
    match m.role {
        AnthropicRole::User | AnthropicRole::System => {
            let role = if m.role == AnthropicRole::System { Role::System } else { Role::User };
            if let Some(content) = content {
                out.push(ChatMessage { content: Some(content), ..ChatMessage::text(role, "") });
            }
        }
        AnthropicRole::Assistant => {
            if content.is_some() || !calls.is_empty() {
                out.push(ChatMessage {
                    content,
                    tool_calls: (!calls.is_empty()).then_some(calls),
                    ..ChatMessage::text(Role::Assistant, "")
                });
            }
        }
    }
    Ok(())
}

fn image(source: ImageSource) -> ImageUrl {
    let url = match source {
        ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        ImageSource::Url { url } => url,
    };
    ImageUrl { url, detail: None }
}

/// A plain-text document as a text part; PDFs and the rest have no
/// canonical form.
fn document(source: &Value) -> Option<ContentPart> {
    (source.get("type")?.as_str()? == "text")
        .then(|| source.get("data").and_then(Value::as_str))
        .flatten()
        .map(|text| ContentPart::Text { text: text.to_owned() })
}

fn tool_result_text(content: &TextOrParts<ContentBlock>) -> String {
    match content {
        TextOrParts::Text(t) => t.clone(),
        TextOrParts::Parts(blocks) => blocks
            .iter()
            .map(|b| match b {
                ContentBlock::Text { text } => text.as_str(),
                _ => "[non-text tool output omitted]",
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn tools(defs: &[ToolDef], dropped: &mut Vec<String>) -> Vec<Tool> {
    let mut out = Vec::with_capacity(defs.len());
    for t in defs {
        match t.kind.as_deref() {
            None | Some("custom") => out.push(Tool {
                kind: ToolKind::Function,
                function: FunctionDef {
                    name: t.name.clone(),
                    description: t.description.clone(),
                    parameters: (!t.input_schema.is_null()).then(|| t.input_schema.clone()),
                    strict: None,
                },
            }),
            Some(kind) => dropped.push(format!("tools[{kind}]")),
        }
    }
    out
}

fn tool_choice(choice: &AnthropicChoice) -> (Option<ToolChoice>, Option<bool>) {
    let serial = |d: &Option<bool>| d.filter(|&d| d).map(|_| false);
    match choice {
        AnthropicChoice::Auto { disable_parallel_tool_use } => {
            (Some(ToolChoice::Mode(ToolChoiceMode::Auto)), serial(disable_parallel_tool_use))
        }
        AnthropicChoice::Any { disable_parallel_tool_use } => {
            (Some(ToolChoice::Mode(ToolChoiceMode::Required)), serial(disable_parallel_tool_use))
        }
        AnthropicChoice::Tool { name, disable_parallel_tool_use } => (
            Some(ToolChoice::Named(NamedToolChoice {
                kind: ToolKind::Function,
                function: FunctionName { name: name.clone() },
            })),
            serial(disable_parallel_tool_use),
        ),
        AnthropicChoice::None => (Some(ToolChoice::Mode(ToolChoiceMode::None)), None),
    }
}

/// Extended thinking as an OpenAI-style effort.
fn reasoning_effort(thinking: &Value) -> Option<String> {
    let effort = match thinking.get("type").and_then(Value::as_str)? {
        "enabled" => match thinking.get("budget_tokens").and_then(Value::as_u64).unwrap_or(0) {
            0..4096 => "low",
            4096..16384 => "medium",
            _ => "high",
        },
        "adaptive" => "medium",
        _ => return None,
    };
    Some(effort.to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn decode_json(v: Value) -> Result<Decoded, ApiError> {
        decode(serde_json::from_value(v).unwrap())
    }

    /// What Claude Code sends, cut down: system blocks with cache_control,
    /// a tool, a tool round trip, thinking.
    #[test]
    fn a_claude_code_tool_round_trip_becomes_the_canonical_conversation() {
        let d = decode_json(json!({
            "model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": true,
            "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
                       {"type": "text", "text": "Be brief."}],
            "tools": [{"name": "Read", "description": "Read a file",
                       "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}},
                      {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}],
            "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
            "thinking": {"type": "enabled", "budget_tokens": 10000},
            "metadata": {"user_id": "{\"device\":\"x\"}"},
            "stop_sequences": ["END"], "top_k": 40,
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "read a.txt", "cache_control": {"type": "ephemeral"}}]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "I should read it", "signature": "sig"},
                    {"type": "text", "text": "Reading."},
                    {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "a.txt"}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "hello"}]},
                    {"type": "text", "text": "what does it say?"}]}
            ]
        }))
        .unwrap();
        let r = serde_json::to_value(&d.req).unwrap();
        assert_eq!(
            r,
            json!({
                "model": "claude-sonnet-4-5", "max_completion_tokens": 32000, "stream": true,
                "messages": [
                    {"role": "system", "content": "You are Claude Code.\n\nBe brief."},
                    {"role": "user", "content": "read a.txt"},
                    {"role": "assistant", "content": "Reading.", "tool_calls": [
                        {"id": "toolu_1", "type": "function", "function": {"name": "Read", "arguments": "{\"path\":\"a.txt\"}"}}]},
                    {"role": "tool", "content": "hello", "tool_call_id": "toolu_1"},
                    {"role": "user", "content": "what does it say?"}
                ],
                "tools": [{"type": "function", "function": {"name": "Read", "description": "Read a file",
                    "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}}],
                "tool_choice": "auto", "parallel_tool_calls": false,
                "reasoning_effort": "medium", "user": "{\"device\":\"x\"}", "stop": ["END"], "top_k": 40
            })
        );
        assert_eq!(d.dropped, ["tools[web_search_20250305]"]);
    }

    #[test]
    fn images_become_data_urls_and_errors_in_tool_results_are_marked() {
        let d = decode_json(json!({
            "model": "m", "max_tokens": 10,
            "messages": [{"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t", "content": "no such file", "is_error": true},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                {"type": "text", "text": "what is this?"}]}]
        }))
        .unwrap();
        let r = serde_json::to_value(&d.req.messages).unwrap();
        assert_eq!(
            r,
            json!([
                {"role": "tool", "content": "Error: no such file", "tool_call_id": "t"},
                {"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "text", "text": "what is this?"}]}
            ])
        );
    }

    #[test]
    fn what_cannot_be_expressed_is_refused_by_name() {
        let err = |v: Value| match decode_json(v) {
            Err(ApiError::InvalidRequest { param, .. }) => param.unwrap(),
            other => panic!("{:?}", other.map(|d| d.req)),
        };
        let base =
            |content: Value| json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": content}]});
        assert_eq!(err(base(json!([{"type": "server_tool_use", "id": "x"}]))), "messages[0].content[0].type");
        assert_eq!(
            err(base(
                json!([{"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}}])
            )),
            "messages[0].content[0]"
        );
        assert_eq!(
            err(base(json!([{"type": "tool_use", "id": "t", "name": "n", "input": {}}]))),
            "messages[0].content[0]"
        );
        assert_eq!(
            err(json!({"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "hi"}]})),
            "max_tokens"
        );
        assert_eq!(err(json!({"model": "m", "max_tokens": 5, "messages": []})), "messages");
    }
}
