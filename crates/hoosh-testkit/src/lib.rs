//! Mock upstream LLM vendors for tests and benchmarks: real HTTP servers on
//! port 0 that speak each vendor's documented wire format (JSON, SSE,
//! NDJSON), and record what they receive.
//!
//! Behaviour is chosen by the model name, so one server serves every test
//! case (see [`scenario::Scenario`]): `mock-error-503`, `mock-flaky-2`,
//! `mock-cut`, `mock-tool`, ... and any other name answers normally.
//!
//! Layout: [`server`] (start, record, stop), [`scenario`] (model name →
//! behaviour), [`form`] (multipart uploads, parsed and recorded), then one
//! module per vendor: [`openai`] (with its audio endpoints in [`audio`]),
//! [`anthropic`], [`ollama`], [`gemini`]; and [`faulty`], an upstream on a
//! raw socket that misbehaves below HTTP (resets, lies about lengths, never
//! answers, never ends); and [`relay`], a TCP relay a test can cut to take
//! a real database "down" for one client; [`stores`], the real PostgreSQL
//! and Redis of the cluster tests, with a fresh database per test.

pub mod anthropic;
pub mod audio;
pub mod faulty;
pub mod form;
pub mod gemini;
pub mod ollama;
pub mod openai;
pub mod relay;
pub mod scenario;
pub mod server;
pub mod stores;

pub use form::FormPart;
pub use server::{MockServer, Recorded};
