//! Several `hoosh serve` processes over one Redis and one PostgreSQL
//! (`[state] backend = "cluster"`) behave as one gateway: one budget, one
//! rate limit, one set of keys, one ledger — and they keep their promises
//! when an instance is killed or a store goes away. Real binaries, a real
//! Redis and PostgreSQL (a fresh database and Redis namespace per test),
//! a mock vendor on port 0; outages are made with a TCP relay that is cut.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hoosh_testkit::relay::Relay;
use hoosh_testkit::stores::{fresh_database, redis_url};
use serde_json::{Value, json};

mod support;

use support::Served;

const MASTER: &str = "hk-cluster-test-master-0123456789abcdefghijklmnop";

/// `host:port` of a URL like `scheme://[user@]host:port/...`.
fn authority(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap();
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('/').next().unwrap().to_string()
}

/// Runs blocking client code on a thread of its own: the synchronous
/// PostgreSQL client refuses to run inside the test's runtime.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

struct Cluster {
    dir: std::path::PathBuf,
    config: std::path::PathBuf,
    /// The instances' config, for variants (`config_variant`).
    text: String,
    pg: String,
    namespace: String,
}

impl Cluster {
    /// A config for instances sharing `pg` and `redis` (URLs as the instances see them).
    fn new(mock_url: &str, pg: &str, redis: &str, pg_direct: &str) -> Cluster {
        let dir = std::env::temp_dir().join(format!("hoosh-cluster-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let namespace = hoosh_testkit::stores::unique("t");
        let config = dir.join("hoosh.toml");
        // One chain for the cluster, so one key for every instance.
        let audit_key = dir.join("audit.key");
        std::fs::write(&audit_key, format!("{}\n", "5a".repeat(32))).unwrap();
        let audit_key = audit_key.display();
        let text = format!(
            r#"
[local]
enabled = false
[[providers]]
name = "up"
type = "openai"
base_url = "{mock_url}/v1"
models = ["*"]
[governance]
master_key_env = "HOOSH_CLUSTER_TEST_MASTER"
[cache]
enabled = false
[audit]
key_file = "{audit_key}"
[state]
backend = "cluster"
redis_url = "{redis}"
postgres_url = "{pg}"
namespace = "{namespace}"
lease_ttl_ms = 2000
"#
        );
        std::fs::write(&config, &text).unwrap();
        Cluster { dir, config, text, pg: pg_direct.to_string(), namespace }
    }

    /// The same config with `from` replaced by `to`, as a file of its own.
    fn config_variant(&self, name: &str, from: &str, to: &str) -> std::path::PathBuf {
        let path = self.dir.join(format!("{name}.toml"));
        std::fs::write(&path, self.text.replacen(from, to, 1)).unwrap();
        path
    }

    fn start(&self, name: &str) -> Served {
        self.start_as(name, &self.config)
    }

    fn start_as(&self, name: &str, config: &std::path::Path) -> Served {
        let data = self.dir.join(name);
        Served::start_with(
            config.to_str().unwrap(),
            &["--data-dir", data.to_str().unwrap(), "--instance-id", name],
            &[("HOOSH_CLUSTER_TEST_MASTER", MASTER)],
        )
    }

    /// `(rows, tokens)` in the shared ledger for `key_id` with `status`.
    fn ledger(&self, key_id: &str, status: i32) -> (i64, i64) {
        off_runtime(|| self.ledger_now(key_id, status))
    }

    fn ledger_now(&self, key_id: &str, status: i32) -> (i64, i64) {
        let mut c = postgres::Client::connect(&self.pg, postgres::NoTls).unwrap();
        let row = c
            .query_one(
                "SELECT COUNT(*)::int8, COALESCE(SUM(prompt_tokens + completion_tokens), 0)::int8
                 FROM ledger WHERE key_id = $1 AND status = $2",
                &[&key_id, &status],
            )
            .unwrap();
        (row.get(0), row.get(1))
    }

    /// `(rows, tokens)` in the shared ledger for `key_id`, any status.
    fn ledger_all(&self, key_id: &str) -> (i64, i64) {
        off_runtime(|| {
            let mut c = postgres::Client::connect(&self.pg, postgres::NoTls).unwrap();
            let row = c
                .query_one(
                    "SELECT COUNT(*)::int8, COALESCE(SUM(prompt_tokens + completion_tokens), 0)::int8
                     FROM ledger WHERE key_id = $1",
                    &[&key_id],
                )
                .unwrap();
            (row.get(0), row.get(1))
        })
    }

    /// The statuses of `key_id`'s ledger rows.
    fn ledger_statuses(&self, key_id: &str) -> Vec<i32> {
        off_runtime(|| {
            let mut c = postgres::Client::connect(&self.pg, postgres::NoTls).unwrap();
            c.query("SELECT status FROM ledger WHERE key_id = $1", &[&key_id])
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect()
        })
    }

    fn ledger_request_ids(&self) -> Vec<String> {
        off_runtime(|| {
            let mut c = postgres::Client::connect(&self.pg, postgres::NoTls).unwrap();
            c.query("SELECT request_id FROM ledger", &[]).unwrap().iter().map(|r| r.get(0)).collect()
        })
    }

    /// The cluster chain's entries, read back with `hoosh audit export --config`.
    fn chain(&self) -> Vec<Value> {
        let export = std::process::Command::new(support::BIN)
            .args(["audit", "export", "--config", self.config.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
        String::from_utf8_lossy(&export.stdout).lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).collect()
    }

    /// The request ids of the chain's entries of `kind` (one per entry, repeats kept).
    fn chain_request_ids(&self, kind: &str) -> Vec<String> {
        self.chain()
            .into_iter()
            .filter(|e| e["kind"] == kind)
            .filter_map(|e| e["request_id"].as_str().map(str::to_owned))
            .collect()
    }

    /// `hoosh audit verify --config` of the cluster's chain: its report line.
    fn verify_chain(&self) -> String {
        let verified = std::process::Command::new(support::BIN)
            .args(["audit", "verify", "--config", self.config.to_str().unwrap()])
            .env_remove("HOOSH_AUDIT_KEY")
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&verified.stdout).into_owned();
        assert!(
            verified.status.success() && out.starts_with("OK: "),
            "{out}{}",
            String::from_utf8_lossy(&verified.stderr)
        );
        out
    }

    /// Leases open in Redis, and the reservations held in `key_id`'s pool.
    fn holds(&self, key_id: &str) -> (i64, i64) {
        let client = redis::Client::open(redis_url()).unwrap();
        let mut conn = client.get_connection().unwrap();
        let leases = redis::cmd("ZCARD").arg(format!("{}:{{h}}:leases", self.namespace)).query(&mut conn).unwrap();
        let open: Option<i64> = redis::cmd("HGET")
            .arg(format!("{}:{{h}}:res:key:{key_id}", self.namespace))
            .arg("open")
            .query(&mut conn)
            .unwrap();
        (leases, open.unwrap_or(0))
    }
}

/// Two instances `a` and `b` of one fresh cluster in front of one mock vendor.
struct Pair {
    mock: hoosh_testkit::MockServer,
    cluster: Cluster,
    a: Served,
    b: Served,
    client: reqwest::Client,
}

async fn pair() -> Pair {
    let mock = hoosh_testkit::openai::start().await;
    let pg = fresh_database();
    let cluster = Cluster::new(&mock.url(), &pg, &redis_url(), &pg);
    let (a, b) = (cluster.start("a"), cluster.start("b"));
    Pair { mock, cluster, a, b, client: reqwest::Client::new() }
}

impl Pair {
    /// A key made through `a`, once `b` answers with it too: its id and secret.
    async fn key(&self, body: Value) -> (String, String) {
        let made = create_key(&self.a.url, body).await;
        within(Duration::from_secs(1), "a key made on a works on b", async || {
            let r = self.client.get(format!("{}/v1/models", self.b.url)).bearer_auth(&made.1).send().await.unwrap();
            r.status() == 200
        })
        .await;
        made
    }
}

/// `pool` as `GET /admin/budgets` on `url` reports it.
async fn budget_of(client: &reqwest::Client, url: &str, pool: &str) -> Value {
    let r = client.get(format!("{url}/admin/budgets")).bearer_auth(MASTER).send().await.unwrap();
    let v: Value = r.json().await.unwrap();
    v["data"].as_array().unwrap().iter().find(|p| p["pool"] == pool).cloned().unwrap()
}

async fn create_key(url: &str, body: Value) -> (String, String) {
    let r =
        reqwest::Client::new().post(format!("{url}/admin/keys")).bearer_auth(MASTER).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    (v["id"].as_str().unwrap().to_owned(), v["key"].as_str().unwrap().to_owned())
}

/// The mock counts 10 prompt + 5 completion tokens for this model.
const FIFTEEN_TOKENS: &str = "mock-usage-10-5";

async fn chat(client: &reqwest::Client, url: &str, key: &str, request_id: &str) -> (u16, Value) {
    chat_with(client, url, key, request_id, FIFTEEN_TOKENS).await
}

async fn chat_with(client: &reqwest::Client, url: &str, key: &str, request_id: &str, model: &str) -> (u16, Value) {
    let body = json!({"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    let r = client
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(key)
        .header("x-request-id", request_id)
        .json(&body)
        .send()
        .await;
    match r {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

/// Polls until `f` holds (or panics after `limit`); returns how long it took.
async fn within(limit: Duration, what: &str, mut f: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    loop {
        if f().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_one_budget_one_rate_limit_and_one_set_of_keys() {
    let Pair { mock: _mock, cluster, a, b, client } = pair().await;

    // A key made on one instance works on the other.
    let (budget_id, budget_key) = create_key(&a.url, json!({"name": "budget", "budget": {"tokens": 1500}})).await;
    let took = within(Duration::from_secs(1), "a key made on a works on b", async || {
        chat(&client, &b.url, &budget_key, "probe").await.0 == 200
    })
    .await;
    println!("key visible on b after {took:?}");

    // 600 at once, alternating instances, for a budget of 100 answers (15 tokens each; one spent on the probe).
    let mut tasks = Vec::new();
    for i in 0..600 {
        let url = if i % 2 == 0 { a.url.clone() } else { b.url.clone() };
        let (client, key) = (client.clone(), budget_key.clone());
        tasks.push(tokio::spawn(async move { chat(&client, &url, &key, &format!("burst-{i}")).await }));
    }
    let mut answered = 1;
    for t in tasks {
        match t.await.unwrap() {
            (200, _) => answered += 1,
            (429, body) => assert!(body.to_string().contains("budget"), "{body}"),
            (status, body) => panic!("{status}: {body}"),
        }
    }
    println!("{answered} answers for a budget of 100");
    assert!(answered <= 100, "{answered} answers for a budget of 100");
    assert!(answered >= 90, "only {answered} answers for a budget of 100: reservations leaked");
    // The ledger in PostgreSQL sums exactly to what was answered.
    within(Duration::from_secs(5), "ledger rows of every answer", async || {
        cluster.ledger(&budget_id, 200) == (answered, answered * 15)
    })
    .await;
    // Either instance reports the cluster's budget, not its own share of it.
    let pool = format!("key:{budget_id}");
    for url in [&a.url, &b.url] {
        within(Duration::from_secs(5), "both instances report the whole budget", async || {
            let mine = budget_of(&client, url, &pool).await;
            mine["used_tokens"] == answered * 15 && mine["reserved_tokens"] == 0 && mine["open_reservations"] == 0
        })
        .await;
    }

    // A burst of keys made on a (one announcement each) all work on b within a second.
    let mut burst = Vec::new();
    for i in 0..40 {
        burst.push(create_key(&a.url, json!({"name": format!("burst-{i}")})));
    }
    let burst: Vec<(String, String)> = futures_util::future::join_all(burst).await;
    within(Duration::from_secs(1), "40 keys made at once on a work on b", async || {
        for (_, k) in &burst {
            if client.get(format!("{}/v1/models", b.url)).bearer_auth(k).send().await.unwrap().status() != 200 {
                return false;
            }
        }
        true
    })
    .await;

    // One RPM limit across both: 10 per minute, 30 tries alternating.
    let (rate_id, rate_key) = create_key(&b.url, json!({"name": "rate", "rpm": 10})).await;
    within(Duration::from_secs(1), "the rate key reaches a", async || {
        client.get(format!("{}/v1/models", a.url)).bearer_auth(&rate_key).send().await.unwrap().status() == 200
    })
    .await;
    let mut ok = 0;
    for i in 0..30 {
        let url = if i % 2 == 0 { &a.url } else { &b.url };
        match chat(&client, url, &rate_key, &format!("rate-{i}")).await.0 {
            200 => ok += 1,
            429 => {}
            other => panic!("{other}"),
        }
    }
    assert_eq!(ok, 10, "an RPM of 10 across two instances");

    // Revoked on a, refused by b within a second.
    let r = client.delete(format!("{}/admin/keys/{rate_id}", a.url)).bearer_auth(MASTER).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let took = within(Duration::from_secs(1), "a key revoked on a is refused by b", async || {
        client.get(format!("{}/v1/models", b.url)).bearer_auth(&rate_key).send().await.unwrap().status() == 401
    })
    .await;
    println!("revocation reached b after {took:?}");
    // Each instance's entries name it (the chain itself is per instance for now).
    let entries: Value =
        client.get(format!("{}/admin/audit", b.url)).bearer_auth(MASTER).send().await.unwrap().json().await.unwrap();
    let named = entries["data"].as_array().unwrap().iter().filter(|e| e["data"]["instance"] == "b").count();
    assert!(named > 0, "{entries}");
    a.terminate();
    b.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_instance_loses_no_acknowledged_row_and_its_leases_expire() {
    let Pair { mock: _mock, cluster, mut a, b, client } = pair().await;
    let (key_id, key) = create_key(&a.url, json!({"name": "load", "budget": {"tokens": 100000000}})).await;
    within(Duration::from_secs(1), "key on b", async || chat(&client, &b.url, &key, "probe").await.0 == 200).await;

    // 8 clients on each instance; each remembers the ids it got a 200 for.
    // The vendor takes 100 ms, so a's requests hold leases when it dies.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop_a = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_b = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (mut on_a, mut on_b) = (Vec::new(), Vec::new());
    for c in 0..16 {
        let (url, stop) = if c % 2 == 0 { (a.url.clone(), stop_a.clone()) } else { (b.url.clone(), stop_b.clone()) };
        let (client, key, acked) = (client.clone(), key.clone(), acked.clone());
        let task = tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let id = format!("c{c}-{i}");
                if chat_with(&client, &url, &key, &id, "mock-slow-100").await.0 == 200 {
                    acked.lock().unwrap().push(id);
                }
                i += 1;
            }
        });
        if c % 2 == 0 { on_a.push(task) } else { on_b.push(task) }
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // b goes quiet (and holds nothing), then a dies mid-load.
    stop_b.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in on_b {
        t.await.unwrap();
    }
    a.child.kill().unwrap(); // SIGKILL
    a.child.wait().unwrap();
    let killed = Instant::now();
    // a's holds were still open when it died…
    let (leases, open) = cluster.holds(&key_id);
    println!("at the kill: {leases} leases, {open} reservations open");
    assert!(leases > 0 && open > 0, "a held nothing when it died: the test proves nothing");
    stop_a.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in on_a {
        t.await.unwrap();
    }
    // …and come back once its leases expire (TTL 2 s), reclaimed by b's
    // renewal loop with no request needed.
    within(Duration::from_secs(5), "the killed instance's leases expire", async || cluster.holds(&key_id) == (0, 0))
        .await;
    println!("released {:?} after the kill", killed.elapsed());
    assert!(killed.elapsed() > Duration::from_millis(600), "released before its lease could have expired");
    let acked: HashSet<String> = acked.lock().unwrap().iter().cloned().collect();
    assert!(acked.iter().any(|id| id.starts_with("c0-")), "a answered nothing before the kill");

    assert_eq!(chat(&client, &b.url, &key, "after").await.0, 200);

    // Every acknowledged request is in the shared ledger.
    let in_ledger: HashSet<String> = cluster.ledger_request_ids().into_iter().collect();
    let missing: Vec<&String> = acked.iter().filter(|id| !in_ledger.contains(*id)).collect();
    // state.ack_after_commit: nothing was answered before its row was committed.
    println!("{} acknowledged, {} missing from the ledger", acked.len(), missing.len());
    assert!(missing.is_empty(), "acknowledged but not in the ledger: {missing:?}");
    let (rows, _) = cluster.ledger(&key_id, 200);
    assert!(rows as usize >= acked.len());
    // The cluster's one audit chain verifies with a's last batch cut off by the kill…
    let report = cluster.verify_chain();
    println!("{}", report.trim());
    // …and holds an `inference` entry for every request either instance
    // acknowledged (the answer waited for it), each once.
    let in_chain = cluster.chain_request_ids("inference");
    let unaudited: Vec<&String> = acked.iter().filter(|id| !in_chain.contains(*id)).collect();
    assert!(unaudited.is_empty(), "acknowledged but not in the chain: {unaudited:?}");
    let distinct: HashSet<&String> = in_chain.iter().collect();
    assert_eq!(distinct.len(), in_chain.len(), "an entry written twice");
    // Both instances wrote to it, each entry naming its writer.
    let chain = cluster.chain();
    for name in ["a", "b"] {
        let written = chain.iter().filter(|e| e["kind"] == "inference" && e["data"]["instance"] == name).count();
        assert!(written > 10, "{written} inference entries by {name}");
    }
    b.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_and_postgres_outages_behave_as_configured() {
    let mock = hoosh_testkit::openai::start().await;
    let pg = fresh_database();
    let (pg_relay, redis_relay) =
        (Relay::start(&authority(&pg)).unwrap(), Relay::start(&authority(&redis_url())).unwrap());
    let (pg_via, redis_via) =
        (pg_relay.url(&pg, &authority(&pg)), redis_relay.url(&redis_url(), &authority(&redis_url())));
    let cluster = Cluster::new(&mock.url(), &pg_via, &redis_via, &pg);
    let a = cluster.start("a");
    let (key_id, key) = create_key(&a.url, json!({"name": "k", "budget": {"tokens": 100000000}})).await;
    let client = reqwest::Client::new();
    assert_eq!(chat(&client, &a.url, &key, "before").await.0, 200);

    // Redis away, on_redis_down = closed: a clear 503, never an unchecked answer.
    redis_relay.cut();
    let (status, body) = chat(&client, &a.url, &key, "redis-down").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "state_unavailable", "{body}");
    redis_relay.restore();
    within(Duration::from_secs(5), "answers again once Redis is back", async || {
        chat(&client, &a.url, &key, "redis-back").await.0 == 200
    })
    .await;

    // PostgreSQL away for a while: keys are served from memory, rows spill
    // to the local file, and all of them arrive once it is back.
    pg_relay.cut();
    let mut acked = Vec::new();
    for i in 0..40 {
        let id = format!("pg-down-{i}");
        let (status, body) = chat(&client, &a.url, &key, &id).await;
        assert_eq!(status, 200, "{body}");
        acked.push(id);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pg_relay.restore();
    within(Duration::from_secs(10), "spilled rows replayed", async || {
        let ids = cluster.ledger_request_ids();
        acked.iter().all(|id| ids.contains(id))
    })
    .await;
    // Exactly once each.
    let ids = cluster.ledger_request_ids();
    for id in &acked {
        assert_eq!(ids.iter().filter(|i| *i == id).count(), 1, "{id}");
    }
    let (rows, tokens) = cluster.ledger(&key_id, 200);
    assert_eq!(tokens, rows * 15);
    // The audit entries waited on disk too, and joined the chain once each.
    within(Duration::from_secs(10), "audit entries replayed", async || {
        let ids = off_runtime(|| cluster.chain_request_ids("inference"));
        acked.iter().all(|id| ids.contains(id))
    })
    .await;
    let ids = off_runtime(|| cluster.chain_request_ids("inference"));
    for id in &acked {
        assert_eq!(ids.iter().filter(|i| *i == id).count(), 1, "{id}");
    }
    off_runtime(|| cluster.verify_chain());
    a.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_redis_down_open_admits_from_local_state_and_adds_that_usage_to_the_shared_budget_later() {
    let mock = hoosh_testkit::openai::start().await;
    let pg = fresh_database();
    let redis_relay = Relay::start(&authority(&redis_url())).unwrap();
    let cluster = Cluster::new(&mock.url(), &pg, &redis_url(), &pg);
    // a reaches Redis through the relay and admits on its own while it is away; b always reaches it.
    let redis_via = redis_relay.url(&redis_url(), &authority(&redis_url()));
    let open = cluster.config_variant(
        "open",
        &format!("redis_url = \"{}\"", redis_url()),
        &format!("redis_url = \"{redis_via}\"\non_redis_down = \"open\""),
    );
    let (a, b) = (cluster.start_as("a", &open), cluster.start("b"));
    let client = reqwest::Client::new();
    // 20 answers of 15 tokens.
    let (_, key) = create_key(&b.url, json!({"name": "k", "budget": {"tokens": 300}})).await;
    within(Duration::from_secs(1), "key on a", async || chat(&client, &a.url, &key, "probe").await.0 == 200).await;

    redis_relay.cut();
    for i in 0..9 {
        let (status, body) = chat(&client, &a.url, &key, &format!("open-{i}")).await;
        assert_eq!(status, 200, "admitted from local state while Redis is away: {body}");
    }
    redis_relay.restore();
    // Once a's queued settles reach Redis, b (which never saw those requests) counts them.
    let mut more = 0;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for i in 0..20 {
        if chat(&client, &b.url, &key, &format!("after-{i}")).await.0 == 200 {
            more += 1;
        }
    }
    assert_eq!(more, 10, "20 answers in all: 1 probe + 9 while Redis was away + 10");
    a.terminate();
    b.terminate();
}

#[test]
fn migrate_and_state_check_report_the_shared_state() {
    let pg = fresh_database();
    let dir = std::env::temp_dir().join(format!("hoosh-state-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, redis: &str| {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!(
                "[local]\nenabled = false\n[state]\nbackend = \"cluster\"\nredis_url = \"{redis}\"\npostgres_url = \"{pg}\"\n"
            ),
        )
        .unwrap();
        path
    };
    let good = write("good.toml", &redis_url());
    let run = |args: &[&str]| {
        let out = std::process::Command::new(support::BIN).args(args).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (ok, out) = run(&["state", "check", "--config", good.to_str().unwrap()]);
    assert!(!ok && out.contains("behind: run `hoosh migrate`"), "{out}");
    let (ok, out) = run(&["migrate", "--config", good.to_str().unwrap()]);
    assert!(ok && out.contains("applied V1__governance") && out.contains("applied V2__audit"), "{out}");
    let (ok, out) = run(&["migrate", "--config", good.to_str().unwrap()]);
    assert!(ok && out.contains("up to date"), "{out}");
    let (ok, out) = run(&["state", "check", "--config", good.to_str().unwrap()]);
    assert!(ok && out.contains("up to date") && out.contains("redis:") && out.contains("reachable"), "{out}");
    assert!(out.contains("audit chain: empty"), "{out}");
    // A Redis that is not there fails the check and says which.
    let bad = write("bad.toml", "redis://127.0.0.1:1/0");
    let (ok, out) = run(&["state", "check", "--config", bad.to_str().unwrap()]);
    assert!(!ok && out.contains("redis: redis://127.0.0.1:1/0 UNREACHABLE"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deterministic_answer_cached_through_one_instance_is_a_hit_on_the_other() {
    let mock = hoosh_testkit::openai::start().await;
    let pg = fresh_database();
    let cluster = Cluster::new(&mock.url(), &pg, &redis_url(), &pg);
    let cached = cluster.config_variant("cached", "[cache]\nenabled = false", "[cache]\nenabled = true");
    let (a, b) = (cluster.start_as("a", &cached), cluster.start_as("b", &cached));
    let (_, key) = create_key(&a.url, json!({"name": "k"})).await;
    let (_, other) = create_key(&a.url, json!({"name": "other"})).await;
    let client = reqwest::Client::new();
    let ask = async |url: &str, key: &str, question: &str| {
        let body = json!({"model": "m", "temperature": 0, "messages": [{"role": "user", "content": question}]});
        let r = client.post(format!("{url}/v1/chat/completions")).bearer_auth(key).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let verdict = r.headers().get("x-hoosh-cache").map(|v| v.to_str().unwrap().to_owned());
        let answer: Value = r.json().await.unwrap();
        (verdict.unwrap_or_default(), answer["choices"][0]["message"]["content"].clone())
    };
    within(Duration::from_secs(1), "key on b", async || {
        client.get(format!("{}/v1/models", b.url)).bearer_auth(&key).send().await.unwrap().status() == 200
    })
    .await;
    let (first, answer) = ask(&a.url, &key, "what is 2+2?").await;
    assert_eq!(first, "miss");
    let upstream_calls = mock.call_count();
    // The shared tier is written after the answer: give it a moment.
    let (mut hit, mut misses) = (String::new(), 0);
    for _ in 0..50 {
        let (verdict, again) = ask(&b.url, &key, "what is 2+2?").await;
        if verdict != "hit" {
            misses += 1;
        }
        if verdict == "hit" {
            assert_eq!(again, answer);
            hit = verdict;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(hit, "hit", "the answer cached through a is not a hit on b");
    // The scope holds across instances: another key is not served a's answer.
    let (verdict, _) = ask(&b.url, &other, "what is 2+2?").await;
    assert_eq!(verdict, "miss");
    // Only the misses reached the vendor: b's before the shared entry landed, and the other key's.
    println!("b missed {misses} time(s) before the hit");
    assert_eq!(mock.call_count(), upstream_calls + misses + 1, "a hit reached the vendor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_circuit_opened_by_one_instance_is_open_on_the_other() {
    let (mock, backup) = (hoosh_testkit::openai::start().await, hoosh_testkit::openai::start().await);
    let pg = fresh_database();
    let cluster = Cluster::new(&mock.url(), &pg, &redis_url(), &pg);
    // `up` first, `backup` (another vendor) after it; two failures open a circuit.
    let breaker = cluster.config_variant(
        "breaker",
        "[governance]",
        &format!(
            "[[providers]]\nname = \"backup\"\ntype = \"openai\"\nbase_url = \"{}/v1\"\nmodels = [\"*\"]\n\
             [circuit_breaker]\nconsecutive_failures = 2\nopen_secs = 30\n[routing]\nmax_retries = 0\n[governance]",
            backup.url()
        ),
    );
    let (a, b) = (cluster.start_as("a", &breaker), cluster.start_as("b", &breaker));
    let (_, key) = create_key(&a.url, json!({"name": "k"})).await;
    let client = reqwest::Client::new();
    let circuit = async |url: &str| -> String {
        let v: Value =
            client.get(format!("{url}/v1/providers")).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
        let up = v["data"].as_array().unwrap().iter().find(|p| p["name"] == "up").cloned().unwrap();
        up["circuit"].as_str().unwrap_or_default().to_owned()
    };
    within(Duration::from_secs(1), "key on b", async || circuit(&b.url).await == "closed").await;
    // `up` fails twice through a (addressed by name: no failover): a opens its circuit…
    for i in 0..2 {
        let (status, _) = chat_with(&client, &a.url, &key, &format!("f{i}"), "up/mock-error-503").await;
        assert!(status >= 500, "{status}");
    }
    assert_eq!(circuit(&a.url).await, "open");
    // …and b, which never saw `up` fail, opens it too and goes to `backup` first.
    let took =
        within(Duration::from_secs(3), "b learns the circuit is open", async || circuit(&b.url).await == "open").await;
    println!("circuit open on b {took:?} after a opened it");
    let (up_calls, backup_calls) = (mock.call_count(), backup.call_count());
    let (status, body) = chat(&client, &b.url, &key, "routed-around").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((mock.call_count(), backup.call_count()), (up_calls, backup_calls + 1), "b called `up`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_that_hang_up_on_both_instances_leak_no_reservation_and_are_charged_as_the_ledger_says() {
    let p = pair().await;
    let (cluster, a, b, client) = (&p.cluster, &p.a, &p.b, &p.client);
    let (key_id, key) = p.key(json!({"name": "k", "budget": {"tokens": 1000000}})).await;
    // 40 requests the vendor answers in 300 ms; every client gives up after 100 ms.
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(100)).build().unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let url = if i % 2 == 0 { a.url.clone() } else { b.url.clone() };
        let (client, key) = (impatient.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            chat_with(&client, &url, &key, &format!("gone-{i}"), "mock-slow-300").await.0
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 0, "the client was meant to hang up");
    }
    // Every hold is released and what the budget was charged is what the ledger says.
    within(Duration::from_secs(5), "no reservation left open", async || cluster.holds(&key_id) == (0, 0)).await;
    let pool = format!("key:{key_id}");
    let mut last = Value::Null;
    let agreed = within(Duration::from_secs(5), "budget equals ledger", async || {
        let (_, ledger_tokens) = cluster.ledger_all(&key_id);
        last = budget_of(client, &b.url, &pool).await;
        last["used_tokens"] == ledger_tokens && cluster.ledger_statuses(&key_id).contains(&499)
    })
    .await;
    println!("budget agreed with the ledger after {agreed:?}: {last}");
}

/// `hoosh serve` with `config` (no `HOOSH_AUDIT_KEY` from outside) must
/// exit without ever saying it listens; its stderr.
fn refused_start(config: &std::path::Path, data: &std::path::Path, envs: &[(&str, &str)]) -> String {
    let out = std::process::Command::new(support::BIN)
        .args(["serve", "--port", "0", "--config", config.to_str().unwrap()])
        .args(["--data-dir", data.to_str().unwrap()])
        .env_remove("HOOSH_AUDIT_KEY")
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(!out.status.success(), "started anyway: {stderr}");
    assert!(!stdout.contains("listening"), "said it listens first: {stdout}");
    stderr
}

#[test]
fn an_instance_that_cannot_reach_its_stores_at_start_says_which_and_exits() {
    let pg = fresh_database();
    let dir = std::env::temp_dir().join(format!("hoosh-nostore-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let redis = redis_url();
    for (name, redis, postgres, blamed) in [
        ("no-redis", "redis://127.0.0.1:1/0", pg.as_str(), "Redis"),
        ("no-postgres", redis.as_str(), "postgres://postgres@127.0.0.1:1/x", "PostgreSQL"),
    ] {
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "[local]\nenabled = false\n[state]\nbackend = \"cluster\"\nredis_url = \"{redis}\"\npostgres_url = \"{postgres}\"\n"
            ),
        )
        .unwrap();
        let stderr = refused_start(&config, &dir.join(name), &[("HOOSH_LOG", "error")]);
        assert!(stderr.contains(blamed), "{name}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_without_the_clusters_audit_key_does_not_start_and_the_chain_stays_whole() {
    let mock = hoosh_testkit::openai::start().await;
    let pg = fresh_database();
    let cluster = Cluster::new(&mock.url(), &pg, &redis_url(), &pg);
    let a = cluster.start("a");
    let client = reqwest::Client::new();
    let (_, key) = create_key(&a.url, json!({"name": "k"})).await;
    assert_eq!(chat(&client, &a.url, &key, "one").await.0, 200);
    // No key at all: one would be generated, and the chain forked.
    let keyless = cluster.config_variant("keyless", "[audit]\nkey_file", "[audit]\n# key_file");
    // A key of its own: every other instance's entries would stop verifying.
    let other_key = cluster.dir.join("other.key");
    std::fs::write(&other_key, format!("{}\n", "3c".repeat(32))).unwrap();
    let own_key = cluster.config_variant(
        "own-key",
        &format!("key_file = \"{}\"", cluster.dir.join("audit.key").display()),
        &format!("key_file = \"{}\"", other_key.display()),
    );
    for (name, config, says) in
        [("keyless", keyless, "HOOSH_AUDIT_KEY or audit.key_file"), ("own-key", own_key, "is signed by key")]
    {
        let stderr = refused_start(&config, &cluster.dir.join(name), &[("HOOSH_CLUSTER_TEST_MASTER", MASTER)]);
        assert!(stderr.contains(says), "{name}: {stderr}");
    }
    assert_eq!(chat(&client, &a.url, &key, "two").await.0, 200);
    a.terminate();
    off_runtime(|| cluster.verify_chain());
    let ids = off_runtime(|| cluster.chain_request_ids("inference"));
    assert_eq!(ids, ["one", "two"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_that_lost_everything_is_rebuilt_from_the_ledger() {
    let Pair { mock: _mock, cluster, a, b, client } = pair().await;
    // 20 answers of 15 tokens.
    let (_, key) = create_key(&a.url, json!({"name": "k", "budget": {"tokens": 300}})).await;
    within(Duration::from_secs(1), "key on b", async || chat(&client, &b.url, &key, "probe").await.0 == 200).await;
    for i in 0..9 {
        assert_eq!(chat(&client, &a.url, &key, &format!("before-{i}")).await.0, 200);
    }
    // Redis restarts empty (or a new one is put in place): every shared counter is gone.
    off_runtime(|| {
        let mut conn = redis::Client::open(redis_url()).unwrap().get_connection().unwrap();
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg(format!("{}:*", cluster.namespace)).query(&mut conn).unwrap();
        assert!(!keys.is_empty());
        for k in keys {
            let _: i64 = redis::cmd("DEL").arg(k).query(&mut conn).unwrap();
        }
    });
    // The next reservation seeds the window from the PostgreSQL ledger: 10 answers left, through either instance.
    let mut more = 0;
    for i in 0..20 {
        let url = if i % 2 == 0 { &a.url } else { &b.url };
        if chat(&client, url, &key, &format!("after-{i}")).await.0 == 200 {
            more += 1;
        }
    }
    assert_eq!(more, 10, "the budget forgot the 10 answers before Redis lost its data");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_concurrency_cap_holds_across_instances() {
    let Pair { mock: _mock, cluster, a, b, client } = pair().await;
    let (key_id, key) = create_key(&a.url, json!({"name": "k", "max_concurrency": 3})).await;
    within(Duration::from_secs(1), "key on b", async || chat(&client, &b.url, &key, "probe").await.0 == 200).await;
    // 10 at once, half through each instance, each held 2 s by the vendor: 3 may run.
    let mut tasks = Vec::new();
    for i in 0..10 {
        let url = if i % 2 == 0 { a.url.clone() } else { b.url.clone() };
        let (client, key) = (client.clone(), key.clone());
        tasks.push(tokio::spawn(
            async move { chat_with(&client, &url, &key, &format!("c{i}"), "mock-slow-2000").await },
        ));
    }
    let mut ran = 0;
    for t in tasks {
        match t.await.unwrap() {
            (200, _) => ran += 1,
            (429, body) => assert_eq!(body["error"]["code"], "concurrency_limit_exceeded", "{body}"),
            (status, body) => panic!("{status}: {body}"),
        }
    }
    assert_eq!(ran, 3, "a cap of 3 in flight, counted across both instances");
    // Every slot is given back.
    within(Duration::from_secs(5), "no slot left taken", async || {
        off_runtime(|| {
            let mut conn = redis::Client::open(redis_url()).unwrap().get_connection().unwrap();
            let n: Option<i64> = redis::cmd("GET")
                .arg(format!("{}:{{h}}:conc:key:{key_id}", cluster.namespace))
                .query(&mut conn)
                .unwrap();
            n.unwrap_or(0) == 0
        })
    })
    .await;
}
