//! A canonical chunk stream → Anthropic's streamed event sequence:
//!
//! ```text
//! message_start, ping,
//! (content_block_start, content_block_delta…, content_block_stop)…,
//! message_delta (stop_reason, usage), message_stop
//! ```
//!
//! Reasoning text opens a `thinking` block, answer text a `text` block, and
//! each tool call a `tool_use` block whose arguments arrive as
//! `input_json_delta` fragments, exactly as the canonical stream split them.
//! A block closes when the next kind starts. A stream that fails after it
//! started ends with an `error` event and no `message_stop`, so SDKs raise.
//! Only choice 0 is shown: the Messages API has no `n`. A stream served
//! natively by an Anthropic provider is passed through event for event.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::response::sse::Event;
use futures_util::{Stream, StreamExt};
use hoosh_core::{ChunkStream, ProviderError};
use hoosh_types::anthropic::{
    BlockDelta, ContentBlock, ErrorBody, MessageDeltaBody, MessagesResponse, Role, StopReason, StreamEvent, Usage,
};
use hoosh_types::openai::{ChatCompletionChunk, Usage as OpenAiUsage};

use super::response::{message_id, stop_reason_of, usage};
use crate::error;

/// The open content block.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Thinking,
    Text,
    /// A tool call, by its canonical index.
    Tool(u32),
}

/// The state between chunks.
pub struct Translator {
    model: String,
    started: bool,
    open: Option<Open>,
    /// Index of the open block, or of the next one.
    index: u32,
    stop: Option<StopReason>,
    usage: Option<OpenAiUsage>,
}

impl Translator {
    /// `model`: the name the client asked for, shown until the upstream names its own.
    pub fn new(model: &str) -> Translator {
        Translator { model: model.to_owned(), started: false, open: None, index: 0, stop: None, usage: None }
    }

    fn start(&mut self, id: &str, out: &mut Vec<StreamEvent>) {
        if self.started {
            return;
        }
        self.started = true;
        out.push(StreamEvent::MessageStart {
            message: MessagesResponse {
                id: message_id(id),
                kind: "message".into(),
                role: Role::Assistant,
                content: Vec::new(),
                model: self.model.clone(),
                stop_reason: None,
                stop_sequence: None,
                usage: Usage::default(),
            },
        });
        out.push(StreamEvent::Ping);
    }

    /// Closes the open block unless it is `want`; opens `want` with `block` if needed.
    fn switch(&mut self, want: Open, block: impl FnOnce() -> ContentBlock, out: &mut Vec<StreamEvent>) {
        if self.open == Some(want) {
            return;
        }
        self.close(out);
        out.push(StreamEvent::ContentBlockStart { index: self.index, content_block: block() });
        self.open = Some(want);
    }

    fn close(&mut self, out: &mut Vec<StreamEvent>) {
        if self.open.take().is_some() {
            out.push(StreamEvent::ContentBlockStop { index: self.index });
            self.index += 1;
        }
    }

