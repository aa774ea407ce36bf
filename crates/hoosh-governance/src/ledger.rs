//! The usage ledger: one row per request, written off the request path.
//!
//! [`Ledger::append`] only pushes onto an unbounded channel, so a request
//! never waits on the disk and a slow disk never drops a row (the queue grows
//! instead; [`Ledger::queue_depth`] shows it). The queue is bounded where
//! work enters: the server refuses new requests while it is deeper than
//! `governance.max_ledger_backlog`, so at most that many rows plus those
//! of requests already admitted can wait. One writer thread drains what
//! is queued — up to a batch — into a single transaction, commits, repeats.
//! The writer lingers a few ms after the first row of a quiet spell so rows
//! group into one commit and senders rarely have to wake it.
//! A failed write is logged and retried with backoff; because the store
//! ignores a row `id` it already has, a batch that did commit but reported an
//! error is not counted twice on retry.
//!
//! Every row is named by the server: [`UsageRecord::id`] is a UUIDv7 made
//! when the request was admitted, unique and sortable by time. The caller's
//! `x-request-id` is kept in `request_id` for correlation only — it is not
//! unique (a client may send the same one every time) and decides nothing
//! about what is stored. [`Ledger::append`] is the one place every row
//! passes: it gives a row without an id one and caps `request_id` at
//! [`MAX_REQUEST_ID_BYTES`].
//!
//! A tap ([`Ledger::set_tap`]) sees every batch on the writer thread before
//! it is written: the audit chain records each finished request from there,
//! so the request path pays nothing for it.
//!
//! [`Ledger::flush`] waits until everything appended before it is committed
//! (a marker travels down the same FIFO channel); [`Ledger::close`] flushes
//! and joins the writer, which is what shutdown calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use uuid::{ContextV7, Timestamp, Uuid};

use crate::budget::Amount;
use crate::store::Store;

/// The longest `request_id` a row keeps, in bytes (it comes from a client header).
pub const MAX_REQUEST_ID_BYTES: usize = 128;

/// One request's usage, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UsageRecord {
    /// The row's own id, made by the server (a UUIDv7, see
    /// [`UsageRecord::new_id`]): unique, so a store ignores a row whose id
    /// it already has — that is what makes a retried write count once.
    /// [`Admission`](crate::Admission) sets it; [`Ledger::append`] fills it
    /// when empty.
    pub id: String,
    /// When the request *finished* (unix ms): budgets charge the window a
    /// request ends in, and the start-up rebuild sums rows by this time.
    pub ts_ms: i64,
    /// The caller's `x-request-id` (or the one the gateway assigned), for
    /// correlation with logs and the audit chain. Not unique: clients choose
    /// it. At most [`MAX_REQUEST_ID_BYTES`] (cut by [`Ledger::append`]).
    pub request_id: String,
    pub key_id: Option<String>,
    pub team: Option<String>,
    pub provider: Option<String>,
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Prompt tokens served from the provider's prompt cache (a subset of `prompt_tokens`).
    pub cached_tokens: u64,
    /// `None` when the model has no price (unpriced, never silently free).
    pub cost_nanos: Option<u64>,
    pub latency_ms: u64,
    /// Time to first token, for streams.
    pub ttft_ms: Option<u64>,
    /// The HTTP status returned to the client (499 = client closed).
    pub status: u16,
    /// Served from hoosh's response cache.
    pub cache_hit: bool,
    /// e.g. `chat`, `completions`, `embeddings`, `audio.transcriptions`.
    pub route: String,
    /// Audio processed (speech-to-text input), in milliseconds.
    pub audio_ms: u64,
}

/// One generator for the process, so ids made later always sort after
/// earlier ones (the counter breaks ties within a millisecond and holds the
/// order when the time given steps back).
static ID_CONTEXT: Mutex<ContextV7> = Mutex::new(ContextV7::new());

impl UsageRecord {
    /// A fresh row id: a hyphenated UUIDv7 whose time part is `at_ms` (unix
    /// ms). Ids made later in this process compare greater, as strings too.
    pub fn new_id(at_ms: i64) -> String {
        let ms = u64::try_from(at_ms).unwrap_or(0);
        let subsec_nanos = u32::try_from(ms % 1000).unwrap_or(0) * 1_000_000;
        let ts = Timestamp::from_unix(&*ID_CONTEXT.lock(), ms / 1000, subsec_nanos);
        Uuid::new_v7(ts).hyphenated().to_string()
    }

