//! [`Store`] on one SQLite file.
//!
//! WAL with `synchronous=NORMAL`: a commit is durable against a process crash
//! (kill -9) and costs no fsync per transaction; only an OS crash can lose the
//! last commits. The ledger writer batches rows into one transaction, so
//! throughput is bounded by batches, not rows.
//!
//! Keys, teams and budgets are stored as JSON documents next to the columns
//! they are looked up by, so adding a field to a record needs no migration.
//! The ledger is columnar because it is aggregated; its unique key is the
//! server-made row `id`, not the caller's `request_id`. `PRAGMA
//! user_version` holds the schema version; older files are upgraded in
//! place, in one transaction, and a file from a newer build is refused
//! rather than misread.

use std::path::Path;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::budget::{BudgetSpec, PoolId};
use crate::ledger::UsageRecord;
use crate::principal::{KeyRecord, Team};
use crate::responses::StoredResponse;
use crate::store::{GroupBy, Store, StoreError, UsageAggregate, check_row_ids};

/// 2: `ledger.audio_ms` (speech requests).
/// 3: `ledger.id`, the server-made row id, is the unique key; `request_id`
/// (the caller's `x-request-id`) is an ordinary indexed column.
/// 4: `responses`, stored Responses API answers (a new table; nothing moves).
/// 5: no index on `ledger.request_id`: no query looks rows up by it (it is
/// for correlation, by hand), and every row paid a B-tree insert for it.
const SCHEMA_VERSION: i64 = 5;

/// Everything but the ledger table, whose definition is [`ledger_table`].
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS keys (
    id     TEXT PRIMARY KEY,
    hash   TEXT NOT NULL UNIQUE,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS teams (
    name   TEXT PRIMARY KEY,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS budgets (
    pool TEXT PRIMARY KEY,
    spec TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS responses (
    id         TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    record     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_created ON responses (created_ms);
";

/// The ledger's indexes; run after the table exists in its current form
/// (the one dropped went in version 5).
const LEDGER_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS ledger_ts ON ledger (ts_ms);
CREATE INDEX IF NOT EXISTS ledger_key_ts ON ledger (key_id, ts_ms);
CREATE INDEX IF NOT EXISTS ledger_team_ts ON ledger (team, ts_ms);
DROP INDEX IF EXISTS ledger_request_id;
";

/// The ledger table (version 3) under `name`. `seq` is append order, which
/// breaks ties between rows of the same millisecond in exports; `id` is the
/// idempotence key (`INSERT OR IGNORE`).
fn ledger_table(name: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {name} (
            seq               INTEGER PRIMARY KEY,
            id                TEXT NOT NULL UNIQUE,
            request_id        TEXT NOT NULL,
            ts_ms             INTEGER NOT NULL,
            key_id            TEXT,
            team              TEXT,
            provider          TEXT,
            model             TEXT NOT NULL,
            prompt_tokens     INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            cached_tokens     INTEGER NOT NULL,
            cost_nanos        INTEGER,
            latency_ms        INTEGER NOT NULL,
            ttft_ms           INTEGER,
            status            INTEGER NOT NULL,
            cache_hit         INTEGER NOT NULL,
            route             TEXT NOT NULL,
            audio_ms          INTEGER NOT NULL DEFAULT 0
        );"
    )
}

/// Rebuilds a version 1 or 2 ledger as version 3, rows and append order
/// kept. SQLite cannot drop the old `UNIQUE` on `request_id` with `ALTER`,
/// hence a new table. Old request ids were unique, so each becomes its
/// row's `id` (and stays its `request_id`, uncapped: the cap applies to
/// rows written from now on). Version 1 had no `audio_ms`: its rows were
/// all text. Runs inside the caller's transaction: all or nothing.
fn migrate_ledger_to_v3(conn: &Connection, from: i64) -> Result<(), StoreError> {
    let audio_ms = if from == 1 { "0" } else { "audio_ms" };
    conn.execute_batch(&format!(
        "{new_table}
         INSERT INTO ledger_v3 (seq, id, request_id, ts_ms, key_id, team, provider, model, prompt_tokens,
                                completion_tokens, cached_tokens, cost_nanos, latency_ms, ttft_ms, status,
                                cache_hit, route, audio_ms)
             SELECT id, request_id, request_id, ts_ms, key_id, team, provider, model, prompt_tokens,
                    completion_tokens, cached_tokens, cost_nanos, latency_ms, ttft_ms, status,
                    cache_hit, route, {audio_ms}
             FROM ledger;
         DROP TABLE ledger;
         ALTER TABLE ledger_v3 RENAME TO ledger;",
        new_table = ledger_table("ledger_v3"),
    ))?;
    Ok(())
}

const ROW_COLUMNS: &str = "id, request_id, ts_ms, key_id, team, provider, model, prompt_tokens, \
                           completion_tokens, cached_tokens, cost_nanos, latency_ms, ttft_ms, status, cache_hit, \
                           route, audio_ms";

pub struct SqliteStore {
    /// Writes, and reads that must see them (records).
    conn: Mutex<Connection>,
    /// Reports and exports: a second connection, so that a long export (WAL
    /// readers do not block the writer) never stalls ledger commits.
    reader: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    /// The file and its `-wal`/`-shm` are owner-only (0600), whatever the umask.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref();
        crate::private_fs::prepare_sqlite_file(path)?;
        let mut conn = connect(path)?;
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(journal_mode = %mode, "SQLite refused WAL mode; usage writes will be slower");
        }
        let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew { found, supported: SCHEMA_VERSION });
        }
        // One transaction: a failed upgrade leaves the file as it was.
        let tx = conn.transaction()?;
        if matches!(found, 1 | 2) {
            migrate_ledger_to_v3(&tx, found)?;
        }
        tx.execute_batch(SCHEMA)?;
        tx.execute_batch(&ledger_table("ledger"))?;
        tx.execute_batch(LEDGER_INDEXES)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        let reader = connect(path)?;
        Ok(SqliteStore { conn: Mutex::new(conn), reader: Mutex::new(reader) })
    }
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

