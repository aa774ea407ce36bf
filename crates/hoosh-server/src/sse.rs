//! Chunk streams → `text/event-stream` responses in OpenAI's framing:
//! `data: {chunk}` events, `: keep-alive` comments while idle, `data: [DONE]`
//! at the end. A stream that dies upstream ends with a `data: {"error":...}`
//! event and no `[DONE]`, so SDKs raise instead of reporting a normal stop.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use hoosh_core::ChunkStream;
use hoosh_types::openai::{ChatCompletionChunk, ErrorResponse};
use serde::Serialize;

use crate::error::stream_error_object;

/// How a chat chunk is shown to the client (a chat chunk, or a legacy
/// completion chunk); `None` skips it.
pub type Render = fn(ChatCompletionChunk) -> Option<Event>;

fn json_event<T: Serialize>(value: &T) -> Event {
    Event::default().json_data(value).unwrap_or_else(|_| Event::default().data("{}"))
}

pub fn render_chat(chunk: ChatCompletionChunk) -> Option<Event> {
    Some(json_event(&chunk))
}

/// The events of a chat stream. Usage is always requested upstream (for
/// accounting); it reaches the client only when it asked for it.
pub fn events(
    stream: ChunkStream,
    include_usage: bool,
    render: Render,
) -> impl Stream<Item = Result<Event, Infallible>> + Send {
    struct St {
        inner: ChunkStream,
        finished: bool,
    }
    futures_util::stream::unfold(St { inner: stream, finished: false }, move |mut st| async move {
        loop {
            if st.finished {
                return None;
            }
            match st.inner.next().await {
                None => {
                    st.finished = true;
                    return Some((Ok(Event::default().data("[DONE]")), st));
                }
                Some(Err(e)) => {
                    st.finished = true;
                    tracing::warn!(error = %e, "stream failed after it started");
                    let body = ErrorResponse { error: stream_error_object(&e) };
                    return Some((Ok(json_event(&body)), st));
                }
                Some(Ok(mut chunk)) => {
                    // A chunk that only carries another API's native event.
                    if chunk.choices.is_empty() && chunk.usage.is_none() {
                        continue;
                    }
                    if !include_usage {
                        if chunk.choices.is_empty() {
                            continue;
                        }
                        chunk.usage = None;
                    }
                    if let Some(ev) = render(chunk) {
                        return Some((Ok(ev), st));
                    }
                }
            }
        }
    })
}

pub fn response<S>(events: S, keepalive: Duration) -> Response
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    Sse::new(events).keep_alive(KeepAlive::new().interval(keepalive).text("keep-alive")).into_response()
}
