//! The OpenAI-compatible adapter against the mock OpenAI server.
