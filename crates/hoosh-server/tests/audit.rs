//! The audit chain through the real gateway over HTTP: every kind of event
//! becomes an entry (inference, denial, auth failure, admin change), no
//! entry holds prompt text or a key unless asked, the chain verifies through
//! `/admin/audit/verify`, pages and filters, prunes behind a signed record.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use hoosh_audit::ChainStore;
use hoosh_testkit::server::MockServer;
use serde_json::{Value, json};
use support::*;

const SECRET_PROMPT: &str = "my-secret-prompt-text-4711";

struct Audited {
    gw: Gateway,
    master: String,
    dir: PathBuf,
    _mock: MockServer,
}

fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("hoosh-audit-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

impl Audited {
    async fn start(edit: impl FnOnce(&mut hoosh_core::config::Config)) -> Audited {
        let mock = hoosh_testkit::openai::start().await;
        let mut c = config(vec![openai("up", &mock.url())]);
        let master = format!("hk-test-master-{}", uuid::Uuid::new_v4().simple());
        c.governance.master_key_env = format!("HOOSH_TEST_UNSET_{}", uuid::Uuid::new_v4().simple());
        c.governance.master_key_file = Some(secret_file(&master));
        c.routing.max_retries = 0;
        let dir = temp_dir();
        c.audit.key_file = Some(secret_file(&"ab".repeat(32)));
        edit(&mut c);
        Audited { gw: Gateway::start_audited(c, &dir).await, master, dir, _mock: mock }
    }

    fn audit_key(&self) -> hoosh_audit::AuditKey {
        self.gw.state.audit.keys()[0].clone()
    }

    fn db(&self) -> PathBuf {
        self.dir.join("audit.db")
    }

    async fn call(&self, method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
        call(&self.gw, method, path, key, body).await
    }

    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(method, path, Some(&self.master.clone()), body).await
    }

    /// Every entry, after the ledger and the chain have caught up.
    async fn entries(&self) -> Vec<Value> {
        self.gw.state.gov.inner.ledger().flush();
        let mut out = Vec::new();
        let mut after = 0u64;
        loop {
            let (status, page) = self.admin("GET", &format!("/admin/audit?after_seq={after}&limit=1000"), None).await;
            assert_eq!(status, 200, "{page}");
            out.extend(page["data"].as_array().unwrap().iter().cloned());
            match page["next_after_seq"].as_u64() {
                Some(n) => after = n,
                None => return out,
            }
        }
    }
}

impl Drop for Audited {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn of_kind<'a>(entries: &'a [Value], kind: &str) -> Vec<&'a Value> {
    entries.iter().filter(|e| e["kind"] == kind).collect()
}

