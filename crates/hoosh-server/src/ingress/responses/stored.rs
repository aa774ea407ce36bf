//! `store: true`: a finished response is kept (in the governance store:
//! SQLite beside the ledger, or memory without a data directory) under the
//! key that made it, with the conversation it ended as canonical messages.
//! `previous_response_id` continues that conversation; reading, continuing
//! and deleting are refused — as "not found" — to every other key.

use std::sync::Arc;

use hoosh_governance::{Store, StoredResponse};
use hoosh_types::openai::{ChatMessage, FunctionCall, MessageContent, Role, ToolCall, ToolKind};
use serde_json::{Value, json};

use super::request::NAMESPACE_SEPARATOR;
use super::response::{new_id, output_text};
use crate::error::ApiError;

/// What is needed to store a response once it is finished.
#[derive(Clone)]
pub struct Keep {
    pub store: Arc<dyn Store>,
    pub owner: String,
    pub now_ms: i64,
    /// The conversation up to this answer (previous turns and this input,
    /// without this request's `instructions`).
    pub conversation: Vec<ChatMessage>,
    /// This request's input items as sent (a string input as one message).
    pub input_items: Value,
}

impl Keep {
    /// Stores `response` (the finished object) before the client sees it
    /// finished, so a continuation sent the moment it arrives finds it. A
    /// synchronous write: one small row (SQLite in WAL mode commits without
    /// an fsync; in a cluster, one PostgreSQL round trip, which fails at
    /// once while the database is known to be down), cheaper than a hop to
    /// the blocking pool.
    pub fn save(self, response: &Value) {
        let mut conversation = self.conversation;
        conversation.push(assistant_turn(response["output"].as_array().map(Vec::as_slice).unwrap_or_default()));
        let record = StoredResponse {
            id: response["id"].as_str().unwrap_or_default().to_owned(),
            owner: self.owner,
            created_ms: self.now_ms,
            response: response.clone(),
            conversation: serde_json::to_value(&conversation).unwrap_or_default(),
            input_items: self.input_items,
        };
        if let Err(e) = self.store.put_response(&record) {
            tracing::error!(error = %e, id = %record.id, "could not store the response");
        }
    }
}

/// The input items as the client sent them, each with an id, for
/// `GET /v1/responses/{id}/input_items`.
pub fn input_items(input: Option<&Value>) -> Value {
    let items = match input {
        Some(Value::String(text)) => {
            vec![json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})]
        }
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    Value::Array(
        items
            .into_iter()
            .map(|mut item| {
                if item.get("id").is_none()
                    && let Value::Object(o) = &mut item
                {
                    o.insert("id".into(), json!(new_id("msg")));
                }
                item
            })
            .collect(),
    )
}

/// The response's output as one canonical assistant turn.
fn assistant_turn(output: &[Value]) -> ChatMessage {
    let text = output_text(output);
    let calls: Vec<ToolCall> = output
        .iter()
        .filter(|i| i["type"] == "function_call")
        .map(|i| {
            let name = match (i["namespace"].as_str(), i["name"].as_str().unwrap_or_default()) {
                (Some(ns), name) => format!("{ns}{NAMESPACE_SEPARATOR}{name}"),
                (None, name) => name.to_owned(),
            };
            ToolCall {
                id: i["call_id"].as_str().unwrap_or_default().to_owned(),
                kind: ToolKind::Function,
                function: FunctionCall { name, arguments: i["arguments"].as_str().unwrap_or("{}").to_owned() },
            }
        })
        .collect();
    ChatMessage {
        content: (!text.is_empty()).then_some(MessageContent::Text(text)),
        tool_calls: (!calls.is_empty()).then_some(calls),
        ..ChatMessage::text(Role::Assistant, "")
    }
}

/// The stored response `id` if `owner` made it; anything else is "not found".
pub async fn load(store: &Arc<dyn Store>, id: &str, owner: &str) -> Result<StoredResponse, ApiError> {
    let store = Arc::clone(store);
    let key = id.to_owned();
    let found = tokio::task::spawn_blocking(move || store.get_response(&key))
        .await
        .map_err(|e| ApiError::Internal(format!("store task failed: {e}")))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    match found {
        Some(r) if r.owner == owner => Ok(r),
        _ => Err(ApiError::NotFound(format!("No response with id `{id}`."))),
    }
}

/// A stored response's conversation, to continue it.
pub fn conversation(r: &StoredResponse) -> Vec<ChatMessage> {
    serde_json::from_value(r.conversation.clone()).unwrap_or_default()
}
