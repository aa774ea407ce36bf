//! [`AuditLog`]: the chain's single writer, on its own thread.
//!
//! [`AuditLog::record`] only pushes a [`Draft`] onto a channel, so a request
//! never waits on the disk or on other callers, and it never drops a draft.
//! The backlog is bounded by refusing work upstream instead: once
//! [`AuditLog::queue_depth`] reaches [`AuditOptions::max_backlog`],
//! [`AuditLog::overloaded`] is true and the gateway answers new requests 503
//! with `Retry-After` before they can record anything, until the writer has
//! caught up. What is already in flight still records, so the depth can pass
//! the bound by at most what the requests admitted before it record.
//!
//! The writer thread is never blocked on the channel: it polls every
//! [`AuditOptions::poll_interval`], so
//! a `record` never pays for waking it (a futex wake and a context switch,
//! measured at ~5 µs per event when it did). Control calls (flush, rotate,
//! prune, close) unpark it at once. Each poll stamps the time, seals
//! (assigning seq, so concurrent callers need no lock) and appends whatever
//! is queued — up to a batch — in one transaction. A failed append is retried with backoff; if a commit
//! reported an error but did land, the stored head shows it and it is not
//! written twice.
//!
//! Opening resumes from the stored head, so after a crash (kill -9) the chain
//! continues from the last durable entry, and writes `chain.start`.
//! [`AuditLog::close`] writes `chain.stop` and a checkpoint, flushes, and
//! joins the thread; dropping the log closes it. Rotation and pruning travel
//! down the same FIFO channel, so they take effect exactly between the drafts
//! recorded before and after them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::chain::{ChainState, seal};
use crate::chain_store::{Appended, ChainStore, Origin};
use crate::checkpoint::Checkpoint;
use crate::entry::{Draft, Entry, kinds};
use crate::key::AuditKey;
use crate::prune::PruneRecord;
use crate::store::StoreError;

/// The time source, unix ms. Tests pass a counter; production [`system_clock`].
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Wall-clock unix ms.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    })
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the audit log is closed")]
    Closed,
}

/// Writer tuning; the defaults suit production, tests shorten the backoff.
#[derive(Debug, Clone, Copy)]
pub struct AuditOptions {
    /// Entries per transaction at most.
    pub max_batch: usize,
    /// How often the writer looks for queued drafts: the most an entry waits
    /// before its commit starts.
    pub poll_interval: Duration,
    /// A checkpoint after every this many entries (and on close); 0 = only on close.
    pub checkpoint_every: u64,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Once closing, failed attempts before the remaining entries are given up (loudly).
    pub attempts_when_closing: u32,
    /// Queued drafts at which [`AuditLog::overloaded`] turns true (the
    /// gateway then refuses new requests until the writer catches up).
    pub max_backlog: u64,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            max_batch: 1000,
            poll_interval: Duration::from_millis(20),
            checkpoint_every: 1000,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            attempts_when_closing: 5,
            max_backlog: 10_000,
        }
    }
}

type Reply<T> = SyncSender<Result<T, StoreError>>;

enum Msg {
    Record(Box<Draft>),
    Flush(SyncSender<()>),
    Rotate(Box<AuditKey>, Reply<()>),
    Prune(i64, Reply<Option<PruneRecord>>),
    Checkpoint(Reply<Option<Checkpoint>>),
    Close(SyncSender<()>),
    /// Call once everything recorded before it is committed (many per batch).
    Notify(Box<dyn FnOnce() + Send>),
    /// Tests: stop without `chain.stop` or a checkpoint, as a crash would.
    #[cfg(test)]
    Abandon(SyncSender<()>),
}

/// The asynchronous audit writer. Cheap to share behind an `Arc`.
pub struct AuditLog {
    tx: Sender<Msg>,
    depth: Arc<AtomicU64>,
    max_backlog: u64,
    store: Arc<dyn ChainStore>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The writer thread, to unpark for control messages.
    thread: std::thread::Thread,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").field("queue_depth", &self.queue_depth()).finish()
    }
}

impl AuditLog {
    /// Resumes the chain in `store` (or starts one), records `chain.start`, starts the writer.
    ///
    /// When the stored chain ends under another key than `key` (see
    /// [`crate::epoch`]), the first entry is a `chain.key_changed` signed by
    /// `key`: without the old key there is no signed rotation. Open with the
    /// old key and [`AuditLog::rotate`] to hand over properly.
    pub fn open(store: Arc<dyn ChainStore>, key: AuditKey, now: Clock) -> Result<AuditLog, LogError> {
        Self::open_with(store, key, now, AuditOptions::default())
    }

