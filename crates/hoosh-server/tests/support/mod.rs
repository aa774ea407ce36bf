//! Boots the real gateway on 127.0.0.1:0 in front of mock vendors.
#![allow(dead_code)]

use hoosh_core::config::{Config, ProviderConfig};
use hoosh_governance::{BudgetSpec, NewKey, PoolId};
use hoosh_server::AppState;
use serde_json::Value;
use tokio::sync::oneshot;

pub struct Gateway {
    pub url: String,
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// The providers and in-memory governance of a valid `config`.
fn parts(config: &Config) -> (Vec<std::sync::Arc<hoosh_core::router::ProviderEntry>>, hoosh_server::governance::Gov) {
    config.validate().unwrap();
    let entries = hoosh_providers::registry::build_entries(config).unwrap();
    let store = std::sync::Arc::new(hoosh_governance::MemoryStore::new());
    (entries, hoosh_server::governance::open_with_store(&config.governance, store, None).unwrap())
}

impl Gateway {
    pub async fn start(config: Config) -> Gateway {
        config.validate().unwrap();
        let entries = hoosh_providers::registry::build_entries(&config).unwrap();
        Self::serve(AppState::new(config, entries).unwrap()).await
    }

    /// Governance in memory on `clock`: the server's one clock, which the
    /// test moves.
    pub async fn start_with_clock(config: Config, clock: std::sync::Arc<dyn hoosh_governance::Clock>) -> Gateway {
        config.validate().unwrap();
        let entries = hoosh_providers::registry::build_entries(&config).unwrap();
        let store = std::sync::Arc::new(hoosh_governance::MemoryStore::new());
        let gov = hoosh_server::governance::open_with_clock(&config.governance, store, None, clock).unwrap();
        Self::serve(AppState::with_governance(config, entries, gov).unwrap()).await
    }

    /// Governance in memory, the audit chain (`config.audit`) in `data_dir`.
    pub async fn start_audited(config: Config, data_dir: &std::path::Path) -> Gateway {
        let (entries, gov) = parts(&config);
        let audit =
            hoosh_server::audit::Audit::open(&config.audit, data_dir, hoosh_server::audit::ChainHome::File).unwrap();
        Self::serve(AppState::with_audit(config, entries, gov, audit).unwrap()).await
    }

    /// A gateway whose reloads read `source` (tests edit it between reloads).
    pub async fn start_reloadable(config: Config) -> (Gateway, std::sync::Arc<std::sync::Mutex<Config>>) {
        Self::start_reloadable_with(config, Vec::new()).await
    }

    /// As [`Gateway::start_reloadable`], with `built` (entries the gateway
    /// builds itself, as `serve` does the in-process one) ahead of the
    /// configured providers.
    pub async fn start_reloadable_with(
        config: Config,
        built: Vec<std::sync::Arc<hoosh_core::router::ProviderEntry>>,
    ) -> (Gateway, std::sync::Arc<std::sync::Mutex<Config>>) {
        let (configured, gov) = parts(&config);
        let entries = built.into_iter().chain(configured).collect();
        let source = std::sync::Arc::new(std::sync::Mutex::new(config.clone()));
        let read = source.clone();
        let from: hoosh_server::state::ConfigSource = std::sync::Arc::new(move || Ok(read.lock().unwrap().clone()));
        let state = AppState::build(config, entries, gov, hoosh_server::audit::Audit::disabled(), Some(from)).unwrap();
        (Self::serve(state).await, source)
    }

    pub async fn serve(state: AppState) -> Gateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(hoosh_server::serve::run(listener, state.clone(), async move {
            let _ = rx.await;
        }));
        Gateway { url, state, stop: Some(tx), task: Some(task) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Sends the shutdown signal and waits for the server to return.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.task.take().unwrap().await.unwrap()
    }
}

/// An `openai` provider named `name` pointing at a mock.
pub fn openai(name: &str, mock_url: &str) -> ProviderConfig {
    let mut p = ProviderConfig::new(name, "openai");
    p.base_url = Some(format!("{mock_url}/v1"));
    p.models = Some(vec!["*".into()]);
    p
}

pub fn config(providers: Vec<ProviderConfig>) -> Config {
    let mut c = Config { providers, ..Config::default() };
    c.health.interval_secs = 0;
    c.routing.retry_base_ms = 1;
    c.routing.retry_max_ms = 5;
    c
}

pub fn http() -> reqwest::Client {
    reqwest::Client::new()
}

pub fn chat_body(model: &str, text: &str) -> serde_json::Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

/// The `data:` payloads of an SSE body, in order.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|ev| {
            let lines: Vec<&str> =
                ev.lines().filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:"))).collect();
            (!lines.is_empty()).then(|| lines.join("\n"))
        })
        .collect()
}

