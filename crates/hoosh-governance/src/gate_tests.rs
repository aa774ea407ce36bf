use std::sync::Arc;

use super::*;
use crate::budget::{NANOS_PER_USD, Period};
use crate::clock::ManualClock;
use crate::memory::MemoryStore;
use crate::period::{DAY_MS, HOUR_MS};
use crate::principal::{NewKey, Team};
use crate::ratelimit::RateKind;
use crate::sqlite::SqliteStore;
use crate::store::GroupBy;
use crate::testutil::{TempDir, usage};

const T0: i64 = 1_717_200_000_000; // 2024-06-01T00:00:00Z

fn fast_ledger() -> LedgerOptions {
    LedgerOptions { initial_backoff: std::time::Duration::from_millis(1), ..LedgerOptions::default() }
}

fn gov_on(store: Arc<dyn Store>, clock: &Arc<ManualClock>) -> Governance {
    Governance::open_with(store, Some("sk-master".into()), clock.now_ms(), clock.clone(), fast_ledger()).unwrap()
}

fn gov() -> (Governance, Arc<MemoryStore>, Arc<ManualClock>) {
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(T0);
    (gov_on(store.clone(), &clock), store, clock)
}

fn req(model: &str, tokens: u64, nanos: u64) -> AdmitRequest<'_> {
    AdmitRequest {
        model,
        served: &[],
        estimated_tokens: tokens,
        estimated_nanos: nanos,
        at_risk: Amount::ZERO,
        dollar_exempt: false,
    }
}

fn used(g: &Governance, pool: &PoolId) -> (u64, u64, u64, u64) {
    let s = g.budgets().snapshot(pool, g.clock().now_ms()).unwrap();
    (s.used_tokens, s.used_nanos, s.reserved_tokens, s.reserved_nanos)
}

fn tokens_budget(tokens: u64) -> Option<BudgetSpec> {
    Some(BudgetSpec { tokens: Some(tokens), usd: None, period: Period::Daily })
}

/// A key in team "research" with the given limits and budget.
fn key(g: &Governance, limits: Limits, budget: Option<BudgetSpec>) -> Arc<Principal> {
    let spec = NewKey { name: "k".into(), team: Some("research".into()), limits, budget, ..NewKey::default() };
    let (_, plain) = g.keys().create(spec, T0).unwrap();
    g.keys().authenticate(Some(&plain), T0).unwrap()
}

fn outcome(request_id: &str, p: &Principal, tokens: u64, nanos: u64, now: i64) -> Outcome {
    let mut u = usage(request_id, now, Some(p.id()), p.team());
    u.prompt_tokens = tokens;
    u.completion_tokens = 0;
    u.cost_nanos = Some(nanos);
    Outcome::from_usage(u)
}

#[test]
fn an_admitted_request_holds_everything_until_finish_and_charges_once() {
    let (g, store, _) = gov();
    g.teams()
        .put(Team {
            name: "research".into(),
            budget: Some(BudgetSpec { tokens: Some(10_000), usd: Some(1.0), period: Period::Monthly }),
            limits: Limits { rpm: Some(100), tpm: Some(5_000), max_concurrency: Some(5) },
            metadata: Default::default(),
        })
        .unwrap();
    g.set_global_budget(Some(BudgetSpec { tokens: None, usd: Some(10.0), period: Period::Daily }), T0).unwrap();
    let p = key(&g, Limits { rpm: Some(10), tpm: Some(2_000), max_concurrency: Some(1) }, tokens_budget(1_000));
    let pools = [PoolId::Key(p.id().to_string()), PoolId::Team("research".into()), PoolId::Global];

    let a = g.admit(&p, req("gpt-4o", 500, NANOS_PER_USD / 10), T0).unwrap();
    assert_eq!(used(&g, &pools[0]), (0, 0, 500, NANOS_PER_USD / 10));
    assert_eq!(used(&g, &pools[1]), (0, 0, 500, NANOS_PER_USD / 10));
    assert_eq!(used(&g, &pools[2]), (0, 0, 500, NANOS_PER_USD / 10));
    assert_eq!(a.remaining(), Remaining { tokens: Some(500), usd: Some(0.9) });
    let rate = a.rate_status();
    assert_eq!(rate.requests.map(|s| (s.limit, s.remaining)), Some((10, 9)));
    assert_eq!(rate.tokens.map(|s| (s.limit, s.remaining)), Some((2_000, 1_500)));
    assert_eq!(a.estimated(), Amount::new(500, NANOS_PER_USD / 10));
    // max_concurrency 1: a second request waits for the first.
    assert!(matches!(g.admit(&p, req("gpt-4o", 1, 0), T0), Err(Denied::Concurrency(_))));

    a.finish(outcome("req-1", &p, 120, 1_000, T0));
    for pool in &pools {
        assert_eq!(used(&g, pool), (120, 1_000, 0, 0), "{pool}");
    }
    // TPM was corrected to the actual 120, and the slot is free again.
    let status = g.limits().status(&[(LimitKey::key(p.id()), Limit::tpm(2_000))], T0);
    assert_eq!(status.tokens.unwrap().remaining, 1_880);
    assert_eq!(g.concurrency().in_flight(&LimitKey::key(p.id())), 0);
    g.ledger().flush();
    assert_eq!(store.usage_len(), 1);
    assert_eq!(store.usage_totals(&pools[0], 0).unwrap(), (120, 1_000));
}

