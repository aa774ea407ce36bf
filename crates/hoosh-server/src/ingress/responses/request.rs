//! A Responses API request → the canonical (OpenAI chat) request.
//!
//! - `instructions` → a leading system message; `input` as a string → one
//!   user message; input items in order: messages (`system`, `developer`,
//!   `user`, `assistant`; `input_text` / `output_text` / `input_image`
//!   parts; an item without `type` is a message), `function_call` →
//!   an assistant tool call (consecutive calls join one assistant turn),
//!   `function_call_output` → a tool message. `reasoning` items are left
//!   out (encrypted reasoning means something only to OpenAI).
//! - Function tools → function tools. A `namespace` tool's functions are
//!   flattened to `<namespace>__<name>` ([`Tools`] maps calls back); hosted
//!   tools (`web_search`, `file_search`, …) cannot run anywhere but at
//!   OpenAI: they are left out and named in [`Decoded::dropped`].
//! - `max_output_tokens` → the cap, `text.format` → `response_format`,
//!   `reasoning.effort` → `reasoning_effort`, `tool_choice`,
//!   `parallel_tool_calls`, `temperature`, `top_p`, `user`, `seed` carried.
//!
//! Refused with a 400 naming the field: an item or part kind hoosh does not
//! know, a function call without a `call_id`.

use hoosh_types::content::TextOrParts;
use hoosh_types::openai::{
    ChatCompletionRequest, ChatMessage, ContentPart, FunctionCall, FunctionDef, FunctionName, ImageUrl,
    JsonSchemaFormat, MessageContent, NamedToolChoice, ResponseFormat, Role, Tool, ToolCall, ToolChoice,
    ToolChoiceMode, ToolKind,
};
use hoosh_types::responses::ResponsesRequest;
use serde_json::Value;

use crate::error::ApiError;

/// Separator of a namespace and a function name in a flattened tool name.
pub const NAMESPACE_SEPARATOR: &str = "__";

/// The canonical request, what was left out, and how to name tool calls
/// back in the client's terms.
pub struct Decoded {
    pub req: ChatCompletionRequest,
    pub dropped: Vec<String>,
    pub tools: Tools,
}

/// The namespaces of flattened tools, to map `ns__name` calls back.
#[derive(Debug, Clone, Default)]
pub struct Tools {
    namespaces: Vec<String>,
}

impl Tools {
    /// `(namespace, name)` of a canonical tool call name.
    pub fn split<'a>(&self, flat: &'a str) -> (Option<&str>, &'a str) {
        for ns in &self.namespaces {
            if let Some(name) = flat.strip_prefix(ns.as_str()).and_then(|r| r.strip_prefix(NAMESPACE_SEPARATOR)) {
                return (Some(ns), name);
            }
        }
        (None, flat)
    }
}

fn invalid(message: impl Into<String>, param: impl Into<String>) -> ApiError {
    ApiError::invalid(message, Some(param.into()))
}

/// `previous`: the conversation a stored response left (its input and
/// output, as canonical messages), put before this request's input.
pub fn decode(req: ResponsesRequest, previous: Vec<ChatMessage>) -> Result<Decoded, ApiError> {
    let mut dropped = Vec::new();
    let mut messages = Vec::new();
    if let Some(instructions) = req.instructions.as_deref().filter(|s| !s.is_empty()) {
        messages.push(ChatMessage::text(Role::System, instructions));
    }
    messages.extend(previous);
    match &req.input {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => messages.push(ChatMessage::text(Role::User, text.as_str())),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                input_item(item, i, &mut messages, &mut dropped)?;
            }
        }
        Some(_) => return Err(invalid("`input` must be a string or a list of input items.", "input")),
    }
    if !messages.iter().any(|m| m.role != Role::System) {
        return Err(invalid("`input` must contain at least one item.", "input"));
    }
    let mut tools = Tools::default();
    let defs = tool_defs(req.tools.as_deref().unwrap_or_default(), &mut tools, &mut dropped)?;
    let tool_choice = match (&req.tool_choice, defs.is_empty()) {
        (Some(choice), false) => tool_choice(choice),
        _ => None,
    };
    let canonical = ChatCompletionRequest {
        model: req.model,
        messages,
        max_completion_tokens: req.max_output_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        user: req.user,
        seed: req.seed,
        stream: req.stream,
        parallel_tool_calls: req.parallel_tool_calls.filter(|_| !defs.is_empty()),
        tools: (!defs.is_empty()).then_some(defs),
        tool_choice,
        response_format: req.text.as_ref().and_then(|t| response_format(t.get("format")?)),
        reasoning_effort: req
            .reasoning
            .as_ref()
            .and_then(|r| r.get("effort")?.as_str())
            .filter(|e| *e != "none")
            .map(str::to_owned),
        ..ChatCompletionRequest::default()
    };
    Ok(Decoded { req: canonical, dropped, tools })
}

