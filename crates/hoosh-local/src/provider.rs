//! [`LocalProvider`]: every installed local model behind one provider named
//! `local`. Engines load once (at start, or on first use), and a request for
//! a model of the wrong kind (chat on an embedding model) is a clear 400.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::StreamExt;
use hoosh_core::config::LocalConfig;
use hoosh_core::params::{DroppedParams, ParamSupport};
use hoosh_core::{Capabilities, ChunkStream, EmbedRequest, EmbedResponse, ErrorKind, Provider, ProviderError};
use hoosh_embed::Embedder;
use hoosh_llm::{GenEvent, LlmConfig, LlmEngine};
use hoosh_models::{Installed, ModelKind, ModelStore};
use hoosh_types::openai::{ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, Delta, Usage};
use hoosh_types::unix_now;
use tokio::sync::{OnceCell, Semaphore};

use crate::convert;

/// Parameters the local engine cannot honour: they are dropped (and named
/// in `x-hoosh-dropped-params`) or refused, by the gateway's policy.
const UNSUPPORTED: &[&str] =
    &["n", "logit_bias", "logprobs", "top_logprobs", "tools", "tool_choice", "parallel_tool_calls", "reasoning_effort"];

enum Engine {
    Llm(LlmEngine),
    /// One embedding batch at a time: the forward pass already uses every core.
    Embed(Arc<Embedder>, Arc<Semaphore>),
}

struct Slot {
    installed: Installed,
    engine: OnceCell<Result<Arc<Engine>, String>>,
}

pub struct LocalProvider {
    store: ModelStore,
    cfg: LocalConfig,
    slots: BTreeMap<String, Slot>,
    support: ParamSupport,
}

impl LocalProvider {
    /// A provider for `models` (speech models are left to the speech engine).
    pub fn new(store: ModelStore, cfg: LocalConfig, models: Vec<Installed>) -> Self {
        let slots = models
            .into_iter()
            .filter(|m| matches!(m.kind, ModelKind::Llm | ModelKind::Embedding))
            .map(|m| (m.id.clone(), Slot { installed: m, engine: OnceCell::new() }))
            .collect();
        let mut support = ParamSupport::without(UNSUPPORTED);
        // top_k / min_p / repeat_penalty arrive as extensions and are honoured.
        support.passes_extra = true;
        LocalProvider { store, cfg, slots, support }
    }

    /// Served model ids with their kinds.
    pub fn models(&self) -> impl Iterator<Item = (&str, ModelKind)> {
        self.slots.iter().map(|(id, s)| (id.as_str(), s.installed.kind))
    }

    /// Loads every model now; returns `(id, error)` for those that failed.
    pub async fn preload(&self) -> Vec<(String, String)> {
        let mut failed = Vec::new();
        for id in self.slots.keys() {
            let started = std::time::Instant::now();
            match self.engine(id).await {
                Ok(_) => tracing::info!(model = %id, ms = started.elapsed().as_millis() as u64, "local model loaded"),
                Err(e) => failed.push((id.clone(), e.message)),
            }
        }
        failed
    }

    async fn engine(&self, model: &str) -> Result<Arc<Engine>, ProviderError> {
        let slot = self.slots.get(model).ok_or_else(|| {
            ProviderError::new(ErrorKind::NotFound, format!("local model `{model}` is not installed"))
        })?;
        let loaded = slot
            .engine
            .get_or_init(|| async {
                let installed = slot.installed.clone();
                let store = self.store.clone();
                let cfg = self.cfg.clone();
                tokio::task::spawn_blocking(move || load(&store, &cfg, &installed))
                    .await
                    .unwrap_or_else(|e| Err(format!("model load task failed: {e}")))
            })
            .await;
        match loaded {
            Ok(engine) => Ok(engine.clone()),
            Err(e) => {
                Err(ProviderError::new(ErrorKind::Upstream, format!("local model `{model}` failed to load: {e}")))
            }
        }
    }

    async fn llm(&self, model: &str) -> Result<LlmEngine, ProviderError> {
        match self.engine(model).await?.as_ref() {
            Engine::Llm(e) => Ok(e.clone()),
            Engine::Embed(..) => Err(ProviderError::new(
                ErrorKind::BadRequest,
                format!("`{model}` is an embedding model; use /v1/embeddings"),
            )),
        }
    }
}

/// Verifies (when configured) and loads one model; blocking.
fn load(store: &ModelStore, cfg: &LocalConfig, m: &Installed) -> Result<Arc<Engine>, String> {
    if cfg.verify_on_load {
        store.verify(m).map_err(|e| e.to_string())?;
    }
    let threads =
        if cfg.threads == 0 { std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) } else { cfg.threads };
    match m.kind {
        ModelKind::Llm => {
            let mut llm = LlmConfig::new(m.main_path());
            llm.context_per_sequence = cfg.context_per_sequence;
            llm.max_sequences = cfg.max_sequences;
            llm.queue_capacity = cfg.queue_capacity;
            llm.threads = threads;
            llm.prompt_cache = cfg.prompt_cache;
            LlmEngine::load(llm).map(|e| Arc::new(Engine::Llm(e))).map_err(|e| e.to_string())
        }
        ModelKind::Embedding => {
            let opts = hoosh_embed::EmbedderOptions { threads: Some(threads), batch_size: None };
            Embedder::load_with(&m.main_path(), opts)
                .map(|e| Arc::new(Engine::Embed(Arc::new(e), Arc::new(Semaphore::new(1)))))
                .map_err(|e| e.to_string())
        }
        ModelKind::Speech => Err("speech models are served by the transcription endpoint".into()),
    }
}