    /// Tokens as budgets count them: prompt + completion.
    pub fn tokens(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }

    /// What this row charges a budget.
    pub fn amount(&self) -> Amount {
        Amount { tokens: self.tokens(), nanos: self.cost_nanos.unwrap_or(0) }
    }

    /// Makes the row fit to store: an id if it has none, `request_id` cut
    /// to [`MAX_REQUEST_ID_BYTES`] on a character boundary.
    fn prepare(&mut self) {
        if self.id.is_empty() {
            self.id = Self::new_id(self.ts_ms);
        }
        if self.request_id.len() > MAX_REQUEST_ID_BYTES {
            let cut = (0..=MAX_REQUEST_ID_BYTES).rev().find(|&i| self.request_id.is_char_boundary(i)).unwrap_or(0);
            self.request_id.truncate(cut);
        }
    }
}

/// Writer tuning; the defaults suit production, tests shorten the backoff.
#[derive(Debug, Clone, Copy)]
pub struct LedgerOptions {
    /// Rows per transaction at most.
    pub max_batch: usize,
    /// After the first row of a quiet spell, how long the writer waits for
    /// more before committing (group commit). Besides fewer, larger
    /// transactions, this keeps `append` cheap: while the writer is not
    /// parked on the channel, a send needs no wake-up system call. A flush
    /// or close is never delayed by more than this.
    pub linger: Duration,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Once closing, how many failed attempts before the remaining rows are
    /// given up (with an error log naming how many): shutdown must end.
    pub attempts_when_closing: u32,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        LedgerOptions {
            max_batch: 1000,
            linger: Duration::from_millis(20),
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            attempts_when_closing: 5,
        }
    }
}

enum Msg {
    Row(Box<UsageRecord>),
    /// Reply once everything queued before this marker is committed.
    Flush(SyncSender<()>),
    /// Commit everything, reply, and stop.
    Close(SyncSender<()>),
    /// Call once everything queued before this marker is committed; unlike
    /// `Flush` it does not end the batch (many wait on one commit).
    Notify(Committed),
}

/// Run when the rows appended before it are committed (see [`Ledger::on_committed`]).
pub type Committed = Box<dyn FnOnce() + Send>;

/// Sees each batch of rows on the writer thread, before it is written.
pub type LedgerTap = Box<dyn Fn(&[UsageRecord]) + Send + Sync>;

/// The asynchronous ledger writer.
pub struct Ledger {
    tap: Arc<std::sync::OnceLock<LedgerTap>>,
    tx: Sender<Msg>,
    depth: Arc<AtomicU64>,
    closing: Arc<AtomicBool>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").field("queue_depth", &self.queue_depth()).finish()
    }
}

impl Ledger {
    /// Starts the writer thread.
    pub fn open(store: Arc<dyn Store>) -> Ledger {
        Self::open_with(store, LedgerOptions::default())
    }

    pub fn open_with(store: Arc<dyn Store>, options: LedgerOptions) -> Ledger {
        let (tx, rx) = mpsc::channel();
        let depth = Arc::new(AtomicU64::new(0));
        let closing = Arc::new(AtomicBool::new(false));
        let tap = Arc::new(std::sync::OnceLock::new());
        let writer = Writer {
            store,
            rx,
            depth: Arc::clone(&depth),
            closing: Arc::clone(&closing),
            options,
            tap: Arc::clone(&tap),
        };
        let handle = std::thread::spawn(move || writer.run());
        Ledger { tap, tx, depth, closing, writer: Mutex::new(Some(handle)) }
    }

    /// Installs the tap (once; false if one was already set).
    pub fn set_tap(&self, tap: LedgerTap) -> bool {
        self.tap.set(tap).is_ok()
    }

    /// Queues a row. Never blocks; after [`Ledger::close`] the row cannot be
    /// written and that is logged as an error.
    ///
    /// A row without an `id` gets one here (so nothing is stored without
    /// one), and a `request_id` longer than [`MAX_REQUEST_ID_BYTES`] is cut:
    /// this is the one place every row passes, the tap included.
    pub fn append(&self, mut record: UsageRecord) {
        record.prepare();
        self.depth.fetch_add(1, Ordering::Relaxed);
        if let Err(mpsc::SendError(Msg::Row(row))) = self.tx.send(Msg::Row(Box::new(record))) {
            self.depth.fetch_sub(1, Ordering::Relaxed);
            tracing::error!(id = %row.id, request_id = %row.request_id, "usage row appended after the ledger closed; not recorded");
        }
    }

