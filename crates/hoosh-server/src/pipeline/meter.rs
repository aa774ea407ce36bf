//! Governed requests: estimate → admit (rate limits, concurrency, budget
//! reservation) → run → settle to the actual usage, with one ledger row.
//!
//! A [`Metered`] request is settled exactly once, whatever happens: the
//! handler calls [`Metered::settle`] (success or error); a stream is wrapped
//! by [`Metered::stream`], which settles when the stream ends, fails, or is
//! dropped because the client went away (the [`Admission`] inside settles
//! on drop to what was recorded so far: the prompt plus the chunks sent).
//!
//! Estimates: the prompt counted by the model's own tokenizer when it is at
//! hand (a loaded local model), else at ~4 bytes per token plus per-message framing,
//! plus the output cap (`max_tokens`, else `governance.default_max_tokens`).
//! Dollars: the estimate priced at the most expensive candidate, so a
//! failover can never spend more than was reserved. A request whose every
//! candidate is free (local, or priced at zero) is exempt from dollar
//! budgets when `free_models_exempt` is on.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use futures_util::Stream;
use hoosh_core::ChunkStream;
use hoosh_core::pricing::{Price, Tokens};
use hoosh_core::router::{Candidate, ProviderEntry};
use hoosh_governance::{Admission, AdmitRequest, Amount, Denied, Outcome, UsageRecord, nanos_to_usd};
use hoosh_types::openai::{ChatCompletionChunk, ChatCompletionRequest, Usage, content_text};

use crate::audit::Audit;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::metrics;
use crate::state::{AppState, Live};

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Bytes per token of the estimate (English text with BPE tokenizers runs
/// at 3.5–4.5; the estimate is corrected at settle anyway).
const BYTES_PER_TOKEN: u64 = 4;
/// Framing tokens per message (role, separators), as OpenAI counts them.
const TOKENS_PER_MESSAGE: u64 = 4;
/// Tokens for an image part (OpenAI's low-detail figure).
const TOKENS_PER_IMAGE: u64 = 85;

fn text_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(BYTES_PER_TOKEN)
}

/// Estimated prompt tokens of a chat request.
pub fn estimate_chat_prompt(req: &ChatCompletionRequest) -> u64 {
    let mut tokens = 3;
    for m in &req.messages {
        tokens += TOKENS_PER_MESSAGE;
        if let Some(c) = &m.content {
            tokens += text_tokens(&content_text(c));
            if let hoosh_types::content::TextOrParts::Parts(parts) = c {
                let images =
                    parts.iter().filter(|p| matches!(p, hoosh_types::openai::ContentPart::ImageUrl { .. })).count();
                tokens += images as u64 * TOKENS_PER_IMAGE;
            }
        }
        for call in m.tool_calls.iter().flatten() {
            tokens += text_tokens(&call.function.name) + text_tokens(&call.function.arguments);
        }
    }
    for tool in req.tools.iter().flatten() {
        tokens += serde_json::to_string(tool).map_or(0, |s| text_tokens(&s));
    }
    tokens
}

/// The prompt's tokens: counted by the first candidate's own tokenizer when
/// it has one at hand (a loaded local model), else estimated.
pub fn prompt_tokens(candidates: &[Candidate], req: &ChatCompletionRequest) -> u64 {
    candidates
        .first()
        .and_then(|c| c.entry.provider.count_prompt_tokens(&c.model, req))
        .unwrap_or_else(|| estimate_chat_prompt(req))
}

/// Estimated tokens of embedding inputs.
pub fn estimate_inputs(inputs: &[String]) -> u64 {
    inputs.iter().map(|s| text_tokens(s).max(1)).sum()
}

/// What a call costs, in nano-USD: `None` when the model is unpriced.
fn cost(price: Option<&Price>, local: bool, tokens: Tokens) -> Option<u64> {
    if local {
        return Some(0);
    }
    price.map(|p| p.cost_nanos(tokens))
}

/// The token counts a provider's usage bills.
fn tokens_of(u: &Usage) -> Tokens {
    let details = u.prompt_tokens_details.unwrap_or_default();
    Tokens {
        prompt: u.prompt_tokens,
        cached_read: details.cached_tokens,
        cache_write: details.cache_write_tokens,
        completion: u.completion_tokens,
        reasoning: u.completion_tokens_details.map_or(0, |d| d.reasoning_tokens),
        ..Tokens::default()
    }
}

