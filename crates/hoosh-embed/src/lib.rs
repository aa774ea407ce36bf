//! In-process sentence embeddings with candle (pure Rust, CPU).
//!
//! Runs a sentence-transformers BERT model such as all-MiniLM-L6-v2 the way
//! the Python library does: tokenize → BERT encoder → mean pooling over the
//! attention mask → L2 normalization. With all-MiniLM-L6-v2 the cosine
//! similarities match the values published by sentence-transformers to four
//! decimals (`tests/minilm.rs`).
//!
//! The weights are read into memory, not memory-mapped (candle's mmap
//! constructor is `unsafe`, which this workspace forbids): MiniLM costs about
//! 91 MB of process memory, and twice that for a moment while loading.
//! Unoptimized (debug) builds of candle are slow, roughly 1 s per short
//! sentence; measure in release.
//!
//! # Layout
//!
//! - [`model`] — [`Embedder`]: loading a model directory, `embed`, limits,
//!   the private thread pool and internal batching (chunks of 32, texts of
//!   similar length grouped together).
//! - `config` — reading and validating `config.json`,
//!   `sentence_bert_config.json` and `1_Pooling/config.json`.
//! - `tokenize` — the packaged `tokenizer.json`, with its fixed 128-token
//!   padding replaced by batch-longest padding and truncation set to
//!   `max_seq_length`.
//! - `pool` — masked mean pooling and normalization.
//! - [`error`] — [`EmbedError`]; load errors name the file at fault.
//!
//! # Threads
//!
//! Each [`Embedder`] owns a rayon pool ([`EmbedderOptions::threads`]); by
//! default it has as many threads as candle would use: `RAYON_NUM_THREADS`
//! when set (rayon and candle both read it), otherwise the physical core
//! count. candle's parallel matmul slows down badly when its threads compete
//! with other CPU-heavy work, so a host running other models should cap it,
//! preferably with `RAYON_NUM_THREADS` in the environment, because candle
//! sizes each matmul split from that variable, not from the pool it runs on
//! (see [`EmbedderOptions::threads`]).
//!
//! `Matryoshka`-style `dimensions` truncation is deliberately not offered:
//! MiniLM was not trained for it, so truncated vectors would be poor.

pub mod error;
pub mod model;

mod config;
mod pool;
mod tokenize;

pub use error::EmbedError;
pub use model::{DEFAULT_BATCH_SIZE, Embedder, EmbedderOptions, Embeddings};