#[test]
fn models_outside_the_keys_globs_are_refused() {
    let (g, _, _) = gov();
    let spec = NewKey { name: "k".into(), models: vec!["gpt-4o*".into()], ..NewKey::default() };
    let (_, plain) = g.keys().create(spec, T0).unwrap();
    let p = g.keys().authenticate(Some(&plain), T0).unwrap();
    assert!(g.admit(&p, req("gpt-4o-mini", 1, 0), T0).is_ok());
    let err = g.admit(&p, req("claude-3-opus", 1, 0), T0).unwrap_err();
    assert_eq!(err, Denied::ModelNotAllowed { model: "claude-3-opus".into() });
    assert_eq!(err.to_string(), "this key may not use model `claude-3-opus`");
}

#[test]
fn a_budget_refusal_gives_back_the_rate_limit_charge() {
    let (g, _, _) = gov();
    let p = key(&g, Limits { rpm: Some(1), ..Limits::default() }, tokens_budget(100));
    let err = g.admit(&p, req("m", 101, 0), T0).unwrap_err();
    match err {
        Denied::Budget(e) => {
            assert_eq!(e.pool, PoolId::Key(p.id().to_string()));
            assert_eq!(e.resets_at, Some(T0 + DAY_MS));
        }
        other => panic!("expected a budget refusal, got {other:?}"),
    }
    // The single RPM slot was refunded: a fitting request still passes…
    let a = g.admit(&p, req("m", 100, 0), T0).unwrap();
    drop(a);
    // …and then the minute is spent.
    match g.admit(&p, req("m", 1, 0), T0).unwrap_err() {
        Denied::RateLimited(r) => assert_eq!((r.kind, r.retry_after_ms), (RateKind::Requests, 60_000)),
        other => panic!("expected a rate limit, got {other:?}"),
    }
}

#[test]
fn a_dropped_admission_settles_what_was_recorded_and_logs_a_499() {
    let (g, store, clock) = gov();
    let p = key(&g, Limits { tpm: Some(10_000), ..Limits::default() }, tokens_budget(1_000));
    let pool = PoolId::Key(p.id().to_string());

    let a = g.admit(&p, req("gpt-4o", 400, 0), T0).unwrap();
    clock.advance(1_500);
    drop(a);
    assert_eq!(used(&g, &pool), (0, 0, 0, 0), "nothing recorded: settled to 0");

    let mut b = g.admit(&p, req("gpt-4o", 400, 0), clock.now_ms()).unwrap();
    let mut partial = usage("req-stream", 0, Some(p.id()), p.team());
    partial.prompt_tokens = 50;
    partial.completion_tokens = 25;
    partial.cost_nanos = Some(7);
    b.record_usage(partial);
    drop(b);
    assert_eq!(used(&g, &pool), (75, 7, 0, 0));

    let mut c = g.admit(&p, req("gpt-4o", 400, 0), clock.now_ms()).unwrap();
    c.record(Amount::new(30, 0));
    drop(c);
    assert_eq!(used(&g, &pool), (105, 7, 0, 0));

    g.ledger().flush();
    let mut rows = Vec::new();
    store.usage_rows(i64::MIN, i64::MAX, &mut |r| rows.push(r.clone())).unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.status == 499 && r.key_id.as_deref() == Some(p.id())));
    assert!(rows[0].request_id.is_empty() && rows[0].latency_ms == 1_500, "no draft, no request id");
    assert_eq!(rows[1].request_id, "req-stream", "a dropped row keeps its draft's request id");
    assert!(rows.iter().all(|r| r.id.len() == 36), "every row has the admission's id");
    assert_eq!((rows[2].prompt_tokens, rows[2].model.as_str()), (30, "gpt-4o"));
    // The ledger charges exactly what the live counters were charged.
    assert_eq!(store.usage_totals(&pool, 0).unwrap(), (105, 7));
    // TPM ended corrected to the recorded amounts, not the estimates.
    let tpm = g.limits().status(&[(LimitKey::key(p.id()), Limit::tpm(10_000))], clock.now_ms());
    assert!(tpm.tokens.unwrap().remaining >= 10_000 - 105);
}

