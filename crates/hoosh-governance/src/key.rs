//! Virtual key material: generation, hashing, display prefix.
//!
//! A key is `hk-` followed by 43 base62 characters that encode 32 bytes from
//! the OS random source (62^43 > 2^256, so every 256-bit value fits and no
//! entropy is lost to the alphabet). Only the SHA-256 digest of the whole
//! plaintext is ever stored; the plaintext is shown once, at creation. A plain
//! hash (not a password KDF) is right here because the input already has 256
//! bits of entropy: there is nothing to brute-force, and lookups stay cheap.

use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What every generated key starts with; lets secret scanners and humans
/// recognise a hoosh key.
pub const KEY_PREFIX: &str = "hk-";
/// Base62 digits needed for 32 bytes.
const KEY_DIGITS: usize = 43;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The OS random source failed; keys are never made from weaker randomness.
#[derive(Debug, thiserror::Error)]
#[error("the OS random source failed: {0}")]
pub struct KeyGenError(pub getrandom::Error);

/// SHA-256 of a key's plaintext. Equality is constant-time so that comparing
/// a presented digest with a stored one leaks nothing through timing.
#[derive(Clone, Copy, Eq)]
pub struct KeyHash(pub [u8; 32]);

impl PartialEq for KeyHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

// Written by hand because `PartialEq` is; must agree with it (it does: both
// look at all 32 bytes).
impl Hash for KeyHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(&self.0);
    }
}

impl fmt::Display for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({self})")
    }
}

impl KeyHash {
    /// Parses the 64-character lowercase or uppercase hex form of [`Display`](fmt::Display).
    pub fn from_hex(s: &str) -> Option<KeyHash> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = hex_val(pair[0])?;
            let lo = hex_val(pair[1])?;
            out[i] = (hi << 4) | lo;
        }
        Some(KeyHash(out))
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl Serialize for KeyHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KeyHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        KeyHash::from_hex(&s).ok_or_else(|| serde::de::Error::custom("expected 64 hex characters"))
    }
}

/// A new key: the plaintext (to show once) and its digest (to store).
pub fn generate_key() -> Result<(String, KeyHash), KeyGenError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(KeyGenError)?;
    let mut plaintext = String::with_capacity(KEY_PREFIX.len() + KEY_DIGITS);
    plaintext.push_str(KEY_PREFIX);
    plaintext.push_str(&base62_256(bytes));
    let hash = hash_key(&plaintext);
    Ok((plaintext, hash))
}

/// The digest a key is stored and looked up by.
pub fn hash_key(plaintext: &str) -> KeyHash {
    KeyHash(Sha256::digest(plaintext.as_bytes()).into())
}

/// The first 8 characters (`hk-AbC12`): enough to tell keys apart in a
/// listing, far too little to guess the rest.
pub fn key_prefix(plaintext: &str) -> String {
    plaintext.chars().take(8).collect()
}

/// `n` random bytes as lowercase hex; used for record ids.
pub(crate) fn random_hex(n: usize) -> Result<String, KeyGenError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(KeyGenError)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A 256-bit big-endian number as exactly 43 base62 digits (leading zeros kept,
/// so every key has the same length).
fn base62_256(mut n: [u8; 32]) -> String {
    let mut digits = [0u8; KEY_DIGITS];
    for slot in digits.iter_mut().rev() {
        // Long division of the whole number by 62; the remainder is the next digit.
        let mut rem: u32 = 0;
        for byte in n.iter_mut() {
            let acc = (rem << 8) | u32::from(*byte);
            *byte = (acc / 62) as u8;
            rem = acc % 62;
        }
        *slot = BASE62[rem as usize];
    }
    digits.iter().map(|&d| char::from(d)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let (plain, hash) = generate_key().unwrap();
        assert!(plain.starts_with("hk-"));
        assert_eq!(plain.len(), 3 + 43);
        assert!(plain[3..].bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(hash, hash_key(&plain));
        assert_eq!(key_prefix(&plain), plain[..8]);
    }

    #[test]
    fn generated_keys_do_not_repeat_and_use_the_whole_alphabet() {
        let mut seen = HashSet::new();
        let mut chars = HashSet::new();
        for _ in 0..2000 {
            let (plain, _) = generate_key().unwrap();
            chars.extend(plain[3..].chars());
            assert!(seen.insert(plain));
        }
        // 2000 × 43 draws over 62 symbols: every symbol shows up.
        assert_eq!(chars.len(), 62);
    }

    #[test]
    fn base62_edges() {
        assert_eq!(base62_256([0; 32]), "0".repeat(43));
        let max = base62_256([0xff; 32]);
        assert_eq!(max.len(), 43);
        // Converting back gives 2^256 - 1: the largest input fits in 43 digits.
        let back = max.bytes().fold(Vec::<u8>::new(), |acc, c| {
            let d = BASE62.iter().position(|&x| x == c).unwrap() as u32;
            mul_add(&acc, 62, d)
        });
        assert_eq!(back, vec![0xff; 32]);
    }

    fn mul_add(n: &[u8], m: u32, a: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(n.len() + 1);
        let mut carry = a;
        for &b in n.iter().rev() {
            let v = u32::from(b) * m + carry;
            out.push((v & 0xff) as u8);
            carry = v >> 8;
        }
        while carry > 0 {
            out.push((carry & 0xff) as u8);
            carry >>= 8;
        }
        out.reverse();
        out
    }

    #[test]
    fn hash_hex_round_trips_and_compares() {
        let h = hash_key("hk-test");
        let hex = h.to_string();
        assert_eq!(hex.len(), 64);
        assert_eq!(KeyHash::from_hex(&hex), Some(h));
        assert_ne!(h, hash_key("hk-tesu"));
        assert_eq!(KeyHash::from_hex("zz"), None);
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<KeyHash>(&json).unwrap(), h);
    }

    #[test]
    fn prefix_of_short_or_non_ascii_input_does_not_panic() {
        assert_eq!(key_prefix("hk-"), "hk-");
        assert_eq!(key_prefix("ééééééééé"), "éééééééé");
    }
}