    pub fn open_with(
        store: Arc<dyn ChainStore>,
        key: AuditKey,
        now: Clock,
        options: AuditOptions,
    ) -> Result<AuditLog, LogError> {
        let head = store.head()?;
        let state = head.as_ref().map_or_else(ChainState::genesis, ChainState::after);
        let last_checkpoint = store.latest_checkpoint().ok().flatten().map_or(0, |c| c.seq);
        let resumed_from = head.as_ref().map_or(0, |h| h.seq);
        let previous_key = head.as_ref().map(|h| crate::epoch::key_after(h).to_owned()).filter(|id| id != key.id());
        tracing::debug!(resumed_from, key_id = key.id(), "audit chain opened");
        let (tx, rx) = mpsc::channel();
        let depth = Arc::new(AtomicU64::new(0));
        let mut writer = Writer {
            store: Arc::clone(&store),
            rx,
            key,
            now,
            state,
            chain_head: head.is_some().then_some(state),
            origin: Origin { writer: writer_id()?, first: 0 },
            batch: Vec::with_capacity(options.max_batch),
            batch_records: 0,
            depth: Arc::clone(&depth),
            options,
            closing: false,
            lost: false,
            last_checkpoint,
        };
        if let Some(previous) = previous_key {
            tracing::warn!(
                previous_key_id = %previous,
                key_id = writer.key.id(),
                "audit: the stored chain ends under another key and no signed rotation is possible without it; \
                 recording an unsigned key change"
            );
            writer.seal_into_batch(
                Draft::new(kinds::CHAIN_KEY_CHANGED)
                    .field(crate::epoch::PREVIOUS_KEY_ID, previous)
                    .field(crate::epoch::NEW_KEY_ID, writer.key.id()),
            );
        }
        let start = Draft::new(kinds::CHAIN_START).field("resumed_from_seq", resumed_from);
        writer.seal_into_batch(start);
        let handle = std::thread::Builder::new()
            .name("hoosh-audit".into())
            .spawn(move || writer.run())
            .map_err(StoreError::Io)?;
        let thread = handle.thread().clone();
        Ok(AuditLog { tx, depth, max_backlog: options.max_backlog, store, writer: Mutex::new(Some(handle)), thread })
    }

    /// Queues an event. Never blocks and never wakes the writer; after [`AuditLog::close`] the event
    /// cannot be written and that is logged as an error.
    pub fn record(&self, draft: Draft) {
        self.depth.fetch_add(1, Ordering::Relaxed);
        if let Err(mpsc::SendError(Msg::Record(draft))) = self.tx.send(Msg::Record(Box::new(draft))) {
            self.depth.fetch_sub(1, Ordering::Relaxed);
            tracing::error!(kind = %draft.kind, "audit event recorded after the audit log closed; not written");
        }
    }

    /// Wakes the writer to commit what is queued now rather than at its
    /// next poll (for a caller about to wait on [`AuditLog::on_committed`]).
    pub fn wake(&self) {
        self.thread.unpark();
    }

    /// Drafts recorded but not yet committed.
    pub fn queue_depth(&self) -> u64 {
        self.depth.load(Ordering::Relaxed)
    }

    /// [`AuditOptions::max_backlog`].
    pub fn max_backlog(&self) -> u64 {
        self.max_backlog
    }

    /// The backlog has reached [`AuditOptions::max_backlog`]: refuse new work
    /// that would record (the queue never drops a draft, so this is the bound).
    pub fn overloaded(&self) -> bool {
        self.queue_depth() >= self.max_backlog
    }

    /// Blocks until everything recorded before this call is committed.
    pub fn flush(&self) {
        let (reply, done) = mpsc::sync_channel(1);
        if self.send_now(Msg::Flush(reply)) {
            // An error means the writer is gone (closed): nothing left to wait for.
            let _ = done.recv();
        }
    }

    /// Writes a `chain.rotate` entry signed by the current key, naming
    /// `new_key`'s id; every later entry is signed by `new_key`. Returns once
    /// the rotate entry is committed.
    pub fn rotate(&self, new_key: AuditKey) -> Result<(), LogError> {
        self.ask(|reply| Msg::Rotate(Box::new(new_key), reply))
    }

    /// Deletes the entries sealed before `ts_ms`, after appending a signed
    /// `chain.prune` record (same transaction). `None` when nothing was that old.
    pub fn prune_before(&self, ts_ms: i64) -> Result<Option<PruneRecord>, LogError> {
        self.ask(|reply| Msg::Prune(ts_ms, reply))
    }

