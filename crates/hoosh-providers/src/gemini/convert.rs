//! Canonical (OpenAI chat) request → `GenerateContentRequest`, and Gemini's
//! answers (whole or streamed) → canonical responses and chunks. Pure
//! functions and one small stream state machine; no I/O.

use std::time::Duration;

use hoosh_core::params::DroppedParams;
use hoosh_core::{EmbedRequest, ErrorKind, ProviderError};
use hoosh_types::content::TextOrParts;
use hoosh_types::openai::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, ChatMessage, Choice, CompletionTokensDetails,
    ContentPart, Delta, FinishReason, FunctionCallDelta, ImageUrl, MessageContent, PromptTokensDetails, ResponseFormat,
    ResponseMessage, Role, Tool, ToolCall, ToolCallDelta, ToolChoice, ToolChoiceMode, ToolKind, Usage,
};
use hoosh_types::unix_now;
use serde_json::{Map, Value, json};

use super::wire::{self, Content, Part};

/// JSON-schema keywords Gemini's OpenAPI-subset `Schema` rejects as unknown fields.
const UNSUPPORTED_SCHEMA_KEYS: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "additionalProperties",
    "unevaluatedProperties",
    "patternProperties",
    "examples",
    "strict",
];

/// Schema keywords whose values are data, not schemas: cleaning them could
/// alter an enum value or a default that happens to look like a schema.
const SCHEMA_DATA_KEYS: &[&str] = &["enum", "required", "default", "example", "const"];

/// The model id as the URL wants it: callers may use Google's own
/// `models/...` resource name or the bare id.
pub fn model_id(model: &str) -> &str {
    model.strip_prefix("models/").unwrap_or(model)
}

fn bad_request(message: String) -> ProviderError {
    ProviderError::new(ErrorKind::BadRequest, message)
}

/// The `generateContent` body. `dropped` parameters are left out.
pub fn chat_body(
    req: &ChatCompletionRequest,
    dropped: &DroppedParams,
) -> Result<wire::GenerateContentRequest, ProviderError> {
    let (contents, system_instruction) = contents(&req.messages)?;
    let tools = match &req.tools {
        Some(tools) if !tools.is_empty() && !dropped.contains("tools") => {
            vec![wire::Tool { function_declarations: tools.iter().map(function_declaration).collect() }]
        }
        _ => Vec::new(),
    };
    let tool_config = match &req.tool_choice {
        // Gemini refuses a calling mode without declarations to apply it to.
        Some(choice) if !tools.is_empty() && !dropped.contains("tool_choice") => Some(tool_config(choice)),
        _ => None,
    };
    let generation_config = generation_config(req, dropped);
    let generation_config = (generation_config != wire::GenerationConfig::default()).then_some(generation_config);
    Ok(wire::GenerateContentRequest { contents, system_instruction, tools, tool_config, generation_config })
}

/// Splits the conversation into Gemini `contents` and the system
/// instruction. Gemini has one system instruction and two roles, so every
/// system/developer message joins the instruction, tool results travel as
/// `user` turns, and neighbouring turns of one role are merged (Gemini
/// expects the roles to alternate).
fn contents(messages: &[ChatMessage]) -> Result<(Vec<Content>, Option<Content>), ProviderError> {
    let mut system = Vec::new();
    let mut out: Vec<Content> = Vec::new();
    for (i, msg) in messages.iter().enumerate() {
        match msg.role {
            Role::System | Role::Developer => {
                let text = msg.text_content();
                if !text.is_empty() {
                    system.push(Part::text(text));
                }
            }
            Role::User => push_turn(&mut out, "user", content_parts(msg.content.as_ref())?),
            Role::Assistant => {
                let mut parts = content_parts(msg.content.as_ref())?;
                for call in msg.tool_calls.iter().flatten() {
                    parts.push(function_call_part(call)?);
                }
                push_turn(&mut out, "model", parts);
            }
            Role::Tool => push_turn(&mut out, "user", vec![function_response_part(msg, &messages[..i])?]),
        }
    }
    let system = (!system.is_empty()).then_some(Content { role: None, parts: system });
    Ok((out, system))
}

fn push_turn(out: &mut Vec<Content>, role: &str, parts: Vec<Part>) {
    if parts.is_empty() {
        return;
    }
    match out.last_mut() {
        Some(last) if last.role.as_deref() == Some(role) => last.parts.extend(parts),
        _ => out.push(Content { role: Some(role.to_owned()), parts }),
    }
}

