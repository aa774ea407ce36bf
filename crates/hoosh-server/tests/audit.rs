//! The audit chain through the real gateway over HTTP: every kind of event
//! becomes an entry (inference, denial, auth failure, admin change), no
//! entry holds prompt text or a key unless asked, the chain verifies through
//! `/admin/audit/verify`, pages and filters, prunes behind a signed record.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;

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
    assert_eq!(failed[0]["data"]["key_prefix"], &wrong[..8]);
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
    let r = hoosh_audit::verify_store(log.store(), &only_new, None).unwrap();
    assert_eq!(r.problem.unwrap().reason, hoosh_audit::Reason::UnknownKey);
}
