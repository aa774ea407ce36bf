//! Model name → ordered list of candidates.
//!
//! A requested model resolves, in this order, as:
//! 1. an alias from `model_aliases` (its targets, in the declared order);
//! 2. `provider/model` when `provider` is a configured provider name and
//!    its model globs admit `model` (a provider is never asked for a model
//!    its config does not route to it);
//! 3. every enabled provider whose model globs match the name.
//!
//! The strategy then orders the candidates, and finally those that are
//! unhealthy or whose circuit is open move to the back (they stay in the
//! list so that "everything is down" still tries the best one).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::time::Duration;

use crate::placement::Placement;
use crate::pricing::Pricing;
use crate::provider::Provider;
use crate::stats::ProviderStats;
use crate::strategy::{Strategy, weighted_shuffle};

/// Per-provider timeouts the executor enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Until the first chunk of a stream.
    pub first_byte: Duration,
    /// Between two chunks of a stream.
    pub idle: Duration,
    /// A whole non-streaming call.
    pub total: Duration,
    /// A whole stream, first chunk to last.
    pub stream: Duration,
}

/// A provider as routing sees it.
pub struct ProviderEntry {
    pub provider: Arc<dyn Provider>,
    pub patterns: Vec<glob::Pattern>,
    pub priority: i32,
    pub weight: u32,
    /// In-process, nearby or remote: decides ties, price and whether a
    /// reload rebuilds the entry from the config.
    pub placement: Placement,
    pub timeouts: Timeouts,
    pub stats: Arc<ProviderStats>,
}

impl ProviderEntry {
    pub fn name(&self) -> &str {
        self.provider.name()
    }

    pub fn serves(&self, model: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(model))
    }

    /// Patterns without wildcards: model ids this provider certainly serves.
    pub fn literal_models(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(glob::Pattern::as_str).filter(|p| !p.contains(['*', '?', '[']))
    }
}

impl std::fmt::Debug for ProviderEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderEntry")
            .field("name", &self.name())
            .field("priority", &self.priority)
            .field("placement", &self.placement)
            .finish_non_exhaustive()
    }
}

/// One way to serve a request: a provider and the model name it knows.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub entry: Arc<ProviderEntry>,
    pub model: String,
    /// Effective priority (alias position for alias targets).
    pub priority: i32,
}

/// What the request needs from a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Chat,
    Embeddings,
    Transcription,
    Speech,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("The model `{0}` does not exist or no configured provider serves it")]
    ModelNotFound(String),
}

pub struct Router {
    entries: Vec<Arc<ProviderEntry>>,
    aliases: HashMap<String, Vec<(usize, String)>>,
    strategy: Strategy,
    pricing: Pricing,
    latency_stale: Duration,
    round_robin: Mutex<HashMap<String, usize>>,
}

impl Router {
    /// `aliases` maps a public name to `(provider name, model)` targets.
    pub fn new(
        entries: Vec<Arc<ProviderEntry>>,
        aliases: &std::collections::BTreeMap<String, Vec<String>>,
        strategy: Strategy,
        pricing: Pricing,
        latency_stale: Duration,
    ) -> Self {
        let index: HashMap<&str, usize> = entries.iter().enumerate().map(|(i, e)| (e.name(), i)).collect();
        let aliases = aliases
            .iter()
            .map(|(name, targets)| {
                let resolved = targets
                    .iter()
                    .filter_map(|t| {
                        // `Config::validate` proved each target names a
                        // configured provider; one that is not routed now
                        // (`enabled = false`) is left out, and said so.
                        let found = t.split_once('/').and_then(|(p, m)| Some((*index.get(p)?, m.to_owned())));
                        if found.is_none() {
                            tracing::warn!(alias = %name, target = %t, "alias target's provider is not enabled; skipped");
                        }
                        found
                    })
                    .collect();
                (name.clone(), resolved)
            })
            .collect();
        Router { entries, aliases, strategy, pricing, latency_stale, round_robin: Mutex::new(HashMap::new()) }
    }

