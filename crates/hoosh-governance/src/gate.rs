//! [`Governance`]: the one handle the server holds, and the admission gate
//! every governed request passes.
//!
//! A request's life here:
//!
//! ```text
//! authenticate (keys) ─► admit ─► … upstream call … ─► finish
//!                          │                              │
//!                          ├ model allowed by the key?     ├ settle budgets with the actual cost
//!                          ├ concurrency slots (RAII)      ├ correct TPM estimate → actual
//!                          ├ RPM/TPM (GCRA, all-or-none)   ├ append the ledger row
//!                          └ budget reservation            └ release the slots
//!                             key + team + global
//! ```
//!
//! Each step that can refuse undoes the ones before it (slots dropped, rate
//! charges refunded), so a refused request costs nothing. An [`Admission`]
//! dropped without [`Admission::finish`] — client gone, handler panicked —
//! still settles, corrects, logs a 499 ledger row and releases, exactly once.

use std::sync::Arc;

use parking_lot::RwLock;

use crate::budget::{Amount, BudgetExceeded, BudgetGuard, BudgetSpec, Budgets, PoolId, Remaining, usd_to_nanos};
use crate::clock::{Clock, SystemClock};
use crate::concurrency::{Concurrency, ConcurrencyLimited, ConcurrencyPermit};
use crate::keys::{AdminError, KeyRing, validate_budget};
use crate::ledger::{Ledger, LedgerOptions, UsageRecord};
use crate::principal::{Limits, Principal};
use crate::ratelimit::{Limit, LimitKey, RateKind, RateLimited, RateLimiter, RateReport, Taken};
use crate::shared::{SharedAsk, SharedPool, SharedRate, SharedSettle};
use crate::store::{Store, StoreError, install_budget};
use crate::teams::Teams;

/// Status recorded for a request whose admission was dropped unfinished.
pub const CLIENT_CLOSED: u16 = 499;

#[derive(Debug, thiserror::Error)]
pub enum GovError {
    #[error("loading governance state: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Admin(#[from] AdminError),
}

/// Why a request was not admitted. Each variant carries what the HTTP layer
/// needs (which limit, `retry_after`, when a budget resets).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Denied {
    #[error("this key may not use model `{model}`")]
    ModelNotAllowed { model: String },
    #[error(transparent)]
    RateLimited(RateLimited),
    #[error(transparent)]
    Concurrency(ConcurrencyLimited),
    #[error(transparent)]
    Budget(BudgetExceeded),
}

/// What admission needs to know about a request before it runs.
#[derive(Debug, Clone, Copy)]
pub struct AdmitRequest<'a> {
    /// The model as the caller named it (for the ledger row of a request
    /// dropped before it was served).
    pub model: &'a str,
    /// What routing resolved it to: `(provider, model)` of every candidate
    /// that may serve it. Allow-lists and model limits apply to these, so an
    /// alias or a `provider/model` spelling changes nothing. Empty: `model`
    /// itself (callers without a router).
    pub served: &'a [(&'a str, &'a str)],
    /// Prompt tokens (counted or estimated) + the completion allowance.
    pub estimated_tokens: u64,
    /// The estimate priced; 0 when unpriced.
    pub estimated_nanos: u64,
    /// How much more than the estimate the provider could still charge (a
    /// prompt it counts higher than estimated): near the end of a pool such
    /// requests are admitted one at a time (see [`crate::budget`]).
    pub at_risk: Amount,
    /// A request that costs no dollars (a local model): the dollar side of
    /// budgets is neither checked nor held; tokens still are.
    pub dollar_exempt: bool,
}

/// How a request ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// What budgets are charged. Should equal `usage.amount()` so that the
    /// start-up rebuild from the ledger gives the same totals.
    pub actual: Amount,
    pub usage: UsageRecord,
}

