use proptest::prelude::*;

use super::*;

const T0: i64 = 1_717_200_000_000;

fn req(key: &LimitKey, n: u32) -> (LimitKey, Limit, u64) {
    (key.clone(), Limit::rpm(n), 1)
}

#[test]
fn rpm_lets_exactly_n_through_at_once_then_waits_one_interval() {
    for n in [1u32, 7, 60] {
        let rl = RateLimiter::new();
        let k = LimitKey::key(&format!("k{n}"));
        for i in 0..n {
            assert!(rl.check_and_take(&[req(&k, n)], T0).is_ok(), "request {i} of {n}");
        }
        let err = rl.check_and_take(&[req(&k, n)], T0).unwrap_err();
        let interval = 60_000u64.div_ceil(u64::from(n)); // 60/n s, rounded up to a ms
        assert_eq!(err.retry_after_ms, interval);
        assert_eq!((err.limit, err.kind, err.too_large), (u64::from(n), RateKind::Requests, false));
        assert!(rl.check_and_take(&[req(&k, n)], T0 + interval as i64 - 1).is_err(), "1 ms early");
        assert!(rl.check_and_take(&[req(&k, n)], T0 + interval as i64).is_ok(), "exactly at retry_after");
        assert!(rl.check_and_take(&[req(&k, n)], T0 + interval as i64).is_err(), "only one came back");
    }
}

#[test]
fn retry_after_for_sixty_rpm_is_one_second() {
    let rl = RateLimiter::new();
    let k = LimitKey::key("a");
    for _ in 0..60 {
        rl.check_and_take(&[req(&k, 60)], T0).unwrap();
    }
    let err = rl.check_and_take(&[req(&k, 60)], T0 + 250).unwrap_err();
    assert_eq!(err.retry_after_ms, 750);
    assert_eq!(err.to_string(), "request rate limit of 60 for key:a reached; retry in 750ms");
}

#[test]
fn tpm_correction_refunds_and_charges() {
    let rl = RateLimiter::new();
    let k = LimitKey::key("a");
    let tpm = Limit::tpm(1_000);
    rl.check_and_take(&[(k.clone(), tpm, 800)], T0).unwrap();
    assert!(rl.check_and_take(&[(k.clone(), tpm, 300)], T0).is_err());
    // The request used 100, not 800: 700 come back at once.
    rl.correct(&k, 800, 100, T0);
    let taken = rl.check_and_take(&[(k.clone(), tpm, 900)], T0).unwrap();
    assert_eq!(taken[0].status.remaining, 0);
    // It used 1 100 instead of 900: 200 tokens of debt = 12 s before 1 more token fits.
    rl.correct(&k, 900, 1_100, T0);
    let err = rl.check_and_take(&[(k.clone(), tpm, 1)], T0).unwrap_err();
    assert_eq!(err.retry_after_ms, 12_060);
    // A refund never overfills the bucket.
    rl.correct(&k, 1_000_000, 0, T0);
    assert!(rl.check_and_take(&[(k.clone(), tpm, 1_000)], T0).is_ok());
    assert!(rl.check_and_take(&[(k.clone(), tpm, 1)], T0).is_err());
    // Corrections on a key with no token state do nothing.
    rl.correct(&LimitKey::key("none"), 5, 10, T0);
    assert_eq!(rl.tracked(), 1);
}

#[test]
fn a_cost_above_the_burst_is_refused_as_too_large() {
    let rl = RateLimiter::new();
    let err = rl.check_and_take(&[(LimitKey::key("a"), Limit::tpm(100), 101)], T0).unwrap_err();
    assert!(err.too_large);
    assert_eq!(err.retry_after_ms, 60_000);
    assert!(rl.check_and_take(&[(LimitKey::key("z"), Limit::rpm(0), 1)], T0).unwrap_err().too_large);
}

#[test]
fn several_limits_are_charged_all_or_none() {
    let rl = RateLimiter::new();
    let (key, team, model) = (LimitKey::key("a"), LimitKey::team("t"), LimitKey::model("gpt-4o"));
    let items = |tokens| {
        vec![
            (key.clone(), Limit::rpm(10), 1),
            (key.clone(), Limit::tpm(10_000), tokens),
            (team.clone(), Limit::rpm(2), 1),
            (model.clone(), Limit::tpm(1_000), tokens),
        ]
    };
    rl.check_and_take(&items(100), T0).unwrap();
    // The model's TPM refuses: nothing else may have been charged.
    let err = rl.check_and_take(&items(901), T0).unwrap_err();
    assert_eq!((err.key.as_str(), err.kind), ("model:gpt-4o", RateKind::Tokens));
    let report = rl.status(&[(key.clone(), Limit::rpm(10)), (team.clone(), Limit::rpm(2))], T0);
    assert_eq!(report.requests.map(|s| s.remaining), Some(1), "team had 1 left and still has");
    let status = rl.status(&[(key.clone(), Limit::rpm(10))], T0).requests.unwrap();
    assert_eq!(status.remaining, 9);
    rl.check_and_take(&items(100), T0).unwrap();
    // Now the team is out; the refusal with the longest wait is reported.
    let err = rl.check_and_take(&items(100), T0).unwrap_err();
    assert_eq!((err.key.as_str(), err.retry_after_ms), ("team:t", 30_000));
}