    pub fn entries(&self) -> &[Arc<ProviderEntry>] {
        &self.entries
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    pub fn pricing(&self) -> &Pricing {
        &self.pricing
    }

    /// Alias names with their `(provider, model)` targets.
    pub fn aliases(&self) -> impl Iterator<Item = (&str, Vec<(&str, &str)>)> {
        self.aliases.iter().map(|(name, targets)| {
            (name.as_str(), targets.iter().map(|(i, m)| (self.entries[*i].name(), m.as_str())).collect())
        })
    }

    fn can(entry: &ProviderEntry, need: Need) -> bool {
        let caps = entry.provider.capabilities();
        match need {
            Need::Chat => caps.chat,
            Need::Embeddings => caps.embeddings,
            Need::Transcription => caps.transcription,
            Need::Speech => caps.speech,
        }
    }

    /// The ordered candidates for `model`, or `ModelNotFound`.
    pub fn candidates(&self, model: &str, need: Need) -> Result<Vec<Candidate>, RouteError> {
        let mut out: Vec<Candidate> = Vec::new();
        if let Some(targets) = self.aliases.get(model) {
            for (pos, (i, m)) in targets.iter().enumerate() {
                let e = &self.entries[*i];
                if Self::can(e, need) {
                    out.push(Candidate { entry: e.clone(), model: m.clone(), priority: pos as i32 });
                }
            }
        } else if let Some((prefix, rest)) = model.split_once('/')
            && let Some(e) = self.entries.iter().find(|e| e.name() == prefix)
        {
            // The caller named a provider: that provider or nothing, never
            // another provider whose globs happen to match the whole string.
            if Self::can(e, need) && !rest.is_empty() && e.serves(rest) {
                out.push(Candidate { entry: e.clone(), model: rest.to_owned(), priority: e.priority });
            } else {
                return Err(RouteError::ModelNotFound(model.to_owned()));
            }
        }
        if out.is_empty() {
            for e in &self.entries {
                if Self::can(e, need) && e.serves(model) {
                    out.push(Candidate { entry: e.clone(), model: model.to_owned(), priority: e.priority });
                }
            }
        }
        if out.is_empty() {
            return Err(RouteError::ModelNotFound(model.to_owned()));
        }
        // Base order: priority, then in-process and nearby before remote;
        // stable, so declaration order breaks ties.
        out.sort_by_key(|c| (c.priority, !c.entry.placement.wins_ties()));
        self.apply_strategy(model, &mut out);
        // Available first; stable partition keeps the strategy's order within each half.
        out.sort_by_key(|c| !c.entry.stats.available());
        Ok(out)
    }

    fn apply_strategy(&self, group: &str, out: &mut Vec<Candidate>) {
        if out.len() < 2 {
            return;
        }
        match self.strategy {
            Strategy::Priority => {}
            Strategy::RoundRobin => {
                let mut counters = self.round_robin.lock().unwrap_or_else(|p| p.into_inner());
                let n = counters.entry(group.to_owned()).or_insert(0);
                let k = *n % out.len();
                *n = n.wrapping_add(1);
                out.rotate_left(k);
            }
            Strategy::Weighted => weighted_shuffle(out, |c| c.entry.weight, fastrand::f64),
            Strategy::LowestLatency => {
                // Unmeasured or stale sorts as zero: explored before the measured ones.
                out.sort_by_key(|c| c.entry.stats.fresh_ttfb(self.latency_stale).unwrap_or(Duration::ZERO));
            }
            Strategy::LeastBusy => out.sort_by_key(|c| c.entry.stats.in_flight()),
            Strategy::Cost => {
                let price = |c: &Candidate| {
                    if c.entry.placement.is_free() { Some(0.0) } else { self.pricing.blended(c.entry.name(), &c.model) }
                };
                out.sort_by(|a, b| match (price(a), price(b)) {
                    (Some(x), Some(y)) => x.total_cmp(&y),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                });
            }
        }
    }
}
