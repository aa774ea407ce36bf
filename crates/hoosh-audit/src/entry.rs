//! The audit entry and its canonical form — the on-disk format of the chain.
//!
//! # Entry
//!
//! An entry is stored (SQLite `audit.json`, one JSONL line in an export) as a
//! JSON object with exactly these fields:
//!
//! | field        | JSON type        | meaning |
//! |--------------|------------------|---------|
//! | `seq`        | integer          | 1 for the first entry ever written, +1 for each next one; never reused |
//! | `ts_ms`      | integer          | unix milliseconds when the writer sealed it; never decreases along the chain |
//! | `kind`       | string           | what happened: `inference.response`, `auth.failure`, `key.created`, `budget.changed`, `config.reload`, `admin.action`, and the chain's own `chain.start`, `chain.stop`, `chain.prune`, `chain.rotate`, `chain.key_changed` |
//! | `actor`      | string or `null` | the virtual key id that caused it, if any |
//! | `request_id` | string or `null` | the request it belongs to, if any |
//! | `data`       | object           | the event's fields (any JSON) |
//! | `prev_hash`  | 64 lowercase hex | `hash` of entry `seq - 1`; 64 zeros for `seq` 1 |
//! | `hash`       | 64 lowercase hex | SHA-256 of the canonical bytes (below) |
//! | `key_id`     | 16 lowercase hex | first 16 hex characters of SHA-256(audit key): names the key, reveals nothing |
//! | `sig`        | 64 lowercase hex | HMAC-SHA256(audit key, the 32 raw bytes of `hash`) |
//!
//! Unknown fields are rejected when reading.
//!
//! # Canonical bytes
//!
//! `hash = SHA-256(canonical_bytes(entry))`, where the canonical bytes are the
//! UTF-8 encoding of one JSON object with exactly the eight keys `actor`,
//! `data`, `key_id`, `kind`, `prev_hash`, `request_id`, `seq`, `ts_ms` — in
//! that (bytewise lexicographic) order — and:
//!
//! - no whitespace anywhere outside strings;
//! - strings escaped as `serde_json` writes them (`"` `\\` and control
//!   characters escaped, `\n` `\r` `\t` `\b` `\f` short forms, other controls
//!   `\u00XX` lowercase; everything else, non-ASCII included, verbatim);
//! - integers in plain decimal (`-7`, `18446744073709551615`);
//! - floats (a JSON number with a `.` or an exponent, read as an IEEE-754
//!   double) from their shortest round-trip digits `D` (no leading or
//!   trailing zeros) and decimal exponent `E` (the value is `D[0].D[1..] ×
//!   10^E`): for `-5 ≤ E ≤ 15` in positional form that always shows a
//!   fraction (`1.0`, `1000000000000000.0`, `12.34`, `0.00001`), otherwise
//!   as `D[0]`, then `.D[1..]` when there is more than one digit, then `e`,
//!   the sign (`+` or `-`) and `|E|` with no leading zeros (`1e+16`,
//!   `1.5e-7`, `5e-324`); zero is `0.0` or `-0.0`. This is what serde_json
//!   1.0.154 writes, but the form is fixed here, not by whichever serde_json
//!   a build links: a chain has to verify for as long as it is kept;
//! - `null` for an absent `actor` or `request_id`;
//! - `prev_hash` as 64 lowercase hex characters;
//! - inside `data`, every object (at any depth) has its keys sorted bytewise;
//!   array order is kept.
//!
//! `hash` and `sig` are not part of the canonical bytes (they are computed
//! from them). Example, for `seq` 1 of a chain signed by key id
//! `0123456789abcdef`:
//!
//! ```text
//! {"actor":"key_a","data":{"a":[2,{"x":1,"y":null}],"b":"é\n"},"key_id":"0123456789abcdef","kind":"admin.action","prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","request_id":null,"seq":1,"ts_ms":1700000000000}
//! ```
//!
//! A checkpoint (see [`crate::checkpoint`]) is canonicalised the same way.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// `prev_hash` of the first entry.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// The chain's own entry kinds.
pub mod kinds {
    pub const CHAIN_START: &str = "chain.start";
    pub const CHAIN_STOP: &str = "chain.stop";
    pub const CHAIN_PRUNE: &str = "chain.prune";
    pub const CHAIN_ROTATE: &str = "chain.rotate";
    /// The chain resumed under a key the previous one never named (see [`crate::epoch`]).
    pub const CHAIN_KEY_CHANGED: &str = "chain.key_changed";
}

