//! [`LocalProvider`]: every installed local model behind one provider named
//! `local`. Engines load once (at start, or on first use), and a request for
//! a model of the wrong kind (chat on an embedding model) is a clear 400.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::StreamExt;
use hoosh_core::audio::{AudioOutput, TranscriptionRequest};
use hoosh_core::config::LocalConfig;
use hoosh_core::params::{DroppedParams, ParamSupport};
use hoosh_core::{Capabilities, ChunkStream, EmbedRequest, EmbedResponse, ErrorKind, Provider, ProviderError};
use hoosh_embed::Embedder;
use hoosh_llm::{GenEvent, LlmConfig, LlmEngine};
use hoosh_models::{Installed, ModelKind, ModelStore};
use hoosh_types::openai::{ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, Delta, Usage};
use hoosh_types::unix_now;
use hoosh_whisper::{WhisperConfig, WhisperEngine};
use tokio::sync::{Mutex, Semaphore};

use crate::{convert, memory, tools};

/// The generation for a chat request: its prompt through the model's
/// template (with its tools, see [`crate::tools`]); a required tool call is
/// constrained to one JSON object after the prefilled opening tag.
fn request(
    engine: &LlmEngine,
    req: &ChatCompletionRequest,
    plan: Option<&tools::Plan>,
) -> Result<hoosh_llm::GenerateRequest, ProviderError> {
    let prompt = match plan {
        Some(p) => tools::prompt(req, p, |m, t| engine.render_chat(m, t)),
        None => engine.render_chat(&req.messages, None),
    }
    .map_err(convert::provider_error)?;
    let mut generation = convert::generate_request(req, prompt);
    if plan.is_some_and(|p| p.forced.is_some()) {
        generation.json = true;
    }
    Ok(generation)
}

/// Streamed text → content deltas and whole tool calls (one delta each,
/// with id, name and arguments) as their blocks close.
struct StreamCalls {
    plan: Option<tools::Plan>,
    splitter: tools::Splitter,
    /// A required call's JSON, read whole at the end.
    forced: String,
    calls: u32,
}

impl StreamCalls {
    fn new(plan: Option<tools::Plan>) -> StreamCalls {
        StreamCalls { plan, splitter: tools::Splitter::default(), forced: String::new(), calls: 0 }
    }

    fn deltas(&mut self, pieces: Vec<tools::Piece>) -> Vec<Delta> {
        pieces
            .into_iter()
            .map(|p| match p {
                tools::Piece::Text(t) => Delta::content(t),
                tools::Piece::Call(c) => {
                    let index = self.calls;
                    self.calls += 1;
                    Delta::tool_call(hoosh_types::openai::ToolCallDelta {
                        index,
                        id: Some(c.id),
                        kind: Some(hoosh_types::openai::ToolKind::Function),
                        function: Some(hoosh_types::openai::FunctionCallDelta {
                            name: Some(c.function.name),
                            arguments: Some(c.function.arguments),
                        }),
                    })
                }
            })
            .collect()
    }

    fn push(&mut self, text: &str) -> Vec<Delta> {
        match &self.plan {
            None => vec![Delta::content(text)],
            Some(p) if p.forced.is_some() => {
                self.forced.push_str(text);
                Vec::new()
            }
            Some(p) => {
                let pieces = self.splitter.push(text, p);
                self.deltas(pieces)
            }
        }
    }

    /// The last deltas, and whether any call was made.
    fn finish(&mut self) -> (Vec<Delta>, bool) {
        let pieces = match &self.plan {
            None => Vec::new(),
            Some(p) if p.forced.is_some() => {
                let (text, calls) = tools::split(&self.forced, p);
                let mut pieces: Vec<tools::Piece> = calls.into_iter().map(tools::Piece::Call).collect();
                if !text.is_empty() {
                    pieces.push(tools::Piece::Text(text));
                }
                pieces
            }
            Some(_) => self.splitter.finish(),
        };
        let deltas = self.deltas(pieces);
        (deltas, self.calls > 0)
    }
}