    /// The events one canonical chunk makes.
    pub fn chunk(&mut self, chunk: ChatCompletionChunk) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        if !chunk.model.is_empty() && !self.started {
            self.model.clone_from(&chunk.model);
        }
        self.start(&chunk.id, &mut out);
        if let Some(u) = chunk.usage {
            self.usage = Some(u);
        }
        let Some(choice) = chunk.choices.into_iter().find(|c| c.index == 0) else { return out };
        let d = choice.delta;
        if let Some(thinking) = d.reasoning_content.filter(|t| !t.is_empty()) {
            self.switch(
                Open::Thinking,
                || ContentBlock::Thinking { thinking: String::new(), signature: Some(String::new()) },
                &mut out,
            );
            out.push(StreamEvent::ContentBlockDelta {
                index: self.index,
                delta: BlockDelta::ThinkingDelta { thinking },
            });
        }
        if let Some(text) = d.content.or(d.refusal).filter(|t| !t.is_empty()) {
            self.switch(Open::Text, || ContentBlock::Text { text: String::new() }, &mut out);
            out.push(StreamEvent::ContentBlockDelta { index: self.index, delta: BlockDelta::TextDelta { text } });
        }
        for call in d.tool_calls.unwrap_or_default() {
            let function = call.function.unwrap_or_default();
            let index = self.index;
            self.switch(
                Open::Tool(call.index),
                || ContentBlock::ToolUse {
                    id: call.id.clone().unwrap_or_else(|| format!("toolu_{index}")),
                    name: function.name.clone().unwrap_or_default(),
                    input: serde_json::Value::Object(Default::default()),
                },
                &mut out,
            );
            if let Some(partial_json) = function.arguments.filter(|a| !a.is_empty()) {
                out.push(StreamEvent::ContentBlockDelta {
                    index: self.index,
                    delta: BlockDelta::InputJsonDelta { partial_json },
                });
            }
        }
        if let Some(f) = choice.finish_reason {
            self.stop = Some(stop_reason_of(f));
        }
        out
    }

    /// The closing events of a stream that ended normally.
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        self.start("", &mut out);
        self.close(&mut out);
        out.push(StreamEvent::MessageDelta {
            delta: MessageDeltaBody {
                stop_reason: Some(self.stop.unwrap_or(StopReason::EndTurn)),
                stop_sequence: None,
            },
            usage: Some(self.usage.map(usage).unwrap_or_default()),
        });
        out.push(StreamEvent::MessageStop);
        out
    }
}

/// The SSE event for one Anthropic stream event, named by its type.
pub fn sse_event(ev: &StreamEvent) -> Event {
    let name = match ev {
        StreamEvent::MessageStart { .. } => "message_start",
        StreamEvent::ContentBlockStart { .. } => "content_block_start",
        StreamEvent::ContentBlockDelta { .. } => "content_block_delta",
        StreamEvent::ContentBlockStop { .. } => "content_block_stop",
        StreamEvent::MessageDelta { .. } => "message_delta",
        StreamEvent::MessageStop => "message_stop",
        StreamEvent::Ping => "ping",
        StreamEvent::Error { .. } => "error",
    };
    Event::default().event(name).json_data(ev).unwrap_or_else(|_| Event::default().event(name).data("{}"))
}

/// The `error` event for a stream that failed after it started.
pub fn error_event(e: &ProviderError) -> StreamEvent {
    let (status, obj) = error::stream_error_parts(e);
    StreamEvent::Error { error: ErrorBody { kind: error::anthropic_error_type(status).into(), message: obj.message } }
}

