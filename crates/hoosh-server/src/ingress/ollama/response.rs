//! Canonical answers → Ollama's shapes: one JSON object, or NDJSON lines
//! (`application/x-ndjson`), each a partial answer with `done: false`, the
//! last with `done: true`, `done_reason` and the counts. `/api/chat` says
//! `message` (with `tool_calls`, arguments as objects, and `thinking`);
//! `/api/generate` says `response`. A stream that breaks after it started
//! ends with an `{"error": …}` line.

use std::time::Instant;

use axum::body::Body;
use axum::http::header;
use axum::response::Response;
use futures_util::StreamExt;
use hoosh_core::ChunkStream;
use hoosh_types::openai::{ChatCompletionResponse, FinishReason, ToolCall, Usage};
use serde_json::{Value, json};

/// Which Ollama endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Chat,
    Generate,
}

/// What every answer line repeats, and the clock its durations come from.
#[derive(Debug, Clone)]
pub struct Frame {
    pub shape: Shape,
    pub model: String,
    pub started: Instant,
}

/// Now, as Ollama writes `created_at`.
pub fn created_at() -> String {
    // RFC 3339 in UTC from the unix time, without a date crate.
    let secs = hoosh_types::unix_now();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn done_reason(f: Option<FinishReason>) -> &'static str {
    match f {
        Some(FinishReason::Length) => "length",
        _ => "stop",
    }
}

fn tool_calls(calls: &[ToolCall]) -> Vec<Value> {
    calls
        .iter()
        .map(|c| {
            let arguments: Value = serde_json::from_str(&c.function.arguments).unwrap_or_else(|_| json!({}));
            json!({"id": c.id, "function": {"name": c.function.name, "arguments": arguments}})
        })
        .collect()
}

impl Frame {
    /// One line or object: `text`/`thinking`/`calls` in this shape's field.
    fn part(&self, text: &str, thinking: Option<&str>, calls: &[Value]) -> Value {
        let mut out = json!({"model": self.model, "created_at": created_at(), "done": false});
        match self.shape {
            Shape::Chat => {
                let mut message = json!({"role": "assistant", "content": text});
                if let Some(t) = thinking {
                    message["thinking"] = json!(t);
                }
                if !calls.is_empty() {
                    message["tool_calls"] = json!(calls);
                }
                out["message"] = message;
            }
            Shape::Generate => {
                out["response"] = json!(text);
                if let Some(t) = thinking {
                    out["thinking"] = json!(t);
                }
            }
        }
        out
    }

