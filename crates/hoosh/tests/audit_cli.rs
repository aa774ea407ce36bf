//! `hoosh audit` against the chain a real `hoosh serve` wrote: verified
//! offline from the data directory and from a JSONL export with a checkpoint
//! kept aside; every kind of tampering is caught and named, with exit status 1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

mod support;

use support::{BIN, Served};

const AUDIT_KEY: &str = "5ec2e7a1c0ffee00112233445566778899aabbccddeeff00112233445566778899";

fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("hoosh-audit-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `hoosh audit ARGS` → (exit success, stdout).
fn audit(args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN).arg("audit").args(args).env("HOOSH_AUDIT_KEY", AUDIT_KEY).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `verify --json` of a JSONL file with the checkpoint → (valid, reason code).
fn verify_file(file: &Path, checkpoint: &Path) -> (bool, String) {
    let (ok, out) =
        audit(&["verify", "--file", file.to_str().unwrap(), "--checkpoint", checkpoint.to_str().unwrap(), "--json"]);
    let v: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(ok, v["valid"] == true);
    (ok, v["problem"]["reason"].as_str().unwrap_or("").to_owned())
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_a_server_wrote_verifies_offline_and_tampering_is_named() {
    let mock = hoosh_testkit::openai::start().await;
    let dir = temp_dir();
    let config = dir.join("hoosh.toml");
    std::fs::write(
        &config,
        format!(
            "[local]\nenabled = false\n[[providers]]\nname = \"up\"\ntype = \"openai\"\nbase_url = \"{}/v1\"\nmodels = [\"*\"]\n",
            mock.url()
        ),
    )
    .unwrap();
    let data = dir.join("data");
    let served = Served::start_with(
        config.to_str().unwrap(),
        &["--data-dir", data.to_str().unwrap()],
        &[("HOOSH_AUDIT_KEY", AUDIT_KEY)],
    );
    let client = reqwest::Client::new();
    for i in 0..5 {
        let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": format!("hello {i}")}]});
        let r = client.post(format!("{}/v1/chat/completions", served.url)).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    assert!(served.terminate().success());

    // The store as it is: valid, with the checkpoint written at shutdown.
    let d = data.to_str().unwrap();
    let (ok, out) = audit(&["verify", "--data-dir", d]);
    assert!(ok, "{out}");
    assert!(out.starts_with("OK: ") && out.contains("stored checkpoint"), "{out}");
    let (ok, cp) = audit(&["checkpoint", "--data-dir", d]);
    assert!(ok);
    let cp_path = dir.join("checkpoint.json");
    std::fs::write(&cp_path, &cp).unwrap();
    let export = dir.join("all.jsonl");
    let (ok, _) = audit(&["export", "--data-dir", d, "-o", export.to_str().unwrap()]);
    assert!(ok);
    let lines: Vec<String> = std::fs::read_to_string(&export).unwrap().lines().map(str::to_owned).collect();
    let kinds: Vec<String> =
        lines.iter().map(|l| serde_json::from_str::<Value>(l).unwrap()["kind"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds.first().map(String::as_str), Some("chain.start"));
    assert_eq!(kinds.last().map(String::as_str), Some("chain.stop"));
    assert_eq!(kinds.iter().filter(|k| *k == "inference").count(), 5, "{kinds:?}");
    assert_eq!(verify_file(&export, &cp_path), (true, String::new()));
    // The independent verifier in docs/ (Python, standard library) agrees.
    let key_file = dir.join("audit.key");
    std::fs::write(&key_file, AUDIT_KEY).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/verify_audit.py");
    let python = |file: &Path| {
        let out = Command::new("python3")
            .arg(&script)
            .arg(file)
            .arg("--key-file")
            .arg(&key_file)
            .arg("--checkpoint")
            .arg(&cp_path)
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (ok, out) = python(&export);
    assert!(ok, "{out}");

    // Each tampering, on a copy of the export.
    let t = dir.join("tampered.jsonl");
    let mut modified = lines.clone();
    modified[2] = modified[2].replace("\"status\":200", "\"status\":201");
    assert_ne!(modified[2], lines[2]);
    write_lines(&t, &modified);
    assert_eq!(verify_file(&t, &cp_path), (false, "modified".into()));
    let (ok, out) = python(&t);
    assert!(!ok && out.contains("modified"), "{out}");

    let mut deleted = lines.clone();
    deleted.remove(2);
    write_lines(&t, &deleted);
    assert_eq!(verify_file(&t, &cp_path), (false, "missing_sequence".into()));

    let mut swapped = lines.clone();
    swapped.swap(2, 3);
    write_lines(&t, &swapped);
    assert_eq!(verify_file(&t, &cp_path), (false, "reordered".into()));

    let mut replayed = lines.clone();
    replayed.insert(4, lines[2].clone());
    write_lines(&t, &replayed);
    assert_eq!(verify_file(&t, &cp_path), (false, "replayed".into()));

    write_lines(&t, &lines[..lines.len() - 2]);
    assert_eq!(verify_file(&t, &cp_path), (false, "truncated_after_checkpoint".into()));

    let mut forged: Value = serde_json::from_str(&lines[2]).unwrap();
    forged["sig"] = json!("00".repeat(32));
    let mut bad_sig = lines.clone();
    bad_sig[2] = forged.to_string();
    write_lines(&t, &bad_sig);
    assert_eq!(verify_file(&t, &cp_path), (false, "bad_signature".into()));

    // The wrong key: nothing verifies.
    let wrong = dir.join("wrong.key");
    std::fs::write(&wrong, "77".repeat(32)).unwrap();
    let (ok, out) = audit(&["verify", "--file", export.to_str().unwrap(), "--key-file", wrong.to_str().unwrap()]);
    assert!(!ok && out.contains("[unknown_key]"), "{out}");

    // Editing the store itself is caught from the data directory too.
    let conn = rusqlite::Connection::open(data.join("audit.db")).unwrap();
    let changed = conn
        .execute(
            "UPDATE audit SET json = replace(json, '\"completion_tokens\":', '\"completion_tokens\":1') WHERE seq = 3",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(conn);
    let (ok, out) = audit(&["verify", "--data-dir", d]);
    assert!(!ok && out.starts_with("FAILED at seq 3") && out.contains("[modified]"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
