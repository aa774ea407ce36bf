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
//! | `kind`       | string           | what happened: `inference.response`, `auth.failure`, `key.created`, `budget.changed`, `config.reload`, `admin.action`, and the chain's own `chain.start`, `chain.stop`, `chain.prune`, `chain.rotate` |
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
//! - numbers as `serde_json` prints them (integers in decimal; floats in
//!   shortest round-trip form, e.g. `1.5`, `1e300`);
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
        // Leaves: exactly serde_json's compact form. Writing into a Vec cannot fail.
        leaf => {
            let _ = serde_json::to_writer(&mut *out, leaf);
        }
    }
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
