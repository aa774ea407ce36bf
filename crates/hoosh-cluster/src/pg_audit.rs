//! [`PgAuditStore`]: the cluster's one audit chain, in PostgreSQL.
//!
//! Every instance's audit writer appends here. A batch is committed in one
//! READ COMMITTED transaction that first locks the single row of
//! `audit_lock`; then — in statements of their own, so they see what the
//! previous holder committed — the store reads the chain's head and how much
//! of this writer's output it already holds (`audit_writers`), moves the
//! batch behind the head if another instance appended since the writer last
//! looked ([`hoosh_audit::reseal`], each entry signed by the key in force at
//! its place, from this instance's keys), inserts it with one statement, and
//! records the writer's new count. So seq is gap-free, every prev_hash is
//! the hash of the entry before whoever wrote it, and a batch whose commit
//! answer was lost is not taken twice when retried.
//!
//! When PostgreSQL cannot be reached, keeps the chain's lock too long
//! (another writer stuck holding it), or the chain is now signed by a key
//! this instance does not hold, a batch goes to a local spill file (synced)
//! and the writer is told it is safe; the spill is replayed, oldest first
//! and before anything newer, on the next batch or within a second when
//! idle. Spilled entries are resealed when they join the chain, so their
//! seq and time are those of their place in it.
//!
//! Reads (verification, exports, the admin API's list) go through a second
//! connection, a page at a time inside one snapshot, so a prune or appends
//! running meanwhile never make a read see a gap.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hoosh_audit::{
    Appended, AuditKey, ChainState, ChainStore, Checkpoint, Entry, Origin, PruneRecord, StoreError, reseal, seal,
};
use parking_lot::Mutex;
use postgres::types::Type;
use postgres::{IsolationLevel, Transaction};
use serde::{Deserialize, Serialize};

use crate::migrate;
use crate::pg_conn::{PgConn, PgFail};
use crate::spill::{self, Spill};

/// Entries per page when reading the chain.
const PAGE: i64 = 2000;
/// Entries per transaction when replaying a spill.
const REPLAY_BATCH: usize = 1000;
/// The schema version that holds the audit tables.
const AUDIT_SCHEMA: i64 = 2;
/// Longest an append's statements may run (its wait for the chain's lock
/// half of it) before the batch goes to the spill instead.
const APPEND_TIMEOUT: Duration = Duration::from_secs(10);

/// An entry waiting in the spill file, with the writer that sealed it and
/// its number in that writer's count (1-based).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Aside {
    writer: u64,
    n: u64,
    entry: Entry,
}

/// Why a batch could not join the chain.
#[derive(Debug)]
enum Fail {
    Pg(PgFail),
    /// The key in force at the head is not one of this instance's.
    KeyNotInForce {
        in_force: String,
        head_seq: u64,
    },
    /// The stored head does not parse: someone edited the table.
    CorruptHead(String),
    /// The local spill file could not be read, written or emptied.
    Local(std::io::Error),
}

impl Fail {
    /// Worth keeping the batch aside (instead of the writer retrying it):
    /// the chain cannot take it now, but the spill file can.
    fn keep_aside(&self) -> bool {
        match self {
            Fail::Pg(e) => e.is_unreachable() || e.is_timeout(),
            Fail::KeyNotInForce { .. } | Fail::CorruptHead(_) => true,
            Fail::Local(_) => false,
        }
    }
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fail::Pg(e) => e.fmt(f),
            Fail::KeyNotInForce { in_force, head_seq } => write!(
                f,
                "the cluster's audit chain is signed by key {in_force:?} from seq {head_seq} on, which this instance \
                 does not hold: give it that key (audit.key_file or HOOSH_AUDIT_KEY) and restart it"
            ),
            Fail::CorruptHead(why) => write!(f, "the stored head of the audit chain does not parse: {why}"),
            Fail::Local(e) => write!(f, "the local audit spill file: {e}"),
        }
    }
}

fn remote(e: PgFail) -> StoreError {
    StoreError::Remote(e.to_string())
}

pub struct PgAuditStore {
    /// Appends, pruning, checkpoints.
    writer: PgConn,
    /// Verification, exports, listing.
    reader: PgConn,
    /// Entries PostgreSQL has not taken yet; `None` for a read-only store (the CLI).
    spill: Option<Mutex<Spill<Aside>>>,
    /// Every key this instance may sign with (current and previous): each
    /// entry is signed by the one in force at its place in the chain.
    keys: Arc<[AuditKey]>,
    instance: String,
}