/// The whole event stream for `chunks`. A stream an Anthropic provider
/// served natively carries its own events on the chunks: those go out
/// verbatim and the canonical part of every chunk is ignored.
pub fn events(chunks: ChunkStream, model: &str) -> impl Stream<Item = Result<Event, Infallible>> + Send + use<> {
    struct St {
        inner: ChunkStream,
        tr: Translator,
        queue: VecDeque<Event>,
        native: bool,
        done: bool,
    }
    let st = St { inner: chunks, tr: Translator::new(model), queue: VecDeque::new(), native: false, done: false };
    futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(ev) = st.queue.pop_front() {
                return Some((Ok(ev), st));
            }
            if st.done {
                return None;
            }
            match st.inner.next().await {
                Some(Ok(chunk)) => match &chunk.native {
                    Some(raw) => {
                        st.native = true;
                        st.queue.push_back(Event::default().event(raw.event.as_str()).data(raw.data.as_str()));
                    }
                    None if st.native => {}
                    None => st.queue.extend(st.tr.chunk(chunk).iter().map(sse_event)),
                },
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "stream failed after it started");
                    st.done = true;
                    st.queue.push_back(sse_event(&error_event(&e)));
                }
                None => {
                    st.done = true;
                    if !st.native {
                        st.queue.extend(st.tr.finish().iter().map(sse_event));
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use hoosh_types::openai::{Delta, FinishReason, FunctionCallDelta, ToolCallDelta};
    use serde_json::{Value, json};

    use super::*;

    fn chunk(delta: Delta, finish: Option<FinishReason>) -> ChatCompletionChunk {
        ChatCompletionChunk::delta("chatcmpl-1", 0, "gpt-4o", delta, finish)
    }

    fn run(chunks: Vec<ChatCompletionChunk>) -> Vec<Value> {
        let mut tr = Translator::new("asked");
        let mut out: Vec<StreamEvent> = chunks.into_iter().flat_map(|c| tr.chunk(c)).collect();
        out.extend(tr.finish());
        out.iter().map(|e| serde_json::to_value(e).unwrap()).collect()
    }

    /// A tool call split across chunks (name first, arguments in pieces,
    /// one fragment cut inside a multi-byte character's escape), after text.
    #[test]
    fn text_then_a_split_tool_call_is_two_blocks_with_json_fragments() {
        let tool = |id: Option<&str>, name: Option<&str>, args: &str| {
            Delta::tool_call(ToolCallDelta {
                index: 0,
                id: id.map(str::to_owned),
                kind: None,
                function: Some(FunctionCallDelta { name: name.map(str::to_owned), arguments: Some(args.to_owned()) }),
            })
        };
        let mut usage_chunk = ChatCompletionChunk::usage_only("chatcmpl-1", 0, "gpt-4o", OpenAiUsage::new(12, 9));
        usage_chunk.choices.clear();
        let events = run(vec![
            chunk(Delta::role(hoosh_types::openai::Role::Assistant), None),
            chunk(Delta::content("Let me "), None),
            chunk(Delta::content("check."), None),
            chunk(tool(Some("call_1"), Some("Read"), ""), None),
            chunk(tool(None, None, "{\"path\":"), None),
            chunk(tool(None, None, "\"é.txt\"}"), None),
            chunk(Delta::default(), Some(FinishReason::ToolCalls)),
            usage_chunk,
        ]);
        assert_eq!(
            events,
            vec![
                json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
                    "content": [], "model": "gpt-4o", "stop_reason": null, "stop_sequence": null,
                    "usage": {"input_tokens": 0, "output_tokens": 0}}}),
                json!({"type": "ping"}),
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me "}}),
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "check."}}),
                json!({"type": "content_block_stop", "index": 0}),
                json!({"type": "content_block_start", "index": 1,
                    "content_block": {"type": "tool_use", "id": "call_1", "name": "Read", "input": {}}}),
                json!({"type": "content_block_delta", "index": 1,
                    "delta": {"type": "input_json_delta", "partial_json": "{\"path\":"}}),
                json!({"type": "content_block_delta", "index": 1,
                    "delta": {"type": "input_json_delta", "partial_json": "\"é.txt\"}"}}),
                json!({"type": "content_block_stop", "index": 1}),
                json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
                    "usage": {"input_tokens": 12, "output_tokens": 9,
                              "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}),
                json!({"type": "message_stop"}),
            ]
        );
    }

    #[test]
    fn reasoning_opens_a_thinking_block_before_the_text() {
        let thinking = Delta { reasoning_content: Some("hmm".into()), ..Delta::default() };
        let events = run(vec![chunk(thinking, None), chunk(Delta::content("ok"), Some(FinishReason::Length))]);
        let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(events[2]["content_block"]["type"], "thinking");
        assert_eq!(events[3]["delta"], json!({"type": "thinking_delta", "thinking": "hmm"}));
        assert_eq!(events[8]["delta"]["stop_reason"], "max_tokens");
    }

    #[test]
    fn two_parallel_tool_calls_are_two_blocks() {
        let call = |index: u32, id: &str| {
            Delta::tool_call(ToolCallDelta {
                index,
                id: Some(id.into()),
                kind: None,
                function: Some(FunctionCallDelta { name: Some("f".into()), arguments: Some("{}".into()) }),
            })
        };
        let events = run(vec![chunk(call(0, "a"), None), chunk(call(1, "b"), Some(FinishReason::ToolCalls))]);
        let starts: Vec<&Value> =
            events.iter().filter(|e| e["type"] == "content_block_start").map(|e| &e["content_block"]["id"]).collect();
        assert_eq!(starts, [&json!("a"), &json!("b")]);
    }

    #[test]
    fn an_empty_stream_is_still_a_whole_message() {
        let types: Vec<String> = run(vec![]).iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect();
        assert_eq!(types, ["message_start", "ping", "message_delta", "message_stop"]);
    }
}
