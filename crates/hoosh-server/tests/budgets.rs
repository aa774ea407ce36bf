//! The budget promise against hostile-but-valid traffic, through the real
//! gateway over HTTP. Each test is written as a caller with a valid key who
//! wants to spend more than allowed — `n`, no `max_tokens`, other spellings
//! of a model, an unpriced model, hanging up, another tenant's cache — in
//! front of a mock vendor that bills as much as it may (`mock-bill-P`: its
//! own prompt count `P` and `n ×` the cap it received, or a very long answer
//! when no cap reached it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use hoosh_governance::{BudgetSpec, Limits, NewKey, UsageRecord};
use hoosh_testkit::scenario::UNCAPPED_COMPLETION;
use hoosh_types::openai::ChatCompletionRequest;
use serde_json::{Value, json};
use support::*;

/// The gateway's own prompt estimate of `body`.
fn estimate(body: &Value) -> u64 {
    let typed: ChatCompletionRequest = serde_json::from_value(body.clone()).unwrap();
    hoosh_server::pipeline::estimate::chat_prompt(&typed)
}

/// A chat body for the billing mock: `text` with `fields` (caps, `n`),
/// whose vendor counts `factor ×` the gateway's prompt estimate and answers
/// after `after_ms`; and that estimate.
fn billed(text: &str, fields: Value, factor: u64, after_ms: u64) -> (Value, u64) {
    let mut body = chat_body("m", text);
    for (k, v) in fields.as_object().into_iter().flatten() {
        body[k] = v.clone();
    }
    let prompt = estimate(&body);
    body["model"] = json!(format!("mock-bill-{}-after-{after_ms}", factor * prompt));
    (body, prompt)
}

