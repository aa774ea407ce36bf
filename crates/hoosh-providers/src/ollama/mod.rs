//! The Ollama family: Ollama's native REST API (`/api/chat` with NDJSON
//! streaming, `/api/embed`, `/api/tags`, `/api/version`), local or remote.
//! Native rather than Ollama's OpenAI-compatible endpoint because only the
//! native one takes `options` (`num_predict`, `seed`, ...), `keep_alive`,
//! JSON-schema `format` and base64 images on any message.
//!
//! Differences from the canonical shape that the conversion handles: tool
//! call arguments are JSON objects and carry no ids (ids are generated),
//! tool results name their function instead of a call id, images must be
//! base64 (URLs are refused), and Ollama has no `tool_choice` (`none`
//! withholds the tools; other choices are left to the model).

mod client;
mod convert;
mod wire;

#[cfg(test)]
mod tests;

pub use client::{OllamaProvider, stream_chunks};
