#!/usr/bin/env python3
"""Verify a hoosh audit export (JSONL) independently of hoosh.

Standard library only. Implements docs/AUDIT.md from the text, not from the
Rust code, so a verifier who does not trust the gateway can read all of it:

    python3 verify_audit.py EXPORT.jsonl --key-file audit.key [--key-file old.key] [--checkpoint cp.json] [--json]

Exit status 0 when the chain verifies, 1 with the first bad entry and why,
2 when the arguments, a key or the checkpoint file cannot be used.
"""

import argparse
import hashlib
import hmac
import json
import math
import re
import sys

GENESIS = "0" * 64
U64_MAX = 2**64 - 1
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
# serde_json refuses a document nested this deep (its recursion limit).
MAX_DEPTH = 127
HEX64 = re.compile(r"\A[0-9a-fA-F]{64}\Z")
ENTRY_FIELDS = {"seq", "ts_ms", "kind", "actor", "request_id", "data", "prev_hash", "hash", "key_id", "sig"}
OPTIONAL_FIELDS = {"actor", "request_id"}
CHECKPOINT_FIELDS = {"seq", "head_hash", "ts_ms", "key_id", "sig"}


class Invalid(Exception):
    """A line that is not an entry in the stored format."""


# --- Reading: the same values hoosh reads --------------------------------------------------


class _Object(dict):
    duplicate = False


def _object(pairs):
    obj = _Object(pairs)
    obj.duplicate = len(obj) != len(pairs)
    return obj


def _int(text):
    # An integer too big for 64 bits, and "-0", are doubles, as in serde_json.
    if text == "-0":
        return -0.0
    value = int(text)
    return value if I64_MIN <= value <= U64_MAX else _float(text)


def _float(text):
    value = float(text)
    if math.isinf(value):
        raise Invalid(f"number out of range: {text}")
    return value


def _constant(name):
    raise Invalid(f"{name} is not JSON")


