//! Streaming chunks of `POST /v1/chat/completions` with `stream: true`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{FinishReason, Role, Usage};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatCompletionChunk {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChunkChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    /// The upstream's stream event this chunk came from, in the client's
    /// own API, when a native provider served a native request (see
    /// [`crate::native`]). A chunk may carry only this (no choices, no usage).
    #[serde(skip)]
    pub native: crate::native::Native<crate::native::NativeEvent>,
}

impl ChatCompletionChunk {
    pub const OBJECT: &'static str = "chat.completion.chunk";

    /// A chunk with one choice carrying `delta` (and optionally a finish reason).
    pub fn delta(id: &str, created: u64, model: &str, delta: Delta, finish_reason: Option<FinishReason>) -> Self {
        ChatCompletionChunk {
            id: id.to_owned(),
            object: Self::OBJECT.to_owned(),
            created,
            model: model.to_owned(),
            choices: vec![ChunkChoice { index: 0, delta, finish_reason, logprobs: None }],
            usage: None,
            system_fingerprint: None,
            native: None,
        }
    }

    /// The trailing usage-only chunk (`choices: []`) of `stream_options.include_usage`.
    pub fn usage_only(id: &str, created: u64, model: &str, usage: Usage) -> Self {
        ChatCompletionChunk {
            id: id.to_owned(),
            object: Self::OBJECT.to_owned(),
            created,
            model: model.to_owned(),
            choices: Vec::new(),
            usage: Some(usage),
            system_fingerprint: None,
            native: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: Delta,
    pub finish_reason: Option<FinishReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Delta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
}

impl Delta {
    pub fn role(role: Role) -> Self {
        Delta { role: Some(role), content: Some(String::new()), ..Default::default() }
    }

    pub fn content(text: impl Into<String>) -> Self {
        Delta { content: Some(text.into()), ..Default::default() }
    }

    pub fn tool_call(call: ToolCallDelta) -> Self {
        Delta { tool_calls: Some(vec![call]), ..Default::default() }
    }

    pub fn is_empty(&self) -> bool {
        self.role.is_none()
            && self.content.as_deref().is_none_or(str::is_empty)
            && self.tool_calls.as_ref().is_none_or(Vec::is_empty)
            && self.refusal.is_none()
            && self.reasoning_content.is_none()
    }
}

/// A fragment of a tool call: the first fragment of a call carries `id` and
/// `function.name`, later ones only argument text; `index` ties them together.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ToolCallDelta {
    pub index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<super::ToolKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCallDelta>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FunctionCallDelta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}
