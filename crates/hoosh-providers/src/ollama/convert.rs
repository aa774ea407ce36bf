//! Canonical request → Ollama `/api/chat` and `/api/embed` bodies, and
//! Ollama's answers (whole, or NDJSON line by line) → canonical responses.
//! Pure functions; the HTTP calls live in `client.rs`.

use std::collections::HashMap;

use hoosh_core::params::DroppedParams;
use hoosh_core::{EmbedRequest, ErrorKind, ProviderError};
use hoosh_types::content::TextOrParts;
use hoosh_types::openai::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, ChatMessage, Choice, ContentPart, Delta,
    FinishReason, FunctionCall, FunctionCallDelta, MessageContent, ResponseFormat, ResponseMessage, Role, ToolCall,
    ToolCallDelta, ToolChoice, ToolChoiceMode, ToolKind, Usage,
};
use hoosh_types::unix_now;
use serde_json::Value;

use super::wire;

/// The body for `/api/chat`. Parameters in `dropped` are left out.
///
/// Ollama has no `tool_choice`: `"none"` is honoured by not offering the
/// tools at all; `"required"` and a named tool cannot be expressed, so the
/// model decides as with `"auto"`.
pub fn chat_body(
    req: &ChatCompletionRequest,
    dropped: &DroppedParams,
    stream: bool,
) -> Result<wire::ChatRequest, ProviderError> {
    let keep = |name: &str| !dropped.contains(name);
    let tools_refused = keep("tool_choice") && req.tool_choice == Some(ToolChoice::Mode(ToolChoiceMode::None));
    let tools = req.tools.as_ref().filter(|t| keep("tools") && !t.is_empty() && !tools_refused).map(|tools| {
        tools
            .iter()
            .map(|t| wire::Tool {
                kind: "function",
                function: wire::FunctionDef {
                    name: t.function.name.clone(),
                    description: t.function.description.clone(),
                    parameters: t.function.parameters.clone(),
                },
            })
            .collect()
    });
    let format = req.response_format.as_ref().filter(|_| keep("response_format")).and_then(format);
    let keep_alive = req.extra.get("keep_alive").filter(|_| keep("keep_alive")).cloned();
    Ok(wire::ChatRequest {
        model: req.model.clone(),
        messages: messages(&req.messages)?,
        stream,
        tools,
        format,
        options: options(req, dropped),
        keep_alive,
    })
}

fn options(req: &ChatCompletionRequest, dropped: &DroppedParams) -> wire::Options {
    fn kept<T: Clone>(dropped: &DroppedParams, name: &str, v: &Option<T>) -> Option<T> {
        if dropped.contains(name) { None } else { v.clone() }
    }
    wire::Options {
        temperature: kept(dropped, "temperature", &req.temperature),
        top_p: kept(dropped, "top_p", &req.top_p),
        seed: kept(dropped, "seed", &req.seed),
        stop: kept(dropped, "stop", &req.stop).map(|s| s.to_vec()).filter(|s| !s.is_empty()),
        num_predict: req.output_cap(),
        presence_penalty: kept(dropped, "presence_penalty", &req.presence_penalty),
        frequency_penalty: kept(dropped, "frequency_penalty", &req.frequency_penalty),
    }
}

/// `json_object` becomes Ollama's JSON mode; a schema is sent as is, which
/// Ollama enforces with a grammar.
fn format(rf: &ResponseFormat) -> Option<Value> {
    match rf {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => Some(Value::String("json".into())),
        ResponseFormat::JsonSchema { json_schema } => {
            Some(json_schema.schema.clone().unwrap_or_else(|| Value::String("json".into())))
        }
    }
}

fn messages(msgs: &[ChatMessage]) -> Result<Vec<wire::Message>, ProviderError> {
    // Ollama matches tool results to calls by function name, not by id, so
    // the name is recovered from the assistant turn that made the call.
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    let mut out = Vec::with_capacity(msgs.len());
    for (i, m) in msgs.iter().enumerate() {
        let (content, images) = match &m.content {
            Some(c) => content(c, i)?,
            None => (String::new(), Vec::new()),
        };
        let tool_calls = match &m.tool_calls {
            Some(calls) if !calls.is_empty() => {
                for c in calls {
                    call_names.insert(c.id.as_str(), c.function.name.as_str());
                }
                Some(calls.iter().map(tool_call).collect::<Result<Vec<_>, _>>()?)
            }
            _ => None,
        };
        let tool_name = match m.role {
            Role::Tool => m
                .tool_call_id
                .as_deref()
                .and_then(|id| call_names.get(id).copied())
                .or(m.name.as_deref())
                .map(str::to_owned),
            _ => None,
        };
        out.push(wire::Message {
            role: role(m.role).to_owned(),
            content,
            images: (!images.is_empty()).then_some(images),
            tool_calls,
            tool_name,
            thinking: None,
        });
    }
    Ok(out)
}

