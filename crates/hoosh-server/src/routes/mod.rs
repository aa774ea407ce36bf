//! One file per endpoint family: decode and validate the client's request,
//! then hand it to [`crate::pipeline`].

pub mod admin;
pub mod audio;
pub mod budgets;
pub mod chat;
pub mod completions;
pub mod embeddings;
pub mod health;
pub mod messages;
pub mod models;
pub mod ollama;
pub mod responses;
