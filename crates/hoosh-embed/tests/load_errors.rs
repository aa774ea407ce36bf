//! Load failures, without the real model: every error names the directory or
//! the file at fault.

use std::fs;
use std::path::Path;

use hoosh_embed::{EmbedError, Embedder};

/// The real `config.json` of all-MiniLM-L6-v2 (612 bytes).
const MINILM_CONFIG: &str = r#"{
  "architectures": ["BertModel"],
  "attention_probs_dropout_prob": 0.1,
  "hidden_act": "gelu",
  "hidden_dropout_prob": 0.1,
  "hidden_size": 384,
  "initializer_range": 0.02,
  "intermediate_size": 1536,
  "layer_norm_eps": 1e-12,
  "max_position_embeddings": 512,
  "model_type": "bert",
  "num_attention_heads": 12,
  "num_hidden_layers": 6,
  "pad_token_id": 0,
  "position_embedding_type": "absolute",
  "type_vocab_size": 2,
  "vocab_size": 30522
}"#;

/// A tiny but valid WordPiece tokenizer.
fn tiny_tokenizer() -> String {
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": null,
        "decoder": null,
        "model": {
            "type": "WordPiece",
            "unk_token": "[UNK]",
            "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100,
            "vocab": {"[PAD]": 0, "[UNK]": 1, "hello": 2}
        }
    })
    .to_string()
}

fn load_err(dir: &Path) -> EmbedError {
    match Embedder::load(dir) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(err) => err,
    }
}

#[test]
fn embedder_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Embedder>();
}

#[test]
fn missing_directory_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("no-such-model");
    let err = load_err(&dir);
    assert!(matches!(err, EmbedError::ModelDirMissing { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-model"), "{err}");
}

#[test]
fn missing_config_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let err = load_err(tmp.path());
    assert!(matches!(err, EmbedError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("config.json"), "{err}");
}

#[test]
fn corrupt_config_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("config.json"), "{ not json").unwrap();
    let err = load_err(tmp.path());
    assert!(matches!(err, EmbedError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("config.json"), "{err}");
}

#[test]
fn missing_tokenizer_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("config.json"), MINILM_CONFIG).unwrap();
    let err = load_err(tmp.path());
    assert!(matches!(err, EmbedError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("tokenizer.json"), "{err}");
}

#[test]
fn corrupt_tokenizer_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("config.json"), MINILM_CONFIG).unwrap();
    fs::write(tmp.path().join("tokenizer.json"), r#"{"model": 42}"#).unwrap();
    let err = load_err(tmp.path());
    assert!(matches!(err, EmbedError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("tokenizer.json"), "{err}");
}

#[test]
fn missing_weights_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("config.json"), MINILM_CONFIG).unwrap();
    fs::write(tmp.path().join("tokenizer.json"), tiny_tokenizer()).unwrap();
    let err = load_err(tmp.path());
    assert!(matches!(err, EmbedError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");
}

#[test]
fn corrupt_weights_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("config.json"), MINILM_CONFIG).unwrap();
    fs::write(tmp.path().join("tokenizer.json"), tiny_tokenizer()).unwrap();
    fs::write(tmp.path().join("model.safetensors"), b"\x10\x00\x00\x00\x00\x00\x00\x00garbage").unwrap();
    let err = load_err(tmp.path());
    assert!(matches!(err, EmbedError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");
}

#[test]
fn non_mean_pooling_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("config.json"), MINILM_CONFIG).unwrap();
    fs::create_dir(tmp.path().join("1_Pooling")).unwrap();
    fs::write(
        tmp.path().join("1_Pooling/config.json"),
        r#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#,
    )
    .unwrap();
    let err = load_err(tmp.path());
    assert!(matches!(err, EmbedError::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("1_Pooling"), "{err}");
}

#[test]
fn corrupt_sentence_bert_config_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("config.json"), MINILM_CONFIG).unwrap();
    fs::write(tmp.path().join("sentence_bert_config.json"), r#"{"max_seq_length": "long"}"#).unwrap();
    let err = load_err(tmp.path());
    assert!(matches!(err, EmbedError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("sentence_bert_config.json"), "{err}");
}
