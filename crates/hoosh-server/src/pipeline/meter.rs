//! The settle phase: a [`Metered`] request — admitted, holding its budget
//! reservation, rate charges and concurrency slots — is settled exactly
//! once, whatever happens:
//! - a whole answer: [`Metered::settle`] with the provider's usage;
//! - a failure: [`Metered::fail`] (nothing billable came back);
//! - a cache hit: [`Metered::settle_cache_hit`] (free, ledgered as a hit);
//! - a stream: [`Metered::stream`] wraps it and settles when it ends or
//!   fails; if the client goes away it is dropped, and the admission inside
//!   settles on drop to what was recorded — the prompt plus the chunks
//!   sent — under a ledger row that still names the route, provider and
//!   model (status 499).
//!
//! Every path produces one ledger row (which the audit chain also records)
//! and one `hoosh_requests_total` sample.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::Stream;
use hoosh_audit::AuditLog;
use hoosh_core::ChunkStream;
use hoosh_core::Placement;
use hoosh_core::executor::{Abandoned, Failure};
use hoosh_core::pricing::{Price, Tokens};
use hoosh_core::router::ProviderEntry;
use hoosh_governance::{Admission, Amount, Clock, Ledger, Outcome, UsageRecord};
use hoosh_types::openai::{ChatCompletionChunk, Usage};

use super::estimate::Media;
use super::served::Cost;
use crate::error::ApiError;
use crate::metrics;
use crate::state::Live;

