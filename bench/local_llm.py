#!/usr/bin/env python3
"""Local-model serving throughput through the whole gateway path.

Streams chat completions from a running hoosh (default http://127.0.0.1:8088)
at several concurrencies and reports aggregate generated tokens/s, per-stream
tokens/s and time to first token (p50), the figures llama.cpp's llama-server
is compared on in docs/BENCHMARKS.md. Standard library only.

Usage: bench/local_llm.py [--url URL] [--model smollm2-135m] [--max-tokens 128]
                          [--rounds 3] [--concurrency 1 4 8]
"""

import argparse
import http.client
import json
import statistics
import threading
import time
import urllib.parse

PROMPTS = [
    "Write a short paragraph about the history of the bicycle and why it became popular.",
    "Explain in a few sentences how a rainbow forms after the rain.",
    "Describe a quiet morning in a small mountain village in a short paragraph.",
    "Give a short explanation of why the sky looks blue during the day.",
]


def stream_once(url, model, max_tokens, prompt):
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    body = json.dumps({
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0.7,
        "seed": 1,
        "stream": True,
        "stream_options": {"include_usage": True},
    })
    start = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:300]!r}")
    ttft, tokens, buf = None, 0, b""
    while True:
        line = resp.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data: "):
            continue
        data = line[6:]
        if data == b"[DONE]":
            break
        chunk = json.loads(data)
        if chunk.get("usage"):
            tokens = chunk["usage"]["completion_tokens"]
        for c in chunk.get("choices", []):
            if c["delta"].get("content") and ttft is None:
                ttft = time.perf_counter() - start
    end = time.perf_counter()
    conn.close()
    return ttft or (end - start), tokens, end - start


def run(url, model, max_tokens, conc):
    results, errors = [], []

    def worker(i):
        try:
            results.append(stream_once(url, model, max_tokens, PROMPTS[i % len(PROMPTS)]))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(conc)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    total = sum(r[1] for r in results)
    per_stream = statistics.median(r[1] / max(r[2] - r[0], 1e-9) for r in results)
    return total / wall, per_stream, statistics.median(r[0] for r in results) * 1000, total / conc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8088")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    a = ap.parse_args()
    stream_once(a.url, a.model, 8, "Hello")  # warm-up
    print("| streams | aggregate gen tok/s | per-stream decode tok/s | TTFT p50 (ms) | tokens per answer |")
    print("|---|---|---|---|---|")
    for c in a.concurrency:
        rows = [run(a.url, a.model, a.max_tokens, c) for _ in range(a.rounds)]
        best = max(rows, key=lambda r: r[0])
        print(f"| {c} | {best[0]:.1f} | {best[1]:.1f} | {best[2]:.0f} | {best[3]:.0f} |")
    print(f"\nbest of {a.rounds} rounds per row; max_tokens {a.max_tokens}; model {a.model}")


if __name__ == "__main__":
    main()
