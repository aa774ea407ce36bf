#!/usr/bin/env python3
"""Renders bench/compare.sh's results (OUT/meta.json, cells.jsonl,
targets.jsonl) as markdown: date, commit, machine, method, then one table
for JSON, one for streaming and one per-target table.

Usage: report.py OUT_DIR
"""
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
meta = json.loads((out / "meta.json").read_text())
cells = [json.loads(line) for line in (out / "cells.jsonl").read_text().splitlines() if line]
targets = [json.loads(line) for line in (out / "targets.jsonl").read_text().splitlines() if line]


def num(x, digits=0):
    return f"{x:,.{digits}f}"


def ms(x):
    return f"{x:.3f}" if x < 10 else f"{x:.2f}" if x < 100 else f"{x:.1f}"


def mb(kb):
    return f"{kb / 1024:.1f}"


direct = {(c["mode"], c["c"]): c for c in cells if c["target"] == "direct"}


def added(cell, key):
    base = direct.get((cell["mode"], cell["c"]))
    if cell["target"] == "direct" or base is None:
        return "–"
    return ms(cell[key] - base[key])


print("## Side by side (bench/compare.sh)")
print()
print(
    f"{meta['date']}, commit `{meta['commit']}` (hoosh binary built {meta['hoosh_built']}); "
    f"{meta['cores']} cores ({meta['cpu']}), {meta['mem']}, Linux {meta['kernel']}, virtualization: {meta['virt']}; "
    f"load average {meta['load_start']} at start, {meta['load_end']} at end. "
    f"nginx {meta['nginx']}, wrk {meta['wrk']}"
    + (f", noveum-ai-gateway {meta['noveum']}" if meta["noveum"] else "")
    + "."
)
print()
print(
    f"Method: nginx (1 worker) answers instantly with a fixed chat.completion JSON, or a fixed "
    f"7-event SSE body for the streaming runs. Each gateway runs on core {meta['gw_core']}; nginx and the "
    f"load generator share core {meta['load_core']}. {meta['dur']} s per cell at c = {meta['concs']}; "
    f"each target is started fresh for the JSON runs and again for the streaming runs. JSON: `wrk -t1 --latency` "
    f"(latency = whole response). Streaming: `bench/loadgen sse`, closed loop, one kept-alive connection per "
    f"client; TTFB = first body byte, whole = last byte. Added latency is the target's minus direct nginx's at "
    f"the same concurrency (for streams, of the whole stream). CPU µs/req is the target process's utime + stime "
    f"over the cell divided by requests answered (for direct: the nginx worker's). Proxy rows run with the "
    f"response cache off (`[cache] enabled = false`) and a body without `temperature: 0`; the cache-hit row "
    f"sends one temperature-0 body repeatedly after filling the cache."
)
for note in filter(None, meta.get("notes", "").splitlines()):
    print()
    print(f"Note: {note}")

for mode, title in (("json", "Non-streaming (JSON)"), ("sse", "Streaming (SSE)")):
    rows = [c for c in cells if c["mode"] == mode]
    if not rows:
        continue
    print()
    print(f"### {title}")
    print()
    if mode == "json":
        print("| target | c | RPS | p50 / p90 / p99 (ms) | added p50 / p99 (ms) | CPU µs/req | errors |")
        print("|---|---|---|---|---|---|---|")
        for c in rows:
            print(
                f"| {c['target']} | {c['c']} | {num(c['rps'])} | {ms(c['p50'])} / {ms(c['p90'])} / {ms(c['p99'])} "
                f"| {added(c, 'p50')} / {added(c, 'p99')} | {num(c['cpu_us'], 1)} | {c['errors']} |"
            )
    else:
        print(
            "| target | c | streams/s | TTFB p50 / p99 (ms) | whole p50 / p90 / p99 (ms) | added whole p50 / p99 (ms) "
            "| CPU µs/stream | errors / incomplete |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for c in rows:
            print(
                f"| {c['target']} | {c['c']} | {num(c['rps'])} | {ms(c['ttfb_p50'])} / {ms(c['ttfb_p99'])} "
                f"| {ms(c['p50'])} / {ms(c['p90'])} / {ms(c['p99'])} | {added(c, 'p50')} / {added(c, 'p99')} "
                f"| {num(c['cpu_us'], 1)} | {c['errors']} / {c['incomplete']} |"
            )

print()
print("### Per target")
print()
print(
    "| target | mode | idle RSS (MB) | peak RSS (MB) | TCP_NODELAY (client side / upstream side) "
    "| x-hoosh-cache before the run; cache counters after | ledger rows / audit `inference` entries / requests sent |"
)
print("|---|---|---|---|---|---|---|")
for t in targets:
    nd = t["nodelay"] or "(probed in JSON mode)"
    nd = nd.replace("client=", "").replace(" upstream=", " / ")
    cache = t["cache_header"] if t["target"].startswith("hoosh") else "–"
    if t["cache_metrics"]:
        cache += f"; {t['cache_metrics']}"
    rows = f"{t['ledger_rows']} / {t['audit_rows']} / {t['requests_sent']}" if t["ledger_rows"] else f"– / – / {t['requests_sent']}"
    print(f"| {t['target']} | {t['mode']} | {mb(t['idle_rss_kb'])} | {mb(t['peak_rss_kb'])} | {nd} | {cache} | {rows} |")
print()
print(
    "TCP_NODELAY: from `strace -f -e trace=accept4,connect,setsockopt` on the target while curl sent four requests "
    "on two kept-alive connections; yes = every accepted (client side) or upstream-connected socket got "
    "TCP_NODELAY=1. Requests sent include those probes. wrk drops up to c in-flight requests at the end of each "
    "cell; the gateway still answers and records them, so ledger rows may exceed requests by up to that."
)
