//! Signed checkpoints: "the chain had reached `seq` with head `head_hash`".
//!
//! Hash links catch edits and gaps, but cutting entries off the *end* leaves
//! a shorter chain that is still valid. A checkpoint kept elsewhere (exported
//! with [`crate::AuditLog::export_checkpoint`] to a log shipper, a ticket, a
//! second disk) turns that into a detectable
//! [`crate::Reason::TruncatedAfterCheckpoint`].
//!
//! `sig` = HMAC-SHA256(key, canonical bytes), the canonical bytes being the
//! compact JSON object with keys in this order and nothing else:
//! `{"head_hash":"<64 hex>","key_id":"<16 hex>","seq":<int>,"ts_ms":<int>}`.

use serde::{Deserialize, Serialize};

use crate::entry::write_str;
use crate::key::AuditKey;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub seq: u64,
    #[serde(with = "crate::hex::digest")]
    pub head_hash: [u8; 32],
    pub ts_ms: i64,
    pub key_id: String,
    #[serde(with = "crate::hex::digest")]
    pub sig: [u8; 32],
}

impl Checkpoint {
    /// A checkpoint of the chain at `seq`/`head_hash`, signed with `key`.
    pub fn sign(seq: u64, head_hash: [u8; 32], ts_ms: i64, key: &AuditKey) -> Checkpoint {
        let mut cp = Checkpoint { seq, head_hash, ts_ms, key_id: key.id().to_string(), sig: [0; 32] };
        cp.sig = key.sign(&cp.canonical_bytes());
        cp
    }

    /// The bytes `sig` covers; see the module doc.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(b"{\"head_hash\":\"");
        crate::hex::encode_into(&self.head_hash, &mut out);
        out.extend_from_slice(b"\",\"key_id\":");
        write_str(&mut out, &self.key_id);
        out.extend_from_slice(format!(",\"seq\":{},\"ts_ms\":{}}}", self.seq, self.ts_ms).as_bytes());
        out
    }

    /// Whether `sig` is `key`'s signature (the caller picks the key by `key_id`).
    pub fn signature_valid(&self, key: &AuditKey) -> bool {
        key.id() == self.key_id && key.verify(&self.canonical_bytes(), &self.sig)
    }

    pub fn to_json(&self) -> String {
        // Plain data: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<Checkpoint, serde_json::Error> {
        serde_json::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::test_key;

    #[test]
    fn canonical_form_signature_and_json() {
        let key = test_key(3);
        let cp = Checkpoint::sign(42, [0xab; 32], 1_700_000_000_000, &key);
        let expected =
            format!(r#"{{"head_hash":"{}","key_id":"{}","seq":42,"ts_ms":1700000000000}}"#, "ab".repeat(32), key.id());
        assert_eq!(String::from_utf8(cp.canonical_bytes()).unwrap(), expected);
        assert!(cp.signature_valid(&key));
        assert!(!cp.signature_valid(&test_key(4)));
        let back = Checkpoint::from_json(&cp.to_json()).unwrap();
        assert_eq!(back, cp);
        let forged = Checkpoint { seq: 41, ..cp };
        assert!(!forged.signature_valid(&key));
    }
}
