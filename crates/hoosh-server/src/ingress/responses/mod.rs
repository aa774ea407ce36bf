//! The OpenAI Responses API over the canonical pipeline:
//! [`request`] (Responses request → canonical), [`response`] (canonical
//! answer → response object), [`stream`] (canonical chunks → the streamed
//! lifecycle), [`stored`] (what `store: true` keeps, and reading it back
//! for `previous_response_id`). The routes are in `routes/responses.rs`.

pub mod request;
pub mod response;
pub mod stored;
pub mod stream;

pub use request::{Decoded, Tools, decode};