#[test]
fn refund_returns_what_was_taken() {
    let rl = RateLimiter::new();
    let k = LimitKey::key("a");
    let taken = rl.check_and_take(&[req(&k, 1), (k.clone(), Limit::tpm(50), 50)], T0).unwrap();
    rl.refund(&taken, T0);
    assert!(rl.check_and_take(&[req(&k, 1), (k.clone(), Limit::tpm(50), 50)], T0).is_ok());
}

#[test]
fn the_same_key_twice_in_one_list_counts_twice() {
    let rl = RateLimiter::new();
    let k = LimitKey::key("a");
    assert!(rl.check_and_take(&[req(&k, 2), req(&k, 2), req(&k, 2)], T0).is_err());
    assert!(rl.check_and_take(&[req(&k, 2), req(&k, 2)], T0).is_ok());
    assert!(rl.check_and_take(&[req(&k, 2)], T0).is_err());
}

#[test]
fn status_reports_the_tightest_limit_for_headers() {
    let rl = RateLimiter::new();
    let (a, b) = (LimitKey::key("a"), LimitKey::team("b"));
    let taken = rl.check_and_take(&[req(&a, 60), req(&b, 10), (a.clone(), Limit::tpm(1000), 250)], T0).unwrap();
    let mut report = RateReport::default();
    for t in &taken {
        report.tighten(t.limit.kind, t.status);
    }
    assert_eq!(report.requests, Some(RateStatus { limit: 10, remaining: 9, reset_ms: 6_000 }));
    assert_eq!(report.tokens, Some(RateStatus { limit: 1000, remaining: 750, reset_ms: 15_000 }));
    let headers = report.headers();
    assert_eq!(headers[0], ("x-ratelimit-limit-requests", "10".to_string()));
    assert_eq!(headers[2], ("x-ratelimit-reset-requests", "6s".to_string()));
    assert_eq!(headers[5], ("x-ratelimit-reset-tokens", "15s".to_string()));
    let fresh = rl.status(&[(LimitKey::key("new"), Limit::rpm(5))], T0);
    assert_eq!(fresh.requests, Some(RateStatus { limit: 5, remaining: 5, reset_ms: 0 }));
}

#[test]
fn reconfigured_limits_keep_the_fraction_used() {
    let rl = RateLimiter::new();
    let k = LimitKey::key("a");
    for _ in 0..5 {
        rl.check_and_take(&[req(&k, 10)], T0).unwrap();
    }
    // Half of rpm 10 was used; after doubling the limit, half of rpm 20 is left.
    for _ in 0..10 {
        rl.check_and_take(&[req(&k, 20)], T0).unwrap();
    }
    assert_eq!(rl.check_and_take(&[req(&k, 20)], T0).unwrap_err().retry_after_ms, 3_000);
}

#[test]
fn prune_forgets_only_full_buckets() {
    let rl = RateLimiter::new();
    rl.check_and_take(&[req(&LimitKey::key("a"), 60)], T0).unwrap();
    rl.check_and_take(&[req(&LimitKey::key("b"), 1)], T0 + 30_000).unwrap();
    rl.prune(T0 + 1_000);
    assert_eq!(rl.tracked(), 1);
}

#[test]
fn reset_durations_read_like_openai() {
    let cases = [
        (0, "0s"),
        (6, "6ms"),
        (20, "20ms"),
        (999, "999ms"),
        (1_000, "1s"),
        (1_500, "1.5s"),
        (8_572, "8.572s"),
        (59_990, "59.99s"),
        (60_000, "1m0s"),
        (360_000, "6m0s"),
        (61_001, "1m1.001s"),
        (3_600_000, "1h0m0s"),
        (3_723_400, "1h2m3.4s"),
    ];
    for (ms, want) in cases {
        assert_eq!(format_reset(ms), want, "{ms} ms");
    }
}

proptest! {
    /// GCRA's guarantee: over any interval of length L, at most burst + L/T
    /// requests pass, and a request refused at t passes at t + retry_after.
    #[test]
    fn never_more_than_burst_plus_rate(n in 1u32..30, gaps in prop::collection::vec(0i64..5_000, 1..200)) {
        let rl = RateLimiter::new();
        let k = LimitKey::key("p");
        let interval = 60_000f64 / f64::from(n);
        let mut now = T0;
        let mut passed: Vec<i64> = Vec::new();
        for gap in gaps {
            now += gap;
            match rl.check_and_take(&[req(&k, n)], now) {
                Ok(_) => passed.push(now),
                Err(e) => {
                    prop_assert!(e.retry_after_ms > 0);
                    let report = rl.status(&[(k.clone(), Limit::rpm(n))], now);
                    prop_assert_eq!(report.requests.unwrap().remaining, 0);
                }
            }
        }
        for (i, &a) in passed.iter().enumerate() {
            for (j, &b) in passed.iter().enumerate().skip(i) {
                let count = (j - i + 1) as f64;
                prop_assert!(count <= f64::from(n) + (b - a) as f64 / interval + 1e-9);
            }
        }
    }
}