#[tokio::test]
async fn every_kind_of_event_is_an_entry_and_the_chain_verifies() {
    let a = Audited::start(|_| {}).await;
    // An admin change: a key limited to one model.
    let (status, created) =
        a.admin("POST", "/admin/keys", Some(json!({"name": "alice", "models": ["gpt-4o-mini"]}))).await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let key_id = created["id"].as_str().unwrap().to_owned();
    // A served request, one refused for its model, one with a wrong key.
    let (status, body) =
        a.call("POST", "/v1/chat/completions", Some(&key), Some(chat_body("gpt-4o-mini", SECRET_PROMPT))).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = a.call("POST", "/v1/chat/completions", Some(&key), Some(chat_body("gpt-4o", "hi"))).await;
    assert_eq!(status, 403);
    let wrong = "hk-wrongwrongwrongwrongwrongwrongwrongwrong";
    let (status, _) = a.call("POST", "/v1/chat/completions", Some(wrong), Some(chat_body("gpt-4o-mini", "hi"))).await;
    assert_eq!(status, 401);
    // A refused admin change is recorded too.
    let (status, _) = a.call("POST", "/admin/keys", Some(&key), Some(json!({"name": "mallory"}))).await;
    assert_eq!(status, 403);

    let entries = a.entries().await;
    assert_eq!(entries[0]["kind"], "chain.start");
    let created_entry = of_kind(&entries, "key.create");
    assert_eq!(created_entry.len(), 2, "{entries:#?}");
    assert_eq!(created_entry[0]["data"]["status"], 201);
    assert_eq!(created_entry[0]["data"]["body"]["name"], "alice");
    assert_eq!(created_entry[0]["actor"], "master");
    assert_eq!(created_entry[1]["data"]["status"], 403);
    assert_eq!(created_entry[1]["actor"], key_id.as_str());

    let served = of_kind(&entries, "inference");
    assert_eq!(served.len(), 1, "{entries:#?}");
    let s = &served[0]["data"];
    assert_eq!(served[0]["actor"], key_id.as_str());
    assert_eq!(
        (s["status"].as_u64(), s["provider"].as_str(), s["model"].as_str()),
        (Some(200), Some("up"), Some("gpt-4o-mini"))
    );
    assert!(s["prompt_tokens"].as_u64().unwrap() > 0 && s["completion_tokens"].as_u64().unwrap() > 0, "{s}");
    assert!(served[0]["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    assert!(s["ledger_id"].as_str().is_some_and(|id| id.len() == 36), "the ledger row's id: {s}");

    let denied = of_kind(&entries, "inference.denied");
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["data"]["reason"], "model_not_allowed");
    assert_eq!(denied[0]["data"]["model"], "gpt-4o");

    let failed = of_kind(&entries, "auth.failure");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["data"]["code"], "invalid_api_key");
    assert_eq!(failed[0]["data"]["credential_tag"], a.audit_key().credential_tag(wrong.as_bytes()));
    assert!(failed[0]["data"].get("key_prefix").is_none());
    assert_eq!(failed[0]["data"]["client"], "127.0.0.1");

    // Nothing holds the prompt, the new key's plaintext or the wrong key.
    let all = serde_json::to_string(&entries).unwrap();
    assert!(!all.contains(SECRET_PROMPT) && !all.contains(&key) && !all.contains(wrong));

    let (status, report) = a.admin("GET", "/admin/audit/verify", None).await;
    assert_eq!(status, 200);
    assert_eq!(report["valid"], true, "{report}");
    assert!(report["entries_checked"].as_u64().unwrap() >= entries.len() as u64);
}

#[tokio::test]
async fn content_is_recorded_only_when_the_operator_opts_in() {
    let a = Audited::start(|c| c.audit.include_content = true).await;
    let (status, _) = a
        .call("POST", "/v1/chat/completions", Some(&a.master.clone()), Some(chat_body("gpt-4o-mini", SECRET_PROMPT)))
        .await;
    assert_eq!(status, 200);
    let entries = a.entries().await;
    let content = of_kind(&entries, "inference.content");
    assert_eq!(content.len(), 1);
    assert_eq!(content[0]["data"]["messages"][0]["content"], SECRET_PROMPT);
    let served = of_kind(&entries, "inference");
    assert_eq!(served[0]["request_id"], content[0]["request_id"], "both entries name the same request");
}

