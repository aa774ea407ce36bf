//! Reading the JSON files of a sentence-transformers model directory.
//!
//! Only three JSON files matter: `config.json` (the BERT shape, required),
//! `sentence_bert_config.json` (`max_seq_length`, optional) and
//! `1_Pooling/config.json` (the pooling mode, optional; only mean pooling is
//! supported, so any other declared mode is refused rather than silently
//! computed wrong).

use std::path::{Path, PathBuf};

use candle_transformers::models::bert;
use serde::Deserialize;

use crate::EmbedError;

/// File names inside the model directory.
pub(crate) const CONFIG_FILE: &str = "config.json";
pub(crate) const SBERT_CONFIG_FILE: &str = "sentence_bert_config.json";
pub(crate) const POOLING_CONFIG_FILE: &str = "1_Pooling/config.json";
pub(crate) const WEIGHTS_FILE: &str = "model.safetensors";
pub(crate) const TOKENIZER_FILE: &str = "tokenizer.json";

/// The resolved settings of one model directory.
#[derive(Debug, Clone)]
pub(crate) struct ModelConfig {
    /// The BERT architecture, straight from `config.json`.
    pub bert: bert::Config,
    /// Inputs longer than this many tokens (special tokens included) are
    /// truncated.
    pub max_seq_len: usize,
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: usize,
}

#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

impl ModelConfig {
    /// Reads and validates the JSON files under `dir`.
    pub(crate) fn read(dir: &Path) -> Result<Self, EmbedError> {
        let bert_path = dir.join(CONFIG_FILE);
        let bert: bert::Config = read_json(&bert_path)?;
        if bert.hidden_size == 0 || bert.max_position_embeddings == 0 {
            return Err(EmbedError::Corrupt {
                path: bert_path,
                reason: "hidden_size and max_position_embeddings must be positive".into(),
            });
        }

        check_pooling(&dir.join(POOLING_CONFIG_FILE))?;

        // Without sentence_bert_config.json the position table is the limit.
        let sbert_path = dir.join(SBERT_CONFIG_FILE);
        let declared = match read_optional_json::<SentenceBertConfig>(&sbert_path)? {
            Some(sbert) => sbert.max_seq_length,
            None => bert.max_position_embeddings,
        };
        if declared < 2 {
            return Err(EmbedError::Corrupt {
                path: sbert_path,
                reason: format!("max_seq_length {declared} leaves no room for [CLS] and [SEP]"),
            });
        }
        let max_seq_len = declared.min(bert.max_position_embeddings);

        Ok(Self { bert, max_seq_len })
    }
}

/// Refuses a pooling config that asks for anything but plain mean pooling.
fn check_pooling(path: &Path) -> Result<(), EmbedError> {
    let Some(pooling) = read_optional_json::<PoolingConfig>(path)? else {
        return Ok(());
    };
    let only_mean = pooling.pooling_mode_mean_tokens
        && !pooling.pooling_mode_cls_token
        && !pooling.pooling_mode_max_tokens
        && !pooling.pooling_mode_mean_sqrt_len_tokens;
    if only_mean {
        Ok(())
    } else {
        Err(EmbedError::Unsupported {
            path: path.to_path_buf(),
            reason: "only pooling_mode_mean_tokens is supported".into(),
        })
    }
}

/// Reads a file whole, naming it in the error.
pub(crate) fn read_bytes(path: &Path) -> Result<Vec<u8>, EmbedError> {
    std::fs::read(path).map_err(|source| EmbedError::Read { path: path.to_path_buf(), source })
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, EmbedError> {
    let bytes = read_bytes(path)?;
    parse_json(path, &bytes)
}

fn read_optional_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, EmbedError> {
    match std::fs::read(path) {
        Ok(bytes) => parse_json(path, &bytes).map(Some),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(EmbedError::Read { path: PathBuf::from(path), source }),
    }
}

fn parse_json<T: for<'de> Deserialize<'de>>(path: &Path, bytes: &[u8]) -> Result<T, EmbedError> {
    serde_json::from_slice(bytes)
        .map_err(|err| EmbedError::Corrupt { path: path.to_path_buf(), reason: err.to_string() })
}