#[async_trait]
impl Provider for LocalProvider {
    fn name(&self) -> &str {
        "local"
    }

    fn family(&self) -> &'static str {
        "local"
    }

    fn is_local(&self) -> bool {
        true
    }

    fn capabilities(&self) -> Capabilities {
        let has = |k| self.slots.values().any(|s| s.installed.kind == k);
        Capabilities { chat: has(ModelKind::Llm), embeddings: has(ModelKind::Embedding), tools: false, vision: false }
    }

    fn param_support(&self) -> &ParamSupport {
        &self.support
    }

    async fn chat(
        &self,
        req: &ChatCompletionRequest,
        _dropped: &DroppedParams,
    ) -> Result<ChatCompletionResponse, ProviderError> {
        let engine = self.llm(&req.model).await?;
        let prompt =
            engine.render_chat(&req.messages, convert::tools_for_prompt(req)).map_err(convert::provider_error)?;
        let generation = engine.submit(convert::generate_request(req, prompt)).map_err(convert::provider_error)?;
        let done = generation.collect().await.map_err(convert::provider_error)?;
        let usage = convert::usage(done.prompt_tokens, done.completion_tokens, done.cached_tokens);
        let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
        Ok(convert::response(id, unix_now(), &req.model, done.text, done.finish, usage))
    }

    async fn chat_stream(
        &self,
        req: &ChatCompletionRequest,
        _dropped: &DroppedParams,
    ) -> Result<ChunkStream, ProviderError> {
        let engine = self.llm(&req.model).await?;
        let prompt =
            engine.render_chat(&req.messages, convert::tools_for_prompt(req)).map_err(convert::provider_error)?;
        let generation = engine.submit(convert::generate_request(req, prompt)).map_err(convert::provider_error)?;
        let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
        let created = unix_now();
        let model = req.model.clone();
        let first = convert::role_chunk(&id, created, &model);
        // Dropping this stream drops the generation, which cancels the
        // sequence and frees its slot at the scheduler's next step.
        let rest = futures_util::stream::unfold(Some(generation), move |state| {
            let id = id.clone();
            let model = model.clone();
            async move {
                let mut generation = state?;
                match generation.events.recv().await {
                    Some(GenEvent::Text(t)) => {
                        let chunk = ChatCompletionChunk::delta(&id, created, &model, Delta::content(t), None);
                        Some((vec![Ok(chunk)], Some(generation)))
                    }
                    Some(GenEvent::Done { finish, prompt_tokens, completion_tokens, cached_tokens }) => {
                        let fin = convert::finish_reason(finish);
                        let last = ChatCompletionChunk::delta(&id, created, &model, Delta::default(), Some(fin));
                        let usage = convert::usage(prompt_tokens, completion_tokens, cached_tokens);
                        let usage = ChatCompletionChunk::usage_only(&id, created, &model, usage);
                        Some((vec![Ok(last), Ok(usage)], None))
                    }
                    Some(GenEvent::Error(e)) => {
                        let mut pe = convert::provider_error(e);
                        pe.kind = ErrorKind::StreamInterrupted;
                        Some((vec![Err(pe)], None))
                    }
                    None => Some((
                        vec![Err(ProviderError::new(ErrorKind::StreamInterrupted, "the local engine stopped"))],
                        None,
                    )),
                }
            }
        })
        .flat_map(futures_util::stream::iter);
        Ok(Box::pin(futures_util::stream::once(async move { Ok(first) }).chain(rest)))
    }

    async fn embed(&self, req: &EmbedRequest) -> Result<EmbedResponse, ProviderError> {
        let (embedder, gate) = match self.engine(&req.model).await?.as_ref() {
            Engine::Embed(e, g) => (e.clone(), g.clone()),
            Engine::Llm(_) => {
                return Err(ProviderError::new(
                    ErrorKind::BadRequest,
                    format!("`{}` is a chat model; embeddings need an embedding model such as minilm-l6", req.model),
                ));
            }
        };
        if req.dimensions.is_some_and(|d| d as usize != embedder.dims()) {
            return Err(ProviderError::new(
                ErrorKind::BadRequest,
                format!("`{}` only produces {}-dimensional embeddings", req.model, embedder.dims()),
            )
            .with_param("dimensions"));
        }
        let _permit =
            gate.acquire_owned().await.map_err(|_| ProviderError::new(ErrorKind::Upstream, "embedder closed"))?;
        let texts = req.input.clone();
        let out = tokio::task::spawn_blocking(move || embedder.embed(&texts))
            .await
            .map_err(|e| ProviderError::new(ErrorKind::Upstream, format!("embedding task failed: {e}")))?
            .map_err(|e| ProviderError::new(ErrorKind::Upstream, e.to_string()))?;
        Ok(EmbedResponse { vectors: out.vectors, usage: Usage::new(out.prompt_tokens as u64, 0) })
    }

    async fn list_models(&self) -> Result<Vec<String>, ProviderError> {
        Ok(self.slots.keys().cloned().collect())
    }

    async fn health(&self) -> Result<(), ProviderError> {
        Ok(())
    }
}
