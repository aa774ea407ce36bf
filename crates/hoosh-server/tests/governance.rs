//! Keys, budgets and rate limits through the real gateway over HTTP, in
//! front of a mock OpenAI server whose `mock-usage-P-C` models report exact
//! usage: budgets hold under concurrency, every path settles exactly once,
//! limits hold at their edges, auth answers each failure precisely.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use hoosh_governance::{Limits, NewKey, Scope};
use hoosh_types::openai::ChatCompletionRequest;
use serde_json::{Value, json};
use support::*;

/// A chat body whose gateway estimate is known, and the mock model that
/// reports exactly that estimate as usage (`max_tokens` as completion).
fn exact_body(max_tokens: u64, stream: bool) -> (Value, u64) {
    let mut body = json!({"model": "x", "messages": [{"role": "user", "content": "count my tokens please"}],
        "max_tokens": max_tokens, "stream": stream});
    let typed: ChatCompletionRequest = serde_json::from_value(body.clone()).unwrap();
    let prompt = hoosh_server::pipeline::estimate::chat_prompt(&typed);
    body["model"] = json!(format!("mock-usage-{prompt}-{max_tokens}"));
    if stream {
        body["stream_options"] = json!({"include_usage": true});
    }
    (body, prompt + max_tokens)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_budget_for_50_admits_exactly_50_of_500_concurrent_requests() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let (body, per_request) = exact_body(16, false);
    let (id, key) = key(&gw, budget_key(50 * per_request));
    let results = fire(&gw, &key, &body, 500).await;
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<_> = results.iter().filter(|(s, _)| *s == 429).collect();
    assert_eq!((ok, refused.len()), (50, 450), "{:?}", results.iter().find(|(s, _)| *s != 200 && *s != 429));
    assert_eq!(refused[0].1["error"]["code"], "budget_exceeded");
    assert!(refused[0].1["error"]["message"].as_str().unwrap().contains(&format!("key:{id}")));
    assert_eq!(used(&gw, &id), (50 * per_request, 0), "used == capacity, nothing left reserved");
    assert_eq!(ledger_tokens(&gw, &id), 50 * per_request, "the ledger sums to the budget");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streamed_requests_hold_the_budget_exactly_too() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let (body, per_request) = exact_body(16, true);
    let (id, key) = key(&gw, budget_key(20 * per_request));
    let results = fire(&gw, &key, &body, 200).await;
    assert_eq!(results.iter().filter(|(s, _)| *s == 200).count(), 20);
    assert_eq!(results.iter().filter(|(s, _)| *s == 429).count(), 180);
    assert_eq!(used(&gw, &id), (20 * per_request, 0));
    assert_eq!(ledger_tokens(&gw, &id), 20 * per_request);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overestimates_return_their_unused_reservation() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    // Reserve prompt + 64, but the mock reports only prompt + 8.
    let (mut body, _) = exact_body(64, false);
    let typed: ChatCompletionRequest = serde_json::from_value(body.clone()).unwrap();
    let prompt = hoosh_server::pipeline::estimate::chat_prompt(&typed);
    body["model"] = json!(format!("mock-usage-{prompt}-8"));
    let capacity = 30 * (prompt + 64);
    let (id, key) = key(&gw, budget_key(capacity));
    let results = fire(&gw, &key, &body, 300).await;
    let ok = results.iter().filter(|(s, _)| *s == 200).count() as u64;
    assert!(ok >= 30, "at least the estimate's worth fits: {ok}");
    let (used_tokens, reserved) = used(&gw, &id);
    assert_eq!(reserved, 0, "every unused reservation returned");
    assert_eq!(used_tokens, ok * (prompt + 8));
    assert!(used_tokens <= capacity, "never over the budget");
    assert_eq!(ledger_tokens(&gw, &id), used_tokens);
}

