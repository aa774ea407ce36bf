//! The key ring: authentication (presented key → [`Principal`]) and key
//! administration (create, update, revoke, delete).
//!
//! Lookups go through an in-memory index by digest behind a read-write lock:
//! authentication hashes the presented string once and does one hash-map
//! probe, so its timing depends neither on how many keys exist nor on how
//! much of a guess matched a real key (digests of near-misses are unrelated,
//! and digest comparison is constant-time). Mutations are serialized,
//! written to the [`Store`] first and only then made visible, so what
//! authenticates is always what would be loaded after a restart.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::budget::{BudgetSpec, Budgets, PoolId};
use crate::key::{KeyGenError, KeyHash, generate_key, hash_key, key_prefix, random_hex};
use crate::principal::{KeyPatch, KeyRecord, NewKey, Principal, Scope};
use crate::store::{Store, StoreError, install_budget};

/// Why a request could not be authenticated. Deliberately coarse: the
/// caller learns nothing about keys it does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no API key was presented")]
    Missing,
    #[error("the API key is not valid")]
    Invalid,
    #[error("the API key has been revoked")]
    Disabled,
    #[error("the API key has expired")]
    Expired,
}

/// Why an administrative change (keys, teams, budgets) was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    KeyGen(#[from] KeyGenError),
    #[error("no key with id `{0}`")]
    KeyNotFound(String),
    #[error("model pattern `{pattern}` is not a valid glob: {message}")]
    InvalidGlob { pattern: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

pub(crate) fn validate_globs(models: &[String]) -> Result<(), AdminError> {
    for m in models {
        glob::Pattern::new(m)
            .map_err(|e| AdminError::InvalidGlob { pattern: m.clone(), message: e.msg.to_string() })?;
    }
    Ok(())
}

pub(crate) fn validate_budget(spec: Option<&BudgetSpec>) -> Result<(), AdminError> {
    if let Some(usd) = spec.and_then(|s| s.usd)
        && !(usd.is_finite() && usd >= 0.0)
    {
        return Err(AdminError::Invalid(format!("budget usd must be a non-negative number, got {usd}")));
    }
    Ok(())
}

fn validate_team(team: Option<&str>) -> Result<(), AdminError> {
    match team {
        Some(t) if t.trim().is_empty() => Err(AdminError::Invalid("team name must not be empty".into())),
        _ => Ok(()),
    }
}

#[derive(Default)]
struct Index {
    by_hash: HashMap<KeyHash, Arc<Principal>>,
    by_id: HashMap<String, KeyHash>,
}

impl Index {
    fn insert(&mut self, principal: Principal) {
        if let Some(old) = self.by_id.insert(principal.record.id.clone(), principal.record.hash) {
            self.by_hash.remove(&old);
        }
        self.by_hash.insert(principal.record.hash, Arc::new(principal));
    }

    fn get(&self, id: &str) -> Option<&Arc<Principal>> {
        self.by_id.get(id).and_then(|h| self.by_hash.get(h))
    }
}

/// All virtual keys, plus the optional master key.
pub struct KeyRing {
    store: Arc<dyn Store>,
    budgets: Arc<Budgets>,
    index: RwLock<Index>,
    master: RwLock<Option<(KeyHash, Arc<Principal>)>>,
    /// Serializes mutations (store write + index update) without blocking lookups during I/O.
    write: Mutex<()>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing").field("keys", &self.index.read().by_id.len()).finish()
    }
}

impl KeyRing {
    /// An empty ring; key budgets are kept in `budgets` as keys change.
    pub fn new(store: Arc<dyn Store>, budgets: Arc<Budgets>) -> Self {
        KeyRing {
            store,
            budgets,
            index: RwLock::new(Index::default()),
            master: RwLock::new(None),
            write: Mutex::new(()),
        }
    }

