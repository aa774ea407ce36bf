//! The per-request governance cost: authenticate + admit (key and team RPM,
//! TPM and concurrency; key, team and global budget reservations) + finish
//! (settle, TPM correction, ledger append) against a MemoryStore ledger.
//! Target: well under 5 µs per request.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use hoosh_governance::{
    AdmitRequest, Amount, BudgetSpec, Clock, Governance, Limit, LimitKey, Limits, MemoryStore, NewKey, Outcome, Period,
    PoolId, SystemClock, Team, UsageRecord,
};

fn setup() -> (Governance, String) {
    let now = SystemClock.now_ms();
    let gov = Governance::open(Arc::new(MemoryStore::new()), None, now).expect("open");
    // Limits high enough never to refuse, so every iteration takes the full path.
    let generous = Limits { rpm: Some(u32::MAX), tpm: Some(1 << 50), max_concurrency: Some(1_000) };
    let budget = Some(BudgetSpec { tokens: Some(1 << 50), usd: Some(1e9), period: Period::Monthly });
    gov.teams()
        .put(Team { name: "research".into(), budget, limits: generous, metadata: Default::default() })
        .expect("team");
    gov.set_global_budget(budget, now).expect("global");
    let spec =
        NewKey { name: "bench".into(), team: Some("research".into()), limits: generous, budget, ..NewKey::default() };
    let (_, plain) = gov.keys().create(spec, now).expect("key");
    (gov, plain)
}

fn governed_path(c: &mut Criterion) {
    let (gov, plain) = setup();
    let clock = SystemClock;
    let mut n: u64 = 0;

    c.bench_function("authenticate", |b| {
        b.iter(|| black_box(gov.keys().authenticate(Some(black_box(&plain)), clock.now_ms()).is_ok()))
    });

    c.bench_function("authenticate+admit+finish", |b| {
        b.iter(|| {
            // The real clock, as the server reads it (finish reads it too).
            let t = clock.now_ms();
            n += 1;
            let principal = gov.keys().authenticate(Some(&plain), t).expect("auth");
            let req = AdmitRequest {
                model: "gpt-4o-mini",
                served: &[("openai", "gpt-4o-mini")],
                estimated_tokens: 600,
                estimated_nanos: 90_000,
                at_risk: hoosh_governance::Amount::ZERO,
                dollar_exempt: false,
            };
            let admission = gov.admit(&principal, req, t).expect("admit");
            let usage = UsageRecord {
                id: String::new(), // the admission's id is stamped on at finish
                ts_ms: t,
                request_id: format!("req-{n}"),
                key_id: Some(principal.id().to_string()),
                team: principal.team().map(str::to_string),
                provider: Some("openai".into()),
                model: "gpt-4o-mini".into(),
                prompt_tokens: 400,
                completion_tokens: 120,
                cached_tokens: 0,
                cost_nanos: Some(60_000),
                latency_ms: 350,
                ttft_ms: None,
                status: 200,
                cache_hit: false,
                route: "chat".into(),
                audio_ms: 0,
            };
            admission.finish(Outcome::from_usage(usage));
        })
    });
    gov.close();
}

/// The same path taken apart, to see where the time goes.
fn parts(c: &mut Criterion) {
    let (gov, plain) = setup();
    let clock = SystemClock;
    let principal = gov.keys().authenticate(Some(&plain), clock.now_ms()).expect("auth");
    let pools = [PoolId::Key(principal.id().to_string()), PoolId::Team("research".into()), PoolId::Global];
    c.bench_function("parts/reserve+settle 3 pools", |b| {
        b.iter(|| {
            let t = clock.now_ms();
            let r = gov.budgets().reserve(&pools, Amount::new(600, 90_000), t).expect("reserve");
            gov.budgets().settle(r, Amount::new(520, 60_000), t);
        })
    });
    let limits = [
        (LimitKey::key("a"), Limit::rpm(u32::MAX), 1),
        (LimitKey::key("a"), Limit::tpm(1 << 50), 600),
        (LimitKey::team("t"), Limit::rpm(u32::MAX), 1),
        (LimitKey::team("t"), Limit::tpm(1 << 50), 600),
    ];
    c.bench_function("parts/rate 4 limits + 2 corrections", |b| {
        b.iter(|| {
            let t = clock.now_ms();
            let taken = gov.limits().check_and_take(&limits, t).expect("rate");
            gov.limits().correct(&taken[1].key, 600, 520, t);
            gov.limits().correct(&taken[3].key, 600, 520, t);
        })
    });
    let slots = [(LimitKey::key("a"), 1_000), (LimitKey::team("t"), 1_000)];
    c.bench_function("parts/concurrency 2 slots", |b| {
        b.iter(|| drop(black_box(gov.concurrency().try_acquire(&slots).expect("slots"))))
    });
    let mut n: u64 = 0;
    c.bench_function("parts/ledger append", |b| {
        b.iter(|| {
            n += 1;
            gov.ledger().append(UsageRecord {
                request_id: format!("part-{n}"),
                model: "gpt-4o-mini".into(),
                route: "chat".into(),
                ..UsageRecord::default()
            });
        })
    });
    gov.close();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = governed_path, parts
}
criterion_main!(benches);
