//! [`Store`] in memory: for tests and for running without a data directory
//! (`--data-dir none`), where governance works but forgets on restart.

use std::collections::{BTreeMap, HashSet};

use parking_lot::Mutex;

use crate::budget::{BudgetSpec, PoolId};
use crate::ledger::UsageRecord;
use crate::principal::{KeyRecord, Team};
use crate::responses::{MEMORY_RESPONSES, StoredResponse};
use crate::store::{GroupBy, Store, StoreError, UsageAggregate, charges, check_row_ids};

#[derive(Default)]
struct Inner {
    keys: BTreeMap<String, KeyRecord>,
    teams: BTreeMap<String, Team>,
    budgets: BTreeMap<PoolId, BudgetSpec>,
    ledger: Vec<UsageRecord>,
    /// Row ids held: a row is stored once however often it is appended.
    row_ids: HashSet<String>,
    /// Stored Responses answers, at most [`MEMORY_RESPONSES`], oldest evicted.
    responses: BTreeMap<String, StoredResponse>,
}

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").field("rows", &self.inner.lock().ledger.len()).finish()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Ledger rows held; for tests.
    pub fn usage_len(&self) -> usize {
        self.inner.lock().ledger.len()
    }
}

impl Store for MemoryStore {
    fn put_response(&self, r: &StoredResponse) -> Result<(), StoreError> {
        let mut inner = self.inner.lock();
        inner.responses.insert(r.id.clone(), r.clone());
        while inner.responses.len() > MEMORY_RESPONSES {
            let oldest = inner.responses.values().min_by_key(|r| r.created_ms).map(|r| r.id.clone());
            match oldest {
                Some(id) => inner.responses.remove(&id),
                None => break,
            };
        }
        Ok(())
    }

    fn get_response(&self, id: &str) -> Result<Option<StoredResponse>, StoreError> {
        Ok(self.inner.lock().responses.get(id).cloned())
    }

    fn delete_response(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.inner.lock().responses.remove(id).is_some())
    }

    fn prune_responses(&self, before_ms: i64) -> Result<usize, StoreError> {
        let mut inner = self.inner.lock();
        let before = inner.responses.len();
        inner.responses.retain(|_, r| r.created_ms >= before_ms);
        Ok(before - inner.responses.len())
    }

    fn put_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        self.inner.lock().keys.insert(key.id.clone(), key.clone());
        Ok(())
    }

    fn delete_key(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.inner.lock().keys.remove(id).is_some())
    }

    fn load_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        Ok(self.inner.lock().keys.values().cloned().collect())
    }

    fn put_team(&self, team: &Team) -> Result<(), StoreError> {
        self.inner.lock().teams.insert(team.name.clone(), team.clone());
        Ok(())
    }

    fn delete_team(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.inner.lock().teams.remove(name).is_some())
    }

    fn load_teams(&self) -> Result<Vec<Team>, StoreError> {
        Ok(self.inner.lock().teams.values().cloned().collect())
    }

    fn put_budget(&self, pool: &PoolId, spec: Option<&BudgetSpec>) -> Result<(), StoreError> {
        let mut inner = self.inner.lock();
        match spec {
            Some(spec) => inner.budgets.insert(pool.clone(), *spec),
            None => inner.budgets.remove(pool),
        };
        Ok(())
    }

    fn load_budgets(&self) -> Result<Vec<(PoolId, BudgetSpec)>, StoreError> {
        Ok(self.inner.lock().budgets.iter().map(|(p, s)| (p.clone(), *s)).collect())
    }

    fn append_usage(&self, rows: &[UsageRecord]) -> Result<usize, StoreError> {
        check_row_ids(rows)?;
        let mut inner = self.inner.lock();
        let mut added = 0;
        for row in rows {
            if inner.row_ids.insert(row.id.clone()) {
                inner.ledger.push(row.clone());
                added += 1;
            }
        }
        Ok(added)
    }

    fn usage_totals(&self, pool: &PoolId, from_ms: i64) -> Result<(u64, u64), StoreError> {
        let inner = self.inner.lock();
        let rows = inner.ledger.iter().filter(|r| r.ts_ms >= from_ms && charges(pool, r));
        Ok(rows.fold((0u64, 0u64), |(t, n), r| {
            (t.saturating_add(r.tokens()), n.saturating_add(r.cost_nanos.unwrap_or(0)))
        }))
    }

    fn usage_aggregate(&self, group_by: GroupBy, from_ms: i64, to_ms: i64) -> Result<Vec<UsageAggregate>, StoreError> {
        let inner = self.inner.lock();
        let mut groups: BTreeMap<Option<&str>, UsageAggregate> = BTreeMap::new();
        for row in inner.ledger.iter().filter(|r| from_ms <= r.ts_ms && r.ts_ms < to_ms) {
            let group = group_by.of(row);
            groups
                .entry(group)
                .or_insert_with(|| UsageAggregate { group: group.map(str::to_string), ..UsageAggregate::default() })
                .add(row);
        }
        Ok(groups.into_values().collect())
    }

    fn usage_rows(&self, from_ms: i64, to_ms: i64, visit: &mut dyn FnMut(&UsageRecord)) -> Result<(), StoreError> {
        let mut rows: Vec<UsageRecord> =
            self.inner.lock().ledger.iter().filter(|r| from_ms <= r.ts_ms && r.ts_ms < to_ms).cloned().collect();
        // Stable: rows with equal timestamps keep append order, as in SQLite (by `seq`).
        rows.sort_by_key(|r| r.ts_ms);
        for row in &rows {
            visit(row);
        }
        Ok(())
    }
}
