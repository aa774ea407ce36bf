//! Teams: named groups of keys sharing a budget and limits. A key names its
//! team; the team's record (looked up per request, by name) supplies the
//! shared limits, and its budget pool is `team:NAME`.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::budget::{Budgets, PoolId};
use crate::keys::{AdminError, validate_budget};
use crate::principal::Team;
use crate::store::{Store, StoreError, install_budget};

pub struct Teams {
    store: Arc<dyn Store>,
    budgets: Arc<Budgets>,
    teams: RwLock<HashMap<String, Arc<Team>>>,
    write: Mutex<()>,
}

impl std::fmt::Debug for Teams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Teams").field("teams", &self.teams.read().len()).finish()
    }
}

impl Teams {
    pub fn new(store: Arc<dyn Store>, budgets: Arc<Budgets>) -> Self {
        Teams { store, budgets, teams: RwLock::new(HashMap::new()), write: Mutex::new(()) }
    }

    /// Loads every stored team and registers team budgets (usage is rebuilt by the caller).
    pub fn load(&self) -> Result<usize, StoreError> {
        // Held across the read (see `KeyRing::load`).
        let _w = self.write.lock();
        let loaded = self.store.load_teams()?;
        let mut teams = HashMap::with_capacity(loaded.len());
        for team in loaded {
            self.budgets.set(PoolId::Team(team.name.clone()), team.budget);
            teams.insert(team.name.clone(), Arc::new(team));
        }
        let n = teams.len();
        *self.teams.write() = teams;
        Ok(n)
    }

    /// Creates or replaces a team. Changing its budget keeps the usage so far
    /// (rebuilt from the ledger when the pool is new or its period changed).
    pub fn put(&self, team: Team) -> Result<(), AdminError> {
        if team.name.trim().is_empty() {
            return Err(AdminError::Invalid("team name must not be empty".into()));
        }
        validate_budget(team.budget.as_ref())?;
        let _w = self.write.lock();
        self.store.put_team(&team)?;
        let now = self.budgets.clock().now_ms();
        install_budget(&self.budgets, self.store.as_ref(), PoolId::Team(team.name.clone()), team.budget, now)?;
        self.teams.write().insert(team.name.clone(), Arc::new(team));
        Ok(())
    }

    /// Removes a team and its budget; its keys keep naming it but share nothing.
    pub fn remove(&self, name: &str) -> Result<bool, AdminError> {
        let _w = self.write.lock();
        let existed = self.store.delete_team(name)?;
        self.teams.write().remove(name);
        self.budgets.remove(&PoolId::Team(name.to_string()));
        Ok(existed)
    }

    pub fn get(&self, name: &str) -> Option<Arc<Team>> {
        self.teams.read().get(name).cloned()
    }

    /// Every team, by name.
    pub fn list(&self) -> Vec<Team> {
        let mut out: Vec<Team> = self.teams.read().values().map(|t| Team::clone(t)).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}
