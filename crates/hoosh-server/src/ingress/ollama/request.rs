//! Ollama's `/api/chat` and `/api/generate` requests → the canonical
//! (OpenAI chat) request.
//!
//! - Messages keep their roles; `images` (base64) become image parts; an
//!   assistant's `tool_calls` (arguments as an object) become canonical
//!   calls with ids made here (`call_<n>`), and each `tool` message answers
//!   the oldest call still open (the one named by `tool_name` when given),
//!   since Ollama's wire has no call ids.
//! - `/api/generate`: `system`, then `prompt` (+ `images`) as the user turn.
//! - Options: `num_predict` → the output cap (negative: none, so the
//!   gateway's default applies), `temperature`, `top_p`, `top_k` (passed
//!   through), `stop`, `seed`, `presence_penalty`, `frequency_penalty`;
//!   the rest (`num_ctx`, `mirostat`, …) are about the local runtime and
//!   are ignored. `format: "json"` or a schema → `response_format`;
//!   `think` → `reasoning_effort`.
//! - `stream` defaults to true, as in Ollama.

use std::collections::VecDeque;

use hoosh_types::content::{OneOrMany, TextOrParts};
use hoosh_types::openai::{
    ChatCompletionRequest, ChatMessage, ContentPart, FunctionCall, FunctionDef, ImageUrl, JsonSchemaFormat,
    MessageContent, ResponseFormat, Role, Tool, ToolCall, ToolKind,
};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// What `/api/chat` and `/api/generate` share: output format, options,
/// streaming (on unless `false`) and thinking.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Knobs {
    #[serde(default)]
    pub format: Option<Value>,
    #[serde(default)]
    pub options: Option<Map<String, Value>>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub think: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    #[serde(default)]
    pub messages: Vec<Message>,
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
    #[serde(flatten)]
    pub knobs: Knobs,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct GenerateRequest {
    pub model: String,
    #[serde(default)]
    pub prompt: String,
    #[serde(default)]
    pub system: Option<String>,
    #[serde(default)]
    pub images: Option<Vec<String>>,
    #[serde(flatten)]
    pub knobs: Knobs,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Message {
    pub role: String,
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub images: Option<Vec<String>>,
    #[serde(default)]
    pub tool_calls: Option<Vec<Value>>,
    #[serde(default)]
    pub tool_name: Option<String>,
}

fn invalid(message: impl Into<String>, param: impl Into<String>) -> ApiError {
    ApiError::invalid(message, Some(param.into()))
}

/// `content` plus base64 `images` as canonical content.
fn content(text: &str, images: Option<&Vec<String>>) -> MessageContent {
    let images = images.map(Vec::as_slice).unwrap_or_default();
    if images.is_empty() {
        return MessageContent::Text(text.to_owned());
    }
    let mut parts: Vec<ContentPart> = images
        .iter()
        .map(|b64| {
            let mime = if b64.starts_with("iVBOR") { "image/png" } else { "image/jpeg" };
            ContentPart::ImageUrl { image_url: ImageUrl { url: format!("data:{mime};base64,{b64}"), detail: None } }
        })
        .collect();
    if !text.is_empty() {
        parts.push(ContentPart::Text { text: text.to_owned() });
    }
    TextOrParts::Parts(parts)
}

pub fn chat(req: ChatRequest) -> Result<ChatCompletionRequest, ApiError> {
    if req.messages.is_empty() {
        return Err(invalid("`messages` must contain at least one message.", "messages"));
    }
    let mut messages = Vec::with_capacity(req.messages.len());
    // Calls made and not yet answered: (id, name).
    let mut open: VecDeque<(String, String)> = VecDeque::new();
    let mut made = 0usize;
    for (i, m) in req.messages.iter().enumerate() {
        let role = match m.role.as_str() {
            "system" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" => Role::Tool,
            other => {
                return Err(invalid(
                    format!("Unknown role `{other}`; expected system, user, assistant or tool."),
                    format!("messages[{i}].role"),
                ));
            }
        };
        let mut msg =
            ChatMessage { content: Some(content(&m.content, m.images.as_ref())), ..ChatMessage::text(role, "") };
        if role == Role::Assistant
            && let Some(calls) = m.tool_calls.as_ref().filter(|c| !c.is_empty())
        {
            let mut out = Vec::with_capacity(calls.len());
            for call in calls {
                let f = call.get("function").unwrap_or(call);
                let name = f.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
                let arguments = match f.get("arguments") {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => "{}".into(),
                };
                let id = call.get("id").and_then(Value::as_str).map_or_else(|| format!("call_{made}"), str::to_owned);
                made += 1;
                open.push_back((id.clone(), name.clone()));
                out.push(ToolCall { id, kind: ToolKind::Function, function: FunctionCall { name, arguments } });
            }
            if m.content.is_empty() {
                msg.content = None;
            }
            msg.tool_calls = Some(out);
        }
        if role == Role::Tool {
            let at = m.tool_name.as_ref().and_then(|n| open.iter().position(|(_, name)| name == n)).unwrap_or(0);
            let (id, _) = open.remove(at).ok_or_else(|| {
                invalid("A tool message must follow an assistant message that called a tool.", format!("messages[{i}]"))
            })?;
            msg.tool_call_id = Some(id);
        }
        messages.push(msg);
    }
    let tools = tools(req.tools.as_deref().unwrap_or_default())?;
    let canonical = ChatCompletionRequest {
        model: req.model,
        messages,
        tools: (!tools.is_empty()).then_some(tools),
        ..ChatCompletionRequest::default()
    };
    Ok(with_knobs(canonical, &req.knobs))
}

pub fn generate(req: GenerateRequest) -> ChatCompletionRequest {
    let mut messages = Vec::new();
    if let Some(system) = req.system.as_deref().filter(|s| !s.is_empty()) {
        messages.push(ChatMessage::text(Role::System, system));
    }
    messages.push(ChatMessage {
        content: Some(content(&req.prompt, req.images.as_ref())),
        ..ChatMessage::text(Role::User, "")
    });
    with_knobs(ChatCompletionRequest { model: req.model, messages, ..ChatCompletionRequest::default() }, &req.knobs)
}

fn with_knobs(mut req: ChatCompletionRequest, knobs: &Knobs) -> ChatCompletionRequest {
    req.stream = knobs.stream.unwrap_or(true);
    req.response_format = knobs.format.as_ref().and_then(response_format);
    req.reasoning_effort = knobs.think.as_ref().and_then(effort);
    let Some(o) = &knobs.options else { return req };
    let f = |k: &str| o.get(k).and_then(Value::as_f64);
    req.max_completion_tokens = o.get("num_predict").and_then(Value::as_i64).and_then(|n| u32::try_from(n).ok());
    req.temperature = f("temperature");
    req.top_p = f("top_p");
    req.presence_penalty = f("presence_penalty");
    req.frequency_penalty = f("frequency_penalty");
    req.seed = o.get("seed").and_then(Value::as_i64);
    req.stop = match o.get("stop") {
        Some(Value::String(s)) => Some(OneOrMany::One(s.clone())),
        Some(Value::Array(a)) => {
            Some(OneOrMany::Many(a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()))
        }
        _ => None,
    };
    if let Some(k) = o.get("top_k").filter(|k| k.is_number()) {
        req.extra.insert("top_k".into(), k.clone());
    }
    req
}

fn tools(defs: &[Value]) -> Result<Vec<Tool>, ApiError> {
    defs.iter()
        .enumerate()
        .map(|(i, t)| {
            let f =
                t.get("function").ok_or_else(|| invalid("A tool needs `function`.", format!("tools[{i}].function")))?;
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("A tool function needs `name`.", format!("tools[{i}].function.name")))?;
            Ok(Tool {
                kind: ToolKind::Function,
                function: FunctionDef {
                    name: name.to_owned(),
                    description: f.get("description").and_then(Value::as_str).map(str::to_owned),
                    parameters: f.get("parameters").cloned(),
                    strict: None,
                },
            })
        })
        .collect()
}