fn content_parts(content: Option<&MessageContent>) -> Result<Vec<Part>, ProviderError> {
    match content {
        None => Ok(Vec::new()),
        Some(TextOrParts::Text(t)) if t.is_empty() => Ok(Vec::new()),
        Some(TextOrParts::Text(t)) => Ok(vec![Part::text(t.clone())]),
        Some(TextOrParts::Parts(parts)) => parts
            .iter()
            .filter(|p| !matches!(p, ContentPart::Text { text } if text.is_empty()))
            .map(|p| match p {
                ContentPart::Text { text } => Ok(Part::text(text.clone())),
                ContentPart::ImageUrl { image_url } => image_part(image_url),
                ContentPart::InputAudio { input_audio } => Ok(Part {
                    inline_data: Some(wire::Blob {
                        mime_type: format!("audio/{}", input_audio.format),
                        data: input_audio.data.clone(),
                    }),
                    ..Default::default()
                }),
            })
            .collect(),
    }
}

fn image_part(image: &ImageUrl) -> Result<Part, ProviderError> {
    if let Some((mime, data)) = image.as_data_url() {
        return Ok(Part {
            inline_data: Some(wire::Blob { mime_type: mime.to_owned(), data: data.to_owned() }),
            ..Default::default()
        });
    }
    let url = &image.url;
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(Part {
            file_data: Some(wire::FileData { mime_type: guess_mime(url).to_owned(), file_uri: url.clone() }),
            ..Default::default()
        });
    }
    let shown: String = url.chars().take(40).collect();
    Err(bad_request(format!("image_url `{shown}...` is neither a base64 data: URL nor an http(s) URL"))
        .with_param("messages"))
}

/// Gemini needs a MIME type for a file it fetches itself; the URL's
/// extension is the only hint available without fetching it first.
pub fn guess_mime(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let file = path.rsplit('/').next().unwrap_or(path);
    let ext = file.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        _ => "image/jpeg",
    }
}

fn function_call_part(call: &ToolCall) -> Result<Part, ProviderError> {
    let raw = call.function.arguments.trim();
    let args = if raw.is_empty() {
        Value::Object(Map::new())
    } else {
        match serde_json::from_str::<Value>(raw) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return Err(bad_request(format!(
                    "tool call `{}` ({}) has arguments that are not a JSON object; Gemini needs them as one",
                    call.id, call.function.name
                ))
                .with_param("messages"));
            }
        }
    };
    Ok(Part {
        function_call: Some(wire::FunctionCall { name: call.function.name.clone(), args: Some(args) }),
        ..Default::default()
    })
}

/// Gemini matches a result to its call by function name, which the OpenAI
/// tool message does not carry; it is found on the assistant turn that made
/// the call. The search runs backwards so that an id reused in a later turn
/// (Gemini's generated ids restart at `call_0`) finds the latest call.
fn function_response_part(msg: &ChatMessage, earlier: &[ChatMessage]) -> Result<Part, ProviderError> {
    let id = msg.tool_call_id.as_deref().unwrap_or_default();
    let name = earlier
        .iter()
        .rev()
        .flat_map(|m| m.tool_calls.iter().flatten())
        .find(|c| c.id == id)
        .map(|c| c.function.name.clone())
        .or_else(|| msg.name.clone())
        .ok_or_else(|| {
            bad_request(format!("tool message with tool_call_id `{id}` answers no earlier assistant tool call"))
                .with_param("messages")
        })?;
    let text = msg.text_content();
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({ "content": text }),
    };
    Ok(Part { function_response: Some(wire::FunctionResponse { name, response }), ..Default::default() })
}

fn function_declaration(tool: &Tool) -> wire::FunctionDeclaration {
    let f = &tool.function;
    wire::FunctionDeclaration {
        name: f.name.clone(),
        description: f.description.clone(),
        parameters: f.parameters.as_ref().map(clean_schema).filter(|p| !is_empty_object_schema(p)),
    }
}

/// Gemini rejects an OBJECT schema with no properties, which is how OpenAI
/// clients declare a function without parameters.
fn is_empty_object_schema(schema: &Value) -> bool {
    let no_props = schema.get("properties").and_then(Value::as_object).is_none_or(Map::is_empty);
    schema.get("type").and_then(Value::as_str).is_none_or(|t| t.eq_ignore_ascii_case("object")) && no_props
}