fn plain(prompt: u64, completion: u64) -> Tokens {
    Tokens { prompt, completion, ..Default::default() }
}

/// A governed request between admission and settlement.
pub struct Metered {
    admission: Admission,
    /// The config and prices the request was admitted under.
    live: Arc<Live>,
    audit: Arc<Audit>,
    started: Instant,
    request_id: String,
    route: &'static str,
    requested_model: String,
    prompt_estimate: u64,
    /// Audio in (speech-to-text) and characters in (text-to-speech): known
    /// up front, billed as they are.
    media: Media,
    headers: HeaderMap,
}

impl std::fmt::Debug for Metered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metered").field("request_id", &self.request_id).field("route", &self.route).finish()
    }
}

/// What a request asks for, as admission prices it.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub route: &'static str,
    /// The model as the caller named it.
    pub model: &'a str,
    pub candidates: &'a [Candidate],
    /// Estimated prompt tokens.
    pub prompt_estimate: u64,
    /// Most output tokens.
    pub output_cap: u64,
    pub media: Media,
}

/// The non-token part of a request's bill.
#[derive(Debug, Clone, Copy, Default)]
pub struct Media {
    pub audio_ms: u64,
    pub tts_chars: u64,
}

impl Media {
    fn add_to(self, t: Tokens) -> Tokens {
        Tokens { audio_ms: self.audio_ms, tts_chars: self.tts_chars, ..t }
    }
}

/// Where a finished request was served, and what it used.
pub struct Served<'a> {
    pub entry: &'a ProviderEntry,
    /// The model name the provider was asked for.
    pub model: &'a str,
    pub usage: Usage,
}