    /// Commits everything recorded before this call, then signs, stores and
    /// returns a checkpoint of the head as it is now (`None` for an empty
    /// chain, or after entries were lost). The one to ship off the host.
    pub fn checkpoint_now(&self) -> Result<Option<Checkpoint>, LogError> {
        self.ask(Msg::Checkpoint)
    }

    /// The latest checkpoint as JSON, to keep outside the store.
    pub fn export_checkpoint(&self) -> Result<Option<String>, LogError> {
        Ok(self.store.latest_checkpoint()?.map(|c| c.to_json()))
    }

    /// The store this log writes.
    pub fn store(&self) -> &Arc<dyn ChainStore> {
        &self.store
    }

    /// Sends a control message and wakes the writer for it.
    /// Calls `then` once every draft recorded before this call is committed
    /// (at once if the writer is gone). Never blocks; wakes the writer, so
    /// the wait is one commit, not a poll interval.
    pub fn on_committed(&self, then: Box<dyn FnOnce() + Send>) {
        match self.tx.send(Msg::Notify(then)) {
            Ok(()) => self.thread.unpark(),
            Err(mpsc::SendError(Msg::Notify(then))) => then(),
            Err(_) => {}
        }
    }

    fn send_now(&self, msg: Msg) -> bool {
        let sent = self.tx.send(msg).is_ok();
        self.thread.unpark();
        sent
    }

    fn ask<T>(&self, msg: impl FnOnce(Reply<T>) -> Msg) -> Result<T, LogError> {
        let (reply, done) = mpsc::sync_channel(1);
        if !self.send_now(msg(reply)) {
            return Err(LogError::Closed);
        }
        done.recv().map_err(|_| LogError::Closed)?.map_err(LogError::Store)
    }

    /// Writes `chain.stop` and a checkpoint, flushes, stops the writer. Idempotent.
    pub fn close(&self) {
        self.stop(Msg::Close);
    }

    /// Stops the writer as a crash would: no `chain.stop`, no checkpoint,
    /// queued drafts dropped.
    #[cfg(test)]
    pub(crate) fn abandon(&self) {
        self.stop(Msg::Abandon);
    }

