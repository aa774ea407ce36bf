//! `docs/verify_audit.py` — the verifier written from the format document —
//! agrees with this crate on every chain: one the writer sealed into a real
//! SQLite file holding awkward values (floats at every exponent, negative
//! zero, 64-bit integers, control characters, non-ASCII, astral characters
//! and keys whose order differs between UTF-8 and UTF-16), the same rows as
//! another JSON writer would re-encode them, and each kind of tampering.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use hoosh_audit::{AuditKey, AuditLog, AuditOptions, AuditStore, ChainState, Checkpoint, Draft, Entry, KeyChange};
use serde_json::{Value, json};

const OLD: &str = "0101010101010101010101010101010101010101010101010101010101010101";
const NEW: &str = "0202020202020202020202020202020202020202020202020202020202020202";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/verify_audit.py")
}

struct Fixture {
    dir: tempfile::TempDir,
    lines: Vec<String>,
    old: AuditKey,
    new: AuditKey,
    checkpoint: Checkpoint,
}

impl Fixture {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn keys(&self) -> Vec<AuditKey> {
        vec![self.old.clone(), self.new.clone()]
    }

    fn write(&self, name: &str, lines: &[String]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        p
    }

    /// (valid, problem seq, reason, key changes) from the Rust verifier.
    fn rust(&self, file: &Path, cp: Option<&Checkpoint>) -> (bool, Option<(u64, String)>, Value) {
        let report =
            hoosh_audit::verify_jsonl(std::io::BufReader::new(std::fs::File::open(file).unwrap()), &self.keys(), cp)
                .unwrap();
        let changes = report.key_changes.iter().map(change_json).collect::<Vec<_>>();
        (report.is_ok(), report.problem.map(|p| (p.seq, p.reason.code().to_owned())), Value::from(changes))
    }

