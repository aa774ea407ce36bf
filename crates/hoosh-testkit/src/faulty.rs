//! A misbehaving upstream on a raw socket: the faults a mock built on a real
//! HTTP server cannot produce — a reset mid-body, a head of a megabyte, a
//! body that lies about its length or never ends, bytes that are not UTF-8,
//! a socket that is never answered. When it does answer, it speaks OpenAI
//! chat completions (JSON, or SSE for `"stream": true`; a model list on
//! `GET …/models`).
//!
//! One [`Fault`] per server; every request gets it. The server counts what
//! it saw ([`FaultyServer::requests`], [`FaultyServer::written`]) and how many
//! connections the peer let go of ([`FaultyServer::released`]): a read that
//! met the end, or a write that failed because the peer closed. That is the
//! proof that a client gave up on an upstream connection instead of
//! holding it, and the byte count the proof that it stopped reading.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// How the upstream misbehaves.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// A correct answer: the control case.
    Healthy,
    /// `Content-Length` as promised, half the body, then (100 ms later) a
    /// TCP reset. Streams: one chunk, then the reset.
    ResetMidBody,
    /// Accepts the connection; never reads, never writes, never closes.
    Silence,
    /// Reads the request and goes on reading: never writes, never closes.
    HalfOpen,
    /// Reads the request and closes without a word.
    Hangup,
    /// The head at once, then a correct body one byte every `every`.
    SlowDrip { every: Duration },
    /// A 200 whose head carries `bytes` of extra header lines (8 KiB each).
    HugeHeaders { bytes: usize },
    /// A 200 labelled JSON (or an event stream) that is an HTML page.
    NotJson,
    /// `Content-Length` promises twice the body; the connection closes after
    /// it. Streams: half of the first event, then the close.
    Truncated,
    /// A body without end. JSON: a content string that never closes, sent in
    /// 64 KiB chunks every `every`. Streams: a chunk event every `every`,
    /// never a finish or `[DONE]`.
    Endless { every: Duration },
    /// Streams: the first event is a single `data:` line of `bytes` bytes;
    /// then the server waits for the peer to close. JSON: an answer whose
    /// content is `bytes` long.
    HugeLine { bytes: usize },
    /// Streams: `data:` lines forever, never the blank line that ends an
    /// event. JSON: as [`Fault::Endless`] at full speed.
    EndlessEvent,
    /// Bytes that are not UTF-8 inside a content string. Streams: in the
    /// second event, after a good one.
    InvalidUtf8,
    /// A 429 carrying these headers (`("retry-after", "1e300")`).
    RateLimited { headers: Vec<(String, String)> },
    /// A correct answer in HTTP/1.0 with no `Content-Length`: the body ends
    /// when the connection closes.
    CloseDelimited,
}

/// A running faulty upstream. Dropping it closes every connection it holds.
pub struct FaultyServer {
    pub addr: SocketAddr,
    counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    requests: AtomicU64,
    written: AtomicU64,
    released: AtomicU64,
    changed: Notify,
}

impl Counters {
    fn bump(&self, counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::SeqCst);
        self.changed.notify_waiters();
    }
}

/// Starts a server on 127.0.0.1:0 that answers every request with `fault`.
pub async fn start(fault: Fault) -> FaultyServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("cannot bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("no local address: {e}"));
    let counters = Arc::new(Counters::default());
    let shared = counters.clone();
    let fault = Arc::new(fault);
    let task = tokio::spawn(async move {
        // Connections live in the set, so aborting this task drops them all.
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    shared.bump(&shared.connections, 1);
                    let conn = Conn { stream, counters: shared.clone() };
                    conns.spawn(serve(conn, fault.clone()));
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
    });
    FaultyServer { addr, counters, task }
}

impl FaultyServer {
    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn connections(&self) -> u64 {
        self.counters.connections.load(Ordering::SeqCst)
    }

    /// Requests read whole.
    pub fn requests(&self) -> u64 {
        self.counters.requests.load(Ordering::SeqCst)
    }

    /// Bytes written to clients, over all connections.
    pub fn written(&self) -> u64 {
        self.counters.written.load(Ordering::SeqCst)
    }