/// What a call costs, in nano-USD: `None` when the model is unpriced.
pub(super) fn cost(price: Option<&Price>, placement: Placement, tokens: Tokens) -> Option<u64> {
    if placement.is_free() {
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

pub(super) fn plain(prompt: u64, completion: u64) -> Tokens {
    Tokens { prompt, completion, ..Default::default() }
}

impl Media {
    pub(super) fn add_to(self, t: Tokens) -> Tokens {
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

/// A governed request between admission and settlement.
pub struct Metered {
    pub(super) admission: Admission,
    /// The config and prices the request was admitted under.
    pub(super) live: Arc<Live>,
    pub(super) started: Instant,
    pub(super) request_id: String,
    pub(super) route: &'static str,
    pub(super) requested_model: String,
    /// The prompt tokens reserved (the estimate, calibrated).
    pub(super) prompt_estimate: u64,
    /// The output tokens reserved (`n ×` the cap).
    pub(super) output_estimate: u64,
    /// The gateway's own estimate when it was not counted exactly: what a
    /// provider's reported count calibrates against.
    pub(super) raw_prompt: Option<u64>,
    pub(super) calibration: Arc<super::calibrate::Calibration>,
    /// The server's clock (ledger timestamps).
    pub(super) clock: Arc<dyn Clock>,
    /// Attempts given up on after their upstream accepted them: charged
    /// their estimate each, at their own provider's price.
    pub(super) abandoned: Vec<Abandoned>,
    /// Audio in (speech-to-text) and characters in (text-to-speech): known
    /// up front, billed as they are.
    pub(super) media: Media,
    /// The ledger, and the audit log its rows become entries in, to wait
    /// on before answering (`state.ack_after_commit`).
    pub(super) ack_after_commit: Option<(Arc<Ledger>, Option<Arc<AuditLog>>)>,
}

impl std::fmt::Debug for Metered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metered").field("request_id", &self.request_id).field("route", &self.route).finish()
    }
}

impl Metered {
    /// A ledger row for this request: `served` by a provider (with its
    /// usage), or not (refused upstream, failed: nothing billable).
    ///
    /// Attempts abandoned on the way ([`Metered::abandoned`]) are added, each
    /// priced at its own provider: the estimate's tokens and media.
    fn row(&self, served: Option<&Served<'_>>, status: u16, ttft_ms: Option<u64>) -> (UsageRecord, Amount) {
        let (provider, model, usage, mut cost_nanos) = match served {
            Some(s) => {
                let price = self.live.router.pricing().lookup(s.entry.name(), s.model);
                let c = cost(price, s.entry.placement, self.media.add_to(tokens_of(&s.usage)));
                (Some(s.entry.name().to_owned()), s.model.to_owned(), Some(s.usage), c)
            }
            None => match self.abandoned.last() {
                Some(a) => (Some(a.entry.name().to_owned()), a.model.clone(), None, Some(0)),
                None => (None, self.requested_model.clone(), None, Some(0)),
            },
        };
        let (mut prompt, mut completion, cached) = usage.map_or((0, 0, 0), |u| {
            (u.prompt_tokens, u.completion_tokens, u.prompt_tokens_details.map_or(0, |d| d.cached_tokens))
        });
        for a in &self.abandoned {
            let price = self.live.router.pricing().lookup(a.entry.name(), &a.model);
            let estimate = self.media.add_to(plain(self.prompt_estimate, self.output_estimate));
            prompt += self.prompt_estimate;
            completion += self.output_estimate;
            cost_nanos = match (cost_nanos, cost(price, a.entry.placement, estimate)) {
                (Some(x), Some(y)) => Some(x.saturating_add(y)),
                _ => None,
            };
        }
        let row = UsageRecord {
            ts_ms: self.clock.now_ms(),
            request_id: self.request_id.clone(),
            provider,
            model,
            prompt_tokens: prompt,
            completion_tokens: completion,
            cached_tokens: cached,
            cost_nanos,
            latency_ms: self.started.elapsed().as_millis() as u64,
            ttft_ms,
            status,
            route: self.route.into(),
            // Audio that reached a provider (once per attempt that may bill).
            audio_ms: self.media.audio_ms * (u64::from(served.is_some()) + self.abandoned.len() as u64),
            ..UsageRecord::default()
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
    /// (`None`: nothing billable came back). Returns what it cost.
    pub fn settle(self, served: Option<Served<'_>>, status: u16) -> (Cost, Committed) {
        if let Some(s) = &served {
            self.calibrate(s);
        }
        let (row, actual) = self.row(served.as_ref(), status, None);
        self.report(&row);
        let cost = Cost::from(row.cost_nanos);
        (cost, self.finish(actual, row))
    }

    /// Ends the admission with `actual`, counting any overrun of the reservation.
    fn finish(self, actual: Amount, row: UsageRecord) -> Committed {
        let reserved = self.admission.estimated().tokens;
        if actual.tokens > reserved {
            metrics::record_overrun(row.provider.as_deref().unwrap_or("none"), actual.tokens - reserved);
        }
        self.admission.finish(Outcome { actual, usage: row });
        match self.ack_after_commit {
            Some((ledger, audit)) => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                // The row's audit entry is recorded by the ledger writer as
                // it commits the row: wait for the row, then for the entry.
                ledger.on_committed(Box::new(move || match audit {
                    Some(log) => log.on_committed(Box::new(move || {
                        let _ = tx.send(());
                    })),
                    None => {
                        let _ = tx.send(());
                    }
                }));
                Committed(Some(rx))
            }
            None => Committed(None),
        }
    }

    /// Learns what the provider counted for the prompt.
    fn calibrate(&self, served: &Served<'_>) {
        if let (Some(raw), true) = (self.raw_prompt, self.abandoned.is_empty()) {
            self.calibration.observe(
                self.admission.key_id(),
                served.entry.name(),
                served.model,
                raw,
                served.usage.prompt_tokens,
            );
        }
    }

    /// Settles a request answered from the response cache: nothing reached a
    /// provider, so nothing is charged; the ledger row says `cache_hit`.
    pub fn settle_cache_hit(self) {
        let (mut row, _) = self.row(None, 200, None);
        row.provider = Some("cache".into());
        row.cache_hit = true;
        self.report(&row);
        self.admission.finish(Outcome { actual: Amount::ZERO, usage: row });
    }

    /// Settles a failed request and hands the error on. Nothing billable
    /// came back, but attempts the gateway abandoned after their upstream
    /// accepted them are charged their estimate each (the provider may bill
    /// them), under the last such provider.
    pub fn fail(mut self, mut failure: Failure) -> ApiError {
        self.abandoned = std::mem::take(&mut failure.abandoned);
        let err = ApiError::from(failure);
        if let ApiError::Provider { error, .. } = &err {
            metrics::record_upstream_error(error.provider.as_deref().unwrap_or("none"), error.kind.as_str());
        }
        self.settle(None, err.status().as_u16());
        err
    }

    /// The stream, metered: usage is recorded as chunks pass, settled when it
    /// ends or fails, and on drop (client gone) settled to what was sent.
    pub fn stream(self, inner: ChunkStream, entry: Arc<ProviderEntry>, model: String) -> ChunkStream {
        let price = self.live.router.pricing().lookup(entry.name(), &model).cloned();
        let mut meter = StreamMeter { metered: self, entry, model, price, completion: 0, usage: None, ttft_ms: None };
        meter.record();
        Box::pin(MeteredStream { inner, meter: Some(meter), committing: None })
    }
}

struct StreamMeter {
    metered: Metered,
    entry: Arc<ProviderEntry>,
    model: String,
    price: Option<Price>,
    /// Output counted so far (text, reasoning, refusals, tool-call
    /// arguments): what a drop charges when the provider reported no usage.
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
        let nanos = cost(self.price.as_ref(), self.entry.placement, tokens_of(&u)).unwrap_or(0);
        self.metered.admission.record(Amount::new(u.prompt_tokens + u.completion_tokens, nanos));
    }

    fn observe(&mut self, chunk: &ChatCompletionChunk) {
        if let Some(u) = &chunk.usage {
            self.usage = Some(*u);
        }
        let tokens = output_tokens(chunk);
        let content = tokens > 0;
        if content {
            self.completion += tokens;
            if self.ttft_ms.is_none() {
                self.ttft_ms = Some(self.metered.started.elapsed().as_millis() as u64);
            }
        }
        if content || chunk.usage.is_some() {
            self.record();
        }
    }

    fn end(self, status: u16) -> Committed {
        let usage = self.usage_so_far();
        let served = Served { entry: &self.entry, model: &self.model, usage };
        if self.usage.is_some() {
            self.metered.calibrate(&served);
        }
        let (row, actual) = self.metered.row(Some(&served), status, self.ttft_ms);
        self.metered.report(&row);
        self.metered.finish(actual, row)
    }
}

/// When a settled request's ledger row and audit entry are committed, if
/// the answer must wait for that (`state.ack_after_commit` in a cluster).
#[derive(Debug)]
pub struct Committed(Option<tokio::sync::oneshot::Receiver<()>>);

impl Committed {
    /// Waits for the commit (at once when nothing needs to).
    pub async fn wait(self) {
        if let Some(rx) = self.0 {
            let _ = rx.await;
        }
    }
}

/// Output tokens a chunk carries, counted like the estimate: at least one
/// per choice that says anything (a provider streams about a token a
/// chunk), more for chunks that carry more text.
fn output_tokens(chunk: &ChatCompletionChunk) -> u64 {
    chunk
        .choices
        .iter()
        .map(|c| {
            let d = &c.delta;
            let text = [d.content.as_deref(), d.reasoning_content.as_deref(), d.refusal.as_deref()]
                .into_iter()
                .flatten()
                .map(str::len)
                .sum::<usize>();
            let args: usize = d
                .tool_calls
                .iter()
                .flatten()
                .filter_map(|t| t.function.as_ref())
                .map(|f| f.name.as_deref().map_or(0, str::len) + f.arguments.as_deref().map_or(0, str::len))
                .sum();
            let bytes = (text + args) as u64;
            if bytes == 0 && d.tool_calls.is_none() { 0 } else { bytes.div_ceil(4).max(1) }
        })
        .sum()
}

struct MeteredStream {
    inner: ChunkStream,
    meter: Option<StreamMeter>,
    /// The stream has ended; its end is passed on once the row is committed.
    committing: Option<tokio::sync::oneshot::Receiver<()>>,
}

/// The client went away mid-stream: the admission inside settles on its own
/// drop (status 499) to the row recorded here — route, provider, model and
/// the tokens streamed so far — and metrics hear of it.
impl Drop for MeteredStream {
    fn drop(&mut self) {
        if let Some(m) = &mut self.meter {
            let usage = m.usage_so_far();
            let served = Served { entry: &m.entry, model: &m.model, usage };
            let (row, _) = m.metered.row(Some(&served), hoosh_governance::gate::CLIENT_CLOSED, m.ttft_ms);
            m.metered.report(&row);
            m.metered.admission.record_usage(row);
        }
    }
}

impl Stream for MeteredStream {
    type Item = <ChunkStream as Stream>::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(rx) = this.committing.as_mut() {
            return match Pin::new(rx).poll(cx) {
                Poll::Ready(_) => {
                    this.committing = None;
                    Poll::Ready(None)
                }
                Poll::Pending => Poll::Pending,
            };
        }
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
                    drop(m.end(502));
                }
            }
            Poll::Ready(None) => {
                if let Some(Committed(Some(rx))) = this.meter.take().map(|m| m.end(200)) {
                    this.committing = Some(rx);
                    return self.poll_next(cx);
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

    #[test]
    fn a_chunk_counts_its_text_reasoning_and_tool_arguments() {
        use hoosh_types::openai::{ChunkChoice, Delta};
        let chunk = |deltas: Vec<Delta>| {
            let mut c = ChatCompletionChunk::usage_only("id", 0, "m", Usage::new(0, 0));
            c.usage = None;
            c.choices = deltas
                .into_iter()
                .enumerate()
                .map(|(i, delta)| ChunkChoice { index: i as u32, delta, finish_reason: None, logprobs: None })
                .collect();
            c
        };
        assert_eq!(
            output_tokens(&chunk(vec![Delta::role(hoosh_types::openai::Role::Assistant)])),
            0,
            "the role chunk says nothing"
        );
        assert_eq!(output_tokens(&chunk(vec![Delta::content("a")])), 1);
        let long = Delta { reasoning_content: Some("x".repeat(40)), ..Default::default() };
        assert_eq!(output_tokens(&chunk(vec![long])), 10, "reasoning counts, by length");
        assert_eq!(
            output_tokens(&chunk(vec![Delta::content("ab"), Delta::content("cd")])),
            2,
            "one per choice at least"
        );
    }

    #[test]
    fn local_is_free_and_unpriced_is_not() {
        let p = Price { model: "x".into(), input: 2.0, output: 8.0, ..Default::default() };
        assert_eq!(cost(Some(&p), Placement::Remote, plain(1_000_000, 1_000_000)), Some(10_000_000_000));
        assert_eq!(cost(None, Placement::Remote, plain(10, 10)), None, "unpriced is not free");
        assert_eq!(cost(None, Placement::Nearby, plain(10, 10)), Some(0));
        assert_eq!(cost(Some(&p), Placement::InProcess, plain(10, 10)), Some(0), "priced names are free in-process");
    }
}
