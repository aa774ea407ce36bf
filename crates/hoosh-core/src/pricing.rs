//! The shipped price table (USD per million tokens), used by the `cost`
//! routing strategy and, later, by cost tracking. Data lives in
//! `pricing.toml` beside this file so that prices change without code.
//! A model that matches no row is *unpriced*, never silently free.

use serde::Deserialize;

const SHIPPED: &str = include_str!("pricing.toml");

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Model glob, matched against the model name the upstream knows.
    pub model: String,
    /// Provider name (as configured); the row applies to every provider
    /// when absent.
    #[serde(default)]
    pub provider: Option<String>,
    /// Input (prompt) tokens, USD per million.
    #[serde(default)]
    pub input: f64,
    /// Output (completion) tokens, USD per million.
    #[serde(default)]
    pub output: f64,
    /// Cached input reads, USD per million (the input price when absent).
    #[serde(default)]
    pub cached_input: Option<f64>,
    /// Prompt-cache writes, USD per million (the input price when absent).
    #[serde(default)]
    pub cache_write: Option<f64>,
    /// Reasoning tokens (a part of the output), USD per million (the output
    /// price when absent).
    #[serde(default)]
    pub reasoning: Option<f64>,
    /// Speech-to-text, USD per minute of audio.
    #[serde(default)]
    pub audio_minute: Option<f64>,
    /// Text-to-speech, USD per million characters.
    #[serde(default)]
    pub tts_million_chars: Option<f64>,
}

/// What a bill is computed from: token counts (a provider's reported
/// usage), audio minutes (speech-to-text) and characters (text-to-speech).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    /// All prompt tokens, cache reads and writes included.
    pub prompt: u64,
    pub cached_read: u64,
    pub cache_write: u64,
    /// All completion tokens, reasoning included.
    pub completion: u64,
    pub reasoning: u64,
    /// Speech-to-text input, milliseconds of audio.
    pub audio_ms: u64,
    /// Text-to-speech input, characters.
    pub tts_chars: u64,
}

impl Price {
    /// What `t` costs, in nano-USD (rounded up).
    pub fn cost_nanos(&self, t: Tokens) -> u64 {
        let read = t.cached_read.min(t.prompt);
        let write = t.cache_write.min(t.prompt - read);
        let fresh = t.prompt - read - write;
        let reasoning = t.reasoning.min(t.completion);
        let usd_per_million = fresh as f64 * self.input
            + read as f64 * self.cached_input.unwrap_or(self.input)
            + write as f64 * self.cache_write.unwrap_or(self.input)
            + (t.completion - reasoning) as f64 * self.output
            + reasoning as f64 * self.reasoning.unwrap_or(self.output);
        // USD per million tokens × tokens → nano-USD: × 1e-6 × 1e9.
        let tokens = (usd_per_million * 1e3).ceil() as u64;
        // Audio and characters in integers (rates rounded to the nano-dollar),
        // so a minute at $0.006 is exactly 6,000,000 nano-USD.
        let per_minute = (self.audio_minute.unwrap_or(0.0) * 1e9).round() as u64;
        let audio = (u128::from(t.audio_ms) * u128::from(per_minute)).div_ceil(60_000);
        let per_million_chars = (self.tts_million_chars.unwrap_or(0.0) * 1e9).round() as u64;
        let speech = (u128::from(t.tts_chars) * u128::from(per_million_chars)).div_ceil(1_000_000);
        let extra = u64::try_from(audio + speech).unwrap_or(u64::MAX);
        tokens.saturating_add(extra)
    }

    /// Whether using the model costs nothing.
    pub fn is_free(&self) -> bool {
        self.input == 0.0
            && self.output == 0.0
            && self.audio_minute.unwrap_or(0.0) == 0.0
            && self.tts_million_chars.unwrap_or(0.0) == 0.0
    }
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
        let rows = compile(file.models)?;
        Ok(Pricing { version: file.version, rows })
    }

    /// The shipped table with `overrides` (from the config) checked first.
    pub fn with_overrides(overrides: &[Price]) -> Result<Self, String> {
        let mut table = Self::shipped();
        if !overrides.is_empty() {
            let mut rows = compile(overrides.to_vec())?;
            rows.append(&mut table.rows);
            table.rows = rows;
            table.version = format!("{}+config", table.version);
        }
        Ok(table)
    }

    /// The first row whose glob matches `model` and whose provider (if it
    /// names one) is `provider` (rows go specific → general).
    pub fn lookup(&self, provider: &str, model: &str) -> Option<&Price> {
        self.rows
            .iter()
            .find(|(pat, p)| p.provider.as_deref().is_none_or(|name| name == provider) && pat.matches(model))
            .map(|(_, p)| p)
    }

    /// A single number to compare providers by: input + output price per
    /// million tokens. `None` when unpriced.
    pub fn blended(&self, provider: &str, model: &str) -> Option<f64> {
        self.lookup(provider, model).map(|p| p.input + p.output)
    }
}

