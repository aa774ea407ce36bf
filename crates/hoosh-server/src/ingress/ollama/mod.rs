//! Ollama's API over the canonical pipeline: [`request`] (`/api/chat` and
//! `/api/generate` bodies → canonical), [`response`] (canonical answers →
//! Ollama's JSON and NDJSON). The routes are in `routes/ollama.rs`.

pub mod request;
pub mod response;