/// Parameters the local engine cannot honour: they are dropped (and named
/// in `x-hoosh-dropped-params`) or refused, by the gateway's policy.
/// (Tools are supported: see [`crate::tools`].)
const UNSUPPORTED: &[&str] = &["n", "logit_bias", "logprobs", "top_logprobs", "reasoning_effort"];

enum Engine {
    Llm(LlmEngine),
    /// One embedding batch at a time: the forward pass already uses every core.
    Embed(Arc<Embedder>, Arc<Semaphore>),
    /// Whisper: one worker thread with its own bounded queue.
    Whisper(Arc<WhisperEngine>),
}

struct Slot {
    installed: Installed,
    /// `None` until loaded (and again after an idle unload). A failed load
    /// stays recorded, so requests do not re-verify a broken file each time.
    engine: Mutex<Option<Result<Arc<Engine>, String>>>,
    /// Whether `engine` holds a loaded model (readable without the lock).
    loaded: AtomicBool,
    /// Estimated resident bytes once loaded (`memory::estimate`).
    bytes: u64,
    /// When the last request using the model finished.
    last_used: std::sync::Mutex<Instant>,
    /// Requests (and streams) using the model now; never unloaded while > 0.
    in_use: AtomicUsize,
}

impl Slot {
    fn idle_for(&self) -> Duration {
        self.last_used.lock().unwrap_or_else(|p| p.into_inner()).elapsed()
    }
}

/// Marks a model in use until dropped (a stream keeps it until it ends).
pub struct InUse(Arc<Slot>);

impl Drop for InUse {
    fn drop(&mut self) {
        *self.0.last_used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.0.in_use.fetch_sub(1, Ordering::SeqCst);
    }
}

pub struct LocalProvider {
    store: ModelStore,
    cfg: LocalConfig,
    slots: BTreeMap<String, Arc<Slot>>,
    support: ParamSupport,
    /// Held while making room for and loading a model, so two loads cannot
    /// both squeeze under the memory bound.
    loading: Mutex<()>,
}

impl LocalProvider {
    /// A provider for `models`: chat (GGUF), embedding and speech-to-text.
    pub fn new(store: ModelStore, cfg: LocalConfig, models: Vec<Installed>) -> Self {
        let slots = models
            .into_iter()
            .map(|m| {
                let slot = Slot {
                    bytes: memory::estimate(&m, &cfg),
                    installed: m,
                    engine: Mutex::new(None),
                    loaded: AtomicBool::new(false),
                    last_used: std::sync::Mutex::new(Instant::now()),
                    in_use: AtomicUsize::new(0),
                };
                (slot.installed.id.clone(), Arc::new(slot))
            })
            .collect();
        let mut support = ParamSupport::without(UNSUPPORTED);
        // top_k / min_p / repeat_penalty arrive as extensions and are honoured.
        support.passes_extra = true;
        LocalProvider { store, cfg, slots, support, loading: Mutex::new(()) }
    }

    /// Served model ids with their kinds.
    pub fn models(&self) -> impl Iterator<Item = (&str, ModelKind)> {
        self.slots.iter().map(|(id, s)| (id.as_str(), s.installed.kind))
    }

    /// Loads every model now; returns `(id, error)` for those that failed.
    pub async fn preload(&self) -> Vec<(String, String)> {
        let mut failed = Vec::new();
        for id in self.slots.keys() {
            if let Err(e) = self.engine(id).await {
                failed.push((id.clone(), e.message));
            }
        }
        failed
    }

