//! hoosh-local: models served in-process, as one more [`hoosh_core::Provider`].
//!
//! Layout:
//! - [`provider`]: [`LocalProvider`], which owns the loaded engines (GGUF chat
//!   models on `hoosh-llm`, embedding models on `hoosh-embed`, Whisper on
//!   `hoosh-whisper`) keyed by model id;
//! - `speech`: transcription requests → the Whisper engine → the asked
//!   `response_format`, or streamed `transcript.text.*` events;
//! - [`convert`]: canonical chat request → generation request, and generation
//!   events → OpenAI chunks and responses;
//! - [`memory`]: a model's resident size estimated before loading it, for
//!   the LRU bound `local.max_memory_mb`;
//! - [`setup`]: config + model store → the provider, and the list of missing
//!   default models with the command that fetches them.
//!
//! Inference never runs on the async runtime: the LLM and Whisper engines
//! drive each model from their own thread, embeddings run on the blocking pool.

pub mod convert;
pub mod memory;
pub mod provider;
pub mod setup;
mod speech;
pub mod tools;

pub use provider::LocalProvider;
pub use setup::{Setup, build};