/// SQLite integers are signed; counts beyond i64 saturate (they cannot happen in practice).
fn to_sql(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn from_sql(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn read_row(row: &Row<'_>) -> rusqlite::Result<UsageRecord> {
    Ok(UsageRecord {
        id: row.get(0)?,
        request_id: row.get(1)?,
        ts_ms: row.get(2)?,
        key_id: row.get(3)?,
        team: row.get(4)?,
        provider: row.get(5)?,
        model: row.get(6)?,
        prompt_tokens: from_sql(row.get(7)?),
        completion_tokens: from_sql(row.get(8)?),
        cached_tokens: from_sql(row.get(9)?),
        cost_nanos: row.get::<_, Option<i64>>(10)?.map(from_sql),
        latency_ms: from_sql(row.get(11)?),
        ttft_ms: row.get::<_, Option<i64>>(12)?.map(from_sql),
        status: u16::try_from(row.get::<_, i64>(13)?).unwrap_or(0),
        cache_hit: row.get(14)?,
        route: row.get(15)?,
        audio_ms: from_sql(row.get(16)?),
    })
}

impl Store for SqliteStore {
    fn put_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        let json = serde_json::to_string(key)?;
        self.conn.lock().execute(
            "INSERT INTO keys (id, hash, record) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET hash = excluded.hash, record = excluded.record",
            params![key.id, key.hash.to_string(), json],
        )?;
        Ok(())
    }

    fn delete_key(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.conn.lock().execute("DELETE FROM keys WHERE id = ?1", [id])? > 0)
    }

    fn load_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare("SELECT record FROM keys ORDER BY id")?;
        let docs = stmt.query_map([], |row| row.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
        docs.iter().map(|d| serde_json::from_str(d).map_err(StoreError::from)).collect()
    }

    fn put_team(&self, team: &Team) -> Result<(), StoreError> {
        let json = serde_json::to_string(team)?;
        self.conn.lock().execute(
            "INSERT INTO teams (name, record) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET record = excluded.record",
            params![team.name, json],
        )?;
        Ok(())
    }

    fn delete_team(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.conn.lock().execute("DELETE FROM teams WHERE name = ?1", [name])? > 0)
    }

    fn load_teams(&self) -> Result<Vec<Team>, StoreError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare("SELECT record FROM teams ORDER BY name")?;
        let docs = stmt.query_map([], |row| row.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
        docs.iter().map(|d| serde_json::from_str(d).map_err(StoreError::from)).collect()
    }

    fn put_budget(&self, pool: &PoolId, spec: Option<&BudgetSpec>) -> Result<(), StoreError> {
        let conn = self.conn.lock();
        match spec {
            Some(spec) => conn.execute(
                "INSERT INTO budgets (pool, spec) VALUES (?1, ?2)
                 ON CONFLICT (pool) DO UPDATE SET spec = excluded.spec",
                params![pool.to_string(), serde_json::to_string(spec)?],
            )?,
            None => conn.execute("DELETE FROM budgets WHERE pool = ?1", [pool.to_string()])?,
        };
        Ok(())
    }

    fn load_budgets(&self) -> Result<Vec<(PoolId, BudgetSpec)>, StoreError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare("SELECT pool, spec FROM budgets ORDER BY pool")?;
        let rows = stmt
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(pool, spec)| Ok((pool.parse().map_err(StoreError::Corrupt)?, serde_json::from_str(&spec)?)))
            .collect()
    }

    fn append_usage(&self, rows: &[UsageRecord]) -> Result<usize, StoreError> {
        check_row_ids(rows)?;
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        let mut added = 0;
        {
            let mut stmt = tx.prepare_cached(&format!(
                "INSERT OR IGNORE INTO ledger ({ROW_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
            ))?;
            for r in rows {
                added += stmt.execute(params![
                    r.id,
                    r.request_id,
                    r.ts_ms,
                    r.key_id,
                    r.team,
                    r.provider,
                    r.model,
                    to_sql(r.prompt_tokens),
                    to_sql(r.completion_tokens),
                    to_sql(r.cached_tokens),
                    r.cost_nanos.map(to_sql),
                    to_sql(r.latency_ms),
                    r.ttft_ms.map(to_sql),
                    r.status,
                    r.cache_hit,
                    r.route,
                    to_sql(r.audio_ms),
                ])?;
            }
        }
        tx.commit()?;
        Ok(added)
    }

    fn usage_totals(&self, pool: &PoolId, from_ms: i64) -> Result<(u64, u64), StoreError> {
        const SUMS: &str = "SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0), COALESCE(SUM(cost_nanos), 0)
                            FROM ledger WHERE ts_ms >= ?1";
        let conn = self.reader.lock();
        let read = |row: &Row<'_>| Ok((from_sql(row.get(0)?), from_sql(row.get(1)?)));
        let totals = match pool {
            PoolId::Global => conn.query_row(SUMS, [from_ms], read),
            PoolId::Team(name) => conn.query_row(&format!("{SUMS} AND team = ?2"), params![from_ms, name], read),
            PoolId::Key(id) => conn.query_row(&format!("{SUMS} AND key_id = ?2"), params![from_ms, id], read),
        };
        Ok(totals.optional()?.unwrap_or((0, 0)))
    }

    fn usage_aggregate(&self, group_by: GroupBy, from_ms: i64, to_ms: i64) -> Result<Vec<UsageAggregate>, StoreError> {
        let column = group_by.column();
        let sql = format!(
            "SELECT {column}, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cached_tokens),
                    COALESCE(SUM(cost_nanos), 0), SUM(cost_nanos IS NULL), SUM(status >= 400)
             FROM ledger WHERE ts_ms >= ?1 AND ts_ms < ?2
             GROUP BY {column} ORDER BY {column}"
        );
        let conn = self.reader.lock();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map([from_ms, to_ms], |row| {
            let cost_nanos = from_sql(row.get(5)?);
            Ok(UsageAggregate {
                group: row.get(0)?,
                requests: from_sql(row.get(1)?),
                prompt_tokens: from_sql(row.get(2)?),
                completion_tokens: from_sql(row.get(3)?),
                cached_tokens: from_sql(row.get(4)?),
                cost_nanos,
                cost_usd: crate::budget::nanos_to_usd(cost_nanos),
                unpriced_requests: from_sql(row.get(6)?),
                errors: from_sql(row.get(7)?),
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn usage_rows(&self, from_ms: i64, to_ms: i64, visit: &mut dyn FnMut(&UsageRecord)) -> Result<(), StoreError> {
        let conn = self.reader.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {ROW_COLUMNS} FROM ledger WHERE ts_ms >= ?1 AND ts_ms < ?2 ORDER BY ts_ms, seq"
        ))?;
        let mut rows = stmt.query([from_ms, to_ms])?;
        while let Some(row) = rows.next()? {
            visit(&read_row(row)?);
        }
        Ok(())
    }

    fn put_response(&self, r: &StoredResponse) -> Result<(), StoreError> {
        let record = serde_json::to_string(r).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.conn.lock().execute(
            "INSERT OR REPLACE INTO responses (id, owner, created_ms, record) VALUES (?1, ?2, ?3, ?4)",
            params![r.id, r.owner, r.created_ms, record],
        )?;
        Ok(())
    }

    fn get_response(&self, id: &str) -> Result<Option<StoredResponse>, StoreError> {
        let record: Option<String> = self
            .conn
            .lock()
            .query_row("SELECT record FROM responses WHERE id = ?1", [id], |row| row.get(0))
            .optional()?;
        record.map(|r| serde_json::from_str(&r).map_err(|e| StoreError::Corrupt(e.to_string()))).transpose()
    }

    fn delete_response(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.conn.lock().execute("DELETE FROM responses WHERE id = ?1", [id])? > 0)
    }

    fn prune_responses(&self, before_ms: i64) -> Result<usize, StoreError> {
        Ok(self.conn.lock().execute("DELETE FROM responses WHERE created_ms < ?1", [before_ms])?)
    }
}

#[cfg(test)]
#[path = "sqlite_tests.rs"]
mod tests;
