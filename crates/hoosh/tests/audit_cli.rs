//! `hoosh audit` against the chain a real `hoosh serve` wrote: verified
//! offline from the data directory and from a JSONL export with a checkpoint
//! kept aside; every kind of tampering is caught and named, with exit status 1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use hoosh_audit::ChainStore;
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
    // The same chain found through the config that names its data directory.
    let named = dir.join("named.toml");
    std::fs::write(&named, format!("[local]\nenabled = false\n[governance]\ndata_dir = {d:?}\n")).unwrap();
    // (HOOSH_DATA_DIR, like --data-dir, would win over the config: not set here.)
    let by_config = Command::new(BIN)
        .args(["audit", "verify", "--config", named.to_str().unwrap()])
        .env("HOOSH_AUDIT_KEY", AUDIT_KEY)
        .env_remove("HOOSH_DATA_DIR")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&by_config.stdout);
    assert!(by_config.status.success() && stdout == out, "{stdout}{}", String::from_utf8_lossy(&by_config.stderr));
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

/// `hoosh audit ARGS` → (exit success, stdout, stderr).
fn audit_full(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).arg("audit").args(args).env("HOOSH_AUDIT_KEY", AUDIT_KEY).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a gateway on `data` (audit key from the environment), has it write a few entries, stops it.
async fn serve_a_while(dir: &Path, data: &Path, requests: usize) {
    let mock = hoosh_testkit::openai::start().await;
    let config = dir.join("hoosh.toml");
    std::fs::write(
        &config,
        format!(
            "[local]\nenabled = false\n[[providers]]\nname = \"up\"\ntype = \"openai\"\nbase_url = \"{}/v1\"\nmodels = [\"*\"]\n",
            mock.url()
        ),
    )
    .unwrap();
    let served = Served::start_with(
        config.to_str().unwrap(),
        &["--data-dir", data.to_str().unwrap()],
        &[("HOOSH_AUDIT_KEY", AUDIT_KEY)],
    );
    let client = reqwest::Client::new();
    for i in 0..requests {
        let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": format!("hi {i}")}]});
        let r = client.post(format!("{}/v1/chat/completions", served.url)).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    assert!(served.terminate().success());
}

/// A copy of the data directory's audit files, to attack.
fn copy_chain(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().starts_with("audit.db") {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

fn all_entries(store: &hoosh_audit::AuditStore) -> Vec<hoosh_audit::Entry> {
    let mut out = Vec::new();
    store
        .range(0, &mut |e| {
            out.push(e);
            true
        })
        .unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_kept_off_the_host_catches_a_cut_tail_and_a_rewrite_by_the_key_holder() {
    let dir = temp_dir();
    let data = dir.join("data");
    serve_a_while(&dir, &data, 3).await;
    let d = data.to_str().unwrap();

    // Take a checkpoint and ship it "elsewhere".
    let shipped = dir.join("offsite").join("cp-1.json");
    std::fs::create_dir_all(shipped.parent().unwrap()).unwrap();
    let (ok, stdout, stderr) = audit_full(&["checkpoint", "--data-dir", d, "--out", shipped.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stdout.is_empty() && stderr.contains("written to"), "{stderr}");
    let cp = hoosh_audit::Checkpoint::from_json(std::fs::read_to_string(&shipped).unwrap().trim()).unwrap();
    let store = hoosh_audit::AuditStore::open(data.join("audit.db")).unwrap();
    let head = store.head().unwrap().unwrap();
    assert_eq!((cp.seq, cp.head_hash), (head.seq, head.hash), "the checkpoint is of the head as it is now");
    assert!(cp.signature_valid(&hoosh_audit::AuditKey::parse(AUDIT_KEY.as_bytes(), "t").unwrap()));
    drop(store);
    let cp_arg = shipped.to_str().unwrap();

    // The gateway runs on: the chain extends the checkpoint.
    serve_a_while(&dir, &data, 2).await;
    let (ok, out) = audit(&["verify", "--data-dir", d, "--checkpoint", cp_arg]);
    assert!(ok && out.contains(&format!("given checkpoint at seq {}", cp.seq)), "{out}");

    // Attack 1: the tail cut off at (and before) the checkpoint, stored checkpoints deleted with it.
    let cut = dir.join("cut");
    copy_chain(&data, &cut);
    let conn = rusqlite::Connection::open(cut.join("audit.db")).unwrap();
    conn.execute("DELETE FROM audit WHERE seq >= ?1", [cp.seq as i64 - 1]).unwrap();
    conn.execute("DELETE FROM checkpoints", []).unwrap();
    drop(conn);
    let c = cut.to_str().unwrap();
    let (ok, out) = audit(&["verify", "--data-dir", c]);
    assert!(ok, "on its own the shortened chain is a chain: {out}");
    let (ok, out) = audit(&["verify", "--data-dir", c, "--checkpoint", cp_arg]);
    assert!(!ok && out.contains("[truncated_after_checkpoint]"), "{out}");

    // Attack 2: someone holding the key (root on the host) rewrites an early
    // entry and re-seals everything after it, checkpoints included.
    let rewritten = dir.join("rewritten");
    copy_chain(&data, &rewritten);
    let key = hoosh_audit::AuditKey::parse(AUDIT_KEY.as_bytes(), "t").unwrap();
    let store = hoosh_audit::AuditStore::open(rewritten.join("audit.db")).unwrap();
    let entries = all_entries(&store);
    let victim = entries.iter().position(|e| e.kind == "inference").unwrap();
    let mut state = hoosh_audit::ChainState::after(&entries[victim - 1]);
    let mut forged = Vec::new();
    for (i, e) in entries[victim..].iter().enumerate() {
        let mut draft = hoosh_audit::Draft {
            kind: e.kind.clone(),
            actor: e.actor.clone(),
            request_id: e.request_id.clone(),
            data: e.data.clone(),
        };
        if i == 0 {
            draft.data.insert("completion_tokens".into(), json!(0));
        }
        forged.push(hoosh_audit::seal(&mut state, draft, e.ts_ms, &key));
    }
    drop(store);
    let conn = rusqlite::Connection::open(rewritten.join("audit.db")).unwrap();
    for e in &forged {
        conn.execute("UPDATE audit SET json = ?1 WHERE seq = ?2", rusqlite::params![e.to_json(), e.seq as i64])
            .unwrap();
    }
    let fake_cp = hoosh_audit::Checkpoint::sign(forged.last().unwrap().seq, forged.last().unwrap().hash, 0, &key);
    conn.execute("DELETE FROM checkpoints", []).unwrap();
    conn.execute(
        "INSERT INTO checkpoints (seq, json) VALUES (?1, ?2)",
        rusqlite::params![fake_cp.seq as i64, fake_cp.to_json()],
    )
    .unwrap();
    drop(conn);
    let r = rewritten.to_str().unwrap();
    let (ok, out) = audit(&["verify", "--data-dir", r]);
    assert!(ok, "with the key and the store alone, a rewrite is undetectable: {out}");
    let (ok, out) = audit(&["verify", "--data-dir", r, "--checkpoint", cp_arg]);
    assert!(!ok && out.contains("[checkpoint_mismatch]"), "{out}");
    // The Python verifier, given the same shipped checkpoint, agrees.
    let export = dir.join("rewritten.jsonl");
    assert!(audit(&["export", "--data-dir", r, "-o", export.to_str().unwrap()]).0);
    let key_file = dir.join("audit.key");
    std::fs::write(&key_file, AUDIT_KEY).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/verify_audit.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&export)
        .arg("--key-file")
        .arg(&key_file)
        .arg("--checkpoint")
        .arg(&shipped)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && stdout.contains("checkpoint_mismatch"), "{stdout}");

    // `checkpoint` never signs a chain that does not verify.
    let tampered = dir.join("tampered");
    copy_chain(&data, &tampered);
    let conn = rusqlite::Connection::open(tampered.join("audit.db")).unwrap();
    conn.execute(
        "UPDATE audit SET json = replace(json, '\"status\":200', '\"status\":201') WHERE seq = ?1",
        [entries[victim].seq as i64],
    )
    .unwrap();
    drop(conn);
    let refused = dir.join("offsite").join("cp-2.json");
    let (ok, _, stderr) =
        audit_full(&["checkpoint", "--data-dir", tampered.to_str().unwrap(), "--out", refused.to_str().unwrap()]);
    assert!(!ok && stderr.contains("[modified]"), "{stderr}");
    assert!(!refused.exists(), "no checkpoint written for a chain that does not verify");
    let _ = std::fs::remove_dir_all(&dir);
}
