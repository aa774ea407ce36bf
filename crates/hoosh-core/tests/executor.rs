//! The failover / retry / breaker matrix, with paused time so waits are exact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use hoosh_core::config::BreakerConfig;
use hoosh_core::executor::Executor;
use hoosh_core::params::{ParamSupport, UnsupportedParamAction};
use hoosh_core::router::Need;
use hoosh_core::strategy::Strategy;
use hoosh_core::{ErrorKind, Placement};
use support::*;
use tokio::time::Instant;

fn two() -> (std::sync::Arc<Scripted>, std::sync::Arc<Scripted>, hoosh_core::router::Router) {
    let a = Scripted::new("a");
    let b = Scripted::new("b");
    let r = router(vec![simple(&a, 1), simple(&b, 2)], Strategy::Priority);
    (a, b, r)
}

#[tokio::test(start_paused = true)]
async fn upstream_500_retries_then_fails_over() {
    let (a, b, r) = two();
    a.push(Step::Fail(err(ErrorKind::Upstream, Some(500), None)));
    a.push(Step::Fail(err(ErrorKind::Upstream, Some(500), None)));
    let ex = Executor::new(routing());
    let out = ex.chat(&r.candidates("m", Need::Chat).unwrap(), &request("m")).await.unwrap();
    assert_eq!(out.entry.name(), "b");
    assert_eq!(out.attempts, 3, "two tries on a (1 retry), one on b");
    assert_eq!((a.calls(), b.calls()), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn bad_request_is_not_failed_over() {
    let (a, b, r) = two();
    a.push(Step::Fail(err(ErrorKind::BadRequest, Some(400), None)));
    let ex = Executor::new(routing());
    let f = ex.chat(&r.candidates("m", Need::Chat).unwrap(), &request("m")).await.unwrap_err();
    assert_eq!(f.error.kind, ErrorKind::BadRequest);
    assert_eq!(f.error.provider.as_deref(), Some("a"));
    assert_eq!((a.calls(), b.calls()), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn short_retry_after_is_honoured_on_the_same_provider() {
    let (a, b, r) = two();
    a.push(Step::Fail(err(ErrorKind::RateLimited, Some(429), Some(Duration::from_secs(2)))));
    let ex = Executor::new(routing());
    let t0 = Instant::now();
    let out = ex.chat(&r.candidates("m", Need::Chat).unwrap(), &request("m")).await.unwrap();
    assert_eq!(out.entry.name(), "a");
    assert_eq!(t0.elapsed(), Duration::from_secs(2), "waited exactly Retry-After");
    assert_eq!((a.calls(), b.calls()), (2, 0));
}

#[tokio::test(start_paused = true)]
async fn long_retry_after_falls_back_at_once() {
    let (a, b, r) = two();
    a.push(Step::Fail(err(ErrorKind::RateLimited, Some(429), Some(Duration::from_secs(47)))));
    let ex = Executor::new(routing());
    let t0 = Instant::now();
    let out = ex.chat(&r.candidates("m", Need::Chat).unwrap(), &request("m")).await.unwrap();
    assert_eq!(out.entry.name(), "b");
    assert_eq!(t0.elapsed(), Duration::ZERO, "no wait: a fallback exists");
    assert_eq!((a.calls(), b.calls()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn long_retry_after_on_the_last_candidate_returns_429_with_it() {
    let a = Scripted::new("a");
    let r = router(vec![simple(&a, 1)], Strategy::Priority);
    a.push(Step::Fail(err(ErrorKind::RateLimited, Some(429), Some(Duration::from_secs(47)))));
    let f = Executor::new(routing()).chat(&r.candidates("m", Need::Chat).unwrap(), &request("m")).await.unwrap_err();
    assert_eq!(f.error.kind, ErrorKind::RateLimited);
    assert_eq!(f.error.retry_after, Some(Duration::from_secs(47)));
    assert_eq!(a.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn connect_refused_backs_off_within_the_cap() {
    let (a, b, r) = two();
    a.push(Step::Fail(err(ErrorKind::Connect, None, None)));
    let ex = Executor::new(routing());
    let t0 = Instant::now();
    let out = ex.chat(&r.candidates("m", Need::Chat).unwrap(), &request("m")).await.unwrap();
    assert_eq!(out.entry.name(), "a", "the retry succeeded");
    assert!(t0.elapsed() <= Duration::from_millis(100), "first backoff is at most base");
    assert_eq!(b.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn all_failing_returns_the_last_error() {
    let (a, b, r) = two();
    for _ in 0..2 {
        a.push(Step::Fail(err(ErrorKind::Upstream, Some(502), None)));
        b.push(Step::Fail(err(ErrorKind::Timeout, None, None)));
    }
    let f = Executor::new(routing()).chat(&r.candidates("m", Need::Chat).unwrap(), &request("m")).await.unwrap_err();
    assert_eq!(f.error.kind, ErrorKind::Timeout);
    assert_eq!(f.error.provider.as_deref(), Some("b"));
    assert_eq!(f.attempts, 4);
}

#[tokio::test(start_paused = true)]
async fn invalid_upstream_json_fails_over_without_retry() {
    let (a, b, r) = two();
    a.push(Step::Fail(err(ErrorKind::InvalidResponse, Some(200), None)));
    let out = Executor::new(routing()).chat(&r.candidates("m", Need::Chat).unwrap(), &request("m")).await.unwrap();
    assert_eq!(out.entry.name(), "b");
    assert_eq!((a.calls(), b.calls()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn breaker_opens_skips_then_half_opens() {
    let a = Scripted::new("a");
    let b = Scripted::new("b");
    let cfg = BreakerConfig { consecutive_failures: 2, failure_rate: 1.0, window: 10, min_calls: 10, open_secs: 30 };
    let ea = entry(EntrySpec { provider: a.clone(), patterns: vec!["*"], priority: 1, weight: 1 }, cfg.clone());
    let eb = entry(EntrySpec { provider: b.clone(), patterns: vec!["*"], priority: 2, weight: 1 }, cfg);
    let r = router(vec![ea.clone(), eb], Strategy::Priority);
    let ex = Executor::new(routing());
    a.push(Step::Fail(err(ErrorKind::Upstream, Some(500), None)));
    a.push(Step::Fail(err(ErrorKind::Upstream, Some(500), None)));
    ex.chat(&r.candidates("m", Need::Chat).unwrap(), &request("m")).await.unwrap();
    assert_eq!(ea.stats.snapshot().circuit.as_str(), "open");
    // While open, a is not even tried and b comes first.
    let c = r.candidates("m", Need::Chat).unwrap();
    assert_eq!(c[0].entry.name(), "b");
    ex.chat(&c, &request("m")).await.unwrap();
    assert_eq!(a.calls(), 2);
    // After the open period a gets one probe, which closes it on success.
    tokio::time::advance(Duration::from_secs(30)).await;
    let c = r.candidates("m", Need::Chat).unwrap();
    assert_eq!(c[0].entry.name(), "a");
    let out = ex.chat(&c, &request("m")).await.unwrap();
    assert_eq!(out.entry.name(), "a");
    assert_eq!(ea.stats.snapshot().circuit.as_str(), "closed");
}

#[tokio::test(start_paused = true)]
async fn all_circuits_open_still_tries_the_best_candidate() {
    let a = Scripted::new("a");
    let cfg = BreakerConfig { consecutive_failures: 1, failure_rate: 1.0, window: 10, min_calls: 10, open_secs: 30 };
    let ea = entry(EntrySpec { provider: a.clone(), patterns: vec!["*"], priority: 1, weight: 1 }, cfg);
    let r = router(vec![ea.clone()], Strategy::Priority);
    let ex = Executor::new(hoosh_core::config::RoutingConfig { max_retries: 0, ..routing() });
    a.push(Step::Fail(err(ErrorKind::Upstream, Some(500), None)));
    ex.chat(&r.candidates("m", Need::Chat).unwrap(), &request("m")).await.unwrap_err();
    assert!(!ea.stats.available());
    let out = ex.chat(&r.candidates("m", Need::Chat).unwrap(), &request("m")).await.unwrap();
    assert_eq!(out.entry.name(), "a");
    assert_eq!(a.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn stream_first_byte_timeout_fails_over() {
    let (a, _b, r) = two();
    a.push(Step::Delay(Duration::from_secs(6), Box::new(Step::Ok)));
    a.push(Step::Delay(Duration::from_secs(6), Box::new(Step::Ok)));
    let ex = Executor::new(routing());
    let t0 = Instant::now();
    let out = ex.chat_stream(&r.candidates("m", Need::Chat).unwrap(), &request("m")).await.unwrap();
    assert_eq!(out.entry.name(), "b");
    assert!(t0.elapsed() >= Duration::from_secs(10), "two 5 s first-byte timeouts on a");
    let chunks: Vec<_> = out.value.collect().await;
    assert!(chunks.iter().all(Result::is_ok));
    assert_eq!(chunks.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn stream_error_before_first_chunk_fails_over() {
    let (a, b, r) = two();
    a.push(Step::Fail(err(ErrorKind::Upstream, Some(503), None)));
    a.push(Step::Fail(err(ErrorKind::Upstream, Some(503), None)));
    let out =
        Executor::new(routing()).chat_stream(&r.candidates("m", Need::Chat).unwrap(), &request("m")).await.unwrap();
    assert_eq!(out.entry.name(), "b");
    assert_eq!(b.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn mid_stream_cut_is_an_error_item_not_a_failover() {
    let (a, b, r) = two();
    a.push(Step::CutAfterFirst);
    let out =
        Executor::new(routing()).chat_stream(&r.candidates("m", Need::Chat).unwrap(), &request("m")).await.unwrap();
    assert_eq!(out.entry.name(), "a");
    let items: Vec<_> = out.value.collect().await;
    assert_eq!(items.len(), 2);
    assert!(items[0].is_ok());
    assert_eq!(items[1].as_ref().unwrap_err().kind, ErrorKind::StreamInterrupted);
    assert_eq!(b.calls(), 0, "bytes already went out: no failover");
}

#[tokio::test(start_paused = true)]
async fn mid_stream_stall_hits_the_idle_timeout() {
    let (a, _b, r) = two();
    a.push(Step::StallAfterFirst(Duration::from_secs(60)));
    let out =
        Executor::new(routing()).chat_stream(&r.candidates("m", Need::Chat).unwrap(), &request("m")).await.unwrap();
    let items: Vec<_> = out.value.collect().await;
    assert_eq!(items.len(), 2);
    assert_eq!(items[1].as_ref().unwrap_err().kind, ErrorKind::Timeout);
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_never_ends_is_cut_at_the_stream_timeout() {
    // A chunk every 700 ms keeps the 5 s idle timeout quiet forever; the
    // 30 s stream timeout, counted from the call, ends it.
    let (a, b, r) = two();
    a.push(Step::Endless(Duration::from_millis(700)));
    let started = Instant::now();
    let out =
        Executor::new(routing()).chat_stream(&r.candidates("m", Need::Chat).unwrap(), &request("m")).await.unwrap();
    let items: Vec<_> =
        tokio::time::timeout(Duration::from_secs(120), out.value.collect()).await.expect("the stream ends");
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(30) && took < Duration::from_millis(30_050), "{took:?}");
    assert_eq!(items.len(), 43, "42 chunks (the last at 29.4 s), then the error");
    let err = items.last().unwrap().as_ref().unwrap_err();
    assert_eq!(err.kind, ErrorKind::Timeout);
    assert!(err.message.contains("did not end within"), "{}", err.message);
    assert!(items[..42].iter().all(Result::is_ok));
    assert_eq!(b.calls(), 0, "bytes already went out: no failover");
}

#[tokio::test(start_paused = true)]
async fn an_audio_stream_that_never_ends_is_cut_at_the_stream_timeout() {
    let (a, _b, r) = two();
    a.push(Step::Endless(Duration::from_millis(700)));
    let speech = hoosh_core::audio::SpeechRequest {
        model: "m".into(),
        input: "hi".into(),
        voice: "alloy".into(),
        response_format: None,
        speed: None,
        instructions: None,
        stream_format: None,
    };
    let started = Instant::now();
    let c = r.candidates("m", Need::Chat).unwrap();
    let out = Executor::new(routing()).speech(&c, &speech).await.unwrap();
    let hoosh_core::audio::AudioBody::Stream(body) = out.value.body else { panic!("a streamed answer") };
    assert_eq!(c[0].entry.stats.in_flight(), 1, "counted in flight while it streams");
    let items: Vec<_> = tokio::time::timeout(Duration::from_secs(120), body.collect()).await.expect("the stream ends");
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(30) && took < Duration::from_millis(30_050), "{took:?}");
    assert_eq!(items.len(), 43, "42 pieces, then the error");
    assert_eq!(items.last().unwrap().as_ref().unwrap_err().kind, ErrorKind::Timeout);
    assert_eq!(c[0].entry.stats.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn in_flight_counts_a_stream_until_it_is_dropped() {
    let (a, _b, r) = two();
    a.push(Step::StallAfterFirst(Duration::from_secs(1)));
    let c = r.candidates("m", Need::Chat).unwrap();
    let out = Executor::new(routing()).chat_stream(&c, &request("m")).await.unwrap();
    assert_eq!(c[0].entry.stats.in_flight(), 1);
    drop(out);
    assert_eq!(c[0].entry.stats.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn refused_parameter_moves_to_a_provider_that_takes_it() {
    let a = Scripted::with("a", ParamSupport::without(&["seed"]), Placement::Remote);
    let b = Scripted::new("b");
    let r = router(vec![simple(&a, 1), simple(&b, 2)], Strategy::Priority);
    let mut cfg = routing();
    cfg.unsupported_params = UnsupportedParamAction::Refuse;
    let mut req = request("m");
    req.seed = Some(7);
    let out = Executor::new(cfg.clone()).chat(&r.candidates("m", Need::Chat).unwrap(), &req).await.unwrap();
    assert_eq!(out.entry.name(), "b");
    assert_eq!(a.calls(), 0);

    // With "drop", a serves it and reports what it dropped.
    cfg.unsupported_params = UnsupportedParamAction::Drop;
    let out = Executor::new(cfg).chat(&r.candidates("m", Need::Chat).unwrap(), &req).await.unwrap();
    assert_eq!(out.entry.name(), "a");
    assert_eq!(out.dropped.header_value(), "seed");
}
