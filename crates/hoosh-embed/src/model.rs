//! The [`Embedder`]: a loaded model plus its tokenizer and thread pool.

use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::BertModel;

use crate::EmbedError;
use crate::config::{self, ModelConfig};
use crate::pool::pool_and_normalize;
use crate::tokenize::TextTokenizer;

/// Default number of texts per forward pass. Larger requests are split.
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// Knobs for [`Embedder::load_with`].
#[derive(Debug, Clone, Default)]
pub struct EmbedderOptions {
    /// Worker threads for tokenization and the forward pass. `None` uses
    /// candle's default: `RAYON_NUM_THREADS` when set, else the number of
    /// physical cores.
    ///
    /// This bounds how many threads all callers together use, but candle
    /// 0.11 still splits each matmul into `RAYON_NUM_THREADS` (or core count)
    /// pieces, read from the environment on every call. So to really run
    /// single-threaded, set `RAYON_NUM_THREADS=1` in the process environment;
    /// measured on a busy 2-core box that is ~1.6× faster than `threads:
    /// Some(1)` alone. (The variable cannot be set from inside the process
    /// here: `std::env::set_var` is `unsafe` in edition 2024.)
    pub threads: Option<usize>,
    /// Texts per forward pass; `None` means [`DEFAULT_BATCH_SIZE`].
    pub batch_size: Option<usize>,
}

/// The result of [`Embedder::embed`].
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// One unit-length vector per input text, in input order.
    pub vectors: Vec<Vec<f32>>,
    /// Real (non-padding) tokens processed, special tokens included, after
    /// truncation: what a usage record should charge.
    pub prompt_tokens: usize,
}

/// A sentence-embedding model (BERT encoder, mean pooling, L2 normalization)
/// loaded in memory. Cheap to share behind an `Arc`; `embed` takes `&self`.
pub struct Embedder {
    model: BertModel,
    tokenizer: TextTokenizer,
    device: Device,
    pool: rayon::ThreadPool,
    dims: usize,
    max_seq_len: usize,
    batch_size: usize,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("dims", &self.dims)
            .field("max_seq_len", &self.max_seq_len)
            .field("batch_size", &self.batch_size)
            .field("threads", &self.pool.current_num_threads())
            .finish_non_exhaustive()
    }
}

impl Embedder {
    /// Loads a sentence-transformers BERT directory (`config.json`,
    /// `model.safetensors`, `tokenizer.json`, optionally
    /// `sentence_bert_config.json` and `1_Pooling/config.json`) with default
    /// options.
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        Self::load_with(dir, EmbedderOptions::default())
    }

    /// Like [`Embedder::load`], with explicit options.
    ///
    /// The weights are read into memory rather than memory-mapped: candle's
    /// mmap constructor is an `unsafe fn` and this workspace forbids
    /// `unsafe`. For MiniLM that costs ~91 MB of anonymous memory instead of
    /// shared page cache, plus a transient second copy while loading.
    pub fn load_with(dir: &Path, options: EmbedderOptions) -> Result<Self, EmbedError> {
        if !dir.is_dir() {
            return Err(EmbedError::ModelDirMissing { dir: dir.to_path_buf() });
        }
        let started = std::time::Instant::now();
        let config = ModelConfig::read(dir)?;

        // The tokenizer is cheap; load it before reading ~90 MB of weights so
        // a broken directory fails fast.
        let tokenizer =
            TextTokenizer::load(&dir.join(config::TOKENIZER_FILE), config.max_seq_len, config.bert.pad_token_id)?;

        let device = Device::Cpu;
        let weights_path = dir.join(config::WEIGHTS_FILE);
        let corrupt_weights =
            |err: candle_core::Error| EmbedError::Corrupt { path: weights_path.clone(), reason: err.to_string() };
        let bytes = config::read_bytes(&weights_path)?;
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &device).map_err(corrupt_weights)?;
        let model = BertModel::load(vb, &config.bert).map_err(corrupt_weights)?;

        let threads = options.threads.unwrap_or_else(candle_core::utils::get_num_threads).max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("hoosh-embed-{i}"))
            .build()
            .map_err(|err| EmbedError::ThreadPool(err.to_string()))?;

        let embedder = Self {
            model,
            tokenizer,
            device,
            pool,
            dims: config.bert.hidden_size,
            max_seq_len: config.max_seq_len,
            batch_size: options.batch_size.unwrap_or(DEFAULT_BATCH_SIZE).max(1),
        };
        tracing::debug!(
            dir = %dir.display(),
            dims = embedder.dims,
            max_seq_len = embedder.max_seq_len,
            threads,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded embedding model"
        );
        Ok(embedder)
    }

    /// Length of every returned vector (384 for MiniLM-L6).
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Token limit per text, special tokens included; longer texts are
    /// truncated, not rejected.
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }

    /// Tokens `text` costs when embedded: special tokens included, after
    /// truncation (so never more than [`Embedder::max_seq_len`]).
    pub fn count_tokens(&self, text: &str) -> Result<usize, EmbedError> {
        self.tokenizer.count_tokens(text)
    }

    /// Embeds `texts`, returning one unit vector per text in input order.
    ///
    /// Blocking and CPU-heavy: call it from a worker thread (for example
    /// `tokio::task::spawn_blocking`). Work runs on this embedder's own thread
    /// pool, so concurrent callers share its threads rather than
    /// oversubscribing the machine.
    pub fn embed(&self, texts: &[String]) -> Result<Embeddings, EmbedError> {
        if texts.is_empty() {
            return Ok(Embeddings { vectors: Vec::new(), prompt_tokens: 0 });
        }
        self.pool.install(|| self.embed_on_pool(texts))
    }

    fn embed_on_pool(&self, texts: &[String]) -> Result<Embeddings, EmbedError> {
        // Group texts of similar length so a long text does not make a whole
        // chunk of short ones pay for its padding. Byte length is a cheap
        // stand-in for token length.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());

        let mut vectors = vec![Vec::new(); texts.len()];
        let mut prompt_tokens = 0;
        for chunk in order.chunks(self.batch_size) {
            let chunk_texts: Vec<&str> = chunk.iter().map(|&i| texts[i].as_str()).collect();
            let batch = self.tokenizer.encode_batch(&chunk_texts, &self.device)?;
            let hidden = self.model.forward(&batch.input_ids, &batch.token_type_ids, Some(&batch.attention_mask))?;
            let rows = pool_and_normalize(&hidden, &batch.attention_mask)?;
            for (&index, row) in chunk.iter().zip(rows) {
                vectors[index] = row;
            }
            prompt_tokens += batch.real_tokens;
        }
        Ok(Embeddings { vectors, prompt_tokens })
    }
}
