//! Candidate selection: globs, aliases, addressing, strategies, health order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use hoosh_core::Placement;
use hoosh_core::config::BreakerConfig;
use hoosh_core::params::ParamSupport;
use hoosh_core::router::{Need, RouteError};
use hoosh_core::strategy::Strategy;
use support::*;

fn names(c: &[hoosh_core::router::Candidate]) -> Vec<String> {
    c.iter().map(|c| format!("{}:{}", c.entry.name(), c.model)).collect()
}

fn e(
    p: &std::sync::Arc<Scripted>,
    patterns: Vec<&'static str>,
    priority: i32,
) -> std::sync::Arc<hoosh_core::router::ProviderEntry> {
    entry(EntrySpec { provider: p.clone(), patterns, priority, weight: 1 }, BreakerConfig::default())
}

#[test]
fn globs_match_anywhere() {
    let a = Scripted::new("a");
    let b = Scripted::new("b");
    let r = router(vec![e(&a, vec!["*-mini"], 1), e(&b, vec!["gpt-?o", "claude-*-4*"], 1)], Strategy::Priority);
    assert_eq!(names(&r.candidates("gpt-4o-mini", Need::Chat).unwrap()), ["a:gpt-4o-mini"]);
    assert_eq!(names(&r.candidates("gpt-4o", Need::Chat).unwrap()), ["b:gpt-4o"]);
    assert_eq!(names(&r.candidates("claude-sonnet-4-5", Need::Chat).unwrap()), ["b:claude-sonnet-4-5"]);
    assert_eq!(r.candidates("llama3", Need::Chat).unwrap_err(), RouteError::ModelNotFound("llama3".into()));
}

#[test]
fn aliases_keep_their_order_and_rewrite_the_model() {
    let a = Scripted::new("groq");
    let b = Scripted::new("openai");
    let mut aliases = BTreeMap::new();
    aliases.insert("fast".to_owned(), vec!["openai/gpt-4o-mini".to_owned(), "groq/llama-3.1-8b-instant".to_owned()]);
    let r = router_with_aliases(vec![e(&a, vec!["*"], 1), e(&b, vec!["*"], 9)], Strategy::Priority, aliases);
    assert_eq!(names(&r.candidates("fast", Need::Chat).unwrap()), ["openai:gpt-4o-mini", "groq:llama-3.1-8b-instant"]);
}

#[test]
fn provider_prefix_addresses_one_provider() {
    let a = Scripted::new("a");
    let b = Scripted::new("b");
    let r = router(vec![e(&a, vec!["x*"], 1), e(&b, vec!["*/*"], 1)], Strategy::Priority);
    assert_eq!(names(&r.candidates("a/xyz", Need::Chat).unwrap()), ["a:xyz"]);
    // A named provider is asked only for models its globs route to, and a
    // refused address does not fall through to another provider's globs.
    assert_eq!(r.candidates("a/anything", Need::Chat).unwrap_err(), RouteError::ModelNotFound("a/anything".into()));
    // `meta-llama/...` is no provider name: it is an ordinary model id.
    assert_eq!(names(&r.candidates("meta-llama/llama-3", Need::Chat).unwrap()), ["b:meta-llama/llama-3"]);
}

#[test]
fn in_process_and_nearby_win_ties_and_priority_wins_over_placement() {
    let remote = Scripted::new("remote");
    let local = Scripted::with("local", ParamSupport::all(), Placement::InProcess);
    let ollama = Scripted::with("ollama", ParamSupport::all(), Placement::Nearby);
    let r =
        router(vec![e(&remote, vec!["*"], 5), e(&ollama, vec!["*"], 5), e(&local, vec!["*"], 5)], Strategy::Priority);
    // In-process and nearby are equals: declaration order between them.
    assert_eq!(names(&r.candidates("m", Need::Chat).unwrap()), ["ollama:m", "local:m", "remote:m"]);
    let r = router(vec![e(&remote, vec!["*"], 1), e(&local, vec!["*"], 5)], Strategy::Priority);
    assert_eq!(names(&r.candidates("m", Need::Chat).unwrap()), ["remote:m", "local:m"]);
}

#[test]
fn round_robin_counts_per_model() {
    let a = Scripted::new("a");
    let b = Scripted::new("b");
    let r = router(vec![e(&a, vec!["*"], 1), e(&b, vec!["*"], 1)], Strategy::RoundRobin);
    let first = |m: &str| r.candidates(m, Need::Chat).unwrap()[0].entry.name().to_owned();
    assert_eq!(first("x"), "a");
    assert_eq!(first("y"), "a", "y has its own counter");
    assert_eq!(first("x"), "b");
    assert_eq!(first("x"), "a");
    assert_eq!(first("y"), "b");
}

