//! Closed-loop load for streaming (or any) POSTs: C workers, each on its own
//! kept-alive connection, send a request, read the answer to its end, and
//! send the next, until the duration is up. Per request: time to the first
//! body byte (TTFB) and to the last (whole), both from just before the
//! request is written. A request is an error if it could not be sent, its
//! status is not 2xx, or its body broke off; an SSE answer that ends without
//! `data: [DONE]` is counted `incomplete`.
//!
//! `--rate R` paces the workers together to at most R requests a second
//! (request k is not sent before k / R s), `--requests N` stops after N
//! requests, and `--every-s S` prints the requests and errors of each S
//! seconds to stderr as JSON lines. A worker always reads its last answer
//! to the end, so no request is cut off when the run ends.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use http_body_util::BodyExt;
use serde_json::json;

use crate::args::Args;
use crate::sse_scan::SseScan;
use crate::stats;
use crate::target::Target;

struct WorkerStats {
    ttfb: Histogram<u64>,
    whole: Histogram<u64>,
    ok: u64,
    errors: BTreeMap<String, u64>,
    incomplete: u64,
    events: u64,
    bytes: u64,
    /// Values of `--count-header` seen (`-` when absent).
    header_values: BTreeMap<String, u64>,
}

impl WorkerStats {
    fn new() -> WorkerStats {
        WorkerStats {
            ttfb: stats::histogram(),
            whole: stats::histogram(),
            ok: 0,
            errors: BTreeMap::new(),
            incomplete: 0,
            events: 0,
            bytes: 0,
            header_values: BTreeMap::new(),
        }
    }

    fn error(&mut self, what: String) {
        *self.errors.entry(what).or_default() += 1;
    }

    fn merge(&mut self, o: WorkerStats) {
        self.ttfb.add(&o.ttfb).expect("same bounds");
        self.whole.add(&o.whole).expect("same bounds");
        self.ok += o.ok;
        self.incomplete += o.incomplete;
        self.events += o.events;
        self.bytes += o.bytes;
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
        for (k, v) in o.header_values {
            *self.header_values.entry(k).or_default() += v;
        }
    }
}

/// What the workers share: the plan and the running counts.
struct Run {
    target: Arc<Target>,
    started: Instant,
    deadline: Instant,
    rate: Option<f64>,
    max_requests: Option<u64>,
    count_header: Option<String>,
    /// Requests sent or about to be (the pacing slot counter).
    issued: AtomicU64,
    ok: AtomicU64,
    errors: AtomicU64,
}

pub async fn run(args: &Args) -> Result<(), String> {
    crate::limits::raise_open_files();
    let concurrency: usize = args.num("concurrency", 16)?;
    let secs: f64 = args.num("duration", 10.0)?;
    let every: f64 = args.num("every-s", 0.0)?;
    let started = Instant::now();
    let run = Arc::new(Run {
        target: Target::from_args(args)?,
        started,
        deadline: started + Duration::from_secs_f64(secs),
        rate: args.get("rate").map(|_| args.num("rate", 0.0)).transpose()?.filter(|r| *r > 0.0),
        max_requests: args.get("requests").map(|_| args.num("requests", 0)).transpose()?,
        count_header: args.get("count-header").map(str::to_ascii_lowercase),
        issued: AtomicU64::new(0),
        ok: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });

    let reporter = (every > 0.0).then(|| tokio::spawn(report_every(run.clone(), Duration::from_secs_f64(every))));
    let workers: Vec<_> = (0..concurrency).map(|_| tokio::spawn(worker(run.clone()))).collect();
    let mut total = WorkerStats::new();
    for w in workers {
        total.merge(w.await.map_err(|e| format!("worker panicked: {e}"))?);
    }
    if let Some(r) = reporter {
        r.abort();
    }
    let count_header = run.count_header.clone();
    let elapsed = started.elapsed().as_secs_f64();
    let error_count: u64 = total.errors.values().sum();
    let out = json!({
        "concurrency": concurrency,
        "duration_s": stats::round3(elapsed),
        "requests": total.ok,
        "rps": stats::round3(total.ok as f64 / elapsed),
        "errors": error_count,
        "error_kinds": total.errors,
        "incomplete": total.incomplete,
        "events": total.events,
        "bytes": total.bytes,
        "ttfb_ms": stats::summary(&total.ttfb),
        "whole_ms": stats::summary(&total.whole),
        "header": count_header,
        "header_values": total.header_values,
    });
    println!("{out}");
    Ok(())
}

/// Prints each interval's answers and errors to stderr until aborted.
async fn report_every(run: Arc<Run>, every: Duration) {
    let mut tick = tokio::time::interval_at((run.started + every).into(), every);
    let (mut ok0, mut err0) = (0, 0);
    loop {
        tick.tick().await;
        let (ok, err) = (run.ok.load(Ordering::Relaxed), run.errors.load(Ordering::Relaxed));
        let line = json!({
            "t_s": stats::round3(run.started.elapsed().as_secs_f64()),
            "requests": ok - ok0,
            "rps": stats::round3((ok - ok0) as f64 / every.as_secs_f64()),
            "errors": err - err0,
        });
        eprintln!("{line}");
        (ok0, err0) = (ok, err);
    }
}

async fn worker(run: Arc<Run>) -> WorkerStats {
    let mut st = WorkerStats::new();
    let mut conn = None;
    while Instant::now() < run.deadline {
        let sender = match &mut conn {
            Some(s) => s,
            None => match run.target.connect().await {
                Ok(s) => conn.insert(s),
                Err(e) => {
                    st.error(e);
                    run.errors.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        if sender.ready().await.is_err() {
            // The server closed the kept-alive connection between requests.
            conn = None;
            continue;
        }
        let slot = run.issued.fetch_add(1, Ordering::Relaxed);
        if run.max_requests.is_some_and(|max| slot >= max) {
            break;
        }
        if let Some(rate) = run.rate {
            tokio::time::sleep_until((run.started + Duration::from_secs_f64(slot as f64 / rate)).into()).await;
            if Instant::now() >= run.deadline {
                break;
            }
        }
        let req = run.target.request();
        let start = Instant::now();
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                st.error(format!("send: {e}"));
                run.errors.fetch_add(1, Ordering::Relaxed);
                conn = None;
                continue;
            }
        };
        if let Some(name) = &run.count_header {
            let v = resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("-");
            *st.header_values.entry(v.to_string()).or_default() += 1;
        }
        let status = resp.status();
        let is_sse = resp
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let mut body = resp.into_body();
        let mut first = None;
        let mut scan = SseScan::default();
        let mut broke = false;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Some(d) = f.data_ref() {
                        if first.is_none() && !d.is_empty() {
                            first = Some(Instant::now());
                        }
                        st.bytes += d.len() as u64;
                        if is_sse {
                            scan.feed(d);
                        }
                    }
                }
                Err(e) => {
                    st.error(format!("body: {e}"));
                    run.errors.fetch_add(1, Ordering::Relaxed);
                    broke = true;
                    break;
                }
            }
        }
        let end = Instant::now();
        if broke {
            conn = None;
            continue;
        }
        if !status.is_success() {
            st.error(format!("status {}", status.as_u16()));
            run.errors.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        st.ok += 1;
        run.ok.fetch_add(1, Ordering::Relaxed);
        st.events += scan.events;
        if is_sse && !scan.saw_done {
            st.incomplete += 1;
        }
        let first = first.unwrap_or(end);
        stats::record(&mut st.ttfb, (first - start).as_micros() as u64);
        stats::record(&mut st.whole, (end - start).as_micros() as u64);
    }
    st
}
