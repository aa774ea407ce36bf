//! The Anthropic Messages API over the canonical pipeline:
//! [`request`] (Messages request → canonical), [`response`] (canonical
//! answer → Messages answer), [`stream`] (canonical chunks → Anthropic's
//! event sequence). The routes are in `routes/messages.rs`.

pub mod request;
pub mod response;
pub mod stream;

pub use request::{Decoded, decode};
