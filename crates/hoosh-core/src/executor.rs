//! Runs one request against an ordered candidate list: retries with jittered
//! backoff on retryable errors, honours a short `Retry-After`, moves to the
//! next candidate on failures another provider may not have, and stops at
//! once on errors that are the caller's (a malformed request).
//!
//! All of this happens before the first byte reaches the client: a stream is
//! only handed back once its first chunk has arrived, so a provider that
//! fails before producing anything is failed over like a non-streaming call.
//! After that, an upstream failure ends the stream with an error item.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;

use futures_util::StreamExt;
use hoosh_types::openai::{ChatCompletionRequest, ChatCompletionResponse};
use tokio::time::{Duration, Instant};

use crate::audio::{AudioBody, AudioOutput, SpeechRequest, TranscriptionRequest};
use crate::backoff::Backoff;
use crate::config::RoutingConfig;
use crate::error::{ErrorKind, ProviderError};
use crate::params::{self, DroppedParams};
use crate::provider::{ChunkStream, EmbedRequest, EmbedResponse};
use crate::router::{Candidate, ProviderEntry};

/// A successful call and how it was obtained.
#[derive(Debug)]
pub struct Outcome<T> {
    pub value: T,
    pub entry: Arc<ProviderEntry>,
    /// The model name the provider was asked for.
    pub model: String,
    /// Calls made, across all candidates.
    pub attempts: u32,
    pub dropped: DroppedParams,
    /// Earlier attempts the gateway gave up on after the upstream accepted
    /// them (timed out waiting): the provider may bill them all the same.
    pub abandoned: Vec<Abandoned>,
}

/// An attempt abandoned after the upstream accepted it.
#[derive(Debug, Clone)]
pub struct Abandoned {
    pub entry: Arc<ProviderEntry>,
    pub model: String,
}

impl<T> Outcome<T> {
    /// The same outcome carrying `f(value)`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        Outcome {
            value: f(self.value),
            entry: self.entry,
            model: self.model,
            attempts: self.attempts,
            dropped: self.dropped,
            abandoned: self.abandoned,
        }
    }
}

/// Every candidate failed; `error` is the last failure.
#[derive(Debug)]
pub struct Failure {
    pub error: ProviderError,
    pub attempts: u32,
    /// Attempts given up on after the upstream accepted them.
    pub abandoned: Vec<Abandoned>,
}

/// Asked before every call to a provider; an error skips that provider
/// (the next candidate is tried) without counting against its health. The
/// gateway uses it for per-provider rate limits.
pub type AttemptGate = Arc<dyn Fn(&ProviderEntry) -> Result<(), ProviderError> + Send + Sync>;

#[derive(Clone)]
pub struct Executor {
    cfg: RoutingConfig,
    backoff: Backoff,
    gate: Option<AttemptGate>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor").field("cfg", &self.cfg).field("gated", &self.gate.is_some()).finish()
    }
}

impl Executor {
    pub fn new(cfg: RoutingConfig) -> Self {
        let backoff =
            Backoff { base: Duration::from_millis(cfg.retry_base_ms), cap: Duration::from_millis(cfg.retry_max_ms) };
        Executor { cfg, backoff, gate: None }
    }

    /// Adds a check made before every provider call.
    pub fn with_gate(mut self, gate: AttemptGate) -> Self {
        self.gate = Some(gate);
        self
    }

    /// A non-streaming chat completion.
    pub async fn chat(
        &self,
        candidates: &[Candidate],
        req: &ChatCompletionRequest,
    ) -> Result<Outcome<ChatCompletionResponse>, Failure> {
        self.run(candidates, Some(req), |entry, model, dropped| async move {
            let req = with_model(req, &model);
            within(entry.timeouts.total, entry.provider.chat(&req, &dropped)).await
        })
        .await
    }