#[tokio::test]
async fn reading_filters_pages_and_needs_the_admin_scope() {
    let a = Audited::start(|_| {}).await;
    for i in 0..5 {
        let (status, _) = a.admin("POST", "/admin/teams", Some(json!({"name": format!("team{i}")}))).await;
        assert_eq!(status, 201);
    }
    let (_, first) = a.admin("GET", "/admin/audit?kind=team.&limit=2", None).await;
    let data = first["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert!(data.iter().all(|e| e["kind"] == "team.create"));
    let next = first["next_after_seq"].as_u64().unwrap();
    let (_, rest) = a.admin("GET", &format!("/admin/audit?kind=team.&after_seq={next}"), None).await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 3);
    assert!(rest["next_after_seq"].is_null());
    // Edges of `limit`, and unknown parameters.
    assert_eq!(a.admin("GET", "/admin/audit?limit=1000", None).await.0, 200);
    for bad in ["limit=0", "limit=1001", "limit=x", "after_seq=-1", "from=yesterday", "kinds=x"] {
        let (status, body) = a.admin("GET", &format!("/admin/audit?{bad}"), None).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    // A key without the admin scope sees nothing.
    let (_, k) = a.admin("POST", "/admin/keys", Some(json!({"name": "reader", "scopes": ["read_usage"]}))).await;
    let (status, _) = a.call("GET", "/admin/audit", Some(k["key"].as_str().unwrap()), None).await;
    assert_eq!(status, 403);
    let (status, _) = a.call("GET", "/admin/audit/verify", None, None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_checkpoint_is_served_and_pruning_leaves_a_verifiable_chain() {
    let a = Audited::start(|c| c.audit.checkpoint_every = 3).await;
    for i in 0..4 {
        a.admin("POST", "/admin/teams", Some(json!({"name": format!("t{i}")}))).await;
    }
    a.entries().await;
    let (status, cp) = a.admin("GET", "/admin/audit/checkpoint", None).await;
    assert_eq!(status, 200, "{cp}");
    assert!(cp["seq"].as_u64().unwrap() >= 3, "{cp}");
    assert_eq!(cp["key_id"].as_str().unwrap().len(), 16);

    // Nothing is a day old yet; 0 days is refused.
    let (status, body) = a.admin("POST", "/admin/audit/prune", Some(json!({"older_than_days": 1}))).await;
    assert_eq!((status, &body["pruned"]), (200, &json!(false)), "{body}");
    let (status, _) = a.admin("POST", "/admin/audit/prune", Some(json!({"older_than_days": 0}))).await;
    assert_eq!(status, 400);
    let kinds = |entries: Vec<Value>| -> Vec<String> {
        entries.iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect()
    };
    assert!(kinds(a.entries().await).contains(&"audit.prune".to_owned()), "both prune calls are audited");
    // Prune everything sealed so far, straight through the log.
    let log = a.gw.state.audit.log().unwrap().clone();
    let cut = a.gw.state.now_ms() + 1;
    let record = tokio::task::spawn_blocking(move || log.prune_before(cut)).await.unwrap().unwrap().unwrap();
    assert!(record.first_kept_seq > 1);
    let (_, report) = a.admin("GET", "/admin/audit/verify", None).await;
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["first_seq"].as_u64(), Some(record.first_kept_seq));
    let after = kinds(a.entries().await);
    assert_eq!(after.first().map(String::as_str), Some("chain.prune"), "{after:?}");
}

#[tokio::test]
async fn a_restart_with_a_new_key_links_the_segments_with_a_signed_rotation() {
    let dir = temp_dir();
    let old_key = secret_file(&"01".repeat(32));
    let new_key = secret_file(&"02".repeat(32));
    let mut c = config(vec![]);
    c.audit.key_file = Some(old_key.clone());
    {
        let gw = Gateway::start_audited(c.clone(), &dir).await;
        gw.state.audit.record(hoosh_audit::Draft::new("admin.action").field("n", 1));
        gw.shutdown().await.unwrap();
    }
    c.audit.key_file = Some(new_key.clone());
    c.audit.previous_key_files = vec![old_key.clone()];
    let gw = Gateway::start_audited(c, &dir).await;
    let report = tokio::task::spawn_blocking({
        let st = gw.state.clone();
        move || st.audit.verify().unwrap().unwrap()
    })
    .await
    .unwrap();
    assert!(report.is_ok(), "{report:?}");
    let log = gw.state.audit.log().unwrap().clone();
    let mut kinds = Vec::new();
    log.store()
        .range(0, &mut |e| {
            kinds.push((e.kind.clone(), e.key_id.clone()));
            true
        })
        .unwrap();
    let rotate = kinds.iter().position(|(k, _)| k == "chain.rotate").expect("a rotation entry");
    let old_id = hoosh_audit::AuditKey::from_file(&old_key).unwrap().id().to_owned();
    let new_id = hoosh_audit::AuditKey::from_file(&new_key).unwrap().id().to_owned();
    assert_eq!(kinds[rotate].1, old_id, "the rotation is signed by the old key");
    assert!(kinds[rotate + 1..].iter().all(|(_, id)| *id == new_id), "{kinds:?}");
    // With only the new key, the old segment does not verify.
    let only_new = vec![hoosh_audit::AuditKey::from_file(&new_key).unwrap()];
    let r = hoosh_audit::verify_store(log.store().as_ref(), &only_new, None).unwrap();
    assert_eq!(r.problem.unwrap().reason, hoosh_audit::Reason::UnknownKey);
    // The retired key, leaked, appends a well-linked, validly signed entry: refused.
    let old = hoosh_audit::AuditKey::from_file(&old_key).unwrap();
    log.flush();
    let head = log.store().head().unwrap().unwrap();
    let mut state = hoosh_audit::ChainState::after(&head);
    let forged = hoosh_audit::seal(&mut state, hoosh_audit::Draft::new("key.delete").actor("master"), head.ts_ms, &old);
    // Written into the file behind the gateway's back.
    let file = hoosh_audit::AuditStore::open(gw.state.audit.db_path().unwrap()).unwrap();
    file.insert(&[forged]).unwrap();
    let report = tokio::task::spawn_blocking({
        let st = gw.state.clone();
        move || st.audit.verify().unwrap().unwrap()
    })
    .await
    .unwrap();
    let problem = report.problem.expect("the forgery is caught");
    assert_eq!((problem.seq, problem.reason.code()), (head.seq + 1, "wrong_key"));
}

/// A client whose connections come from `ip` (any 127.0.0.0/8 address is loopback).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder().local_address(ip.parse::<IpAddr>().unwrap()).build().unwrap()
}

/// Every entry in the store file, read directly (after the writer flushed).
fn stored(a: &Audited) -> Vec<hoosh_audit::Entry> {
    a.gw.state.audit.log().unwrap().flush();
    let store = hoosh_audit::AuditStore::open(a.db()).unwrap();
    let mut out = Vec::new();
    store
        .range(0, &mut |e| {
            out.push(e);
            true
        })
        .unwrap();
    out
}

#[tokio::test]
async fn a_near_miss_of_the_admin_key_leaves_no_part_of_it_in_the_audit_files() {
    let a = Audited::start(|_| {}).await;
    // The real admin key with its last character changed: a typo, or a guess that got close.
    let mut near_miss = a.master.clone();
    let last = near_miss.pop().unwrap();
    near_miss.push(if last == '0' { '1' } else { '0' });
    for _ in 0..2 {
        let (status, _) = a.call("GET", "/admin/keys", Some(&near_miss), None).await;
        assert_eq!(status, 401);
    }
    let (status, _) = a.call("GET", "/admin/keys", Some("hk-something-else-entirely-0000"), None).await;
    assert_eq!(status, 401);
    let entries = a.entries().await;
    let failed = of_kind(&entries, "auth.failure");
    assert_eq!(failed.len(), 3);
    let tag = a.audit_key().credential_tag(near_miss.as_bytes());
    assert_eq!(failed[0]["data"]["credential_tag"], tag.as_str());
    assert_eq!(failed[1]["data"]["credential_tag"], tag.as_str(), "the same guess twice is recognisable");
    assert_ne!(failed[2]["data"]["credential_tag"], tag.as_str());
    assert_eq!(tag.len(), 32);

    // Raw bytes of the database and its write-ahead log: no 8 characters of
    // the key that reach into its random part.
    let mut raw = std::fs::read(a.db()).unwrap();
    if let Ok(wal) = std::fs::read(a.dir.join("audit.db-wal")) {
        raw.extend(wal);
    }
    let random_from = "hk-test-master-".len();
    for start in random_from.saturating_sub(7)..=a.master.len() - 8 {
        for secret in [&a.master, &near_miss] {
            let window = &secret.as_bytes()[start..start + 8];
            assert!(
                !raw.windows(8).any(|w| w == window),
                "`{}` of the admin key is in the audit files",
                String::from_utf8_lossy(window)
            );
        }
    }
}

#[tokio::test]
async fn a_401_records_at_most_256_bytes_of_the_path() {
    let a = Audited::start(|_| {}).await;
    // 24 KiB of path: `é` percent-encoded, as a client must send it.
    let encoded = format!("/v1/{}", "%C3%A9".repeat(4000));
    let (status, _) = a.call("POST", &encoded, Some("hk-wrong"), Some(json!({}))).await;
    assert_eq!(status, 401);
    let entries = a.entries().await;
    let failed = of_kind(&entries, "auth.failure");
    let d = &failed[0]["data"];
    let path = d["path"].as_str().unwrap();
    assert!(path.len() <= 256 && encoded.starts_with(path), "{} bytes", path.len());
    assert_eq!(d["path_truncated"], true);
    assert_eq!(d["path_bytes"].as_u64(), Some(encoded.len() as u64));
    assert!(!serde_json::to_string(&entries).unwrap().contains(&encoded[..300]));
}

#[tokio::test]
async fn one_source_flooding_bad_keys_gets_every_401_but_only_its_share_of_entries() {
    let a = Audited::start(|c| {
        c.audit.max_auth_failures_per_source_per_min = 5;
        c.audit.max_auth_failures_per_sec = 10_000;
    })
    .await;
    let url = a.gw.url("/v1/models");
    let flood = client_from("127.0.0.1");
    for i in 0..200 {
        let r = flood.get(&url).bearer_auth(format!("hk-guess-{i}")).send().await.unwrap();
        assert_eq!(r.status(), 401, "every guess is still refused");
    }
    let other = client_from("127.0.0.2");
    for i in 0..5 {
        let r = other.get(&url).bearer_auth(format!("hk-typo-{i}")).send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
    // The summary is written when the minute ends, or at shutdown.
    a.gw.state.audit.close();
    let entries = stored(&a);
    let from = |ip: &str| entries.iter().filter(|e| e.kind == "auth.failure" && e.data["client"] == ip).count();
    assert_eq!((from("127.0.0.1"), from("127.0.0.2")), (5, 5), "the flooder does not crowd the other out");
    let summaries: Vec<_> = entries.iter().filter(|e| e.kind == "auth.failure.suppressed").collect();
    let counted: u64 = summaries.iter().map(|e| e.data["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, 195, "the rest is counted, not lost");
    assert_eq!(summaries.last().unwrap().data["top"][0]["source"], "127.0.0.1");
    assert!(entries.len() < 30, "{} entries for 205 failures", entries.len());
}

#[tokio::test]
async fn a_refused_admin_call_is_recorded_without_its_body_which_is_never_read() {
    let a = Audited::start(|c| c.server.body_limit_bytes = 64 * 1024).await;
    let (_, k) = a.admin("POST", "/admin/keys", Some(json!({"name": "plain", "scopes": ["inference"]}))).await;
    let key = k["key"].as_str().unwrap().to_owned();
    let url = a.gw.url("/admin/keys");
    let http = reqwest::Client::new();

    // A body larger than the limit: reading it would be a 413; the scope check answers first.
    let huge = format!(r#"{{"name":"{}","marker":"BODY-MUST-NOT-BE-RECORDED"}}"#, "x".repeat(200 * 1024));
    let r = http.post(&url).bearer_auth(&key).body(huge).header("content-type", "application/json").send().await;
    assert_eq!(r.unwrap().status(), 403);

    // A body that never finishes: a middleware that buffered it would hang here.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    tx.send(Ok(br#"{"name":"never-finished","marker":"BODY-MUST-NOT-BE-RECORDED""#.to_vec())).await.unwrap();
    let stalled = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        http.post(&url).bearer_auth(&key).header("content-type", "application/json").body(stalled).send(),
    )
    .await
    .expect("answered without waiting for the body")
    .unwrap();
    assert_eq!(r.status(), 403);
    drop(tx);

    // An admin's oversized body: recorded by size and digest, not in full.
    let big = json!({"name": "t".repeat(20 * 1024)});
    let (status, _) = a.admin("POST", "/admin/teams", Some(big.clone())).await;
    assert!(status >= 200, "{status}");

    let entries = a.entries().await;
    let refused: Vec<_> = of_kind(&entries, "key.create").into_iter().filter(|e| e["data"]["status"] == 403).collect();
    assert_eq!(refused.len(), 2, "{entries:#?}");
    for e in &refused {
        assert!(e["data"].get("body").is_none() && e["data"].get("body_bytes").is_none(), "{e}");
        assert_eq!(e["actor"], k["id"]);
    }
    let team = of_kind(&entries, "team.create");
    let d = &team[0]["data"];
    assert_eq!(d["body_omitted"], "too_large");
    assert_eq!(d["body_bytes"].as_u64(), Some(serde_json::to_vec(&big).unwrap().len() as u64));
    assert!(d.get("body").is_none());
    let all = serde_json::to_string(&entries).unwrap();
    assert!(!all.contains("BODY-MUST-NOT-BE-RECORDED") && !all.contains(&"t".repeat(100)));
}

/// A stream of the chunks sent on `rx` (stays open, and pending, until the sender drops).
fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_answers_503_while_the_audit_backlog_is_full_and_drops_nothing() {
    let a = Audited::start(|c| {
        c.audit.max_backlog = 20;
        c.audit.max_auth_failures_per_source_per_min = 100_000;
        c.audit.max_auth_failures_per_sec = 100_000;
    })
    .await;
    a.entries().await; // everything so far is committed
    // Another process holds the write lock: the audit writer stalls, as on a dead disk.
    let blocker = rusqlite::Connection::open(a.db()).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let url = a.gw.url("/v1/models");
    let http = reqwest::Client::new();
    let (mut unauthorized, mut overloaded, mut deepest) = (0u64, 0u64, 0u64);
    for i in 0..200 {
        let r = http.get(&url).bearer_auth(format!("hk-flood-{i}")).send().await.unwrap();
        match r.status().as_u16() {
            401 => unauthorized += 1,
            503 => {
                overloaded += 1;
                assert_eq!(r.headers()["retry-after"], "1");
                let body: Value = r.json().await.unwrap();
                assert_eq!(body["error"]["code"], "overloaded");
            }
            other => panic!("unexpected {other}"),
        }
        deepest = deepest.max(a.gw.state.audit.queue_depth());
    }
    assert_eq!(unauthorized, 20, "recorded until the backlog reached its bound");
    assert_eq!(overloaded, 180);
    assert!(deepest <= 20, "queue depth {deepest}");
    // Health checks are not refused.
    let health = http.get(a.gw.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    // The disk comes back: the backlog drains and requests are served again.
    blocker.execute_batch("ROLLBACK").unwrap();
    let log = a.gw.state.audit.log().unwrap().clone();
    tokio::task::spawn_blocking(move || log.flush()).await.unwrap();
    assert_eq!(a.gw.state.audit.queue_depth(), 0);
    let (status, _) = a.call("GET", "/v1/models", Some("hk-after"), None).await;
    assert_eq!(status, 401);
    let entries = a.entries().await;
    assert_eq!(of_kind(&entries, "auth.failure").len() as u64, unauthorized + 1, "every 401 has its entry");
    let (_, report) = a.admin("GET", "/admin/audit/verify", None).await;
    assert_eq!(report["valid"], true, "{report}");
}
