//! The exact-match response cache over HTTP: deterministic requests are
//! answered once upstream and then from the cache (streams replay as
//! streams), the rest bypass it, hits count toward rate limits and are in
//! the ledger with no cost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hoosh_governance::{Limits, NewKey};
use serde_json::{Value, json};
use support::*;

fn deterministic(stream: bool) -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "cache me"}], "temperature": 0, "stream": stream})
}

#[tokio::test]
async fn a_deterministic_answer_is_served_again_from_the_cache() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = Gateway::start(config(vec![openai("up", &mock.url())])).await;
    let post = |body: Value| http().post(gw.url("/v1/chat/completions")).json(&body).send();

    let first = post(deterministic(false)).await.unwrap();
    assert_eq!(first.headers()["x-hoosh-cache"], "miss");
    let first: Value = first.json().await.unwrap();
    let second = post(deterministic(false)).await.unwrap();
    assert_eq!(second.headers()["x-hoosh-cache"], "hit");
    assert_eq!(second.json::<Value>().await.unwrap(), first);
    assert_eq!(mock.call_count(), 1, "the second never reached the provider");

    // A stream is cached apart and replays as a stream.
    let a = post(deterministic(true)).await.unwrap();
    assert_eq!(a.headers()["x-hoosh-cache"], "miss");
    let a = sse_chunks(&a.text().await.unwrap());
    let b = post(deterministic(true)).await.unwrap();
    assert_eq!(b.headers()["x-hoosh-cache"], "hit");
    assert_eq!(b.headers()["content-type"], "text/event-stream");
    let b = sse_chunks(&b.text().await.unwrap());
    assert_eq!(a, b);
    assert_eq!(mock.call_count(), 2);

    // Sampling requests and explicit opt-outs bypass it.
    let mut sampled = deterministic(false);
    sampled["temperature"] = json!(0.7);
    for _ in 0..2 {
        assert_eq!(post(sampled.clone()).await.unwrap().headers()["x-hoosh-cache"], "bypass");
    }
    let r = http()
        .post(gw.url("/v1/chat/completions"))
        .header("x-hoosh-cache", "false")
        .json(&deterministic(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-hoosh-cache"], "bypass");
    assert_eq!(mock.call_count(), 5);

    // Hits are in the ledger, free.
    gw.state.gov.inner.ledger().flush();
    let mut hits = Vec::new();
    gw.state
        .gov
        .inner
        .store()
        .usage_rows(0, i64::MAX, &mut |r| {
            if r.cache_hit {
                hits.push((r.provider.clone(), r.cost_nanos, r.prompt_tokens + r.completion_tokens));
            }
        })
        .unwrap();
    assert_eq!(hits, vec![(Some("cache".into()), Some(0), 0); 2]);
}

#[tokio::test]
async fn cache_hits_still_count_toward_rate_limits() {
    let mock = hoosh_testkit::openai::start().await;
    let mut c = config(vec![openai("up", &mock.url())]);
    c.governance.master_key_env = "HOOSH_TEST_MASTER_KEY_UNSET".into();
    c.governance.master_key_file = Some(secret_file("hk-cache-test-master-0123456789abcdefghij"));
    let gw = Gateway::start(c).await;
    let spec =
        NewKey { name: "rpm".into(), limits: Limits { rpm: Some(2), ..Default::default() }, ..Default::default() };
    let (_, key) = gw.state.gov.inner.keys().create(spec, gw.state.now_ms()).unwrap();
    let post = || http().post(gw.url("/v1/chat/completions")).bearer_auth(&key).json(&deterministic(false)).send();
    assert_eq!(post().await.unwrap().headers()["x-hoosh-cache"], "miss");
    assert_eq!(post().await.unwrap().headers()["x-hoosh-cache"], "hit");
    assert_eq!(post().await.unwrap().status(), 429, "the hit used the second request of the minute");
}