/// A JSON schema reduced to what Gemini's `Schema` accepts: unknown keywords
/// removed at every depth, and `"type": [T, "null"]` turned into
/// `"type": T, "nullable": true`. Property names are kept as they are, even
/// one called `additionalProperties`.
pub fn clean_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                if UNSUPPORTED_SCHEMA_KEYS.contains(&key.as_str()) {
                    continue;
                }
                let value = match key.as_str() {
                    "properties" => match value {
                        Value::Object(props) => {
                            Value::Object(props.iter().map(|(name, s)| (name.clone(), clean_schema(s))).collect())
                        }
                        other => other.clone(),
                    },
                    k if SCHEMA_DATA_KEYS.contains(&k) => value.clone(),
                    _ => clean_schema(value),
                };
                out.insert(key.clone(), value);
            }
            if let Some(Value::Array(types)) = out.get("type") {
                let non_null: Vec<Value> = types.iter().filter(|t| t.as_str() != Some("null")).cloned().collect();
                if let [only] = non_null.as_slice() {
                    let nullable = non_null.len() < types.len();
                    out.insert("type".into(), only.clone());
                    if nullable {
                        out.insert("nullable".into(), Value::Bool(true));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(clean_schema).collect()),
        other => other.clone(),
    }
}

fn tool_config(choice: &ToolChoice) -> wire::ToolConfig {
    let (mode, allowed) = match choice {
        ToolChoice::Mode(ToolChoiceMode::Auto) => ("AUTO", None),
        ToolChoice::Mode(ToolChoiceMode::None) => ("NONE", None),
        ToolChoice::Mode(ToolChoiceMode::Required) => ("ANY", None),
        ToolChoice::Named(named) => ("ANY", Some(vec![named.function.name.clone()])),
    };
    wire::ToolConfig { function_calling_config: wire::FunctionCallingConfig { mode, allowed_function_names: allowed } }
}

fn generation_config(req: &ChatCompletionRequest, dropped: &DroppedParams) -> wire::GenerationConfig {
    let keep = |name: &str| !dropped.contains(name);
    let mut cfg = wire::GenerationConfig {
        temperature: req.temperature.filter(|_| keep("temperature")),
        top_p: req.top_p.filter(|_| keep("top_p")),
        max_output_tokens: req.output_cap(),
        stop_sequences: req.stop.as_ref().filter(|s| !s.is_empty() && keep("stop")).map(|s| s.to_vec()),
        seed: req.seed.filter(|_| keep("seed")),
        presence_penalty: req.presence_penalty.filter(|_| keep("presence_penalty")),
        frequency_penalty: req.frequency_penalty.filter(|_| keep("frequency_penalty")),
        ..Default::default()
    };
    if keep("response_format") {
        match &req.response_format {
            Some(ResponseFormat::JsonObject) => cfg.response_mime_type = Some("application/json".into()),
            Some(ResponseFormat::JsonSchema { json_schema }) => {
                cfg.response_mime_type = Some("application/json".into());
                cfg.response_schema = json_schema.schema.as_ref().map(clean_schema);
            }
            Some(ResponseFormat::Text) | None => {}
        }
    }
    cfg
}

/// Google's finish reasons in OpenAI's vocabulary. Reasons that are neither
/// a cap nor a policy block (`OTHER`, `MALFORMED_FUNCTION_CALL`, ...) end
/// the answer as an ordinary stop.
pub fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            FinishReason::ContentFilter
        }
        _ => FinishReason::Stop,
    }
}

/// A model that called tools stops "normally" in Gemini's terms; OpenAI
/// clients look for `tool_calls` to know they must run them.
fn final_reason(reason: &str, called_tools: bool) -> FinishReason {
    match finish_reason(reason) {
        FinishReason::Stop if called_tools => FinishReason::ToolCalls,
        other => other,
    }
}

/// Thoughts are output tokens the caller pays for, so they count as completion.
pub fn usage(u: &wire::UsageMetadata) -> Usage {
    let thoughts = u.thoughts_token_count.unwrap_or(0);
    let prompt = u.prompt_token_count + u.tool_use_prompt_token_count.unwrap_or(0);
    let mut out = Usage::new(prompt, u.candidates_token_count + thoughts);
    out.prompt_tokens_details =
        u.cached_content_token_count.map(|cached_tokens| PromptTokensDetails { cached_tokens, ..Default::default() });
    out.completion_tokens_details =
        u.thoughts_token_count.map(|reasoning_tokens| CompletionTokensDetails { reasoning_tokens });
    out
}