/// Waits (on the ledger, up to 5 s) until a row matches `pred`.
async fn ledger_row(gw: &Gateway, pred: impl Fn(&UsageRecord) -> bool) -> UsageRecord {
    for _ in 0..250 {
        if let Some(r) = ledger_rows(gw).into_iter().find(|r| pred(r)) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no such ledger row: {:?}", ledger_rows(gw));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn n_choices_reserve_n_times_the_cap() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let (body, prompt) = billed("eight answers please", json!({"n": 8, "max_tokens": 50}), 1, 0);
    let per_request = prompt + 8 * 50;
    let capacity = 10 * per_request;
    // One token short of a single n × cap reservation: refused outright.
    let (_, short) = key(&gw, budget_key(per_request - 1));
    let (status, answer) = call(&gw, "POST", "/v1/chat/completions", Some(&short), Some(body.clone())).await;
    assert_eq!(status, 429, "{answer}");
    let (id, key) = key(&gw, budget_key(capacity));
    let results = fire(&gw, &key, &body, 60).await;
    let ok = results.iter().filter(|(s, _)| *s == 200).count() as u64;
    assert_eq!(ok, 10, "exactly what fits at n × cap: {:?}", results.iter().find(|(s, _)| *s != 200 && *s != 429));
    assert_eq!(used(&gw, &id), (capacity, 0), "billed n × cap each, never over");
    assert_eq!(ledger_tokens(&gw, &id), capacity);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_max_tokens_the_default_cap_reaches_the_provider() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed_with(&mock.url(), |c| c.governance.default_max_tokens = 30).await;
    let (body, prompt) = billed("as long as you like", json!({}), 1, 0);
    let capacity = 20 * (prompt + 30);
    let (id, key) = key(&gw, budget_key(capacity));
    let results = fire(&gw, &key, &body, 80).await;
    let ok = results.iter().filter(|(s, _)| *s == 200).count() as u64;
    assert_eq!(ok, 20);
    let (spent, reserved) = used(&gw, &id);
    assert!(spent < UNCAPPED_COMPLETION, "the provider was told the cap: {spent}");
    assert_eq!((spent, reserved), (capacity, 0));
    let row = ledger_rows(&gw).into_iter().find(|r| r.status == 200).unwrap();
    assert_eq!(row.completion_tokens, 30, "the default cap, as sent upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_counting_more_prompt_tokens_cannot_overrun_by_more_than_one_request() {
    // The vendor counts 3× the gateway's estimate (framing, injected system
    // prompts, another tokenizer). A burst must still not end far over.
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    // Every answer takes 200 ms, so the whole first wave is in flight
    // together before anything settles (or calibrates).
    let (body, prompt) = billed("hi", json!({"max_tokens": 14}), 3, 200);
    let capacity = 1_700;
    let (id, key) = key(&gw, budget_key(capacity));
    let _ = fire(&gw, &key, &body, 300).await;
    let (spent, reserved) = used(&gw, &id);
    assert_eq!(reserved, 0);
    let one_request = 3 * prompt + 14;
    assert!(spent <= capacity + one_request, "spent {spent} of {capacity}: more than one request over");
    assert_eq!(ledger_tokens(&gw, &id), spent, "the ledger tells the truth");
    let (_, metrics) = call(&gw, "GET", "/metrics", None, None).await;
    assert!(
        metrics.as_str().unwrap().contains("hoosh_budget_overrun_tokens_total{provider=\"up\"}"),
        "the first, uncalibrated requests overran and the metric says so"
    );
}

#[tokio::test]
async fn allow_lists_and_model_limits_apply_to_the_served_model_whatever_the_spelling() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed_with(&mock.url(), |c| {
        c.providers[0].models = Some(vec!["gpt-4o*".into()]);
        c.model_aliases.insert("cheap".into(), vec!["up/gpt-4o".into()]);
        c.governance.limits = vec![hoosh_core::config::TargetLimitsConfig {
            model: Some("gpt-4o-mini".into()),
            rpm: Some(2),
            ..Default::default()
        }];
    })
    .await;
    let (_, mini_only) =
        key(&gw, NewKey { name: "mini".into(), models: vec!["gpt-4o-mini".into()], ..Default::default() });
    // Allowed the alias's name, not the model it routes to.
    let (_, alias_only) = key(&gw, NewKey { name: "alias".into(), models: vec!["cheap".into()], ..Default::default() });
    let (status, body) =
        call(&gw, "POST", "/v1/chat/completions", Some(&alias_only), Some(chat_body("cheap", "x"))).await;
    assert_eq!(status, 403, "`cheap` is served by gpt-4o: {body}");
    // Allowed a provider's models by `provider/*`: any spelling that lands there.
    let (_, provider_wide) = key(&gw, NewKey { name: "up".into(), models: vec!["up/*".into()], ..Default::default() });
    let (status, body) =
        call(&gw, "POST", "/v1/chat/completions", Some(&provider_wide), Some(chat_body("gpt-4o", "x"))).await;
    assert_eq!(status, 200, "{body}");
    let ask = |model: &str| chat_body(model, "x");
    for spelling in ["gpt-4o", "up/gpt-4o", "cheap"] {
        let (status, body) = call(&gw, "POST", "/v1/chat/completions", Some(&mini_only), Some(ask(spelling))).await;
        assert_eq!(status, 403, "`{spelling}` is served by gpt-4o: {body}");
        assert_eq!(body["error"]["code"], "model_not_allowed");
    }
    // One RPM bucket for the served model, whichever way it is written.
    let (s1, _) = call(&gw, "POST", "/v1/chat/completions", Some(&mini_only), Some(ask("gpt-4o-mini"))).await;
    let (s2, _) = call(&gw, "POST", "/v1/chat/completions", Some(&mini_only), Some(ask("up/gpt-4o-mini"))).await;
    let (s3, body) = call(&gw, "POST", "/v1/chat/completions", Some(&mini_only), Some(ask("up/gpt-4o-mini"))).await;
    assert_eq!((s1, s2, s3), (200, 200, 429), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("gpt-4o-mini"), "{body}");
    // A provider is never asked for a model its globs do not route to it.
    let (status, body) =
        call(&gw, "POST", "/v1/chat/completions", Some(&mini_only), Some(ask("up/claude-anything"))).await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn an_unpriced_model_under_a_dollar_budget_is_refused_unless_allowed() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let dollars = |name: &str| NewKey {
        name: name.into(),
        budget: Some(BudgetSpec { usd: Some(1.0), ..Default::default() }),
        ..Default::default()
    };
    let (_, key_usd) = key(&gw, dollars("usd"));
    let (status, body) =
        call(&gw, "POST", "/v1/chat/completions", Some(&key_usd), Some(chat_body("ft:my-own-model", "x"))).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "model_unpriced");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("ft:my-own-model") && message.contains("[[pricing]]"), "{message}");
    // A priced model still works for the same key.
    let (status, _) =
        call(&gw, "POST", "/v1/chat/completions", Some(&key_usd), Some(chat_body("gpt-4o-mini", "x"))).await;
    assert_eq!(status, 200);
    // A key without a dollar budget may use it (its cost is `unpriced`).
    let (_, tokens_only) = key(&gw, budget_key(1_000_000));
    let r = http()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&tokens_only)
        .json(&chat_body("ft:my-own-model", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-hoosh-cost-usd"], "unpriced");

    // The operator may allow it explicitly.
    let gw =
        governed_with(&mock.url(), |c| c.governance.unpriced = hoosh_core::governance_config::UnpricedPolicy::Allow)
            .await;
    let (_, key_usd) = key(&gw, dollars("usd"));
    let (status, _) =
        call(&gw, "POST", "/v1/chat/completions", Some(&key_usd), Some(chat_body("ft:my-own-model", "x"))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn one_tenant_never_gets_another_tenants_cached_answer() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let (_, a) = key(&gw, NewKey { name: "a".into(), ..Default::default() });
    let (_, b) = key(&gw, NewKey { name: "b".into(), ..Default::default() });
    let mut body = chat_body("gpt-4o-mini", "what did my competitor ask?");
    body["temperature"] = json!(0);
    let ask = |k: &str| http().post(gw.url("/v1/chat/completions")).bearer_auth(k).json(&body).send();
    let cache = |r: &reqwest::Response| r.headers()["x-hoosh-cache"].to_str().unwrap().to_owned();
    assert_eq!(cache(&ask(&a).await.unwrap()), "miss");
    assert_eq!(cache(&ask(&a).await.unwrap()), "hit", "the same key is served from the cache");
    assert_eq!(cache(&ask(&b).await.unwrap()), "miss", "another key learns nothing from A's entry");
}

#[tokio::test]
async fn a_dropped_stream_keeps_its_identity_in_the_ledger() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let (id, key) = key(&gw, budget_key(1_000_000));
    let mut body = chat_body("mock-stall-10000", "hang up on me");
    body["stream"] = json!(true);
    body["max_tokens"] = json!(100);
    let resp = http()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .header("x-request-id", "dropped-by-client")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut s = resp.bytes_stream();
    s.next().await.unwrap().unwrap();
    drop(s);
    let row = ledger_row(&gw, |r| r.status == 499).await;
    assert_eq!(row.request_id, "dropped-by-client");
    assert_eq!((row.route.as_str(), row.provider.as_deref()), ("chat", Some("up")));
    assert_eq!(row.model, "mock-stall-10000");
    assert_eq!(row.key_id.as_deref(), Some(id.as_str()));
    // The stall came after the role chunk: the prompt reached the provider, no text did.
    assert_eq!((row.prompt_tokens, row.completion_tokens), (estimate(&body), 0), "{row:?}");
}

#[tokio::test]
async fn a_client_hanging_up_on_a_blocking_call_is_charged_what_the_provider_bills() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let (id, key) = key(&gw, budget_key(1_000_000));
    let (body, prompt) = billed("take your time", json!({"max_tokens": 40}), 1, 2000);
    // Gone long after admission (milliseconds), long before the answer.
    let gone = reqwest::Client::builder().timeout(Duration::from_millis(400)).build().unwrap();
    let r = gone.post(gw.url("/v1/chat/completions")).bearer_auth(&key).json(&body).send().await;
    assert!(r.is_err(), "the client gave up first");
    let row = ledger_row(&gw, |r| r.status == 499).await;
    assert_eq!((row.prompt_tokens, row.completion_tokens), (prompt, 40), "the provider finished and billed");
    assert_eq!(row.provider.as_deref(), Some("up"));
    assert_eq!(used(&gw, &id), (prompt + 40, 0));
    assert_eq!(ledger_tokens(&gw, &id), prompt + 40);
}

