//! [`HooshClient`] and its builder: one method per gateway endpoint.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use hoosh_types::openai::{
    ChatCompletionRequest, ChatCompletionResponse, EmbeddingRequest, EmbeddingResponse, ErrorResponse, Model, ModelList,
};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{RequestBuilder, Response, Url};
use serde::de::DeserializeOwned;

use crate::error::{ClientError, snippet};
use crate::stream::ChatStream;

/// Whole-request deadline of non-streaming calls, and the longest silence
/// tolerated on a stream. Generous: a long completion can take minutes.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client of one gateway. Cloning is cheap and clones share connections.
#[derive(Clone)]
pub struct HooshClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// Scheme, host and path prefix, without the `/v1`.
    base: Url,
    timeout: Duration,
}

/// Settings of a [`HooshClient`]; start with [`HooshClient::builder`].
#[derive(Clone)]
pub struct HooshClientBuilder {
    base_url: String,
    api_key: Option<String>,
    timeout: Duration,
    connect_timeout: Duration,
}

impl HooshClient {
    /// `base_url` is the gateway's root, e.g. `http://127.0.0.1:8088`; a
    /// trailing `/` or `/v1` is tolerated, a path prefix is kept.
    pub fn builder(base_url: impl Into<String>) -> HooshClientBuilder {
        HooshClientBuilder {
            base_url: base_url.into(),
            api_key: None,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// The root URL requests are made under (without `/v1`).
    pub fn base_url(&self) -> &str {
        self.inner.base.as_str()
    }

    /// `POST /v1/chat/completions`, non-streaming (`stream` is forced off).
    pub async fn chat(&self, req: &ChatCompletionRequest) -> Result<ChatCompletionResponse, ClientError> {
        let req = with_stream(req, false);
        let url = self.endpoint(&["v1", "chat", "completions"])?;
        self.call(self.inner.http.post(url).json(&*req)).await
    }

    /// `POST /v1/chat/completions` with `stream: true`; the chunks arrive
    /// through the returned [`ChatStream`]. An error status is returned here,
    /// before any chunk.
    pub async fn chat_stream(&self, req: &ChatCompletionRequest) -> Result<ChatStream, ClientError> {
        let req = with_stream(req, true);
        let url = self.endpoint(&["v1", "chat", "completions"])?;
        // No whole-request deadline: a stream may rightly last longer. The
        // client's read timeout still bounds every silence.
        let request = self.inner.http.post(url).header(ACCEPT, "text/event-stream").json(&*req);
        let response = send(request).await?;
        if is_json(&response) {
            // The server ignored `stream: true` or answered with an error
            // envelope under a 2xx; either way there is no event stream.
            let status = response.status().as_u16();
            let request_id = crate::error::request_id(&response);
            let body = response.bytes().await.map_err(|e| ClientError::transport(&e))?;
            return Err(match serde_json::from_slice::<ErrorResponse>(&body) {
                Ok(envelope) => ClientError::Api { status, error: envelope.error, request_id },
                Err(_) => ClientError::Decode(format!(
                    "asked for an event stream, got JSON: {}",
                    snippet(&String::from_utf8_lossy(&body))
                )),
            });
        }
        Ok(ChatStream::new(response))
    }

    /// `POST /v1/embeddings`.
    pub async fn embeddings(&self, req: &EmbeddingRequest) -> Result<EmbeddingResponse, ClientError> {
        let url = self.endpoint(&["v1", "embeddings"])?;
        self.call(self.inner.http.post(url).json(req)).await
    }

    /// `GET /v1/models`.
    pub async fn models(&self) -> Result<ModelList, ClientError> {
        let url = self.endpoint(&["v1", "models"])?;
        self.call(self.inner.http.get(url)).await
    }

    /// `GET /v1/models/{id}`; `id` is percent-encoded, so ids with a `/`
    /// (`openai/gpt-4o`) stay one path segment.
    pub async fn model(&self, id: &str) -> Result<Model, ClientError> {
        let url = self.endpoint(&["v1", "models", id])?;
        self.call(self.inner.http.get(url)).await
    }

    /// `GET /health`: `true` on a 2xx, `false` on any other status. Only a
    /// gateway that cannot be reached is an error.
    pub async fn health(&self) -> Result<bool, ClientError> {
        let url = self.endpoint(&["health"])?;
        let response = self
            .inner
            .http
            .get(url)
            .timeout(self.inner.timeout)
            .send()
            .await
            .map_err(|e| ClientError::transport(&e))?;
        Ok(response.status().is_success())
    }

    /// `GET /v1/providers`: the gateway's provider status, as JSON (its shape
    /// belongs to the server and may grow).
    pub async fn providers(&self) -> Result<serde_json::Value, ClientError> {
        let url = self.endpoint(&["v1", "providers"])?;
        self.call(self.inner.http.get(url)).await
    }

    fn endpoint(&self, segments: &[&str]) -> Result<Url, ClientError> {
        let mut url = self.inner.base.clone();
        url.path_segments_mut()
            .map_err(|()| ClientError::Config(format!("base URL {} cannot take a path", self.inner.base)))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// Sends a non-streaming request and decodes its JSON answer.
    async fn call<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, ClientError> {
        let response = send(request.timeout(self.inner.timeout)).await?;
        let status = response.status().as_u16();
        let request_id = crate::error::request_id(&response);
        let body = response.bytes().await.map_err(|e| ClientError::transport(&e))?;
        serde_json::from_slice(&body).map_err(|e| {
            match serde_json::from_slice::<ErrorResponse>(&body) {
                // Some servers put an error envelope under a 200.
                Ok(envelope) => ClientError::Api { status, error: envelope.error, request_id },
                Err(_) => ClientError::Decode(format!("{e}: {}", snippet(&String::from_utf8_lossy(&body)))),
            }
        })
    }
}

/// Sends `request`; a non-2xx answer becomes an error.
async fn send(request: RequestBuilder) -> Result<Response, ClientError> {
    let response = request.send().await.map_err(|e| ClientError::transport(&e))?;
    if response.status().is_success() { Ok(response) } else { Err(ClientError::from_response(response).await) }
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"))
}

/// `req` with `stream` set as asked, cloned only when it differs.
/// `stream_options` is dropped from a non-streaming request, which OpenAI
/// rejects when it carries one.
fn with_stream(req: &ChatCompletionRequest, stream: bool) -> Cow<'_, ChatCompletionRequest> {
    if req.stream == stream && (stream || req.stream_options.is_none()) {
        return Cow::Borrowed(req);
    }
    let mut owned = req.clone();
    owned.stream = stream;
    if !stream {
        owned.stream_options = None;
    }
    Cow::Owned(owned)
}

impl HooshClientBuilder {
    /// Sent as `Authorization: Bearer <key>`. `None` or an empty key sends
    /// no `Authorization` header.
    pub fn api_key(mut self, key: Option<String>) -> Self {
        self.api_key = key.filter(|k| !k.trim().is_empty());
        self
    }

    /// Deadline of a whole non-streaming call, and the longest a stream may
    /// stay silent. Default 600 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Deadline for opening a connection. Default 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    pub fn build(self) -> Result<HooshClient, ClientError> {
        let base = parse_base_url(&self.base_url)?;
        let mut headers = HeaderMap::new();
        if let Some(key) = &self.api_key {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", key.trim()))
                .map_err(|_| ClientError::Config("the API key contains characters not allowed in a header".into()))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("hoosh-client/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .connect_timeout(self.connect_timeout)
            .read_timeout(self.timeout)
            .build()
            .map_err(|e| ClientError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(HooshClient { inner: Arc::new(Inner { http, base, timeout: self.timeout }) })
    }
}

/// Parses the gateway root: http(s) only; query and fragment dropped; a
/// trailing `/` or `/v1` removed, since every endpoint adds its own path.
fn parse_base_url(raw: &str) -> Result<Url, ClientError> {
    let raw = raw.trim();
    let mut url = Url::parse(raw).map_err(|e| ClientError::Config(format!("invalid base URL {raw:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() || url.host_str().is_none() {
        return Err(ClientError::Config(format!(
            "invalid base URL {raw:?}: expected http://host[:port] or https://host[:port]"
        )));
    }
    url.set_query(None);
    url.set_fragment(None);
    let path = url.path().trim_end_matches('/');
    let path = path.strip_suffix("/v1").unwrap_or(path).trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

impl fmt::Debug for HooshClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HooshClient")
            .field("base", &self.inner.base.as_str())
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for HooshClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HooshClientBuilder")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_tolerates_slash_and_v1() {
        for raw in [
            "http://127.0.0.1:8088",
            "http://127.0.0.1:8088/",
            "http://127.0.0.1:8088/v1",
            " http://127.0.0.1:8088/v1/ ",
        ] {
            assert_eq!(parse_base_url(raw).unwrap().as_str(), "http://127.0.0.1:8088/", "{raw}");
        }
        assert_eq!(parse_base_url("https://gw.example/llm/v1").unwrap().as_str(), "https://gw.example/llm");
    }

    #[test]
    fn base_url_rejects_non_http() {
        for raw in ["127.0.0.1:8088", "localhost:8088", "ftp://x", "", "not a url"] {
            assert!(matches!(parse_base_url(raw), Err(ClientError::Config(_))), "{raw}");
        }
    }

    #[test]
    fn endpoints_join_under_the_prefix_and_encode_ids() {
        let client = HooshClient::builder("https://gw.example/llm/v1/").build().unwrap();
        assert_eq!(client.endpoint(&["v1", "models"]).unwrap().as_str(), "https://gw.example/llm/v1/models");
        assert_eq!(
            client.endpoint(&["v1", "models", "openai/gpt-4o"]).unwrap().as_str(),
            "https://gw.example/llm/v1/models/openai%2Fgpt-4o"
        );
        let client = HooshClient::builder("http://127.0.0.1:8088").build().unwrap();
        assert_eq!(client.endpoint(&["health"]).unwrap().as_str(), "http://127.0.0.1:8088/health");
    }

    #[test]
    fn stream_flag_is_forced_without_needless_clones() {
        let mut req = ChatCompletionRequest { model: "m".into(), ..Default::default() };
        assert!(matches!(with_stream(&req, false), Cow::Borrowed(_)));
        assert!(with_stream(&req, true).stream);
        req.stream = true;
        req.stream_options = Some(Default::default());
        let plain = with_stream(&req, false);
        assert!(!plain.stream && plain.stream_options.is_none());
        assert!(matches!(with_stream(&req, true), Cow::Borrowed(_)));
    }

    #[test]
    fn bad_api_key_is_a_config_error() {
        let built = HooshClient::builder("http://127.0.0.1:1").api_key(Some("sk\nbad".into())).build();
        assert!(matches!(built, Err(ClientError::Config(_))));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let builder = HooshClient::builder("http://127.0.0.1:1").api_key(Some("sk-secret".into()));
        assert!(!format!("{builder:?}").contains("sk-secret"));
    }
}
