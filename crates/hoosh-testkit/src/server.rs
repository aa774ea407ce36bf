//! Starting a mock on an ephemeral port and recording the requests it gets.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::Response;
use serde_json::Value;

use crate::form::{self, FormPart};

/// One request as the mock saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub headers: Vec<(String, String)>,
    /// The JSON body, or `Null` when there was none or it did not parse.
    pub body: Value,
    /// The parts of a `multipart/form-data` body, in order; empty otherwise.
    pub form: Vec<FormPart>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The first form part named `name`.
    pub fn form_part(&self, name: &str) -> Option<&FormPart> {
        self.form.iter().find(|p| p.name == name)
    }

    /// The text values of every form part named `name`, in order (a
    /// repeated field such as `timestamp_granularities[]` has several).
    pub fn form_values(&self, name: &str) -> Vec<&str> {
        self.form.iter().filter(|p| p.name == name).filter_map(FormPart::text).collect()
    }
}

/// State shared by a mock's handlers.
#[derive(Debug, Default)]
pub struct Shared {
    pub recorded: Mutex<Vec<Recorded>>,
    /// Calls seen per model name, for `mock-flaky-N`.
    pub calls: Mutex<std::collections::HashMap<String, u64>>,
    pub total: AtomicU64,
}

impl Shared {
    /// Counts a call for `model` and returns how many came before it.
    pub fn count_call(&self, model: &str) -> u64 {
        self.total.fetch_add(1, Ordering::Relaxed);
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        let n = calls.entry(model.to_owned()).or_insert(0);
        let before = *n;
        *n += 1;
        before
    }
}

/// A running mock. Dropping it stops the server.
pub struct MockServer {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl MockServer {
    /// Serves `router` (whose state is `Arc<Shared>`) on 127.0.0.1:0.
    pub async fn start(router: axum::Router<Arc<Shared>>) -> std::io::Result<MockServer> {
        Self::start_on("127.0.0.1:0", router).await
    }

    pub async fn start_on(addr: &str, router: axum::Router<Arc<Shared>>) -> std::io::Result<MockServer> {
        let shared = Arc::new(Shared::default());
        let app = router.layer(middleware::from_fn_with_state(shared.clone(), record)).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(MockServer { addr, shared, task })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.recorded.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn last_request(&self) -> Option<Recorded> {
        self.requests().pop()
    }

    /// Calls answered so far (all models).
    pub fn call_count(&self) -> u64 {
        self.shared.total.load(Ordering::Relaxed)
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, 64 * 1024 * 1024).await.unwrap_or_default();
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let form = if form::is_multipart(content_type) {
        form::parse(content_type, bytes.clone()).await.unwrap_or_default()
    } else {
        Vec::new()
    };
    let rec = Recorded {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        form,
    };
    shared.recorded.lock().unwrap_or_else(|p| p.into_inner()).push(rec);
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// How a streamed mock body misbehaves, if at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamFault {
    /// Sleep this long after the first piece.
    pub stall_after_first: Option<std::time::Duration>,
    /// Drop the connection after this many pieces.
    pub cut_after: Option<usize>,
}

/// A chunked body that sends `pieces` (text or bytes) one by one (a short
/// pause between them, so they reach the client as separate network chunks).
pub fn stream_body<P>(pieces: Vec<P>, fault: StreamFault) -> Body
where
    P: Into<bytes::Bytes> + Clone + Send + 'static,
{
    let stream = futures_util::stream::unfold((0usize, pieces, fault), |(i, pieces, fault)| async move {
        if i == usize::MAX {
            return None;
        }
        if fault.cut_after == Some(i) {
            return Some((Err(std::io::Error::other("mock cut the stream")), (usize::MAX, pieces, fault)));
        }
        if i >= pieces.len() {
            return None;
        }
        if i == 1
            && let Some(d) = fault.stall_after_first
        {
            tokio::time::sleep(d).await;
        } else if i > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let piece: bytes::Bytes = pieces[i].clone().into();
        Some((Ok(piece), (i + 1, pieces, fault)))
    });
    Body::from_stream(stream)
}