    /// Calls `then` once every row appended before this call is committed
    /// (at once if the writer is gone). Never blocks: a request can answer
    /// its client only after its row is durable, without a thread waiting.
    pub fn on_committed(&self, then: Committed) {
        if let Err(mpsc::SendError(Msg::Notify(then))) = self.tx.send(Msg::Notify(then)) {
            then();
        }
    }

    /// Rows appended but not yet committed.
    pub fn queue_depth(&self) -> u64 {
        self.depth.load(Ordering::Relaxed)
    }

    /// Blocks until every row appended before this call is committed.
    pub fn flush(&self) {
        let (reply, done) = mpsc::sync_channel(1);
        if self.tx.send(Msg::Flush(reply)).is_ok() {
            // An error means the writer is gone (closed): nothing left to wait for.
            let _ = done.recv();
        }
    }

    /// Flushes and stops the writer; later appends are refused. Idempotent.
    pub fn close(&self) {
        let Some(handle) = self.writer.lock().take() else {
            return;
        };
        self.closing.store(true, Ordering::SeqCst);
        let (reply, done) = mpsc::sync_channel(1);
        if self.tx.send(Msg::Close(reply)).is_ok() {
            let _ = done.recv();
        }
        if handle.join().is_err() {
            tracing::error!("the ledger writer thread panicked");
        }
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        self.close();
    }
}

struct Writer {
    store: Arc<dyn Store>,
    rx: Receiver<Msg>,
    depth: Arc<AtomicU64>,
    closing: Arc<AtomicBool>,
    options: LedgerOptions,
    tap: Arc<std::sync::OnceLock<LedgerTap>>,
}

