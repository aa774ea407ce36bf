//! Canonical (OpenAI chat) request → Anthropic Messages request, and
//! Anthropic answers and stream events → canonical responses and chunks.
//! No I/O: the stream converter is a state machine fed one event at a time.

use std::collections::HashMap;

use hoosh_core::params::DroppedParams;
use hoosh_core::{ErrorKind, ProviderError};
use hoosh_types::content::TextOrParts;
use hoosh_types::openai::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, ChatMessage, Choice, ContentPart, Delta,
    FinishReason, FunctionCall, FunctionCallDelta, ImageUrl, MessageContent, PromptTokensDetails, ResponseMessage,
    Role as OpenAiRole, Tool, ToolCall, ToolCallDelta, ToolChoiceMode, ToolKind, Usage,
};
use hoosh_types::unix_now;
use serde_json::{Value, json};

use super::wire::{
    self, ContentBlock, ImageSource, Message, MessagesRequest, Metadata, Role, TextBlock, ToolChoice, ToolDef,
};

/// `max_tokens` is mandatory at Anthropic; this is sent when the caller set no cap.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The Messages request for a canonical chat request. Parameters in
/// `dropped` are left out (the param policy already reported them).
pub fn messages_request(
    req: &ChatCompletionRequest,
    dropped: &DroppedParams,
    stream: bool,
) -> Result<MessagesRequest, ProviderError> {
    let keep = |name: &str| !dropped.contains(name);
    let tools = req.tools.as_deref().filter(|t| keep("tools") && !t.is_empty()).map(tool_defs);
    // Anthropic rejects `tool_choice` without `tools`.
    let tool_choice = if tools.is_some() { tool_choice(req, dropped) } else { None };
    Ok(MessagesRequest {
        model: req.model.clone(),
        max_tokens: req.output_cap().unwrap_or(DEFAULT_MAX_TOKENS),
        messages: conversation(&req.messages)?,
        system: system(&req.messages),
        temperature: req.temperature.filter(|_| keep("temperature")),
        top_p: req.top_p.filter(|_| keep("top_p")),
        top_k: None,
        stop_sequences: req.stop.as_ref().filter(|s| keep("stop") && !s.is_empty()).map(|s| s.to_vec()),
        stream,
        tools,
        tool_choice,
        metadata: req.user.as_ref().filter(|_| keep("user")).map(|u| Metadata { user_id: Some(u.clone()) }),
        thinking: None,
    })
}

/// Every system and developer message, in order, one text block each:
/// Anthropic takes instructions only in the top-level `system` field.
pub fn system(messages: &[ChatMessage]) -> Option<TextOrParts<TextBlock>> {
    let blocks: Vec<TextBlock> = messages
        .iter()
        .filter(|m| matches!(m.role, OpenAiRole::System | OpenAiRole::Developer))
        .map(ChatMessage::text_content)
        .filter(|t| !t.is_empty())
        .map(|text| TextBlock { kind: "text".into(), text, cache_control: None })
        .collect();
    (!blocks.is_empty()).then_some(TextOrParts::Parts(blocks))
}

/// The user/assistant turns. Tool results become user turns, and runs of the
/// same role are merged because Anthropic requires strict alternation.
pub fn conversation(messages: &[ChatMessage]) -> Result<Vec<Message>, ProviderError> {
    let mut turns: Vec<(Role, Vec<ContentBlock>)> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let (role, blocks) = match m.role {
            OpenAiRole::System | OpenAiRole::Developer => continue,
            OpenAiRole::User => (Role::User, content_blocks(m.content.as_ref(), i)?),
            OpenAiRole::Assistant => (Role::Assistant, assistant_blocks(m, i)?),
            OpenAiRole::Tool => (Role::User, vec![tool_result(m, i)?]),
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, acc)) if *last == role => acc.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    Ok(turns
        .into_iter()
        .map(|(role, mut blocks)| {
            // Anthropic wants a user turn's tool results before any other
            // content; the sort is stable, so each group keeps its order.
            if role == Role::User {
                blocks.sort_by_key(|b| !matches!(b, ContentBlock::ToolResult { .. }));
            }
            Message { role, content: TextOrParts::Parts(blocks) }
        })
        .collect())
}

fn bad_message(index: usize, what: impl std::fmt::Display) -> ProviderError {
    ProviderError::new(ErrorKind::BadRequest, format!("messages[{index}]: {what}"))
        .with_param(format!("messages[{index}]"))
}