    async fn engine(&self, model: &str) -> Result<(Arc<Engine>, InUse), ProviderError> {
        let slot = self.slots.get(model).ok_or_else(|| {
            ProviderError::new(ErrorKind::NotFound, format!("local model `{model}` is not installed"))
        })?;
        slot.in_use.fetch_add(1, Ordering::SeqCst);
        let in_use = InUse(slot.clone());
        let mut state = slot.engine.lock().await;
        let loaded = match state.as_ref() {
            Some(done) => done.clone(),
            None => {
                let _loading = self.loading.lock().await;
                self.make_room(model, slot.bytes).await?;
                let installed = slot.installed.clone();
                let store = self.store.clone();
                let cfg = self.cfg.clone();
                let started = Instant::now();
                let done = tokio::task::spawn_blocking(move || load(&store, &cfg, &installed))
                    .await
                    .unwrap_or_else(|e| Err(format!("model load task failed: {e}")));
                if done.is_ok() {
                    slot.loaded.store(true, Ordering::SeqCst);
                    let ms = started.elapsed().as_millis() as u64;
                    tracing::debug!(model, ms, mb = slot.bytes >> 20, "local model loaded");
                }
                *state = Some(done.clone());
                done
            }
        };
        let engine = loaded.map_err(|e| {
            ProviderError::new(ErrorKind::Upstream, format!("local model `{model}` failed to load: {e}"))
        })?;
        Ok((engine, in_use))
    }

    /// Unloads least-recently-used idle models until `need` more bytes fit
    /// under `local.max_memory_mb`. Models in use (or being loaded) stay; if
    /// they alone leave no room, the request gets a retryable 503. A model
    /// larger than the whole bound still loads when nothing else is loaded.
    async fn make_room(&self, model: &str, need: u64) -> Result<(), ProviderError> {
        let bound = self.cfg.max_memory_mb.saturating_mul(1 << 20);
        if bound == 0 {
            return Ok(());
        }
        let mut resident: Vec<&Arc<Slot>> = self
            .slots
            .iter()
            .filter(|(id, s)| id.as_str() != model && s.loaded.load(Ordering::SeqCst))
            .map(|(_, s)| s)
            .collect();
        // Longest idle first.
        resident.sort_by_key(|s| std::cmp::Reverse(s.idle_for()));
        let mut total: u64 = resident.iter().map(|s| s.bytes).sum();
        for slot in resident {
            if total + need <= bound {
                break;
            }
            if slot.in_use.load(Ordering::SeqCst) > 0 {
                continue;
            }
            // Another request holds this slot's lock (it is loading or about
            // to use the model): leave it.
            let Ok(mut other) = slot.engine.try_lock() else { continue };
            if slot.in_use.load(Ordering::SeqCst) == 0 && matches!(*other, Some(Ok(_))) {
                *other = None;
                slot.loaded.store(false, Ordering::SeqCst);
                total -= slot.bytes;
                tracing::info!(model = %slot.installed.id, mb = slot.bytes >> 20, for_model = model, "unloaded a local model to stay under max_memory_mb");
            }
        }
        if total > 0 && total + need > bound {
            let msg = format!(
                "local model `{model}` needs {} MB but the models in use leave {} MB of local.max_memory_mb = {}",
                need >> 20,
                bound.saturating_sub(total) >> 20,
                self.cfg.max_memory_mb
            );
            return Err(ProviderError::from_status(503, msg, Some(Duration::from_secs(1))).public());
        }
        if need > bound {
            tracing::warn!(
                model,
                need_mb = need >> 20,
                bound_mb = self.cfg.max_memory_mb,
                "a local model alone exceeds max_memory_mb; loading it anyway"
            );
        }
        Ok(())
    }

    /// Ids of the models whose engines are in memory now.
    pub fn loaded(&self) -> Vec<String> {
        self.slots.iter().filter(|(_, s)| s.loaded.load(Ordering::SeqCst)).map(|(id, _)| id.clone()).collect()
    }

    /// Whether the model's engine is in memory now.
    pub fn is_loaded(&self, model: &str) -> Option<bool> {
        self.slots.get(model).map(|s| s.loaded.load(Ordering::SeqCst))
    }