    /// Loads every stored key into the index and registers key budgets
    /// (their usage is rebuilt by the caller, which knows the ledger).
    pub fn load(&self) -> Result<usize, StoreError> {
        // Held across the read: a create or revoke between reading the
        // store and replacing the index would otherwise be undone.
        let _w = self.write.lock();
        let records = self.store.load_keys()?;
        let mut index = Index::default();
        for record in records {
            self.budgets.set(PoolId::Key(record.id.clone()), record.budget);
            index.insert(Principal::new(record));
        }
        let n = index.by_id.len();
        *self.index.write() = index;
        Ok(n)
    }

    /// A key that authenticates as a principal with every scope and no limits
    /// (the operator's key from config). Compared by digest like any other.
    pub fn set_master(&self, plaintext: &str) {
        let now = self.budgets.clock().now_ms();
        *self.master.write() = Some((hash_key(plaintext), Arc::new(Principal::master(now))));
    }

    pub fn clear_master(&self) {
        *self.master.write() = None;
    }

    /// The principal for a presented key (the bearer token, already extracted).
    pub fn authenticate(&self, presented: Option<&str>, now: i64) -> Result<Arc<Principal>, AuthError> {
        let presented = presented.filter(|p| !p.is_empty()).ok_or(AuthError::Missing)?;
        let digest = hash_key(presented);
        if let Some((master, principal)) = &*self.master.read()
            && *master == digest
        {
            return Ok(Arc::clone(principal));
        }
        let principal = self.index.read().by_hash.get(&digest).cloned().ok_or(AuthError::Invalid)?;
        if !principal.record.enabled {
            return Err(AuthError::Disabled);
        }
        if principal.record.expires_at.is_some_and(|at| now >= at) {
            return Err(AuthError::Expired);
        }
        Ok(principal)
    }

    /// Creates a key. The plaintext is returned here and nowhere else, ever.
    pub fn create(&self, spec: NewKey, now: i64) -> Result<(KeyRecord, String), AdminError> {
        validate_globs(&spec.models)?;
        validate_budget(spec.budget.as_ref())?;
        validate_team(spec.team.as_deref())?;
        let (plaintext, hash) = generate_key()?;
        let record = KeyRecord {
            id: format!("key_{}", random_hex(8)?),
            name: spec.name,
            hash,
            prefix: key_prefix(&plaintext),
            team: spec.team,
            models: spec.models,
            scopes: if spec.scopes.is_empty() { vec![Scope::Inference] } else { spec.scopes },
            expires_at: spec.expires_at,
            metadata: spec.metadata,
            enabled: true,
            created_at: now,
            limits: spec.limits,
            budget: spec.budget,
        };
        let _w = self.write.lock();
        self.store.put_key(&record)?;
        self.index.write().insert(Principal::new(record.clone()));
        // A new key has no usage yet: no rebuild needed.
        self.budgets.set(PoolId::Key(record.id.clone()), record.budget);
        Ok((record, plaintext))
    }

    /// Creates or replaces a key whose digest is already known (keys declared
    /// in the config). Its budget keeps the usage so far, rebuilt from the
    /// ledger when the pool is new or its period changed.
    pub fn put(&self, record: KeyRecord) -> Result<(), AdminError> {
        validate_globs(&record.models)?;
        validate_budget(record.budget.as_ref())?;
        validate_team(record.team.as_deref())?;
        let _w = self.write.lock();
        self.store.put_key(&record)?;
        let (pool, budget) = (PoolId::Key(record.id.clone()), record.budget);
        self.index.write().insert(Principal::new(record));
        let now = self.budgets.clock().now_ms();
        install_budget(&self.budgets, self.store.as_ref(), pool, budget, now)?;
        Ok(())
    }

