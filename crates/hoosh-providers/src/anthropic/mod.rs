//! The Anthropic family: the Messages API (`POST /v1/messages`) of
//! api.anthropic.com, or any server that speaks it. System and developer
//! messages become the top-level `system`, tool calls and results become
//! `tool_use` / `tool_result` blocks, and streamed events are re-cut into
//! OpenAI chunks (role first, then deltas, the finish reason, and always a
//! usage-only chunk).

mod client;
mod convert;
mod wire;

#[cfg(test)]
mod tests;

pub use client::AnthropicProvider;