#[tokio::test]
async fn every_failure_path_settles_exactly_once() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed_with(&mock.url(), |c| c.providers[0].total_timeout_secs = 1).await;
    let (id, key) = key(&gw, budget_key(1_000_000));
    let client = http();
    let post = |body: Value| client.post(gw.url("/v1/chat/completions")).bearer_auth(&key).json(&body).send();

    // Upstream error before the first byte: nothing billable.
    let r = post(chat_body("mock-error-500", "hi")).await.unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(used(&gw, &id), (0, 0));

    // Total timeout: nothing came back, but the upstream accepted the call
    // and may bill it, so it is charged its estimate (the prompt and the
    // default cap that was sent).
    let slow = chat_body("mock-slow-3000", "hi");
    let typed: ChatCompletionRequest = serde_json::from_value(slow.clone()).unwrap();
    let abandoned = hoosh_server::pipeline::estimate::chat_prompt(&typed) + 4096;
    let r = post(slow).await.unwrap();
    assert_eq!(r.status(), 504);
    assert_eq!(used(&gw, &id), (abandoned, 0));

    // Mid-stream cut: the prompt and the chunks that were sent.
    let mut body = chat_body("mock-cut", "one two three");
    body["stream"] = json!(true);
    let r = post(body.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("\"error\""), "{text}");
    let typed: ChatCompletionRequest = serde_json::from_value(body).unwrap();
    let prompt = hoosh_server::pipeline::estimate::chat_prompt(&typed);
    let (after_cut, reserved) = used(&gw, &id);
    let after_cut = after_cut - abandoned;
    assert_eq!(reserved, 0);
    assert!(after_cut > prompt && after_cut <= prompt + 3, "prompt + chunks sent: {after_cut} (prompt {prompt})");

    // Client disconnect mid-stream: settled on drop, at once.
    let mut body = chat_body("mock-stall-5000", "bye");
    body["stream"] = json!(true);
    let r = post(body.clone()).await.unwrap();
    let mut s = r.bytes_stream();
    s.next().await.unwrap().unwrap();
    assert!(used(&gw, &id).1 > 0, "reserved while streaming");
    drop(s);
    let typed: ChatCompletionRequest = serde_json::from_value(body).unwrap();
    let prompt2 = hoosh_server::pipeline::estimate::chat_prompt(&typed);
    let mut settled = false;
    for _ in 0..100 {
        if used(&gw, &id).1 == 0 {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(settled, "the disconnect released the reservation");
    assert_eq!(used(&gw, &id).0, abandoned + after_cut + prompt2, "charged the prompt that reached the provider");

    // The ledger has one row per request, with the status each ended with.
    gw.state.gov.inner.ledger().flush();
    let mut statuses = Vec::new();
    gw.state.gov.inner.store().usage_rows(0, i64::MAX, &mut |r| statuses.push(r.status)).unwrap();
    statuses.sort_unstable();
    assert_eq!(statuses, vec![499, 502, 502, 504]);
    assert_eq!(ledger_tokens(&gw, &id), used(&gw, &id).0);
}

#[tokio::test]
async fn auth_failures_are_each_answered_precisely() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let (_, good) = key(&gw, NewKey { name: "good".into(), ..Default::default() });
    let (revoked_id, revoked) = key(&gw, NewKey { name: "revoked".into(), ..Default::default() });
    gw.state.gov.inner.keys().revoke(&revoked_id).unwrap();
    let (_, expired) = key(&gw, NewKey { name: "old".into(), expires_at: Some(now() - 1), ..Default::default() });
    let (_, narrow) =
        key(&gw, NewKey { name: "narrow".into(), models: vec!["gpt-4o-mini*".into()], ..Default::default() });
    let (_, reader) = key(&gw, NewKey { name: "reader".into(), scopes: vec![Scope::ReadUsage], ..Default::default() });
    let client = http();
    let body = chat_body("gpt-4o", "hi");
    let call = |auth: Option<(&'static str, String)>| {
        let mut req = client.post(gw.url("/v1/chat/completions")).json(&body);
        if let Some((h, v)) = auth {
            req = req.header(h, v);
        }
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let bearer = |k: &str| Some(("authorization", format!("Bearer {k}")));
    let cases = [
        (None, 401, "missing_api_key"),
        (bearer("hk-not-a-real-key"), 401, "invalid_api_key"),
        (bearer(&good[..good.len() - 1]), 401, "invalid_api_key"),
        (bearer(&revoked), 401, "revoked_api_key"),
        (bearer(&expired), 401, "expired_api_key"),
        (bearer(&narrow), 403, "model_not_allowed"),
        (bearer(&reader), 403, "insufficient_scope"),
    ];
    for (auth, status, code) in cases {
        let (got, body) = call(auth.clone()).await;
        assert_eq!((got, body["error"]["code"].as_str()), (status, Some(code)), "{auth:?}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.contains("hk-")), "never echoes keys: {body}");
    }
    assert_eq!(call(bearer(&good)).await.0, 200);
    assert_eq!(call(Some(("x-api-key", good.clone()))).await.0, 200, "Anthropic SDKs send x-api-key");
    assert_eq!(call(bearer(MASTER)).await.0, 200, "the admin key may call models");
    // Public paths need no key; everything else does.
    assert_eq!(client.get(gw.url("/health")).send().await.unwrap().status(), 200);
    assert_eq!(client.get(gw.url("/v1/models")).send().await.unwrap().status(), 401);
}

#[tokio::test]
async fn rpm_holds_at_its_edge_with_openai_headers() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let limits = Limits { rpm: Some(3), ..Default::default() };
    let (_, key) = key(&gw, NewKey { name: "rpm".into(), limits, ..Default::default() });
    let client = http();
    for i in 0..3 {
        let r = client.post(gw.url("/v1/chat/completions")).bearer_auth(&key).json(&chat_body("m", "x")).send();
        let r = r.await.unwrap();
        assert_eq!(r.status(), 200, "request {i} of 3 is within the limit");
        assert_eq!(r.headers()["x-ratelimit-limit-requests"], "3");
        assert_eq!(r.headers()["x-ratelimit-remaining-requests"], (2 - i).to_string().as_str());
    }
    let r = client.post(gw.url("/v1/chat/completions")).bearer_auth(&key).json(&chat_body("m", "x")).send();
    let r = r.await.unwrap();
    assert_eq!(r.status(), 429, "the fourth is one over");
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry), "one request frees up in 20 s: {retry}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(body["error"]["type"], "requests");
}

