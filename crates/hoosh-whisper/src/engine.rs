//! [`WhisperEngine`]: a loaded model, its worker thread and the bounded
//! request queue; [`Transcription`]: one request's event stream.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Instant;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::WhisperError;
use crate::ct2::{Ct2Config, Ct2Model};
use crate::longform::{self, Job, Loaded};
use crate::mel::MelSpectrogram;
use crate::model::{Dims, Whisper};
use crate::tokenizer::{WhisperTokenizer, language_code};
use crate::transcript::{Segment, Task, Transcript};

/// Files a model directory must contain.
pub const MODEL_FILES: [&str; 3] = ["model.bin", "config.json", "tokenizer.json"];

/// How to load and run a model.
#[derive(Debug, Clone, PartialEq)]
pub struct WhisperConfig {
    /// A CTranslate2 (faster-whisper) directory: `model.bin`, `config.json`,
    /// `tokenizer.json`.
    pub model_dir: PathBuf,
    /// Threads of the worker's compute pool. candle sizes each matmul split
    /// from `RAYON_NUM_THREADS` (or the core count), not from this pool, and
    /// runs large element-wise ops on its own pool (`CANDLE_NUM_THREADS`),
    /// so set those variables too when capping below the core count (see
    /// the crate docs); throughput collapses when the threads compete with
    /// other CPU work.
    pub threads: usize,
    /// Requests that may wait behind the running one before
    /// [`WhisperError::QueueFull`].
    pub queue_capacity: usize,
    /// The model's name in responses and logs.
    pub id: String,
}

impl WhisperConfig {
    /// Defaults: candle's thread count, a queue of 8, the directory name as id.
    pub fn new(model_dir: impl Into<PathBuf>) -> Self {
        let model_dir = model_dir.into();
        let id = model_dir.file_name().map_or_else(|| "whisper".into(), |n| n.to_string_lossy().into_owned());
        Self { model_dir, threads: candle_core::utils::get_num_threads(), queue_capacity: 8, id }
    }

    pub fn validate(&self) -> Result<(), WhisperError> {
        if self.threads == 0 || self.threads > 256 {
            return Err(WhisperError::Config(format!("threads must be 1..=256, got {}", self.threads)));
        }
        if self.queue_capacity == 0 {
            return Err(WhisperError::Config("queue_capacity must be at least 1".into()));
        }
        Ok(())
    }
}

/// What was loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub id: String,
    /// Has language tokens and can translate; `.en` models cannot.
    pub multilingual: bool,
    pub n_mels: usize,
    pub n_vocab: usize,
    pub dims: Dims,
    /// Language codes the model accepts.
    pub languages: Vec<&'static str>,
    pub load_secs: f64,
}

/// One transcription request.
#[derive(Debug, Clone, Default)]
pub struct TranscribeRequest {
    /// 16 kHz mono samples (see `hoosh-audio`), shared: the gateway hands
    /// over the buffer it decoded without copying it.
    pub pcm: Arc<Vec<f32>>,
    pub task: Task,
    /// A language code (`"en"`) or name (`"english"`); `None` detects it
    /// (multilingual models) or means English (`.en` models).
    pub language: Option<String>,
    /// Text that precedes the audio (spelling, style, context); only its
    /// last 223 tokens are used.
    pub prompt: Option<String>,
    /// 0 decodes greedily, falling back to 0.2, 0.4, … 1.0 on windows that
    /// look like repetition loops or gibberish; above 0 samples at exactly
    /// that temperature.
    pub temperature: f32,
    /// Word-level timing. Not implemented yet: the transcript's `words` stays
    /// `None`.
    pub word_timestamps: bool,
}

/// Streamed progress of a [`Transcription`].
#[derive(Debug, Clone, PartialEq)]
pub enum TranscribeEvent {
    /// A finalized segment, in order.
    Segment(Segment),
    /// The end: the whole transcript (its segments repeat the events).
    Done(Transcript),
}

type Event = Result<TranscribeEvent, WhisperError>;

/// A running request. Dropping it cancels the work (checked before every
/// decoding step and window).
pub struct Transcription {
    rx: UnboundedReceiver<Event>,
}

