//! Caps on requests in flight (per key, team or model), as counters with an
//! RAII permit: whatever way a request ends — response sent, stream finished,
//! client gone, handler panicked — dropping the permit gives the slot back.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::ratelimit::LimitKey;

/// Entries beyond which idle (0) counters are swept.
const IDLE_SWEEP_AT: usize = 4096;

/// A concurrency cap was reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} already has {max} requests in flight")]
pub struct ConcurrencyLimited {
    pub key: LimitKey,
    pub max: u32,
}

/// In-flight counters; a cheap handle (clones share the counters).
#[derive(Clone, Default)]
pub struct Concurrency {
    counts: Arc<Mutex<HashMap<LimitKey, u32>>>,
}

impl fmt::Debug for Concurrency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Concurrency").field("keys", &self.counts.lock().len()).finish()
    }
}

impl Concurrency {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one slot under every `(key, max)` or none.
    pub fn try_acquire(&self, items: &[(LimitKey, u32)]) -> Result<ConcurrencyPermit, ConcurrencyLimited> {
        self.acquire_owned(items.to_vec())
    }

    /// [`Concurrency::try_acquire`] keeping `items` as the permit's own list (one allocation less).
    pub(crate) fn acquire_owned(&self, items: Vec<(LimitKey, u32)>) -> Result<ConcurrencyPermit, ConcurrencyLimited> {
        if items.is_empty() {
            return Ok(ConcurrencyPermit { counts: Arc::clone(&self.counts), keys: items });
        }
        let mut counts = self.counts.lock();
        for (i, (key, max)) in items.iter().enumerate() {
            let current = counts.get(key).copied().unwrap_or(0);
            let earlier = items[..i].iter().filter(|(k, _)| k == key).count() as u32;
            if current.saturating_add(earlier) >= *max {
                return Err(ConcurrencyLimited { key: key.clone(), max: *max });
            }
        }
        for (key, _) in &items {
            match counts.get_mut(key) {
                Some(n) => *n += 1,
                None => {
                    counts.insert(key.clone(), 1);
                }
            }
        }
        drop(counts);
        Ok(ConcurrencyPermit { counts: Arc::clone(&self.counts), keys: items })
    }

    /// Requests currently in flight under `key`.
    pub fn in_flight(&self, key: &LimitKey) -> u32 {
        self.counts.lock().get(key).copied().unwrap_or(0)
    }
}

/// Slots held by one request; released on drop.
#[must_use = "the slots are released as soon as the permit is dropped"]
pub struct ConcurrencyPermit {
    counts: Arc<Mutex<HashMap<LimitKey, u32>>>,
    keys: Vec<(LimitKey, u32)>,
}

impl ConcurrencyPermit {
    /// The caps this permit holds a slot of, with their maxima.
    pub fn slots(&self) -> &[(LimitKey, u32)] {
        &self.keys
    }
}

impl fmt::Debug for ConcurrencyPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyPermit").field("keys", &self.keys).finish()
    }
}

impl Drop for ConcurrencyPermit {
    fn drop(&mut self) {
        if self.keys.is_empty() {
            return;
        }
        let mut counts = self.counts.lock();
        for (key, _) in &self.keys {
            if let Some(n) = counts.get_mut(key) {
                *n = n.saturating_sub(1);
            }
        }
        // Idle keys keep a 0 entry (re-inserting per request costs more than
        // keeping it) until there are many, e.g. from many model names.
        if counts.len() > IDLE_SWEEP_AT {
            counts.retain(|_, n| *n > 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_are_atomic_and_released_on_drop() {
        let c = Concurrency::new();
        let (key, team) = (LimitKey::key("a"), LimitKey::team("t"));
        let first = c.try_acquire(&[(key.clone(), 2), (team.clone(), 1)]).unwrap();
        let err = c.try_acquire(&[(key.clone(), 2), (team.clone(), 1)]).unwrap_err();
        assert_eq!(err, ConcurrencyLimited { key: team.clone(), max: 1 });
        assert_eq!(c.in_flight(&key), 1, "the refused request took nothing");
        let second = c.try_acquire(&[(key.clone(), 2)]).unwrap();
        assert!(c.try_acquire(&[(key.clone(), 2)]).is_err());
        drop(first);
        assert_eq!((c.in_flight(&key), c.in_flight(&team)), (1, 0));
        let third = c.try_acquire(&[(key.clone(), 2), (team.clone(), 1)]).unwrap();
        drop(second);
        drop(third);
        assert_eq!(c.in_flight(&key), 0);
        assert!(c.counts.lock().values().all(|n| *n == 0), "idle keys hold nothing");
    }

    #[test]
    fn idle_counters_are_swept_when_there_are_many() {
        let c = Concurrency::new();
        for i in 0..=IDLE_SWEEP_AT + 1 {
            drop(c.try_acquire(&[(LimitKey::model(&format!("m{i}")), 1)]).unwrap());
        }
        assert!(c.counts.lock().len() <= IDLE_SWEEP_AT);
    }

    #[test]
    fn a_panicking_holder_releases_its_slot() {
        let c = Concurrency::new();
        let k = LimitKey::key("a");
        let permit = c.try_acquire(&[(k.clone(), 1)]).unwrap();
        let joined = std::thread::spawn(move || {
            let _p = permit;
            panic!("handler panicked");
        })
        .join();
        assert!(joined.is_err());
        assert!(c.try_acquire(&[(k, 1)]).is_ok());
    }

    #[test]
    fn duplicates_and_empty_lists() {
        let c = Concurrency::new();
        let k = LimitKey::key("a");
        assert!(c.try_acquire(&[(k.clone(), 1), (k.clone(), 1)]).is_err());
        let both = c.try_acquire(&[(k.clone(), 2), (k.clone(), 2)]).unwrap();
        assert_eq!(c.in_flight(&k), 2);
        drop(both);
        let none = c.try_acquire(&[]).unwrap();
        drop(none);
        assert_eq!(c.in_flight(&k), 0);
    }
}