    /// Marks `line` as the last: reason, counts and durations (nanoseconds).
    fn finish(&self, mut line: Value, reason: &str, usage: Option<&Usage>) -> Value {
        let total = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1);
        line["done"] = json!(true);
        line["done_reason"] = json!(reason);
        line["total_duration"] = json!(total);
        line["load_duration"] = json!(0);
        line["prompt_eval_count"] = json!(usage.map_or(0, |u| u.prompt_tokens));
        line["prompt_eval_duration"] = json!(0);
        line["eval_count"] = json!(usage.map_or(0, |u| u.completion_tokens));
        line["eval_duration"] = json!(total);
        line
    }

    /// The whole answer.
    pub fn whole(&self, resp: &ChatCompletionResponse) -> Value {
        let choice = resp.choices.first();
        let m = choice.map(|c| &c.message);
        let text = m.and_then(|m| m.content.as_deref()).unwrap_or_default();
        let thinking = m.and_then(|m| m.reasoning_content.as_deref());
        let calls = m.and_then(|m| m.tool_calls.as_deref()).map(tool_calls).unwrap_or_default();
        let line = self.part(text, thinking, &calls);
        self.finish(line, done_reason(choice.and_then(|c| c.finish_reason)), resp.usage.as_ref())
    }

    /// The NDJSON answer for a stream. Tool calls are sent whole, on the
    /// line after their last fragment (Ollama never splits them).
    pub fn stream(self, chunks: ChunkStream) -> Response {
        struct St {
            inner: ChunkStream,
            frame: Frame,
            calls: Vec<ToolCall>,
            finish: Option<FinishReason>,
            usage: Option<Usage>,
            ended: bool,
        }
        let st = St { inner: chunks, frame: self, calls: Vec::new(), finish: None, usage: None, ended: false };
        let lines = futures_util::stream::unfold(st, |mut st| async move {
            loop {
                if st.ended {
                    return None;
                }
                match st.inner.next().await {
                    Some(Ok(chunk)) => {
                        if let Some(u) = chunk.usage {
                            st.usage = Some(u);
                        }
                        let Some(choice) = chunk.choices.into_iter().find(|c| c.index == 0) else { continue };
                        if choice.finish_reason.is_some() {
                            st.finish = choice.finish_reason;
                        }
                        let d = choice.delta;
                        for frag in d.tool_calls.unwrap_or_default() {
                            let i = frag.index as usize;
                            while st.calls.len() <= i {
                                st.calls.push(ToolCall {
                                    id: String::new(),
                                    kind: Default::default(),
                                    function: hoosh_types::openai::FunctionCall {
                                        name: String::new(),
                                        arguments: String::new(),
                                    },
                                });
                            }
                            let c = &mut st.calls[i];
                            if let Some(id) = frag.id {
                                c.id = id;
                            }
                            if let Some(f) = frag.function {
                                c.function.name.push_str(f.name.as_deref().unwrap_or_default());
                                c.function.arguments.push_str(f.arguments.as_deref().unwrap_or_default());
                            }
                        }
                        let text = d.content.unwrap_or_default();
                        let thinking = d.reasoning_content.filter(|t| !t.is_empty());
                        if text.is_empty() && thinking.is_none() {
                            continue;
                        }
                        let line = st.frame.part(&text, thinking.as_deref(), &[]);
                        return Some((Ok::<_, std::convert::Infallible>(ndjson(&line)), st));
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "stream failed after it started");
                        st.ended = true;
                        let (_, obj) = crate::error::stream_error_parts(&e);
                        return Some((Ok(ndjson(&json!({"error": obj.message}))), st));
                    }
                    None => {
                        st.ended = true;
                        let calls = tool_calls(&st.calls);
                        let line = st.frame.part("", None, &calls);
                        let last = st.frame.finish(line, done_reason(st.finish), st.usage.as_ref());
                        return Some((Ok(ndjson(&last)), st));
                    }
                }
            }
        });
        Response::builder()
            .header(header::CONTENT_TYPE, "application/x-ndjson")
            .body(Body::from_stream(lines))
            .unwrap_or_default()
    }
}

fn ndjson(v: &Value) -> String {
    let mut s = v.to_string();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use hoosh_types::openai::{Choice, FunctionCall, ResponseMessage, ToolKind};

    use super::*;

    fn frame(shape: Shape) -> Frame {
        Frame { shape, model: "llama3.2".into(), started: Instant::now() }
    }

    #[test]
    fn a_whole_chat_answer_with_a_tool_call() {
        let mut msg = ResponseMessage::assistant(Some(String::new()));
        msg.tool_calls = Some(vec![ToolCall {
            id: "call_1".into(),
            kind: ToolKind::Function,
            function: FunctionCall { name: "get_weather".into(), arguments: "{\"city\":\"Paris\"}".into() },
        }]);
        let resp = ChatCompletionResponse {
            id: "c".into(),
            object: "chat.completion".into(),
            created: 0,
            model: "llama3.2".into(),
            choices: vec![Choice {
                index: 0,
                message: msg,
                finish_reason: Some(FinishReason::ToolCalls),
                logprobs: None,
            }],
            usage: Some(Usage::new(12, 5)),
            system_fingerprint: None,
            native: None,
        };
        let v = frame(Shape::Chat).whole(&resp);
        assert_eq!(v["done"], true);
        assert_eq!(v["done_reason"], "stop");
        assert_eq!(v["message"]["tool_calls"][0]["function"]["arguments"], json!({"city": "Paris"}));
        assert_eq!((v["prompt_eval_count"].as_u64(), v["eval_count"].as_u64()), (Some(12), Some(5)));
        assert!(v["created_at"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn a_generate_answer_says_response() {
        let resp = ChatCompletionResponse {
            id: "c".into(),
            object: "chat.completion".into(),
            created: 0,
            model: "m".into(),
            choices: vec![Choice {
                index: 0,
                message: ResponseMessage::assistant(Some("blue".into())),
                finish_reason: Some(FinishReason::Length),
                logprobs: None,
            }],
            usage: None,
            system_fingerprint: None,
            native: None,
        };
        let v = frame(Shape::Generate).whole(&resp);
        assert_eq!((v["response"].as_str(), v["done_reason"].as_str()), (Some("blue"), Some("length")));
        assert!(v.get("message").is_none());
    }

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_790), (2026, 12, 3));
    }
}