    fn stop(&self, msg: impl FnOnce(SyncSender<()>) -> Msg) {
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(handle) = handle else { return };
        let (reply, done) = mpsc::sync_channel(1);
        if self.send_now(msg(reply)) {
            let _ = done.recv();
        }
        if handle.join().is_err() {
            tracing::error!("the audit writer thread panicked");
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.close();
    }
}

struct Writer {
    store: Arc<dyn ChainStore>,
    rx: Receiver<Msg>,
    key: AuditKey,
    now: Clock,
    /// The head the next entry is sealed after: the chain's, as far as this
    /// writer knows (a shared store moves a batch behind a newer one).
    state: ChainState,
    /// The chain's head as last committed through this writer, for
    /// checkpoints; `None` while its entries wait aside (shared store down).
    chain_head: Option<ChainState>,
    /// This writer, and how many entries it has handed to the store.
    origin: Origin,
    /// Sealed, not yet committed.
    batch: Vec<Entry>,
    /// How many of `batch` came from `record` (the rest are chain entries).
    batch_records: u64,
    depth: Arc<AtomicU64>,
    options: AuditOptions,
    closing: bool,
    /// Entries were given up: the in-memory head is not durable, so no checkpoint of it.
    lost: bool,
    last_checkpoint: u64,
}

impl Writer {
    fn run(mut self) {
        // chain.start, sealed in `open`: durable without waiting for the first event.
        self.commit();
        loop {
            let first = match self.rx.try_recv() {
                Ok(msg) => msg,
                Err(mpsc::TryRecvError::Empty) => {
                    std::thread::park_timeout(self.options.poll_interval);
                    continue;
                }
                Err(mpsc::TryRecvError::Disconnected) => {
                    // Every handle is gone without close: commit what we have.
                    self.commit();
                    return;
                }
            };
            let mut next = Some(first);
            let mut notify: Vec<Box<dyn FnOnce() + Send>> = Vec::new();
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Notify(then) => notify.push(then),
                    Msg::Record(draft) => {
                        self.seal_into_batch(*draft);
                        self.batch_records += 1;
                    }
                    Msg::Flush(reply) => {
                        self.commit();
                        let _ = reply.send(());
                    }
                    Msg::Rotate(key, reply) => {
                        let _ = reply.send(self.rotate(*key));
                    }
                    Msg::Prune(ts, reply) => {
                        let _ = reply.send(self.prune(ts));
                    }
                    Msg::Checkpoint(reply) => {
                        self.commit();
                        let _ = reply.send(self.checkpoint(true));
                    }
                    Msg::Close(reply) => {
                        self.close();
                        notify.into_iter().for_each(|then| then());
                        let _ = reply.send(());
                        return;
                    }
                    #[cfg(test)]
                    Msg::Abandon(reply) => {
                        let _ = reply.send(());
                        return;
                    }
                }
                if self.batch.len() >= self.options.max_batch {
                    break;
                }
                next = self.rx.try_recv().ok();
            }
            self.commit();
            notify.into_iter().for_each(|then| then());
        }
    }

    fn seal_into_batch(&mut self, draft: Draft) {
        let entry = seal(&mut self.state, draft, (self.now)(), &self.key);
        self.batch.push(entry);
    }

    fn rotate(&mut self, new_key: AuditKey) -> Result<(), StoreError> {
        let draft = Draft::new(kinds::CHAIN_ROTATE).field(crate::epoch::NEW_KEY_ID, new_key.id());
        self.seal_into_batch(draft);
        self.commit();
        tracing::info!(old = self.key.id(), new = new_key.id(), "audit key rotated");
        self.key = new_key;
        Ok(())
    }

    fn prune(&mut self, ts_ms: i64) -> Result<Option<PruneRecord>, StoreError> {
        self.commit();
        let Some((record, head)) = self.store.prune_before(ts_ms, &self.key, (self.now)(), self.state)? else {
            return Ok(None);
        };
        tracing::info!(first_kept_seq = record.first_kept_seq, "audit chain pruned");
        self.state = head;
        self.chain_head = Some(head);
        Ok(Some(record))
    }

    fn close(&mut self) {
        self.closing = true;
        // Drafts that raced with close are still queued: they go before chain.stop.
        while let Ok(msg) = self.rx.try_recv() {
            if let Msg::Record(draft) = msg {
                self.seal_into_batch(*draft);
                self.batch_records += 1;
            }
        }
        self.seal_into_batch(Draft::new(kinds::CHAIN_STOP));
        self.commit();
        if let Err(e) = self.checkpoint(false) {
            tracing::warn!(error = %e, "audit checkpoint at close failed");
        }
    }

    /// Appends the batch, retrying until it is committed (or, once closing, gives up loudly).
    fn commit(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let mut backoff = self.options.initial_backoff;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let e = match self.store.append(&mut self.batch, self.origin, &self.key) {
                Ok(Appended::InChain(head)) => {
                    self.state = head;
                    self.chain_head = Some(head);
                    break;
                }
                Ok(Appended::Aside) => {
                    self.chain_head = None;
                    break;
                }
                Err(e) => e,
            };
            if self.closing && attempt >= self.options.attempts_when_closing {
                tracing::error!(error = %e, entries = self.batch.len(), attempt, "audit log closing: entries could not be written and are lost");
                self.lost = true;
                break;
            }
            tracing::warn!(error = %e, entries = self.batch.len(), attempt, retry_in_ms = backoff.as_millis() as u64, "audit write failed; retrying");
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(self.options.max_backoff);
        }
        self.origin.first += self.batch.len() as u64;
        self.depth.fetch_sub(self.batch_records, Ordering::Relaxed);
        self.batch.clear();
        self.batch_records = 0;
        let every = self.options.checkpoint_every;
        if every > 0
            && self
                .chain_head
                .is_some_and(|h| h.next_seq.saturating_sub(1).saturating_sub(self.last_checkpoint) >= every)
            && let Err(e) = self.checkpoint(false)
        {
            tracing::warn!(error = %e, "audit checkpoint write failed; next batch retries");
        }
    }

    /// Signs and stores a checkpoint of the chain's head with the key in
    /// force (the new one right after a rotation). Unless `fresh`, not again
    /// for a head already checkpointed; none while entries wait aside.
    fn checkpoint(&mut self, fresh: bool) -> Result<Option<Checkpoint>, StoreError> {
        let Some(head) = self.chain_head else { return Ok(None) };
        let head_seq = head.next_seq.saturating_sub(1);
        if head_seq == 0 || self.lost || (!fresh && head_seq == self.last_checkpoint) {
            return Ok(None);
        }
        let cp = Checkpoint::sign(head_seq, head.head_hash, (self.now)(), &self.key);
        self.store.put_checkpoint(&cp)?;
        self.last_checkpoint = head_seq;
        Ok(Some(cp))
    }
}

/// A random id for this writer's batches (see [`Origin`]).
fn writer_id() -> Result<u64, LogError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))?;
    Ok(u64::from_le_bytes(bytes) >> 1)
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