/// What a caller records; the writer turns it into an [`Entry`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Draft {
    pub kind: String,
    /// The key id that caused the event, if any.
    pub actor: Option<String>,
    pub request_id: Option<String>,
    pub data: Map<String, Value>,
}

impl Draft {
    /// A draft with no actor, request or data.
    pub fn new(kind: impl Into<String>) -> Draft {
        Draft { kind: kind.into(), ..Draft::default() }
    }

    pub fn actor(mut self, actor: impl Into<String>) -> Draft {
        self.actor = Some(actor.into());
        self
    }

    pub fn request_id(mut self, request_id: impl Into<String>) -> Draft {
        self.request_id = Some(request_id.into());
        self
    }

    /// Adds one field to `data`.
    pub fn field(mut self, name: impl Into<String>, value: impl Into<Value>) -> Draft {
        self.data.insert(name.into(), value.into());
        self
    }
}

/// One sealed link of the chain. See the module doc for the format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub seq: u64,
    pub ts_ms: i64,
    pub kind: String,
    pub actor: Option<String>,
    pub request_id: Option<String>,
    pub data: Map<String, Value>,
    #[serde(with = "crate::hex::digest")]
    pub prev_hash: [u8; 32],
    #[serde(with = "crate::hex::digest")]
    pub hash: [u8; 32],
    pub key_id: String,
    #[serde(with = "crate::hex::digest")]
    pub sig: [u8; 32],
}

impl Entry {
    /// SHA-256 of [`canonical_bytes`]: what `hash` must equal.
    pub fn compute_hash(&self) -> [u8; 32] {
        Sha256::digest(canonical_bytes(self)).into()
    }

    /// The stored JSON form.
    pub fn to_json(&self) -> String {
        // An entry is plain data (strings, integers, a JSON map): serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The bytes `hash` is computed over; see the module doc.
pub fn canonical_bytes(entry: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"actor\":");
    write_opt_str(&mut out, entry.actor.as_deref());
    out.extend_from_slice(b",\"data\":");
    write_object(&mut out, &entry.data);
    out.extend_from_slice(b",\"key_id\":");
    write_str(&mut out, &entry.key_id);
    out.extend_from_slice(b",\"kind\":");
    write_str(&mut out, &entry.kind);
    out.extend_from_slice(b",\"prev_hash\":\"");
    crate::hex::encode_into(&entry.prev_hash, &mut out);
    out.extend_from_slice(b"\",\"request_id\":");
    write_opt_str(&mut out, entry.request_id.as_deref());
    out.extend_from_slice(b",\"seq\":");
    out.extend_from_slice(entry.seq.to_string().as_bytes());
    out.extend_from_slice(b",\"ts_ms\":");
    out.extend_from_slice(entry.ts_ms.to_string().as_bytes());
    out.push(b'}');
    out
}

pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn write_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => write_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_object(out: &mut Vec<u8>, map: &Map<String, Value>) {
    // Sorted here rather than relying on `Map` order, which is insertion order
    // when any crate in the build enables serde_json's `preserve_order`.
    let mut fields: Vec<(&String, &Value)> = map.iter().collect();
    fields.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out.push(b'{');
    for (i, (name, value)) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, name);
        out.push(b':');
        write_value(out, value);
    }
    out.push(b'}');
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Object(map) => write_object(out, map),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Number(n) if n.is_f64() => write_f64(out, n.as_f64().unwrap_or_default()),
        // Other leaves (strings, integers, booleans, null): serde_json's
        // compact form. Writing into a Vec cannot fail.
        leaf => {
            let _ = serde_json::to_writer(&mut *out, leaf);
        }
    }
}

