use std::sync::{Arc, Barrier};
use std::thread;

use proptest::prelude::*;

use super::*;
use crate::clock::ManualClock;
use crate::period::{DAY_MS, HOUR_MS};

const T0: i64 = 1_717_200_000_000; // 2024-06-01T00:00:00Z

fn key(id: &str) -> PoolId {
    PoolId::Key(id.to_string())
}

fn team(name: &str) -> PoolId {
    PoolId::Team(name.to_string())
}

fn tokens(cap: u64) -> Option<BudgetSpec> {
    Some(BudgetSpec { tokens: Some(cap), usd: None, period: Period::Never })
}

fn used_reserved(b: &Budgets, pool: &PoolId, now: i64) -> (u64, u64) {
    let s = b.snapshot(pool, now).unwrap();
    (s.used_tokens, s.reserved_tokens)
}

#[test]
fn exactly_at_capacity_fits_and_one_over_is_refused_naming_the_pool() {
    let b = Budgets::new();
    b.set(key("a"), tokens(100));
    let r = b.reserve(&[key("a")], Amount::new(100, 0), T0).unwrap();
    b.settle(r, Amount::new(99, 0), T0);
    // 99 used: 1 more fits exactly, 2 do not.
    let err = b.reserve(&[key("a")], Amount::new(2, 0), T0).unwrap_err();
    assert_eq!(
        err,
        BudgetExceeded { pool: key("a"), resets_at: None, limit_kind: BudgetLimit::Tokens, contended: false }
    );
    assert_eq!(err.to_string(), "token budget of key:a is exhausted");
    let r = b.reserve(&[key("a")], Amount::new(1, 0), T0).unwrap();
    assert_eq!(r.remaining(), Remaining { tokens: Some(0), usd: None });
    b.settle(r, Amount::new(1, 0), T0);
    assert_eq!(used_reserved(&b, &key("a"), T0), (100, 0));
}

#[test]
fn reservation_is_atomic_across_pools() {
    let b = Budgets::new();
    b.set(key("a"), tokens(1_000));
    b.set(team("t"), tokens(10));
    b.set(PoolId::Global, tokens(1_000));
    let pools = [key("a"), team("t"), PoolId::Global];
    let err = b.reserve(&pools, Amount::new(11, 0), T0).unwrap_err();
    assert_eq!(err.pool, team("t"));
    for p in &pools {
        assert_eq!(used_reserved(&b, p, T0), (0, 0), "{p} must hold nothing after a refusal");
    }
    let r = b.reserve(&pools, Amount::new(10, 0), T0).unwrap();
    for p in &pools {
        assert_eq!(used_reserved(&b, p, T0), (0, 10));
    }
    assert_eq!(r.pools().count(), 3);
    b.settle(r, Amount::new(4, 0), T0);
    for p in &pools {
        assert_eq!(used_reserved(&b, p, T0), (4, 0), "settle releases the unused part of the hold");
    }
}

#[test]
fn pools_without_a_budget_are_ignored_and_duplicates_count_once() {
    let b = Budgets::new();
    b.set(key("a"), tokens(10));
    let r = b.reserve(&[key("a"), key("a"), team("none"), PoolId::Global], Amount::new(10, 0), T0).unwrap();
    assert_eq!(r.pools().collect::<Vec<_>>(), vec![&key("a")]);
    assert_eq!(used_reserved(&b, &key("a"), T0), (0, 10));
    b.settle(r, Amount::new(10, 0), T0);
    let free = b.reserve(&[team("none")], Amount::new(u64::MAX, u64::MAX), T0).unwrap();
    assert_eq!(free.pools().count(), 0);
    b.settle(free, Amount::ZERO, T0);
}

#[test]
fn each_dimension_is_checked_only_where_capped() {
    let b = Budgets::new();
    b.set(key("tok"), tokens(10));
    b.set(key("usd"), Some(BudgetSpec { tokens: None, usd: Some(1.0), period: Period::Never }));
    // The token-only pool ignores dollars, the dollar-only pool ignores tokens.
    let r = b.reserve(&[key("tok")], Amount::new(10, u64::MAX / 2), T0).unwrap();
    b.settle(r, Amount::ZERO, T0);
    let r = b.reserve(&[key("usd")], Amount::new(u64::MAX / 2, NANOS_PER_USD), T0).unwrap();
    b.settle(r, Amount::ZERO, T0);
    let err = b.reserve(&[key("usd")], Amount::new(0, NANOS_PER_USD + 1), T0).unwrap_err();
    assert_eq!(err.limit_kind, BudgetLimit::Usd);
    // Dollar-exempt requests (local models) skip the dollar check only.
    let r = b.reserve_usd_exempt(&[key("usd"), key("tok")], Amount::new(10, NANOS_PER_USD + 1), T0).unwrap();
    b.settle(r, Amount::ZERO, T0);
    assert!(b.reserve_usd_exempt(&[key("tok")], Amount::new(11, 0), T0).is_err());
}

