//! Ollama's native REST shapes (`/api/chat`, `/api/embed`, `/api/tags`), as
//! its API documentation defines them. Response fields Ollama adds over time
//! (durations, `load_duration`, ...) are ignored; everything not essential
//! has a default so that older and newer servers both parse.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The body of `POST /api/chat`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    /// Always sent: Ollama streams when the field is absent.
    pub stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// `"json"` or a JSON schema object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<Value>,
    #[serde(skip_serializing_if = "Options::is_empty")]
    pub options: Options,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<Value>,
}

/// A chat message, in requests and in responses.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Message {
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub content: String,
    /// Base64 image data, without a `data:` prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// On `tool` messages: which function produced this result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// Reasoning text of thinking models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ToolCall {
    pub function: FunctionCall,
}

/// Unlike OpenAI, Ollama carries arguments as a JSON object, not as text.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FunctionCall {
    pub name: String,
    #[serde(default)]
    pub arguments: Value,
}

/// A tool offered to the model (`{"type":"function","function":{...}}`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Tool {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: FunctionDef,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FunctionDef {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
}

/// Sampling options; Ollama names the output cap `num_predict`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Options {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_predict: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
}

impl Options {
    pub fn is_empty(&self) -> bool {
        *self == Options::default()
    }
}

/// The answer of a non-streaming chat call, and also each NDJSON line of a
/// streamed one (the last with `done: true` and the counts).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct ChatResponse {
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub message: Option<Message>,
    #[serde(default)]
    pub done: bool,
    /// `stop`, `length`, `load`, `unload`.
    #[serde(default)]
    pub done_reason: Option<String>,
    #[serde(default)]
    pub prompt_eval_count: Option<u64>,
    #[serde(default)]
    pub eval_count: Option<u64>,
    /// Ollama reports a failure after the stream started as `{"error": "..."}`.
    #[serde(default)]
    pub error: Option<Value>,
}

/// The body of `POST /api/embed`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EmbedRequest {
    pub model: String,
    pub input: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct EmbedResponse {
    pub embeddings: Vec<Vec<f32>>,
    #[serde(default)]
    pub prompt_eval_count: Option<u64>,
}

/// `GET /api/tags`: the models pulled on this server.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct TagList {
    #[serde(default)]
    pub models: Vec<TagItem>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct TagItem {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub model: String,
}
