//! Loading a GGUF, describing it, tokenizing, and handing work to the
//! scheduler thread.
//!
//! `LlmEngine` is a cheap handle (`Arc` inside). The model weights are shared
//! read-only: tokenization runs on the caller's thread. The llama.cpp context
//! (KV cache, compute buffers) belongs to one dedicated OS thread, the
//! scheduler: llama.cpp built with OpenMP runs 3–4× slower when `decode` is
//! called from changing threads.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, OnceLock};

use hoosh_types::openai::{ChatMessage, Tool};
use llama_cpp_2::LogOptions;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc;

use crate::error::LlmError;
use crate::generation::{GenerateRequest, Generation};
use crate::scheduler::{self, Job, Settings};
use crate::template::ChatTemplate;

/// Tokens per `decode` call (and per physical micro-batch). Long prompts are
/// prefilled in chunks of at most this size, between decode steps of others.
const BATCH_TOKENS: u32 = 512;

/// How to load and serve one GGUF model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmConfig {
    /// Path to the `.gguf` file.
    pub model_path: PathBuf,
    /// KV-cache tokens per sequence (prompt + output).
    pub context_per_sequence: u32,
    /// Sequences decoded together in one batch.
    pub max_sequences: usize,
    /// llama.cpp compute threads.
    pub threads: usize,
    /// Requests that may wait for a free sequence before `QueueFull`.
    pub queue_capacity: usize,
    /// Reuse the KV cache of a finished request whose prompt shares a prefix
    /// with a new one (the chat template's system prompt, a conversation so
    /// far): only the new suffix is prefilled. Off by default here because
    /// a reused prefix changes batch shapes, so greedy output may differ in
    /// the last bits from a cold run; the gateway turns it on.
    pub prompt_cache: bool,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            model_path: PathBuf::new(),
            context_per_sequence: 4096,
            max_sequences: 8,
            threads: std::thread::available_parallelism().map_or(4, |n| n.get()).min(8),
            queue_capacity: 64,
            prompt_cache: false,
        }
    }
}

impl LlmConfig {
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        LlmConfig { model_path: model_path.into(), ..Self::default() }
    }

    pub fn validate(&self) -> Result<(), LlmError> {
        let bad = |m: &str| Err(LlmError::Load(m.to_string()));
        if self.context_per_sequence < 16 {
            return bad("context_per_sequence must be at least 16");
        }
        if !(1..=256).contains(&self.max_sequences) {
            return bad("max_sequences must be between 1 and 256");
        }
        if self.threads == 0 {
            return bad("threads must be at least 1");
        }
        if self.queue_capacity == 0 {
            return bad("queue_capacity must be at least 1");
        }
        if u64::from(self.context_per_sequence) * self.max_sequences as u64 > u64::from(u32::MAX / 2) {
            return bad("context_per_sequence * max_sequences is too large");
        }
        Ok(())
    }
}

/// What the loaded GGUF says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// `general.name`, else the file name.
    pub name: String,
    pub n_ctx_train: u32,
    pub n_vocab: u32,
    /// `tokenizer.chat_template`, if the GGUF has one (else ChatML is used).
    pub chat_template: Option<String>,
    /// Text of the BOS / EOS tokens ("" when the model has none).
    pub bos: String,
    pub eos: String,
    pub context_per_sequence: u32,
}

/// A loaded model and its scheduler thread. Cheap to clone.
#[derive(Clone)]
pub struct LlmEngine {
    inner: Arc<Inner>,
}

struct Inner {
    info: ModelInfo,
    model: Arc<LlamaModel>,
    template: ChatTemplate,
    /// Bounded queue to the scheduler; its capacity is `queue_capacity`. The
    /// scheduler takes a job only when it has a free sequence, so the queue
    /// holds exactly the waiting requests.
    jobs: SyncSender<Job>,
}

impl std::fmt::Debug for LlmEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmEngine").field("info", &self.inner.info).finish_non_exhaustive()
    }
}

/// llama.cpp's global backend: initialised once per process, never freed.
fn backend() -> Result<&'static LlamaBackend, LlmError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| LlmError::Load(format!("llama.cpp backend: {e}")))
}

