//! The usage ledger and budgets across a crash: the real binary is killed
//! with SIGKILL in the middle of a load, started again on the same data
//! directory, and its budgets must equal the ledger's sums (no double
//! counting, nothing lost between the two), with every request answered
//! before the kill recorded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hoosh_audit::ChainStore;
use hoosh_governance::{PoolId, SqliteStore, Store};
use serde_json::{Value, json};

mod support;

use support::Served;

const KEY: &str = "hk-restart-test-key-0123456789abcdefghijklmnopqrstu";

/// The tests here run one at a time: the kill-9 test's promise is about
/// rows committed within 200 ms, which a second gateway competing for the
/// same two cores would only make flaky.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn start(config: &std::path::Path, data: &std::path::Path) -> Served {
    let (config, data) = (config.to_str().unwrap(), data.to_str().unwrap());
    Served::start_with(config, &["--data-dir", data], &[("HOOSH_RESTART_TEST_KEY", KEY)])
}

/// A fresh data directory and a config with one `openai` provider at
/// `mock_url` and the `load` key (100M tokens).
fn data_dir_and_config(mock_url: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("hoosh-restart-{}-{}", std::process::id(), hoosh_server_now()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("hoosh.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[local]
enabled = false
[[providers]]
name = "up"
type = "openai"
base_url = "{}/v1"
models = ["*"]
[governance]
master_key_env = "HOOSH_RESTART_TEST_MASTER_UNSET"
[[governance.keys]]
name = "load"
key_env = "HOOSH_RESTART_TEST_KEY"
budget = {{ tokens = 100000000 }}
"#,
            mock_url
        ),
    )
    .unwrap();
    (dir, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn budgets_and_ledger_agree_after_kill_9() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let mock = hoosh_testkit::openai::start().await;
    let (dir, config) = data_dir_and_config(&mock.url());
    let mut served = start(&config, &dir);
    let (child, url) = (&mut served.child, served.url.clone());

    // 16 clients loop until the gateway dies; each remembers the request
    // ids it got a complete 200 for, and when.
    let done: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let body = json!({"model": "mock-usage-10-5", "messages": [{"role": "user", "content": "hi"}]});
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (client, url, body, done) = (client.clone(), url.clone(), body.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let Ok(r) = client.post(format!("{url}/v1/chat/completions")).bearer_auth(KEY).json(&body).send().await
                else {
                    return;
                };
                let id = r.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
                let ok = r.status() == 200;
                if r.bytes().await.is_err() {
                    return;
                }
                if let (true, Some(id)) = (ok, id) {
                    done.lock().unwrap().push((id, Instant::now()));
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().unwrap(); // SIGKILL: no drain, no ledger flush
    let killed = Instant::now();
    child.wait().unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let done = done.lock().unwrap().clone();
    assert!(done.len() > 50, "the load ran: {} requests", done.len());

    // Start again on the same data directory.
    let mut served = start(&config, &dir);
    let (child, url) = (&mut served.child, served.url.clone());
    let budgets: Value =
        client.get(format!("{url}/v1/budgets")).bearer_auth(KEY).send().await.unwrap().json().await.unwrap();
    let used = budgets["data"][0]["used_tokens"].as_u64().unwrap();

    let store = SqliteStore::open(dir.join("hoosh.db")).unwrap();
    let (ledger_tokens, _) = store.usage_totals(&PoolId::Key("cfg_load".into()), 0).unwrap();
    let mut ids = HashSet::new();
    let mut rows = 0;
    store
        .usage_rows(0, i64::MAX, &mut |r| {
            rows += 1;
            assert_eq!((r.prompt_tokens, r.completion_tokens, r.status), (10, 5, 200), "{r:?}");
            ids.insert(r.request_id.clone());
        })
        .unwrap();
    assert_eq!(used, ledger_tokens, "budget state equals the ledger after the crash");
    assert_eq!(ledger_tokens, rows * 15);
    // Rows are committed within milliseconds of a response; anything
    // answered well before the kill must be there.
    let settled_before_kill: Vec<_> =
        done.iter().filter(|(_, at)| killed.duration_since(*at) > Duration::from_millis(200)).collect();
    for (id, _) in &settled_before_kill {
        assert!(ids.contains(id), "request {id}, answered before the kill, is missing from the ledger");
    }
    assert!(rows as usize <= done.len() + 16, "no row without a request");

    // The audit chain went through the same crash: it verifies up to its
    // last durable entry, the restart resumed it, and every request
    // answered well before the kill has its `inference` entry.
    let out = std::process::Command::new(support::BIN)
        .args(["audit", "verify", "--data-dir", dir.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success() && report["valid"] == true, "{report}");
    let audit = hoosh_audit::AuditStore::open(dir.join("audit.db")).unwrap();
    let (mut audited, mut starts) = (HashSet::new(), Vec::new());
    audit
        .range(0, &mut |e| {
            match e.kind.as_str() {
                "inference" => {
                    audited.insert(e.request_id.clone().unwrap_or_default());
                }
                "chain.start" => starts.push(e.data["resumed_from_seq"].as_u64().unwrap()),
                _ => {}
            }
            true
        })
        .unwrap();
    assert_eq!(starts.len(), 2, "one start per run");
    assert!(starts[1] > 0, "the second run resumed the chain");
    for (id, _) in &settled_before_kill {
        assert!(audited.contains(id), "request {id}, answered before the kill, has no audit entry");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn one_request_id_for_every_request_still_counts_every_request_after_a_restart() {
    let _alone = ONE_AT_A_TIME.lock().await;
    // A caller with a valid key sends every request under the same
    // `x-request-id`, hoping the ledger keeps one row and a restart forgets
    // the rest of what it spent.
    let mock = hoosh_testkit::openai::start().await;
    let (dir, config) = data_dir_and_config(&mock.url());
    let served = start(&config, &dir);
    let url = served.url.clone();
    let client = reqwest::Client::new();
    let body = json!({"model": "mock-usage-10-5", "messages": [{"role": "user", "content": "hi"}]});
    for _ in 0..30 {
        let r = client
            .post(format!("{url}/v1/chat/completions"))
            .bearer_auth(KEY)
            .header("x-request-id", "the-same-id-every-time")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    assert!(served.terminate().success(), "a graceful stop flushes the ledger");

    let mut served = start(&config, &dir);
    let (child, url) = (&mut served.child, served.url.clone());
    let budgets: Value =
        client.get(format!("{url}/v1/budgets")).bearer_auth(KEY).send().await.unwrap().json().await.unwrap();
    let store = SqliteStore::open(dir.join("hoosh.db")).unwrap();
    let mut rows = Vec::new();
    store.usage_rows(0, i64::MAX, &mut |r| rows.push(r.clone())).unwrap();
    assert_eq!(rows.len(), 30, "every request has its row");
    assert!(rows.iter().all(|r| r.request_id == "the-same-id-every-time"), "the caller's id is kept on each");
    let ids: HashSet<_> = rows.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids.len(), rows.len(), "each row has its own server-made id");
    assert_eq!(budgets["data"][0]["used_tokens"].as_u64().unwrap(), rows.len() as u64 * 15, "{budgets}");
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

fn hoosh_server_now() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}
