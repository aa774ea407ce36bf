//! [`PgStore`]: the [`Store`] of a cluster, in PostgreSQL — keys, teams,
//! budget definitions, the usage ledger and stored Responses answers, one
//! copy for every instance.
//!
//! Ledger rows are never lost to an outage: when PostgreSQL cannot be
//! reached, a batch goes to the local spill file ([`crate::spill`]) and the
//! writer is told it was taken; the spill is replayed, in order and before
//! any newer row, as soon as PostgreSQL answers again (on the next batch,
//! or within a second when idle). Rows carry their own unique id, so a
//! batch that was committed but whose answer was lost counts once.
//!
//! Reports and the export read through a second connection, so a long
//! export never holds up ledger commits.

use std::path::PathBuf;
use std::sync::Arc;

use hoosh_governance::{
    BudgetSpec, GroupBy, KeyRecord, PoolId, Store, StoreError, StoredResponse, Team, UsageAggregate, UsageRecord,
    nanos_to_usd,
};
use parking_lot::Mutex;
use postgres::Client;

use crate::migrate;
use crate::pg_conn::{PgConn, PgFail};
use crate::spill::{self, Spill};

/// Rows per INSERT when replaying a spill.
const REPLAY_BATCH: usize = 500;

pub struct PgStore {
    /// Records and ledger writes.
    writer: PgConn,
    /// Reports, totals and exports.
    reader: PgConn,
    /// Rows PostgreSQL has not taken yet, oldest first.
    spill: Mutex<Spill<UsageRecord>>,
    /// Written on each ledger row (which instance served it).
    instance: String,
    /// Called after a key, team or budget definition was written: the other
    /// instances are told to read them again.
    on_change: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("instance", &self.instance).finish_non_exhaustive()
    }
}

/// How the store is opened.
#[derive(Debug, Clone)]
pub struct PgOptions {
    pub url: String,
    /// Apply pending migrations (otherwise an older schema is an error).
    pub migrate: bool,
    /// The local append-only file for ledger rows PostgreSQL could not take.
    pub spill_path: PathBuf,
    pub instance: String,
}

impl PgStore {
    /// Connects, checks (or migrates) the schema, and starts replaying any
    /// spill left by an earlier run. PostgreSQL must be reachable at start.
    pub fn open(options: PgOptions) -> Result<Arc<PgStore>, StoreError> {
        let writer = PgConn::start(&options.url, "writer")?;
        let reader = PgConn::start(&options.url, "reader")?;
        let current = migrate::current(&writer)?;
        let latest = migrate::latest();
        if current > latest {
            return Err(StoreError::SchemaTooNew { found: current, supported: latest });
        }
        if current < latest {
            if !options.migrate {
                return Err(StoreError::Remote(format!(
                    "the database schema is at version {current}, this build needs {latest}: run `hoosh migrate` \
                     (or set state.migrate_on_start = true)"
                )));
            }
            let applied = migrate::migrate(&writer)?;
            if !applied.is_empty() {
                tracing::info!(migrations = ?applied, "database migrated");
            }
        }
        let spill = Spill::open(&options.spill_path, "ledger rows")?;
        let store = Arc::new(PgStore {
            writer,
            reader,
            spill: Mutex::new(spill),
            instance: options.instance,
            on_change: std::sync::OnceLock::new(),
        });
        spill::spawn_idle_replay("hoosh-pg-replay", Arc::downgrade(&store), PgStore::replay_idle)?;
        Ok(store)
    }

    /// Sets what runs after every change to keys, teams or budget
    /// definitions (once; later calls are ignored).
    pub fn set_on_change(&self, f: Box<dyn Fn() + Send + Sync>) {
        let _ = self.on_change.set(f);
    }

    fn changed(&self) {
        if let Some(f) = self.on_change.get() {
            f();
        }
    }

    /// Rows waiting in the spill file.
    pub fn spilled(&self) -> usize {
        self.spill.lock().len()
    }

    /// The idle replay (every second, [`spill::spawn_idle_replay`]).
    fn replay_idle(&self) {
        let mut spill = self.spill.lock();
        if let Err(e) = self.replay(&mut spill) {
            tracing::debug!(error = %e, rows = spill.len(), "spilled ledger rows wait for PostgreSQL");
        }
    }

    /// Sends the spill to PostgreSQL, oldest first; the file is emptied once
    /// all of it is committed.
    fn replay(&self, spill: &mut Spill<UsageRecord>) -> Result<(), PgFail> {
        if spill.is_empty() {
            return Ok(());
        }
        let rows = spill.read().map_err(|e| PgFail::Refused(format!("reading the spill file: {e}")))?;
        for chunk in rows.chunks(REPLAY_BATCH) {
            let chunk = chunk.to_vec();
            let instance = self.instance.clone();
            self.writer.run(move |c| insert_rows(c, &chunk, &instance))?;
        }
        spill.clear().map_err(|e| PgFail::Refused(format!("emptying the spill file: {e}")))?;
        tracing::warn!(rows = rows.len(), "ledger rows spilled during a database outage are now in PostgreSQL");
        Ok(())
    }
}

