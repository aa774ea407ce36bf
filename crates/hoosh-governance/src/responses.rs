//! Stored answers of the Responses API (`store: true`): what a later
//! request's `previous_response_id` continues from, and what
//! `GET /v1/responses/{id}` returns. Each belongs to the key that made it;
//! no other key can read, continue or delete it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Stored answers older than this are deleted (the API's own retention).
pub const RESPONSE_RETENTION_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// At most this many answers are kept in memory (without a data directory);
/// the oldest go first.
pub const MEMORY_RESPONSES: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResponse {
    /// `resp_…`.
    pub id: String,
    /// The key id that made it (`anonymous` when the gateway runs open).
    pub owner: String,
    pub created_ms: i64,
    /// The response object as the client received it.
    pub response: Value,
    /// The conversation it ended (its input items and output, as canonical
    /// chat messages), which a continuation puts before its own input.
    pub conversation: Value,
    /// Its input items as the client sent them, for `input_items`.
    pub input_items: Value,
}