    /// Connections the peer closed or reset while this server still read
    /// or wrote (never counted for [`Fault::Silence`], which does neither).
    pub fn released(&self) -> u64 {
        self.counters.released.load(Ordering::SeqCst)
    }

    /// Waits until `released() >= n`, for at most `within`; whether it got there.
    pub async fn released_within(&self, n: u64, within: Duration) -> bool {
        self.wait_for(within, || self.released() >= n).await
    }

    /// Waits until `requests() >= n`, for at most `within`; whether it got there.
    pub async fn requests_within(&self, n: u64, within: Duration) -> bool {
        self.wait_for(within, || self.requests() >= n).await
    }

    async fn wait_for(&self, within: Duration, done: impl Fn() -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let changed = self.counters.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if done() {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return done();
            }
        }
    }
}

impl Drop for FaultyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the server needs to know of a request.
struct Request {
    models: bool,
    stream: bool,
    model: String,
}

struct Conn {
    stream: TcpStream,
    counters: Arc<Counters>,
}

impl Conn {
    /// Writes all of `bytes`, counting what went out; a failure means the
    /// peer let the connection go.
    async fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match self.stream.write(bytes).await {
                Ok(0) => return Err(self.released(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    self.counters.bump(&self.counters.written, n as u64);
                    bytes = &bytes[n..];
                }
                Err(e) => return Err(self.released(e)),
            }
        }
        Ok(())
    }

    /// One chunk of a `Transfer-Encoding: chunked` body.
    async fn chunk(&mut self, data: &[u8]) -> io::Result<()> {
        let mut framed = format!("{:x}\r\n", data.len()).into_bytes();
        framed.extend_from_slice(data);
        framed.extend_from_slice(b"\r\n");
        self.write(&framed).await
    }

    fn released(&self, e: io::Error) -> io::Error {
        self.counters.bump(&self.counters.released, 1);
        e
    }

    /// Reads until the peer closes (or fails), discarding what comes.
    async fn drain_until_closed(&mut self) {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    self.counters.bump(&self.counters.released, 1);
                    return;
                }
                Ok(_) => {}
            }
        }
    }

    /// The next request, or `None` when the peer closed first.
    async fn read_request(&mut self) -> io::Result<Option<Request>> {
        let mut buf = Vec::new();
        let mut piece = vec![0u8; 16 * 1024];
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            if buf.len() > 1024 * 1024 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "request head past 1 MiB"));
            }
            let n = self.stream.read(&mut piece).await?;
            if n == 0 {
                return Ok(None);
            }
            buf.extend_from_slice(&piece[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let path = lines.next().and_then(|l| l.split(' ').nth(1)).unwrap_or_default().to_owned();
        let length: usize = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        let mut body = buf[head_end..].to_vec();
        while body.len() < length {
            let n = self.stream.read(&mut piece).await?;
            if n == 0 {
                return Ok(None);
            }
            body.extend_from_slice(&piece[..n]);
        }
        body.truncate(length);
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        self.counters.bump(&self.counters.requests, 1);
        Ok(Some(Request {
            models: path.ends_with("/models"),
            stream: json["stream"] == Value::Bool(true),
            model: json["model"].as_str().unwrap_or("m").to_owned(),
        }))
    }
}

async fn serve(mut conn: Conn, fault: Arc<Fault>) {
    if *fault == Fault::Silence {
        // Hold the socket, unread, until the server is dropped.
        std::future::pending::<()>().await;
    }
    let Ok(Some(req)) = conn.read_request().await else { return };
    // Errors mean the peer went away; it is counted where it happened.
    let _ = answer(&mut conn, &req, &fault).await;
}

