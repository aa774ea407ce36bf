#!/usr/bin/env python3
"""Verify a hoosh audit export (JSONL) independently of hoosh.

Standard library only. Implements docs/AUDIT.md from the text, not from the
Rust code, so a verifier who does not trust the gateway can read all of it:

    python3 verify_audit.py EXPORT.jsonl --key-file audit.key [--key-file old.key] [--checkpoint cp.json]

Exit status 0 when the chain verifies, 1 with the first bad entry and why.
"""

import argparse
import hashlib
import hmac
import json
import sys

GENESIS = "0" * 64


def parse_key(raw: bytes) -> bytes:
    """Hex when the trimmed text is 64+ hex characters, else the raw bytes."""
    text = raw.strip()
    try:
        decoded = text.decode("ascii")
        if len(decoded) >= 64 and len(decoded) % 2 == 0:
            return bytes.fromhex(decoded)
    except (UnicodeDecodeError, ValueError):
        pass
    return raw


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


def canonical(value) -> str:
    """JSON with every object's keys sorted, no whitespace, non-ASCII verbatim."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(e: dict) -> str:
    body = {k: e[k] for k in ("actor", "data", "key_id", "kind", "prev_hash", "request_id", "seq", "ts_ms")}
    return hashlib.sha256(canonical(body).encode("utf-8")).hexdigest()


def checkpoint_bytes(cp: dict) -> bytes:
    return canonical({k: cp[k] for k in ("head_hash", "key_id", "seq", "ts_ms")}).encode("utf-8")


def verify(lines, keys: dict, checkpoint):
    """Returns (entries_checked, head_seq, problem or None)."""
    if checkpoint is not None:
        k = keys.get(checkpoint["key_id"])
        sig = hmac.new(k, checkpoint_bytes(checkpoint), hashlib.sha256).hexdigest() if k else None
        if sig != checkpoint["sig"]:
            return 0, 0, (checkpoint["seq"], "checkpoint_mismatch")
    checked, head_seq, head_hash, expected = 0, 0, None, None
    first = None
    start_ok = False
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            e = json.loads(line)
        except ValueError:
            return checked, head_seq, (expected or 1, "modified")
        key = keys.get(e.get("key_id"))
        if key is None:
            return checked, head_seq, (e["seq"], "unknown_key")
        h = entry_hash(e)
        if h != e["hash"]:
            return checked, head_seq, (e["seq"], "modified")
        if hmac.new(key, bytes.fromhex(h), hashlib.sha256).hexdigest() != e["sig"]:
            return checked, head_seq, (e["seq"], "bad_signature")
        if expected is None:
            first = (e["seq"], e["prev_hash"])
            if e["seq"] == 1:
                if e["prev_hash"] != GENESIS:
                    return checked, head_seq, (1, "broken_link")
                start_ok = True
        else:
            if e["seq"] < expected:
                return checked, head_seq, (e["seq"], "replayed")
            if e["seq"] > expected:
                return checked, head_seq, (expected, "missing_sequence")
            if e["prev_hash"] != head_hash:
                return checked, head_seq, (e["seq"], "broken_link")
        if e["kind"] == "chain.prune" and first is not None:
            d = e["data"]
            if d.get("first_kept_seq") == first[0] and d.get("last_pruned_hash") == first[1]:
                start_ok = True
        if checkpoint is not None and checkpoint["seq"] == e["seq"] and checkpoint["head_hash"] != h:
            return checked, head_seq, (e["seq"], "checkpoint_mismatch")
        checked, head_seq, head_hash, expected = checked + 1, e["seq"], h, e["seq"] + 1
    if first is not None and not start_ok:
        return checked, head_seq, (first[0], "missing_sequence")
    if checkpoint is not None and head_seq < checkpoint["seq"] and (first is None or checkpoint["seq"] >= first[0]):
        return checked, head_seq, (checkpoint["seq"], "truncated_after_checkpoint")
    return checked, head_seq, None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("export")
    ap.add_argument("--key-file", action="append", required=True)
    ap.add_argument("--checkpoint")
    args = ap.parse_args()
    keys = {}
    for path in args.key_file:
        with open(path, "rb") as f:
            k = parse_key(f.read())
        keys[key_id(k)] = k
    checkpoint = None
    if args.checkpoint:
        with open(args.checkpoint, encoding="utf-8") as f:
            checkpoint = json.load(f)
    with open(args.export, encoding="utf-8") as f:
        checked, head, problem = verify(f, keys, checkpoint)
    if problem is None:
        print(f"OK: {checked} entries, head seq {head}")
        return 0
    print(f"FAILED at seq {problem[0]}: {problem[1]} ({checked} entries verified before it)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
