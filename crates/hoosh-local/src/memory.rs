//! How much memory a local model takes once loaded, estimated *before*
//! loading it, so the LRU bound (`local.max_memory_mb`) can make room first.
//!
//! - GGUF chat models: the weights (file size; llama.cpp maps them) plus the
//!   KV cache, which llama.cpp allocates in full at load: layers × total
//!   context × (K + V width) × 2 bytes (f16), with the widths read from the
//!   file's own metadata. Compute buffers (tens of MB) are not counted.
//! - Embedding models: the weights as they sit on disk (f32 safetensors are
//!   loaded as they are).
//! - Whisper: twice the f16 file (weights are converted to f32 at load).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use hoosh_core::config::LocalConfig;
use hoosh_models::{Installed, ModelKind};

/// Bytes of one KV-cache element (llama.cpp's default f16 cache).
const KV_ELEMENT_BYTES: u64 = 2;

/// The attention shape that sizes a KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvShape {
    pub layers: u64,
    pub embedding: u64,
    pub heads: u64,
    pub kv_heads: u64,
}

impl KvShape {
    /// KV bytes per token of context: K and V, each `kv_heads × head_dim` wide.
    pub fn bytes_per_token(&self) -> u64 {
        let head_dim = self.embedding / self.heads.max(1);
        self.layers * 2 * self.kv_heads * head_dim * KV_ELEMENT_BYTES
    }
}

/// Estimated resident bytes of `m` loaded with `cfg`.
pub fn estimate(m: &Installed, cfg: &LocalConfig) -> u64 {
    let weights = m.size_bytes();
    match m.kind {
        ModelKind::Llm => {
            let context = u64::from(cfg.context_per_sequence) * cfg.max_sequences as u64;
            // An unreadable header is reported by the load itself; count the
            // weights alone until then.
            let kv = kv_shape(&m.main_path()).map_or(0, |s| s.bytes_per_token() * context);
            weights + kv
        }
        ModelKind::Embedding => weights,
        // f16 on disk, f32 once loaded.
        ModelKind::Speech => weights * 2,
    }
}

/// Reads the attention shape from a GGUF file's metadata (tensor data is not
/// read).
pub fn kv_shape(path: &Path) -> Option<KvShape> {
    let mut file = BufReader::new(File::open(path).ok()?);
    let content = Content::read(&mut file).ok()?;
    let meta = &content.metadata;
    let arch = match meta.get("general.architecture")? {
        Value::String(s) => s.clone(),
        _ => return None,
    };
    let number = |key: &str| -> Option<u64> {
        match meta.get(&format!("{arch}.{key}"))? {
            Value::U32(v) => Some(u64::from(*v)),
            Value::U64(v) => Some(*v),
            Value::I32(v) => u64::try_from(*v).ok(),
            Value::I64(v) => u64::try_from(*v).ok(),
            _ => None,
        }
    };
    let heads = number("attention.head_count")?;
    Some(KvShape {
        layers: number("block_count")?,
        embedding: number("embedding_length")?,
        heads,
        // Without grouped-query attention every head has its own K/V.
        kv_heads: number("attention.head_count_kv").unwrap_or(heads),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_bytes_follow_the_attention_shape() {
        // SmolLM2-135M: 30 layers, 576 wide, 9 heads, 3 KV heads (head dim 64).
        let s = KvShape { layers: 30, embedding: 576, heads: 9, kv_heads: 3 };
        assert_eq!(s.bytes_per_token(), 30 * 2 * 3 * 64 * 2);
    }

    #[test]
    fn a_file_that_is_not_gguf_has_no_shape() {
        let path = std::env::temp_dir().join(format!("hoosh-not-gguf-{}", std::process::id()));
        std::fs::write(&path, b"definitely not a gguf file").unwrap();
        assert_eq!(kv_shape(&path), None);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(kv_shape(Path::new("/nonexistent/x.gguf")), None);
    }
}