impl Outcome {
    /// The usual outcome: charge exactly what the ledger row says.
    pub fn from_usage(usage: UsageRecord) -> Self {
        Outcome { actual: usage.amount(), usage }
    }
}

/// Governance state: keys, teams, budgets, rate and concurrency limits, ledger.
pub struct Governance {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    keys: KeyRing,
    teams: Teams,
    budgets: Arc<Budgets>,
    limiter: Arc<RateLimiter>,
    concurrency: Concurrency,
    ledger: Arc<Ledger>,
    /// Per-model limits, first matching glob wins (list specific → general).
    model_limits: RwLock<Vec<(glob::Pattern, Limits)>>,
}

impl std::fmt::Debug for Governance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Governance").field("keys", &self.keys).field("ledger", &self.ledger).finish_non_exhaustive()
    }
}

impl Governance {
    /// Loads keys, teams and budgets from `store`, rebuilds each budget's
    /// usage for its current window from the ledger (so after any restart,
    /// even a kill -9, used amounts are exactly the committed ledger sums),
    /// and starts the ledger writer.
    pub fn open(store: Arc<dyn Store>, master_key: Option<String>, now: i64) -> Result<Governance, GovError> {
        Self::open_with(store, master_key, now, Arc::new(SystemClock), LedgerOptions::default())
    }