fn blocked(feedback: Option<&wire::PromptFeedback>) -> Option<ProviderError> {
    let reason = feedback?.block_reason.as_deref()?;
    Some(ProviderError::new(ErrorKind::ContentFilter, format!("Gemini blocked the prompt ({reason})")))
}

fn tool_call(index: usize, call: &wire::FunctionCall) -> ToolCall {
    ToolCall {
        id: format!("call_{index}"),
        kind: ToolKind::Function,
        function: hoosh_types::openai::FunctionCall {
            name: call.name.clone(),
            arguments: args_json(call.args.as_ref()),
        },
    }
}

fn args_json(args: Option<&Value>) -> String {
    args.map(Value::to_string).unwrap_or_else(|| "{}".to_owned())
}

fn response_model(requested: &str, version: Option<String>) -> String {
    if requested.is_empty() { version.unwrap_or_default() } else { requested.to_owned() }
}

/// A whole `generateContent` answer → a chat completion.
pub fn chat_response(
    w: wire::GenerateContentResponse,
    requested_model: &str,
) -> Result<ChatCompletionResponse, ProviderError> {
    let Some(candidate) = w.candidates.into_iter().next() else {
        return Err(blocked(w.prompt_feedback.as_ref())
            .unwrap_or_else(|| ProviderError::invalid_response("Gemini answered without candidates")));
    };
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
        if let Some(call) = &part.function_call {
            calls.push(tool_call(calls.len(), call));
        } else if let Some(t) = part.text {
            if part.thought == Some(true) { reasoning.push_str(&t) } else { text.push_str(&t) }
        }
    }
    let finish = candidate.finish_reason.as_deref().map(|r| final_reason(r, !calls.is_empty()));
    let mut message = ResponseMessage::assistant((!text.is_empty() || calls.is_empty()).then_some(text));
    message.reasoning_content = (!reasoning.is_empty()).then_some(reasoning);
    message.tool_calls = (!calls.is_empty()).then_some(calls);
    Ok(ChatCompletionResponse {
        native: None,
        id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        object: "chat.completion".into(),
        created: unix_now(),
        model: response_model(requested_model, w.model_version),
        choices: vec![Choice { index: 0, message, finish_reason: finish, logprobs: None }],
        usage: w.usage_metadata.as_ref().map(usage),
        system_fingerprint: None,
    })
}

/// Turns the events of one `streamGenerateContent` call into OpenAI chunks.
/// Gemini sends each event's text as a fresh increment, whole function calls
/// in one part, and cumulative usage on every event; so the last usage seen
/// is the total.
#[derive(Debug)]
pub struct StreamState {
    id: String,
    created: u64,
    model: String,
    started: bool,
    finished: bool,
    tool_calls: usize,
    usage: Option<Usage>,
}

impl StreamState {
    pub fn new(requested_model: &str) -> Self {
        StreamState {
            id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
            created: unix_now(),
            model: requested_model.to_owned(),
            started: false,
            finished: false,
            tool_calls: 0,
            usage: None,
        }
    }

    /// Whether the finish chunk went out (the answer is complete).
    pub fn finished(&self) -> bool {
        self.finished
    }

    fn chunk(&self, delta: Delta, finish: Option<FinishReason>) -> ChatCompletionChunk {
        ChatCompletionChunk::delta(&self.id, self.created, &self.model, delta, finish)
    }

