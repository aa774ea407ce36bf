//! Turning texts into the padded id / mask tensors BERT expects.
//!
//! The packaged `tokenizer.json` of all-MiniLM-L6-v2 pads every input to a
//! fixed 128 tokens and truncates at 128. Both are wrong for us: fixed padding
//! wastes compute on short texts, and sentence-transformers truncates at
//! `max_seq_length` (256). So the padding is replaced by
//! [`PaddingStrategy::BatchLongest`] and truncation by `max_seq_len`.

use std::path::Path;

use candle_core::{Device, Tensor};
use tokenizers::{
    PaddingParams, PaddingStrategy, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};

use crate::EmbedError;

/// A tokenizer set up for embedding: batch-longest padding, truncation at the
/// model's sequence limit, special tokens added.
pub(crate) struct TextTokenizer {
    inner: Tokenizer,
}

/// One tokenized chunk, ready for the forward pass.
pub(crate) struct EncodedBatch {
    /// `(batch, seq)` u32 token ids.
    pub input_ids: Tensor,
    /// `(batch, seq)` u32 segment ids (all zero for single texts).
    pub token_type_ids: Tensor,
    /// `(batch, seq)` u32, 1 for real tokens and 0 for padding.
    pub attention_mask: Tensor,
    /// Number of real (non-padding) tokens over the whole chunk.
    pub real_tokens: usize,
}

impl TextTokenizer {
    /// Loads `tokenizer.json` and overrides its padding and truncation.
    /// `pad_token_id` (from `config.json`) is used only when the file carries
    /// no padding settings of its own.
    pub(crate) fn load(path: &Path, max_seq_len: usize, pad_token_id: usize) -> Result<Self, EmbedError> {
        let corrupt = |reason: String| EmbedError::Corrupt { path: path.to_path_buf(), reason };
        let bytes = crate::config::read_bytes(path)?;
        let mut inner = Tokenizer::from_bytes(&bytes).map_err(|err| corrupt(err.to_string()))?;

        let padding = match inner.get_padding() {
            Some(existing) => {
                PaddingParams { strategy: PaddingStrategy::BatchLongest, pad_to_multiple_of: None, ..existing.clone() }
            }
            None => {
                let pad_id = u32::try_from(pad_token_id)
                    .map_err(|_| corrupt(format!("pad token id {pad_token_id} out of range")))?;
                PaddingParams {
                    strategy: PaddingStrategy::BatchLongest,
                    pad_id,
                    pad_token: inner.id_to_token(pad_id).unwrap_or_else(|| "[PAD]".into()),
                    ..PaddingParams::default()
                }
            }
        };
        inner.with_padding(Some(padding));
        inner
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_seq_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|err| corrupt(format!("cannot truncate at {max_seq_len} tokens: {err}")))?;

        Ok(Self { inner })
    }

    /// Tokenizes `texts` as one padded batch on `device`.
    pub(crate) fn encode_batch(&self, texts: &[&str], device: &Device) -> Result<EncodedBatch, EmbedError> {
        let encodings =
            self.inner.encode_batch(texts.to_vec(), true).map_err(|err| EmbedError::Tokenize(err.to_string()))?;

        let rows = encodings.len();
        let seq = encodings.first().map_or(0, |e| e.len());
        let mut ids = Vec::with_capacity(rows * seq);
        let mut type_ids = Vec::with_capacity(rows * seq);
        let mut mask = Vec::with_capacity(rows * seq);
        for encoding in &encodings {
            // BatchLongest padding makes every row `seq` long; anything else
            // would silently misalign the tensor rows.
            if encoding.len() != seq {
                return Err(EmbedError::Tokenize(format!(
                    "tokenizer returned rows of unequal length ({} vs {seq})",
                    encoding.len()
                )));
            }
            ids.extend_from_slice(encoding.get_ids());
            type_ids.extend_from_slice(encoding.get_type_ids());
            mask.extend_from_slice(encoding.get_attention_mask());
        }
        let real_tokens = mask.iter().map(|&m| m as usize).sum();

        Ok(EncodedBatch {
            input_ids: Tensor::from_vec(ids, (rows, seq), device)?,
            token_type_ids: Tensor::from_vec(type_ids, (rows, seq), device)?,
            attention_mask: Tensor::from_vec(mask, (rows, seq), device)?,
            real_tokens,
        })
    }

    /// Tokens `text` would cost on its own: special tokens included, after
    /// truncation, no padding.
    pub(crate) fn count_tokens(&self, text: &str) -> Result<usize, EmbedError> {
        let encoding = self.inner.encode(text, true).map_err(|err| EmbedError::Tokenize(err.to_string()))?;
        Ok(encoding.get_attention_mask().iter().map(|&m| m as usize).sum())
    }
}
