//! A canonical chunk stream → the Responses API's streamed lifecycle:
//!
//! ```text
//! response.created, response.in_progress,
//! reasoning: output_item.added (reasoning), reasoning_summary_part.added,
//!            reasoning_summary_text.delta…, reasoning_summary_text.done,
//!            reasoning_summary_part.done, output_item.done
//! per text:  output_item.added (message), content_part.added,
//!            output_text.delta…, output_text.done, content_part.done,
//!            output_item.done
//! per call:  output_item.added (function_call),
//!            function_call_arguments.delta…, function_call_arguments.done,
//!            output_item.done
//! response.completed (the whole response, with usage)
//! ```
//!
//! Every event carries `type` and a `sequence_number`. A stream that fails
//! after it started ends with `response.failed`. Clients such as Codex
//! need all of it: without `response.completed` they retry, and without the
//! item events they show nothing.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::response::sse::Event;
use futures_util::{Stream, StreamExt};
use hoosh_core::{ChunkStream, ProviderError};
use hoosh_types::openai::{ChatCompletionChunk, FinishReason, Usage};
use serde_json::{Value, json};

use super::request::Tools;
use super::response::{Echo, call_item, message_item, new_id, reasoning_item, status_of, usage};
use crate::error;

/// The item being streamed.
enum Open {
    Reasoning { id: String, text: String },
    Message { id: String, text: String },
    Call { index: u32, id: String, call_id: String, name: String, arguments: String },
}

/// The state between chunks; `output` collects the finished items for the
/// final response object.
pub struct Translator {
    echo: Echo,
    tools: Tools,
    seq: u64,
    started: bool,
    open: Option<Open>,
    output: Vec<Value>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
}

impl Translator {
    pub fn new(echo: Echo, tools: Tools) -> Translator {
        Translator { echo, tools, seq: 0, started: false, open: None, output: Vec::new(), finish: None, usage: None }
    }

    fn emit(&mut self, out: &mut Vec<Value>, kind: &str, mut body: Value) {
        body["type"] = json!(kind);
        body["sequence_number"] = json!(self.seq);
        self.seq += 1;
        out.push(body);
    }

    fn start(&mut self, out: &mut Vec<Value>) {
        if self.started {
            return;
        }
        self.started = true;
        let response = self.echo.object("in_progress", &[], None, None);
        self.emit(out, "response.created", json!({"response": response}));
        self.emit(out, "response.in_progress", json!({"response": response}));
    }

