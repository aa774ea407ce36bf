//! In-process GGUF inference with llama.cpp, behind a continuous-batching
//! scheduler. This is hoosh's local LLM backend (default model:
//! SmolLM2-135M-Instruct Q4_1).
//!
//! # Layout
//!
//! | file | job |
//! |---|---|
//! | `engine.rs` | [`LlmConfig`], [`LlmEngine::load`] (model + one context + the scheduler thread), [`ModelInfo`], tokenize / detokenize, [`LlmEngine::submit`] (queue, context check) |
//! | `generation.rs` | [`GenerateRequest`], the streamed [`GenEvent`]s, [`Generation`] (drop = cancel) |
//! | `template.rs` | the GGUF's Jinja chat template rendered with minijinja (ChatML fallback) |
//! | `sampling.rs` | [`SamplingParams`] → llama.cpp sampler chain |
//! | `grammar.rs` | GBNF for `response_format: json_object` |
//! | `stop.rs` | UTF-8 reassembly of token pieces; stop strings across token boundaries |
//! | `scheduler.rs` | the batching loop on its dedicated thread |
//! | `error.rs` | [`LlmError`] |
//!
//! # Request flow
//!
//! `render_chat` (caller thread) → `submit`: tokenize, check the context,
//! `try_send` into the bounded queue (`QueueFull` when full) → scheduler
//! thread: admit into a free sequence slot → prefill in one shared batch with
//! the other sequences' decode tokens → sample per sequence → `GenEvent::Text`
//! … `GenEvent::Done` on the caller's `tokio::sync::mpsc` receiver.
//!
//! All llama.cpp compute happens on the one scheduler thread: with OpenMP,
//! calls from several threads are 3–4× slower.

mod engine;
mod error;
mod generation;
pub mod grammar;
mod sampling;
mod scheduler;
pub mod stop;
pub mod template;

pub use engine::{LlmConfig, LlmEngine, ModelInfo};
pub use error::LlmError;
pub use generation::{Completion, Finish, GenEvent, GenerateRequest, Generation};
pub use sampling::SamplingParams;
