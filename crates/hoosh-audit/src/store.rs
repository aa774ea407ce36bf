//! The chain on one SQLite file.
//!
//! `audit(seq INTEGER PRIMARY KEY, json TEXT NOT NULL)` holds each entry's
//! JSON under its seq; `checkpoints(seq INTEGER PRIMARY KEY, json TEXT)` holds
//! signed checkpoints. WAL mode; `synchronous=NORMAL` by default (a commit
//! survives a process crash such as kill -9, only an OS crash or power loss
//! can lose the last commits), [`Durability::Full`] for an fsync per commit.
//!
//! Rows are read back exactly as stored — the store checks nothing, so that
//! the verifier sees any edit made to the file behind hoosh's back. A row
//! whose JSON no longer parses is reported as [`StoreError::Corrupt`].

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::chain::{ChainState, seal};
use crate::chain_store::{Appended, ChainStore, Origin};
use crate::checkpoint::Checkpoint;
use crate::entry::Entry;
use crate::key::AuditKey;
use crate::prune::PruneRecord;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit (
    seq  INTEGER PRIMARY KEY,
    json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    seq  INTEGER PRIMARY KEY,
    json TEXT
);
";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("audit store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("audit store row {seq} is not a valid entry: {reason}")]
    Corrupt { seq: u64, reason: String },
    #[error("audit export: {0}")]
    Io(#[from] std::io::Error),
    /// A shared store (PostgreSQL) refused or could not be reached.
    #[error("audit store: {0}")]
    Remote(String),
}

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=NORMAL`: survives a process crash.
    #[default]
    Normal,
    /// `synchronous=FULL`: also survives an OS crash or power loss.
    Full,
}

pub struct AuditStore {
    /// The writer thread's appends, and reads that must see them.
    conn: Mutex<Connection>,
    /// Verification and exports, so a long read never stalls appends.
    reader: Mutex<Connection>,
}

impl std::fmt::Debug for AuditStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditStore").finish_non_exhaustive()
    }
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding the lock leaves the connection usable: SQLite rolls back.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn to_sql(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

fn parse(seq: i64, json: &str) -> Result<Entry, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt { seq: u64::try_from(seq).unwrap_or(0), reason: e.to_string() })
}

impl AuditStore {
    /// Opens (creating if needed) the store with [`Durability::Normal`].
    pub fn open(path: impl AsRef<Path>) -> Result<AuditStore, StoreError> {
        Self::open_with(path, Durability::Normal)
    }

    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> Result<AuditStore, StoreError> {
        let path = path.as_ref();
        let conn = connect(path, durability)?;
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(journal_mode = %mode, "SQLite refused WAL mode for the audit store");
        }
        conn.execute_batch(SCHEMA)?;
        let reader = connect(path, durability)?;
        Ok(AuditStore { conn: Mutex::new(conn), reader: Mutex::new(reader) })
    }

    /// Inserts already-sealed entries as they are, in one transaction (all
    /// or none). The writer goes through [`ChainStore::append`]; tests use
    /// this to put forged rows in.
    pub fn insert(&self, entries: &[Entry]) -> Result<(), StoreError> {
        let mut conn = lock(&self.conn);
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached("INSERT INTO audit (seq, json) VALUES (?1, ?2)")?;
            for e in entries {
                insert.execute(params![to_sql(e.seq), e.to_json()])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Appends `entry` and deletes every entry with seq ≤ `through_seq`, in one transaction.
    fn append_and_delete_through(&self, entry: &Entry, through_seq: u64) -> Result<usize, StoreError> {
        let mut conn = lock(&self.conn);
        let tx = conn.transaction()?;
        tx.execute("INSERT INTO audit (seq, json) VALUES (?1, ?2)", params![to_sql(entry.seq), entry.to_json()])?;
        let deleted = tx.execute("DELETE FROM audit WHERE seq <= ?1", params![to_sql(through_seq)])?;
        tx.commit()?;
        Ok(deleted)
    }

    /// The newest entry sealed before `ts_ms`.
    fn last_before(&self, ts_ms: i64) -> Result<Option<Entry>, StoreError> {
        let conn = lock(&self.conn);
        let row: Option<(i64, String)> = conn
            .query_row(
                "SELECT seq, json FROM audit WHERE json_extract(json, '$.ts_ms') < ?1 ORDER BY seq DESC LIMIT 1",
                params![ts_ms],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(seq, json)| parse(seq, &json)).transpose()
    }

    fn visit_rows(&self, sql: &str, arg: i64, visit: &mut dyn FnMut(Entry) -> bool) -> Result<(), StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params![arg])?;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            let json: String = row.get(1)?;
            if !visit(parse(seq, &json)?) {
                break;
            }
        }
        Ok(())
    }

    /// Runs raw SQL on the write connection; tests use it to tamper with the file.
    #[cfg(test)]
    pub(crate) fn execute_raw(&self, sql: &str) -> rusqlite::Result<usize> {
        lock(&self.conn).execute(sql, [])
    }
}

/// One writer (this process holds the file's lock): a batch arrives sealed
/// against the true head and goes in as it is.
impl ChainStore for AuditStore {
    fn append(&self, batch: &mut [Entry], _origin: Origin, _key: &AuditKey) -> Result<Appended, StoreError> {
        let Some(last) = batch.last() else { return Ok(Appended::InChain(ChainState::genesis())) };
        let after = ChainState::after(last);
        match self.insert(batch) {
            Ok(()) => Ok(Appended::InChain(after)),
            // An error reported after the commit landed: the head shows it.
            Err(e) => match self.head() {
                Ok(Some(head)) if head.seq == last.seq && head.hash == last.hash => Ok(Appended::InChain(after)),
                _ => Err(e),
            },
        }
    }

    fn prune_before(
        &self,
        ts_ms: i64,
        key: &AuditKey,
        now_ms: i64,
        local: ChainState,
    ) -> Result<Option<(PruneRecord, ChainState)>, StoreError> {
        let Some(last_pruned) = self.last_before(ts_ms)? else { return Ok(None) };
        let record = PruneRecord::through(&last_pruned);
        let mut state = local;
        let entry = seal(&mut state, record.to_draft(), now_ms, key);
        self.append_and_delete_through(&entry, record.last_pruned_seq)?;
        Ok(Some((record, state)))
    }

    fn head(&self) -> Result<Option<Entry>, StoreError> {
        let conn = lock(&self.conn);
        let row: Option<(i64, String)> = conn
            .query_row("SELECT seq, json FROM audit ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        row.map(|(seq, json)| parse(seq, &json)).transpose()
    }

    fn range(&self, from_seq: u64, visit: &mut dyn FnMut(Entry) -> bool) -> Result<(), StoreError> {
        self.visit_rows("SELECT seq, json FROM audit WHERE seq >= ?1 ORDER BY seq", to_sql(from_seq), visit)
    }

    fn since(&self, ts_ms: i64, visit: &mut dyn FnMut(Entry) -> bool) -> Result<(), StoreError> {
        self.visit_rows(
            "SELECT seq, json FROM audit WHERE seq >= (SELECT min(seq) FROM audit \
             WHERE json_extract(json, '$.ts_ms') >= ?1) ORDER BY seq",
            ts_ms,
            visit,
        )
    }

    fn len(&self) -> Result<u64, StoreError> {
        let n: i64 = lock(&self.reader).query_row("SELECT count(*) FROM audit", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn put_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        lock(&self.conn).execute(
            "INSERT OR REPLACE INTO checkpoints (seq, json) VALUES (?1, ?2)",
            params![to_sql(checkpoint.seq), checkpoint.to_json()],
        )?;
        Ok(())
    }

    fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        let conn = lock(&self.conn);
        let row: Option<(i64, Option<String>)> = conn
            .query_row("SELECT seq, json FROM checkpoints ORDER BY seq DESC LIMIT 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let Some((seq, json)) = row else { return Ok(None) };
        let corrupt = |reason: String| StoreError::Corrupt { seq: u64::try_from(seq).unwrap_or(0), reason };
        let json = json.ok_or_else(|| corrupt("checkpoint row has no JSON".into()))?;
        serde_json::from_str(&json).map(Some).map_err(|e| corrupt(e.to_string()))
    }
}

fn connect(path: &Path, durability: Durability) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let sync = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    Ok(conn)
}
