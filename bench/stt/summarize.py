#!/usr/bin/env python3
"""Summarize compare.sh results: markdown table of medians + transcripts.

    summarize.py results.jsonl CLIPS_DIR
"""
import collections
import json
import os
import statistics
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wer import wer_counts  # noqa: E402


def main():
    path, clips_dir = sys.argv[1], sys.argv[2]
    rows = [json.loads(l) for l in open(path) if l.strip()]
    groups = collections.OrderedDict()
    for r in rows:
        groups.setdefault((r["model"], r["clip_id"], r["label"]), []).append(r)

    print("| model | clip (audio s) | engine | RTF median | processing s median (min-max) | load s median | peak RSS MB | WER | runs | load1 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    texts = []
    for (model, clip, label), rs in groups.items():
        ref = open(os.path.join(clips_dir, clip + ".txt"), encoding="utf-8").read()
        ts = [r["transcribe_s"] for r in rs]
        med = statistics.median(ts)
        wers = sorted({wer_counts(ref, r["text"]) for r in rs})
        wer_s = ", ".join(f"{e / n:.1%} ({e}/{n})" for e, n in wers)
        loads = [r.get("load1", 0.0) for r in rs]
        print(f"| {model} | {clip} ({rs[0]['audio_s']:.1f}) | {label} | {med / rs[0]['audio_s']:.3f} | "
              f"{med:.2f} ({min(ts):.2f}-{max(ts):.2f}) | {statistics.median(r['load_s'] for r in rs):.2f} | "
              f"{max(r['rss_mb'] for r in rs):.0f} | {wer_s} | {len(rs)} | "
              f"{min(loads):.1f}-{max(loads):.1f} |")
        for t in sorted({r["text"] for r in rs}):
            texts.append(f"- {model} / {clip} / {label}: {t}")
    print()
    print("Transcripts (distinct per engine/model/clip):")
    print()
    print("\n".join(texts))


if __name__ == "__main__":
    main()