def loads(text):
    try:
        value = json.loads(text, object_pairs_hook=_object, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except (ValueError, RecursionError) as e:
        raise Invalid(str(e)) from None
    if _depth(value) > MAX_DEPTH:
        raise Invalid("nested too deeply")
    return value


def _depth(value):
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _is_int(value, low, high):
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _hex64(obj, name):
    value = obj.get(name)
    if not isinstance(value, str) or not HEX64.match(value):
        raise Invalid(f"{name} is not 64 hex characters")
    return value.lower()


def parse_entry(line):
    e = loads(line)
    if not isinstance(e, dict) or e.duplicate:
        raise Invalid("not an entry object")
    if set(e) - ENTRY_FIELDS or (ENTRY_FIELDS - OPTIONAL_FIELDS) - set(e):
        raise Invalid("unknown or missing fields")
    if not _is_int(e["seq"], 0, U64_MAX) or not _is_int(e["ts_ms"], I64_MIN, I64_MAX):
        raise Invalid("seq or ts_ms is not an integer in range")
    if not isinstance(e["kind"], str) or not isinstance(e["key_id"], str) or not isinstance(e["data"], dict):
        raise Invalid("kind, key_id or data has the wrong type")
    for name in OPTIONAL_FIELDS:
        e.setdefault(name, None)
        if e[name] is not None and not isinstance(e[name], str):
            raise Invalid(f"{name} is neither a string nor null")
    for name in ("prev_hash", "hash", "sig"):
        e[name] = _hex64(e, name)
    try:
        e["_canonical"] = canonical_entry(e)
    except UnicodeEncodeError:
        raise Invalid("a string holds a lone surrogate") from None
    return e


def parse_checkpoint(text):
    cp = loads(text)
    if not isinstance(cp, dict) or cp.duplicate or set(cp) != CHECKPOINT_FIELDS:
        raise Invalid("not a checkpoint object")
    if not _is_int(cp["seq"], 0, U64_MAX) or not _is_int(cp["ts_ms"], I64_MIN, I64_MAX):
        raise Invalid("seq or ts_ms is not an integer in range")
    if not isinstance(cp["key_id"], str):
        raise Invalid("key_id is not a string")
    cp["head_hash"], cp["sig"] = _hex64(cp, "head_hash"), _hex64(cp, "sig")
    return cp


# --- Canonical bytes (docs/AUDIT.md, "Canonical bytes") -------------------------------------

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


def canonical_str(s):
    """`"` `\\` and controls escaped (short forms, else \\u00xx lowercase); the rest verbatim."""
    return '"' + _NEEDS_ESCAPE.sub(lambda m: _ESCAPES.get(m.group(), "\\u%04x" % ord(m.group())), s) + '"'


def canonical_float(x):
    """Shortest round-trip digits D, exponent E; positional for -5 <= E <= 15, else D[0].D[1:]e±|E|."""
    if math.isnan(x) or math.isinf(x):
        return "null"
    if x == 0.0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    sign = "-" if x < 0 else ""
    # repr is the shortest string that reads back as x, the nearest of those, ties to even.
    mantissa, _, exponent = repr(abs(x)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + (int(exponent) if exponent else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    e, n = point - 1, len(digits)
    if -5 <= e <= 15:
        if e >= n - 1:
            body = digits + "0" * (e - (n - 1)) + ".0"
        elif e >= 0:
            body = digits[: e + 1] + "." + digits[e + 1 :]
        else:
            body = "0." + "0" * (-e - 1) + digits
    else:
        body = digits[0] + ("." + digits[1:] if n > 1 else "") + "e" + ("-" if e < 0 else "+") + str(abs(e))
    return sign + body


def canonical(value):
    """No whitespace; object keys sorted (code point order is UTF-8 byte order); arrays kept."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return canonical_float(value)
    if isinstance(value, str):
        return canonical_str(value)
    if isinstance(value, list):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    return "{" + ",".join(canonical_str(k) + ":" + canonical(value[k]) for k in sorted(value)) + "}"


def canonical_entry(e):
    fields = [
        ("actor", canonical(e["actor"])),
        ("data", canonical(e["data"])),
        ("key_id", canonical_str(e["key_id"])),
        ("kind", canonical_str(e["kind"])),
        ("prev_hash", '"' + e["prev_hash"] + '"'),
        ("request_id", canonical(e["request_id"])),
        ("seq", str(e["seq"])),
        ("ts_ms", str(e["ts_ms"])),
    ]
    return ("{" + ",".join(f'"{k}":{v}' for k, v in fields) + "}").encode("utf-8")


def checkpoint_bytes(cp):
    text = '{"head_hash":"%s","key_id":%s,"seq":%d,"ts_ms":%d}' % (
        cp["head_hash"],
        canonical_str(cp["key_id"]),
        cp["seq"],
        cp["ts_ms"],
    )
    return text.encode("utf-8")


def mac(key, message):
    return hmac.new(key, message, hashlib.sha256).hexdigest()


# --- Verification (docs/AUDIT.md, "Verification" and "Key epochs") --------------------------


def key_after(e):
    """The key that must sign the next entry: the one a chain.rotate names, else this one's."""
    if e["kind"] == "chain.rotate":
        named = e["data"].get("new_key_id")
        return named if isinstance(named, str) else ""
    return e["key_id"]


def is_key_change_from(e, in_force):
    d = e["data"]
    return e["kind"] == "chain.key_changed" and d.get("previous_key_id") == in_force and d.get("new_key_id") == e["key_id"]


class Verifier:
    def __init__(self, keys, checkpoint):
        self.keys, self.checkpoint = keys, checkpoint
        self.checked, self.first, self.start_ok, self.pruned_until = 0, None, False, 1
        self.expected, self.head_seq, self.head_hash, self.gap = None, 0, GENESIS, None
        self.in_force, self.epoch_keys, self.key_changes = None, [], []
        self.checkpoint_matched, self.problem = False, None
        if checkpoint is not None:
            key = keys.get(checkpoint["key_id"])
            if key is None:
                self.fail(checkpoint["seq"], "unknown_key")
            elif not hmac.compare_digest(mac(key, checkpoint_bytes(checkpoint)), checkpoint["sig"]):
                self.fail(checkpoint["seq"], "checkpoint_mismatch")

    def fail(self, seq, reason):
        if self.problem is None:
            self.problem = (seq, reason)

    def check(self, e):
        """Checks the next entry; False once a problem is found."""
        if self.problem is not None:
            return False
        reason = self._check_one(e)
        if reason is not None:
            self.fail(e["seq"], reason)
            return False
        self.checked += 1
        return self.problem is None

    def _check_one(self, e):
        key = self.keys.get(e["key_id"])
        if key is None:
            return "unknown_key"
        h = hashlib.sha256(e["_canonical"]).hexdigest()
        if h != e["hash"]:
            return "modified"
        if not hmac.compare_digest(mac(key, bytes.fromhex(h)), e["sig"]):
            return "bad_signature"
        seq = e["seq"]
        if self.expected is None:
            self.first = (seq, e["prev_hash"])
            if seq == 1:
                if e["prev_hash"] != GENESIS:
                    return "broken_link"
                self.start_ok = True
        else:
            if self.gap is not None:
                gap_from, gap_to = self.gap
                if gap_from <= seq < gap_to:
                    return "reordered"
                self.fail(gap_to, "missing_sequence")
                return None
            if seq < self.expected:
                return "replayed"
            if seq > self.expected:
                self.gap = (self.expected, seq)  # judged at the next entry
            elif e["prev_hash"] != self.head_hash:
                return "broken_link"
        if self.gap is None:
            reason = self._check_epoch(e)
            if reason is not None:
                return reason
        after = key_after(e)
        cp = self.checkpoint
        if cp is not None and cp["seq"] == seq:
            if cp["head_hash"] != h or cp["key_id"] not in (e["key_id"], after):
                return "checkpoint_mismatch"
            self.checkpoint_matched = True
        if e["kind"] == "chain.prune":
            self._note_prune(e["data"])
        if after != e["key_id"]:
            self.key_changes.append({"seq": seq, "from": e["key_id"], "to": after, "signed_by_old_key": True})
            self.epoch_keys.append(after)
        self.in_force = after
        self.expected, self.head_seq, self.head_hash = seq + 1, seq, h
        return None

    def _check_epoch(self, e):
        if self.in_force is None:
            self.epoch_keys.append(e["key_id"])
        elif self.in_force != e["key_id"]:
            if not is_key_change_from(e, self.in_force) or e["key_id"] in self.epoch_keys:
                return "wrong_key"
            self.key_changes.append({"seq": e["seq"], "from": self.in_force, "to": e["key_id"], "signed_by_old_key": False})
            self.epoch_keys.append(e["key_id"])
        return None

    def _note_prune(self, d):
        first_kept, last_hash = d.get("first_kept_seq"), d.get("last_pruned_hash")
        if not (_is_int(first_kept, 0, U64_MAX) and _is_int(d.get("last_pruned_seq"), 0, U64_MAX)):
            return
        if not (isinstance(last_hash, str) and HEX64.match(last_hash)) or self.first is None:
            return
        if first_kept == self.first[0] and last_hash.lower() == self.first[1]:
            self.start_ok = True
        elif first_kept <= self.first[0]:
            self.pruned_until = max(self.pruned_until, first_kept)

    def fail_unreadable(self):
        self.fail(self.expected if self.expected is not None else 1, "modified")

    def finish(self):
        if self.gap is not None:
            self.fail(self.gap[1], "missing_sequence")
        first_seq = self.first[0] if self.first else 0
        if self.first is not None and not self.start_ok:
            self.fail(first_seq, "broken_link" if self.pruned_until == first_seq else "missing_sequence")
        cp = self.checkpoint
        if cp is not None and self.head_seq < cp["seq"] and cp["seq"] >= first_seq:
            self.fail(cp["seq"], "truncated_after_checkpoint")
        return {
            "valid": self.problem is None,
            "entries_checked": self.checked,
            "first_seq": first_seq,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "key_changes": self.key_changes,
            "checkpoint_matched": self.checkpoint_matched,
            "problem": None if self.problem is None else {"seq": self.problem[0], "reason": self.problem[1]},
        }


def verify(lines, keys, checkpoint):
    v = Verifier(keys, checkpoint)
    for line in lines:
        if not line.strip():
            continue
        try:
            entry = parse_entry(line)
        except Invalid:
            v.fail_unreadable()
            break
        if not v.check(entry):
            break
    return v.finish()


# --- Command line -------------------------------------------------------------------------


def parse_key(raw):
    """Hex when the trimmed text is 64+ hex characters, else the raw bytes (at least 32)."""
    text = raw.strip()
    if len(text) >= 64 and re.fullmatch(rb"(?:[0-9a-fA-F]{2})+", text):
        key = bytes.fromhex(text.decode("ascii"))
    else:
        key = raw
    if len(key) < 32:
        raise ValueError(f"the key is {len(key)} bytes; at least 32 are required")
    return key


def key_id(key):
    return hashlib.sha256(key).hexdigest()[:16]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("export")
    ap.add_argument("--key-file", action="append", required=True)
    ap.add_argument("--checkpoint")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args()
    keys = {}
    try:
        for path in args.key_file:
            with open(path, "rb") as f:
                k = parse_key(f.read())
            keys[key_id(k)] = k
        checkpoint = None
        if args.checkpoint:
            with open(args.checkpoint, encoding="utf-8") as f:
                checkpoint = parse_checkpoint(f.read())
    except (OSError, ValueError, Invalid) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with open(args.export, encoding="utf-8", errors="surrogateescape") as f:
        report = verify(f, keys, checkpoint)
    if args.json:
        print(json.dumps(report))
    elif report["valid"]:
        changes = "".join(
            f"; key {c['from']} -> {c['to']} at seq {c['seq']}" + ("" if c["signed_by_old_key"] else " (unsigned key change)")
            for c in report["key_changes"]
        )
        cp = ""
        if checkpoint is not None:
            cp = "; checkpoint at seq %d %s" % (
                checkpoint["seq"],
                "matched" if report["checkpoint_matched"] else "predates the kept entries (not compared)",
            )
        print(
            f"OK: {report['entries_checked']} entries, seq {report['first_seq']}..{report['head_seq']}, "
            f"head {report['head_hash']}{changes}{cp}"
        )
    else:
        p = report["problem"]
        print(f"FAILED at seq {p['seq']}: {p['reason']} ({report['entries_checked']} entries verified before it)")
    return 0 if report["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