    /// [`Governance::open`] with a chosen clock (tests) and ledger tuning.
    pub fn open_with(
        store: Arc<dyn Store>,
        master_key: Option<String>,
        now: i64,
        clock: Arc<dyn Clock>,
        ledger: LedgerOptions,
    ) -> Result<Governance, GovError> {
        let budgets = Arc::new(Budgets::with_clock(Arc::clone(&clock)));
        for (pool, spec) in store.load_budgets()? {
            budgets.set(pool, Some(spec));
        }
        let teams = Teams::new(Arc::clone(&store), Arc::clone(&budgets));
        let n_teams = teams.load()?;
        let keys = KeyRing::new(Arc::clone(&store), Arc::clone(&budgets));
        let n_keys = keys.load()?;
        if let Some(master) = master_key.as_deref() {
            keys.set_master(master);
        }
        let pools = budgets.pools();
        for pool in &pools {
            let Some(status) = budgets.snapshot(pool, now) else { continue };
            let window_start = status.spec.period.window_start(now);
            let (tokens, nanos) = store.usage_totals(pool, window_start)?;
            budgets.rebuild(pool, tokens, nanos, window_start);
        }
        tracing::debug!(keys = n_keys, teams = n_teams, budgets = pools.len(), "governance state loaded");
        let ledger = Arc::new(Ledger::open_with(Arc::clone(&store), ledger));
        Ok(Governance {
            store,
            clock,
            keys,
            teams,
            budgets,
            limiter: Arc::new(RateLimiter::new()),
            concurrency: Concurrency::new(),
            ledger,
            model_limits: RwLock::new(Vec::new()),
        })
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    pub fn teams(&self) -> &Teams {
        &self.teams
    }

    pub fn budgets(&self) -> &Arc<Budgets> {
        &self.budgets
    }

    pub fn limits(&self) -> &Arc<RateLimiter> {
        &self.limiter
    }

    pub fn concurrency(&self) -> &Concurrency {
        &self.concurrency
    }

    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Sets (or clears) the gateway-wide budget, e.g. from config; persisted.
    pub fn set_global_budget(&self, spec: Option<BudgetSpec>, now: i64) -> Result<(), GovError> {
        validate_budget(spec.as_ref())?;
        self.store.put_budget(&PoolId::Global, spec.as_ref())?;
        // Rows still queued would be missed by the rebuild below.
        self.ledger.flush();
        install_budget(&self.budgets, self.store.as_ref(), PoolId::Global, spec, now)?;
        Ok(())
    }

    /// Sets the limits for models matching `glob` (replacing an earlier entry
    /// for the same glob). RPM/TPM/concurrency count per model name.
    pub fn set_model_limits(&self, glob: &str, limits: Limits) -> Result<(), AdminError> {
        let pattern = glob::Pattern::new(glob)
            .map_err(|e| AdminError::InvalidGlob { pattern: glob.to_string(), message: e.msg.to_string() })?;
        let mut all = self.model_limits.write();
        match all.iter_mut().find(|(p, _)| p.as_str() == glob) {
            Some(entry) => entry.1 = limits,
            None => all.push((pattern, limits)),
        }
        Ok(())
    }

    pub fn clear_model_limits(&self) {
        self.model_limits.write().clear();
    }

    /// Whether a dollar budget applies to `principal` (its key's, its
    /// team's or the global one): then an unpriced model could spend
    /// without limit.
    pub fn caps_dollars(&self, principal: &Principal, now: i64) -> bool {
        [Some(&principal.key_pool), principal.team_pool.as_ref(), Some(&PoolId::Global)]
            .into_iter()
            .flatten()
            .any(|pool| self.budgets.snapshot(pool, now).is_some_and(|s| s.spec.usd.is_some()))
    }

    /// The first model limit whose glob matches `model` or `provider/model`
    /// (`provider` empty: the model alone).
    fn model_limits_for(&self, provider: &str, model: &str) -> Option<Limits> {
        let all = self.model_limits.read();
        if all.is_empty() {
            return None;
        }
        let qualified = (!provider.is_empty()).then(|| format!("{provider}/{model}"));
        all.iter()
            .find(|(p, _)| p.matches(model) || qualified.as_deref().is_some_and(|q| p.matches(q)))
            .map(|(_, l)| *l)
    }

    /// Decides whether `principal` may run `req` now, and if so holds
    /// everything the request needs until it finishes.
    pub fn admit(&self, principal: &Principal, req: AdmitRequest<'_>, now: i64) -> Result<Admission, Denied> {
        let unrouted = [("", req.model)];
        let served = if req.served.is_empty() { &unrouted[..] } else { req.served };
        for (provider, model) in served {
            let allowed = if provider.is_empty() {
                principal.allows_model(model)
            } else {
                principal.allows_served(provider, model)
            };
            if !allowed {
                return Err(Denied::ModelNotAllowed { model: req.model.to_string() });
            }
        }
        let team = principal.team().and_then(|t| self.teams.get(t));
        // One bucket per served model name, however it was spelled; a
        // request that may fail over between limited models is held by each
        // (like its price, the bound is the strictest candidate).
        let mut model_scopes: Vec<(LimitKey, Limits)> = Vec::new();
        for (provider, model) in served {
            if let Some(limits) = self.model_limits_for(provider, model)
                && !model_scopes.iter().any(|(k, _)| k.as_str() == LimitKey::model(model).as_str())
            {
                model_scopes.push((LimitKey::model(model), limits));
            }
        }

        // Every applicable (limit key, limits) pair: key, team, models.
        let key_scope =
            (!principal.record.limits.is_empty()).then_some((&principal.limit_key, &principal.record.limits));
        let team_scope = match (team.as_deref(), principal.team_limit_key.as_ref()) {
            (Some(team), Some(key)) if !team.limits.is_empty() => Some((key, &team.limits)),
            _ => None,
        };
        let scopes = key_scope.into_iter().chain(team_scope).chain(model_scopes.iter().map(|(k, l)| (k, l)));

        let slots: Vec<(LimitKey, u32)> =
            scopes.clone().filter_map(|(k, l)| l.max_concurrency.map(|max| (LimitKey::clone(k), max))).collect();
        let permit = self.concurrency.acquire_owned(slots).map_err(Denied::Concurrency)?;

        let mut rates: Vec<(LimitKey, Limit, u64)> = Vec::new();
        for (key, limits) in scopes {
            if let Some(rpm) = limits.rpm {
                rates.push((LimitKey::clone(key), Limit::rpm(rpm), 1));
            }
            if let Some(tpm) = limits.tpm {
                rates.push((LimitKey::clone(key), Limit::tpm(tpm), req.estimated_tokens));
            }
        }
        let taken = if rates.is_empty() {
            Vec::new()
        } else {
            self.limiter.check_and_take(&rates, now).map_err(Denied::RateLimited)?
        };

        static GLOBAL: PoolId = PoolId::Global;
        let pools = [Some(&principal.key_pool), principal.team_pool.as_ref(), Some(&GLOBAL)];
        let nanos = if req.dollar_exempt { 0 } else { req.estimated_nanos };
        let estimate = Amount::new(req.estimated_tokens, nanos);
        let guard =
            match self.budgets.guard_over(pools.into_iter().flatten(), estimate, req.at_risk, req.dollar_exempt, now) {
                Ok(guard) => guard,
                Err(e) => {
                    self.limiter.refund(&taken, now);
                    return Err(Denied::Budget(e));
                }
            };

        let mut rate = RateReport::default();
        for t in &taken {
            rate.tighten(t.limit.kind, t.status);
        }
        let remaining = guard.reservation().map(|r| r.remaining()).unwrap_or_default();
        Ok(Admission {
            id: UsageRecord::new_id(now),
            budget: Some(guard),
            permit: Some(permit),
            taken,
            limiter: Arc::clone(&self.limiter),
            ledger: Arc::clone(&self.ledger),
            clock: Arc::clone(&self.clock),
            remaining,
            rate,
            key_id: Arc::clone(&principal.shared_id),
            team: principal.shared_team.clone(),
            model: req.model.to_string(),
            admitted_at: now,
            draft: None,
            actual: Amount::ZERO,
            dollar_exempt: req.dollar_exempt,
            shared: None,
        })
    }

    /// What `admission` holds here, as the charges to make on the state
    /// shared with other instances: the same pools (with their caps and
    /// current windows), amounts and rate charges (see [`crate::shared`]).
    pub fn shared_ask(&self, admission: &Admission, now: i64) -> SharedAsk {
        let mut pools = Vec::new();
        let (mut amount, mut at_risk) = (Amount::ZERO, Amount::ZERO);
        if let Some(r) = admission.budget.as_ref().and_then(|g| g.reservation()) {
            (amount, at_risk) = (r.amount(), r.at_risk());
            for pool in r.pools() {
                let Some(status) = self.budgets.snapshot(pool, now) else { continue };
                let window_start = r.window_start(pool).unwrap_or(status.window_start);
                pools.push(SharedPool {
                    id: pool.clone(),
                    cap_tokens: status.spec.tokens,
                    cap_nanos: if admission.dollar_exempt { None } else { status.spec.usd.map(usd_to_nanos) },
                    window_start,
                    window_end: status.spec.period.next_reset(window_start),
                });
            }
        }
        let rates = admission
            .taken
            .iter()
            .map(|t| SharedRate {
                key: t.key.as_str().to_string(),
                kind: t.limit.kind,
                count: t.limit.count,
                period_ms: t.limit.period_ms,
                burst: t.limit.burst,
                cost: t.cost,
            })
            .collect();
        let slots =
            admission.permit.iter().flat_map(|p| p.slots()).map(|(k, max)| (k.as_str().to_string(), *max)).collect();
        SharedAsk { lease: admission.id.clone(), pools, amount, at_risk, rates, slots }
    }

    /// Reads keys, teams and the global budget again from the store: another
    /// instance changed them (cluster mode). Local usage is kept.
    pub fn reload_shared(&self) -> Result<(), GovError> {
        self.teams.load()?;
        self.keys.load()?;
        let global = self.store.load_budgets()?.into_iter().find(|(p, _)| *p == PoolId::Global).map(|(_, s)| s);
        let now = self.clock.now_ms();
        install_budget(&self.budgets, self.store.as_ref(), PoolId::Global, global, now)?;
        Ok(())
    }

    /// Whether `principal` could be admitted for the smallest request on
    /// `served` now — allow-list, concurrency, request and token rates,
    /// budgets — without holding or charging anything. For work that must
    /// be paid before the real estimate is known (decoding an upload to
    /// learn its duration): a caller who would be refused anyway is refused
    /// before that work, not after.
    pub fn precheck(
        &self,
        principal: &Principal,
        model: &str,
        served: &[(&str, &str)],
        dollar_exempt: bool,
        now: i64,
    ) -> Result<(), Denied> {
        let least = AdmitRequest {
            model,
            served,
            estimated_tokens: 1,
            estimated_nanos: u64::from(!dollar_exempt),
            at_risk: Amount::ZERO,
            dollar_exempt,
        };
        self.admit(principal, least, now).map(|a| a.withdraw(now))
    }

    /// Flushes the ledger and stops its writer (shutdown).
    pub fn close(&self) {
        self.ledger.close();
    }
}

/// A request that was let in. Holds its budget reservation, concurrency slots
/// and TPM estimate until [`finish`](Admission::finish) — or until dropped.
#[must_use = "dropping an admission ends the request as client-closed (499)"]
pub struct Admission {
    /// The ledger row's id, made here so it orders rows by admission time.
    id: String,
    budget: Option<BudgetGuard>,
    permit: Option<ConcurrencyPermit>,
    /// Rate charges; the token ones are corrected at the end.
    taken: Vec<Taken>,
    limiter: Arc<RateLimiter>,
    ledger: Arc<Ledger>,
    clock: Arc<dyn Clock>,
    remaining: Remaining,
    rate: RateReport,
    key_id: Arc<str>,
    team: Option<Arc<str>>,
    model: String,
    admitted_at: i64,
    /// The latest usage the server told us about, for the 499 row.
    draft: Option<UsageRecord>,
    actual: Amount,
    /// Dollars are neither checked nor held (a free local model).
    dollar_exempt: bool,
    /// The charges held on state shared with other instances, who settles
    /// them, and whether the shared store granted them (see [`crate::shared`]).
    shared: Option<(Arc<dyn SharedSettle>, SharedAsk, bool)>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("id", &self.id)
            .field("key_id", &self.key_id)
            .field("model", &self.model)
            .field("actual", &self.actual)
            .finish_non_exhaustive()
    }
}