    fn close(&mut self, out: &mut Vec<Value>) {
        let index = self.output.len();
        match self.open.take() {
            None => {}
            Some(Open::Reasoning { id, text }) => {
                let part = json!({"type": "summary_text", "text": text});
                let at = json!({"item_id": id, "output_index": index, "summary_index": 0});
                self.emit(out, "response.reasoning_summary_text.done", merge(&at, json!({"text": text})));
                self.emit(out, "response.reasoning_summary_part.done", merge(&at, json!({"part": part})));
                let item = reasoning_item(&id, &text);
                self.emit(out, "response.output_item.done", json!({"output_index": index, "item": item}));
                self.output.push(item);
            }
            Some(Open::Message { id, text }) => {
                let part = json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []});
                let at = json!({"item_id": id, "output_index": index, "content_index": 0});
                self.emit(out, "response.output_text.done", merge(&at, json!({"text": text, "logprobs": []})));
                self.emit(out, "response.content_part.done", merge(&at, json!({"part": part})));
                let item = message_item(&id, &text, "completed");
                self.emit(out, "response.output_item.done", json!({"output_index": index, "item": item}));
                self.output.push(item);
            }
            Some(Open::Call { id, call_id, name, arguments, .. }) => {
                let at = json!({"item_id": id, "output_index": index});
                self.emit(out, "response.function_call_arguments.done", merge(&at, json!({"arguments": arguments})));
                let item = call_item(&id, &call_id, &name, &arguments, "completed", &self.tools);
                self.emit(out, "response.output_item.done", json!({"output_index": index, "item": item}));
                self.output.push(item);
            }
        }
    }

    /// The events one canonical chunk makes.
    pub fn chunk(&mut self, chunk: ChatCompletionChunk) -> Vec<Value> {
        let mut out = Vec::new();
        self.start(&mut out);
        if let Some(u) = chunk.usage {
            self.usage = Some(u);
        }
        let Some(choice) = chunk.choices.into_iter().find(|c| c.index == 0) else { return out };
        let d = choice.delta;
        if let Some(thinking) = d.reasoning_content.filter(|t| !t.is_empty()) {
            if !matches!(self.open, Some(Open::Reasoning { .. })) {
                self.close(&mut out);
                let id = new_id("rs");
                let index = self.output.len();
                let item = json!({"type": "reasoning", "id": id, "summary": []});
                self.emit(&mut out, "response.output_item.added", json!({"output_index": index, "item": item}));
                let part = json!({"type": "summary_text", "text": ""});
                self.emit(
                    &mut out,
                    "response.reasoning_summary_part.added",
                    json!({"item_id": id, "output_index": index, "summary_index": 0, "part": part}),
                );
                self.open = Some(Open::Reasoning { id, text: String::new() });
            }
            let index = self.output.len();
            if let Some(Open::Reasoning { id, text }) = &mut self.open {
                text.push_str(&thinking);
                let body = json!({"item_id": id, "output_index": index, "summary_index": 0, "delta": thinking});
                self.emit(&mut out, "response.reasoning_summary_text.delta", body);
            }
        }
        if let Some(text) = d.content.or(d.refusal).filter(|t| !t.is_empty()) {
            if !matches!(self.open, Some(Open::Message { .. })) {
                self.close(&mut out);
                let id = new_id("msg");
                let index = self.output.len();
                let item =
                    json!({"type": "message", "id": id, "status": "in_progress", "role": "assistant", "content": []});
                self.emit(&mut out, "response.output_item.added", json!({"output_index": index, "item": item}));
                let part = json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []});
                self.emit(
                    &mut out,
                    "response.content_part.added",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "part": part}),
                );
                self.open = Some(Open::Message { id, text: String::new() });
            }
            let index = self.output.len();
            if let Some(Open::Message { id, text: all }) = &mut self.open {
                all.push_str(&text);
                let body =
                    json!({"item_id": id, "output_index": index, "content_index": 0, "delta": text, "logprobs": []});
                self.emit(&mut out, "response.output_text.delta", body);
            }
        }
        for call in d.tool_calls.unwrap_or_default() {
            let function = call.function.unwrap_or_default();
            let same = matches!(&self.open, Some(Open::Call { index, .. }) if *index == call.index);
            if !same {
                self.close(&mut out);
                let id = new_id("fc");
                let call_id = call.id.clone().unwrap_or_else(|| new_id("call"));
                let name = function.name.clone().unwrap_or_default();
                let index = self.output.len();
                let item = call_item(&id, &call_id, &name, "", "in_progress", &self.tools);
                self.emit(&mut out, "response.output_item.added", json!({"output_index": index, "item": item}));
                self.open = Some(Open::Call { index: call.index, id, call_id, name, arguments: String::new() });
            }
            let index = self.output.len();
            if let (Some(delta), Some(Open::Call { id, arguments, .. })) =
                (function.arguments.filter(|a| !a.is_empty()), &mut self.open)
            {
                arguments.push_str(&delta);
                let body = json!({"item_id": id, "output_index": index, "delta": delta});
                self.emit(&mut out, "response.function_call_arguments.delta", body);
            }
        }
        if let Some(f) = choice.finish_reason {
            self.finish = Some(f);
        }
        out
    }

    /// The closing events of a stream that ended normally; the final
    /// response object is the last event's `response`.
    pub fn finish(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        self.start(&mut out);
        self.close(&mut out);
        let (status, details) = status_of(self.finish);
        let usage = self.usage.as_ref().map(usage);
        let response = self.echo.object(status, &self.output, usage, details.map(|d| ("incomplete_details", d)));
        let kind = if status == "completed" { "response.completed" } else { "response.incomplete" };
        self.emit(&mut out, kind, json!({"response": response}));
        out
    }

    /// `response.failed` for a stream that broke after it started.
    pub fn fail(&mut self, e: &ProviderError) -> Vec<Value> {
        let mut out = Vec::new();
        self.start(&mut out);
        let (_, obj) = error::stream_error_parts(e);
        let err = json!({"code": obj.code.unwrap_or_else(|| "server_error".into()), "message": obj.message});
        let response = self.echo.object("failed", &self.output, None, Some(("error", err)));
        self.emit(&mut out, "response.failed", json!({"response": response}));
        out
    }
}

fn merge(base: &Value, more: Value) -> Value {
    let mut out = base.clone();
    if let (Value::Object(o), Value::Object(m)) = (&mut out, more) {
        o.extend(m);
    }
    out
}

fn sse_event(ev: &Value) -> Event {
    let name = ev["type"].as_str().unwrap_or("message");
    Event::default().event(name).json_data(ev).unwrap_or_else(|_| Event::default().event(name).data("{}"))
}