#[tokio::test]
async fn tpm_counts_the_estimate_at_admission() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let (body, per_request) = exact_body(10, false);
    let limits = Limits { tpm: Some(2 * per_request), ..Default::default() };
    let (_, key) = key(&gw, NewKey { name: "tpm".into(), limits, ..Default::default() });
    let results = futures_util::future::join_all((0..3).map(|_| async {
        http().post(gw.url("/v1/chat/completions")).bearer_auth(&key).json(&body).send().await.unwrap().status()
    }))
    .await;
    let ok = results.iter().filter(|s| s.as_u16() == 200).count();
    assert_eq!((ok, results.len() - ok), (2, 1), "exactly two estimates fit: {results:?}");
}

#[tokio::test]
async fn budget_headers_and_the_callers_budget_list() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let (body, per_request) = exact_body(10, false);
    let (id, key) = key(&gw, budget_key(1000));
    let r = http().post(gw.url("/v1/chat/completions")).bearer_auth(&key).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-hoosh-budget-remaining-tokens"], (1000 - per_request).to_string().as_str());
    assert_eq!(r.headers()["x-hoosh-cost-usd"], "unpriced", "mock models have no price");
    let list: Value = http().get(gw.url("/v1/budgets")).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["key_id"], id);
    assert_eq!(list["data"][0]["used_tokens"], per_request);
}

#[tokio::test]
async fn a_provider_over_its_rpm_is_skipped_for_the_next_candidate() {
    let (first, second) = (hoosh_testkit::openai::start().await, hoosh_testkit::openai::start().await);
    let mut c = config(vec![openai("first", &first.url()), openai("second", &second.url())]);
    c.providers[1].priority = 20;
    c.governance.limits = vec![hoosh_core::config::TargetLimitsConfig {
        provider: Some("first".into()),
        rpm: Some(2),
        ..Default::default()
    }];
    c.validate().unwrap();
    let gw = Gateway::start(c).await;
    let mut served = Vec::new();
    for _ in 0..3 {
        let r = http().post(gw.url("/v1/chat/completions")).json(&chat_body("m", "x")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        served.push(r.headers()["x-hoosh-provider"].to_str().unwrap().to_owned());
    }
    assert_eq!(served, ["first", "first", "second"], "exactly at the limit, then one over fails over");

    // With nowhere else to go, one over the limit is a 429 that says why.
    let mut c = config(vec![openai("only", &first.url())]);
    c.governance.limits = vec![hoosh_core::config::TargetLimitsConfig {
        provider: Some("only".into()),
        rpm: Some(1),
        ..Default::default()
    }];
    let gw = Gateway::start(c).await;
    let ok = http().post(gw.url("/v1/chat/completions")).json(&chat_body("m", "x")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let r = http().post(gw.url("/v1/chat/completions")).json(&chat_body("m", "x")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("1 requests per minute"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_clients_disconnecting_mid_stream_leave_no_reservation_behind() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let mut body = chat_body("mock-stall-10000", "hang up on me");
    body["stream"] = json!(true);
    body["max_tokens"] = json!(100);
    let typed: ChatCompletionRequest = serde_json::from_value(body.clone()).unwrap();
    let prompt = hoosh_server::pipeline::estimate::chat_prompt(&typed);
    // Room for 40 reservations (prompt + 100 each) at once.
    let (id, key) = key(&gw, budget_key(40 * (prompt + 100)));
    let client = http();
    let calls = (0..60).map(|_| {
        let req = client.post(gw.url("/v1/chat/completions")).bearer_auth(&key).json(&body);
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            if status == 200 {
                let mut s = resp.bytes_stream();
                s.next().await.unwrap().unwrap(); // the first chunk, then hang up
            }
            status
        }
    });
    let statuses = futures_util::future::join_all(calls).await;
    let ok = statuses.iter().filter(|s| **s == 200).count() as u64;
    // At least 40 fit at once; a stream that hung up early returns its
    // unused reservation, so a later request may fit too.
    assert!(ok >= 40, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count() as u64, 60 - ok);
    let mut released = false;
    for _ in 0..100 {
        if used(&gw, &id).1 == 0 {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(released, "every disconnected stream released its reservation");
    assert_eq!(used(&gw, &id).0, ok * prompt, "each charged the prompt that reached the provider");
    assert!(used(&gw, &id).0 <= 40 * (prompt + 100), "never over the budget");
    assert_eq!(ledger_tokens(&gw, &id), ok * prompt);
}
