//! Where requests go and what they carry: a plain-HTTP URL, extra headers,
//! and a body template whose `{n}` becomes a per-request counter.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::args::Args;

pub struct Target {
    /// `host:port`, for connecting and for the `Host` header.
    authority: String,
    path: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: BodyTemplate,
    counter: AtomicU64,
}

/// The body split at its first `{n}`, if it has one.
enum BodyTemplate {
    Fixed(Bytes),
    Numbered(String, String),
}

impl Target {
    /// From `--url`, `--body FILE` and `-H 'name: value'` flags.
    pub fn from_args(args: &Args) -> Result<Arc<Target>, String> {
        let url = args.required("url")?;
        let uri: Uri = url.parse().map_err(|e| format!("--url {url:?}: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!("--url {url:?}: only http:// is supported"));
        }
        let host = uri.host().ok_or_else(|| format!("--url {url:?}: no host"))?;
        let authority = format!("{host}:{}", uri.port_u16().unwrap_or(80));
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();

        let mut headers = Vec::new();
        for h in args.all("header") {
            let (name, value) = h.split_once(':').ok_or_else(|| format!("-H {h:?}: want 'name: value'"))?;
            let name = HeaderName::try_from(name.trim()).map_err(|e| format!("-H {h:?}: {e}"))?;
            let value = HeaderValue::try_from(value.trim()).map_err(|e| format!("-H {h:?}: {e}"))?;
            headers.push((name, value));
        }
        if !headers.iter().any(|(n, _)| n == CONTENT_TYPE) {
            headers.push((CONTENT_TYPE, HeaderValue::from_static("application/json")));
        }

        let file = args.required("body")?;
        let text = std::fs::read_to_string(file).map_err(|e| format!("--body {file:?}: {e}"))?;
        let text = text.trim_end().to_string();
        let body = match text.split_once("{n}") {
            Some((a, b)) => BodyTemplate::Numbered(a.to_string(), b.to_string()),
            None => BodyTemplate::Fixed(Bytes::from(text)),
        };
        Ok(Arc::new(Target { authority, path, headers, body, counter: AtomicU64::new(0) }))
    }

    /// The next request (a POST of the body, `{n}` filled in).
    pub fn request(&self) -> Request<Full<Bytes>> {
        let body = match &self.body {
            BodyTemplate::Fixed(b) => b.clone(),
            BodyTemplate::Numbered(a, b) => {
                let n = self.counter.fetch_add(1, Ordering::Relaxed);
                Bytes::from(format!("{a}{n}{b}"))
            }
        };
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = self.path.parse().expect("path came from a parsed Uri");
        let h = req.headers_mut();
        h.insert(HOST, HeaderValue::try_from(&self.authority).expect("authority came from a parsed Uri"));
        for (name, value) in &self.headers {
            h.insert(name.clone(), value.clone());
        }
        req
    }

    /// A new HTTP/1.1 connection (TCP_NODELAY, as any latency-minded client).
    pub async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let tcp = TcpStream::connect(&self.authority).await.map_err(|e| format!("connect: {}", e.kind()))?;
        let _ = tcp.set_nodelay(true);
        let (sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }
}
