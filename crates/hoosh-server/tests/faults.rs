//! The fault matrix: a real gateway in front of an upstream that misbehaves
//! on a raw socket (`hoosh_testkit::faulty`). Written as that upstream: it
//! resets, stalls, drips, lies about lengths, sends a megabyte of headers,
//! HTML, bytes that are not UTF-8, a line of 10 MB, a body or a stream that
//! never ends, an absurd `Retry-After`. Each fault must cost one request and
//! no more: the right status with an OpenAI-shaped body (or, once a stream
//! has started, an error event), within its timeout, with memory bounded
//! (the upstream is cut off, not read to the end), the upstream connection
//! let go, one ledger row with the failure's status, and the gateway still
//! answering.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use hoosh_core::config::ProviderConfig;
use hoosh_governance::UsageRecord;
use hoosh_testkit::faulty::{self, Fault, FaultyServer};
use serde_json::{Value, json};
use support::*;

/// Longest any single call may take before the test calls it hung.
const HUNG: Duration = Duration::from_secs(15);

struct Rig {
    upstream: FaultyServer,
    gw: Gateway,
    key: String,
}

/// A governed gateway in front of an upstream with `fault`, with timeouts of
/// a second (the smallest the config takes) unless `edit` says otherwise.
async fn rig(fault: Fault, edit: impl FnOnce(&mut ProviderConfig)) -> Rig {
    let upstream = faulty::start(fault).await;
    let gw = governed_with(&upstream.url(), |c| {
        let p = &mut c.providers[0];
        p.connect_timeout_secs = 1;
        p.first_byte_timeout_secs = 1;
        p.idle_timeout_secs = 1;
        p.total_timeout_secs = 1;
        p.stream_timeout_secs = 2;
        edit(p);
    })
    .await;
    let (_, key) = key(&gw, budget_key(10_000_000));
    Rig { upstream, gw, key }
}

/// What a client saw of one chat call.
struct Seen {
    status: u16,
    body: String,
    took: Duration,
    headers: reqwest::header::HeaderMap,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The OpenAI error object of a failed call, checked for shape.
    fn error(&self) -> Value {
        let body = self.json();
        let e = &body["error"];
        assert!(e["message"].is_string() && e["type"].is_string(), "not OpenAI-shaped: {body}");
        assert!(e.get("param").is_some() && e.get("code").is_some(), "param and code present: {body}");
        e.clone()
    }

    /// The error event a started stream ended with (never `[DONE]`).
    fn stream_error(&self) -> Value {
        let data = sse_data(&self.body);
        assert!(!data.iter().any(|d| d == "[DONE]"), "a failed stream does not say [DONE]: {data:?}");
        let last: Value = serde_json::from_str(data.last().expect("some event")).unwrap();
        assert!(last["error"]["message"].is_string(), "ends with an error event: {last}");
        last["error"].clone()
    }
}

impl Rig {
    /// A call cut by a size limit: well before its timeouts, its upstream
    /// connection let go, and (given the limit) not read much past it.
    async fn cut_by_size(&self, seen: &Seen, limit: Option<usize>) {
        assert!(seen.took < Duration::from_secs(8), "cut by size: {:?}", seen.took);
        assert!(self.upstream.released_within(1, Duration::from_secs(2)).await, "the gateway closed the connection");
        if let Some(limit) = limit {
            let (limit, written) = (limit as u64, self.upstream.written());
            assert!(written < limit + 64 * 1024 * 1024, "read {written} bytes past a limit of {limit}");
        }
    }

    async fn ask(&self, stream: bool) -> Seen {
        let mut body = chat_body("gpt-4o-mini", "hello");
        body["max_tokens"] = json!(16);
        if stream {
            body["stream"] = json!(true);
        }
        let started = Instant::now();
        let call = async {
            let resp = http().post(self.gw.url("/v1/chat/completions")).bearer_auth(&self.key).json(&body).send().await;
            let resp = resp.expect("the gateway answers (a panic would drop the connection)");
            let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
            (status, headers, resp.text().await.expect("the gateway finishes its answer"))
        };
        let (status, headers, body) = tokio::time::timeout(HUNG, call).await.expect("the call ends");
        Seen { status, body, took: started.elapsed(), headers }
    }

