//! Shared budgets and rates against a real Redis, with two handles playing
//! two instances: the last of a budget goes to exactly one of them, a
//! crashed instance's hold comes back when its lease expires (and not
//! before, while it is renewed), rates count both, and a window with no
//! usage yet is seeded from the ledger.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hoosh_testkit::stores;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hoosh_cluster::{RedisState, SeedSource};
use hoosh_governance::{Amount, Denied, PoolId, RateKind, SharedAsk, SharedPool, SharedRate, SharedSettle};

fn no_history() -> SeedSource {
    Arc::new(|_: &PoolId, _: i64| Ok((0, 0)))
}

async fn instance(ns: &str, ttl_ms: u64, seed: SeedSource) -> RedisState {
    RedisState::connect(&stores::redis_url(), ns, Duration::from_millis(ttl_ms), seed).await.unwrap()
}

fn key_pool(cap_tokens: u64) -> SharedPool {
    SharedPool {
        id: PoolId::Key("k1".into()),
        cap_tokens: Some(cap_tokens),
        cap_nanos: None,
        window_start: 0,
        window_end: None,
    }
}

fn ask(lease: &str, pools: Vec<SharedPool>, tokens: u64, rates: Vec<SharedRate>) -> SharedAsk {
    SharedAsk {
        lease: lease.into(),
        pools,
        amount: Amount::new(tokens, 0),
        at_risk: Amount::ZERO,
        rates,
        slots: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_racing_for_a_budget_never_take_more_than_it_holds() {
    let ns = stores::unique("t");
    let (a, b) = (instance(&ns, 10_000, no_history()).await, instance(&ns, 10_000, no_history()).await);
    // 100 answers of 10 tokens; 300 asks, half through each instance, all at once.
    let mut tasks = Vec::new();
    for i in 0..300 {
        let handle = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let ask = ask(&format!("lease-{i}"), vec![key_pool(1000)], 10, vec![]);
            match handle.reserve(&ask).await.unwrap() {
                Ok(_) => {
                    handle.settle(ask, true, Amount::new(10, 0));
                    true
                }
                Err(Denied::Budget(_)) => false,
                Err(other) => panic!("{other:?}"),
            }
        }));
    }
    let mut granted = 0;
    for t in tasks {
        granted += u32::from(t.await.unwrap());
    }
    assert!(granted <= 100, "{granted} granted for a budget of 100");
    assert!(a.drain(Duration::from_secs(5)).await && b.drain(Duration::from_secs(5)).await);
    // Whatever was refused while others held reservations fits now, up to exactly the cap.
    let mut more = 0;
    for i in 0..200 {
        let ask = ask(&format!("late-{i}"), vec![key_pool(1000)], 10, vec![]);
        if a.reserve(&ask).await.unwrap().is_ok() {
            a.settle(ask, true, Amount::new(10, 0));
            more += 1;
        }
    }
    assert_eq!(granted + more, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_instances_hold_is_released_by_lease_expiry_and_a_live_one_is_renewed() {
    let ns = stores::unique("t");
    let survivor = instance(&ns, 1_000, no_history()).await;
    let crashed = instance(&ns, 1_000, no_history()).await;
    let live = ask("held-by-survivor", vec![key_pool(100)], 40, vec![]);
    assert!(survivor.reserve(&live).await.unwrap().is_ok());
    assert!(crashed.reserve(&ask("held-by-crashed", vec![key_pool(100)], 60, vec![])).await.unwrap().is_ok());
    // The crashed instance stops renewing (its tasks end with its last handle).
    drop(crashed);
    let probe = |n: &str| ask(n, vec![key_pool(100)], 60, vec![]);
    assert!(matches!(survivor.reserve(&probe("p0")).await.unwrap(), Err(Denied::Budget(_))));
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    // 2.5 TTLs later: the crashed hold is gone, the survivor's (renewed) is still counted.
    let granted = survivor.reserve(&probe("p1")).await.unwrap();
    assert!(granted.is_ok(), "{granted:?}");
    assert_eq!(granted.unwrap().remaining.tokens, Some(0));
    assert!(matches!(
        survivor.reserve(&ask("p2", vec![key_pool(100)], 1, vec![])).await.unwrap(),
        Err(Denied::Budget(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_rate_counts_every_instance_and_a_token_estimate_is_corrected() {
    let ns = stores::unique("t");
    let (a, b) = (instance(&ns, 10_000, no_history()).await, instance(&ns, 10_000, no_history()).await);
    let rpm = |cost| SharedRate {
        key: "key:k1".into(),
        kind: RateKind::Requests,
        count: 5,
        period_ms: 60_000,
        burst: 5,
        cost,
    };
    let mut ok = 0;
    for i in 0..8 {
        let handle = if i % 2 == 0 { &a } else { &b };
        match handle.reserve(&ask(&format!("r{i}"), vec![], 0, vec![rpm(1)])).await.unwrap() {
            Ok(g) => {
                ok += 1;
                assert_eq!(g.rates.requests.unwrap().remaining, 5 - ok);
            }
            Err(Denied::RateLimited(r)) => {
                assert!(r.retry_after_ms > 0 && r.retry_after_ms <= 12_000, "{r:?}");
                assert!(!r.too_large);
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(ok, 5);

    // TPM: an estimate of 80 of 100, corrected to 10 at settle, leaves room for 90 more.
    let tpm = |cost| SharedRate {
        key: "key:k2".into(),
        kind: RateKind::Tokens,
        count: 100,
        period_ms: 60_000,
        burst: 100,
        cost,
    };
    let first = ask("t1", vec![], 80, vec![tpm(80)]);
    assert!(a.reserve(&first).await.unwrap().is_ok());
    assert!(b.reserve(&ask("t2", vec![], 80, vec![tpm(80)])).await.unwrap().is_err());
    a.settle(first, true, Amount::new(10, 0));
    assert!(a.drain(Duration::from_secs(5)).await);
    assert!(b.reserve(&ask("t3", vec![], 80, vec![tpm(80)])).await.unwrap().is_ok());
    // A cost above the whole burst can never pass.
    match b.reserve(&ask("t4", vec![], 500, vec![tpm(500)])).await.unwrap() {
        Err(Denied::RateLimited(r)) => assert!(r.too_large),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_without_usage_is_seeded_from_the_ledger_once() {
    let ns = stores::unique("t");
    let reads = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&reads);
    // The ledger says 95 tokens were used in this window before the cluster (re)started.
    let seed: SeedSource = Arc::new(move |pool: &PoolId, from: i64| {
        assert_eq!((pool, from), (&PoolId::Key("k1".into()), 0));
        counted.fetch_add(1, Ordering::SeqCst);
        Ok((95, 0))
    });
    let a = instance(&ns, 10_000, Arc::clone(&seed)).await;
    let b = instance(&ns, 10_000, seed).await;
    assert!(matches!(a.reserve(&ask("s1", vec![key_pool(100)], 10, vec![])).await.unwrap(), Err(Denied::Budget(_))));
    let five = ask("s2", vec![key_pool(100)], 5, vec![]);
    assert!(b.reserve(&five).await.unwrap().is_ok());
    assert_eq!(reads.load(Ordering::SeqCst), 1, "seeded once, by whoever came first");
    // Settled usage lands on the seeded window: the pool is now exactly full.
    b.settle(five, true, Amount::new(5, 0));
    assert!(b.drain(Duration::from_secs(5)).await);
    assert!(a.reserve(&ask("s3", vec![key_pool(100)], 1, vec![])).await.unwrap().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_is_reported_not_mistaken_for_a_refusal() {
    let relay = hoosh_testkit::relay::Relay::start("127.0.0.1:6379").unwrap();
    let url = format!("redis://127.0.0.1:{}/0", relay.port);
    let ns = stores::unique("t");
    let state = RedisState::connect(&url, &ns, Duration::from_secs(10), no_history()).await.unwrap();
    let first = ask("u1", vec![key_pool(100)], 10, vec![]);
    assert!(state.reserve(&first).await.unwrap().is_ok());
    relay.cut();
    assert!(state.reserve(&ask("u2", vec![key_pool(100)], 10, vec![])).await.is_err());
    assert!(!state.reachable());
    // A settle made while Redis is away waits for it, then lands exactly once.
    state.settle(first, true, Amount::new(30, 0));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(state.pending_settles(), 1);
    relay.restore();
    assert!(state.drain(Duration::from_secs(10)).await);
    let granted = state.reserve(&ask("u3", vec![key_pool(100)], 70, vec![])).await.unwrap();
    assert_eq!(granted.unwrap().remaining.tokens, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrency_cap_counts_every_instances_requests_in_flight() {
    let ns = stores::unique("t");
    let (a, b) = (instance(&ns, 1_000, no_history()).await, instance(&ns, 1_000, no_history()).await);
    let slot = |lease: &str| SharedAsk { slots: vec![("key:k9".into(), 3)], ..ask(lease, vec![], 0, vec![]) };
    let first = slot("c1");
    assert!(a.reserve(&first).await.unwrap().is_ok());
    assert!(b.reserve(&slot("c2")).await.unwrap().is_ok());
    let crashed = instance(&ns, 1_000, no_history()).await;
    assert!(crashed.reserve(&slot("c3")).await.unwrap().is_ok());
    // The fourth, wherever it comes in, waits for one to end.
    match b.reserve(&slot("c4")).await.unwrap() {
        Err(Denied::Concurrency(c)) => assert_eq!((c.key.as_str(), c.max), ("key:k9", 3)),
        other => panic!("{other:?}"),
    }
    a.settle(first, true, Amount::ZERO);
    assert!(a.drain(Duration::from_secs(5)).await);
    assert!(b.reserve(&slot("c5")).await.unwrap().is_ok());
    // A crashed instance's slot comes back with its lease.
    drop(crashed);
    assert!(a.reserve(&slot("c6")).await.unwrap().is_err());
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert!(a.reserve(&slot("c7")).await.unwrap().is_ok(), "the crashed instance's slot was not released");
}