impl Admission {
    /// The id this request's ledger row will carry (a UUIDv7, unique, in
    /// admission order): made by the server, unlike the caller's request id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key this request was admitted for.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Budget headroom of the tightest pool, right after this request's reservation.
    pub fn remaining(&self) -> Remaining {
        self.remaining
    }

    /// The tightest request and token limits, for `x-ratelimit-*` headers.
    pub fn rate_status(&self) -> RateReport {
        self.rate
    }

    /// What was reserved.
    pub fn estimated(&self) -> Amount {
        self.budget.as_ref().and_then(|g| g.reservation()).map(|r| r.amount()).unwrap_or_default()
    }

    /// The cost so far (a running total while streaming); what a drop settles to.
    pub fn record(&mut self, actual: Amount) {
        self.actual = actual;
        if let Some(g) = self.budget.as_mut() {
            g.record(actual);
        }
    }

    /// The usage so far, as a ledger row (request id, provider, tokens…):
    /// records its amount, and is what a drop writes (with status 499 and
    /// this admission's [`id`](Admission::id)).
    pub fn record_usage(&mut self, usage: UsageRecord) {
        self.record(usage.amount());
        self.draft = Some(usage);
    }

    /// Ends the request: settles budgets with `outcome.actual`, corrects TPM,
    /// appends the ledger row and releases the concurrency slots.
    ///
    /// The row's `id`, `key_id` and `team` are set from the admission
    /// (whatever the caller put there). The id makes the row count once
    /// however many requests share a `request_id`; key and team decide
    /// which budget pools the row is summed into when usage is rebuilt
    /// after a restart, so they must name the pools that were actually
    /// charged.
    pub fn finish(mut self, outcome: Outcome) {
        let now = self.clock.now_ms();
        self.settle(outcome.actual, now);
        let mut row = outcome.usage;
        self.attribute(&mut row);
        self.ledger.append(row);
    }

