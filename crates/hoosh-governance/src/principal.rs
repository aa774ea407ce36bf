//! Who is calling: the stored records ([`KeyRecord`], [`Team`]) and the
//! [`Principal`] that authentication yields, with the key's model globs
//! compiled once so that the per-request check is a few comparisons.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};

use crate::budget::{BudgetSpec, PoolId};
use crate::key::KeyHash;
use crate::ratelimit::LimitKey;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Call the model endpoints.
    Inference,
    /// Manage keys, teams and budgets (implies [`Scope::ReadUsage`]).
    Admin,
    /// Read usage reports and exports.
    #[serde(alias = "read-usage")]
    ReadUsage,
}

fn default_scopes() -> Vec<Scope> {
    vec![Scope::Inference]
}

fn default_true() -> bool {
    true
}

/// Per-key or per-team rate and concurrency caps; `None` = uncapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Requests per minute.
    #[serde(default)]
    pub rpm: Option<u32>,
    /// Tokens (prompt + completion, estimated at admission) per minute.
    #[serde(default)]
    pub tpm: Option<u64>,
    /// Requests in flight at once.
    #[serde(default)]
    pub max_concurrency: Option<u32>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none() && self.max_concurrency.is_none()
    }
}

/// A virtual key as stored. Holds the digest and display prefix, never the plaintext.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// `key_` + 16 hex characters; stable, safe to log.
    pub id: String,
    pub name: String,
    pub hash: KeyHash,
    /// The first 8 characters of the plaintext, for listings.
    pub prefix: String,
    #[serde(default)]
    pub team: Option<String>,
    /// Model globs this key may call; empty = all models.
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<Scope>,
    /// Unix ms after which the key no longer authenticates.
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// `false` once revoked.
    #[serde(default = "default_true")]
    pub enabled: bool,
    pub created_at: i64,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub budget: Option<BudgetSpec>,
}

/// A team: a budget and limits shared by all of its keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Team {
    pub name: String,
    #[serde(default)]
    pub budget: Option<BudgetSpec>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// What to create a key from (the admin API's request body).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub name: String,
    #[serde(default)]
    pub team: Option<String>,
    #[serde(default)]
    pub models: Vec<String>,
    /// Empty means the default, `[inference]`.
    #[serde(default)]
    pub scopes: Vec<Scope>,
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub budget: Option<BudgetSpec>,
}

/// A partial update: absent fields stay; for the nullable ones, an explicit
/// JSON `null` clears the value (hence `Option<Option<_>>`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub team: Option<Option<String>>,
    #[serde(default)]
    pub models: Option<Vec<String>>,
    #[serde(default)]
    pub scopes: Option<Vec<Scope>>,
    #[serde(default, deserialize_with = "present")]
    pub expires_at: Option<Option<i64>>,
    #[serde(default)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub limits: Option<Limits>,
    #[serde(default, deserialize_with = "present")]
    pub budget: Option<Option<BudgetSpec>>,
}

/// A field that is present (even as `null`) becomes `Some(..)`; an absent one
/// stays `None` through `#[serde(default)]`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// An authenticated caller. Built once per key (on load or change), shared
/// as `Arc<Principal>`, so authentication allocates nothing.
#[derive(Debug, Clone)]
pub struct Principal {
    pub record: KeyRecord,
    models: Vec<glob::Pattern>,
    master: bool,
    /// Precomputed names for the rate limiter, budgets and ledger rows.
    pub(crate) shared_id: Arc<str>,
    pub(crate) shared_team: Option<Arc<str>>,
    pub(crate) limit_key: LimitKey,
    pub(crate) team_limit_key: Option<LimitKey>,
    pub(crate) key_pool: PoolId,
    pub(crate) team_pool: Option<PoolId>,
}

impl Principal {
    /// Compiles the record's model globs. A glob that does not compile (only
    /// possible for records written by something other than [`crate::KeyRing`],
    /// which validates) matches its literal text rather than everything.
    pub fn new(record: KeyRecord) -> Self {
        let models = record
            .models
            .iter()
            .map(|m| {
                glob::Pattern::new(m)
                    .unwrap_or_else(|_| glob::Pattern::new(&glob::Pattern::escape(m)).unwrap_or_default())
            })
            .collect();
        let shared_id = Arc::from(record.id.as_str());
        let shared_team = record.team.as_deref().map(Arc::from);
        let limit_key = LimitKey::key(&record.id);
        let team_limit_key = record.team.as_deref().map(LimitKey::team);
        let key_pool = PoolId::Key(record.id.clone());
        let team_pool = record.team.clone().map(PoolId::Team);
        Principal {
            record,
            models,
            master: false,
            shared_id,
            shared_team,
            limit_key,
            team_limit_key,
            key_pool,
            team_pool,
        }
    }