impl Metered {
    /// Checks the key's model list, rate and concurrency limits, and reserves
    /// the estimate against every applicable budget.
    pub fn admit(st: &AppState, live: &Arc<Live>, caller: &Caller, ask: Ask<'_>) -> Result<Metered, ApiError> {
        let Ask { route, model, candidates, prompt_estimate, output_cap, media } = ask;
        let pricing = live.router.pricing();
        // One price lookup per candidate: the whole estimate and the prompt
        // alone, each at the dearest candidate.
        let (mut nanos, mut prompt_nanos) = (0u64, 0u64);
        let mut all_free = true;
        for c in candidates {
            let price = pricing.lookup(c.entry.name(), &c.model);
            all_free &= c.entry.local || price.is_some_and(Price::is_free);
            let priced = |t| cost(price, c.entry.local, t).unwrap_or(0);
            nanos = nanos.max(priced(media.add_to(plain(prompt_estimate, output_cap))));
            prompt_nanos = prompt_nanos.max(priced(media.add_to(plain(prompt_estimate, 0))));
        }
        let req = AdmitRequest {
            model,
            estimated_tokens: prompt_estimate + output_cap,
            estimated_nanos: nanos,
            dollar_exempt: all_free && live.config.governance.free_models_exempt,
        };
        let mut admission = st.gov.inner.admit(&caller.principal, req, now_ms()).inspect_err(|d| {
            let reason = match d {
                Denied::ModelNotAllowed { .. } => "model_not_allowed",
                Denied::RateLimited(_) => "rate_limit",
                Denied::Concurrency(_) => "concurrency",
                Denied::Budget(_) => "budget",
            };
            metrics::record_rejection(reason);
            st.audit.denied(&caller.principal, &caller.request_id, model, reason);
        })?;
        // Until settled, a drop (client gone mid-call) charges the prompt:
        // it reached the provider.
        let prompt_nanos = if req.dollar_exempt { 0 } else { prompt_nanos };
        admission.record(Amount::new(prompt_estimate, prompt_nanos));
        let mut headers = HeaderMap::new();
        let remaining = admission.remaining();
        let mut put = |name: &'static str, value: String| {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), v);
            }
        };
        if let Some(t) = remaining.tokens {
            put("x-hoosh-budget-remaining-tokens", t.to_string());
        }
        if let Some(usd) = remaining.usd {
            put("x-hoosh-budget-remaining-usd", format!("{usd:.6}"));
        }
        for (name, value) in admission.rate_status().headers() {
            put(name, value);
        }
        Ok(Metered {
            admission,
            live: Arc::clone(live),
            audit: Arc::clone(&st.audit),
            started: Instant::now(),
            request_id: caller.request_id.clone(),
            route,
            requested_model: model.to_owned(),
            prompt_estimate,
            media,
            headers,
        })
    }

    /// Records the request's input in the audit chain when the operator
    /// opted in (`audit.include_content`); `content` runs only then.
    pub fn audit_content(&self, caller: &Caller, content: impl FnOnce() -> serde_json::Value) {
        if self.audit.include_content() {
            self.audit.content(&caller.principal, &self.request_id, &self.requested_model, content());
        }
    }

    /// Budget and rate-limit headers for the response.
    pub fn headers(&self) -> HeaderMap {
        self.headers.clone()
    }

    fn row(&self, served: Option<&Served<'_>>, status: u16, ttft_ms: Option<u64>) -> (UsageRecord, Amount) {
        let (provider, model, usage, cost_nanos) = match served {
            Some(s) => {
                let cached = s.usage.prompt_tokens_details.as_ref().map_or(0, |d| d.cached_tokens);
                let price = self.live.router.pricing().lookup(s.entry.name(), s.model);
                let c = cost(price, s.entry.local, self.media.add_to(tokens_of(&s.usage)));
                (Some(s.entry.name().to_owned()), s.model.to_owned(), Some((s.usage, cached)), c)
            }
            None => (None, self.requested_model.clone(), None, Some(0)),
        };
        let (prompt, completion, cached) =
            usage.map_or((0, 0, 0), |(u, cached)| (u.prompt_tokens, u.completion_tokens, cached));
        let row = UsageRecord {
            ts_ms: now_ms(),
            request_id: self.request_id.clone(),
            key_id: None,
            team: None,
            provider,
            model,
            prompt_tokens: prompt,
            completion_tokens: completion,
            cached_tokens: cached,
            cost_nanos,
            latency_ms: self.started.elapsed().as_millis() as u64,
            ttft_ms,
            status,
            cache_hit: false,
            route: self.route.into(),
            // Audio that reached a provider; a refused or failed call processed none.
            audio_ms: if served.is_some() { self.media.audio_ms } else { 0 },
        };
        let amount = Amount::new(prompt + completion, cost_nanos.unwrap_or(0));
        (row, amount)
    }

    fn report(&self, row: &UsageRecord) {
        metrics::record_settled(&metrics::Settled {
            route: self.route,
            model: &row.model,
            provider: row.provider.as_deref().unwrap_or("none"),
            status: row.status,
            prompt_tokens: row.prompt_tokens,
            completion_tokens: row.completion_tokens,
            cost_nanos: row.cost_nanos,
            latency: self.started.elapsed(),
            ttft: row.ttft_ms.map(std::time::Duration::from_millis),
        });
    }

    /// Settles a request that got its whole answer (`served`) or failed
    /// (`None`: nothing billable came back). Returns the cost header value.
    pub fn settle(self, served: Option<Served<'_>>, status: u16) -> Option<HeaderValue> {
        let (row, actual) = self.row(served.as_ref(), status, None);
        self.report(&row);
        let header = match row.cost_nanos {
            Some(n) => HeaderValue::from_str(&format!("{:.9}", nanos_to_usd(n))).ok(),
            None => Some(HeaderValue::from_static("unpriced")),
        };
        self.admission.finish(Outcome { actual, usage: row });
        header
    }

    /// Settles a request answered from the response cache: nothing reached a
    /// provider, so nothing is charged; the ledger row says `cache_hit`.
    pub fn settle_cache_hit(self) {
        let (mut row, _) = self.row(None, 200, None);
        row.provider = Some("cache".into());
        row.cache_hit = true;
        self.report(&row);
        self.admission.finish(Outcome { actual: Amount::new(0, 0), usage: row });
    }

    /// Settles a failed request (nothing billable came back) and hands the
    /// error on.
    pub fn fail(self, err: impl Into<ApiError>) -> ApiError {
        let err = err.into();
        if let ApiError::Provider { error, .. } = &err {
            metrics::record_upstream_error(error.provider.as_deref().unwrap_or("none"), error.kind.as_str());
        }
        self.settle(None, err.status().as_u16());
        err
    }

    /// The stream, metered: usage is recorded as chunks pass, settled when it
    /// ends or fails, and on drop (client gone) settled to what was sent.
    pub fn stream(self, inner: ChunkStream, entry: std::sync::Arc<ProviderEntry>, model: String) -> ChunkStream {
        let price = self.live.router.pricing().lookup(entry.name(), &model).cloned();
        let mut meter = StreamMeter { metered: self, entry, model, price, completion: 0, usage: None, ttft_ms: None };
        meter.record();
        Box::pin(MeteredStream { inner, meter: Some(meter) })
    }
}

