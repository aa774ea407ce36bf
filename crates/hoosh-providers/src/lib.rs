//! hoosh-providers: adapters from hoosh's canonical (OpenAI chat) shape to
//! each upstream's native wire format, and back.
//!
//! Layout:
//! - one folder per wire family, each with the same files — `mod.rs`
//!   (what the family covers), `wire.rs` (the vendor's JSON shapes),
//!   `convert.rs` (pure canonical ⇄ wire functions), `client.rs` (URLs,
//!   auth, HTTP calls; the [`hoosh_core::Provider`] impl), `tests.rs`
//!   (against a mock vendor from `hoosh-testkit`): [`openai`] (OpenAI and
//!   every OpenAI-compatible server), [`anthropic`], [`ollama`], [`gemini`];
//! - [`presets`]: what each `type = "..."` means (family, base URL, key env
//!   var, default model globs, parameter support);
//! - [`registry`]: config → live providers, and zero-config discovery from
//!   the env vars the vendors' own SDKs read;
//! - [`http`] and [`sse`]: the shared client, error classification, and
//!   byte-exact SSE/NDJSON decoding.

pub mod adapter;
pub mod anthropic;
pub mod gemini;
pub mod http;
pub mod ollama;
pub mod openai;
pub mod presets;
pub mod registry;
pub mod sse;
