//! Canonical answers → Responses API objects: the `response` object, its
//! output items (the provider's reasoning text as a `reasoning` item's
//! summary, a `message` with `output_text`, then one `function_call` per
//! tool call, namespaced calls mapped back) and its usage.

use hoosh_types::openai::{ChatCompletionResponse, FinishReason, Usage};
use hoosh_types::responses::ResponsesRequest;
use serde_json::{Value, json};

use super::request::Tools;

/// A fresh id with Responses' prefix (`resp`, `msg`, `fc`).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// What a response object repeats of its request, fixed when it starts.
#[derive(Debug, Clone)]
pub struct Echo {
    pub id: String,
    pub created_at: u64,
    pub model: String,
    fields: Value,
}

impl Echo {
    pub fn new(req: &ResponsesRequest) -> Echo {
        let fields = json!({
            "instructions": req.instructions,
            "max_output_tokens": req.max_output_tokens,
            "parallel_tool_calls": req.parallel_tool_calls.unwrap_or(true),
            "previous_response_id": req.previous_response_id,
            "reasoning": req.reasoning.clone().unwrap_or_else(|| json!({"effort": null, "summary": null})),
            "store": req.store.unwrap_or(true),
            "temperature": req.temperature,
            "text": req.text.clone().unwrap_or_else(|| json!({"format": {"type": "text"}})),
            "tool_choice": req.tool_choice.clone().unwrap_or_else(|| json!("auto")),
            "tools": req.tools.clone().unwrap_or_default(),
            "top_p": req.top_p,
            "truncation": "disabled",
            "user": req.user,
            "metadata": req.metadata.clone().unwrap_or_default(),
        });
        Echo { id: new_id("resp"), created_at: hoosh_types::unix_now(), model: req.model.clone(), fields }
    }

    /// The response object in `status` with `output` and `usage`.
    pub fn object(&self, status: &str, output: &[Value], usage: Option<Value>, extra: Option<(&str, Value)>) -> Value {
        let mut obj = json!({
            "id": self.id, "object": "response", "created_at": self.created_at, "status": status,
            "model": self.model, "output": output, "usage": usage,
            "error": null, "incomplete_details": null,
        });
        if let (Value::Object(o), Value::Object(f)) = (&mut obj, &self.fields) {
            o.extend(f.clone());
            if let Some((k, v)) = extra {
                o.insert(k.to_owned(), v);
            }
        }
        obj
    }
}

pub fn usage(u: &Usage) -> Value {
    let cached = u.prompt_tokens_details.map_or(0, |d| d.cached_tokens);
    let reasoning = u.completion_tokens_details.map_or(0, |d| d.reasoning_tokens);
    json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": u.prompt_tokens + u.completion_tokens,
    })
}

/// A reasoning item: the provider's reasoning text as its summary.
pub fn reasoning_item(id: &str, text: &str) -> Value {
    json!({"type": "reasoning", "id": id, "summary": [{"type": "summary_text", "text": text}]})
}

pub fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({"type": "message", "id": id, "status": status, "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]})
}

pub fn call_item(id: &str, call_id: &str, flat_name: &str, arguments: &str, status: &str, tools: &Tools) -> Value {
    let (namespace, name) = tools.split(flat_name);
    let mut item = json!({"type": "function_call", "id": id, "call_id": call_id, "name": name,
        "arguments": arguments, "status": status});
    if let Some(ns) = namespace {
        item["namespace"] = json!(ns);
    }
    item
}

/// `("completed", None)`, or `("incomplete", {"reason": …})` when the cap cut it.
pub fn status_of(finish: Option<FinishReason>) -> (&'static str, Option<Value>) {
    match finish {
        Some(FinishReason::Length) => ("incomplete", Some(json!({"reason": "max_output_tokens"}))),
        Some(FinishReason::ContentFilter) => ("incomplete", Some(json!({"reason": "content_filter"}))),
        _ => ("completed", None),
    }
}

/// The whole response object for a canonical answer.
pub fn encode(resp: &ChatCompletionResponse, echo: &Echo, tools: &Tools) -> Value {
    let mut output = Vec::new();
    let choice = resp.choices.first();
    if let Some(c) = choice {
        let m = &c.message;
        if let Some(thinking) = m.reasoning_content.as_deref().filter(|t| !t.is_empty()) {
            output.push(reasoning_item(&new_id("rs"), thinking));
        }
        if let Some(text) = m.content.as_deref().or(m.refusal.as_deref()).filter(|t| !t.is_empty()) {
            output.push(message_item(&new_id("msg"), text, "completed"));
        }
        for call in m.tool_calls.iter().flatten() {
            output.push(call_item(
                &new_id("fc"),
                &call.id,
                &call.function.name,
                &call.function.arguments,
                "completed",
                tools,
            ));
        }
    }
    let (status, details) = status_of(choice.and_then(|c| c.finish_reason));
    let usage = resp.usage.as_ref().map(usage);
    echo.object(status, &output, usage, details.map(|d| ("incomplete_details", d)))
}

/// The text a response object's output says (its `output_text` parts).
pub fn output_text(output: &[Value]) -> String {
    output
        .iter()
        .filter(|i| i["type"] == "message")
        .flat_map(|i| i["content"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p["text"].as_str().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use hoosh_types::openai::{Choice, FunctionCall, ResponseMessage, ToolCall, ToolKind};

    use super::*;

    #[test]
    fn text_and_a_namespaced_call_become_output_items() {
        let req: ResponsesRequest = serde_json::from_value(json!({"model": "gpt-5", "input": "x",
            "tools": [{"type": "namespace", "name": "mcp", "tools": [{"type": "function", "name": "lookup"}]}]}))
        .unwrap();
        let decoded = super::super::request::decode(req.clone(), Vec::new()).unwrap();
        let mut msg = ResponseMessage::assistant(Some("Looking.".into()));
        msg.tool_calls = Some(vec![ToolCall {
            id: "call_7".into(),
            kind: ToolKind::Function,
            function: FunctionCall { name: "mcp__lookup".into(), arguments: "{}".into() },
        }]);
        let resp = ChatCompletionResponse {
            id: "c".into(),
            object: "chat.completion".into(),
            created: 0,
            model: "gpt-5".into(),
            choices: vec![Choice {
                index: 0,
                message: msg,
                finish_reason: Some(FinishReason::ToolCalls),
                logprobs: None,
            }],
            usage: Some(Usage::new(10, 4)),
            system_fingerprint: None,
            native: None,
        };
        let out = encode(&resp, &Echo::new(&req), &decoded.tools);
        assert_eq!(out["object"], "response");
        assert_eq!(out["status"], "completed");
        assert_eq!(out["output"][0]["content"][0]["text"], "Looking.");
        let call = &out["output"][1];
        assert_eq!((call["name"].as_str(), call["namespace"].as_str()), (Some("lookup"), Some("mcp")));
        assert_eq!(call["call_id"], "call_7");
        assert_eq!(out["usage"]["total_tokens"], 14);
        assert_eq!(out["store"], true, "the API's default");
    }
}