fn to_sql(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn from_sql(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

const ROW_COLUMNS: &str = "id, request_id, ts_ms, key_id, team, provider, model, prompt_tokens, completion_tokens, \
                           cached_tokens, cost_nanos, latency_ms, ttft_ms, status, cache_hit, route, audio_ms";

/// Inserts `rows` in one statement (column arrays unnested, order kept);
/// rows whose id is present are skipped. Returns how many were new.
fn insert_rows(c: &mut Client, rows: &[UsageRecord], instance: &str) -> Result<usize, postgres::Error> {
    let col = |f: &dyn Fn(&UsageRecord) -> String| rows.iter().map(f).collect::<Vec<_>>();
    let opt = |f: &dyn Fn(&UsageRecord) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    let int = |f: &dyn Fn(&UsageRecord) -> i64| rows.iter().map(f).collect::<Vec<_>>();
    let ids = col(&|r| r.id.clone());
    let request_ids = col(&|r| r.request_id.clone());
    let ts = int(&|r| r.ts_ms);
    let keys = opt(&|r| r.key_id.clone());
    let teams = opt(&|r| r.team.clone());
    let providers = opt(&|r| r.provider.clone());
    let models = col(&|r| r.model.clone());
    let prompt = int(&|r| to_sql(r.prompt_tokens));
    let completion = int(&|r| to_sql(r.completion_tokens));
    let cached = int(&|r| to_sql(r.cached_tokens));
    let cost: Vec<Option<i64>> = rows.iter().map(|r| r.cost_nanos.map(to_sql)).collect();
    let latency = int(&|r| to_sql(r.latency_ms));
    let ttft: Vec<Option<i64>> = rows.iter().map(|r| r.ttft_ms.map(to_sql)).collect();
    let status: Vec<i32> = rows.iter().map(|r| i32::from(r.status)).collect();
    let hit: Vec<bool> = rows.iter().map(|r| r.cache_hit).collect();
    let routes = col(&|r| r.route.clone());
    let audio = int(&|r| to_sql(r.audio_ms));
    use postgres::types::Type;
    // Typed parameters: one round trip (no separate prepare).
    let n = c.execute_typed(
        &format!(
            "INSERT INTO ledger ({ROW_COLUMNS}, instance)
             SELECT *, $18 FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::text[],
                    $7::text[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::int8[],
                    $14::int4[], $15::bool[], $16::text[], $17::int8[])
             ON CONFLICT (id) DO NOTHING"
        ),
        &[
            (&ids, Type::TEXT_ARRAY),
            (&request_ids, Type::TEXT_ARRAY),
            (&ts, Type::INT8_ARRAY),
            (&keys, Type::TEXT_ARRAY),
            (&teams, Type::TEXT_ARRAY),
            (&providers, Type::TEXT_ARRAY),
            (&models, Type::TEXT_ARRAY),
            (&prompt, Type::INT8_ARRAY),
            (&completion, Type::INT8_ARRAY),
            (&cached, Type::INT8_ARRAY),
            (&cost, Type::INT8_ARRAY),
            (&latency, Type::INT8_ARRAY),
            (&ttft, Type::INT8_ARRAY),
            (&status, Type::INT4_ARRAY),
            (&hit, Type::BOOL_ARRAY),
            (&routes, Type::TEXT_ARRAY),
            (&audio, Type::INT8_ARRAY),
            (&instance, Type::TEXT),
        ],
    )?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

fn read_row(row: &postgres::Row) -> UsageRecord {
    UsageRecord {
        id: row.get(0),
        request_id: row.get(1),
        ts_ms: row.get(2),
        key_id: row.get(3),
        team: row.get(4),
        provider: row.get(5),
        model: row.get(6),
        prompt_tokens: from_sql(row.get(7)),
        completion_tokens: from_sql(row.get(8)),
        cached_tokens: from_sql(row.get(9)),
        cost_nanos: row.get::<_, Option<i64>>(10).map(from_sql),
        latency_ms: from_sql(row.get(11)),
        ttft_ms: row.get::<_, Option<i64>>(12).map(from_sql),
        status: u16::try_from(row.get::<_, i32>(13)).unwrap_or(0),
        cache_hit: row.get(14),
        route: row.get(15),
        audio_ms: from_sql(row.get(16)),
    }
}

impl PgStore {
    /// The JSON records `sql` selects (one text column), parsed.
    fn records<T: serde::de::DeserializeOwned>(&self, sql: &'static str) -> Result<Vec<T>, StoreError> {
        let docs =
            self.writer.run(move |c| Ok(c.query(sql, &[])?.iter().map(|r| r.get(0)).collect::<Vec<String>>()))?;
        docs.iter().map(|d| serde_json::from_str(d).map_err(StoreError::from)).collect()
    }

    /// Runs a `DELETE … WHERE … = $1`; whether a row went.
    fn delete(&self, sql: &'static str, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        Ok(self.writer.run(move |c| c.execute(sql, &[&id]))? > 0)
    }
}

impl Store for PgStore {
    fn put_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        let (id, hash, json) = (key.id.clone(), key.hash.to_string(), serde_json::to_string(key)?);
        self.writer.run(move |c| {
            c.execute(
                "INSERT INTO keys (id, hash, record) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET hash = excluded.hash, record = excluded.record",
                &[&id, &hash, &json],
            )
        })?;
        self.changed();
        Ok(())
    }

    fn delete_key(&self, id: &str) -> Result<bool, StoreError> {
        let deleted = self.delete("DELETE FROM keys WHERE id = $1", id)?;
        self.changed();
        Ok(deleted)
    }

    fn load_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.records("SELECT record FROM keys ORDER BY id")
    }

    fn put_team(&self, team: &Team) -> Result<(), StoreError> {
        let (name, json) = (team.name.clone(), serde_json::to_string(team)?);
        self.writer.run(move |c| {
            c.execute(
                "INSERT INTO teams (name, record) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET record = excluded.record",
                &[&name, &json],
            )
        })?;
        self.changed();
        Ok(())
    }

    fn delete_team(&self, name: &str) -> Result<bool, StoreError> {
        let deleted = self.delete("DELETE FROM teams WHERE name = $1", name)?;
        self.changed();
        Ok(deleted)
    }

    fn load_teams(&self) -> Result<Vec<Team>, StoreError> {
        self.records("SELECT record FROM teams ORDER BY name")
    }

    fn put_budget(&self, pool: &PoolId, spec: Option<&BudgetSpec>) -> Result<(), StoreError> {
        let pool = pool.to_string();
        let spec = spec.map(serde_json::to_string).transpose()?;
        self.writer.run(move |c| match spec {
            Some(spec) => c.execute(
                "INSERT INTO budgets (pool, spec) VALUES ($1, $2) ON CONFLICT (pool) DO UPDATE SET spec = excluded.spec",
                &[&pool, &spec],
            ),
            None => c.execute("DELETE FROM budgets WHERE pool = $1", &[&pool]),
        })?;
        self.changed();
        Ok(())
    }

    fn load_budgets(&self) -> Result<Vec<(PoolId, BudgetSpec)>, StoreError> {
        let rows = self.writer.run(|c| {
            Ok(c.query("SELECT pool, spec FROM budgets ORDER BY pool", &[])?
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
                .collect::<Vec<_>>())
        })?;
        rows.into_iter()
            .map(|(pool, spec)| Ok((pool.parse().map_err(StoreError::Corrupt)?, serde_json::from_str(&spec)?)))
            .collect()
    }

    fn append_usage(&self, rows: &[UsageRecord]) -> Result<usize, StoreError> {
        if let Some(r) = rows.iter().find(|r| r.id.is_empty()) {
            return Err(StoreError::MissingRowId { request_id: r.request_id.clone() });
        }
        let mut spill = self.spill.lock();
        // Older rows first: a spill is replayed before anything newer.
        let replayed = self.replay(&mut spill);
        let result = match replayed {
            Ok(()) => {
                let (batch, instance) = (rows.to_vec(), self.instance.clone());
                // One statement: all of the batch or none of it.
                self.writer.run(move |c| insert_rows(c, &batch, &instance))
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(n) => Ok(n),
            Err(e) if e.is_unreachable() => {
                spill.append(rows)?;
                tracing::warn!(error = %e, rows = rows.len(), spilled = spill.len(), "ledger rows spilled to the local file");
                Ok(rows.len())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn usage_totals(&self, pool: &PoolId, from_ms: i64) -> Result<(u64, u64), StoreError> {
        const SUMS: &str = "SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0)::int8,
                                   COALESCE(SUM(cost_nanos), 0)::int8
                            FROM ledger WHERE ts_ms >= $1";
        let queried = pool.clone();
        let (tokens, nanos) = self.reader.run(move |c| {
            let row = match &queried {
                PoolId::Global => c.query_one(SUMS, &[&from_ms])?,
                PoolId::Team(name) => c.query_one(&format!("{SUMS} AND team = $2"), &[&from_ms, name])?,
                PoolId::Key(id) => c.query_one(&format!("{SUMS} AND key_id = $2"), &[&from_ms, id])?,
            };
            Ok((row.get::<_, i64>(0), row.get::<_, i64>(1)))
        })?;
        // Rows still in the spill count too: they were charged.
        let (mut tokens, mut nanos) = (from_sql(tokens), from_sql(nanos));
        let spill = self.spill.lock();
        if !spill.is_empty() {
            for row in spill.read()? {
                if row.ts_ms >= from_ms && hoosh_governance::store::charges(pool, &row) {
                    tokens = tokens.saturating_add(row.tokens());
                    nanos = nanos.saturating_add(row.cost_nanos.unwrap_or(0));
                }
            }
        }
        Ok((tokens, nanos))
    }

    fn usage_aggregate(&self, group_by: GroupBy, from_ms: i64, to_ms: i64) -> Result<Vec<UsageAggregate>, StoreError> {
        let column = group_by.column();
        let sql = format!(
            "SELECT {column}, COUNT(*)::int8, SUM(prompt_tokens)::int8, SUM(completion_tokens)::int8,
                    SUM(cached_tokens)::int8, COALESCE(SUM(cost_nanos), 0)::int8,
                    COUNT(*) FILTER (WHERE cost_nanos IS NULL)::int8, COUNT(*) FILTER (WHERE status >= 400)::int8
             FROM ledger WHERE ts_ms >= $1 AND ts_ms < $2
             GROUP BY {column} ORDER BY {column} NULLS FIRST"
        );
        let rows = self.reader.run(move |c| {
            Ok(c.query(&sql, &[&from_ms, &to_ms])?
                .iter()
                .map(|row| {
                    let cost_nanos = from_sql(row.get(5));
                    UsageAggregate {
                        group: row.get(0),
                        requests: from_sql(row.get(1)),
                        prompt_tokens: from_sql(row.get(2)),
                        completion_tokens: from_sql(row.get(3)),
                        cached_tokens: from_sql(row.get(4)),
                        cost_nanos,
                        cost_usd: nanos_to_usd(cost_nanos),
                        unpriced_requests: from_sql(row.get(6)),
                        errors: from_sql(row.get(7)),
                    }
                })
                .collect::<Vec<_>>())
        })?;
        Ok(rows)
    }

    fn usage_rows(&self, from_ms: i64, to_ms: i64, visit: &mut dyn FnMut(&UsageRecord)) -> Result<(), StoreError> {
        // Pages by (ts_ms, seq), so an export of any size holds one page at a time.
        let mut after: (i64, i64) = (from_ms, -1);
        loop {
            let page = self.reader.run(move |c| {
                Ok(c.query(
                    &format!(
                        "SELECT {ROW_COLUMNS}, seq FROM ledger
                         WHERE (ts_ms, seq) > ($1, $2) AND ts_ms >= $3 AND ts_ms < $4
                         ORDER BY ts_ms, seq LIMIT 1000"
                    ),
                    &[&after.0, &after.1, &from_ms, &to_ms],
                )?
                .iter()
                .map(|row| (read_row(row), row.get::<_, i64>(17)))
                .collect::<Vec<_>>())
            })?;
            let Some((last, seq)) = page.last() else { return Ok(()) };
            after = (last.ts_ms, *seq);
            for (row, _) in &page {
                visit(row);
            }
        }
    }

    fn put_response(&self, r: &StoredResponse) -> Result<(), StoreError> {
        let record = serde_json::to_string(r)?;
        let (id, owner, created) = (r.id.clone(), r.owner.clone(), r.created_ms);
        self.writer.run(move |c| {
            c.execute(
                "INSERT INTO responses (id, owner, created_ms, record) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, created_ms = excluded.created_ms,
                 record = excluded.record",
                &[&id, &owner, &created, &record],
            )
        })?;
        Ok(())
    }

    fn get_response(&self, id: &str) -> Result<Option<StoredResponse>, StoreError> {
        let id = id.to_string();
        let doc = self.writer.run(move |c| {
            Ok(c.query_opt("SELECT record FROM responses WHERE id = $1", &[&id])?.map(|r| r.get::<_, String>(0)))
        })?;
        doc.map(|d| serde_json::from_str(&d).map_err(|e| StoreError::Corrupt(e.to_string()))).transpose()
    }

    fn delete_response(&self, id: &str) -> Result<bool, StoreError> {
        self.delete("DELETE FROM responses WHERE id = $1", id)
    }

    fn prune_responses(&self, before_ms: i64) -> Result<usize, StoreError> {
        let n = self.writer.run(move |c| c.execute("DELETE FROM responses WHERE created_ms < $1", &[&before_ms]))?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}