struct StreamMeter {
    metered: Metered,
    entry: std::sync::Arc<ProviderEntry>,
    model: String,
    price: Option<Price>,
    /// Content chunks seen: about one token each.
    completion: u64,
    /// Exact usage, once the provider reported it.
    usage: Option<Usage>,
    ttft_ms: Option<u64>,
}

impl StreamMeter {
    fn usage_so_far(&self) -> Usage {
        self.usage.unwrap_or_else(|| Usage::new(self.metered.prompt_estimate, self.completion))
    }

    /// What a drop would settle to now: the prompt (it reached the provider)
    /// plus the chunks sent.
    fn record(&mut self) {
        let u = self.usage_so_far();
        let nanos = cost(self.price.as_ref(), self.entry.local, tokens_of(&u)).unwrap_or(0);
        self.metered.admission.record(Amount::new(u.prompt_tokens + u.completion_tokens, nanos));
    }

    fn observe(&mut self, chunk: &ChatCompletionChunk) {
        if let Some(u) = &chunk.usage {
            self.usage = Some(*u);
        }
        let content = chunk
            .choices
            .iter()
            .any(|c| c.delta.content.as_deref().is_some_and(|t| !t.is_empty()) || c.delta.tool_calls.is_some());
        if content {
            self.completion += 1;
            if self.ttft_ms.is_none() {
                self.ttft_ms = Some(self.metered.started.elapsed().as_millis() as u64);
            }
        }
        if content || chunk.usage.is_some() {
            self.record();
        }
    }

    fn end(self, status: u16) {
        let usage = self.usage_so_far();
        let served = Served { entry: &self.entry, model: &self.model, usage };
        let (row, actual) = self.metered.row(Some(&served), status, self.ttft_ms);
        self.metered.report(&row);
        self.metered.admission.finish(Outcome { actual, usage: row });
    }
}

struct MeteredStream {
    inner: ChunkStream,
    meter: Option<StreamMeter>,
}

/// The client went away mid-stream: the admission inside settles (and logs
/// the 499) on its own drop; metrics hear of it here.
impl Drop for MeteredStream {
    fn drop(&mut self) {
        if let Some(m) = &self.meter {
            let usage = m.usage_so_far();
            let served = Served { entry: &m.entry, model: &m.model, usage };
            let (row, _) = m.metered.row(Some(&served), hoosh_governance::gate::CLIENT_CLOSED, m.ttft_ms);
            m.metered.report(&row);
        }
    }
}

impl Stream for MeteredStream {
    type Item = <ChunkStream as Stream>::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let next = this.inner.as_mut().poll_next(cx);
        match &next {
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(m) = this.meter.as_mut() {
                    m.observe(chunk);
                }
            }
            // A stream cut upstream: the client saw a 200 that ended in an
            // error event; the ledger says 502.
            Poll::Ready(Some(Err(_))) => {
                if let Some(m) = this.meter.take() {
                    m.end(502);
                }
            }
            Poll::Ready(None) => {
                if let Some(m) = this.meter.take() {
                    m.end(200);
                }
            }
            Poll::Pending => {}
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoosh_types::openai::{ChatMessage, Role};

    #[test]
    fn the_estimate_counts_text_messages_and_framing() {
        let req = ChatCompletionRequest {
            model: "m".into(),
            messages: vec![ChatMessage::text(Role::System, "abcd"), ChatMessage::text(Role::User, "abcdefgh")],
            ..Default::default()
        };
        assert_eq!(estimate_chat_prompt(&req), 3 + 2 * TOKENS_PER_MESSAGE + 1 + 2);
        assert_eq!(estimate_inputs(&["a".into(), "abcde".into()]), 1 + 2);
    }

    #[test]
    fn local_is_free_and_unpriced_is_not() {
        let p = Price { model: "x".into(), input: 2.0, output: 8.0, ..Default::default() };
        assert_eq!(cost(Some(&p), false, plain(1_000_000, 1_000_000)), Some(10_000_000_000));
        assert_eq!(cost(None, false, plain(10, 10)), None, "unpriced is not free");
        assert_eq!(cost(None, true, plain(10, 10)), Some(0));
    }
}