impl Transcription {
    /// The next event; `None` after `Done` or an error.
    pub async fn next(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// Waits for the whole transcript.
    pub async fn collect(mut self) -> Result<Transcript, WhisperError> {
        while let Some(ev) = self.rx.recv().await {
            match ev? {
                TranscribeEvent::Segment(_) => {}
                TranscribeEvent::Done(t) => return Ok(t),
            }
        }
        Err(WhisperError::EngineStopped)
    }

    /// [`Self::collect`] for synchronous callers (not inside a tokio runtime).
    pub fn blocking_collect(mut self) -> Result<Transcript, WhisperError> {
        while let Some(ev) = self.rx.blocking_recv() {
            match ev? {
                TranscribeEvent::Segment(_) => {}
                TranscribeEvent::Done(t) => return Ok(t),
            }
        }
        Err(WhisperError::EngineStopped)
    }
}

struct QueuedJob {
    pcm: Arc<Vec<f32>>,
    task: Task,
    language: Option<&'static str>,
    prompt: Vec<u32>,
    temperature: f32,
    tx: UnboundedSender<Event>,
}

/// Counters since load, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Requests that produced a transcript.
    pub completed: u64,
    /// Requests whose [`Transcription`] was dropped before the end
    /// (including ones dropped while still queued).
    pub cancelled: u64,
    /// Requests that failed with an error.
    pub failed: u64,
}

#[derive(Default)]
struct Counters {
    completed: AtomicU64,
    cancelled: AtomicU64,
    failed: AtomicU64,
}

struct Inner {
    info: ModelInfo,
    loaded: Arc<Loaded>,
    jobs: SyncSender<QueuedJob>,
    counters: Arc<Counters>,
}

/// A loaded Whisper model. Cheap to clone; all clones share one worker
/// thread, which runs requests one at a time in arrival order. The worker
/// exits when the last clone is dropped and the queue is drained.
#[derive(Clone)]
pub struct WhisperEngine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for WhisperEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperEngine").field("info", &self.inner.info).finish_non_exhaustive()
    }
}