impl std::fmt::Debug for PgAuditStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgAuditStore").field("instance", &self.instance).finish_non_exhaustive()
    }
}

impl PgAuditStore {
    /// Connects for appending, with `spill_path` for what PostgreSQL cannot
    /// take, and replays what an earlier run left there; `keys` are the ones
    /// this instance may sign with (its current key first). The schema must
    /// be migrated already (the governance store does it at start).
    pub fn open(
        url: &str,
        spill_path: PathBuf,
        instance: &str,
        keys: Vec<AuditKey>,
    ) -> Result<Arc<PgAuditStore>, StoreError> {
        let spill = Spill::open(&spill_path, "audit entries")?;
        let store = Self::connect(url, Some(spill), instance, keys)?;
        spill::spawn_idle_replay("hoosh-pg-audit-replay", Arc::downgrade(&store), PgAuditStore::replay_idle)?;
        Ok(store)
    }

    /// Connects for reading (verification, export, checkpoints); appends are refused.
    pub fn open_read_only(url: &str) -> Result<Arc<PgAuditStore>, StoreError> {
        Self::connect(url, None, "", Vec::new())
    }

    fn connect(
        url: &str,
        spill: Option<Spill<Aside>>,
        instance: &str,
        keys: Vec<AuditKey>,
    ) -> Result<Arc<PgAuditStore>, StoreError> {
        let writer = PgConn::start_with_timeouts(url, "audit", APPEND_TIMEOUT).map_err(remote)?;
        let reader = PgConn::start(url, "audit-reader").map_err(remote)?;
        let version = migrate::current(&writer).map_err(remote)?;
        if version < AUDIT_SCHEMA {
            return Err(StoreError::Remote(format!(
                "the database schema is at version {version}; the audit chain needs {AUDIT_SCHEMA}: run `hoosh migrate`"
            )));
        }
        Ok(Arc::new(PgAuditStore {
            writer,
            reader,
            spill: spill.map(Mutex::new),
            keys: keys.into(),
            instance: instance.to_owned(),
        }))
    }

    /// The idle replay (every second, [`spill::spawn_idle_replay`]).
    fn replay_idle(&self) {
        let (Some(spill), Some(key)) = (&self.spill, self.keys.first()) else { return };
        let mut spill = spill.lock();
        if let Err(e) = self.replay(&mut spill, key) {
            tracing::debug!(error = %e, entries = spill.len(), "audit entries kept aside wait for the chain");
        }
    }

    /// Entries waiting in the spill file.
    pub fn spilled(&self) -> usize {
        self.spill.as_ref().map_or(0, |s| s.lock().len())
    }

    /// This instance's keys, `key` among them (it is, unless a caller signs
    /// with a key the store was not opened with).
    fn ring_with(&self, key: &AuditKey) -> Arc<[AuditKey]> {
        if self.keys.iter().any(|k| k.id() == key.id()) {
            return Arc::clone(&self.keys);
        }
        std::iter::once(key.clone()).chain(self.keys.iter().cloned()).collect()
    }

    /// Commits `batch` (entries `origin.first + 1 ..` of its writer) behind the head.
    fn commit(&self, batch: &mut [Entry], origin: Origin, key: &AuditKey) -> Result<ChainState, Fail> {
        let keys = self.ring_with(key);
        let (entries, instance) = (batch.to_vec(), self.instance.clone());
        let done = self
            .writer
            .session(move |s| {
                s.with(move |c| {
                    let mut entries = entries;
                    let mut tx = c.build_transaction().isolation_level(IsolationLevel::ReadCommitted).start()?;
                    let placed = append_locked(&mut tx, &mut entries, origin, &keys, &instance)?;
                    if placed.is_ok() {
                        tx.commit()?;
                    }
                    Ok(placed.map(|head| (head, entries)))
                })
            })
            .map_err(Fail::Pg)??;
        let (head, stored) = done;
        batch.clone_from_slice(&stored);
        Ok(head)
    }

