//! The one request pipeline every inference endpoint goes through. A
//! handler decodes and validates its client's API, builds an [`Endpoint`]
//! and calls [`run`]; the phases run in one direction:
//!
//! ```text
//! resolve   router → ordered candidates (alias, provider/model, globs, health)
//! admit     on the candidates: allow-list, unpriced policy, concurrency,
//!           RPM/TPM, budget reservation of the estimate (prompt + n × cap
//!           sent upstream + media) at the dearest candidate     [admit.rs]
//! cache     scoped exact-match lookup ──hit──► settle free, respond
//! execute   candidates in order (executor: retries and failover only
//!           before the first byte); a call that may bill (any remote
//!           candidate) runs detached, so a client hanging up does not
//!           abandon what the provider will charge for
//! settle    exactly once on every path: usage → budgets, cost, ledger row,
//!           audit entry, metrics, cache store                    [meter.rs]
//! respond   the endpoint encodes the answer in its client's API; what
//!           served it travels as a typed [`ServedBy`] extension [served.rs]
//! ```
//!
//! Files: [`estimate`] (what a request may consume), [`calibrate`] (what
//! each provider really counts, learned), [`admit`], [`meter`]
//! (settlement, metered streams), [`served`], and one file per kind of work:
//! [`chat`] (any chat-shaped API, each with its own [`chat::ChatFormat`]),
//! [`embed`], [`audio`].

pub mod admit;
pub mod audio;
pub mod calibrate;
pub mod chat;
pub mod embed;
pub mod estimate;
pub mod meter;
pub mod served;

use std::future::Future;
use std::pin::Pin;

use axum::http::HeaderMap;
use axum::response::Response;
use hoosh_core::ChunkStream;
use hoosh_core::executor::{Executor, Failure, Outcome};
use hoosh_core::router::{Candidate, Need};
use hoosh_governance::{Principal, Scope};
use hoosh_types::openai::Usage;
use tracing::Instrument;

use crate::auth::Caller;
use crate::cache::{Answer, Verdict};
use crate::error::ApiError;
use crate::state::{AppState, Live};
pub use estimate::{Estimate, Media};
use meter::{Metered, Served};
pub use served::{Cost, ServedBy};

/// A provider's answer: whole, or a chat stream still coming.
pub enum Reply<T> {
    Whole(T),
    Stream(ChunkStream),
}

/// What one kind of request does at each phase. Implemented once per kind
/// of work (chat, embeddings, speech-to-text, text-to-speech); a new client
/// API for the same work reuses the implementation with its own encoding.
pub trait Endpoint: Send + Sync + Sized + 'static {
    /// What a provider answers.
    type Output: Send + 'static;
    /// What the router must find.
    const NEED: Need;
    /// Its name in metrics and ledger rows (`chat`, `embeddings`, …).
    fn route(&self) -> &'static str;
    /// The model as the caller named it.
    fn model(&self) -> &str;
    /// Applies the live config's defaults before anything else, e.g. the
    /// output cap that is both reserved and sent upstream.
    fn prepare(&mut self, _live: &Live) {}
    /// The most the request may consume.
    fn estimate(&self, candidates: &[Candidate]) -> Estimate;
    /// The request's input, for the audit chain (`audit.include_content`).
    fn content(&self) -> serde_json::Value;
    /// Calls the candidates in order.
    fn execute(
        &self,
        executor: &Executor,
        candidates: &[Candidate],
    ) -> impl Future<Output = Result<Outcome<Reply<Self::Output>>, Failure>> + Send;
    /// The usage of a whole answer: as the provider reported it, else counted.
    fn usage(&self, out: &Self::Output, estimate: &Estimate) -> Usage;
    /// The answer in the client's API (`served` says who answered).
    fn respond(&self, reply: Reply<Self::Output>, served: &ServedBy, live: &Live) -> Response;

    /// The response cache's key for this request (`None`: not cacheable).
    fn cache_key(&self, _st: &AppState, _principal: &Principal) -> Option<[u8; 32]> {
        None
    }
    /// Whether the endpoint uses the response cache at all (for the
    /// `x-hoosh-cache` verdict).
    fn caches(&self) -> bool {
        false
    }
    /// A cached answer as this request's reply, if its form fits.
    fn replay_cached(&self, _answer: &Answer) -> Option<Reply<Self::Output>> {
        None
    }
    /// A whole answer as the cache stores it.
    fn cacheable_answer(&self, _out: &Self::Output) -> Option<Answer> {
        None
    }
}