/// The whole event stream for `chunks`; `done` gets the final response
/// object (to store it) when the stream ended normally.
pub fn events(
    chunks: ChunkStream,
    translator: Translator,
    done: impl FnOnce(&Value) + Send + 'static,
) -> impl Stream<Item = Result<Event, Infallible>> + Send {
    struct St<D> {
        inner: ChunkStream,
        tr: Translator,
        queue: VecDeque<Value>,
        done: Option<D>,
        ended: bool,
    }
    let st = St { inner: chunks, tr: translator, queue: VecDeque::new(), done: Some(done), ended: false };
    futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(ev) = st.queue.pop_front() {
                return Some((Ok(sse_event(&ev)), st));
            }
            if st.ended {
                return None;
            }
            match st.inner.next().await {
                Some(Ok(chunk)) => st.queue.extend(st.tr.chunk(chunk)),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "stream failed after it started");
                    st.ended = true;
                    st.queue.extend(st.tr.fail(&e));
                }
                None => {
                    st.ended = true;
                    let events = st.tr.finish();
                    if let (Some(done), Some(last)) = (st.done.take(), events.last()) {
                        done(&last["response"]);
                    }
                    st.queue.extend(events);
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use hoosh_types::openai::{Delta, FunctionCallDelta, ToolCallDelta};
    use hoosh_types::responses::ResponsesRequest;

    use super::*;

    fn translator() -> Translator {
        let req: ResponsesRequest = serde_json::from_value(json!({"model": "gpt-5", "input": "x"})).unwrap();
        Translator::new(Echo::new(&req), Tools::default())
    }

    fn chunk(delta: Delta, finish: Option<FinishReason>) -> ChatCompletionChunk {
        ChatCompletionChunk::delta("c", 0, "gpt-5", delta, finish)
    }

    #[test]
    fn text_then_a_call_is_the_full_item_lifecycle_in_sequence() {
        let mut tr = translator();
        let call = |id: Option<&str>, name: Option<&str>, args: &str| {
            Delta::tool_call(ToolCallDelta {
                index: 0,
                id: id.map(str::to_owned),
                kind: None,
                function: Some(FunctionCallDelta { name: name.map(str::to_owned), arguments: Some(args.into()) }),
            })
        };
        let mut events: Vec<Value> = [
            chunk(Delta::content("Run"), None),
            chunk(Delta::content("ning."), None),
            chunk(call(Some("call_1"), Some("shell"), ""), None),
            chunk(call(None, None, "{\"cmd\":"), None),
            chunk(call(None, None, "\"ls\"}"), Some(FinishReason::ToolCalls)),
        ]
        .into_iter()
        .flat_map(|c| tr.chunk(c))
        .collect();
        events.extend(tr.finish());
        let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        let seqs: Vec<u64> = events.iter().map(|e| e["sequence_number"].as_u64().unwrap()).collect();
        assert_eq!(seqs, (0..events.len() as u64).collect::<Vec<_>>());
        assert_eq!(events[6]["text"], "Running.");
        assert_eq!(events[12]["arguments"], "{\"cmd\":\"ls\"}");
        let done = &events[14]["response"];
        assert_eq!(done["status"], "completed");
        assert_eq!(done["output"][0]["content"][0]["text"], "Running.");
        assert_eq!(done["output"][1]["call_id"], "call_1");
        assert_eq!(done["output"][1]["output_index"], Value::Null);
        assert_eq!(events[9]["output_index"], 1, "the call is the second item");
    }

    #[test]
    fn reasoning_is_a_summary_item_before_the_message() {
        let mut tr = translator();
        let thinking = Delta { reasoning_content: Some("think".into()), ..Delta::default() };
        let mut events: Vec<Value> =
            [chunk(thinking, None), chunk(Delta::content("ok"), None)].into_iter().flat_map(|c| tr.chunk(c)).collect();
        events.extend(tr.finish());
        let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            types[2..8],
            [
                "response.output_item.added",
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.done",
                "response.reasoning_summary_part.done",
                "response.output_item.done",
            ]
        );
        let done = &events.last().unwrap()["response"];
        assert_eq!(done["output"][0]["summary"][0]["text"], "think");
        assert_eq!(done["output"][1]["content"][0]["text"], "ok");
    }

    #[test]
    fn a_cut_answer_is_incomplete_and_a_broken_stream_failed() {
        let mut tr = translator();
        tr.chunk(chunk(Delta::content("a"), Some(FinishReason::Length)));
        let end = tr.finish();
        assert_eq!(end.last().unwrap()["type"], "response.incomplete");
        assert_eq!(end.last().unwrap()["response"]["incomplete_details"]["reason"], "max_output_tokens");
        let mut tr = translator();
        tr.chunk(chunk(Delta::content("a"), None));
        let failed = tr.fail(&ProviderError::new(hoosh_core::ErrorKind::StreamInterrupted, "cut"));
        assert_eq!(failed.last().unwrap()["type"], "response.failed");
        assert_eq!(failed.last().unwrap()["response"]["status"], "failed");
    }
}