    /// The master key's principal: every scope, every model, no limits.
    pub fn master(now: i64) -> Self {
        let record = KeyRecord {
            id: "master".to_string(),
            name: "master key".to_string(),
            hash: KeyHash([0; 32]),
            prefix: String::new(),
            team: None,
            models: Vec::new(),
            scopes: vec![Scope::Inference, Scope::Admin, Scope::ReadUsage],
            expires_at: None,
            metadata: serde_json::Map::new(),
            enabled: true,
            created_at: now,
            limits: Limits::default(),
            budget: None,
        };
        Principal { master: true, ..Principal::new(record) }
    }

    pub fn id(&self) -> &str {
        &self.record.id
    }

    pub fn team(&self) -> Option<&str> {
        self.record.team.as_deref()
    }

    pub fn is_master(&self) -> bool {
        self.master
    }

    /// May this key call `model`? Keys without globs may call every model.
    pub fn allows_model(&self, model: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|p| p.matches(model))
    }

    /// Whether this key may be served `model` by `provider`: a glob matches
    /// the model or `provider/model`. Checked on what routing resolved, so
    /// no spelling (an alias, `provider/model`) reaches a model the key may
    /// not use.
    pub fn allows_served(&self, provider: &str, model: &str) -> bool {
        if self.models.is_empty() {
            return true;
        }
        let qualified = format!("{provider}/{model}");
        self.models.iter().any(|p| p.matches(model) || p.matches(&qualified))
    }

    /// [`Scope::Admin`] implies [`Scope::ReadUsage`]; nothing implies [`Scope::Inference`].
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.record.scopes.contains(&scope) || (scope == Scope::ReadUsage && self.record.scopes.contains(&Scope::Admin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::hash_key;

    pub(crate) fn record(id: &str) -> KeyRecord {
        KeyRecord {
            id: id.to_string(),
            name: "test".to_string(),
            hash: hash_key(id),
            prefix: "hk-xxxxx".to_string(),
            team: None,
            models: Vec::new(),
            scopes: default_scopes(),
            expires_at: None,
            metadata: serde_json::Map::new(),
            enabled: true,
            created_at: 0,
            limits: Limits::default(),
            budget: None,
        }
    }

    #[test]
    fn model_globs_and_scopes() {
        let mut r = record("key_1");
        r.models = vec!["gpt-4o*".into(), "claude-3-5-sonnet".into(), "[bad".into()];
        r.scopes = vec![Scope::Admin];
        let p = Principal::new(r);
        assert!(p.allows_model("gpt-4o-mini"));
        assert!(p.allows_model("claude-3-5-sonnet"));
        assert!(!p.allows_model("claude-3-opus"));
        assert!(p.allows_model("[bad"), "an invalid glob matches only its literal text");
        assert!(!p.allows_model("b"));
        assert!(p.has_scope(Scope::Admin) && p.has_scope(Scope::ReadUsage) && !p.has_scope(Scope::Inference));
        let open = Principal::new(record("key_2"));
        assert!(open.allows_model("anything"));
        let m = Principal::master(0);
        assert!(m.is_master() && m.has_scope(Scope::Inference) && m.has_scope(Scope::Admin));
    }

    #[test]
    fn scope_serde_accepts_both_spellings() {
        let s: Vec<Scope> = serde_json::from_str(r#"["inference","admin","read_usage","read-usage"]"#).unwrap();
        assert_eq!(s, vec![Scope::Inference, Scope::Admin, Scope::ReadUsage, Scope::ReadUsage]);
        assert_eq!(serde_json::to_string(&Scope::ReadUsage).unwrap(), "\"read_usage\"");
    }

    #[test]
    fn record_defaults_and_patch_nulls() {
        let json = format!(r#"{{"id":"key_1","name":"n","hash":"{}","prefix":"hk-","created_at":5}}"#, hash_key("x"));
        let r: KeyRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(r.scopes, vec![Scope::Inference]);
        assert!(r.enabled && r.models.is_empty() && r.budget.is_none());
        let back: KeyRecord = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);

        let p: KeyPatch = serde_json::from_str(r#"{"team": null, "name": "x"}"#).unwrap();
        assert_eq!(p.team, Some(None));
        assert_eq!(p.expires_at, None);
        assert_eq!(p.name.as_deref(), Some("x"));
        assert!(serde_json::from_str::<KeyPatch>(r#"{"nope": 1}"#).is_err());
    }
}
