//! A scripted in-process provider for router and executor tests: each call
//! takes the next scripted outcome (default: success), after an optional
//! delay, so retry and failover paths run deterministically under paused time.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hoosh_core::audio::{AudioBody, AudioOutput, SpeechRequest};
use hoosh_core::config::{BreakerConfig, RoutingConfig};
use hoosh_core::params::{DroppedParams, ParamSupport};
use hoosh_core::pricing::Pricing;
use hoosh_core::router::{ProviderEntry, Router, Timeouts};
use hoosh_core::stats::ProviderStats;
use hoosh_core::strategy::Strategy;
use hoosh_core::{ChunkStream, ErrorKind, Placement, Provider, ProviderError};
use hoosh_types::openai::*;

#[derive(Debug, Clone)]
pub enum Step {
    Ok,
    Fail(ProviderError),
    /// Sleep, then behave as the inner step.
    Delay(Duration, Box<Step>),
    /// Streams only: one chunk, then this error.
    CutAfterFirst,
    /// Streams only: one chunk, then silence for this long.
    StallAfterFirst(Duration),
    /// Streams (chat chunks, audio bytes): a piece every this long, never ending.
    Endless(Duration),
}

pub struct Scripted {
    pub name: String,
    pub script: Mutex<VecDeque<Step>>,
    pub calls: AtomicU32,
    pub support: ParamSupport,
    pub placement: Placement,
}

impl Scripted {
    pub fn new(name: &str) -> Arc<Self> {
        Self::with(name, ParamSupport::all(), Placement::Remote)
    }

    pub fn with(name: &str, support: ParamSupport, placement: Placement) -> Arc<Self> {
        Arc::new(Scripted {
            name: name.into(),
            script: Mutex::new(VecDeque::new()),
            calls: AtomicU32::new(0),
            support,
            placement,
        })
    }

    pub fn push(&self, step: Step) -> &Self {
        self.script.lock().unwrap().push_back(step);
        self
    }

    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }

    async fn next(&self) -> Step {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut step = self.script.lock().unwrap().pop_front().unwrap_or(Step::Ok);
        while let Step::Delay(d, inner) = step {
            tokio::time::sleep(d).await;
            step = *inner;
        }
        step
    }

    fn response(&self, model: &str) -> ChatCompletionResponse {
        ChatCompletionResponse {
            native: None,
            id: "x".into(),
            object: "chat.completion".into(),
            created: 0,
            model: model.into(),
            choices: vec![Choice {
                index: 0,
                message: ResponseMessage::assistant(Some(format!("from {}", self.name))),
                finish_reason: Some(FinishReason::Stop),
                logprobs: None,
            }],
            usage: Some(Usage::new(1, 1)),
            system_fingerprint: None,
        }
    }
}

pub fn err(kind: ErrorKind, status: Option<u16>, retry_after: Option<Duration>) -> ProviderError {
    let mut e = ProviderError::new(kind, "scripted");
    e.status = status;
    e.retry_after = retry_after;
    e
}

#[async_trait]
impl Provider for Scripted {
    fn name(&self) -> &str {
        &self.name
    }
    fn family(&self) -> &'static str {
        "scripted"
    }
    fn param_support(&self) -> &ParamSupport {
        &self.support
    }
    async fn chat(
        &self,
        req: &ChatCompletionRequest,
        _d: &DroppedParams,
    ) -> Result<ChatCompletionResponse, ProviderError> {
        match self.next().await {
            Step::Fail(e) => Err(e),
            _ => Ok(self.response(&req.model)),
        }
    }
    async fn chat_stream(&self, req: &ChatCompletionRequest, _d: &DroppedParams) -> Result<ChunkStream, ProviderError> {
        let first = ChatCompletionChunk::delta("x", 0, &req.model, Delta::content(format!("from {}", self.name)), None);
        let last = ChatCompletionChunk::delta("x", 0, &req.model, Delta::default(), Some(FinishReason::Stop));
        match self.next().await {
            Step::Fail(e) => Err(e),
            Step::CutAfterFirst => Ok(Box::pin(futures_util::stream::iter(vec![
                Ok(first),
                Err(ProviderError::new(ErrorKind::StreamInterrupted, "cut")),
            ]))),
            Step::StallAfterFirst(d) => {
                let s = futures_util::stream::iter(vec![Ok(first)]).chain(futures_util::stream::once(async move {
                    tokio::time::sleep(d).await;
                    Ok(last)
                }));
                Ok(Box::pin(s))
            }
            Step::Endless(every) => Ok(Box::pin(futures_util::stream::unfold(first, move |chunk| async move {
                tokio::time::sleep(every).await;
                Some((Ok(chunk.clone()), chunk))
            }))),
            _ => Ok(Box::pin(futures_util::stream::iter(vec![Ok(first), Ok(last)]))),
        }
    }
    /// Audio: `Endless` streams a few bytes every period, forever; else a whole answer.
    async fn speech(&self, _req: &SpeechRequest) -> Result<AudioOutput, ProviderError> {
        let body = match self.next().await {
            Step::Fail(e) => return Err(e),
            Step::Endless(every) => {
                AudioBody::Stream(Box::pin(futures_util::stream::unfold((), move |()| async move {
                    tokio::time::sleep(every).await;
                    Some((Ok(bytes::Bytes::from_static(b"audio")), ()))
                })))
            }
            _ => AudioBody::Whole(bytes::Bytes::from_static(b"audio")),
        };
        Ok(AudioOutput { content_type: "audio/mpeg".into(), body })
    }
    async fn list_models(&self) -> Result<Vec<String>, ProviderError> {
        Ok(vec![])
    }
}

use futures_util::StreamExt;

pub struct EntrySpec {
    pub provider: Arc<Scripted>,
    pub patterns: Vec<&'static str>,
    pub priority: i32,
    pub weight: u32,
}

pub fn entry(spec: EntrySpec, breaker: BreakerConfig) -> Arc<ProviderEntry> {
    Arc::new(ProviderEntry {
        placement: spec.provider.placement,
        provider: spec.provider,
        patterns: spec.patterns.iter().map(|p| glob::Pattern::new(p).unwrap()).collect(),
        priority: spec.priority,
        weight: spec.weight,
        timeouts: Timeouts {
            first_byte: Duration::from_secs(5),
            idle: Duration::from_secs(5),
            total: Duration::from_secs(30),
            stream: Duration::from_secs(30),
        },
        stats: Arc::new(ProviderStats::new(breaker)),
    })
}

pub fn simple(p: &Arc<Scripted>, priority: i32) -> Arc<ProviderEntry> {
    entry(EntrySpec { provider: p.clone(), patterns: vec!["*"], priority, weight: 1 }, BreakerConfig::default())
}

pub fn router(entries: Vec<Arc<ProviderEntry>>, strategy: Strategy) -> Router {
    router_with_aliases(entries, strategy, BTreeMap::new())
}

pub fn router_with_aliases(
    entries: Vec<Arc<ProviderEntry>>,
    strategy: Strategy,
    aliases: BTreeMap<String, Vec<String>>,
) -> Router {
    Router::new(entries, &aliases, strategy, Pricing::shipped(), Duration::from_secs(60))
}

pub fn request(model: &str) -> ChatCompletionRequest {
    ChatCompletionRequest {
        model: model.into(),
        messages: vec![ChatMessage::text(Role::User, "hi")],
        ..Default::default()
    }
}

pub fn routing() -> RoutingConfig {
    RoutingConfig {
        max_retries: 1,
        retry_base_ms: 100,
        retry_max_ms: 1000,
        retry_after_cap_secs: 5,
        ..RoutingConfig::default()
    }
}
