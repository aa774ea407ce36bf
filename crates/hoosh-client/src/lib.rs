//! A typed async client for a hoosh gateway, or any OpenAI-compatible
//! endpoint. Applications use it, and so does the `hoosh` CLI.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hoosh_client::ClientError> {
//! use futures_util::StreamExt;
//! use hoosh_client::HooshClient;
//! use hoosh_client::types::{ChatCompletionRequest, ChatMessage, Role};
//!
//! let client = HooshClient::builder("http://127.0.0.1:8088").api_key(Some("sk-...".into())).build()?;
//! let req = ChatCompletionRequest {
//!     model: "gpt-4o".into(),
//!     messages: vec![ChatMessage::text(Role::User, "hi")],
//!     ..Default::default()
//! };
//! let mut stream = client.chat_stream(&req).await?;
//! while let Some(chunk) = stream.next().await {
//!     for choice in chunk?.choices {
//!         print!("{}", choice.delta.content.unwrap_or_default());
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Layout:
//! - [`client`]: [`HooshClient`] and its builder; one method per endpoint
//!   (chat, chat stream, embeddings, models, health, providers), URL
//!   joining, auth header, timeouts.
//! - [`stream`]: [`ChatStream`], chat completion chunks decoded from the
//!   event stream, ending at `[DONE]` or with one error.
//! - [`sse`]: the byte-level Server-Sent Events parser under `ChatStream`.
//! - [`error`]: [`ClientError`], and how an error response (OpenAI envelope
//!   or not) becomes one.
//!
//! The request and response types are hoosh's wire types: the OpenAI shapes
//! are re-exported as [`types`], the whole crate as [`hoosh_types`].

pub mod client;
pub mod error;
pub mod sse;
pub mod stream;

pub use client::{HooshClient, HooshClientBuilder};
pub use error::ClientError;
pub use hoosh_types;
pub use hoosh_types::openai as types;
pub use stream::ChatStream;