#[tokio::test]
async fn key_limits_still_apply_to_every_spelling() {
    // A key's own RPM is one bucket whatever model string it sends. (This
    // held before the pipeline too: it guards the move, it found no hole.)
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let (_, k) = key(
        &gw,
        NewKey { name: "rpm".into(), limits: Limits { rpm: Some(1), ..Default::default() }, ..Default::default() },
    );
    let (s1, _) = call(&gw, "POST", "/v1/chat/completions", Some(&k), Some(chat_body("gpt-4o-mini", "x"))).await;
    let (s2, _) = call(&gw, "POST", "/v1/chat/completions", Some(&k), Some(chat_body("up/gpt-4o-mini", "x"))).await;
    assert_eq!((s1, s2), (200, 429));
}

#[tokio::test]
async fn a_slow_answer_is_waited_for_once_not_cut_at_the_first_byte_timeout_and_retried() {
    // A 2.5 s answer head under first-byte and idle timeouts of 1 s: a
    // non-streaming call waits up to its total timeout, once.
    let mock = hoosh_testkit::openai::start().await;
    let mut c = config(vec![openai("up", &mock.url())]);
    c.providers[0].first_byte_timeout_secs = 1;
    c.providers[0].idle_timeout_secs = 1;
    c.providers[0].total_timeout_secs = 10;
    c.routing.max_retries = 2;
    let gw = Gateway::start(c).await;
    let r = http().post(gw.url("/v1/chat/completions")).json(&chat_body("mock-slow-2500", "x")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-hoosh-attempts"], "1");
    assert_eq!(mock.call_count(), 1, "asked (and billed) once");
}

#[tokio::test]
async fn an_attempt_abandoned_after_the_upstream_accepted_it_is_charged_its_estimate() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed_with(&mock.url(), |c| c.providers[0].total_timeout_secs = 1).await;
    let (id, key) = key(&gw, budget_key(1_000_000));
    let (body, prompt) = billed("never mind", json!({"max_tokens": 25}), 1, 3000);
    let (status, answer) = call(&gw, "POST", "/v1/chat/completions", Some(&key), Some(body)).await;
    assert_eq!(status, 504, "{answer}");
    let row = ledger_row(&gw, |r| r.status == 504).await;
    assert_eq!(row.provider.as_deref(), Some("up"), "the abandoned attempt is on record");
    assert_eq!((row.prompt_tokens, row.completion_tokens), (prompt, 25));
    assert_eq!(used(&gw, &id), (prompt + 25, 0));
}