    /// Hands the charges made on shared state to `sink`, which is told the
    /// actual cost when this admission settles. `held`: the shared store
    /// granted them (`false`: admitted on local state alone).
    pub fn attach_shared(&mut self, sink: Arc<dyn SharedSettle>, ask: SharedAsk, held: bool) {
        self.shared = Some((sink, ask, held));
    }

    /// Replaces the headroom reported to the client (the shared store's,
    /// which sees every instance).
    pub fn set_remaining(&mut self, remaining: Remaining) {
        self.remaining = remaining;
    }

    /// Replaces the rate report (the shared store's).
    pub fn set_rate_status(&mut self, rate: RateReport) {
        self.rate = rate;
    }

    /// Takes the admission back as if it never happened: rate charges
    /// refunded, reservations released, slots freed, no ledger row. For a
    /// request the shared store refused after this instance admitted it.
    pub fn withdraw(mut self, now: i64) {
        self.limiter.refund(&std::mem::take(&mut self.taken), now);
        self.actual = Amount::ZERO;
        self.settle(Amount::ZERO, now);
    }

    /// Names the row as this admission's: its id, key and team. Runs once,
    /// from `finish` or from the drop.
    fn attribute(&mut self, row: &mut UsageRecord) {
        row.id = std::mem::take(&mut self.id);
        if row.key_id.as_deref() != Some(&*self.key_id) {
            row.key_id = Some(self.key_id.to_string());
        }
        if row.team.as_deref() != self.team.as_deref() {
            row.team = self.team.as_deref().map(str::to_string);
        }
    }