/// Text and image parts. Empty text is skipped: Anthropic rejects empty
/// text blocks.
fn content_blocks(content: Option<&MessageContent>, index: usize) -> Result<Vec<ContentBlock>, ProviderError> {
    let mut out = Vec::new();
    match content {
        None => {}
        Some(TextOrParts::Text(t)) if t.is_empty() => {}
        Some(TextOrParts::Text(t)) => out.push(ContentBlock::Text { text: t.clone() }),
        Some(TextOrParts::Parts(parts)) => {
            for part in parts {
                match part {
                    ContentPart::Text { text } if text.is_empty() => {}
                    ContentPart::Text { text } => out.push(ContentBlock::Text { text: text.clone() }),
                    ContentPart::ImageUrl { image_url } => out.push(image_block(image_url, index)?),
                    ContentPart::InputAudio { .. } => {
                        return Err(ProviderError::unsupported(format!(
                            "messages[{index}]: the Anthropic Messages API does not take audio input"
                        ))
                        .with_param(format!("messages[{index}]")));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// A `data:` URL becomes an inline base64 image; an http(s) URL is passed
/// for Anthropic to fetch.
pub fn image_block(image: &ImageUrl, index: usize) -> Result<ContentBlock, ProviderError> {
    if let Some((media_type, data)) = image.as_data_url() {
        return Ok(ContentBlock::Image {
            source: ImageSource::Base64 { media_type: media_type.to_owned(), data: data.to_owned() },
        });
    }
    if image.url.starts_with("https://") || image.url.starts_with("http://") {
        return Ok(ContentBlock::Image { source: ImageSource::Url { url: image.url.clone() } });
    }
    Err(bad_message(index, "image_url must be an http(s) URL or a base64 data: URL"))
}

fn assistant_blocks(m: &ChatMessage, index: usize) -> Result<Vec<ContentBlock>, ProviderError> {
    let mut out = content_blocks(m.content.as_ref(), index)?;
    for (j, call) in m.tool_calls.iter().flatten().enumerate() {
        out.push(tool_use_block(call, index, j)?);
    }
    Ok(out)
}

/// A tool call the model made earlier. Its arguments must parse: guessing
/// `{}` would replay a different call than the one the model made.
pub fn tool_use_block(call: &ToolCall, index: usize, call_index: usize) -> Result<ContentBlock, ProviderError> {
    let name = &call.function.name;
    let args = call.function.arguments.trim();
    // Clients commonly send "" for a call without arguments.
    let input = if args.is_empty() {
        json!({})
    } else {
        serde_json::from_str::<Value>(args).map_err(|e| {
            bad_message(
                index,
                format_args!(
                    "tool_calls[{call_index}] (`{name}`, id `{}`): arguments are not valid JSON: {e}",
                    call.id
                ),
            )
        })?
    };
    if !input.is_object() {
        return Err(bad_message(
            index,
            format_args!("tool_calls[{call_index}] (`{name}`, id `{}`): arguments must be a JSON object", call.id),
        ));
    }
    Ok(ContentBlock::ToolUse { id: call.id.clone(), name: name.clone(), input })
}

fn tool_result(m: &ChatMessage, index: usize) -> Result<ContentBlock, ProviderError> {
    let Some(id) = m.tool_call_id.clone() else {
        return Err(bad_message(index, "a tool message needs tool_call_id"));
    };
    let content = match &m.content {
        Some(TextOrParts::Text(t)) if t.is_empty() => None,
        Some(TextOrParts::Text(t)) => Some(TextOrParts::Text(t.clone())),
        Some(parts @ TextOrParts::Parts(_)) => {
            let blocks = content_blocks(Some(parts), index)?;
            (!blocks.is_empty()).then_some(TextOrParts::Parts(blocks))
        }
        None => None,
    };
    Ok(ContentBlock::ToolResult { tool_use_id: id, content, is_error: None })
}

pub fn tool_defs(tools: &[Tool]) -> Vec<ToolDef> {
    tools
        .iter()
        .map(|t| ToolDef {
            kind: None,
            name: t.function.name.clone(),
            description: t.function.description.clone(),
            input_schema: t.function.parameters.clone().unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        })
        .collect()
}

/// OpenAI's `tool_choice` and `parallel_tool_calls` are one field at Anthropic.
pub fn tool_choice(req: &ChatCompletionRequest, dropped: &DroppedParams) -> Option<ToolChoice> {
    let disable = (!dropped.contains("parallel_tool_calls") && req.parallel_tool_calls == Some(false)).then_some(true);
    let choice = req.tool_choice.as_ref().filter(|_| !dropped.contains("tool_choice"));
    use hoosh_types::openai::ToolChoice as Oc;
    match choice {
        None => disable.map(|d| ToolChoice::Auto { disable_parallel_tool_use: Some(d) }),
        Some(Oc::Mode(ToolChoiceMode::Auto)) => Some(ToolChoice::Auto { disable_parallel_tool_use: disable }),
        Some(Oc::Mode(ToolChoiceMode::Required)) => Some(ToolChoice::Any { disable_parallel_tool_use: disable }),
        Some(Oc::Mode(ToolChoiceMode::None)) => Some(ToolChoice::None),
        Some(Oc::Named(n)) => {
            Some(ToolChoice::Tool { name: n.function.name.clone(), disable_parallel_tool_use: disable })
        }
    }
}

pub fn finish_reason(r: wire::StopReason) -> FinishReason {
    use wire::StopReason as S;
    match r {
        S::EndTurn | S::StopSequence | S::PauseTurn | S::Other => FinishReason::Stop,
        S::MaxTokens | S::ModelContextWindowExceeded => FinishReason::Length,
        S::ToolUse => FinishReason::ToolCalls,
        S::Refusal => FinishReason::ContentFilter,
    }
}

/// OpenAI counts cached prompt tokens inside `prompt_tokens`; Anthropic
/// reports them beside `input_tokens`, so they are added back.
pub fn usage(u: &wire::Usage) -> Usage {
    let read = u.cache_read_input_tokens.unwrap_or(0);
    let written = u.cache_creation_input_tokens.unwrap_or(0);
    let prompt = u.input_tokens.saturating_add(read).saturating_add(written);
    let mut out = Usage::new(prompt, u.output_tokens);
    if read > 0 || written > 0 {
        out.prompt_tokens_details = Some(PromptTokensDetails { cached_tokens: read, cache_write_tokens: written });
    }
    out
}

fn fallback_id() -> String {
    format!("chatcmpl-{}", uuid::Uuid::new_v4().simple())
}

pub fn chat_response(w: wire::Response, requested_model: &str) -> ChatCompletionResponse {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for block in w.content {
        match block {
            wire::Block::Text { text: t } => text.push_str(&t),
            wire::Block::Thinking { thinking } => reasoning.push_str(&thinking),
            wire::Block::ToolUse { id, name, input } => calls.push(ToolCall {
                id,
                kind: ToolKind::Function,
                function: FunctionCall { name, arguments: arguments_text(&input) },
            }),
            wire::Block::Other => {}
        }
    }
    let message = ResponseMessage {
        role: OpenAiRole::Assistant,
        // OpenAI sends `content: null` when the model only called tools.
        content: if text.is_empty() && !calls.is_empty() { None } else { Some(text) },
        tool_calls: (!calls.is_empty()).then_some(calls),
        refusal: None,
        reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
    };
    ChatCompletionResponse {
        native: None,
        id: if w.id.is_empty() { fallback_id() } else { w.id },
        object: "chat.completion".into(),
        created: unix_now(),
        model: if w.model.is_empty() { requested_model.to_owned() } else { w.model },
        choices: vec![Choice { index: 0, message, finish_reason: w.stop_reason.map(finish_reason), logprobs: None }],
        usage: Some(usage(&w.usage)),
        system_fingerprint: None,
    }
}

fn arguments_text(input: &Value) -> String {
    if input.is_null() { "{}".to_owned() } else { input.to_string() }
}

/// One SSE `data:` payload. Unknown event types parse (as `Other`) and are skipped.
pub fn parse_event(data: &str) -> Result<wire::Event, ProviderError> {
    serde_json::from_str(data)
        .map_err(|e| ProviderError::invalid_response(format!("unparseable Anthropic stream event: {e}")))
}

/// An `error` event inside a 200 stream. Overload is the upstream being
/// busy (worth a retry elsewhere); anything else is a broken stream.
pub fn stream_error(err: &wire::ErrorBody) -> ProviderError {
    let kind = if err.kind == "overloaded_error" { ErrorKind::Upstream } else { ErrorKind::StreamInterrupted };
    ProviderError::new(kind, format!("{}: {}", err.kind, err.message))
}

/// Turns the events of one streamed answer into OpenAI chunks.
#[derive(Debug)]
pub struct StreamState {
    id: String,
    model: String,
    created: u64,
    usage: wire::Usage,
    /// Anthropic content block index → OpenAI tool call index.
    tool_index: HashMap<u32, u32>,
    started: bool,
    finished: bool,
    done: bool,
}

impl StreamState {
    pub fn new(requested_model: &str, created: u64) -> Self {
        StreamState {
            id: fallback_id(),
            model: requested_model.to_owned(),
            created,
            usage: wire::Usage::default(),
            tool_index: HashMap::new(),
            started: false,
            finished: false,
            done: false,
        }
    }

    /// Whether `message_stop` arrived; nothing after it is read.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// A chunk of this stream with no choices and no usage (a carrier for
    /// an upstream event that converts to nothing).
    pub fn empty_chunk(&self) -> ChatCompletionChunk {
        let mut c = ChatCompletionChunk::usage_only(&self.id, self.created, &self.model, Usage::default());
        c.usage = None;
        c
    }

    pub fn on_event(&mut self, event: wire::Event) -> Result<Vec<ChatCompletionChunk>, ProviderError> {
        let mut out = Vec::new();
        match event {
            wire::Event::MessageStart { message } => {
                if !message.id.is_empty() {
                    self.id = message.id;
                }
                if !message.model.is_empty() {
                    self.model = message.model;
                }
                self.usage = message.usage;
                self.start(&mut out);
            }
            wire::Event::ContentBlockStart { index, content_block } => match content_block {
                wire::Block::Text { text } => self.push(&mut out, Delta::content(text)),
                wire::Block::Thinking { thinking } if !thinking.is_empty() => {
                    self.push(&mut out, Delta { reasoning_content: Some(thinking), ..Default::default() });
                }
                wire::Block::ToolUse { id, name, .. } => {
                    let call_index = u32::try_from(self.tool_index.len()).unwrap_or(u32::MAX);
                    self.tool_index.insert(index, call_index);
                    let call = ToolCallDelta {
                        index: call_index,
                        id: Some(id),
                        kind: Some(ToolKind::Function),
                        function: Some(FunctionCallDelta { name: Some(name), arguments: Some(String::new()) }),
                    };
                    self.push(&mut out, Delta::tool_call(call));
                }
                wire::Block::Thinking { .. } | wire::Block::Other => {}
            },
            wire::Event::ContentBlockDelta { index, delta } => match delta {
                wire::BlockDelta::TextDelta { text } => self.push(&mut out, Delta::content(text)),
                wire::BlockDelta::ThinkingDelta { thinking } => {
                    self.push(&mut out, Delta { reasoning_content: Some(thinking), ..Default::default() });
                }
                wire::BlockDelta::InputJsonDelta { partial_json } => {
                    let Some(&call_index) = self.tool_index.get(&index) else {
                        return Err(ProviderError::invalid_response(format!(
                            "input_json_delta for content block {index}, which is not a tool_use block"
                        )));
                    };
                    if !partial_json.is_empty() {
                        let call = ToolCallDelta {
                            index: call_index,
                            function: Some(FunctionCallDelta { name: None, arguments: Some(partial_json) }),
                            ..Default::default()
                        };
                        self.push(&mut out, Delta::tool_call(call));
                    }
                }
                wire::BlockDelta::Other => {}
            },
            wire::Event::MessageDelta { delta, usage } => {
                if let Some(u) = usage {
                    self.merge_usage(&u);
                }
                if let Some(reason) = delta.stop_reason {
                    self.finish(&mut out, finish_reason(reason));
                }
            }
            wire::Event::MessageStop => {
                self.finish(&mut out, FinishReason::Stop);
                out.push(ChatCompletionChunk::usage_only(&self.id, self.created, &self.model, usage(&self.usage)));
                self.done = true;
            }
            wire::Event::Error { error } => return Err(stream_error(&error)),
            wire::Event::ContentBlockStop {} | wire::Event::Ping | wire::Event::Other => {}
        }
        Ok(out)
    }

    fn merge_usage(&mut self, u: &wire::DeltaUsage) {
        if let Some(n) = u.output_tokens {
            self.usage.output_tokens = n;
        }
        // Counts in `message_delta` are cumulative, so a present value replaces.
        if let Some(n) = u.input_tokens.filter(|n| *n > 0) {
            self.usage.input_tokens = n;
        }
        if let Some(n) = u.cache_creation_input_tokens.filter(|n| *n > 0) {
            self.usage.cache_creation_input_tokens = Some(n);
        }
        if let Some(n) = u.cache_read_input_tokens.filter(|n| *n > 0) {
            self.usage.cache_read_input_tokens = Some(n);
        }
    }

    /// The role chunk, once, before anything else.
    fn start(&mut self, out: &mut Vec<ChatCompletionChunk>) {
        if !self.started {
            self.started = true;
            out.push(ChatCompletionChunk::delta(
                &self.id,
                self.created,
                &self.model,
                Delta::role(OpenAiRole::Assistant),
                None,
            ));
        }
    }

    fn push(&mut self, out: &mut Vec<ChatCompletionChunk>, delta: Delta) {
        self.start(out);
        if !delta.is_empty() {
            out.push(ChatCompletionChunk::delta(&self.id, self.created, &self.model, delta, None));
        }
    }

    /// The chunk carrying the finish reason, once: `message_stop` supplies
    /// one only when `message_delta` did not.
    fn finish(&mut self, out: &mut Vec<ChatCompletionChunk>, reason: FinishReason) {
        self.start(out);
        if !self.finished {
            self.finished = true;
            out.push(ChatCompletionChunk::delta(&self.id, self.created, &self.model, Delta::default(), Some(reason)));
        }
    }
}