    /// A streaming chat completion; the returned stream already holds its
    /// first chunk, and is guarded by the provider's idle timeout and its
    /// stream timeout (counted from the call).
    pub async fn chat_stream(
        &self,
        candidates: &[Candidate],
        req: &ChatCompletionRequest,
    ) -> Result<Outcome<ChunkStream>, Failure> {
        self.run(candidates, Some(req), |entry, model, dropped| async move {
            let req = with_model(req, &model);
            let ends_by = Instant::now() + entry.timeouts.stream;
            let first_byte = entry.timeouts.first_byte;
            let deadline = Instant::now() + first_byte;
            let timeout = || ProviderError::new(ErrorKind::Timeout, format!("no first byte within {first_byte:?}"));
            let mut stream = tokio::time::timeout_at(deadline, entry.provider.chat_stream(&req, &dropped))
                .await
                .map_err(|_| timeout())??;
            let first = match tokio::time::timeout_at(deadline, stream.next()).await {
                Err(_) => return Err(timeout()),
                Ok(None) => return Err(ProviderError::invalid_response("the stream ended before its first chunk")),
                Ok(Some(Err(e))) => return Err(e),
                Ok(Some(Ok(chunk))) => chunk,
            };
            let rest = guard_stream(stream, entry.clone(), ends_by);
            let whole: ChunkStream = Box::pin(futures_util::stream::once(async { Ok(first) }).chain(rest));
            Ok(whole)
        })
        .await
    }

    pub async fn embed(&self, candidates: &[Candidate], req: &EmbedRequest) -> Result<Outcome<EmbedResponse>, Failure> {
        self.run(candidates, None, |entry, model, _dropped| async move {
            let mut r = req.clone();
            r.model = model;
            within(entry.timeouts.total, entry.provider.embed(&r)).await
        })
        .await
    }

    /// Speech to text on the first candidate that answers. A streamed
    /// answer is guarded like a chat stream (idle and stream timeouts).
    pub async fn transcribe(
        &self,
        candidates: &[Candidate],
        req: &TranscriptionRequest,
    ) -> Result<Outcome<AudioOutput>, Failure> {
        self.run(candidates, None, |entry, model, _dropped| async move {
            let mut r = req.clone();
            r.model = model;
            let ends_by = Instant::now() + entry.timeouts.stream;
            let out = within(entry.timeouts.total, entry.provider.transcribe(&r)).await?;
            Ok(guard_audio(out, entry, ends_by))
        })
        .await
    }

    /// Text to speech on the first candidate that answers. A streamed
    /// answer is guarded like a chat stream (idle and stream timeouts).
    pub async fn speech(&self, candidates: &[Candidate], req: &SpeechRequest) -> Result<Outcome<AudioOutput>, Failure> {
        self.run(candidates, None, |entry, model, _dropped| async move {
            let mut r = req.clone();
            r.model = model;
            let ends_by = Instant::now() + entry.timeouts.stream;
            let out = within(entry.timeouts.total, entry.provider.speech(&r)).await?;
            Ok(guard_audio(out, entry, ends_by))
        })
        .await
    }

    async fn run<T, F, Fut>(
        &self,
        candidates: &[Candidate],
        chat: Option<&ChatCompletionRequest>,
        call: F,
    ) -> Result<Outcome<T>, Failure>
    where
        F: Fn(Arc<ProviderEntry>, String, DroppedParams) -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let mut attempts = 0u32;
        let mut last: Option<ProviderError> = None;
        let mut abandoned: Vec<Abandoned> = Vec::new();
        // Prefer the available ones; when none is, force the best candidate anyway.
        let available: Vec<&Candidate> = candidates.iter().filter(|c| c.entry.stats.available()).collect();
        let (list, forced): (Vec<&Candidate>, bool) =
            if available.is_empty() { (candidates.iter().take(1).collect(), true) } else { (available, false) };
        for cand in list {
            let entry = &cand.entry;
            let dropped = match chat {
                Some(req) => match params::plan(req, entry.provider.param_support(), self.cfg.unsupported_params) {
                    Ok(d) => d,
                    Err(e) => {
                        last = Some(e.with_provider(entry.name()));
                        continue;
                    }
                },
                None => DroppedParams::default(),
            };
            for retry in 0..=self.cfg.max_retries {
                if let Some(gate) = &self.gate
                    && let Err(e) = gate(entry)
                {
                    tracing::debug!(provider = entry.name(), error = %e, "provider skipped by the gate");
                    last = Some(e.with_provider(entry.name()));
                    break;
                }
                if !forced && !entry.stats.try_acquire() {
                    break;
                }
                attempts += 1;
                let started = Instant::now();
                let result = {
                    let _in_flight = entry.stats.begin();
                    call(entry.clone(), cand.model.clone(), dropped.clone()).await
                };
                match result {
                    Ok(value) => {
                        entry.stats.record_success(started.elapsed());
                        return Ok(Outcome {
                            value,
                            entry: entry.clone(),
                            model: cand.model.clone(),
                            attempts,
                            dropped,
                            abandoned,
                        });
                    }
                    Err(e) => {
                        let e = e.with_provider(entry.name());
                        entry.stats.record_failure(e.kind, &e.message);
                        // A timeout with no upstream status: the gateway stopped
                        // waiting on a request the upstream had accepted.
                        if e.kind == ErrorKind::Timeout && e.status.is_none() {
                            abandoned.push(Abandoned { entry: entry.clone(), model: cand.model.clone() });
                        }
                        tracing::warn!(provider = entry.name(), model = %cand.model, attempt = attempts, error = %e, "provider call failed");
                        if !e.kind.try_next() {
                            return Err(Failure { error: e, attempts, abandoned });
                        }
                        let wait = match e.retry_after {
                            Some(ra) if ra > self.cfg.retry_after_cap() => None,
                            Some(ra) => Some(ra),
                            None => Some(self.backoff.delay(retry)),
                        };
                        let again = e.retryable() && retry < self.cfg.max_retries;
                        last = Some(e);
                        match wait {
                            Some(d) if again => tokio::time::sleep(d).await,
                            _ => break,
                        }
                    }
                }
            }
        }
        let error = last.unwrap_or_else(|| {
            ProviderError::new(ErrorKind::Upstream, "every provider for this model is unavailable (circuit open)")
        });
        Err(Failure { error, attempts, abandoned })
    }
}