    /// Estimated bytes of the models loaded now.
    pub fn resident_bytes(&self) -> u64 {
        self.slots.values().filter(|s| s.loaded.load(Ordering::SeqCst)).map(|s| s.bytes).sum()
    }

    /// Drops the engines of models unused for `keep_alive`. Requests already
    /// running keep their own handle, so an engine only goes away once they
    /// finish; the next request loads it again.
    pub async fn unload_idle(&self, keep_alive: Duration) {
        for (id, slot) in &self.slots {
            let idle = slot.idle_for();
            if idle < keep_alive || slot.in_use.load(Ordering::SeqCst) > 0 {
                continue;
            }
            let mut state = slot.engine.lock().await;
            // Re-checked under the lock: a request may have started meanwhile.
            if matches!(*state, Some(Ok(_))) && slot.in_use.load(Ordering::SeqCst) == 0 {
                *state = None;
                slot.loaded.store(false, Ordering::SeqCst);
                tracing::info!(model = %id, idle_secs = idle.as_secs(), "unloaded idle local model");
            }
        }
    }

    async fn llm(&self, model: &str) -> Result<(LlmEngine, InUse), ProviderError> {
        let (engine, in_use) = self.engine(model).await?;
        match engine.as_ref() {
            Engine::Llm(e) => Ok((e.clone(), in_use)),
            Engine::Embed(..) => Err(ProviderError::new(
                ErrorKind::BadRequest,
                format!("`{model}` is an embedding model; use /v1/embeddings"),
            )),
            Engine::Whisper(_) => Err(ProviderError::new(
                ErrorKind::BadRequest,
                format!("`{model}` is a speech-to-text model; use /v1/audio/transcriptions"),
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
        ModelKind::Speech => {
            let mut w = WhisperConfig::new(&m.dir);
            w.threads = threads;
            w.queue_capacity = cfg.queue_capacity;
            w.id = m.id.clone();
            WhisperEngine::load(w).map(|e| Arc::new(Engine::Whisper(Arc::new(e)))).map_err(|e| e.to_string())
        }
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

    fn capabilities(&self) -> Capabilities {
        let has = |k| self.slots.values().any(|s| s.installed.kind == k);
        Capabilities {
            chat: has(ModelKind::Llm),
            embeddings: has(ModelKind::Embedding),
            transcription: has(ModelKind::Speech),
            speech: false,
        }
    }

    fn param_support(&self) -> &ParamSupport {
        &self.support
    }

    async fn chat(
        &self,
        req: &ChatCompletionRequest,
        _dropped: &DroppedParams,
    ) -> Result<ChatCompletionResponse, ProviderError> {
        let (engine, _in_use) = self.llm(&req.model).await?;
        let plan = tools::plan(req);
        let generation = engine.submit(request(&engine, req, plan.as_ref())?).map_err(convert::provider_error)?;
        let done = generation.collect().await.map_err(convert::provider_error)?;
        let usage = convert::usage(done.prompt_tokens, done.completion_tokens, done.cached_tokens);
        let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
        let (text, calls) = match &plan {
            Some(p) => tools::split(&done.text, p),
            None => (done.text, Vec::new()),
        };
        let mut resp = convert::response(id, unix_now(), &req.model, text, done.finish, usage);
        if !calls.is_empty()
            && let Some(choice) = resp.choices.first_mut()
        {
            if choice.message.content.as_deref() == Some("") {
                choice.message.content = None;
            }
            choice.message.tool_calls = Some(calls);
            choice.finish_reason = Some(hoosh_types::openai::FinishReason::ToolCalls);
        }
        Ok(resp)
    }

    async fn chat_stream(
        &self,
        req: &ChatCompletionRequest,
        _dropped: &DroppedParams,
    ) -> Result<ChunkStream, ProviderError> {
        let (engine, in_use) = self.llm(&req.model).await?;
        let plan = tools::plan(req);
        let generation = engine.submit(request(&engine, req, plan.as_ref())?).map_err(convert::provider_error)?;
        let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
        let created = unix_now();
        let model = req.model.clone();
        let first = convert::role_chunk(&id, created, &model);
        // Dropping this stream drops the generation, which cancels the
        // sequence and frees its slot at the scheduler's next step.
        // The stream owns the in-use guard: the model stays loaded until it ends.
        let calls = StreamCalls::new(plan);
        let rest = futures_util::stream::unfold(Some((generation, in_use, calls)), move |state| {
            let id = id.clone();
            let model = model.clone();
            async move {
                let (mut generation, in_use, mut calls) = state?;
                let chunk = |delta: Delta| ChatCompletionChunk::delta(&id, created, &model, delta, None);
                match generation.events.recv().await {
                    Some(GenEvent::Text(t)) => {
                        let out = calls.push(&t).into_iter().map(|d| Ok(chunk(d))).collect();
                        Some((out, Some((generation, in_use, calls))))
                    }
                    Some(GenEvent::Done { finish, prompt_tokens, completion_tokens, cached_tokens }) => {
                        let (deltas, called) = calls.finish();
                        let mut out: Vec<_> = deltas.into_iter().map(|d| Ok(chunk(d))).collect();
                        let fin = if called {
                            hoosh_types::openai::FinishReason::ToolCalls
                        } else {
                            convert::finish_reason(finish)
                        };
                        out.push(Ok(ChatCompletionChunk::delta(&id, created, &model, Delta::default(), Some(fin))));
                        let usage = convert::usage(prompt_tokens, completion_tokens, cached_tokens);
                        out.push(Ok(ChatCompletionChunk::usage_only(&id, created, &model, usage)));
                        Some((out, None))
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
        let (engine, _in_use) = self.engine(&req.model).await?;
        let (embedder, gate) = match engine.as_ref() {
            Engine::Embed(e, g) => (e.clone(), g.clone()),
            Engine::Llm(_) | Engine::Whisper(_) => {
                return Err(ProviderError::new(
                    ErrorKind::BadRequest,
                    format!("`{}` is not an embedding model; use one such as minilm-l6", req.model),
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

    async fn transcribe(&self, req: &TranscriptionRequest) -> Result<AudioOutput, ProviderError> {
        let (engine, in_use) = self.engine(&req.model).await?;
        match engine.as_ref() {
            Engine::Whisper(w) => crate::speech::transcribe(w, req, in_use).await,
            _ => Err(ProviderError::new(
                ErrorKind::BadRequest,
                format!("`{}` is not a speech-to-text model; use one such as whisper-tiny.en", req.model),
            )
            .with_param("model")),
        }
    }

    async fn list_models(&self) -> Result<Vec<String>, ProviderError> {
        Ok(self.slots.keys().cloned().collect())
    }

    async fn health(&self) -> Result<(), ProviderError> {
        Ok(())
    }

    fn model_loaded(&self, model: &str) -> Option<bool> {
        self.is_loaded(model)
    }

    fn count_prompt_tokens(&self, model: &str, req: &ChatCompletionRequest) -> Option<u64> {
        let slot = self.slots.get(model)?;
        // Never waits: a model being loaded (or not loaded) is estimated instead.
        let state = slot.engine.try_lock().ok()?;
        let Some(Ok(engine)) = state.as_ref() else { return None };
        let Engine::Llm(llm) = engine.as_ref() else { return None };
        let prompt = match tools::plan(req) {
            Some(plan) => tools::prompt(req, &plan, |m, t| llm.render_chat(m, t)).ok()?,
            None => llm.render_chat(&req.messages, None).ok()?,
        };
        llm.tokenize(&prompt, true).ok().map(|t| t.len() as u64)
    }
}
