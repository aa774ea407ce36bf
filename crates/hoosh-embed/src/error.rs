//! The one error type of this crate.
//!
//! Load-time errors name the file that is missing or corrupt, so a startup
//! failure reads like "model.safetensors: ... " rather than "invalid header".

use std::path::PathBuf;

/// Everything that can go wrong while loading the model or embedding text.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The model directory itself is absent (or is a file).
    #[error("model directory {} does not exist or is not a directory", dir.display())]
    ModelDirMissing {
        /// The directory that was passed to [`crate::Embedder::load`].
        dir: PathBuf,
    },

    /// A model file could not be read (usually: it does not exist).
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A model file exists but its contents are not what we expect
    /// (bad JSON, truncated safetensors, a tensor of the wrong shape, ...).
    #[error("corrupt or invalid {}: {reason}", path.display())]
    Corrupt {
        /// The offending file.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },

    /// The files are valid but describe a model this crate does not run
    /// (for example a pooling mode other than mean pooling).
    #[error("unsupported model in {}: {reason}", path.display())]
    Unsupported {
        /// The file that declares the unsupported feature.
        path: PathBuf,
        /// Which feature.
        reason: String,
    },

    /// The private thread pool could not be started.
    #[error("cannot start the embedding thread pool: {0}")]
    ThreadPool(String),

    /// The tokenizer rejected an input text.
    #[error("tokenization failed: {0}")]
    Tokenize(String),

    /// The forward pass or pooling failed inside candle.
    #[error("embedding inference failed: {0}")]
    Inference(#[from] candle_core::Error),
}