impl Writer {
    fn run(self) {
        let mut batch: Vec<UsageRecord> = Vec::with_capacity(self.options.max_batch);
        loop {
            // Block for the first message, then take whatever else is already queued.
            let Ok(first) = self.rx.recv() else {
                self.commit(&mut batch);
                return;
            };
            if matches!(first, Msg::Row(_)) && !self.options.linger.is_zero() {
                std::thread::sleep(self.options.linger);
            }
            let mut next = Some(first);
            let mut notify: Vec<Committed> = Vec::new();
            let mut reply = None;
            let mut stop = false;
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Row(row) => batch.push(*row),
                    Msg::Flush(r) => reply = Some(r),
                    Msg::Notify(then) => notify.push(then),
                    Msg::Close(r) => {
                        reply = Some(r);
                        stop = true;
                    }
                }
                if reply.is_some() || batch.len() >= self.options.max_batch {
                    break;
                }
                next = self.rx.try_recv().ok();
            }
            if stop {
                // Rows that raced with close are still in the queue; write them too.
                while let Ok(msg) = self.rx.try_recv() {
                    match msg {
                        Msg::Row(row) => batch.push(*row),
                        Msg::Notify(then) => notify.push(then),
                        Msg::Flush(_) | Msg::Close(_) => {}
                    }
                }
            }
            self.commit(&mut batch);
            for then in notify {
                then();
            }
            if let Some(r) = reply {
                let _ = r.send(());
            }
            if stop {
                return;
            }
        }
    }

    /// Writes the batch, retrying until it is committed (or, once closing, gives up loudly).
    fn commit(&self, batch: &mut Vec<UsageRecord>) {
        if batch.is_empty() {
            return;
        }
        if let Some(tap) = self.tap.get() {
            tap(batch);
        }
        let mut backoff = self.options.initial_backoff;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            match self.store.append_usage(batch) {
                Ok(_) => break,
                Err(e) => {
                    if self.closing.load(Ordering::SeqCst) && attempt >= self.options.attempts_when_closing {
                        tracing::error!(error = %e, rows = batch.len(), attempt, "ledger closing: usage rows could not be written and are lost");
                        break;
                    }
                    tracing::warn!(error = %e, rows = batch.len(), attempt, retry_in_ms = backoff.as_millis() as u64, "usage ledger write failed; retrying");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(self.options.max_backoff);
                }
            }
        }
        self.depth.fetch_sub(batch.len() as u64, Ordering::Relaxed);
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;
    use crate::store::{GroupBy, StoreError, UsageAggregate};
    use crate::{BudgetSpec, KeyRecord, PoolId, Team};

    pub(crate) fn row(id: &str, ts: i64) -> UsageRecord {
        UsageRecord {
            ts_ms: ts,
            request_id: id.to_string(),
            key_id: Some("key_a".into()),
            model: "gpt-4o".into(),
            prompt_tokens: 10,
            completion_tokens: 5,
            cost_nanos: Some(100),
            status: 200,
            route: "chat".into(),
            ..UsageRecord::default()
        }
    }

    #[test]
    fn row_ids_are_unique_uuid_v7_and_sort_by_time() {
        let t = 1_717_200_000_000;
        let ids: Vec<String> = (0..1_000).map(|i| UsageRecord::new_id(t + i / 100)).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "strictly increasing, as strings");
        for id in &ids {
            let uuid = Uuid::parse_str(id).unwrap();
            assert_eq!((uuid.get_version_num(), id.len()), (7, 36));
        }
        // Made later (at a later time) sorts later.
        let (earlier, later) = (UsageRecord::new_id(t), UsageRecord::new_id(t + 60_000));
        assert!(earlier < later);
    }

    #[test]
    fn append_gives_an_id_and_caps_the_request_id_on_a_char_boundary() {
        let store = Arc::new(MemoryStore::new());
        let ledger = Ledger::open(store.clone());
        // 2-byte characters: 128 bytes is a boundary; 'a' + 'é's puts one mid-character.
        ledger.append(UsageRecord { request_id: "é".repeat(100), ..row("", 1) });
        ledger.append(UsageRecord { request_id: format!("a{}", "é".repeat(100)), ..row("", 2) });
        let kept = UsageRecord { id: "chosen".into(), request_id: "x".repeat(MAX_REQUEST_ID_BYTES), ..row("", 3) };
        ledger.append(kept.clone());
        ledger.flush();
        let mut rows = Vec::new();
        store.usage_rows(i64::MIN, i64::MAX, &mut |r| rows.push(r.clone())).unwrap();
        assert_eq!(rows[0].request_id, "é".repeat(64));
        assert_eq!(rows[1].request_id, format!("a{}", "é".repeat(63)), "127 bytes: 128 would split a character");
        assert_eq!(rows[2], kept, "an id and a request id that fit are left alone");
        assert!(rows[..2].iter().all(|r| r.id.len() == 36) && rows[0].id != rows[1].id);
        ledger.close();
    }

    #[test]
    fn on_committed_runs_only_once_the_rows_before_it_are_stored_and_many_share_a_commit() {
        let store = Arc::new(MemoryStore::new());
        let ledger = Ledger::open(store.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        for i in 0..50 {
            ledger.append(row(&format!("r{i}"), i));
            let (store, tx) = (store.clone(), tx.clone());
            // Each waiter sees its own row (and every earlier one) stored.
            ledger.on_committed(Box::new(move || {
                let mut n = 0;
                store.usage_rows(i64::MIN, i64::MAX, &mut |_| n += 1).unwrap();
                let _ = tx.send((i, n));
            }));
        }
        for _ in 0..50 {
            let (i, stored) = rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
            assert!(stored > i as usize, "waiter {i} ran with {stored} rows stored");
        }
        ledger.close();
        // After close, a waiter is not left hanging.
        let (tx, rx) = std::sync::mpsc::channel();
        ledger.on_committed(Box::new(move || tx.send(()).unwrap()));
        rx.recv_timeout(std::time::Duration::from_secs(1)).unwrap();
    }

    #[test]
    fn appends_from_many_threads_are_all_committed_by_flush() {
        let store = Arc::new(MemoryStore::new());
        let ledger = Arc::new(Ledger::open(store.clone()));
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let ledger = Arc::clone(&ledger);
                std::thread::spawn(move || {
                    for i in 0..500 {
                        ledger.append(row(&format!("{t}-{i}"), i));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        ledger.flush();
        assert_eq!(store.usage_len(), 4000);
        assert_eq!(ledger.queue_depth(), 0);
        ledger.close();
        ledger.close();
        ledger.flush(); // after close: returns at once
        ledger.append(row("late", 0)); // logged, not recorded, no panic
        assert_eq!(store.usage_len(), 4000);
    }

    /// A store that fails its first `n` writes.
    struct Flaky {
        inner: MemoryStore,
        failures: Mutex<u32>,
        calls: AtomicU64,
    }

    impl Store for Flaky {
        fn put_key(&self, k: &KeyRecord) -> Result<(), StoreError> {
            self.inner.put_key(k)
        }
        fn delete_key(&self, id: &str) -> Result<bool, StoreError> {
            self.inner.delete_key(id)
        }
        fn load_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
            self.inner.load_keys()
        }
        fn put_team(&self, t: &Team) -> Result<(), StoreError> {
            self.inner.put_team(t)
        }
        fn delete_team(&self, name: &str) -> Result<bool, StoreError> {
            self.inner.delete_team(name)
        }
        fn load_teams(&self) -> Result<Vec<Team>, StoreError> {
            self.inner.load_teams()
        }
        fn put_budget(&self, pool: &PoolId, spec: Option<&BudgetSpec>) -> Result<(), StoreError> {
            self.inner.put_budget(pool, spec)
        }
        fn load_budgets(&self) -> Result<Vec<(PoolId, BudgetSpec)>, StoreError> {
            self.inner.load_budgets()
        }
        fn append_usage(&self, rows: &[UsageRecord]) -> Result<usize, StoreError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let mut failures = self.failures.lock();
            if *failures > 0 {
                *failures -= 1;
                // Half the failures happen after the rows were in fact written:
                // the retry must not count them twice.
                if (*failures).is_multiple_of(2) {
                    self.inner.append_usage(rows)?;
                }
                return Err(StoreError::Corrupt("disk on fire".into()));
            }
            self.inner.append_usage(rows)
        }
        fn usage_totals(&self, pool: &PoolId, from_ms: i64) -> Result<(u64, u64), StoreError> {
            self.inner.usage_totals(pool, from_ms)
        }
        fn usage_aggregate(&self, g: GroupBy, from: i64, to: i64) -> Result<Vec<UsageAggregate>, StoreError> {
            self.inner.usage_aggregate(g, from, to)
        }
        fn put_response(&self, r: &crate::StoredResponse) -> Result<(), StoreError> {
            self.inner.put_response(r)
        }
        fn get_response(&self, id: &str) -> Result<Option<crate::StoredResponse>, StoreError> {
            self.inner.get_response(id)
        }
        fn delete_response(&self, id: &str) -> Result<bool, StoreError> {
            self.inner.delete_response(id)
        }
        fn prune_responses(&self, before_ms: i64) -> Result<usize, StoreError> {
            self.inner.prune_responses(before_ms)
        }
        fn usage_rows(&self, from: i64, to: i64, visit: &mut dyn FnMut(&UsageRecord)) -> Result<(), StoreError> {
            self.inner.usage_rows(from, to, visit)
        }
    }

    fn fast() -> LedgerOptions {
        LedgerOptions {
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            attempts_when_closing: 3,
            ..LedgerOptions::default()
        }
    }

    #[test]
    fn failed_writes_are_retried_without_double_counting() {
        let store = Arc::new(Flaky { inner: MemoryStore::new(), failures: Mutex::new(4), calls: AtomicU64::new(0) });
        let ledger = Ledger::open_with(store.clone(), fast());
        for i in 0..10 {
            ledger.append(row(&format!("r{i}"), i));
        }
        ledger.flush();
        assert_eq!(store.inner.usage_len(), 10);
        assert!(store.calls.load(Ordering::SeqCst) >= 5);
        assert_eq!(store.inner.usage_totals(&PoolId::Global, 0).unwrap(), (150, 1000));
        ledger.close();
    }

    #[test]
    fn close_gives_up_on_a_dead_store_instead_of_hanging() {
        let store =
            Arc::new(Flaky { inner: MemoryStore::new(), failures: Mutex::new(u32::MAX), calls: AtomicU64::new(0) });
        let ledger = Ledger::open_with(store.clone(), fast());
        ledger.close(); // nothing queued: returns
        let ledger = Ledger::open_with(store.clone(), fast());
        ledger.closing.store(true, Ordering::SeqCst);
        ledger.append(row("doomed", 0));
        ledger.close();
        assert_eq!(ledger.queue_depth(), 0);
    }

    #[test]
    fn batches_are_bounded() {
        let store = Arc::new(Flaky { inner: MemoryStore::new(), failures: Mutex::new(0), calls: AtomicU64::new(0) });
        let ledger = Ledger::open_with(store.clone(), LedgerOptions { max_batch: 10, ..fast() });
        for i in 0..95 {
            ledger.append(row(&format!("r{i}"), i));
        }
        ledger.close();
        assert_eq!(store.inner.usage_len(), 95);
        assert!(store.calls.load(Ordering::SeqCst) >= 10, "95 rows in batches of at most 10");
    }
}