impl WhisperEngine {
    /// Reads the model directory (about 0.3 s for tiny.en) and starts the
    /// worker thread.
    pub fn load(cfg: WhisperConfig) -> Result<Self, WhisperError> {
        cfg.validate()?;
        let started = Instant::now();
        for f in MODEL_FILES {
            let path = cfg.model_dir.join(f);
            if !path.is_file() {
                return Err(WhisperError::load(&path, "file not found (is the model pulled?)"));
            }
        }
        let ct2 = Ct2Model::load(&cfg.model_dir.join("model.bin"))?;
        if ct2.spec != "WhisperSpec" {
            return Err(WhisperError::load(
                &cfg.model_dir.join("model.bin"),
                format!("a {} model, not Whisper", ct2.spec),
            ));
        }
        let config = Ct2Config::load(&cfg.model_dir.join("config.json"))?;
        let tok = WhisperTokenizer::load(&cfg.model_dir.join("tokenizer.json"))?;
        let model = Whisper::load(&ct2).map_err(|e| WhisperError::load(&cfg.model_dir.join("model.bin"), e))?;
        drop(ct2);
        let dims = model.dims.clone();
        let multilingual = dims.n_vocab >= 51865;
        if tok.timestamp_begin as usize + 1501 > dims.n_vocab {
            return Err(WhisperError::load(
                &cfg.model_dir.join("tokenizer.json"),
                format!("vocabulary does not match model.bin ({} logits)", dims.n_vocab),
            ));
        }

        // Control tokens are never text; the model's own list adds symbols
        // and non-speech annotations.
        let mut suppress = config.suppress_ids.clone();
        suppress.extend([tok.translate, tok.transcribe, tok.sot, tok.startofprev, tok.startoflm, tok.no_speech]);
        suppress.extend(tok.languages.iter().map(|(_, id)| *id));
        suppress.retain(|t| (*t as usize) < dims.n_vocab);
        suppress.sort_unstable();
        suppress.dedup();
        let mut suppress_begin = config.suppress_ids_begin.clone();
        if suppress_begin.is_empty() {
            suppress_begin = tok.encode(" ")?;
            suppress_begin.push(tok.eot);
        }

        let info = ModelInfo {
            id: cfg.id.clone(),
            multilingual,
            n_mels: dims.n_mels,
            n_vocab: dims.n_vocab,
            languages: if multilingual { tok.languages.iter().map(|(c, _)| *c).collect() } else { vec!["en"] },
            dims,
            load_secs: 0.0,
        };
        let loaded = Arc::new(Loaded {
            mel: MelSpectrogram::new(info.n_mels),
            model,
            tok,
            suppress,
            suppress_begin,
            multilingual,
        });

        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(cfg.threads)
            .thread_name(|i| format!("hoosh-whisper-{i}"))
            .build()
            .map_err(|e| WhisperError::Config(format!("cannot start {} threads: {e}", cfg.threads)))?;
        let (jobs, rx) = sync_channel(cfg.queue_capacity);
        let worker_model = Arc::clone(&loaded);
        let counters = Arc::new(Counters::default());
        let worker_counters = Arc::clone(&counters);
        std::thread::Builder::new()
            .name(format!("whisper-{}", cfg.id))
            .spawn(move || pool.install(move || worker(&worker_model, &rx, &worker_counters)))
            .map_err(|e| WhisperError::Config(format!("cannot start the worker thread: {e}")))?;

        let info = ModelInfo { load_secs: started.elapsed().as_secs_f64(), ..info };
        tracing::debug!(id = %info.id, multilingual, threads = cfg.threads, load_secs = info.load_secs, "whisper model loaded");
        Ok(Self { inner: Arc::new(Inner { info, loaded, jobs, counters }) })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    pub fn stats(&self) -> EngineStats {
        let c = &self.inner.counters;
        EngineStats {
            completed: c.completed.load(Ordering::Relaxed),
            cancelled: c.cancelled.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
        }
    }

    /// Validates and queues a request. Client errors (empty audio, unknown
    /// language, translation or a non-English language on an English-only
    /// model) are returned here, before any work; `QueueFull` when the queue
    /// is at capacity.
    pub fn submit(&self, req: TranscribeRequest) -> Result<Transcription, WhisperError> {
        let info = &self.inner.info;
        let loaded = &self.inner.loaded;
        if req.pcm.is_empty() {
            return Err(WhisperError::EmptyAudio);
        }
        if !(0.0..=1.0).contains(&req.temperature) || req.temperature.is_nan() {
            return Err(WhisperError::Prompt(format!("temperature must be in 0..=1, got {}", req.temperature)));
        }
        if req.task == Task::Translate && !info.multilingual {
            return Err(WhisperError::EnglishOnly { model: info.id.clone(), what: "translation".into() });
        }
        let language = match req.language.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(l) => {
                let code = language_code(l).ok_or_else(|| WhisperError::UnknownLanguage(l.into()))?;
                if !info.languages.contains(&code) {
                    return Err(WhisperError::EnglishOnly {
                        model: info.id.clone(),
                        what: format!("language {code:?}"),
                    });
                }
                Some(code)
            }
        };
        let prompt = match req.prompt.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(p) => loaded.tok.encode(&format!(" {p}"))?,
            None => Vec::new(),
        };
        let (tx, rx) = unbounded_channel();
        let job = QueuedJob { pcm: req.pcm, task: req.task, language, prompt, temperature: req.temperature, tx };
        match self.inner.jobs.try_send(job) {
            Ok(()) => Ok(Transcription { rx }),
            Err(TrySendError::Full(_)) => Err(WhisperError::QueueFull { retry_after_secs: 1 }),
            Err(TrySendError::Disconnected(_)) => Err(WhisperError::EngineStopped),
        }
    }
}

fn worker(m: &Loaded, jobs: &Receiver<QueuedJob>, counters: &Counters) {
    while let Ok(job) = jobs.recv() {
        if job.tx.is_closed() {
            counters.cancelled.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let started = Instant::now();
        let seconds = job.pcm.len() as f64 / 16_000.0;
        let tx = job.tx.clone();
        let cancelled = || tx.is_closed();
        let params = Job {
            pcm: &job.pcm,
            task: job.task,
            language: job.language,
            prompt: job.prompt,
            temperature: job.temperature,
            seed: 0x5eed,
        };
        let mut emit = |s: &Segment| {
            let _ = job.tx.send(Ok(TranscribeEvent::Segment(s.clone())));
        };
        let result = longform::transcribe(m, &params, &mut emit, &cancelled);
        let elapsed = started.elapsed().as_secs_f64();
        match result {
            Ok(t) => {
                tracing::debug!(audio_secs = seconds, elapsed, rtf = elapsed / seconds.max(1e-9), "transcribed");
                counters.completed.fetch_add(1, Ordering::Relaxed);
                let _ = job.tx.send(Ok(TranscribeEvent::Done(t)));
            }
            Err(WhisperError::Cancelled) => {
                counters.cancelled.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(audio_secs = seconds, elapsed, "transcription cancelled");
            }
            Err(e) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "transcription failed");
                let _ = job.tx.send(Err(e));
            }
        }
    }
}