fn role(r: Role) -> &'static str {
    match r {
        Role::System | Role::Developer => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

/// Text parts joined, and images as bare base64. `index` names the message
/// in error messages.
fn content(c: &MessageContent, index: usize) -> Result<(String, Vec<String>), ProviderError> {
    let parts = match c {
        TextOrParts::Text(t) => return Ok((t.clone(), Vec::new())),
        TextOrParts::Parts(parts) => parts,
    };
    let mut text = String::new();
    let mut images = Vec::new();
    for p in parts {
        match p {
            ContentPart::Text { text: t } => text.push_str(t),
            ContentPart::ImageUrl { image_url } => match image_url.as_data_url() {
                Some((_mime, data)) => images.push(data.to_owned()),
                // Ollama takes image bytes only; fetching URLs on the
                // caller's behalf would make the gateway an open proxy.
                None => {
                    return Err(ProviderError::new(
                        ErrorKind::BadRequest,
                        format!(
                            "messages[{index}]: Ollama accepts images only as base64 `data:` URLs; \
                             image URLs such as http(s) links cannot be sent"
                        ),
                    )
                    .with_param("messages"));
                }
            },
            ContentPart::InputAudio { .. } => {
                return Err(ProviderError::unsupported(format!(
                    "messages[{index}]: Ollama does not accept audio input"
                ))
                .with_param("messages"));
            }
        }
    }
    Ok((text, images))
}

fn tool_call(call: &ToolCall) -> Result<wire::ToolCall, ProviderError> {
    let raw = call.function.arguments.trim();
    // An empty string is how some clients write "no arguments".
    let arguments = if raw.is_empty() {
        Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_str::<Value>(raw).ok().filter(Value::is_object).ok_or_else(|| {
            ProviderError::new(
                ErrorKind::BadRequest,
                format!(
                    "tool call `{}` (`{}`): arguments must be a JSON object for Ollama, got `{}`",
                    call.id,
                    call.function.name,
                    raw.chars().take(200).collect::<String>()
                ),
            )
            .with_param("messages")
        })?
    };
    Ok(wire::ToolCall { function: wire::FunctionCall { name: call.function.name.clone(), arguments } })
}

pub fn chat_response(w: wire::ChatResponse, requested_model: &str) -> Result<ChatCompletionResponse, ProviderError> {
    if let Some(err) = &w.error {
        return Err(ProviderError::new(ErrorKind::Upstream, error_text(err)));
    }
    let Some(msg) = w.message.as_ref() else {
        return Err(ProviderError::invalid_response("Ollama chat response has no `message`"));
    };
    let calls = msg.tool_calls.clone().map(|c| tool_calls(c, 0)).filter(|c| !c.is_empty());
    let finish = finish_reason(calls.is_some(), w.done_reason.as_deref());
    let content = if calls.is_some() && msg.content.is_empty() { None } else { Some(msg.content.clone()) };
    let mut message = ResponseMessage::assistant(content);
    message.tool_calls = calls;
    message.reasoning_content = msg.thinking.clone().filter(|t| !t.is_empty());
    Ok(ChatCompletionResponse {
        native: None,
        id: new_id(),
        object: "chat.completion".into(),
        created: unix_now(),
        model: if w.model.is_empty() { requested_model.to_owned() } else { w.model.clone() },
        choices: vec![Choice { index: 0, message, finish_reason: Some(finish), logprobs: None }],
        usage: Some(usage(&w)),
        system_fingerprint: None,
    })
}

/// A fresh OpenAI-style completion id; Ollama sends none.
pub fn new_id() -> String {
    format!("chatcmpl-{}", uuid::Uuid::new_v4().simple())
}

/// Ollama's calls with generated ids (`call_<index>`, counting from
/// `first_index`) and arguments as compact JSON text.
fn tool_calls(calls: Vec<wire::ToolCall>, first_index: u32) -> Vec<ToolCall> {
    calls
        .into_iter()
        .zip(first_index..)
        .map(|(c, i)| ToolCall {
            id: format!("call_{i}"),
            kind: ToolKind::Function,
            function: FunctionCall { name: c.function.name, arguments: arguments_text(&c.function.arguments) },
        })
        .collect()
}

fn arguments_text(args: &Value) -> String {
    if args.is_null() { "{}".to_owned() } else { args.to_string() }
}

/// Ollama says `stop` even when the model called tools, so the calls decide.
fn finish_reason(called_tools: bool, done_reason: Option<&str>) -> FinishReason {
    if called_tools {
        FinishReason::ToolCalls
    } else if done_reason == Some("length") {
        FinishReason::Length
    } else {
        FinishReason::Stop
    }
}

fn usage(w: &wire::ChatResponse) -> Usage {
    Usage::new(w.prompt_eval_count.unwrap_or(0), w.eval_count.unwrap_or(0))
}

fn error_text(err: &Value) -> String {
    err.as_str().map(str::to_owned).unwrap_or_else(|| err.to_string())
}

/// Turns the NDJSON lines of a streamed `/api/chat` into canonical chunks:
/// a role delta first, content (and reasoning) deltas, complete tool calls,
/// then a finish chunk and a usage-only chunk for the `done` line.
#[derive(Debug)]
pub struct StreamState {
    id: String,
    created: u64,
    model: String,
    started: bool,
    tool_calls: u32,
    done: bool,
}

impl StreamState {
    pub fn new(requested_model: &str) -> Self {
        StreamState {
            id: new_id(),
            created: unix_now(),
            model: requested_model.to_owned(),
            started: false,
            tool_calls: 0,
            done: false,
        }
    }

    /// Whether the `done: true` line has been seen; later lines are ignored.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The chunks one line yields (possibly none), or the error it carries.
    pub fn line(&mut self, line: &str) -> Result<Vec<ChatCompletionChunk>, ProviderError> {
        if self.done {
            return Ok(Vec::new());
        }
        let w: wire::ChatResponse = serde_json::from_str(line)
            .map_err(|e| ProviderError::invalid_response(format!("unparseable Ollama stream line: {e}")))?;
        if let Some(err) = &w.error {
            return Err(ProviderError::new(ErrorKind::StreamInterrupted, error_text(err)));
        }
        if !w.model.is_empty() {
            self.model.clone_from(&w.model);
        }
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            out.push(self.chunk(Delta::role(Role::Assistant), None));
        }
        if let Some(msg) = w.message.as_ref() {
            if let Some(thinking) = msg.thinking.as_ref().filter(|t| !t.is_empty()) {
                out.push(self.chunk(Delta { reasoning_content: Some(thinking.clone()), ..Default::default() }, None));
            }
            if !msg.content.is_empty() {
                out.push(self.chunk(Delta::content(msg.content.clone()), None));
            }
            if let Some(calls) = msg.tool_calls.clone().filter(|c| !c.is_empty()) {
                let first = self.tool_calls;
                let deltas: Vec<ToolCallDelta> = tool_calls(calls, first)
                    .into_iter()
                    .zip(first..)
                    .map(|(c, index)| ToolCallDelta {
                        index,
                        id: Some(c.id),
                        kind: Some(ToolKind::Function),
                        function: Some(FunctionCallDelta {
                            name: Some(c.function.name),
                            arguments: Some(c.function.arguments),
                        }),
                    })
                    .collect();
                self.tool_calls = first.saturating_add(u32::try_from(deltas.len()).unwrap_or(u32::MAX));
                out.push(self.chunk(Delta { tool_calls: Some(deltas), ..Default::default() }, None));
            }
        }
        if w.done {
            self.done = true;
            let finish = finish_reason(self.tool_calls > 0, w.done_reason.as_deref());
            out.push(self.chunk(Delta::default(), Some(finish)));
            out.push(ChatCompletionChunk::usage_only(&self.id, self.created, &self.model, usage(&w)));
        }
        Ok(out)
    }

    /// Checks the body ended where it should: after the `done` line.
    pub fn end(&self) -> Result<(), ProviderError> {
        if self.done {
            Ok(())
        } else {
            Err(ProviderError::new(ErrorKind::StreamInterrupted, "the Ollama stream ended before its `done` line"))
        }
    }

    fn chunk(&self, delta: Delta, finish: Option<FinishReason>) -> ChatCompletionChunk {
        ChatCompletionChunk::delta(&self.id, self.created, &self.model, delta, finish)
    }
}

/// The body for `/api/embed`: every input in one call, so Ollama returns one
/// vector per input (joining them would yield a single vector for all).
pub fn embed_body(req: &EmbedRequest) -> wire::EmbedRequest {
    wire::EmbedRequest { model: req.model.clone(), input: req.input.clone(), dimensions: req.dimensions }
}

/// Vectors in input order, which is the order Ollama answers in.
pub fn embed_response(w: wire::EmbedResponse, inputs: usize) -> Result<(Vec<Vec<f32>>, Usage), ProviderError> {
    if w.embeddings.len() != inputs {
        return Err(ProviderError::invalid_response(format!(
            "Ollama returned {} embeddings for {inputs} inputs",
            w.embeddings.len()
        )));
    }
    Ok((w.embeddings, Usage::new(w.prompt_eval_count.unwrap_or(0), 0)))
}

/// Model names from `/api/tags` (`llama3.2:latest`, ...).
pub fn model_names(w: wire::TagList) -> Vec<String> {
    w.models.into_iter().map(|m| if m.name.is_empty() { m.model } else { m.name }).filter(|n| !n.is_empty()).collect()
}
