//! [`ChatStream`]: the chunks of a streamed chat completion, read off the
//! SSE body as they arrive.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::Stream;
use futures_util::stream::FusedStream;
use hoosh_types::openai::{ChatCompletionChunk, ErrorResponse};

use crate::error::{ClientError, snippet};
use crate::sse::{SseEvent, SseParser};

type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

/// A `Stream` of [`ChatCompletionChunk`]s.
///
/// It ends (`None`) after `data: [DONE]`. Anything else that ends it yields
/// one `Err` first: an in-band `{"error": ...}` event ([`ClientError::Api`]),
/// a chunk that does not parse ([`ClientError::Decode`]), a dropped
/// connection ([`ClientError::Transport`]) or a body that closes without
/// `[DONE]` ([`ClientError::StreamTruncated`]). Nothing follows an `Err`.
pub struct ChatStream {
    body: ByteStream,
    parser: SseParser,
    /// Events parsed but not yet handed out.
    pending: VecDeque<SseEvent>,
    status: u16,
    request_id: Option<String>,
    body_ended: bool,
    finished: bool,
}

/// What one SSE event means to the stream.
enum Step {
    Chunk(ChatCompletionChunk),
    Done,
    Skip,
    Fail(ClientError),
}

impl ChatStream {
    pub(crate) fn new(response: reqwest::Response) -> ChatStream {
        ChatStream {
            status: response.status().as_u16(),
            request_id: crate::error::request_id(&response),
            body: Box::pin(response.bytes_stream()),
            parser: SseParser::new(),
            pending: VecDeque::new(),
            body_ended: false,
            finished: false,
        }
    }

    /// The `x-request-id` header of the stream response.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    fn interpret(&self, event: SseEvent) -> Step {
        let data = event.data.trim();
        if data == "[DONE]" {
            return Step::Done;
        }
        if data.is_empty() {
            return Step::Skip;
        }
        match serde_json::from_str::<ChatCompletionChunk>(data) {
            Ok(chunk) => Step::Chunk(chunk),
            Err(chunk_err) => match serde_json::from_str::<ErrorResponse>(data) {
                Ok(envelope) => Step::Fail(ClientError::Api {
                    status: self.status,
                    error: envelope.error,
                    request_id: self.request_id.clone(),
                }),
                Err(_) => Step::Fail(ClientError::Decode(format!(
                    "stream event is not a chat completion chunk ({chunk_err}): {}",
                    snippet(data)
                ))),
            },
        }
    }

    fn fail(&mut self, error: ClientError) -> Poll<Option<Result<ChatCompletionChunk, ClientError>>> {
        self.finished = true;
        Poll::Ready(Some(Err(error)))
    }
}

impl Stream for ChatStream {
    type Item = Result<ChatCompletionChunk, ClientError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.finished {
                return Poll::Ready(None);
            }
            if let Some(event) = this.pending.pop_front() {
                match this.interpret(event) {
                    Step::Chunk(chunk) => return Poll::Ready(Some(Ok(chunk))),
                    Step::Skip => continue,
                    Step::Done => {
                        this.finished = true;
                        return Poll::Ready(None);
                    }
                    Step::Fail(e) => return this.fail(e),
                }
            }
            if this.body_ended {
                return this.fail(ClientError::StreamTruncated);
            }
            let parsed = match ready!(this.body.as_mut().poll_next(cx)) {
                Some(Ok(bytes)) => this.parser.feed(&bytes, &mut this.pending),
                Some(Err(e)) => return this.fail(ClientError::transport(&e)),
                None => {
                    this.body_ended = true;
                    this.parser.finish(&mut this.pending)
                }
            };
            if let Err(e) = parsed {
                return this.fail(ClientError::Decode(format!("stream is not valid UTF-8: {e}")));
            }
        }
    }
}

impl FusedStream for ChatStream {
    fn is_terminated(&self) -> bool {
        self.finished
    }
}

impl fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatStream")
            .field("status", &self.status)
            .field("request_id", &self.request_id)
            .field("pending", &self.pending.len())
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}