    /// The chunks for one event, in order.
    pub fn on_event(&mut self, w: wire::GenerateContentResponse) -> Result<Vec<ChatCompletionChunk>, ProviderError> {
        if let Some(err) = w.error {
            return Err(ProviderError::new(
                ErrorKind::StreamInterrupted,
                format!("Gemini stream error: {}", err.message),
            ));
        }
        if let Some(u) = &w.usage_metadata {
            self.usage = Some(usage(u));
        }
        if self.model.is_empty()
            && let Some(v) = w.model_version
        {
            self.model = v;
        }
        if self.finished {
            return Ok(Vec::new());
        }
        let Some(candidate) = w.candidates.into_iter().next() else {
            return match blocked(w.prompt_feedback.as_ref()) {
                Some(e) => Err(e),
                None => Ok(Vec::new()),
            };
        };
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            out.push(self.chunk(Delta::role(Role::Assistant), None));
        }
        for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
            if let Some(call) = &part.function_call {
                let delta = ToolCallDelta {
                    index: u32::try_from(self.tool_calls).unwrap_or(u32::MAX),
                    id: Some(format!("call_{}", self.tool_calls)),
                    kind: Some(ToolKind::Function),
                    function: Some(FunctionCallDelta {
                        name: Some(call.name.clone()),
                        arguments: Some(args_json(call.args.as_ref())),
                    }),
                };
                self.tool_calls += 1;
                out.push(self.chunk(Delta::tool_call(delta), None));
            } else if let Some(text) = part.text.filter(|t| !t.is_empty()) {
                let delta = if part.thought == Some(true) {
                    Delta { reasoning_content: Some(text), ..Default::default() }
                } else {
                    Delta::content(text)
                };
                out.push(self.chunk(delta, None));
            }
        }
        if let Some(reason) = candidate.finish_reason.as_deref().filter(|r| *r != "FINISH_REASON_UNSPECIFIED") {
            self.finished = true;
            out.push(self.chunk(Delta::default(), Some(final_reason(reason, self.tool_calls > 0))));
        }
        Ok(out)
    }

    /// What follows the last event: the usage chunk, or the error of a body
    /// that ended before Gemini said why it stopped.
    pub fn on_end(&mut self) -> Result<Vec<ChatCompletionChunk>, ProviderError> {
        if !self.finished {
            return Err(ProviderError::new(
                ErrorKind::StreamInterrupted,
                "the Gemini stream ended without a finishReason",
            ));
        }
        Ok(self
            .usage
            .map(|u| ChatCompletionChunk::usage_only(&self.id, self.created, &self.model, u))
            .into_iter()
            .collect())
    }
}

pub fn embed_body(req: &EmbedRequest) -> wire::BatchEmbedRequest {
    let model = format!("models/{}", model_id(&req.model));
    wire::BatchEmbedRequest {
        requests: req
            .input
            .iter()
            .map(|text| wire::EmbedContentRequest {
                model: model.clone(),
                content: Content { role: None, parts: vec![Part::text(text.clone())] },
                output_dimensionality: req.dimensions,
            })
            .collect(),
    }
}

/// Gemini answers batch embeddings in request order, one per input.
pub fn embed_response(w: wire::BatchEmbedResponse, inputs: usize) -> Result<(Vec<Vec<f32>>, Usage), ProviderError> {
    if w.embeddings.len() != inputs {
        return Err(ProviderError::invalid_response(format!(
            "Gemini returned {} embeddings for {inputs} inputs",
            w.embeddings.len()
        )));
    }
    let tokens = w.usage_metadata.map(|u| u.prompt_token_count).unwrap_or(0);
    Ok((w.embeddings.into_iter().map(|e| e.values).collect(), Usage::new(tokens, 0)))
}

/// Model ids without Google's `models/` resource prefix.
pub fn model_ids(list: wire::ModelList) -> Vec<String> {
    list.models.into_iter().map(|m| model_id(&m.name).to_owned()).collect()
}

/// What an error body adds to its status. Google sends no `Retry-After` on
/// quota errors; the delay is a `RetryInfo` detail (`"retryDelay": "7s"`).
/// And a wrong key is a 400 `API_KEY_INVALID`, which must count as an auth
/// failure, not as a malformed request that no other provider could serve.
#[derive(Debug, Default, PartialEq)]
pub struct ErrorHints {
    pub retry_delay: Option<Duration>,
    pub api_key_invalid: bool,
}

pub fn error_hints(body: &[u8]) -> ErrorHints {
    let Ok(env) = serde_json::from_slice::<wire::ErrorEnvelope>(body) else {
        return ErrorHints::default();
    };
    let mut hints = ErrorHints::default();
    for detail in &env.error.details {
        let kind = detail.get("@type").and_then(Value::as_str).unwrap_or_default();
        if kind.ends_with("google.rpc.RetryInfo") {
            hints.retry_delay = detail.get("retryDelay").and_then(Value::as_str).and_then(parse_duration);
        }
        if detail.get("reason").and_then(Value::as_str) == Some("API_KEY_INVALID") {
            hints.api_key_invalid = true;
        }
    }
    hints
}

/// A protobuf JSON `Duration`: decimal seconds with an `s` suffix.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let secs: f64 = s.trim().strip_suffix('s')?.parse().ok()?;
    crate::http::seconds(secs)
}