/// One input item onto the canonical conversation.
fn input_item(item: &Value, i: usize, out: &mut Vec<ChatMessage>, dropped: &mut Vec<String>) -> Result<(), ApiError> {
    let at = |f: &str| format!("input[{i}]{f}");
    let kind = item.get("type").and_then(Value::as_str).unwrap_or("message");
    match kind {
        "message" => {
            let role = match item.get("role").and_then(Value::as_str) {
                Some("user") => Role::User,
                Some("assistant") => Role::Assistant,
                Some("system") => Role::System,
                Some("developer") => Role::Developer,
                _ => return Err(invalid("A message needs `role`: user, assistant, system or developer.", at(".role"))),
            };
            let content = message_content(item.get("content"), &at(".content"))?;
            out.push(ChatMessage { content: Some(content), ..ChatMessage::text(role, "") });
        }
        "function_call" => {
            let field = |name: &str| item.get(name).and_then(Value::as_str);
            let call_id =
                field("call_id").ok_or_else(|| invalid("A function call needs `call_id`.", at(".call_id")))?;
            let name = match (field("namespace"), field("name")) {
                (Some(ns), Some(name)) => format!("{ns}{NAMESPACE_SEPARATOR}{name}"),
                (None, Some(name)) => name.to_owned(),
                (_, None) => return Err(invalid("A function call needs `name`.", at(".name"))),
            };
            let call = ToolCall {
                id: call_id.to_owned(),
                kind: ToolKind::Function,
                function: FunctionCall { name, arguments: field("arguments").unwrap_or("{}").to_owned() },
            };
            // Parallel calls arrive as consecutive items: one assistant turn.
            match out.last_mut() {
                Some(last) if last.role == Role::Assistant && last.tool_calls.is_some() => {
                    last.tool_calls.get_or_insert_with(Vec::new).push(call);
                }
                _ => out.push(ChatMessage {
                    content: None,
                    tool_calls: Some(vec![call]),
                    ..ChatMessage::text(Role::Assistant, "")
                }),
            }
        }
        "function_call_output" => {
            let call_id = item
                .get("call_id")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("A function call output needs `call_id`.", at(".call_id")))?;
            let text = match item.get("output") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => {
                    parts.iter().filter_map(|p| p.get("text")?.as_str()).collect::<Vec<_>>().join("\n")
                }
                Some(other) => other.to_string(),
                None => String::new(),
            };
            let mut msg = ChatMessage::text(Role::Tool, text);
            msg.tool_call_id = Some(call_id.to_owned());
            out.push(msg);
        }
        "reasoning" => {}
        "item_reference" => {
            return Err(invalid("`item_reference` items are not supported; send the items themselves.", at(".type")));
        }
        other => dropped.push(format!("input[{other}]")),
    }
    Ok(())
}