    /// Applies a partial update and returns the new record.
    pub fn update(&self, id: &str, patch: KeyPatch) -> Result<KeyRecord, AdminError> {
        let _w = self.write.lock();
        let mut record = self.get(id).ok_or_else(|| AdminError::KeyNotFound(id.to_string()))?;
        let budget_changed = patch.budget.is_some();
        let KeyPatch { name, team, models, scopes, expires_at, metadata, enabled, limits, budget } = patch;
        if let Some(v) = name {
            record.name = v;
        }
        if let Some(v) = team {
            validate_team(v.as_deref())?;
            record.team = v;
        }
        if let Some(v) = models {
            validate_globs(&v)?;
            record.models = v;
        }
        if let Some(v) = scopes {
            record.scopes = if v.is_empty() { vec![Scope::Inference] } else { v };
        }
        if let Some(v) = expires_at {
            record.expires_at = v;
        }
        if let Some(v) = metadata {
            record.metadata = v;
        }
        if let Some(v) = enabled {
            record.enabled = v;
        }
        if let Some(v) = limits {
            record.limits = v;
        }
        if let Some(v) = budget {
            validate_budget(v.as_ref())?;
            record.budget = v;
        }
        self.store.put_key(&record)?;
        self.index.write().insert(Principal::new(record.clone()));
        if budget_changed {
            let now = self.budgets.clock().now_ms();
            install_budget(&self.budgets, self.store.as_ref(), PoolId::Key(record.id.clone()), record.budget, now)?;
        }
        Ok(record)
    }

    /// Disables a key for good (it stays listed, and its usage stays attributed).
    pub fn revoke(&self, id: &str) -> Result<KeyRecord, AdminError> {
        self.update(id, KeyPatch { enabled: Some(false), ..KeyPatch::default() })
    }

    /// Removes a key and its budget. `false` if there was none.
    pub fn delete(&self, id: &str) -> Result<bool, AdminError> {
        let _w = self.write.lock();
        let existed = self.store.delete_key(id)?;
        let mut index = self.index.write();
        if let Some(hash) = index.by_id.remove(id) {
            index.by_hash.remove(&hash);
        }
        drop(index);
        self.budgets.remove(&PoolId::Key(id.to_string()));
        Ok(existed)
    }

    /// Every key, oldest first.
    pub fn list(&self) -> Vec<KeyRecord> {
        let mut out: Vec<KeyRecord> = self.index.read().by_hash.values().map(|p| p.record.clone()).collect();
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        out
    }

    pub fn get(&self, id: &str) -> Option<KeyRecord> {
        self.index.read().get(id).map(|p| p.record.clone())
    }

    /// The shared principal for a key id (for tests and admin tooling).
    pub fn principal(&self, id: &str) -> Option<Arc<Principal>> {
        self.index.read().get(id).cloned()
    }

