//! The OpenAI-compatible family: OpenAI, Azure OpenAI, DeepSeek, Groq, xAI,
//! OpenRouter, Mistral, Together, Fireworks, LM Studio, LocalAI, llama.cpp
//! server, vLLM and any custom base URL. The canonical request already is
//! this wire format, so conversion is mostly a per-preset dialect fix-up.
//! The audio endpoints (`audio.rs`) are served where the preset says so.

mod audio;
mod client;
mod convert;
mod wire;

#[cfg(test)]
mod tests;

pub use client::OpenAiProvider;