#[test]
fn least_busy_prefers_fewer_in_flight() {
    let a = Scripted::new("a");
    let b = Scripted::new("b");
    let ea = e(&a, vec!["*"], 1);
    let r = router(vec![ea.clone(), e(&b, vec!["*"], 1)], Strategy::LeastBusy);
    let _busy = ea.stats.begin();
    assert_eq!(r.candidates("m", Need::Chat).unwrap()[0].entry.name(), "b");
}

#[tokio::test(start_paused = true)]
async fn lowest_latency_explores_unmeasured_and_stale() {
    let a = Scripted::new("a");
    let b = Scripted::new("b");
    let ea = e(&a, vec!["*"], 1);
    let eb = e(&b, vec!["*"], 1);
    let r = router(vec![ea.clone(), eb.clone()], Strategy::LowestLatency);
    ea.stats.record_success(Duration::from_millis(50));
    assert_eq!(r.candidates("m", Need::Chat).unwrap()[0].entry.name(), "b", "b is unmeasured: explore it");
    eb.stats.record_success(Duration::from_millis(200));
    assert_eq!(r.candidates("m", Need::Chat).unwrap()[0].entry.name(), "a");
    tokio::time::advance(Duration::from_secs(61)).await;
    ea.stats.record_success(Duration::from_millis(50));
    assert_eq!(r.candidates("m", Need::Chat).unwrap()[0].entry.name(), "b", "b's sample is stale: explore again");
}

#[test]
fn cost_orders_free_then_cheapest_then_unpriced() {
    let pricey = Scripted::new("pricey");
    let cheap = Scripted::new("cheap");
    let local = Scripted::with("local", ParamSupport::all(), Placement::InProcess);
    let ollama = Scripted::with("ollama", ParamSupport::all(), Placement::Nearby);
    let unknown = Scripted::new("unknown");
    let mut aliases = BTreeMap::new();
    aliases.insert(
        "any".to_owned(),
        vec![
            "unknown/mystery-model".into(),
            "pricey/gpt-4o".into(),
            "cheap/gpt-4o-mini".into(),
            "local/smollm2".into(),
            // A model name the price table knows, served by a nearby server: still free.
            "ollama/gpt-4o".into(),
        ],
    );
    let r = router_with_aliases(
        vec![
            e(&pricey, vec!["*"], 1),
            e(&cheap, vec!["*"], 1),
            e(&local, vec!["*"], 1),
            e(&ollama, vec!["*"], 1),
            e(&unknown, vec!["*"], 1),
        ],
        Strategy::Cost,
        aliases,
    );
    assert_eq!(
        names(&r.candidates("any", Need::Chat).unwrap()),
        ["local:smollm2", "ollama:gpt-4o", "cheap:gpt-4o-mini", "pricey:gpt-4o", "unknown:mystery-model"]
    );
}

#[test]
fn weighted_spreads_by_weight() {
    let a = Scripted::new("a");
    let b = Scripted::new("b");
    let ea =
        entry(EntrySpec { provider: a.clone(), patterns: vec!["*"], priority: 1, weight: 9 }, BreakerConfig::default());
    let eb =
        entry(EntrySpec { provider: b.clone(), patterns: vec!["*"], priority: 1, weight: 1 }, BreakerConfig::default());
    let r = router(vec![ea, eb], Strategy::Weighted);
    let a_first = (0..2000).filter(|_| r.candidates("m", Need::Chat).unwrap()[0].entry.name() == "a").count();
    assert!((1650..1950).contains(&a_first), "a first {a_first}/2000, expected about 1800");
}

#[test]
fn unhealthy_moves_to_the_back() {
    let a = Scripted::new("a");
    let b = Scripted::new("b");
    let ea = e(&a, vec!["*"], 1);
    let r = router(vec![ea.clone(), e(&b, vec!["*"], 2)], Strategy::Priority);
    ea.stats.set_healthy(false, Some("probe failed".into()));
    assert_eq!(names(&r.candidates("m", Need::Chat).unwrap()), ["b:m", "a:m"]);
}

#[test]
fn embeddings_need_a_provider_that_embeds() {
    let a = Scripted::new("a");
    let r = router(vec![e(&a, vec!["*"], 1)], Strategy::Priority);
    assert!(r.candidates("m", Need::Embeddings).is_err());
}