    fn settle(&mut self, actual: Amount, now: i64) {
        if let Some(mut guard) = self.budget.take() {
            guard.record(actual);
            guard.settle(now);
        }
        for t in self.taken.drain(..).filter(|t| t.limit.kind == RateKind::Tokens) {
            self.limiter.correct(&t.key, t.cost, actual.tokens, now);
        }
        self.permit.take();
        if let Some((sink, ask, held)) = self.shared.take() {
            sink.settle(ask, held, actual);
        }
    }

    /// The ledger row of a request that never finished: the last draft
    /// (keeping its `request_id`), or a bare row for the model when the
    /// server never sent one.
    fn dropped_row(&mut self, now: i64) -> UsageRecord {
        let actual = self.actual;
        let mut row =
            self.draft.take().unwrap_or_else(|| UsageRecord { model: self.model.clone(), ..UsageRecord::default() });
        self.attribute(&mut row);
        row.ts_ms = now;
        row.status = CLIENT_CLOSED;
        if row.latency_ms == 0 {
            row.latency_ms = u64::try_from(now - self.admitted_at).unwrap_or(0);
        }
        // The row must charge what the budgets were charged, or a rebuild would disagree.
        if row.tokens() != actual.tokens {
            row.prompt_tokens = actual.tokens;
            row.completion_tokens = 0;
            row.cached_tokens = row.cached_tokens.min(actual.tokens);
        }
        if row.cost_nanos.unwrap_or(0) != actual.nanos {
            row.cost_nanos = Some(actual.nanos);
        }
        row
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if self.budget.is_none() {
            return; // finished
        }
        let now = self.clock.now_ms();
        self.settle(self.actual, now);
        let row = self.dropped_row(now);
        self.ledger.append(row);
    }
}

#[cfg(test)]
#[path = "gate_tests.rs"]
mod tests;