    /// Sends the spill to the chain, oldest first, each writer's run of
    /// entries in order; the file is emptied once all of it is in.
    fn replay(&self, spill: &mut Spill<Aside>, key: &AuditKey) -> Result<(), Fail> {
        if spill.is_empty() {
            return Ok(());
        }
        let items = spill.read().map_err(Fail::Local)?;
        let mut start = 0;
        while start < items.len() {
            // A run: one writer, consecutive numbers, at most a batch.
            let mut end = start + 1;
            while end < items.len()
                && end - start < REPLAY_BATCH
                && items[end].writer == items[start].writer
                && items[end].n == items[end - 1].n + 1
            {
                end += 1;
            }
            let run = &items[start..end];
            let origin = Origin { writer: run[0].writer, first: run[0].n.saturating_sub(1) };
            let mut entries: Vec<Entry> = run.iter().map(|a| a.entry.clone()).collect();
            self.commit(&mut entries, origin, key)?;
            start = end;
        }
        spill.clear().map_err(Fail::Local)?;
        tracing::warn!(entries = items.len(), "audit entries kept aside in the spill file are now in the chain");
        Ok(())
    }
}

/// The head and this writer's count under the chain's lock, then the new
/// entries behind the head, each signed by the key in force at its place
/// (one of `keys`), and the writer's count moved on. The caller commits
/// when the answer is `Ok`. The lock is taken by a statement of its own:
/// in READ COMMITTED each later statement sees what the lock's previous
/// holder committed (one statement both locking and reading would read the
/// head as it was before it waited).
fn append_locked(
    tx: &mut Transaction<'_>,
    batch: &mut [Entry],
    origin: Origin,
    keys: &[AuditKey],
    instance: &str,
) -> Result<Result<ChainState, Fail>, postgres::Error> {
    // One round trip, two statements (each with its own snapshot): the lock,
    // then the head and this writer's count as the previous holder left them.
    let replies = tx.simple_query(&format!(
        "SELECT one FROM audit_lock WHERE one FOR UPDATE;
         SELECT (SELECT taken FROM audit_writers WHERE writer = {}),
                (SELECT json FROM audit ORDER BY seq DESC LIMIT 1)",
        to_sql(origin.writer)
    ))?;
    let Some(row) = replies
        .iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        })
        .next_back()
    else {
        return Ok(Err(Fail::CorruptHead("no answer to the head query".into())));
    };
    let taken = row.get(0).and_then(|t| t.parse::<i64>().ok()).map_or(0, from_sql);
    let head = match row.get(1).map(serde_json::from_str::<Entry>).transpose() {
        Ok(head) => head,
        Err(e) => return Ok(Err(Fail::CorruptHead(e.to_string()))),
    };
    let mut state = head.as_ref().map_or_else(ChainState::genesis, ChainState::after);
    // The key that must sign the next entry (none yet: the first entry's own opens the chain).
    let mut in_force = head.as_ref().map(|h| hoosh_audit::epoch::key_after(h).to_owned());
    // Entries this writer already got into the chain (a lost commit answer, a replay).
    let skip = usize::try_from(taken.saturating_sub(origin.first)).unwrap_or(usize::MAX).min(batch.len());
    let new = &mut batch[skip..];
    if let (Some(first), Some(last)) = (new.first(), new.last()) {
        let signed_as_due = in_force.as_deref().is_none_or(|k| k == first.key_id);
        if first.seq == state.next_seq && first.prev_hash == state.head_hash && signed_as_due {
            // Sealed against the true head: nobody appended in between.
            state = ChainState::after(last);
        } else {
            for entry in new.iter_mut() {
                let due = in_force.clone().unwrap_or_else(|| entry.key_id.clone());
                let Some(key) = keys.iter().find(|k| k.id() == due) else {
                    return Ok(Err(Fail::KeyNotInForce { in_force: due, head_seq: state.next_seq.saturating_sub(1) }));
                };
                reseal(&mut state, entry, key);
                in_force = Some(hoosh_audit::epoch::key_after(entry).to_owned());
            }
        }
    }
    // The entries and the writer's new count in one statement.
    let (seqs, ts, json) = columns(new);
    let taken = to_sql(origin.first + batch.len() as u64);
    tx.execute_typed(
        "WITH appended AS (
             INSERT INTO audit (seq, ts_ms, json) SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::text[])
         )
         INSERT INTO audit_writers (writer, taken, instance, ts_ms) VALUES ($4, $5, $6, $7)
         ON CONFLICT (writer) DO UPDATE
         SET taken = GREATEST(audit_writers.taken, EXCLUDED.taken), ts_ms = EXCLUDED.ts_ms",
        &[
            (&seqs, Type::INT8_ARRAY),
            (&ts, Type::INT8_ARRAY),
            (&json, Type::TEXT_ARRAY),
            (&to_sql(origin.writer), Type::INT8),
            (&taken, Type::INT8),
            (&instance, Type::TEXT),
            (&now_ms(), Type::INT8),
        ],
    )?;
    Ok(Ok(state))
}

