//! N streams at once. Opens N connections in batches (`--batch` every
//! `--batch-ms`, so the target's accept queue is not the thing measured),
//! sends one streaming request on each and reads it to the end. Per stream:
//! the longest silence — from the request to the first byte, then between
//! any two body frames — and whether it ended whole (2xx and
//! `data: [DONE]`). A stream is stall-free when it is whole and its longest
//! silence is at most `--stall-ms`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use serde_json::json;

use crate::args::Args;
use crate::sse_scan::SseScan;
use crate::stats;
use crate::target::Target;

struct StreamResult {
    whole: bool,
    /// Longest silence, µs (first byte included).
    max_gap: u64,
    ttfb: u64,
    events: u64,
    error: Option<String>,
}

/// Streams reading at this moment, and the most there ever were.
#[derive(Default)]
struct Open {
    now: AtomicUsize,
    peak: AtomicUsize,
}

pub async fn run(args: &Args) -> Result<(), String> {
    let nofile = crate::limits::raise_open_files();
    let target = Target::from_args(args)?;
    let n: usize = args.num("count", 1024)?;
    let batch: usize = args.num::<usize>("batch", 256)?.max(1);
    let batch_ms: u64 = args.num("batch-ms", 100)?;
    let stall_ms: u64 = args.num("stall-ms", 1000)?;
    let timeout = Duration::from_secs(args.num("timeout-s", 600)?);
    if n as u64 + 64 > nofile {
        eprintln!("loadgen streams: {n} streams but only {nofile} open files allowed");
    }

    let open = Arc::new(Open::default());
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        if i > 0 && i % batch == 0 {
            tokio::time::sleep(Duration::from_millis(batch_ms)).await;
        }
        let (target, open) = (target.clone(), open.clone());
        tasks.push(tokio::spawn(async move {
            match tokio::time::timeout(timeout, one_stream(&target, &open)).await {
                Ok(r) => r,
                Err(_) => failed("timeout".into()),
            }
        }));
    }
    let ramp_s = started.elapsed().as_secs_f64();

    let (mut whole, mut stall_free, mut worst_gap, mut worst_ttfb) = (0u64, 0u64, 0u64, 0u64);
    let (mut min_events, mut max_events) = (u64::MAX, 0u64);
    let mut gaps = stats::histogram();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for t in tasks {
        let r = t.await.unwrap_or_else(|e| failed(format!("panic: {e}")));
        if let Some(e) = r.error {
            *errors.entry(e).or_default() += 1;
            continue;
        }
        stats::record(&mut gaps, r.max_gap);
        worst_gap = worst_gap.max(r.max_gap);
        worst_ttfb = worst_ttfb.max(r.ttfb);
        min_events = min_events.min(r.events);
        max_events = max_events.max(r.events);
        if r.whole {
            whole += 1;
            if r.max_gap <= stall_ms * 1000 {
                stall_free += 1;
            }
        }
    }
    let out = json!({
        "streams": n,
        "whole": whole,
        "stall_free": stall_free,
        "stall_ms": stall_ms,
        "errors": errors.values().sum::<u64>(),
        "error_kinds": errors,
        "worst_gap_ms": stats::round3(worst_gap as f64 / 1000.0),
        "max_gap_per_stream_ms": stats::summary(&gaps),
        "worst_ttfb_ms": stats::round3(worst_ttfb as f64 / 1000.0),
        "events_min": if min_events == u64::MAX { 0 } else { min_events },
        "events_max": max_events,
        "peak_open": open.peak.load(Ordering::Relaxed),
        "ramp_s": stats::round3(ramp_s),
        "elapsed_s": stats::round3(started.elapsed().as_secs_f64()),
    });
    println!("{out}");
    Ok(())
}

fn failed(error: String) -> StreamResult {
    StreamResult { whole: false, max_gap: 0, ttfb: 0, events: 0, error: Some(error) }
}

async fn one_stream(target: &Target, open: &Open) -> StreamResult {
    let mut sender = match target.connect().await {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let start = Instant::now();
    let resp = match sender.send_request(target.request()).await {
        Ok(r) => r,
        Err(e) => return failed(format!("send: {e}")),
    };
    if !resp.status().is_success() {
        return failed(format!("status {}", resp.status().as_u16()));
    }
    let now_open = open.now.fetch_add(1, Ordering::Relaxed) + 1;
    open.peak.fetch_max(now_open, Ordering::Relaxed);

    let mut body = resp.into_body();
    let mut scan = SseScan::default();
    let (mut last, mut max_gap, mut ttfb) = (start, 0u64, None);
    let mut error = None;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Some(d) = f.data_ref().filter(|d| !d.is_empty()) {
                    let now = Instant::now();
                    max_gap = max_gap.max((now - last).as_micros() as u64);
                    last = now;
                    ttfb.get_or_insert((now - start).as_micros() as u64);
                    scan.feed(d);
                }
            }
            Err(e) => {
                error = Some(format!("body: {e}"));
                break;
            }
        }
    }
    open.now.fetch_sub(1, Ordering::Relaxed);
    if let Some(e) = error {
        return failed(e);
    }
    StreamResult { whole: scan.saw_done, max_gap, ttfb: ttfb.unwrap_or(0), events: scan.events, error: None }
}