#[test]
fn overrun_is_recorded_and_blocks_until_the_window_rolls() {
    let b = Budgets::new();
    b.set(key("a"), Some(BudgetSpec { tokens: Some(100), usd: None, period: Period::Daily }));
    let r = b.reserve(&[key("a")], Amount::new(10, 0), T0).unwrap();
    b.settle(r, Amount::new(150, 0), T0);
    assert_eq!(used_reserved(&b, &key("a"), T0), (150, 0));
    let err = b.reserve(&[key("a")], Amount::ZERO, T0 + HOUR_MS).unwrap_err();
    assert_eq!(err.resets_at, Some(T0 + DAY_MS));
    let s = b.snapshot(&key("a"), T0).unwrap();
    assert_eq!(s.remaining_tokens, Some(0));
    let r = b.reserve(&[key("a")], Amount::new(100, 0), T0 + DAY_MS).unwrap();
    b.settle(r, Amount::ZERO, T0 + DAY_MS);
}

#[test]
fn window_roll_keeps_in_flight_reservations_and_charges_the_new_window() {
    let b = Budgets::new();
    b.set(key("a"), Some(BudgetSpec { tokens: Some(100), usd: None, period: Period::Daily }));
    let late = T0 + DAY_MS - HOUR_MS; // day 1, 23:00
    let settled = b.reserve(&[key("a")], Amount::new(30, 0), late).unwrap();
    b.settle(settled, Amount::new(30, 0), late);
    let in_flight = b.reserve(&[key("a")], Amount::new(60, 0), late).unwrap();
    assert_eq!(in_flight.window_start(&key("a")), Some(T0));
    assert_eq!(used_reserved(&b, &key("a"), late), (30, 60));

    // Day 2: day 1's usage is gone, the in-flight hold is not.
    let next = T0 + DAY_MS + HOUR_MS / 2;
    assert_eq!(used_reserved(&b, &key("a"), next), (0, 60));
    assert!(b.reserve(&[key("a")], Amount::new(41, 0), next).is_err());
    let second = b.reserve(&[key("a")], Amount::new(40, 0), next).unwrap();
    assert_eq!(second.window_start(&key("a")), Some(T0 + DAY_MS));

    // The request that started on day 1 ends on day 2 and is charged to day 2.
    b.settle(in_flight, Amount::new(55, 0), next);
    assert_eq!(used_reserved(&b, &key("a"), next), (55, 40));
    b.settle(second, Amount::new(40, 0), next);
    assert_eq!(used_reserved(&b, &key("a"), next), (95, 0));
}

#[test]
fn guards_settle_exactly_once_with_what_was_recorded() {
    let clock = ManualClock::new(T0);
    let b = Arc::new(Budgets::with_clock(clock.clone()));
    b.set(key("a"), tokens(100));
    let pools = [key("a")];

    let dropped = b.reserve_guarded(&pools, Amount::new(50, 0), false, T0).unwrap();
    assert_eq!(used_reserved(&b, &key("a"), T0), (0, 50));
    drop(dropped);
    assert_eq!(used_reserved(&b, &key("a"), T0), (0, 0), "a dropped guard settles to 0");

    let mut partial = b.reserve_guarded(&pools, Amount::new(50, 0), false, T0).unwrap();
    partial.record(Amount::new(5, 0));
    partial.record(Amount::new(12, 0));
    drop(partial);
    assert_eq!(used_reserved(&b, &key("a"), T0), (12, 0), "the last recorded amount, once");

    let mut explicit = b.reserve_guarded(&pools, Amount::new(50, 0), false, T0).unwrap();
    explicit.record(Amount::new(20, 0));
    explicit.settle(T0);
    assert_eq!(used_reserved(&b, &key("a"), T0), (32, 0));

    let panicking = b.reserve_guarded(&pools, Amount::new(50, 0), false, T0).unwrap();
    let result = thread::spawn(move || {
        let mut g = panicking;
        g.record(Amount::new(3, 0));
        panic!("handler panicked");
    })
    .join();
    assert!(result.is_err());
    assert_eq!(used_reserved(&b, &key("a"), T0), (35, 0), "a panic unwinds through the guard");
}