/// The columns of `entries` as `audit` stores them.
fn columns(entries: &[Entry]) -> (Vec<i64>, Vec<i64>, Vec<String>) {
    (
        entries.iter().map(|e| to_sql(e.seq)).collect(),
        entries.iter().map(|e| e.ts_ms).collect(),
        entries.iter().map(Entry::to_json).collect(),
    )
}

fn insert_entries(tx: &mut Transaction<'_>, entries: &[Entry]) -> Result<(), postgres::Error> {
    let (seqs, ts, json) = columns(entries);
    tx.execute_typed(
        "INSERT INTO audit (seq, ts_ms, json) SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::text[])",
        &[(&seqs, Type::INT8_ARRAY), (&ts, Type::INT8_ARRAY), (&json, Type::TEXT_ARRAY)],
    )?;
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl ChainStore for PgAuditStore {
    fn append(&self, batch: &mut [Entry], origin: Origin, key: &AuditKey) -> Result<Appended, StoreError> {
        let Some(spill) = &self.spill else {
            return Err(StoreError::Remote("this audit store was opened read-only".into()));
        };
        let mut spill = spill.lock();
        // Older entries first: a spill goes into the chain before anything newer.
        let result = self.replay(&mut spill, key).and_then(|()| self.commit(batch, origin, key));
        let e = match result {
            Ok(head) => return Ok(Appended::InChain(head)),
            Err(e) if e.keep_aside() => e,
            Err(Fail::Local(e)) => return Err(StoreError::Io(e)),
            Err(e) => return Err(StoreError::Remote(e.to_string())),
        };
        let items: Vec<Aside> = batch
            .iter()
            .enumerate()
            .map(|(i, entry)| Aside { writer: origin.writer, n: origin.first + i as u64 + 1, entry: entry.clone() })
            .collect();
        spill.append(&items)?;
        let (entries, aside) = (items.len(), spill.len());
        match e {
            Fail::Pg(_) => tracing::warn!(error = %e, entries, aside, "audit entries kept aside in the spill file"),
            _ => tracing::error!(error = %e, entries, aside, "audit entries kept aside in the spill file"),
        }
        Ok(Appended::Aside)
    }

    fn prune_before(
        &self,
        ts_ms: i64,
        key: &AuditKey,
        now_ms: i64,
        _local: ChainState,
    ) -> Result<Option<(PruneRecord, ChainState)>, StoreError> {
        let keys = self.ring_with(key);
        let done = self
            .writer
            .run(move |c| {
                let mut tx = c.build_transaction().isolation_level(IsolationLevel::ReadCommitted).start()?;
                tx.query_one("SELECT one FROM audit_lock WHERE one FOR UPDATE", &[])?;
                let last: Option<String> = tx
                    .query_opt("SELECT json FROM audit WHERE ts_ms < $1 ORDER BY seq DESC LIMIT 1", &[&ts_ms])?
                    .map(|r| r.get(0));
                let head: Option<String> =
                    tx.query_opt("SELECT json FROM audit ORDER BY seq DESC LIMIT 1", &[])?.map(|r| r.get(0));
                let (Some(last), Some(head)) = (last, head) else { return Ok(Ok(None)) };
                let parsed =
                    serde_json::from_str::<Entry>(&last).and_then(|l| Ok((l, serde_json::from_str::<Entry>(&head)?)));
                let (last, head) = match parsed {
                    Ok(pair) => pair,
                    Err(e) => return Ok(Err(Fail::CorruptHead(e.to_string()))),
                };
                let in_force = hoosh_audit::epoch::key_after(&head);
                let Some(key) = keys.iter().find(|k| k.id() == in_force) else {
                    return Ok(Err(Fail::KeyNotInForce { in_force: in_force.to_owned(), head_seq: head.seq }));
                };
                let record = PruneRecord::through(&last);
                let mut state = ChainState::after(&head);
                let entry = seal(&mut state, record.to_draft(), now_ms, key);
                insert_entries(&mut tx, std::slice::from_ref(&entry))?;
                tx.execute("DELETE FROM audit WHERE seq <= $1", &[&to_sql(record.last_pruned_seq)])?;
                tx.commit()?;
                Ok(Ok(Some((record, state))))
            })
            .map_err(remote)?;
        done.map_err(|e| StoreError::Remote(e.to_string()))
    }

    fn head(&self) -> Result<Option<Entry>, StoreError> {
        let row = self
            .reader
            .run(|c| c.query_opt("SELECT seq, json FROM audit ORDER BY seq DESC LIMIT 1", &[]))
            .map_err(remote)?;
        row.map(|r| parse(r.get(0), &r.get::<_, String>(1))).transpose()
    }

    fn range(&self, from_seq: u64, visit: &mut dyn FnMut(Entry) -> bool) -> Result<(), StoreError> {
        // One snapshot for the whole read, a page at a time through a
        // small channel: the caller visits while the next page is read.
        let (pages, arriving) = std::sync::mpsc::sync_channel::<Vec<(i64, String)>>(2);
        let from = to_sql(from_seq);
        let done = self
            .reader
            .submit(move |s| {
                s.with(move |c| {
                    let mut tx = c
                        .build_transaction()
                        .isolation_level(IsolationLevel::RepeatableRead)
                        .read_only(true)
                        .start()?;
                    let mut from = from;
                    loop {
                        let rows = tx.query(
                            "SELECT seq, json FROM audit WHERE seq >= $1 ORDER BY seq LIMIT $2",
                            &[&from, &PAGE],
                        )?;
                        let page: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
                        let full = page.len() as i64 == PAGE;
                        if let Some((last, _)) = page.last() {
                            from = last + 1;
                        }
                        // The caller stopped reading (its visit said enough): stop too.
                        if pages.send(page).is_err() || !full {
                            return Ok(());
                        }
                    }
                })
            })
            .map_err(remote)?;
        for page in arriving {
            for (seq, json) in page {
                if !visit(parse(seq, &json)?) {
                    return Ok(());
                }
            }
        }
        done.recv().map_err(|_| StoreError::Remote("the database thread stopped".into()))?.map_err(remote)
    }

    fn since(&self, ts_ms: i64, visit: &mut dyn FnMut(Entry) -> bool) -> Result<(), StoreError> {
        let first: Option<i64> = self
            .reader
            .run(move |c| Ok(c.query_one("SELECT min(seq) FROM audit WHERE ts_ms >= $1", &[&ts_ms])?.get(0)))
            .map_err(remote)?;
        match first {
            Some(seq) => self.range(from_sql(seq), visit),
            None => Ok(()),
        }
    }

    fn len(&self) -> Result<u64, StoreError> {
        let n: i64 = self.reader.run(|c| Ok(c.query_one("SELECT count(*) FROM audit", &[])?.get(0))).map_err(remote)?;
        Ok(from_sql(n))
    }

    fn put_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        let (seq, json) = (to_sql(checkpoint.seq), checkpoint.to_json());
        self.writer
            .run(move |c| {
                c.execute(
                    "INSERT INTO audit_checkpoints (seq, json) VALUES ($1, $2)
                     ON CONFLICT (seq) DO UPDATE SET json = EXCLUDED.json",
                    &[&seq, &json],
                )
            })
            .map(drop)
            .map_err(remote)
    }

    fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        let row = self
            .reader
            .run(|c| c.query_opt("SELECT seq, json FROM audit_checkpoints ORDER BY seq DESC LIMIT 1", &[]))
            .map_err(remote)?;
        let Some(row) = row else { return Ok(None) };
        let seq: i64 = row.get(0);
        serde_json::from_str(&row.get::<_, String>(1))
            .map(Some)
            .map_err(|e| StoreError::Corrupt { seq: from_sql(seq), reason: e.to_string() })
    }
}

fn parse(seq: i64, json: &str) -> Result<Entry, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt { seq: from_sql(seq), reason: e.to_string() })
}

fn to_sql(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn from_sql(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
