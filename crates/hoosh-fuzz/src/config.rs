//! `config_toml`: `hoosh.toml` text through [`Config::from_toml`] and
//! [`Config::validate`] — what a start, `hoosh config check` and a reload
//! run on whatever file an operator (or a template) wrote.
//!
//! Input: the file (not UTF-8: skipped, as reading the file refuses it).
//! Invariants: a refusal names the file; a config that parses, written back
//! out as TOML by the `toml` crate, parses to the same config, and
//! validates the same.

use hoosh_core::config::Config;

/// The file name errors must carry.
const ORIGIN: &str = "fuzz/hoosh.toml";

pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let config = match Config::from_toml(text, ORIGIN) {
        Ok(c) => c,
        Err(e) => {
            assert!(e.to_string().contains(ORIGIN), "a parse error that does not name the file: {e}");
            return;
        }
    };
    let verdict = config.validate().map(|_| ()).map_err(|e| e.to_string());
    if let Err(message) = &verdict {
        assert!(!message.is_empty());
    }
    // The same text as a plain TOML tree, written back out: the config must not change.
    let Ok(tree) = toml::from_str::<toml::Table>(text) else {
        panic!("text that parses as a config does not parse as TOML")
    };
    let Ok(rewritten) = toml::to_string(&tree) else { return };
    match Config::from_toml(&rewritten, ORIGIN) {
        Ok(again) => {
            assert_eq!(again, config, "the config changed when written back out as:\n{rewritten}");
            assert_eq!(again.validate().map(|_| ()).map_err(|e| e.to_string()), verdict);
        }
        Err(e) => panic!("a config does not parse once written back out ({e}):\n{rewritten}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_and_refusals() {
        config_toml(include_bytes!("../../../config/hoosh.example.toml"));
        config_toml(b"[server]\nport = 1\nprot = 2\n");
        config_toml(b"[circuit_breaker]\nfailure_rate = 2.5\n");
        config_toml(b"\xff");
    }
}