    /// The same from the Python verifier.
    fn python(&self, file: &Path, cp: Option<&Checkpoint>) -> (bool, Option<(u64, String)>, Value) {
        let mut cmd = Command::new("python3");
        cmd.arg(script()).arg(file).arg("--json");
        cmd.arg("--key-file").arg(self.path("old.key")).arg("--key-file").arg(self.path("new.key"));
        if let Some(cp) = cp {
            let p = self.path("cp.json");
            std::fs::write(&p, cp.to_json()).unwrap();
            cmd.arg("--checkpoint").arg(p);
        }
        let out = cmd.output().expect("python3 runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(text.trim())
            .unwrap_or_else(|e| panic!("{e}: {text} {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(out.status.success(), v["valid"] == true, "exit status agrees with the report");
        let problem =
            v["problem"].as_object().map(|p| (p["seq"].as_u64().unwrap(), p["reason"].as_str().unwrap().to_owned()));
        (v["valid"] == true, problem, v["key_changes"].clone())
    }

    /// Both verifiers give the same answer; returns it.
    fn agree(&self, name: &str, lines: &[String], cp: Option<&Checkpoint>) -> (bool, Option<(u64, String)>) {
        let file = self.write(name, lines);
        let rust = self.rust(&file, cp);
        assert_eq!(rust, self.python(&file, cp), "{name}: Rust and Python disagree");
        (rust.0, rust.1)
    }
}

fn change_json(c: &KeyChange) -> Value {
    json!({"seq": c.seq, "from": c.from_key_id, "to": c.to_key_id, "signed_by_old_key": c.signed_by_old_key})
}

/// Doubles of every kind: edge cases, then pseudo-random bit patterns.
#[expect(clippy::excessive_precision, reason = "written as a client would send them, not as the nearest double")]
fn doubles() -> Vec<f64> {
    let mut out = vec![
        0.0,
        -0.0,
        1.0,
        -1.5,
        0.1,
        1e-5,
        1.5e-5,
        1e-6,
        1e-7,
        123.456,
        1e15,
        1e16,
        9007199254740993.0,
        1.8446744073709552e19,
        1e300,
        -1e-300,
        f64::MAX,
        f64::MIN,
        f64::MIN_POSITIVE,
        f64::EPSILON,
        5e-324,
        -1052730259603333.25,
    ];
    let mut x: u64 = 0x853c_49e6_748f_ea9b;
    while out.len() < 3000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let f = if out.len() % 2 == 0 {
            f64::from_bits(x)
        } else {
            (x % 100_000) as f64 * 10f64.powi((x >> 40) as i32 % 30 - 15)
        };
        if f.is_finite() {
            out.push(f);
        }
    }
    out
}

fn strings() -> Value {
    json!([
        "plain",
        "quote \" backslash \\ slash /",
        "\n\r\t\u{8}\u{c}",
        "\u{0}\u{1}\u{1f}\u{7f}",
        "é ü ß 中文 עברית",
        "emoji 😀 👩‍👩‍👧 and \u{10ffff}",
        "line sep \u{2028} para sep \u{2029}",
        "\u{feff}bom",
    ])
}

/// A real chain in SQLite: awkward values, a rotation, a prune; exported as JSONL.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("old.key"), OLD).unwrap();
    std::fs::write(dir.path().join("new.key"), NEW).unwrap();
    let old = AuditKey::parse(OLD.as_bytes(), "old").unwrap();
    let new = AuditKey::parse(NEW.as_bytes(), "new").unwrap();
    let store = Arc::new(AuditStore::open(dir.path().join("audit.db")).unwrap());
    let time = Arc::new(std::sync::atomic::AtomicI64::new(1_000));
    let clock: hoosh_audit::Clock = {
        let time = Arc::clone(&time);
        Arc::new(move || time.load(std::sync::atomic::Ordering::SeqCst))
    };
    let log = AuditLog::open_with(store.clone(), old.clone(), clock, AuditOptions::default()).unwrap();
    log.record(Draft::new("admin.action").field("doomed", true));
    log.flush();
    time.store(2_000, std::sync::atomic::Ordering::SeqCst);
    for (i, chunk) in doubles().chunks(250).enumerate() {
        log.record(Draft::new("admin.action").actor("key_é").request_id(format!("req-{i}")).field("floats", chunk));
    }
    log.record(
        Draft::new("admin.action")
            .field("ints", json!([0, -0, 1, -1, 9007199254740993u64, u64::MAX, i64::MIN, i64::MAX]))
            .field("strings", strings())
            // Code point (and UTF-8) order: "z" < "é" < "\u{ffff}" < "😀"; UTF-16 order would put "😀" first.
            .field("keys", json!({"😀": 1, "\u{ffff}": 2, "é": 3, "z": 4, "": 5, "A": 6, "a": 7}))
            .field("nested", json!({"b": [{"y": null, "x": [1.5, "two", false]}], "a": {}})),
    );
    log.rotate(new.clone()).unwrap();
    log.record(Draft::new("budget.set").field("usd", 12.5).field("tiny", 1e-9).field("title", "Ünïcödé 😀"));
    assert!(log.prune_before(1_500).unwrap().is_some(), "the first event is pruned behind a record");
    log.record(Draft::new("admin.action").field("after_prune", -0.0));
    let checkpoint = log.checkpoint_now().unwrap().unwrap();
    log.close();
    let mut out = Vec::new();
    hoosh_audit::export_jsonl(&*store, i64::MIN, &mut out).unwrap();
    let lines = String::from_utf8(out).unwrap().lines().map(str::to_owned).collect();
    Fixture { dir, lines, old, new, checkpoint }
}

fn entry(line: &str) -> Entry {
    serde_json::from_str(line).unwrap()
}

/// Re-signs `e` (after an edit) as a forger holding `key` would.
fn resign(mut e: Entry, key: &AuditKey) -> String {
    e.key_id = key.id().to_owned();
    e.hash = e.compute_hash();
    e.sig = key.sign(&e.hash);
    e.to_json()
}

#[test]
fn the_python_verifier_accepts_what_the_server_wrote_and_agrees_on_every_value() {
    let f = fixture();
    let (valid, problem) = f.agree("all.jsonl", &f.lines, Some(&f.checkpoint));
    assert!(valid, "{problem:?}");
    let (_, _, changes) = f.python(&f.path("all.jsonl"), None);
    assert_eq!(changes, json!([{"seq": 16, "from": f.old.id(), "to": f.new.id(), "signed_by_old_key": true}]));
    // The chain starts after a prune, so the Python side checked the prune record too.
    assert_eq!(entry(&f.lines[0]).seq, 3);

    // Python's own canonical bytes for every entry are the bytes that were hashed.
    let code = "import sys; sys.path.insert(0, sys.argv[1]); import verify_audit as v\n\
                for line in open(sys.argv[2], encoding='utf-8'):\n    \
                    sys.stdout.buffer.write(v.parse_entry(line)['_canonical'] + b'\\n')";
    let out = Command::new("python3")
        .args(["-c", code])
        .arg(script().parent().unwrap())
        .arg(f.path("all.jsonl"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let python: Vec<&[u8]> = out.stdout.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    assert_eq!(python.len(), f.lines.len());
    for (line, py) in f.lines.iter().zip(python) {
        let rust = hoosh_audit::canonical_bytes(&entry(line));
        assert_eq!(String::from_utf8_lossy(&rust), String::from_utf8_lossy(py));
    }
}

#[test]
fn rows_re_encoded_by_another_json_writer_still_verify_in_both() {
    let f = fixture();
    // Python's default json.dumps: `1e-05`, `1e+16`, spaces, \u escapes for
    // everything non-ASCII (surrogate pairs for emoji), keys in another order.
    let code = "import json, sys\n\
                for line in open(sys.argv[1], encoding='utf-8'):\n    \
                    e = json.loads(line)\n    \
                    print(json.dumps(dict(reversed(list(e.items())))))";
    let original = f.write("orig.jsonl", &f.lines);
    let out = Command::new("python3").args(["-c", code]).arg(&original).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reencoded: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect();
    assert!(reencoded.iter().any(|l| l.contains("1e-05")) && reencoded.iter().any(|l| l.contains("\\ud83d\\ude00")));
    assert_ne!(reencoded, f.lines);
    assert_eq!(f.agree("reencoded.jsonl", &reencoded, Some(&f.checkpoint)), (true, None));
}

#[test]
fn every_kind_of_tampering_fails_the_same_way_in_both() {
    let f = fixture();
    let lines = &f.lines;
    let n = lines.len();
    let cp = Some(&f.checkpoint);
    let mut cases: Vec<(&str, Vec<String>, &str)> = Vec::new();

    // A float moved by one unit in the last place: the stored text changes in
    // its 17th digit only.
    let mut e = entry(&lines[3]);
    let floats = e.data["floats"].as_array_mut().unwrap();
    let i = floats.iter().position(|v| v.as_f64().unwrap().abs() > 1.0).unwrap();
    let f0 = floats[i].as_f64().unwrap();
    floats[i] = json!(f64::from_bits(f0.to_bits() + 1));
    let mut t = lines.clone();
    t[3] = e.to_json();
    cases.push(("one ulp", t, "modified"));

    // -0.0 written as 0.0.
    let mut t = lines.clone();
    let last_event = n - 2;
    assert!(t[last_event].contains("\"after_prune\":-0.0"), "{}", t[last_event]);
    t[last_event] = t[last_event].replace("\"after_prune\":-0.0", "\"after_prune\":0.0");
    cases.push(("negative zero", t, "modified"));

    // One character of a string: an emoji swapped for another.
    let mut t = lines.clone();
    let with_emoji = t.iter().position(|l| l.contains("emoji 😀")).unwrap();
    t[with_emoji] = t[with_emoji].replace("emoji 😀", "emoji 😁");
    cases.push(("emoji", t, "modified"));

    // An integer past 2^53 changed by one (a double could not tell).
    let mut t = lines.clone();
    t[with_emoji] = t[with_emoji].replace("9007199254740993", "9007199254740992");
    cases.push(("big integer", t, "modified"));

    // An unknown field, a missing one, a value of the wrong type.
    let mut t = lines.clone();
    t[2] = t[2].replacen('{', "{\"extra\":1,", 1);
    cases.push(("unknown field", t, "modified"));
    let mut t = lines.clone();
    t[2] = t[2].replace("\"seq\":", "\"seq\":1.0,\"x\":");
    cases.push(("float seq", t, "modified"));

    let mut t = lines.clone();
    let mut e = entry(&t[4]);
    e.sig = [0; 32];
    t[4] = e.to_json();
    cases.push(("zeroed signature", t, "bad_signature"));

    let mut t = lines.clone();
    t.remove(5);
    cases.push(("deleted", t, "missing_sequence"));
    let mut t = lines.clone();
    t.swap(5, 6);
    cases.push(("swapped", t, "reordered"));
    let mut t = lines.clone();
    t.insert(7, lines[5].clone());
    cases.push(("replayed", t, "replayed"));
    cases.push(("truncated", lines[..n - 2].to_vec(), "truncated_after_checkpoint"));
    cases.push(("front cut past the prune record", lines[1..].to_vec(), "missing_sequence"));

    // The retired key signs an edit after its rotation.
    let rotate = lines.iter().position(|l| l.contains("\"kind\":\"chain.rotate\"")).unwrap();
    let mut t = lines.clone();
    let mut e = entry(&t[rotate + 1]);
    e.data.insert("usd".into(), json!(0.01));
    t[rotate + 1] = resign(e, &f.old);
    cases.push(("retired key edits", t, "wrong_key"));

    // The retired key appends after the end, properly linked.
    let head = entry(&lines[n - 1]);
    let mut state = ChainState::after(&head);
    let forged = hoosh_audit::seal(&mut state, Draft::new("admin.action").field("x", 1), head.ts_ms, &f.old);
    let mut t = lines.clone();
    t.push(forged.to_json());
    cases.push(("retired key appends", t, "wrong_key"));

    // A `chain.key_changed` claiming the way back to the retired key.
    let change = Draft::new("chain.key_changed").field("previous_key_id", f.new.id()).field("new_key_id", f.old.id());
    let mut state = ChainState::after(&head);
    let forged = hoosh_audit::seal(&mut state, change, head.ts_ms, &f.old);
    let mut t = lines.clone();
    t.push(forged.to_json());
    cases.push(("unsigned change back", t, "wrong_key"));

    // Not JSON at all; a NaN; a lone surrogate; nesting beyond what serde_json reads.
    let mut t = lines.clone();
    t[3] = "{not json".into();
    cases.push(("garbage", t, "modified"));
    let mut t = lines.clone();
    t[3] = t[3].replacen("\"floats\":[", "\"floats\":[NaN,", 1);
    cases.push(("NaN", t, "modified"));
    let mut t = lines.clone();
    t[3] = t[3].replacen("\"floats\":[", "\"floats\":[\"\\ud800\",", 1);
    cases.push(("lone surrogate", t, "modified"));
    let mut t = lines.clone();
    t[3] = t[3].replacen("\"floats\":[", &format!("\"floats\":[{}{},", "[".repeat(130), "]".repeat(130)), 1);
    cases.push(("too deep", t, "modified"));

    for (name, t, want) in &cases {
        let (valid, problem) = f.agree(&format!("{}.jsonl", name.replace(' ', "_")), t, cp);
        assert!(!valid, "{name}");
        assert_eq!(problem.as_ref().map(|p| p.1.as_str()), Some(*want), "{name}: {problem:?}");
    }

    // A checkpoint signed by the retired key at a seq past the rotation.
    let forged_cp = Checkpoint::sign(f.checkpoint.seq, f.checkpoint.head_hash, 0, &f.old);
    let (valid, problem) = f.agree("cp_retired.jsonl", lines, Some(&forged_cp));
    assert!(!valid && problem.unwrap().1 == "checkpoint_mismatch");
}

#[test]
fn a_validly_signed_entry_too_deep_to_read_fails_in_both() {
    // The writer never seals one (see `chain::MAX_DATA_DEPTH`); a forger with
    // the key could, and both verifiers must refuse it alike.
    let f = fixture();
    let head = entry(&f.lines[f.lines.len() - 1]);
    let mut state = ChainState::after(&head);
    let mut forged = hoosh_audit::seal(&mut state, Draft::new("x"), head.ts_ms, &f.new);
    let deep = (0..130).fold(json!(1), |v, _| json!([v]));
    forged.data.insert("deep".into(), deep);
    let mut t = f.lines.clone();
    t.push(resign(forged, &f.new));
    let (valid, problem) = f.agree("deep.jsonl", &t, None);
    assert!(!valid);
    assert_eq!(problem.unwrap().1, "modified");
}