async fn answer(conn: &mut Conn, req: &Request, fault: &Fault) -> io::Result<()> {
    let stream = req.stream && !req.models;
    match fault {
        Fault::Healthy => whole(conn, req).await,
        Fault::Silence => Ok(()),
        Fault::HalfOpen => {
            conn.drain_until_closed().await;
            Ok(())
        }
        Fault::Hangup => Ok(()),
        Fault::ResetMidBody => {
            if stream {
                conn.write(&head_chunked()).await?;
                conn.chunk(&event(&content_chunk(&req.model, "half"))).await?;
            } else {
                let body = body_of(req);
                conn.write(&head_json(200, body.len(), &[])).await?;
                conn.write(&body[..body.len() / 2]).await?;
            }
            // Time for the peer to read what came (a reset discards what it
            // has not), then SO_LINGER 0: the close below is a reset, not a FIN.
            tokio::time::sleep(Duration::from_millis(100)).await;
            conn.stream.set_zero_linger()?;
            Ok(())
        }
        Fault::SlowDrip { every } => {
            let (head, body) = if stream {
                (head_close_delimited("HTTP/1.1", "text/event-stream"), sse_body(&req.model))
            } else {
                let body = body_of(req);
                (head_json(200, body.len(), &[]), body)
            };
            conn.write(&head).await?;
            for byte in body {
                tokio::time::sleep(*every).await;
                conn.write(&[byte]).await?;
            }
            Ok(())
        }
        Fault::HugeHeaders { bytes } => {
            let body = body_of(req);
            let mut head =
                format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n", body.len());
            let line = "a".repeat(8 * 1024 - 16);
            for i in 0..bytes.div_ceil(8 * 1024) {
                head.push_str(&format!("x-pad-{i:05}: {line}\r\n"));
            }
            head.push_str("connection: close\r\n\r\n");
            conn.write(head.as_bytes()).await?;
            conn.write(&body).await
        }
        Fault::NotJson => {
            let page = b"<html><body><h1>502 Bad Gateway</h1></body></html>\n";
            if stream {
                conn.write(&head_chunked()).await?;
                conn.chunk(page).await?;
                conn.write(b"0\r\n\r\n").await
            } else {
                conn.write(&head_json(200, page.len(), &[])).await?;
                conn.write(page).await
            }
        }
        Fault::Truncated => {
            if stream {
                let ev = event(&content_chunk(&req.model, "cut short"));
                conn.write(&head_chunked()).await?;
                conn.write(format!("{:x}\r\n", ev.len()).as_bytes()).await?;
                conn.write(&ev[..ev.len() / 2]).await
            } else {
                let body = body_of(req);
                conn.write(&head_json(200, body.len() * 2, &[])).await?;
                conn.write(&body).await
            }
        }
        Fault::Endless { every } => {
            if stream {
                conn.write(&head_chunked()).await?;
                loop {
                    conn.chunk(&event(&content_chunk(&req.model, "more"))).await?;
                    tokio::time::sleep(*every).await;
                }
            } else {
                endless_json(conn, *every).await
            }
        }
        Fault::HugeLine { bytes } => {
            if stream {
                conn.write(&head_chunked()).await?;
                conn.chunk(b"data: ").await?;
                let piece = vec![b'x'; 64 * 1024];
                let mut left = *bytes;
                while left > 0 {
                    let n = left.min(piece.len());
                    conn.chunk(&piece[..n]).await?;
                    left -= n;
                }
                conn.chunk(b"\n\n").await?;
                conn.chunk(&sse_body(&req.model)).await?;
                conn.write(b"0\r\n\r\n").await?;
                // Kernel buffers may have taken all of it: wait for the
                // peer to let go, so `released` says it did.
                conn.drain_until_closed().await;
                Ok(())
            } else {
                let body = serde_json::to_vec(&completion(&req.model, &"x".repeat(*bytes))).unwrap_or_default();
                conn.write(&head_json(200, body.len(), &[])).await?;
                conn.write(&body).await
            }
        }
        Fault::EndlessEvent => {
            if !stream {
                return endless_json(conn, Duration::ZERO).await;
            }
            conn.write(&head_chunked()).await?;
            let line = format!("data: {}\n", "y".repeat(1017));
            let block = line.repeat(64);
            loop {
                conn.chunk(block.as_bytes()).await?;
                tokio::task::yield_now().await;
            }
        }
        Fault::InvalidUtf8 => {
            let bad = |text: &str| {
                let mut v = serde_json::to_vec(&content_chunk(&req.model, text)).unwrap_or_default();
                splice_invalid(&mut v, text);
                v
            };
            if stream {
                conn.write(&head_chunked()).await?;
                conn.chunk(&event(&content_chunk(&req.model, "fine"))).await?;
                let mut ev = b"data: ".to_vec();
                ev.extend_from_slice(&bad("MARK"));
                ev.extend_from_slice(b"\n\n");
                conn.chunk(&ev).await?;
                conn.chunk(b"data: [DONE]\n\n").await?;
                conn.write(b"0\r\n\r\n").await
            } else {
                let mut body = serde_json::to_vec(&completion(&req.model, "MARK")).unwrap_or_default();
                splice_invalid(&mut body, "MARK");
                conn.write(&head_json(200, body.len(), &[])).await?;
                conn.write(&body).await
            }
        }
        Fault::RateLimited { headers } => {
            let body = serde_json::to_vec(&json!({"error": {
                "message": "Rate limit reached", "type": "requests", "param": null, "code": "rate_limit_exceeded"
            }}))
            .unwrap_or_default();
            let extra: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            conn.write(&head_json(429, body.len(), &extra)).await?;
            conn.write(&body).await
        }
        Fault::CloseDelimited => {
            let (content_type, body) =
                if stream { ("text/event-stream", sse_body(&req.model)) } else { ("application/json", body_of(req)) };
            conn.write(&head_close_delimited("HTTP/1.0", content_type)).await?;
            conn.write(&body).await?;
            conn.stream.shutdown().await
        }
    }
}