#[test]
fn dollar_exempt_requests_pass_an_exhausted_dollar_budget_but_not_a_token_one() {
    let (g, _, _) = gov();
    let spec = BudgetSpec { tokens: Some(100), usd: Some(0.000_001), period: Period::Never };
    let p = key(&g, Limits::default(), Some(spec));
    let a = g.admit(&p, req("gpt-4o", 10, 1_000), T0).unwrap();
    a.finish(outcome("r1", &p, 10, 1_000, T0));
    assert!(matches!(g.admit(&p, req("gpt-4o", 10, 1), T0), Err(Denied::Budget(_))));
    let local = AdmitRequest {
        model: "local/llama",
        served: &[],
        estimated_tokens: 90,
        estimated_nanos: 5,
        at_risk: Amount::ZERO,
        dollar_exempt: true,
    };
    let b = g.admit(&p, local, T0).unwrap();
    assert_eq!(b.estimated(), Amount::new(90, 0), "no dollars held for an exempt request");
    b.finish(outcome("r2", &p, 90, 0, T0));
    let more = AdmitRequest { estimated_tokens: 1, ..local };
    assert!(matches!(g.admit(&p, more, T0), Err(Denied::Budget(e)) if e.limit_kind == crate::BudgetLimit::Tokens));
}

#[test]
fn model_limits_count_per_model_name() {
    let (g, _, _) = gov();
    g.set_model_limits("gpt-4o*", Limits { rpm: Some(1), ..Limits::default() }).unwrap();
    g.set_model_limits("gpt-4o*", Limits { rpm: Some(2), ..Limits::default() }).unwrap();
    assert!(g.set_model_limits("[", Limits::default()).is_err());
    let p = key(&g, Limits::default(), None);
    let _a = g.admit(&p, req("gpt-4o", 1, 0), T0).unwrap();
    let _b = g.admit(&p, req("gpt-4o", 1, 0), T0).unwrap();
    match g.admit(&p, req("gpt-4o", 1, 0), T0).unwrap_err() {
        Denied::RateLimited(r) => assert_eq!(r.key.as_str(), "model:gpt-4o"),
        other => panic!("{other:?}"),
    }
    assert!(g.admit(&p, req("gpt-4o-mini", 1, 0), T0).is_ok());
    assert!(g.admit(&p, req("claude", 1, 0), T0).is_ok());
    g.clear_model_limits();
    assert!(g.admit(&p, req("gpt-4o", 1, 0), T0).is_ok());
}

#[test]
fn team_limits_are_shared_by_the_teams_keys() {
    let (g, _, _) = gov();
    g.teams()
        .put(Team {
            name: "research".into(),
            budget: tokens_budget(100),
            limits: Limits { rpm: Some(2), ..Limits::default() },
            metadata: Default::default(),
        })
        .unwrap();
    let (p1, p2) = (key(&g, Limits::default(), None), key(&g, Limits::default(), None));
    g.admit(&p1, req("m", 60, 0), T0).unwrap().finish(outcome("a", &p1, 60, 0, T0));
    // The team budget (not the key's, which has none) refuses p2.
    match g.admit(&p2, req("m", 41, 0), T0).unwrap_err() {
        Denied::Budget(e) => assert_eq!(e.pool, PoolId::Team("research".into())),
        other => panic!("{other:?}"),
    }
    g.admit(&p2, req("m", 40, 0), T0).unwrap().finish(outcome("b", &p2, 40, 0, T0));
    match g.admit(&p1, req("m", 0, 0), T0).unwrap_err() {
        Denied::RateLimited(r) => assert_eq!(r.key.as_str(), "team:research"),
        other => panic!("{other:?}"),
    }
    assert!(g.teams().remove("research").unwrap());
    assert!(g.admit(&p1, req("m", 1_000, 0), T0).is_ok(), "no team, no team limits");
}