impl LlmEngine {
    /// Loads the model, creates the context and starts the scheduler thread.
    /// Blocking (about 0.1–1 s for small models).
    pub fn load(cfg: LlmConfig) -> Result<LlmEngine, LlmError> {
        cfg.validate()?;
        let backend = backend()?;
        if !cfg.model_path.is_file() {
            return Err(LlmError::Load(format!("model file {} not found", cfg.model_path.display())));
        }
        let model = LlamaModel::load_from_file(backend, &cfg.model_path, &LlamaModelParams::default())
            .map_err(|e| LlmError::Load(format!("{}: {e}", cfg.model_path.display())))?;
        let model = Arc::new(model);
        let info = model_info(&model, &cfg);
        let template = ChatTemplate::new(info.chat_template.as_deref(), &info.bos, &info.eos)?;

        let seqs = cfg.max_sequences as u32; // validated ≤ 256
        let threads = i32::try_from(cfg.threads).unwrap_or(i32::MAX);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(cfg.context_per_sequence * seqs))
            .with_n_seq_max(seqs)
            .with_n_batch(BATCH_TOKENS)
            .with_n_ubatch(BATCH_TOKENS)
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            // One KV stream per sequence: a sequence's attention never sees
            // another's cells, so seeded output does not depend on what else
            // is in the batch.
            .with_kv_unified(false);
        let settings = Settings {
            context_per_sequence: cfg.context_per_sequence,
            max_sequences: cfg.max_sequences,
            batch_tokens: BATCH_TOKENS as usize,
            prompt_cache: cfg.prompt_cache,
        };

