//! Hot reload through the real gateway over HTTP: providers, aliases, keys
//! and limits change without a restart and without dropping a request in
//! flight; a bad config is refused whole and the old one keeps serving;
//! sections that need a restart say so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use hoosh_core::Placement;
use hoosh_core::config::{BreakerConfig, Config, ProviderConfig};
use hoosh_core::governance_config::KeyConfig;
use hoosh_core::router::ProviderEntry;
use serde_json::{Value, json};
use support::*;

const MASTER: &str = "hk-reload-test-master-0123456789abcdefghijklmnopq";

fn base(mock_url: &str) -> Config {
    let mut c = config(vec![openai("first", mock_url)]);
    c.governance.master_key_env = "HOOSH_RELOAD_TEST_UNSET".into();
    c.governance.master_key_file = Some(secret_file(MASTER));
    c.routing.max_retries = 0;
    c
}

async fn post(gw: &Gateway, path: &str, key: &str, body: Value) -> (u16, Value) {
    let resp = http().post(gw.url(path)).bearer_auth(key).json(&body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn reload(gw: &Gateway) -> (u16, Value) {
    post(gw, "/admin/reload", MASTER, json!({})).await
}

fn served_by(body: &Value) -> String {
    body["model"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn providers_and_aliases_change_live_and_a_running_stream_finishes() {
    let mock = hoosh_testkit::openai::start().await;
    let (gw, source) = Gateway::start_reloadable(base(&mock.url())).await;
    // A stream that stalls 400 ms after its first chunk, started before the reload.
    let slow = {
        let url = gw.url("/v1/chat/completions");
        tokio::spawn(async move {
            let body =
                json!({"model": "mock-stall-400", "stream": true, "messages": [{"role": "user", "content": "x"}]});
            let resp = http().post(url).bearer_auth(MASTER).json(&body).send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    // Before: no alias `fast`.
    assert_eq!(post(&gw, "/v1/chat/completions", MASTER, chat_body("fast", "hi")).await.0, 200);
    {
        let mut c = source.lock().unwrap();
        c.providers = vec![openai("second", &mock.url())];
        c.providers[0].models = Some(vec!["gpt-*".into()]);
        c.model_aliases.insert("fast".into(), vec!["second/gpt-4o-mini".into()]);
    }
    let (status, report) = reload(&gw).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["generation"], 1);
    assert_eq!(report["providers_added"], json!(["second"]));
    assert_eq!(report["providers_removed"], json!(["first"]));
    assert!(report["applied"].as_array().unwrap().contains(&json!("model_aliases")), "{report}");
    assert_eq!(report["restart_required"], json!([]));

    let (status, body) = post(&gw, "/v1/chat/completions", MASTER, chat_body("fast", "hi")).await;
    assert_eq!((status, served_by(&body).as_str()), (200, "gpt-4o-mini"), "{body}");
    // `first` is gone: a model only it served is now unknown.
    let (status, _) = post(&gw, "/v1/chat/completions", MASTER, chat_body("mock-echo", "hi")).await;
    assert_eq!(status, 404);
    let providers: Value =
        http().get(gw.url("/v1/providers")).bearer_auth(MASTER).send().await.unwrap().json().await.unwrap();
    let names: Vec<&str> = providers["data"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["second"]);

    let (status, text) = slow.await.unwrap();
    assert_eq!(status, 200);
    assert!(text.trim_end().ends_with("data: [DONE]"), "the stream begun before the reload finished: {text}");
}

#[tokio::test]
async fn a_bad_config_is_refused_whole_and_the_old_one_keeps_serving() {
    let mock = hoosh_testkit::openai::start().await;
    let (gw, source) = Gateway::start_reloadable(base(&mock.url())).await;
    let good = source.lock().unwrap().clone();
    {
        let mut c = source.lock().unwrap();
        // A valid alias next to an invalid provider: neither may apply.
        c.model_aliases.insert("fast".into(), vec!["first/gpt-4o".into()]);
        c.providers.push(openai("bad/name", &mock.url()));
    }
    let (status, body) = reload(&gw).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_config");
    assert!(body["error"]["message"].as_str().unwrap().contains("bad/name"), "{body}");
    assert_eq!(gw.state.live().generation, 0);
    assert!(gw.state.live().config.model_aliases.is_empty());
    assert_eq!(post(&gw, "/v1/chat/completions", MASTER, chat_body("gpt-4o", "hi")).await.0, 200);

    // A key whose secret is missing is refused too.
    {
        let mut c = source.lock().unwrap();
        *c = good.clone();
        c.governance.keys.push(KeyConfig {
            name: "ci".into(),
            key_env: Some("HOOSH_RELOAD_TEST_NEVER_SET".into()),
            ..KeyConfig::default()
        });
    }
    let (status, body) = reload(&gw).await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("HOOSH_RELOAD_TEST_NEVER_SET"), "{body}");
    // Only the admin key may reload.
    let (status, _) = post(&gw, "/admin/reload", "hk-nope", json!({})).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn keys_and_limits_follow_the_file_and_unchanged_providers_keep_their_stats() {
    let mock = hoosh_testkit::openai::start().await;
    let (gw, source) = Gateway::start_reloadable(base(&mock.url())).await;
    let stats_before = Arc::clone(&gw.state.live().router.entries()[0].stats);
    let key = "hk-reload-declared-key-0123456789abcdefghijklmno";
    let digest: String = hoosh_governance::hash_key(key).0.iter().map(|b| format!("{b:02x}")).collect();
    {
        let mut c = source.lock().unwrap();
        c.governance.keys.push(KeyConfig {
            name: "ci".into(),
            key_sha256: Some(digest.clone()),
            rpm: Some(2),
            ..KeyConfig::default()
        });
    }
    assert_eq!(post(&gw, "/v1/chat/completions", key, chat_body("gpt-4o", "hi")).await.0, 401);
    let (status, report) = reload(&gw).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], json!(["governance"]));
    assert!(Arc::ptr_eq(&stats_before, &gw.state.live().router.entries()[0].stats), "same provider, same stats");
    // The key works, with its limit of 2 a minute.
    assert_eq!(post(&gw, "/v1/chat/completions", key, chat_body("gpt-4o", "hi")).await.0, 200);
    assert_eq!(post(&gw, "/v1/chat/completions", key, chat_body("gpt-4o", "hi")).await.0, 200);
    assert_eq!(post(&gw, "/v1/chat/completions", key, chat_body("gpt-4o", "hi")).await.0, 429);

    // Dropped from the file: revoked.
    source.lock().unwrap().governance.keys.clear();
    assert_eq!(reload(&gw).await.0, 200);
    let (status, body) = post(&gw, "/v1/chat/completions", key, chat_body("gpt-4o", "hi")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("revoked_api_key")), "{body}");

    // A listener change is reported, not applied.
    source.lock().unwrap().server.body_limit_bytes = 1234;
    let (status, report) = reload(&gw).await;
    assert_eq!(status, 200);
    assert_eq!(report["restart_required"], json!(["server"]));
    assert_ne!(gw.state.live().config.server.body_limit_bytes, 1234, "the live config says what is in effect");
}

/// What `serve` builds besides the config: an entry placed in-process (here
/// an OpenAI adapter pointed at a mock stands in for the `local` provider).
fn in_process(name: &str, mock_url: &str) -> Arc<ProviderEntry> {
    let resolved = hoosh_providers::registry::resolve(&openai(name, mock_url)).unwrap();
    let provider = hoosh_providers::registry::build(&resolved);
    let entry = hoosh_providers::registry::entry(&resolved, provider, &BreakerConfig::default()).unwrap();
    Arc::new(ProviderEntry { placement: Placement::InProcess, ..entry })
}

/// `x-hoosh-provider` of a chat for `model`.
async fn provider_of(gw: &Gateway, model: &str) -> String {
    let resp = http().post(gw.url("/v1/chat/completions")).bearer_auth(MASTER).json(&chat_body(model, "hi"));
    let resp = resp.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.headers()["x-hoosh-provider"].to_str().unwrap().to_owned()
}

/// A reload rebuilds every configured provider from the file, nearby ones
/// too, and carries over only the entry the gateway built itself. (When one
/// `local` flag meant both "in-process" and "on the LAN", an Ollama provider
/// was carried over *and* rebuilt: one more copy per reload, and taking it
/// out of the file removed none.)
#[tokio::test]
async fn a_nearby_provider_is_there_once_per_reload_and_the_in_process_one_is_kept() {
    let openai_mock = hoosh_testkit::openai::start().await;
    let ollama_mock = hoosh_testkit::ollama::start().await;
    let mut c = base(&openai_mock.url());
    let mut ollama = ProviderConfig::new("ollama", "ollama");
    ollama.base_url = Some(ollama_mock.url());
    ollama.models = Some(vec!["llama3*".into()]);
    c.providers.push(ollama);
    let builtin = in_process("builtin", &openai_mock.url());
    let (gw, source) = Gateway::start_reloadable_with(c, vec![Arc::clone(&builtin)]).await;
    let named = |name: &str| -> Vec<Arc<ProviderEntry>> {
        gw.state.live().router.entries().iter().filter(|e| e.name() == name).cloned().collect()
    };
    assert_eq!(named("ollama")[0].placement, Placement::Nearby, "the ollama preset is nearby");
    let ollama_stats = Arc::clone(&named("ollama")[0].stats);

    for generation in 1..=3 {
        let (status, report) = reload(&gw).await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["generation"], generation);
        assert_eq!(report["providers_added"], json!([]), "{report}");
        assert_eq!(report["providers_removed"], json!([]), "{report}");
        let ollamas = named("ollama");
        assert_eq!(ollamas.len(), 1, "reload {generation}: {:?}", gw.state.live().router.entries());
        assert!(Arc::ptr_eq(&ollamas[0].stats, &ollama_stats), "unchanged, so it keeps its stats");
        let builtins = named("builtin");
        assert_eq!(builtins.len(), 1, "reload {generation}");
        assert!(Arc::ptr_eq(&builtins[0], &builtin), "the in-process entry is carried over as it is");
        assert_eq!(provider_of(&gw, "ollama/llama3.2:latest").await, "ollama");
    }

    // Out of the file: out of the gateway. The in-process entry stays.
    source.lock().unwrap().providers.retain(|p| p.name != "ollama");
    let (status, report) = reload(&gw).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["providers_removed"], json!(["ollama"]), "{report}");
    assert!(named("ollama").is_empty(), "{:?}", gw.state.live().router.entries());
    assert!(Arc::ptr_eq(&named("builtin")[0], &builtin));
    let names: Vec<String> = gw.state.live().router.entries().iter().map(|e| e.name().to_owned()).collect();
    assert_eq!(names, ["builtin", "first"]);
    // `ollama/...` is no provider address any more; in-process wins the tie.
    assert_eq!(provider_of(&gw, "ollama/llama3.2:latest").await, "builtin");
}