#[test]
fn the_master_key_is_unlimited_but_counts_toward_the_global_budget() {
    let (g, _, _) = gov();
    g.set_global_budget(tokens_budget(100), T0).unwrap();
    let m = g.keys().authenticate(Some("sk-master"), T0).unwrap();
    let a = g.admit(&m, req("anything", 100, 0), T0).unwrap();
    assert!(matches!(g.admit(&m, req("anything", 1, 0), T0), Err(Denied::Budget(e)) if e.pool == PoolId::Global));
    assert_eq!(a.rate_status(), RateReport::default());
    drop(a);
}

#[test]
fn windows_roll_for_admissions_too() {
    let (g, _, clock) = gov();
    let p = key(&g, Limits::default(), tokens_budget(100));
    let late = T0 + DAY_MS - HOUR_MS;
    clock.set(late);
    g.admit(&p, req("m", 100, 0), late).unwrap().finish(outcome("d1", &p, 100, 0, late));
    assert!(g.admit(&p, req("m", 1, 0), late).is_err());
    let a = g.admit(&p, req("m", 1, 0), T0 + DAY_MS).unwrap();
    assert_eq!(a.remaining().tokens, Some(99));
}

#[test]
fn reopening_rebuilds_budget_usage_from_the_ledger_without_double_counting() {
    let dir = TempDir::new("rebuild");
    let clock = ManualClock::new(T0 + DAY_MS + HOUR_MS); // day 2, 01:00
    let now = clock.now_ms();
    let (key_pool, team_pool, plain, before) = {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.db()).unwrap());
        let g = gov_on(store.clone(), &clock);
        g.teams()
            .put(Team {
                name: "research".into(),
                budget: tokens_budget(1_000_000),
                limits: Limits::default(),
                metadata: Default::default(),
            })
            .unwrap();
        let spec = NewKey {
            name: "k".into(),
            team: Some("research".into()),
            budget: tokens_budget(10_000),
            ..NewKey::default()
        };
        let (_, plain) = g.keys().create(spec, now).unwrap();
        let p = g.keys().authenticate(Some(&plain), now).unwrap();
        // Yesterday's usage must not count against today's daily pools, but
        // does count against this month's global pool (a new pool is rebuilt
        // from the ledger when it is set).
        store.append_usage(&[usage("old", T0 + HOUR_MS, Some(p.id()), Some("research"))]).unwrap();
        g.set_global_budget(Some(BudgetSpec { tokens: None, usd: Some(5.0), period: Period::Monthly }), now).unwrap();
        for i in 0..20 {
            let a = g.admit(&p, req("gpt-4o-mini", 200, 5_000), now).unwrap();
            a.finish(outcome(&format!("req-{i}"), &p, 100 + i, 1_000 * i, now));
        }
        let dropped = g.admit(&p, req("gpt-4o-mini", 200, 5_000), now).unwrap();
        drop(dropped);
        let in_flight = g.admit(&p, req("gpt-4o-mini", 200, 5_000), now).unwrap();
        let key_pool = PoolId::Key(p.id().to_string());
        let team_pool = PoolId::Team("research".into());
        let before: Vec<_> = [&key_pool, &team_pool, &PoolId::Global].iter().map(|pool| used(&g, pool)).collect();
        // Simulate kill -9 with a request in flight: the ledger had committed
        // everything finished, the reservation dies with the process.
        g.close();
        std::mem::forget(in_flight);
        (key_pool, team_pool, plain, before)
    };
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.db()).unwrap());
    let g = gov_on(store, &clock);
    assert!(g.keys().authenticate(Some(&plain), now).is_ok());
    let after: Vec<_> = [&key_pool, &team_pool, &PoolId::Global].iter().map(|pool| used(&g, pool)).collect();
    let expected_tokens: u64 = (0..20).map(|i| 100 + i).sum();
    let expected_nanos: u64 = (0..20).map(|i| 1_000 * i).sum();
    assert_eq!(before[0], (expected_tokens, expected_nanos, 200, 5_000));
    for (b, a) in before.iter().zip(&after) {
        assert_eq!((a.0, a.1), (b.0, b.1), "used survives a restart exactly");
        assert_eq!((a.2, a.3), (0, 0), "reservations do not");
    }
    // The monthly global pool also holds yesterday's row; the daily ones do not.
    assert_eq!(after[2], (expected_tokens + 120, expected_nanos + 1_000, 0, 0));
    g.close();
}