        let (jobs_tx, jobs_rx) = sync_channel(cfg.queue_capacity);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread_model = Arc::clone(&model);
        std::thread::Builder::new()
            .name("hoosh-llm-scheduler".into())
            .spawn(move || scheduler::run(backend, &thread_model, params, settings, jobs_rx, ready_tx))
            .map_err(|e| LlmError::Load(format!("cannot start the scheduler thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(LlmError::Load("the scheduler thread exited during start-up".into())),
        }
        tracing::debug!(model = %info.name, ctx = cfg.context_per_sequence, seqs, threads, "llm engine ready");
        Ok(LlmEngine { inner: Arc::new(Inner { info, model, template, jobs: jobs_tx }) })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    /// llama.cpp's tokenization; special tokens in `text` are parsed.
    /// `add_bos` adds BOS (and EOS) if the model's metadata asks for them.
    pub fn tokenize(&self, text: &str, add_bos: bool) -> Result<Vec<i32>, LlmError> {
        let tokens = self.inner.model.vocab().tokenize(text.as_bytes(), add_bos, true);
        Ok(tokens.into_iter().map(|t| t.0).collect())
    }

    /// Token ids back to text (special tokens rendered, invalid UTF-8 replaced).
    pub fn detokenize(&self, tokens: &[i32]) -> Result<String, LlmError> {
        let vocab = self.inner.model.vocab();
        let n_vocab = vocab.n_tokens();
        if let Some(bad) = tokens.iter().find(|&&t| t < 0 || t >= n_vocab) {
            return Err(LlmError::InvalidRequest(format!("token id {bad} is outside the vocabulary")));
        }
        let tokens: Vec<LlamaToken> = tokens.iter().map(|&t| LlamaToken(t)).collect();
        let bytes = vocab.detokenize(&tokens, false, true);
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Renders a conversation with the model's chat template, ending with the
    /// assistant turn opener.
    pub fn render_chat(&self, messages: &[ChatMessage], tools: Option<&[Tool]>) -> Result<String, LlmError> {
        self.inner.template.render(messages, tools, true)
    }

    /// Queues a generation. Never blocks on inference (it tokenizes the
    /// prompt on the caller's thread).
    pub fn submit(&self, req: GenerateRequest) -> Result<Generation, LlmError> {
        req.sampling.validate()?;
        if req.max_tokens == Some(0) {
            return Err(LlmError::InvalidRequest("max_tokens must be at least 1".into()));
        }
        let tokens = self.prompt_tokens(&req.prompt);
        if tokens.is_empty() {
            return Err(LlmError::InvalidRequest("the prompt is empty".into()));
        }
        let limit = self.inner.info.context_per_sequence;
        let prompt_tokens = u32::try_from(tokens.len()).unwrap_or(u32::MAX);
        if prompt_tokens >= limit {
            return Err(LlmError::ContextOverflow { prompt_tokens, limit });
        }
        // Every generated token yields at most one event, plus Done/Error:
        // the scheduler's `try_send` can never find this channel full.
        let (events_tx, events_rx) = mpsc::channel(limit as usize + 2);
        let job = Job {
            tokens,
            max_tokens: req.max_tokens,
            sampling: req.sampling,
            stop: req.stop,
            json: req.json,
            events: events_tx,
        };
        match self.inner.jobs.try_send(job) {
            Ok(()) => Ok(Generation { events: events_rx, prompt_tokens }),
            // Sequences run for ~1-3 s on small models; a second is a fair guess.
            Err(TrySendError::Full(_)) => Err(LlmError::QueueFull { retry_after_secs: 1 }),
            Err(TrySendError::Disconnected(_)) => Err(LlmError::EngineStopped),
        }
    }

    /// The prompt as the model sees it: special tokens parsed, and BOS added
    /// when the model wants one and the (templated) text does not start with it.
    fn prompt_tokens(&self, prompt: &str) -> Vec<LlamaToken> {
        let vocab = self.inner.model.vocab();
        let mut tokens = vocab.tokenize(prompt.as_bytes(), false, true);
        let bos = vocab.bos();
        if vocab.should_add_bos() && bos.0 >= 0 && tokens.first() != Some(&bos) {
            tokens.insert(0, bos);
        }
        tokens
    }
}

fn model_info(model: &LlamaModel, cfg: &LlmConfig) -> ModelInfo {
    let vocab = model.vocab();
    let n_vocab = vocab.n_tokens();
    let piece = |t: LlamaToken| {
        if t.0 < 0 || t.0 >= n_vocab {
            return String::new();
        }
        String::from_utf8_lossy(&vocab.token_to_piece(t, true, None)).into_owned()
    };
    let name =
        model.meta_val_str("general.name").ok().filter(|n| !n.is_empty()).unwrap_or_else(|| {
            cfg.model_path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
        });
    ModelInfo {
        name,
        n_ctx_train: model.n_ctx_train(),
        n_vocab: u32::try_from(n_vocab).unwrap_or(0),
        chat_template: model.chat_template(None).ok().and_then(|t| t.to_string().ok()),
        bos: piece(vocab.bos()),
        eos: piece(vocab.eos()),
        context_per_sequence: cfg.context_per_sequence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_handle_is_cheap_to_share() {
        fn assert_handle<T: Send + Sync + Clone + 'static>() {}
        assert_handle::<LlmEngine>();
    }

    #[test]
    fn config_defaults_and_validation() {
        let cfg = LlmConfig::new("/models/x.gguf");
        assert_eq!((cfg.context_per_sequence, cfg.max_sequences, cfg.queue_capacity), (4096, 8, 64));
        assert!((1..=8).contains(&cfg.threads));
        assert!(cfg.validate().is_ok());
        for bad in [
            LlmConfig { max_sequences: 0, ..cfg.clone() },
            LlmConfig { queue_capacity: 0, ..cfg.clone() },
            LlmConfig { threads: 0, ..cfg.clone() },
            LlmConfig { context_per_sequence: 0, ..cfg.clone() },
        ] {
            assert!(matches!(bad.validate(), Err(LlmError::Load(_))), "{bad:?}");
        }
    }

    #[test]
    fn a_missing_model_file_is_a_load_error() {
        let err = LlmEngine::load(LlmConfig::new("/nonexistent/model.gguf")).unwrap_err();
        assert!(matches!(err, LlmError::Load(ref m) if m.contains("not found")), "{err:?}");
    }
}
