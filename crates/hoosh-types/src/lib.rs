//! Wire types shared by every hoosh crate. Serde only, no behaviour.
//!
//! Layout:
//! - [`openai`]: the OpenAI REST shapes (chat completions and chunks, legacy
//!   completions, embeddings, models, errors). The OpenAI chat shape is also
//!   hoosh's *canonical* request/response: every provider adapter converts
//!   from and to it, so a request that arrives in OpenAI form crosses the
//!   gateway without a second translation.
//! - [`anthropic`]: the Anthropic Messages API shapes (request, response,
//!   streaming events), used by the Anthropic provider adapter.
//! - [`responses`]: the OpenAI Responses API request (Codex, the Agents SDK).
//! - [`content`]: helpers for "string or array" fields that OpenAI accepts.
//! - [`native`]: a client API's own body carried beside the canonical one,
//!   for providers that speak that API (passthrough).

pub mod anthropic;
pub mod content;
pub mod native;
pub mod openai;
pub mod responses;

/// Seconds since the Unix epoch, the unit of OpenAI's `created` fields.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
