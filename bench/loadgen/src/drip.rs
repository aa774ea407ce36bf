//! A slow OpenAI-compatible upstream. `POST …/chat/completions` with
//! `"stream": true` answers Server-Sent Events: a role chunk at once, then
//! one content chunk every `--interval-ms` (`--chunks` of them), then a
//! finish chunk, a usage chunk and `data: [DONE]`. Without `stream` it
//! answers one chat.completion JSON at once. `GET …/models` lists the
//! model. Each stream is a timer in its body, not a task, so tens of
//! thousands cost little.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};

use crate::args::Args;

type RespBody = UnsyncBoxBody<Bytes, Infallible>;

#[derive(Clone, Copy)]
struct Pace {
    interval: Duration,
    chunks: u32,
}

pub async fn run(args: &Args) -> Result<(), String> {
    let nofile = crate::limits::raise_open_files();
    let pace = Pace { interval: Duration::from_millis(args.num("interval-ms", 200)?), chunks: args.num("chunks", 50)? };
    let bind = args.get("bind").unwrap_or("127.0.0.1");
    let port: u16 = args.num("port", 0)?;
    let listener = TcpListener::bind((bind, port)).await.map_err(|e| format!("bind {bind}:{port}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    eprintln!(
        "loadgen drip: listening on http://{addr}/v1 ({} chunks, one per {:?}; open files {nofile})",
        pace.chunks, pace.interval
    );
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors, most likely: wait for some to close.
                eprintln!("loadgen drip: accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, pace));
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

async fn handle(req: Request<Incoming>, pace: Pace) -> Result<Response<RespBody>, Infallible> {
    let path = req.uri().path().to_string();
    if req.method() == Method::GET && path.ends_with("/models") {
        let list =
            json!({"object": "list", "data": [{"id": "gpt-4o", "object": "model", "created": 0, "owned_by": "drip"}]});
        return Ok(json_response(StatusCode::OK, &list));
    }
    if req.method() != Method::POST || !path.ends_with("/chat/completions") {
        return Ok(json_response(StatusCode::NOT_FOUND, &json!({"error": {"message": "not found"}})));
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(json_response(StatusCode::BAD_REQUEST, &json!({"error": {"message": "body"}}))),
    };
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let model = parsed.get("model").and_then(Value::as_str).unwrap_or("gpt-4o").to_string();
    if parsed.get("stream").and_then(Value::as_bool) != Some(true) {
        let answer = json!({
            "id": "chatcmpl-drip", "object": "chat.completion", "created": 1_700_000_000, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "tok ".repeat(pace.chunks as usize)},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 14, "completion_tokens": pace.chunks, "total_tokens": 14 + pace.chunks},
        });
        return Ok(json_response(StatusCode::OK, &answer));
    }
    let mut resp = Response::new(Drip::new(model, pace).boxed_unsync());
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

fn json_response(status: StatusCode, v: &Value) -> Response<RespBody> {
    let mut resp = Response::new(Full::new(Bytes::from(v.to_string())).boxed_unsync());
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// A stream body that yields its next event when its timer fires. The
/// events are serialized once per stream, so a chunk costs the drip a clone
/// and a write, and the load side stays cheap next to the gateway's work.
struct Drip {
    pace: Pace,
    role: Bytes,
    content: Bytes,
    tail: Bytes,
    /// Events sent so far: 0 = none, 1 = the role chunk, 2..=chunks+1 the
    /// content chunks, chunks+2 the tail (finish, usage, [DONE]).
    sent: u32,
    start: Instant,
    sleep: Pin<Box<Sleep>>,
}

impl Drip {
    fn new(model: String, pace: Pace) -> Drip {
        let chunk = |delta: Value, finish: Option<&str>| {
            let c = json!({
                "id": "chatcmpl-drip", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            });
            format!("data: {c}\n\n")
        };
        let usage = json!({
            "id": "chatcmpl-drip", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
            "choices": [],
            "usage": {"prompt_tokens": 14, "completion_tokens": pace.chunks, "total_tokens": 14 + pace.chunks},
        });
        let start = Instant::now();
        Drip {
            pace,
            role: Bytes::from(chunk(json!({"role": "assistant", "content": ""}), None)),
            content: Bytes::from(chunk(json!({"content": "tok "}), None)),
            tail: Bytes::from(format!("{}data: {usage}\n\ndata: [DONE]\n\n", chunk(json!({}), Some("stop")))),
            sent: 0,
            start,
            sleep: Box::pin(tokio::time::sleep_until(start)),
        }
    }

    fn event(&self, n: u32) -> Bytes {
        match n {
            0 => self.role.clone(),
            n if n <= self.pace.chunks => self.content.clone(),
            _ => self.tail.clone(),
        }
    }
}

impl Body for Drip {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let last = self.pace.chunks + 1;
        if self.sent > last {
            return Poll::Ready(None);
        }
        if self.sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let event = self.event(self.sent);
        self.sent += 1;
        // Deadlines from the start, so a late wake-up does not push every
        // later chunk back.
        let next = self.start + self.pace.interval * self.sent;
        self.sleep.as_mut().reset(next);
        Poll::Ready(Some(Ok(Frame::data(event))))
    }

    fn is_end_stream(&self) -> bool {
        self.sent > self.pace.chunks + 1
    }
}