/// Runs a whole non-streaming call under the provider's total deadline.
async fn within<T>(total: Duration, call: impl Future<Output = Result<T, ProviderError>>) -> Result<T, ProviderError> {
    tokio::time::timeout(total, call)
        .await
        .unwrap_or_else(|_| Err(ProviderError::new(ErrorKind::Timeout, format!("no complete answer within {total:?}"))))
}

fn with_model<'a>(req: &'a ChatCompletionRequest, model: &str) -> Cow<'a, ChatCompletionRequest> {
    if req.model == model {
        Cow::Borrowed(req)
    } else {
        let mut r = req.clone();
        r.model = model.to_owned();
        Cow::Owned(r)
    }
}

/// A provider's stream of `T`: chat chunks, or audio bytes.
type Guarded<T> = std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<T, ProviderError>> + Send>>;

/// An audio answer whose body, when streamed, is guarded by [`guard_stream`].
fn guard_audio(out: AudioOutput, entry: Arc<ProviderEntry>, ends_by: Instant) -> AudioOutput {
    match out.body {
        AudioBody::Stream(s) => AudioOutput { body: AudioBody::Stream(guard_stream(s, entry, ends_by)), ..out },
        AudioBody::Whole(_) => out,
    }
}

/// Wraps the rest of a started stream: enforces the idle timeout between
/// chunks and the end of the stream by `ends_by` (an upstream that keeps
/// sending forever is cut there, and the upstream connection dropped with
/// it), keeps the provider counted as in flight until the stream ends or is
/// dropped, and reports a mid-stream failure to the provider's breaker.
fn guard_stream<T: Send + 'static>(stream: Guarded<T>, entry: Arc<ProviderEntry>, ends_by: Instant) -> Guarded<T> {
    struct State<T> {
        inner: Guarded<T>,
        entry: Arc<ProviderEntry>,
        ends_by: Instant,
        _in_flight: crate::stats::InFlightOwned,
        done: bool,
    }
    let in_flight = entry.stats.begin_owned();
    let state = State { inner: stream, entry, ends_by, _in_flight: in_flight, done: false };
    Box::pin(futures_util::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        let idle = st.entry.timeouts.idle;
        let idle_by = Instant::now() + idle;
        let item = match tokio::time::timeout_at(idle_by.min(st.ends_by), st.inner.next()).await {
            Ok(Some(item)) => item,
            Ok(None) => return None,
            Err(_) if idle_by < st.ends_by => Err(ProviderError::new(
                ErrorKind::Timeout,
                format!("the upstream sent nothing for {idle:?} in the middle of a stream"),
            )),
            Err(_) => Err(ProviderError::new(
                ErrorKind::Timeout,
                format!("the stream did not end within {:?}", st.entry.timeouts.stream),
            )),
        };
        if let Err(e) = &item {
            st.done = true;
            st.entry.stats.record_failure(ErrorKind::StreamInterrupted, &e.message);
        }
        Some((item.map_err(|e| e.with_provider(st.entry.name())), st))
    }))
}
