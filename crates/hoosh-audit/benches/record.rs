//! Cost of the audit hot path: sealing one entry (canonical bytes, SHA-256,
//! HMAC-SHA256) on the writer thread, and `record()` on the caller's side
//! (a boxed channel send; the draft clone is benched alone as a baseline).
//! Target: seal ≤ 2 µs.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use hoosh_audit::{AuditKey, AuditLog, AuditOptions, AuditStore, ChainState, Draft, seal};

fn draft(i: u64) -> Draft {
    Draft::new("inference.response")
        .actor("key_0123456789")
        .request_id(format!("req-{i}"))
        .field("model", "gpt-4o-mini")
        .field("provider", "openai")
        .field("prompt_tokens", 512)
        .field("completion_tokens", 128)
        .field("status", 200)
        .field("latency_ms", 812)
}

fn bench(c: &mut Criterion) {
    let key = AuditKey::from_bytes(vec![7; 32]).unwrap_or_else(|e| panic!("{e}"));
    let mut state = ChainState::genesis();
    let template = draft(1);
    c.bench_function("seal", |b| b.iter(|| black_box(seal(&mut state, template.clone(), 1_700_000_000_000, &key))));

    // What the caller pays to build the draft, so `record` can be read net of it.
    c.bench_function("draft clone (baseline)", |b| b.iter(|| black_box(template.clone())));

    let path = std::env::temp_dir().join(format!("hoosh-audit-bench-{}.db", std::process::id()));
    let store = Arc::new(AuditStore::open(&path).unwrap_or_else(|e| panic!("{e}")));
    let log = AuditLog::open_with(store, key, Arc::new(|| 1_700_000_000_000), AuditOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    // Unthrottled, the caller outruns the writer (sealing + SQLite) and the
    // queue grows without bound, so each send also pays for the queue's
    // memory: a saturation figure, not the request path's cost.
    c.bench_function("record (enqueue, writer saturated)", |b| b.iter(|| log.record(black_box(template.clone()))));
    // As in the gateway: bursts the writer keeps up with (flushed between
    // bursts, outside the timing).
    c.bench_function("record (enqueue, writer keeping up)", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let burst = left.min(64);
                let start = std::time::Instant::now();
                for _ in 0..burst {
                    log.record(black_box(template.clone()));
                }
                total += start.elapsed();
                left -= burst;
                log.flush();
            }
            total
        })
    });
    log.close();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