#[test]
fn admissions_name_their_rows_with_unique_ids_in_admission_order() {
    let (g, store, clock) = gov();
    let p = key(&g, Limits::default(), None);
    let mut ids = Vec::new();
    for i in 0..20 {
        // Ten admissions per millisecond: the counter orders those within one.
        clock.set(T0 + i / 10);
        let a = g.admit(&p, req("m", 1, 0), clock.now_ms()).unwrap();
        ids.push(a.id().to_owned());
        a.finish(outcome(&format!("req-{i}"), &p, 1, 0, clock.now_ms()));
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "made later sorts later: {ids:?}");
    g.ledger().flush();
    let mut stored = Vec::new();
    store.usage_rows(i64::MIN, i64::MAX, &mut |r| stored.push(r.id.clone())).unwrap();
    assert_eq!(stored, ids, "each row carries its admission's id");
}

/// Someone with a valid key sends every request with the same
/// `x-request-id`, hoping the ledger keeps one row and a restart forgets
/// the rest of their spending.
#[test]
fn fifty_requests_sharing_a_request_id_all_count_after_a_restart() {
    let dir = TempDir::new("same-id");
    let clock = ManualClock::new(T0 + HOUR_MS);
    let now = clock.now_ms();
    let budget = tokens_budget(1_000_000);
    let (key_pool, plain) = {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.db()).unwrap());
        let g = gov_on(store, &clock);
        let spec = NewKey { name: "k".into(), budget, ..NewKey::default() };
        let (_, plain) = g.keys().create(spec, now).unwrap();
        let p = g.keys().authenticate(Some(&plain), now).unwrap();
        for i in 0..50 {
            let a = g.admit(&p, req("gpt-4o-mini", 100, 1_000), now).unwrap();
            a.finish(outcome("same-id", &p, 10 + i, 100 * i, now));
        }
        let key_pool = PoolId::Key(p.id().to_string());
        g.close();
        (key_pool, plain)
    };
    let expected = ((0..50).map(|i| 10 + i).sum::<u64>(), (0..50).map(|i| 100 * i).sum::<u64>());

    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.db()).unwrap());
    let g = gov_on(store.clone(), &clock);
    assert!(g.keys().authenticate(Some(&plain), now).is_ok());
    assert_eq!(used(&g, &key_pool), (expected.0, expected.1, 0, 0), "the rebuilt budget holds all 50");
    assert_eq!(store.usage_totals(&key_pool, 0).unwrap(), expected);
    let report = store.usage_aggregate(GroupBy::Key, 0, i64::MAX).unwrap();
    assert_eq!(report.iter().map(|r| r.requests).sum::<u64>(), 50);
    let mut rows = Vec::new();
    store.usage_rows(0, i64::MAX, &mut |r| rows.push((r.id.clone(), r.request_id.clone()))).unwrap();
    assert_eq!(rows.len(), 50);
    assert!(rows.iter().all(|(_, request_id)| request_id == "same-id"));
    let ids: std::collections::HashSet<_> = rows.iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), 50, "fifty distinct row ids");
    let mut csv = Vec::new();
    assert_eq!(crate::csv::export(store.as_ref(), 0, i64::MAX, &mut csv).unwrap(), 50);
    g.close();
}

#[test]
fn a_dropped_admission_keeps_its_request_id_under_its_own_id() {
    let (g, store, _) = gov();
    let p = key(&g, Limits::default(), None);
    let mut a = g.admit(&p, req("gpt-4o", 100, 0), T0).unwrap();
    let id = a.id().to_owned();
    a.record_usage(usage("req-hangup", T0, Some(p.id()), p.team()));
    drop(a);
    // A second hang-up reusing the request id is a row of its own.
    let mut b = g.admit(&p, req("gpt-4o", 100, 0), T0).unwrap();
    b.record_usage(usage("req-hangup", T0, Some(p.id()), p.team()));
    drop(b);
    g.ledger().flush();
    let mut rows = Vec::new();
    store.usage_rows(i64::MIN, i64::MAX, &mut |r| rows.push(r.clone())).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].id.as_str(), rows[0].request_id.as_str(), rows[0].status), (id.as_str(), "req-hangup", 499));
    assert_eq!(rows[1].request_id, "req-hangup");
    assert_ne!(rows[0].id, rows[1].id);
}

