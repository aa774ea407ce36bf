//! The shipped price table (USD per million tokens), used by the `cost`
//! routing strategy and, later, by cost tracking. Data lives in
//! `pricing.toml` beside this file so that prices change without code.
//! A model that matches no row is *unpriced*, never silently free.

use serde::Deserialize;

const SHIPPED: &str = include_str!("pricing.toml");

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Model glob, matched against the model name the upstream knows.
    pub model: String,
    /// Input (prompt) tokens, USD per million.
    pub input: f64,
    /// Output (completion) tokens, USD per million.
    pub output: f64,
    /// Cached input reads, USD per million (the input price when absent).
    #[serde(default)]
    pub cached_input: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    version: String,
    models: Vec<Price>,
}

#[derive(Debug, Clone)]
pub struct Pricing {
    pub version: String,
    rows: Vec<(glob::Pattern, Price)>,
}

impl Pricing {
    /// The table compiled into the binary.
    pub fn shipped() -> Self {
        // The shipped file is checked by a unit test; a parse failure here
        // would be a build defect, so fall back to an empty table rather than panic.
        Self::parse(SHIPPED).unwrap_or_else(|_| Pricing { version: "invalid".into(), rows: Vec::new() })
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let file: PriceFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut rows = Vec::with_capacity(file.models.len());
        for p in file.models {
            let pat = glob::Pattern::new(&p.model).map_err(|e| format!("price row `{}`: {e}", p.model))?;
            rows.push((pat, p));
        }
        Ok(Pricing { version: file.version, rows })
    }

    /// The first row whose glob matches `model` (rows go specific → general).
    pub fn lookup(&self, model: &str) -> Option<&Price> {
        self.rows.iter().find(|(pat, _)| pat.matches(model)).map(|(_, p)| p)
    }

    /// A single number to compare providers by: input + output price per
    /// million tokens. `None` when unpriced.
    pub fn blended(&self, model: &str) -> Option<f64> {
        self.lookup(model).map(|p| p.input + p.output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_table_parses_and_orders_specific_first() {
        let p = Pricing::parse(SHIPPED).unwrap();
        assert!(!p.rows.is_empty());
        let mini = p.lookup("gpt-4o-mini").unwrap();
        let full = p.lookup("gpt-4o").unwrap();
        assert!(mini.input < full.input, "gpt-4o-mini must not be priced as gpt-4o");
        assert!(p.lookup("no-such-model-xyz").is_none());
    }
}
