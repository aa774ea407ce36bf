//! Credentials held in memory that never print.
//!
//! - [`Secret`]: one credential (a provider API key, the admin key).
//!   `Debug` and `Display` show `Secret([redacted])`, there is no
//!   `Serialize`, and reading it takes an explicit [`Secret::expose`], so a
//!   `{:?}` of any struct that holds one, a log line or a JSON dump cannot
//!   leak it by accident.
//! - [`SecretHeaders`]: extra headers from the config (a provider's
//!   `headers`, `telemetry.otlp_headers`), whose values are often
//!   credentials (`Authorization` for a proxy, a collector's token).
//!   `Debug` shows the names only.
//!
//! Written by hand rather than taken from `secrecy`: the whole type is a dozen
//! lines and zeroizing on drop (that crate's other half) buys little in a
//! process whose config snapshots are cloned freely.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Deref, DerefMut};

use serde::Deserialize;

/// A string that only [`Secret::expose`] reveals. No `PartialEq`: a
/// credential is checked by digest in constant time, never compared raw.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The plaintext, for the one place that sends or hashes it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Header name → value, read from the config like a plain map; `Debug`
/// prints `{"name": [redacted]}`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretHeaders(BTreeMap<String, String>);

impl Deref for SecretHeaders {
    type Target = BTreeMap<String, String>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for SecretHeaders {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl<'a> IntoIterator for &'a SecretHeaders {
    type Item = (&'a String, &'a String);
    type IntoIter = std::collections::btree_map::Iter<'a, String, String>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl FromIterator<(String, String)> for SecretHeaders {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        SecretHeaders(iter.into_iter().collect())
    }
}

impl fmt::Debug for SecretHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Redacted;
        impl fmt::Debug for Redacted {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[redacted]")
            }
        }
        f.debug_map().entries(self.0.keys().map(|k| (k, Redacted))).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_value_in_any_format() {
        let s = Secret::new("sk-live-abcdef123456");
        for shown in
            [format!("{s:?}"), format!("{s:#?}"), format!("{s}"), format!("{s:>40}"), format!("{:?}", Some(&s))]
        {
            assert!(!shown.contains("abcdef"), "{shown}");
            assert!(shown.contains("Secret([redacted])"), "{shown}");
        }
        assert_eq!(s.expose(), "sk-live-abcdef123456");
    }

    #[test]
    fn header_values_never_print_but_read_like_a_map() {
        let h: SecretHeaders = toml::from_str::<BTreeMap<String, SecretHeaders>>(
            "[h]\nauthorization = \"Bearer collector-token-9f2\"\nx-team = \"t\"",
        )
        .unwrap()
        .remove("h")
        .unwrap();
        assert_eq!(h.get("authorization").map(String::as_str), Some("Bearer collector-token-9f2"));
        assert_eq!((&h).into_iter().count(), 2);
        let shown = format!("{h:?}");
        assert_eq!(shown, r#"{"authorization": [redacted], "x-team": [redacted]}"#);
    }
}