/// 16 threads race 500 reservations against a budget that fits exactly 50.
fn race(estimate: u64, actual: u64) -> (usize, Arc<Budgets>) {
    let b = Arc::new(Budgets::new());
    b.set(key("a"), tokens(50 * estimate));
    b.set(PoolId::Global, Some(BudgetSpec { tokens: None, usd: Some(50.0), period: Period::Monthly }));
    let start = Arc::new(Barrier::new(16));
    let done = Arc::new(Barrier::new(16));
    let handles: Vec<_> = (0..16)
        .map(|t| {
            let (b, start, done) = (Arc::clone(&b), Arc::clone(&start), Arc::clone(&done));
            thread::spawn(move || {
                let attempts = 500 / 16 + usize::from(t < 500 % 16);
                let pools = [key("a"), PoolId::Global];
                start.wait();
                let held: Vec<_> = (0..attempts)
                    .filter_map(|_| b.reserve(&pools, Amount::new(estimate, NANOS_PER_USD), T0).ok())
                    .collect();
                // Nobody settles before every attempt has been made.
                done.wait();
                let n = held.len();
                for r in held {
                    b.settle(r, Amount::new(actual, NANOS_PER_USD / 2), T0);
                }
                n
            })
        })
        .collect();
    let granted = handles.into_iter().map(|h| h.join().unwrap()).sum();
    (granted, b)
}

#[test]
fn concurrent_reservations_never_oversubscribe() {
    let (granted, b) = race(1, 1);
    assert_eq!(granted, 50);
    let s = b.snapshot(&key("a"), T0).unwrap();
    assert_eq!((s.used_tokens, s.reserved_tokens), (50, 0));
    assert_eq!(s.remaining_tokens, Some(0));
    let g = b.snapshot(&PoolId::Global, T0).unwrap();
    assert_eq!((g.used_nanos, g.reserved_nanos), (25 * NANOS_PER_USD, 0));
}

#[test]
fn concurrent_reservations_with_overestimates_release_the_difference() {
    let (granted, b) = race(10, 4);
    assert_eq!(granted, 50);
    assert_eq!(used_reserved(&b, &key("a"), T0), (200, 0));
    // 300 tokens of headroom came back: 30 more estimates of 10 fit, the 31st does not.
    let more: Vec<_> = (0..31).filter_map(|_| b.reserve(&[key("a")], Amount::new(10, 0), T0).ok()).collect();
    assert_eq!(more.len(), 30);
    for r in more {
        b.settle(r, Amount::ZERO, T0);
    }
}

#[test]
fn spec_changes_keep_usage_and_rebuild_restores_it() {
    let b = Budgets::new();
    assert!(b.set(key("a"), tokens(100)), "a new pool wants a rebuild");
    let r = b.reserve(&[key("a")], Amount::new(10, 0), T0).unwrap();
    b.settle(r, Amount::new(10, 0), T0);
    assert!(!b.set(key("a"), tokens(200)), "same period: no rebuild needed");
    assert_eq!(used_reserved(&b, &key("a"), T0), (10, 0));
    assert!(b.set(key("a"), Some(BudgetSpec { tokens: Some(200), usd: None, period: Period::Daily })));
    assert!(b.rebuild(&key("a"), 77, 5, Period::Daily.window_start(T0)));
    let s = b.snapshot(&key("a"), T0).unwrap();
    assert_eq!((s.used_tokens, s.used_nanos, s.window_start), (77, 5, T0));
    assert!(!b.rebuild(&key("zzz"), 1, 1, T0));
    b.set(key("a"), None);
    assert!(b.snapshot(&key("a"), T0).is_none());
}