/// A float in its canonical form (see the module doc). serde_json holds only
/// finite floats; a non-finite one would be `null`, as serde_json writes it.
pub(crate) fn write_f64(out: &mut Vec<u8>, value: f64) {
    if !value.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    if value == 0.0 {
        out.extend_from_slice(if value.is_sign_negative() { b"-0.0" } else { b"0.0" });
        return;
    }
    if value.is_sign_negative() {
        out.push(b'-');
    }
    let (digits, exponent) = shortest_digits(value.abs());
    let n = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    let zeros = |out: &mut Vec<u8>, count: i32| out.extend(std::iter::repeat_n(b'0', count.max(0) as usize));
    if (-5..=15).contains(&exponent) {
        if exponent >= n - 1 {
            // 1234e7 -> 12340000000.0
            out.extend_from_slice(&digits);
            zeros(out, exponent - (n - 1));
            out.extend_from_slice(b".0");
        } else if exponent >= 0 {
            // 1234e-2 -> 12.34
            let point = (exponent + 1) as usize;
            out.extend_from_slice(&digits[..point]);
            out.push(b'.');
            out.extend_from_slice(&digits[point..]);
        } else {
            // 1234e-6 -> 0.001234
            out.extend_from_slice(b"0.");
            zeros(out, -exponent - 1);
            out.extend_from_slice(&digits);
        }
    } else {
        // 1234e30 -> 1.234e+33
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exponent < 0 { b'-' } else { b'+' });
        out.extend_from_slice(exponent.unsigned_abs().to_string().as_bytes());
    }
}