/// A correct whole answer, and the connection closed after it.
async fn whole(conn: &mut Conn, req: &Request) -> io::Result<()> {
    if req.stream && !req.models {
        conn.write(&head_chunked()).await?;
        conn.chunk(&sse_body(&req.model)).await?;
        conn.write(b"0\r\n\r\n").await
    } else {
        let body = body_of(req);
        conn.write(&head_json(200, body.len(), &[])).await?;
        conn.write(&body).await
    }
}

/// A chat completion whose content string never closes.
async fn endless_json(conn: &mut Conn, every: Duration) -> io::Result<()> {
    conn.write(&head_chunked_as("application/json")).await?;
    conn.chunk(br#"{"id":"chatcmpl-faulty","object":"chat.completion","created":0,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":""#)
        .await?;
    let piece = vec![b'a'; 64 * 1024];
    loop {
        conn.chunk(&piece).await?;
        if every.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(every).await;
        }
    }
}

/// Replaces `mark` in `bytes` with a byte sequence that is not UTF-8.
fn splice_invalid(bytes: &mut Vec<u8>, mark: &str) {
    if let Some(at) = bytes.windows(mark.len()).position(|w| w == mark.as_bytes()) {
        bytes.splice(at..at + mark.len(), [b'o', b'k', 0xff, 0xfe, 0xc3]);
    }
}

fn head_json(status: u16, length: usize, extra: &[(&str, &str)]) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        429 => "Too Many Requests",
        _ => "Whatever",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {length}\r\nconnection: close\r\n"
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

fn head_chunked() -> Vec<u8> {
    head_chunked_as("text/event-stream")
}

fn head_chunked_as(content_type: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    )
    .into_bytes()
}

/// A head with neither a length nor chunking: the body ends at close.
fn head_close_delimited(version: &str, content_type: &str) -> Vec<u8> {
    format!("{version} 200 OK\r\ncontent-type: {content_type}\r\nconnection: close\r\n\r\n").into_bytes()
}

fn body_of(req: &Request) -> Vec<u8> {
    let value = if req.models {
        json!({"object": "list", "data": [{"id": "m", "object": "model", "created": 0, "owned_by": "faulty"}]})
    } else {
        completion(&req.model, "hello from a faulty upstream")
    };
    serde_json::to_vec(&value).unwrap_or_default()
}

fn completion(model: &str, content: &str) -> Value {
    json!({
        "id": "chatcmpl-faulty", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11}
    })
}

fn content_chunk(model: &str, text: &str) -> Value {
    json!({
        "id": "chatcmpl-faulty", "object": "chat.completion.chunk", "created": 0, "model": model,
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]
    })
}

fn event(value: &Value) -> Vec<u8> {
    format!("data: {value}\n\n").into_bytes()
}

/// A whole correct event stream: two content chunks, a finish with usage, `[DONE]`.
fn sse_body(model: &str) -> Vec<u8> {
    let mut out = event(&content_chunk(model, "hello "));
    out.extend(event(&content_chunk(model, "there")));
    out.extend(event(&json!({
        "id": "chatcmpl-faulty", "object": "chat.completion.chunk", "created": 0, "model": model,
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    })));
    out.extend_from_slice(b"data: [DONE]\n\n");
    out
}