fn message_content(content: Option<&Value>, at: &str) -> Result<MessageContent, ApiError> {
    match content {
        Some(Value::String(s)) => Ok(MessageContent::Text(s.clone())),
        Some(Value::Array(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for (j, p) in parts.iter().enumerate() {
                let kind = p.get("type").and_then(Value::as_str).unwrap_or_default();
                match kind {
                    "input_text" | "output_text" | "text" | "refusal" => {
                        let text =
                            p.get("text").or_else(|| p.get("refusal")).and_then(Value::as_str).unwrap_or_default();
                        out.push(ContentPart::Text { text: text.to_owned() });
                    }
                    "input_image" => {
                        let url = p.get("image_url").and_then(Value::as_str).ok_or_else(|| {
                            invalid(
                                "Only images given by `image_url` (a URL or data URL) are supported.",
                                format!("{at}[{j}]"),
                            )
                        })?;
                        let detail = p.get("detail").and_then(Value::as_str).map(str::to_owned);
                        out.push(ContentPart::ImageUrl { image_url: ImageUrl { url: url.to_owned(), detail } });
                    }
                    _ => {
                        return Err(invalid(
                            format!(
                                "Content part type `{kind}` is not supported; supported: input_text, output_text, input_image."
                            ),
                            format!("{at}[{j}].type"),
                        ));
                    }
                }
            }
            Ok(match out.as_slice() {
                [ContentPart::Text { text }] => MessageContent::Text(text.clone()),
                _ => TextOrParts::Parts(out),
            })
        }
        _ => Err(invalid("A message needs `content`: a string or a list of parts.", at)),
    }
}

fn function_tool(t: &Value, name: String) -> Tool {
    Tool {
        kind: ToolKind::Function,
        function: FunctionDef {
            name,
            description: t.get("description").and_then(Value::as_str).map(str::to_owned),
            parameters: t.get("parameters").filter(|p| !p.is_null()).cloned(),
            strict: t.get("strict").and_then(Value::as_bool),
        },
    }
}

fn tool_defs(defs: &[Value], tools: &mut Tools, dropped: &mut Vec<String>) -> Result<Vec<Tool>, ApiError> {
    let mut out = Vec::new();
    for (i, t) in defs.iter().enumerate() {
        let kind = t.get("type").and_then(Value::as_str).unwrap_or("function");
        let name = || {
            t.get("name")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| invalid("A function tool needs `name`.", format!("tools[{i}].name")))
        };
        match kind {
            "function" => out.push(function_tool(t, name()?)),
            "namespace" => {
                let ns = name()?;
                for inner in t.get("tools").and_then(Value::as_array).into_iter().flatten() {
                    match (
                        inner.get("type").and_then(Value::as_str).unwrap_or("function"),
                        inner.get("name").and_then(Value::as_str),
                    ) {
                        ("function", Some(n)) => {
                            out.push(function_tool(inner, format!("{ns}{NAMESPACE_SEPARATOR}{n}")))
                        }
                        (other, _) => dropped.push(format!("tools[{ns}.{other}]")),
                    }
                }
                tools.namespaces.push(ns);
            }
            other => dropped.push(format!("tools[{other}]")),
        }
    }
    Ok(out)
}

fn tool_choice(choice: &Value) -> Option<ToolChoice> {
    match choice {
        Value::String(s) => match s.as_str() {
            "none" => Some(ToolChoice::Mode(ToolChoiceMode::None)),
            "auto" => Some(ToolChoice::Mode(ToolChoiceMode::Auto)),
            "required" => Some(ToolChoice::Mode(ToolChoiceMode::Required)),
            _ => None,
        },
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            let name = o.get("name")?.as_str()?.to_owned();
            Some(ToolChoice::Named(NamedToolChoice { kind: ToolKind::Function, function: FunctionName { name } }))
        }
        _ => None,
    }
}