/// The shortest digits that read back as `value` (positive, finite) and the
/// decimal exponent of the first: of several such digit strings the one
/// nearest `value`, and of two equally near the one ending in an even digit
/// (as Python's `repr` and serde_json choose).
fn shortest_digits(value: f64) -> (Vec<u8>, i32) {
    let split = |text: &str| {
        let (mantissa, exponent) = text.split_once('e').unwrap_or((text, "0"));
        let mut digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
        while digits.len() > 1 && digits.last() == Some(&b'0') {
            digits.pop();
        }
        (digits, exponent.parse::<i32>().unwrap_or(0))
    };
    // std's `{:e}` gives the shortest length (and a nearest string, but it
    // breaks an exact tie upwards).
    let shortest = format!("{value:e}");
    let (digits, exponent) = split(&shortest);
    // std's fixed-precision form rounds exactly, ties to even: the nearest
    // string of that length — taken when it still reads back as `value`
    // (next to a power of two it may not, and the upward one is nearest
    // among those that do).
    let nearest = format!("{value:.*e}", digits.len() - 1);
    if nearest.parse::<f64>().is_ok_and(|back| back == value) { split(&nearest) } else { (digits, exponent) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Entry {
        let Value::Object(data) = json!({"b": "é\n", "a": [2, {"y": null, "x": 1}]}) else { unreachable!() };
        Entry {
            seq: 1,
            ts_ms: 1_700_000_000_000,
            kind: "admin.action".into(),
            actor: Some("key_a".into()),
            request_id: None,
            data,
            prev_hash: GENESIS_HASH,
            hash: [0; 32],
            key_id: "0123456789abcdef".into(),
            sig: [0; 32],
        }
    }

    #[test]
    fn canonical_bytes_match_the_documented_literal() {
        let expected = concat!(
            r#"{"actor":"key_a","data":{"a":[2,{"x":1,"y":null}],"b":"é\n"},"key_id":"0123456789abcdef","#,
            r#""kind":"admin.action","prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","#,
            r#""request_id":null,"seq":1,"ts_ms":1700000000000}"#
        );
        assert_eq!(String::from_utf8(canonical_bytes(&sample())).unwrap(), expected);
    }

    #[test]
    fn hash_and_sig_are_not_canonical_and_floats_print_like_serde_json() {
        let mut e = sample();
        let before = canonical_bytes(&e);
        e.hash = [1; 32];
        e.sig = [2; 32];
        assert_eq!(canonical_bytes(&e), before);
        e.data = Map::new();
        e.data.insert("f".into(), json!(1.5));
        e.data.insert("g".into(), json!(-7));
        e.data.insert("h".into(), json!("\u{1}\"\\"));
        let text = String::from_utf8(canonical_bytes(&e)).unwrap();
        assert!(text.contains(r#""data":{"f":1.5,"g":-7,"h":"\u0001\"\\"}"#), "{text}");
    }

    fn float(f: f64) -> String {
        let mut out = Vec::new();
        write_f64(&mut out, f);
        String::from_utf8(out).unwrap()
    }

    #[test]
    #[expect(clippy::excessive_precision, reason = "written as a client would send them, not as the nearest double")]
    fn floats_have_one_documented_form() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (-1.5, "-1.5"),
            (0.1, "0.1"),
            (1e-5, "0.00001"),
            (1.5e-5, "0.000015"),
            (1e-6, "1e-6"),
            (1.25e-7, "1.25e-7"),
            (123.456, "123.456"),
            (1e15, "1000000000000000.0"),
            (1.2345e15, "1234500000000000.0"),
            (1e16, "1e+16"),
            (9007199254740993.0, "9007199254740992.0"),
            (1.8446744073709552e19, "1.8446744073709552e+19"),
            (1e300, "1e+300"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (5e-324, "5e-324"),
            (-2.5e-320, "-2.5e-320"),
            (-1052730259603333.25, "-1052730259603333.2"),
            (f64::NAN, "null"),
        ];
        for (f, want) in cases {
            assert_eq!(float(*f), *want, "{f:e}");
        }
    }

    /// Chains sealed before the form was fixed here hashed serde_json's own
    /// output; for this serde_json the two agree on every double tried, so
    /// those chains still verify. (A serde_json that prints floats another
    /// way changes only the stored text, never the hash: verifying parses
    /// the number and prints it in the form above.)
    #[test]
    fn the_float_form_matches_serde_json_on_random_doubles() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..200_000u32 {
            let bits = next();
            // Every third one is a "human" number: a few digits at a small exponent.
            let f = if i % 3 == 0 {
                (bits % 1_000_000) as f64 * 10f64.powi((bits >> 32) as i32 % 40 - 20)
            } else {
                f64::from_bits(bits)
            };
            if !f.is_finite() {
                continue;
            }
            let ours = float(f);
            assert_eq!(ours, serde_json::to_string(&f).unwrap(), "{bits:#x}");
            assert_eq!(ours.parse::<f64>().unwrap().to_bits(), f.to_bits(), "{ours} round-trips");
        }
        // Powers of two and their neighbours: where the gap below a double is
        // half the gap above, so the nearest string may not read back.
        for e in -1074i64..=1023 {
            let p = if e < -1022 { f64::from_bits(1 << (e + 1074)) } else { f64::from_bits(((e + 1023) as u64) << 52) };
            assert_eq!(p, 2f64.powf(e as f64));
            for f in [p, f64::from_bits(p.to_bits() + 1), f64::from_bits(p.to_bits().saturating_sub(1))] {
                if f.is_finite() && f != 0.0 {
                    assert_eq!(float(f), serde_json::to_string(&f).unwrap(), "2^{e}: {f:e}");
                }
            }
        }
    }

    /// What the writer stores is read back to the same double, so the hash
    /// the verifier recomputes is the one sealed (serde_json's default float
    /// parsing is approximate for 17-digit significands; this crate turns on
    /// its `float_roundtrip`).
    #[test]
    fn every_double_survives_the_stored_json() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut e = sample();
        for _ in 0..30_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = f64::from_bits(x);
            if !f.is_finite() {
                continue;
            }
            e.data.insert("f".into(), json!(f));
            e.hash = e.compute_hash();
            let back: Entry = serde_json::from_str(&e.to_json()).unwrap();
            assert_eq!(back.data["f"].as_f64().map(f64::to_bits), Some(x), "{f:e}");
            assert_eq!(back.compute_hash(), e.hash, "{f:e}");
        }
    }

    #[test]
    fn a_float_in_data_hashes_the_same_whatever_text_stored_it() {
        // "1e16", "1e+16" and "10000000000000000.0" are one double: one canonical form.
        let mut e = sample();
        for text in ["1e16", "1e+16", "10000000000000000.0", "1.0e16"] {
            e.data.insert("f".into(), serde_json::from_str(text).unwrap());
            let canon = String::from_utf8(canonical_bytes(&e)).unwrap();
            assert!(canon.contains(r#""f":1e+16"#), "{text}: {canon}");
        }
        // An integer stays an integer, whatever its size.
        e.data.insert("f".into(), json!(u64::MAX));
        assert!(String::from_utf8(canonical_bytes(&e)).unwrap().contains(r#""f":18446744073709551615"#));
        e.data.insert("f".into(), json!(i64::MIN));
        assert!(String::from_utf8(canonical_bytes(&e)).unwrap().contains(r#""f":-9223372036854775808"#));
    }

    #[test]
    fn json_round_trips_and_rejects_unknown_fields() {
        let e = sample();
        let text = e.to_json();
        assert!(text.contains(r#""prev_hash":"0000"#));
        assert_eq!(serde_json::from_str::<Entry>(&text).unwrap(), e);
        let extra = text.replacen('{', r#"{"extra":1,"#, 1);
        assert!(serde_json::from_str::<Entry>(&extra).is_err());
    }
}