    pub fn len(&self) -> usize {
        self.index.read().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Period;
    use crate::clock::ManualClock;
    use crate::memory::MemoryStore;

    const NOW: i64 = 1_717_200_000_000;

    fn ring() -> (KeyRing, Arc<MemoryStore>, Arc<Budgets>) {
        let store = Arc::new(MemoryStore::new());
        let budgets = Arc::new(Budgets::with_clock(ManualClock::new(NOW)));
        (KeyRing::new(store.clone(), budgets.clone()), store, budgets)
    }

    #[test]
    fn created_keys_authenticate_and_are_stored_only_as_digests() {
        let (ring, store, _) = ring();
        let (record, plain) = ring.create(NewKey { name: "ci".into(), ..NewKey::default() }, NOW).unwrap();
        assert!(record.id.starts_with("key_") && record.id.len() == 20);
        assert!(record.id[4..].bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(record.prefix, plain[..8]);
        assert_eq!(record.scopes, vec![Scope::Inference]);
        let p = ring.authenticate(Some(&plain), NOW).unwrap();
        assert_eq!(p.id(), record.id);
        let stored = serde_json::to_string(&store.load_keys().unwrap()).unwrap();
        assert!(!stored.contains(&plain), "the plaintext must never be persisted");
        assert!(!stored.contains(&plain[3..]));
    }

    #[test]
    fn missing_invalid_revoked_and_expired_keys_are_told_apart() {
        let (ring, _, _) = ring();
        let (rec, plain) =
            ring.create(NewKey { name: "x".into(), expires_at: Some(NOW + 1000), ..NewKey::default() }, NOW).unwrap();
        assert_eq!(ring.authenticate(None, NOW).unwrap_err(), AuthError::Missing);
        assert_eq!(ring.authenticate(Some(""), NOW).unwrap_err(), AuthError::Missing);
        assert_eq!(ring.authenticate(Some("hk-nope"), NOW).unwrap_err(), AuthError::Invalid);
        // A near miss (one character off) is just invalid.
        let mut near = plain.clone();
        near.pop();
        near.push(if plain.ends_with('a') { 'b' } else { 'a' });
        assert_eq!(ring.authenticate(Some(&near), NOW).unwrap_err(), AuthError::Invalid);
        assert!(ring.authenticate(Some(&plain), NOW + 999).is_ok());
        assert_eq!(ring.authenticate(Some(&plain), NOW + 1000).unwrap_err(), AuthError::Expired);
        ring.revoke(&rec.id).unwrap();
        assert_eq!(ring.authenticate(Some(&plain), NOW).unwrap_err(), AuthError::Disabled);
        assert!(!ring.get(&rec.id).unwrap().enabled);
        assert!(ring.delete(&rec.id).unwrap());
        assert_eq!(ring.authenticate(Some(&plain), NOW).unwrap_err(), AuthError::Invalid);
        assert!(!ring.delete(&rec.id).unwrap());
    }

    #[test]
    fn master_key_has_every_scope_and_no_limits() {
        let (ring, _, _) = ring();
        assert_eq!(ring.authenticate(Some("sk-master"), NOW).unwrap_err(), AuthError::Invalid);
        ring.set_master("sk-master");
        let m = ring.authenticate(Some("sk-master"), NOW).unwrap();
        assert!(m.is_master() && m.has_scope(Scope::Admin) && m.has_scope(Scope::Inference));
        assert!(m.record.limits.is_empty() && m.allows_model("anything"));
        ring.clear_master();
        assert!(ring.authenticate(Some("sk-master"), NOW).is_err());
    }

    #[test]
    fn updates_persist_validate_and_keep_budgets_in_step() {
        let (ring, store, budgets) = ring();
        let spec = BudgetSpec { tokens: Some(100), usd: None, period: Period::Daily };
        let (rec, plain) = ring
            .create(
                NewKey { name: "a".into(), models: vec!["gpt-*".into()], budget: Some(spec), ..NewKey::default() },
                NOW,
            )
            .unwrap();
        let pool = PoolId::Key(rec.id.clone());
        assert_eq!(budgets.snapshot(&pool, NOW).unwrap().spec, spec);

        let err = ring.update(&rec.id, KeyPatch { models: Some(vec!["[".into()]), ..KeyPatch::default() });
        assert!(matches!(err, Err(AdminError::InvalidGlob { .. })));
        assert!(matches!(ring.update("key_none", KeyPatch::default()), Err(AdminError::KeyNotFound(_))));

        let patch: KeyPatch = serde_json::from_str(r#"{"name": "b", "team": "research", "budget": null}"#).unwrap();
        let updated = ring.update(&rec.id, patch).unwrap();
        assert_eq!((updated.name.as_str(), updated.team.as_deref()), ("b", Some("research")));
        assert!(budgets.snapshot(&pool, NOW).is_none(), "budget: null removes the pool");
        assert_eq!(store.load_keys().unwrap()[0], updated);
        let p = ring.authenticate(Some(&plain), NOW).unwrap();
        assert_eq!(p.team(), Some("research"));
        assert!(p.allows_model("gpt-4o") && !p.allows_model("claude"));

        // A reloaded ring sees the same keys.
        let again = KeyRing::new(store.clone(), Arc::new(Budgets::new()));
        assert_eq!(again.load().unwrap(), 1);
        assert_eq!(again.list(), ring.list());
        assert!(again.authenticate(Some(&plain), NOW).is_ok());

        let bad =
            NewKey { name: "x".into(), budget: Some(BudgetSpec { usd: Some(-1.0), ..spec }), ..NewKey::default() };
        assert!(matches!(ring.create(bad, NOW), Err(AdminError::Invalid(_))));
    }
}
