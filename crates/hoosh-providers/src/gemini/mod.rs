//! The Google Gemini family: the Generative Language API (`v1beta`) at
//! generativelanguage.googleapis.com, authenticated with an API key in the
//! `x-goog-api-key` header. Covers chat (`generateContent`), streaming
//! (`streamGenerateContent?alt=sse`), tools (function declarations and
//! calls), images and audio (inline data or fetched URLs), JSON mode and
//! response schemas, embeddings (`batchEmbedContents`) and the model list.
//! Vertex AI's Gemini endpoints (OAuth, project paths) are not covered.

mod client;
mod convert;
mod wire;

#[cfg(test)]
mod tests;

pub use client::GeminiProvider;