fn response_format(format: &Value) -> Option<ResponseFormat> {
    match format.get("type")?.as_str()? {
        "json_object" => Some(ResponseFormat::JsonObject),
        "json_schema" => Some(ResponseFormat::JsonSchema {
            json_schema: JsonSchemaFormat {
                name: format.get("name").and_then(Value::as_str).unwrap_or("response").to_owned(),
                description: format.get("description").and_then(Value::as_str).map(str::to_owned),
                schema: format.get("schema").cloned(),
                strict: format.get("strict").and_then(Value::as_bool),
            },
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn decode_json(v: Value) -> Result<Decoded, ApiError> {
        decode(serde_json::from_value(v).unwrap(), Vec::new())
    }

    /// What Codex sends, cut down: developer messages, input_text parts, a
    /// function tool, a namespace tool, web_search, a tool round trip.
    #[test]
    fn a_codex_round_trip_becomes_the_canonical_conversation() {
        let d = decode_json(json!({
            "model": "gpt-5-codex", "stream": true, "store": false, "parallel_tool_calls": true,
            "tool_choice": "auto", "reasoning": {"effort": "high", "summary": "auto"},
            "include": ["reasoning.encrypted_content"], "prompt_cache_key": "abc",
            "tools": [
                {"type": "function", "name": "shell", "description": "Run a command", "strict": false,
                 "parameters": {"type": "object", "properties": {"command": {"type": "array"}}}},
                {"type": "namespace", "name": "mcp", "description": "MCP server",
                 "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]},
                {"type": "web_search"}
            ],
            "input": [
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex."}]},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list files"}]},
                {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"},
                {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "shell", "arguments": "{\"command\":[\"ls\"]}"},
                {"type": "function_call", "id": "fc_2", "call_id": "call_2", "namespace": "mcp", "name": "lookup", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "a.txt"},
                {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "found"}]}
            ]
        }))
        .unwrap();
        assert_eq!(
            serde_json::to_value(&d.req).unwrap(),
            json!({
                "model": "gpt-5-codex", "stream": true,
                "messages": [
                    {"role": "developer", "content": "You are Codex."},
                    {"role": "user", "content": "list files"},
                    {"role": "assistant", "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "shell", "arguments": "{\"command\":[\"ls\"]}"}},
                        {"id": "call_2", "type": "function", "function": {"name": "mcp__lookup", "arguments": "{}"}}]},
                    {"role": "tool", "content": "a.txt", "tool_call_id": "call_1"},
                    {"role": "tool", "content": "found", "tool_call_id": "call_2"}
                ],
                "tools": [
                    {"type": "function", "function": {"name": "shell", "description": "Run a command", "strict": false,
                        "parameters": {"type": "object", "properties": {"command": {"type": "array"}}}}},
                    {"type": "function", "function": {"name": "mcp__lookup", "parameters": {"type": "object"}}}
                ],
                "tool_choice": "auto", "parallel_tool_calls": true, "reasoning_effort": "high"
            })
        );
        assert_eq!(d.dropped, ["tools[web_search]"]);
        assert_eq!(d.tools.split("mcp__lookup"), (Some("mcp"), "lookup"));
        assert_eq!(d.tools.split("shell"), (None, "shell"));
    }

    #[test]
    fn a_string_input_instructions_and_a_json_schema_format() {
        let d = decode_json(json!({"model": "m", "input": "hi", "instructions": "Be brief.", "max_output_tokens": 50,
            "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": true}}}))
        .unwrap();
        let r = serde_json::to_value(&d.req).unwrap();
        assert_eq!(
            r["messages"],
            json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}])
        );
        assert_eq!(r["max_completion_tokens"], 50);
        assert_eq!(r["response_format"]["json_schema"]["name"], "out");
    }

    #[test]
    fn what_cannot_be_expressed_is_refused_by_name() {
        let param = |v: Value| match decode_json(v) {
            Err(ApiError::InvalidRequest { param, .. }) => param.unwrap(),
            Ok(_) => panic!("accepted"),
            Err(e) => panic!("{e:?}"),
        };
        assert_eq!(param(json!({"model": "m", "input": [{"role": "robot", "content": "x"}]})), "input[0].role");
        assert_eq!(
            param(
                json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]})
            ),
            "input[0].content[0].type"
        );
        assert_eq!(param(json!({"model": "m", "input": [{"type": "function_call", "name": "f"}]})), "input[0].call_id");
        assert_eq!(param(json!({"model": "m", "input": []})), "input");
        assert_eq!(param(json!({"model": "m", "input": 5})), "input");
    }
}