/// The (event name, data) pairs of an SSE body whose events are named
/// (Anthropic's and the Responses API's streams).
pub fn named_events(body: &str) -> Vec<(String, serde_json::Value)> {
    body.split("\n\n")
        .filter_map(|block| {
            let name = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((name.to_owned(), serde_json::from_str(data).unwrap()))
        })
        .collect()
}

/// The JSON chunks of a finished SSE body, checking it ended with `[DONE]`.
pub fn sse_chunks(body: &str) -> Vec<serde_json::Value> {
    let data = sse_data(body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{body}");
    data[..data.len() - 1].iter().map(|d| serde_json::from_str(d).unwrap()).collect()
}

/// `method path` with `key` (none when `None`) and a JSON body → (status, JSON, or the text as a string).
pub async fn call(
    gw: &Gateway,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = http().request(method, gw.url(path));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

/// Writes a secret to a fresh file and returns its path.
pub fn secret_file(content: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("hoosh-test-key-{}", uuid::Uuid::new_v4()));
    std::fs::write(&p, content).unwrap();
    p
}

// Governed gateways: keys, budgets and what they were charged.

pub const MASTER: &str = "hk-test-master-key-0123456789abcdefghijklmnopqrstuv";

/// A gateway that requires keys (the admin key comes from a file).
pub async fn governed(mock_url: &str) -> Gateway {
    governed_with(mock_url, |_| {}).await
}

/// [`governed`], with `edit` applied to its config first.
pub async fn governed_with(mock_url: &str, edit: impl FnOnce(&mut Config)) -> Gateway {
    let mut c = config(vec![openai("up", mock_url)]);
    c.governance.master_key_env = "HOOSH_TEST_MASTER_KEY_UNSET".into();
    c.governance.master_key_file = Some(secret_file(MASTER));
    c.routing.max_retries = 0;
    edit(&mut c);
    Gateway::start(c).await
}

pub fn key(gw: &Gateway, spec: NewKey) -> (String, String) {
    let (record, plaintext) = gw.state.gov.inner.keys().create(spec, gw.state.now_ms()).unwrap();
    (record.id, plaintext)
}

pub fn now() -> i64 {
    hoosh_governance::Clock::now_ms(&hoosh_governance::SystemClock)
}

pub fn used(gw: &Gateway, key_id: &str) -> (u64, u64) {
    let s = gw.state.gov.inner.budgets().snapshot(&PoolId::Key(key_id.into()), gw.state.now_ms()).unwrap();
    (s.used_tokens, s.reserved_tokens)
}

pub fn ledger_tokens(gw: &Gateway, key_id: &str) -> u64 {
    gw.state.gov.inner.ledger().flush();
    gw.state.gov.inner.store().usage_totals(&PoolId::Key(key_id.into()), 0).unwrap().0
}

/// Every ledger row of the gateway, oldest first.
pub fn ledger_rows(gw: &Gateway) -> Vec<hoosh_governance::UsageRecord> {
    gw.state.gov.inner.ledger().flush();
    let mut rows = Vec::new();
    gw.state.gov.inner.store().usage_rows(0, i64::MAX, &mut |r| rows.push(r.clone())).unwrap();
    rows
}

/// What a ledger row says about a request, without what is its own (ids,
/// times, the route): equal for the same question through any client API.
pub fn row_shape(r: &hoosh_governance::UsageRecord) -> impl PartialEq + std::fmt::Debug {
    (
        r.key_id.clone(),
        r.provider.clone(),
        r.model.clone(),
        r.prompt_tokens,
        r.completion_tokens,
        r.cost_nanos,
        r.status,
    )
}

pub fn budget_key(tokens: u64) -> NewKey {
    NewKey {
        name: "budgeted".into(),
        budget: Some(BudgetSpec { tokens: Some(tokens), ..Default::default() }),
        ..Default::default()
    }
}

pub async fn fire(gw: &Gateway, key: &str, body: &Value, n: usize) -> Vec<(u16, Value)> {
    let client = http();
    let calls = (0..n).map(|_| {
        let req = client.post(gw.url("/v1/chat/completions")).bearer_auth(key).json(body);
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
        }
    });
    futures_util::future::join_all(calls).await
}
