//! OpenAI REST wire shapes, field for field as the public API defines them.
//! Optional fields are skipped when absent so that a request forwarded to an
//! OpenAI-compatible upstream carries exactly what the client sent.

mod chat;
mod completions;
mod embeddings;
mod error;
mod models;
mod stream;

pub use chat::*;
pub use completions::*;
pub use embeddings::*;
pub use error::*;
pub use models::*;
pub use stream::*;