/// Runs `ep` through every phase for `caller`.
pub async fn run<E: Endpoint>(st: &AppState, caller: &Caller, mut ep: E) -> Result<Response, ApiError> {
    caller.require(Scope::Inference)?;
    let live = std::sync::Arc::clone(&caller.live);
    ep.prepare(&live);

    // resolve
    let candidates = live.router.candidates(ep.model(), E::NEED)?;

    // admit
    let estimate = ep.estimate(&candidates);
    let admit::Admitted { meter, candidates, headers } =
        admit::admit(st, &live, caller, ep.route(), ep.model(), candidates, estimate).await?;
    if st.audit.include_content() {
        st.audit.content(&caller.principal, &caller.request_id, ep.model(), ep.content());
    }

    // cache
    let key = ep.cache_key(st, &caller.principal);
    let mut cached = key.as_ref().and_then(|k| st.cache.get(k));
    if cached.is_none()
        && let (Some(k), Some(cluster)) = (key.as_ref(), st.gov.cluster())
        && let Some(answer) = cluster.cache_get(k).await
    {
        st.cache.put_local(*k, answer.clone());
        cached = Some(std::sync::Arc::new(answer));
    }
    if let Some(reply) = cached.and_then(|a| ep.replay_cached(&a)) {
        meter.settle_cache_hit();
        crate::metrics::record_cache(Verdict::Hit.as_str());
        let served = ServedBy { cache: Some(Verdict::Hit), ..ServedBy::default() };
        return Ok(finish(ep.respond(reply, &served, &live), headers, served));
    }
    let verdict = ep.caches().then_some(if key.is_some() { Verdict::Miss } else { Verdict::Bypass });
    if let Some(v) = verdict {
        crate::metrics::record_cache(v.as_str());
    }

    // execute + settle
    let bills = candidates.iter().any(|c| c.entry.placement.bills());
    let job = Job { st: st.clone(), live: live.clone(), candidates, meter, key, estimate };
    let (ep, result) = if bills {
        let (tx, rx) = tokio::sync::oneshot::channel();
        // Boxed where it is made: the call's state is several KB, and the
        // task-local scope, the span and the task cell would each copy it.
        let call: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
            let result = job.execute(&ep, || tx.is_closed()).await;
            // A client that left drops the reply here: a stream settles as 499.
            let _ = tx.send((ep, result));
        });
        st.tasks.spawn(hoosh_core::trace::carry(call).instrument(tracing::Span::current()));
        rx.await.map_err(|_| ApiError::Internal("the provider call ended without an answer".into()))?
    } else {
        // In-process models bill nothing: a client that leaves cancels the work.
        let result = job.execute(&ep, || false).await;
        (ep, result)
    };
    let (reply, mut served) = result?;
    served.cache = verdict;
    served.audio_ms = (estimate.media.audio_ms > 0).then_some(estimate.media.audio_ms);
    Ok(finish(ep.respond(reply, &served, &live), headers, served))
}

/// The execute and settle phases, owning what they need so they can run
/// on their own task.
struct Job {
    st: AppState,
    live: std::sync::Arc<Live>,
    candidates: Vec<Candidate>,
    meter: Metered,
    key: Option<[u8; 32]>,
    estimate: Estimate,
}

impl Job {
    async fn execute<E: Endpoint>(
        self,
        ep: &E,
        client_gone: impl Fn() -> bool,
    ) -> Result<(Reply<E::Output>, ServedBy), ApiError> {
        let Job { st, live, candidates, mut meter, key, estimate } = self;
        // Boxed: the provider call's state would otherwise sit inline in
        // this future, copied with it.
        let out = match Box::pin(ep.execute(&live.executor, &candidates)).await {
            Ok(out) => out,
            Err(f) => return Err(meter.fail(f)),
        };
        let mut served = ServedBy::from_outcome(&out);
        let Outcome { value, entry, model, abandoned, .. } = out;
        meter.abandoned = abandoned;
        match value {
            Reply::Whole(v) => {
                let usage = ep.usage(&v, &estimate);
                let status = if client_gone() { hoosh_governance::gate::CLIENT_CLOSED } else { 200 };
                let (cost, committed) = meter.settle(Some(Served { entry: &entry, model: &model, usage }), status);
                served.cost = Some(cost);
                if let Some(k) = key
                    && let Some(answer) = ep.cacheable_answer(&v)
                {
                    st.cache.put(k, answer);
                }
                committed.wait().await;
                Ok((Reply::Whole(v), served))
            }
            Reply::Stream(s) => {
                let s = match key {
                    Some(k) => st.cache.record_stream(k, s),
                    None => s,
                };
                Ok((Reply::Stream(meter.stream(s, entry, model)), served))
            }
        }
    }
}

/// The response with the admission's budget and rate headers, the
/// `x-hoosh-*` headers and the [`ServedBy`] extension.
fn finish(mut response: Response, mut headers: HeaderMap, served: ServedBy) -> Response {
    served.headers(&mut headers);
    response.headers_mut().extend(headers);
    response.extensions_mut().insert(served);
    response
}
