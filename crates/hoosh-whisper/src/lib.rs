//! In-process Whisper speech-to-text on candle (pure Rust, CPU), loading
//! CTranslate2 (faster-whisper) model directories directly: no conversion
//! step, no extra files.
//!
//! Decoding follows openai-whisper's `transcribe`: 30 s windows, timestamp
//! tokens, greedy decoding with temperature fallback, `<|startofprev|>`
//! conditioning on earlier text, and silent windows skipped. The encoder and
//! decoder are written here (not taken from candle-transformers) so the
//! decoder can keep a self-attention KV cache and attention can run on
//! strided views of fused projections.
//!
//! # Layout
//!
//! | file | job |
//! |---|---|
//! | `engine.rs` | [`WhisperConfig`], [`WhisperEngine::load`] (files checked, worker thread + rayon pool), [`ModelInfo`], [`WhisperEngine::submit`] (validation, bounded queue → `QueueFull`), [`TranscribeRequest`], [`Transcription`] (event stream; drop = cancel) |
//! | `longform.rs` | audio of any length: windowing, seeking to the last timestamp, segments, temperature fallback, silence skipping, prompt carry-over |
//! | `decode.rs` | one window: prompt + SOT sequence, timestamp rules, suppression, greedy/sampled steps, `no_speech_prob`, language detection |
//! | `model.rs` | encoder (conv stem + transformer) and decoder with self-attention KV cache and per-window cross-attention K/V |
//! | `ops.rs` | plain-Rust kernels: in-place softmax/GELU custom ops (vectorizable `exp`), and the single-token decoder step's matrix-vector products and attention |
//! | `mel.rs` | 80/128-bin log-mel spectrogram (Slaney filterbank computed in code, realfft) |
//! | `tokenizer.rs` | `tokenizer.json`, special tokens by name, timestamp tokens, language table |
//! | `ct2.rs` | CTranslate2 `model.bin` v6 reader and `config.json` |
//! | `format.rs` | [`ResponseFormat`]: `json`, `text`, `srt`, `vtt`, `verbose_json` |
//! | `transcript.rs` | [`Transcript`], [`Segment`], [`Word`], [`Task`] |
//! | `error.rs` | [`WhisperError`]: client / retryable / internal |
//!
//! # Request flow
//!
//! `submit` (caller thread: validate, tokenize the prompt) → `try_send` into
//! the bounded queue → worker thread: log-mel of the whole input → per
//! window: encoder → cross K/V → decode → segments, each sent as
//! [`TranscribeEvent::Segment`] → [`TranscribeEvent::Done`].
//!
//! # Threads
//!
//! One dedicated thread per engine owns the model and runs inside a private
//! rayon pool of [`WhisperConfig::threads`] threads, which candle's matmuls
//! and this crate's kernels use. Requests run one at a time. Two candle
//! settings are process-wide and only configurable through the environment:
//! each matmul is split for `RAYON_NUM_THREADS` threads (default: the
//! physical core count, re-read from `/proc/cpuinfo` on every matmul, ~40 µs,
//! unless the variable is set), and large element-wise ops run on candle's
//! own spinning pool of `CANDLE_NUM_THREADS` (default the same) threads. On a
//! host shared with other models, set both to the `threads` value.
//!
//! # Performance
//!
//! Per 30 s window the encoder costs ~35 GFLOP for tiny (candle's gemm:
//! AVX2/FMA, picked at run time) and dominates short clips; each decoding
//! step is memory-bound (tiny: ~80 MB of vocabulary projection plus ~50 MB
//! of decoder weights and cross-attention K/V read per token). Whisper
//! models are stored as f16 but run in f32: candle's f16 matmul rounds its
//! output to f16 and a safe-Rust f16→f32 conversion is slower than reading
//! twice the bytes. `examples/rtf.rs` prints RTF and peak RSS.
//!
//! Not implemented yet: word timestamps (`words` is always `None`) and beam
//! search.

mod ct2;
mod decode;
mod engine;
mod error;
pub mod format;
mod longform;
mod mel;
pub(crate) mod model;
mod ops;
mod tokenizer;
mod transcript;

pub use engine::{
    EngineStats, MODEL_FILES, ModelInfo, TranscribeEvent, TranscribeRequest, Transcription, WhisperConfig,
    WhisperEngine,
};
pub use error::WhisperError;
pub use format::ResponseFormat;
pub use model::Dims;
pub use tokenizer::{LANGUAGES, language_code, language_name};
pub use transcript::{Segment, Task, Transcript, Word};