#[tokio::test]
async fn a_daily_budget_starts_over_when_the_servers_clock_passes_midnight() {
    // The server reads one clock (governance's): admission, budget windows
    // and ledger rows all move with it.
    let day = hoosh_governance::period::DAY_MS;
    let clock = hoosh_governance::ManualClock::new(20_000 * day + day - 1_000);
    let mock = hoosh_testkit::openai::start().await;
    let mut c = config(vec![openai("up", &mock.url())]);
    c.governance.master_key_env = "HOOSH_TEST_MASTER_KEY_UNSET".into();
    c.governance.master_key_file = Some(secret_file(MASTER));
    let gw = Gateway::start_with_clock(c, clock.clone()).await;
    let body = chat_body("mock-usage-10-5", "x");
    let spec = NewKey {
        name: "daily".into(),
        budget: Some(BudgetSpec {
            tokens: Some(4096 + 20),
            period: hoosh_governance::Period::Daily,
            ..Default::default()
        }),
        ..Default::default()
    };
    let (_, k) = key(&gw, spec);
    let ask = || call(&gw, "POST", "/v1/chat/completions", Some(&k), Some(body.clone()));
    assert_eq!(ask().await.0, 200);
    let (status, answer) = ask().await;
    assert_eq!(status, 429, "the day's budget cannot hold a second reservation: {answer}");
    clock.advance(2_000);
    assert_eq!(ask().await.0, 200, "a new day on the server's clock, a new budget");
    let rows = ledger_rows(&gw);
    let manual = (20_000 * day + day - 1_000)..=(20_000 * day + day + 1_000);
    assert!(rows.iter().all(|r| manual.contains(&r.ts_ms)), "rows carry the server's (manual) time: {rows:?}");
}