#[test]
fn ledger_rows_are_attributed_to_the_pools_that_were_charged() {
    let (g, store, _) = gov();
    let p = key(&g, Limits::default(), tokens_budget(1_000));
    let mut u = usage("req-x", T0, None, Some("someone-else"));
    u.prompt_tokens = 10;
    u.completion_tokens = 0;
    g.admit(&p, req("m", 10, 0), T0).unwrap().finish(Outcome::from_usage(u));
    g.ledger().flush();
    let mut rows = Vec::new();
    store.usage_rows(i64::MIN, i64::MAX, &mut |r| rows.push(r.clone())).unwrap();
    assert_eq!((rows[0].key_id.as_deref(), rows[0].team.as_deref()), (Some(p.id()), Some("research")));
    assert_eq!(store.usage_totals(&PoolId::Key(p.id().to_string()), 0).unwrap().0, 10);
}

#[test]
fn handles_cross_threads_and_await_points() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Governance>();
    send_sync::<Principal>();
    send::<Admission>();
    send::<crate::BudgetGuard>();
    send::<crate::ConcurrencyPermit>();
}

/// Records what it is told, for the shared-state seam.
#[derive(Debug, Default)]
struct Sink(parking_lot::Mutex<Vec<(SharedAsk, bool, Amount)>>);

impl SharedSettle for Sink {
    fn settle(&self, ask: SharedAsk, held: bool, actual: Amount) {
        self.0.lock().push((ask, held, actual));
    }
}

#[test]
fn the_shared_ask_names_every_pool_and_rate_the_admission_holds_and_is_settled_once() {
    let (g, _, clock) = gov();
    g.set_global_budget(Some(BudgetSpec { tokens: None, usd: Some(10.0), period: Period::Monthly }), T0).unwrap();
    let p = key(&g, Limits { rpm: Some(60), tpm: Some(10_000), max_concurrency: Some(2) }, tokens_budget(1_000));
    let a = g.admit(&p, AdmitRequest { at_risk: Amount::new(7, 0), ..req("m", 100, 2_000) }, T0).unwrap();
    let ask = g.shared_ask(&a, T0);
    assert_eq!(ask.lease, a.id());
    assert_eq!((ask.amount, ask.at_risk), (Amount::new(100, 2_000), Amount::new(7, 0)));
    let pools: Vec<_> = ask.pools.iter().map(|s| (s.id.clone(), s.cap_tokens, s.cap_nanos)).collect();
    assert_eq!(pools, [(PoolId::Global, None, Some(10 * NANOS_PER_USD)), (p.key_pool.clone(), Some(1_000), None)]);
    let day = ask.pools.iter().find(|s| s.id == p.key_pool).unwrap();
    assert_eq!((day.window_start, day.window_end), (T0, Some(T0 + DAY_MS)));
    let rates: Vec<_> = ask.rates.iter().map(|r| (r.kind, r.count, r.cost)).collect();
    assert_eq!(rates, [(RateKind::Requests, 60, 1), (RateKind::Tokens, 10_000, 100)]);
    assert_eq!(ask.slots, [(format!("key:{}", p.id()), 2)]);

    // Attached, it is settled exactly once, with the actual cost — also by a drop.
    let sink = Arc::new(Sink::default());
    let mut a = a;
    a.attach_shared(sink.clone(), ask.clone(), true);
    a.record(Amount::new(40, 900));
    drop(a);
    clock.advance(1);
    let told = sink.0.lock().clone();
    assert_eq!(told, [(ask, true, Amount::new(40, 900))]);
}

#[test]
fn a_dollar_exempt_admission_asks_the_shared_store_for_no_dollars() {
    let (g, _, _) = gov();
    g.set_global_budget(Some(BudgetSpec { tokens: Some(5_000), usd: Some(1.0), period: Period::Never }), T0).unwrap();
    let p = key(&g, Limits::default(), None);
    let a = g.admit(&p, AdmitRequest { dollar_exempt: true, ..req("m", 10, 0) }, T0).unwrap();
    let ask = g.shared_ask(&a, T0);
    assert_eq!(ask.pools.len(), 1);
    assert_eq!((ask.pools[0].cap_tokens, ask.pools[0].cap_nanos, ask.pools[0].window_end), (Some(5_000), None, None));
    a.withdraw(T0);
}