fn compile(prices: Vec<Price>) -> Result<Vec<(glob::Pattern, Price)>, String> {
    prices
        .into_iter()
        .map(|p| {
            let pat = glob::Pattern::new(&p.model).map_err(|e| format!("price row `{}`: {e}", p.model))?;
            let prices = [Some(p.input), Some(p.output), p.cached_input, p.cache_write, p.reasoning, p.audio_minute];
            if prices.into_iter().flatten().chain(p.tts_million_chars).any(|v| !v.is_finite() || v < 0.0) {
                return Err(format!("price row `{}`: prices must be numbers >= 0", p.model));
            }
            Ok((pat, p))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_table_parses_and_orders_specific_first() {
        let p = Pricing::parse(SHIPPED).unwrap();
        assert!(!p.rows.is_empty());
        let mini = p.lookup("openai", "gpt-4o-mini").unwrap();
        let full = p.lookup("openai", "gpt-4o").unwrap();
        assert!(mini.input < full.input, "gpt-4o-mini must not be priced as gpt-4o");
        assert!(p.lookup("openai", "no-such-model-xyz").is_none());
    }

    #[test]
    fn cost_prices_each_kind_of_token() {
        let p = Price {
            model: "m".into(),
            input: 2.0,
            output: 8.0,
            cached_input: Some(0.5),
            cache_write: Some(2.5),
            reasoning: Some(10.0),
            ..Default::default()
        };
        // 1M prompt: 0.5M fresh ($1), 0.25M read ($0.125), 0.25M written ($0.625);
        // 1M completion: 0.5M plain ($4), 0.5M reasoning ($5).
        let t = Tokens {
            prompt: 1_000_000,
            cached_read: 250_000,
            cache_write: 250_000,
            completion: 1_000_000,
            reasoning: 500_000,
            ..Tokens::default()
        };
        assert_eq!(p.cost_nanos(t), 10_750_000_000);
        // Details never exceed their totals.
        let odd =
            Tokens { prompt: 10, cached_read: 50, cache_write: 50, completion: 1, reasoning: 9, ..Tokens::default() };
        // 10 cached reads at 0.5 + 1 reasoning token at 10 (per million).
        assert_eq!(p.cost_nanos(odd), 15_000);
        assert_eq!(
            Price { model: "m".into(), input: 1.0, output: 1.0, ..Default::default() }
                .cost_nanos(Tokens { prompt: 1, ..Default::default() }),
            1000
        );
    }

    #[test]
    fn audio_is_priced_per_minute_and_speech_per_character() {
        let p = Price {
            model: "whisper-1".into(),
            audio_minute: Some(0.006),
            tts_million_chars: Some(15.0),
            ..Default::default()
        };
        assert!(!p.is_free());
        // 90 s at $0.006/min = $0.009.
        assert_eq!(p.cost_nanos(Tokens { audio_ms: 90_000, ..Tokens::default() }), 9_000_000);
        // 1 ms still costs something (rounded up), never nothing.
        assert_eq!(p.cost_nanos(Tokens { audio_ms: 1, ..Tokens::default() }), 100);
        // 1000 characters at $15 per million = $0.015.
        assert_eq!(p.cost_nanos(Tokens { tts_chars: 1000, ..Tokens::default() }), 15_000_000);
    }

    #[test]
    fn overrides_win_and_can_target_one_provider() {
        let row = |provider: Option<&str>, input: f64| Price {
            model: "gpt-4o".into(),
            provider: provider.map(str::to_owned),
            input,
            output: 1.0,
            ..Default::default()
        };
        let t = Pricing::with_overrides(&[row(Some("azure-eu"), 9.0), row(None, 7.0)]).unwrap();
        assert_eq!(t.lookup("azure-eu", "gpt-4o").unwrap().input, 9.0);
        assert_eq!(t.lookup("openai", "gpt-4o").unwrap().input, 7.0);
        assert!(t.lookup("openai", "gpt-4o-mini").unwrap().input < 1.0, "shipped rows still apply");
        assert!(t.version.ends_with("+config"));
        assert!(Pricing::with_overrides(&[row(None, -1.0)]).is_err());
    }
}