fn response_format(format: &Value) -> Option<ResponseFormat> {
    match format {
        Value::String(s) if s == "json" => Some(ResponseFormat::JsonObject),
        Value::Object(_) => Some(ResponseFormat::JsonSchema {
            json_schema: JsonSchemaFormat {
                name: "response".into(),
                description: None,
                schema: Some(format.clone()),
                strict: None,
            },
        }),
        _ => None,
    }
}

fn effort(think: &Value) -> Option<String> {
    match think {
        Value::Bool(true) => Some("medium".into()),
        Value::String(s) if matches!(s.as_str(), "low" | "medium" | "high") => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_tool_round_trip_gets_call_ids_and_options_map() {
        let req: ChatRequest = serde_json::from_value(json!({
            "model": "llama3.2", "stream": false, "think": true, "format": "json",
            "options": {"num_predict": 64, "temperature": 0.2, "top_k": 20, "stop": ["END"], "seed": 7, "num_ctx": 8192},
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "weather?", "images": ["iVBORw0KGgo="]},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                    {"function": {"name": "get_time", "arguments": {}}}]},
                {"role": "tool", "content": "12:00", "tool_name": "get_time"},
                {"role": "tool", "content": "sunny"}
            ]
        }))
        .unwrap();
        let c = serde_json::to_value(chat(req).unwrap()).unwrap();
        assert_eq!(
            c,
            json!({
                "model": "llama3.2", "max_completion_tokens": 64, "temperature": 0.2, "seed": 7, "stop": ["END"],
                "top_k": 20, "response_format": {"type": "json_object"}, "reasoning_effort": "medium",
                "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                        {"type": "text", "text": "weather?"}]},
                    {"role": "assistant", "tool_calls": [
                        {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                        {"id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
                    {"role": "tool", "content": "12:00", "tool_call_id": "call_1"},
                    {"role": "tool", "content": "sunny", "tool_call_id": "call_0"}
                ]
            })
        );
    }

    #[test]
    fn generate_is_system_then_prompt_and_streams_by_default() {
        let req: GenerateRequest =
            serde_json::from_value(json!({"model": "m", "prompt": "Why is the sky blue?", "system": "Be brief.", "options": {"num_predict": -1}})).unwrap();
        let c = generate(req);
        assert!(c.stream);
        assert_eq!(c.max_completion_tokens, None, "-1: no cap of the client's; the gateway's default applies");
        assert_eq!(
            serde_json::to_value(&c.messages).unwrap()[1],
            json!({"role": "user", "content": "Why is the sky blue?"})
        );
    }

    #[test]
    fn a_tool_answer_without_a_call_and_an_unknown_role_are_refused() {
        let refused = |messages: Value| match chat(
            serde_json::from_value(json!({"model": "m", "messages": messages})).unwrap(),
        ) {
            Err(ApiError::InvalidRequest { param, .. }) => param.unwrap(),
            other => panic!("{:?}", other.map(|_| ())),
        };
        assert_eq!(refused(json!([{"role": "tool", "content": "x"}])), "messages[0]");
        assert_eq!(refused(json!([{"role": "robot", "content": "x"}])), "messages[0].role");
    }
}