    /// The ledger row of the call just made: exactly one more than `before`.
    async fn new_row(&self, before: usize) -> UsageRecord {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let rows = ledger_rows(&self.gw);
            if rows.len() > before || Instant::now() > deadline {
                assert_eq!(rows.len(), before + 1, "one row per call: {rows:?}");
                return rows.last().unwrap().clone();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn rows(&self) -> usize {
        ledger_rows(&self.gw).len()
    }

    /// One call, its ledger row, and the gateway still answering after it.
    async fn call(&self, stream: bool) -> (Seen, UsageRecord) {
        let before = self.rows();
        let seen = self.ask(stream).await;
        let row = self.new_row(before).await;
        self.assert_alive().await;
        (seen, row)
    }

    async fn assert_alive(&self) {
        let resp = tokio::time::timeout(HUNG, http().get(self.gw.url("/health")).send()).await.unwrap().unwrap();
        assert_eq!(resp.status(), 200, "the gateway still answers");
    }

    /// A whole failure: `status` and `code`, in an OpenAI-shaped body,
    /// ledgered as `status`. What it is charged follows the pipeline: a
    /// timeout abandoned an attempt the upstream accepted (charged its
    /// estimate, under the provider); anything else brought back nothing
    /// billable.
    async fn fails(&self, stream: bool, status: u16, code: &str) -> Seen {
        let (seen, row) = self.call(stream).await;
        assert_eq!(seen.status, status, "stream={stream}: {}", seen.body);
        assert_eq!(seen.error()["code"], code, "stream={stream}: {}", seen.body);
        assert_eq!(row.status, status, "{row:?}");
        if status == 504 {
            assert_eq!(row.provider.as_deref(), Some("up"), "the abandoned attempt is on record: {row:?}");
            assert_eq!(row.completion_tokens, 16, "charged its estimate (the cap): {row:?}");
        } else {
            assert_eq!((row.prompt_tokens, row.completion_tokens), (0, 0), "charged nothing: {row:?}");
        }
        seen
    }

    /// A stream that started (200) and ended with an error event `code`; the ledger says 502.
    async fn breaks_mid_stream(&self, code: &str) -> Seen {
        let (seen, row) = self.call(true).await;
        assert_eq!(seen.status, 200, "{}", seen.body);
        assert_eq!(seen.stream_error()["code"], code, "{}", seen.body);
        assert_eq!(row.status, 502, "a stream cut upstream is ledgered 502: {row:?}");
        assert_eq!(row.provider.as_deref(), Some("up"), "{row:?}");
        seen
    }
}

fn content(seen: &Seen) -> String {
    if seen.body.starts_with('{') {
        return seen.json()["choices"][0]["message"]["content"].as_str().unwrap().to_owned();
    }
    sse_chunks(&seen.body).iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect()
}

#[tokio::test]
async fn the_control_a_healthy_raw_upstream_is_served() {
    let r = rig(Fault::Healthy, |_| {}).await;
    let (seen, row) = r.call(false).await;
    assert_eq!((seen.status, content(&seen).as_str()), (200, "hello from a faulty upstream"));
    assert_eq!((row.status, row.completion_tokens), (200, 6));
    let (seen, row) = r.call(true).await;
    assert_eq!((seen.status, content(&seen).as_str()), (200, "hello there"));
    assert_eq!((row.status, row.completion_tokens), (200, 2));
}

#[tokio::test]
async fn an_http_1_0_body_ended_by_close_is_a_whole_answer() {
    let r = rig(Fault::CloseDelimited, |_| {}).await;
    let (seen, row) = r.call(false).await;
    assert_eq!((seen.status, content(&seen).as_str()), (200, "hello from a faulty upstream"));
    assert_eq!(row.status, 200);
    let (seen, row) = r.call(true).await;
    assert_eq!((seen.status, content(&seen).as_str()), (200, "hello there"));
    assert_eq!(row.status, 200);
}

#[tokio::test]
async fn a_reset_mid_body_is_a_502_or_a_stream_error() {
    let r = rig(Fault::ResetMidBody, |_| {}).await;
    r.fails(false, 502, "upstream_invalid_response").await;
    let seen = r.breaks_mid_stream("upstream_error").await;
    assert_eq!(sse_chunks_before_error(&seen), 1, "the chunk before the reset was passed on");
}

#[tokio::test]
async fn a_close_without_an_answer_is_a_502() {
    let r = rig(Fault::Hangup, |_| {}).await;
    r.fails(false, 502, "upstream_unreachable").await;
    r.fails(true, 502, "upstream_unreachable").await;
}

#[tokio::test]
async fn an_upstream_that_accepts_and_never_answers_is_a_504_at_the_timeout() {
    let r = rig(Fault::Silence, |_| {}).await;
    for stream in [false, true] {
        let seen = r.fails(stream, 504, "upstream_timeout").await;
        assert!(seen.took >= Duration::from_millis(950) && seen.took < Duration::from_secs(3), "{:?}", seen.took);
    }
}

#[tokio::test]
async fn a_half_open_upstream_is_a_504_and_its_connection_is_let_go() {
    let r = rig(Fault::HalfOpen, |_| {}).await;
    for (n, stream) in [(1, false), (2, true)] {
        let seen = r.fails(stream, 504, "upstream_timeout").await;
        assert!(seen.took < Duration::from_secs(3), "{:?}", seen.took);
        assert!(r.upstream.released_within(n, Duration::from_secs(2)).await, "the gateway closed the connection");
    }
}

#[tokio::test]
async fn a_slow_drip_is_cut_at_the_timeout() {
    let r = rig(Fault::SlowDrip { every: Duration::from_millis(20) }, |_| {}).await;
    for (n, stream) in [(1, false), (2, true)] {
        let seen = r.fails(stream, 504, "upstream_timeout").await;
        assert!(seen.took < Duration::from_secs(3), "{:?}", seen.took);
        assert!(r.upstream.released_within(n, Duration::from_secs(2)).await, "the gateway closed the connection");
    }
}

#[tokio::test]
async fn a_megabyte_of_headers_is_an_invalid_response_not_an_unreachable_upstream() {
    let r = rig(Fault::HugeHeaders { bytes: 1024 * 1024 }, |_| {}).await;
    for stream in [false, true] {
        let seen = r.fails(stream, 502, "upstream_invalid_response").await;
        assert!(seen.took < Duration::from_secs(1), "refused on reading, not at a timeout: {:?}", seen.took);
    }
}

#[tokio::test]
async fn html_in_a_200_is_a_502() {
    let r = rig(Fault::NotJson, |_| {}).await;
    r.fails(false, 502, "upstream_invalid_response").await;
    // An event stream with no events in it ends before `[DONE]`, as an
    // empty one does in every family.
    r.fails(true, 502, "upstream_error").await;
}

#[tokio::test]
async fn a_body_shorter_than_its_length_is_a_502() {
    let r = rig(Fault::Truncated, |_| {}).await;
    r.fails(false, 502, "upstream_invalid_response").await;
    // Half an event, then the close: nothing reached the client yet.
    r.fails(true, 502, "upstream_error").await;
}

#[tokio::test]
async fn invalid_utf8_is_a_502_or_a_stream_error() {
    let r = rig(Fault::InvalidUtf8, |_| {}).await;
    r.fails(false, 502, "upstream_invalid_response").await;
    let seen = r.breaks_mid_stream("upstream_invalid_response").await;
    assert_eq!(sse_chunks_before_error(&seen), 1, "the good chunk before it was passed on");
}

#[tokio::test]
async fn a_json_body_without_end_is_cut_at_the_size_limit_not_read_until_the_timeout() {
    // A total timeout of 10 s: what ends the call must be the size limit.
    let r = rig(Fault::Endless { every: Duration::ZERO }, |p| p.total_timeout_secs = 10).await;
    let seen = r.fails(false, 502, "upstream_invalid_response").await;
    r.cut_by_size(&seen, Some(hoosh_providers::http::MAX_BODY)).await;
}

#[tokio::test]
async fn a_stream_without_end_is_cut_at_the_stream_timeout_and_settled() {
    // A chunk every 50 ms keeps the idle timeout quiet forever.
    let r = rig(Fault::Endless { every: Duration::from_millis(50) }, |p| p.stream_timeout_secs = 1).await;
    let seen = r.breaks_mid_stream("upstream_timeout").await;
    assert!(seen.took >= Duration::from_millis(950) && seen.took < Duration::from_secs(3), "{:?}", seen.took);
    assert!(sse_chunks_before_error(&seen) >= 5, "chunks flowed until the cut: {}", seen.body);
    assert!(r.upstream.released_within(1, Duration::from_secs(2)).await, "the gateway closed the connection");
}

#[tokio::test]
async fn a_10_mb_sse_line_is_refused_at_the_line_limit() {
    let r = rig(Fault::HugeLine { bytes: 10 * 1024 * 1024 }, |p| {
        p.first_byte_timeout_secs = 10;
        p.stream_timeout_secs = 10;
    })
    .await;
    let seen = r.fails(true, 502, "upstream_invalid_response").await;
    r.cut_by_size(&seen, None).await;
}

#[tokio::test]
async fn data_lines_that_never_end_their_event_are_cut_at_the_event_limit() {
    let r = rig(Fault::EndlessEvent, |p| {
        p.first_byte_timeout_secs = 10;
        p.stream_timeout_secs = 10;
    })
    .await;
    let seen = r.fails(true, 502, "upstream_invalid_response").await;
    r.cut_by_size(&seen, Some(hoosh_providers::sse::MAX_EVENT)).await;
}

#[tokio::test]
async fn an_absurd_retry_after_is_a_429_with_a_sane_one() {
    let huge = "9".repeat(300);
    let cases: [(&str, &str); 8] = [
        ("retry-after", "1e300"),
        ("retry-after", "inf"),
        ("retry-after", &huge),
        ("retry-after", "-5"),
        ("retry-after", "NaN"),
        ("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT"),
        ("retry-after", "Wed, 31 Dec 1969 23:59:59 GMT"),
        ("retry-after-ms", "1e300"),
    ];
    for (name, value) in cases {
        let r = rig(Fault::RateLimited { headers: vec![(name.into(), value.into())] }, |_| {}).await;
        for stream in [false, true] {
            let seen = r.fails(stream, 429, "rate_limit_exceeded").await;
            let wait: u64 = seen.headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!(wait <= 60, "{name}: {value} → Retry-After {wait}");
        }
    }
}

#[tokio::test]
async fn the_health_probe_reads_an_absurd_retry_after_and_records_its_verdict() {
    // Probes every second list the models; each gets a 429 with a
    // `Retry-After` that used to panic the probe before it could record
    // anything (and, before the task was supervised, end it for good).
    let upstream = faulty::start(Fault::RateLimited { headers: vec![("retry-after".into(), "1e300".into())] }).await;
    let mut c = config(vec![openai("up", &upstream.url())]);
    c.health.interval_secs = 1;
    c.health.timeout_secs = 1;
    let gw = Gateway::start(c).await;
    // The second round starts only after the first recorded its verdict.
    assert!(upstream.requests_within(2, Duration::from_secs(5)).await, "probed {} times", upstream.requests());
    let stats = gw.state.live().router.entries()[0].stats.snapshot();
    assert!(!stats.healthy, "{stats:?}");
    let error = stats.last_error.unwrap_or_default();
    assert!(error.starts_with("probe:") && error.contains("rate_limited"), "{error}");
    let resp = http().get(gw.url("/health")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

/// Content chunks a stream passed on before its error event.
fn sse_chunks_before_error(seen: &Seen) -> usize {
    let data = sse_data(&seen.body);
    data[..data.len() - 1].iter().filter(|d| d.contains("\"delta\"")).count()
}
