//! Anthropic Messages API shapes as this adapter reads and writes them.
//!
//! Requests reuse the strict types of [`hoosh_types::anthropic`]: hoosh
//! builds them, so every field is known. Responses and stream events are
//! read through the lenient copies below instead, because Anthropic adds
//! content block, delta and event types over time (server tools, citations)
//! and documents that clients must skip the ones they do not know rather
//! than fail the call.

use serde::Deserialize;
use serde_json::Value;

pub use hoosh_types::anthropic::{
    ContentBlock, ErrorBody, ImageSource, Message, MessagesRequest, Metadata, Role, TextBlock, ToolChoice, ToolDef,
    Usage,
};

/// The `anthropic-version` header value this adapter speaks.
pub const API_VERSION: &str = "2023-06-01";

/// A non-streaming `POST /v1/messages` answer.
#[derive(Debug, Deserialize)]
pub struct Response {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub content: Vec<Block>,
    #[serde(default)]
    pub stop_reason: Option<StopReason>,
    #[serde(default)]
    pub usage: Usage,
}

/// A content block of an answer; kinds the gateway cannot express in the
/// OpenAI shape (server tool results, redacted thinking) become `Other`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    StopSequence,
    MaxTokens,
    ToolUse,
    PauseTurn,
    Refusal,
    ModelContextWindowExceeded,
    #[serde(other)]
    Other,
}

/// The `data:` of one server-sent event of a streamed answer.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: u32,
        content_block: Block,
    },
    ContentBlockDelta {
        index: u32,
        delta: BlockDelta,
    },
    ContentBlockStop {},
    MessageDelta {
        #[serde(default)]
        delta: MessageDelta,
        #[serde(default)]
        usage: Option<DeltaUsage>,
    },
    MessageStop,
    Ping,
    Error {
        error: ErrorBody,
    },
    #[serde(other)]
    Other,
}

/// The message shell `message_start` carries (content arrives in blocks).
#[derive(Debug, Deserialize)]
pub struct StartMessage {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub usage: Usage,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        #[serde(default)]
        partial_json: String,
    },
    ThinkingDelta {
        thinking: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Default, Deserialize)]
pub struct MessageDelta {
    #[serde(default)]
    pub stop_reason: Option<StopReason>,
}

/// `message_delta` usage: cumulative counts, of which only `output_tokens`
/// is always present (newer API versions repeat the input side too).
#[derive(Debug, Default, Deserialize)]
pub struct DeltaUsage {
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
}

/// `GET /v1/models`, one page.
#[derive(Debug, Deserialize)]
pub struct ModelPage {
    pub data: Vec<ModelItem>,
    #[serde(default)]
    pub has_more: bool,
    #[serde(default)]
    pub last_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ModelItem {
    pub id: String,
}