#[test]
fn money_and_pool_names_convert_at_the_edges() {
    assert_eq!(usd_to_nanos(1.0), 1_000_000_000);
    assert_eq!(usd_to_nanos(0.000_000_001), 1);
    assert_eq!(usd_to_nanos(2.5e-6), 2_500);
    assert_eq!(usd_to_nanos(-3.0), 0);
    assert_eq!(usd_to_nanos(f64::NAN), 0);
    assert_eq!(usd_to_nanos(f64::INFINITY), u64::MAX);
    assert_eq!(nanos_to_usd(1_500_000_000), 1.5);
    for s in ["global", "team:research", "key:key_ab12cd34ef56ab78"] {
        assert_eq!(s.parse::<PoolId>().unwrap().to_string(), s);
    }
    assert!("team:".parse::<PoolId>().is_err());
    assert!("bogus".parse::<PoolId>().is_err());
    let spec: BudgetSpec = serde_json::from_str(r#"{"usd": 5, "period": "weekly"}"#).unwrap();
    assert_eq!(spec, BudgetSpec { tokens: None, usd: Some(5.0), period: Period::Weekly });
    assert!(serde_json::from_str::<BudgetSpec>(r#"{"dollars": 5}"#).is_err());
}

#[derive(Debug, Clone)]
enum Op {
    Reserve { pools: u8, tokens: u64, nanos: u64, risk: u64 },
    Settle { pick: usize, tokens: u64, nanos: u64 },
    Advance(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..8, 0u64..60, 0u64..3_000, 0u64..40)
            .prop_map(|(pools, tokens, nanos, risk)| Op::Reserve { pools, tokens, nanos, risk }),
        3 => (any::<usize>(), 0u64..90, 0u64..4_000).prop_map(|(pick, tokens, nanos)| Op::Settle { pick, tokens, nanos }),
        1 => (0i64..2 * HOUR_MS).prop_map(Op::Advance),
    ]
}

proptest! {
    #[test]
    fn reserved_always_equals_open_holds_and_grants_never_exceed_capacity(ops in prop::collection::vec(op(), 1..80)) {
        let all = [key("a"), team("t"), PoolId::Global];
        let caps = [(Some(200u64), None), (None, Some(10_000u64)), (Some(300), Some(20_000))];
        let b = Budgets::new();
        b.set(all[0].clone(), Some(BudgetSpec { tokens: caps[0].0, usd: None, period: Period::Hourly }));
        b.set(all[1].clone(), Some(BudgetSpec { tokens: None, usd: Some(10e-6), period: Period::Never }));
        b.set(all[2].clone(), Some(BudgetSpec { tokens: caps[2].0, usd: Some(20e-6), period: Period::Daily }));
        let mut now = T0;
        let mut open: Vec<(Reservation, Vec<PoolId>)> = Vec::new();
        for op in ops {
            match op {
                Op::Reserve { pools, tokens, nanos, risk } => {
                    let chosen: Vec<PoolId> = (0..3).filter(|i| pools & (1 << i) != 0).map(|i| all[i].clone()).collect();
                    let before: Vec<_> = all.iter().map(|p| b.snapshot(p, now).unwrap()).collect();
                    let at_risk = Amount::new(risk, risk * 50);
                    match b.reserve_at_risk(&chosen, Amount::new(tokens, nanos), at_risk, now) {
                        Ok(r) => {
                            for (i, p) in all.iter().enumerate() {
                                if !chosen.contains(p) { continue; }
                                let s = b.snapshot(p, now).unwrap();
                                if let Some(cap) = caps[i].0 { prop_assert!(s.used_tokens + s.reserved_tokens <= cap); }
                                if let Some(cap) = caps[i].1 { prop_assert!(s.used_nanos + s.reserved_nanos <= cap); }
                            }
                            open.push((r, chosen));
                        }
                        Err(e) => {
                            let i = all.iter().position(|p| *p == e.pool).unwrap();
                            prop_assert!(chosen.contains(&e.pool));
                            let s = &before[i];
                            // Refused: over the cap, or (contended) over it with the risk of those in flight.
                            let (used, reserved, risk_open, want, want_risk, cap) = match e.limit_kind {
                                BudgetLimit::Tokens => (s.used_tokens, s.reserved_tokens, s.at_risk_tokens, tokens, at_risk.tokens, caps[i].0.unwrap()),
                                BudgetLimit::Usd => (s.used_nanos, s.reserved_nanos, s.at_risk_nanos, nanos, at_risk.nanos, caps[i].1.unwrap()),
                            };
                            if e.contended {
                                prop_assert!(s.open_reservations > 0);
                                prop_assert!(used + reserved + want + risk_open + want_risk > cap);
                                prop_assert!(used + want <= cap, "contended only while what is in flight could still settle lower");
                            } else {
                                prop_assert!(used + reserved + want > cap);
                            }
                        }
                    }
                }
                Op::Settle { pick, tokens, nanos } => {
                    if !open.is_empty() {
                        let (r, _) = open.swap_remove(pick % open.len());
                        b.settle(r, Amount::new(tokens, nanos), now);
                    }
                }
                Op::Advance(ms) => now += ms,
            }
            for p in &all {
                let s = b.snapshot(p, now).unwrap();
                let holds: Vec<_> = open.iter().filter(|(_, ps)| ps.contains(p)).collect();
                let (t, n) = holds.iter().fold((0, 0), |(t, n), (r, _)| (t + r.amount().tokens, n + r.amount().nanos));
                prop_assert_eq!((s.reserved_tokens, s.reserved_nanos), (t, n), "pool {}", p);
                let risk = holds.iter().fold(0, |acc, (r, _)| acc + r.at_risk().tokens);
                prop_assert_eq!((s.open_reservations, s.at_risk_tokens), (holds.len() as u64, risk), "pool {}", p);
            }
        }
        for (r, _) in open {
            b.settle(r, Amount::ZERO, now);
        }
        for p in &all {
            let s = b.snapshot(p, now).unwrap();
            prop_assert_eq!((s.reserved_tokens, s.open_reservations, s.at_risk_tokens, s.at_risk_nanos), (0, 0, 0, 0));
        }
    }
}

#[test]
fn near_the_end_of_a_pool_requests_at_risk_run_one_at_a_time() {
    let b = Budgets::new();
    b.set(key("a"), Some(BudgetSpec { tokens: Some(100), ..Default::default() }));
    let risk = Amount::new(20, 0);
    // 30 + 20 at risk, then 30 more: 30 + 30 + 40 at risk = 100, exactly fits.
    let first = b.reserve_at_risk(&[key("a")], Amount::new(30, 0), risk, T0).unwrap();
    let second = b.reserve_at_risk(&[key("a")], Amount::new(30, 0), risk, T0).unwrap();
    // A third fits by reservation (90 <= 100) but not next to the risk in flight.
    let err = b.reserve_at_risk(&[key("a")], Amount::new(30, 0), risk, T0).unwrap_err();
    assert!(err.contended, "{err:?}");
    let err = b.reserve_at_risk(&[key("a")], Amount::new(1, 0), Amount::ZERO, T0).unwrap_err();
    assert!(err.contended, "one token over the edge: {err:?}");
    // The first two overrun by their whole risk.
    b.settle(first, Amount::new(50, 0), T0);
    b.settle(second, Amount::new(50, 0), T0);
    // Nothing open: any reservation that fits is granted alone...
    let err = b.reserve_at_risk(&[key("a")], Amount::new(1, 0), risk, T0).unwrap_err();
    assert!(!err.contended, "the pool is spent: {err:?}");
    assert_eq!(b.snapshot(&key("a"), T0).unwrap().used_tokens, 100);
}

#[test]
fn a_refusal_only_in_flight_work_causes_is_contended_and_a_spent_pool_wins() {
    let b = Budgets::new();
    b.set(key("a"), Some(BudgetSpec { tokens: Some(100), ..Default::default() }));
    b.set(PoolId::Global, Some(BudgetSpec { tokens: Some(1_000), ..Default::default() }));
    let held = b.reserve(&[key("a")], Amount::new(90, 0), T0).unwrap();
    // 90 reserved, 0 used: 20 more do not fit now, but may once it settles.
    let err = b.reserve(&[key("a")], Amount::new(20, 0), T0).unwrap_err();
    assert!(err.contended, "{err:?}");
    b.settle(held, Amount::new(95, 0), T0);
    // The key is now spent while the global pool is contended: the spent
    // pool is the answer, not a wait.
    let other = b.reserve_at_risk(&[PoolId::Global], Amount::new(900, 0), Amount::new(100, 0), T0).unwrap();
    let err = b.reserve_at_risk(&[key("a"), PoolId::Global], Amount::new(10, 0), Amount::new(10, 0), T0).unwrap_err();
    assert_eq!((err.pool.clone(), err.contended), (key("a"), false), "{err:?}");
    b.settle(other, Amount::ZERO, T0);
}

#[test]
fn a_lone_reservation_is_granted_whatever_its_risk() {
    let b = Budgets::new();
    b.set(key("a"), Some(BudgetSpec { tokens: Some(100), ..Default::default() }));
    let alone = b.reserve_at_risk(&[key("a")], Amount::new(90, 0), Amount::new(1_000, 0), T0).unwrap();
    let err = b.reserve_at_risk(&[key("a")], Amount::new(5, 0), Amount::ZERO, T0).unwrap_err();
    assert!(err.contended);
    b.settle(alone, Amount::new(90, 0), T0);
    let next = b.reserve_at_risk(&[key("a")], Amount::new(10, 0), Amount::new(1_000, 0), T0).unwrap();
    b.settle(next, Amount::new(10, 0), T0);
    let s = b.snapshot(&key("a"), T0).unwrap();
    assert_eq!((s.used_tokens, s.reserved_tokens), (100, 0));
}
