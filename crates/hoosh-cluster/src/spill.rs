//! A spill file: what PostgreSQL could not take — ledger rows, audit
//! entries — one JSON item per line, appended and synced before the writer
//! is told it was taken. Replayed oldest first and emptied once all of it
//! is committed; a line torn by a crash mid-write (no newline) is dropped
//! on reading — its batch was never acknowledged.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Weak;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Debug)]
pub struct Spill<T> {
    path: PathBuf,
    file: File,
    /// Items in the file.
    rows: usize,
    items: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> Spill<T> {
    /// Opens (creating, mode 0600) the file at `path`, counting what an
    /// earlier run left; `what` names the items in the log.
    pub fn open(path: &Path, what: &str) -> std::io::Result<Spill<T>> {
        if let Some(dir) = path.parent() {
            hoosh_governance::ensure_private_dir(dir).map_err(std::io::Error::other)?;
        }
        let mut options = OpenOptions::new();
        options.create(true).read(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path).map_err(|e| io_at(path, e))?;
        // Cut a torn last line, so the next append starts a line of its own.
        let bytes = std::fs::read(path).map_err(|e| io_at(path, e))?;
        if bytes.last().is_some_and(|b| *b != b'\n') {
            let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            file.set_len(whole as u64).map_err(|e| io_at(path, e))?;
        }
        let mut spill = Spill { path: path.to_path_buf(), file, rows: 0, items: PhantomData };
        spill.rows = spill.read()?.len();
        if spill.rows > 0 {
            tracing::warn!(items = spill.rows, what, path = %path.display(), "left in a spill file; replaying");
        }
        Ok(spill)
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends `rows` and syncs them to disk.
    pub fn append(&mut self, rows: &[T]) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(rows.len() * 256);
        for row in rows {
            serde_json::to_writer(&mut buf, row)?;
            buf.push(b'\n');
        }
        let before = self.file.metadata().map_err(|e| io_at(&self.path, e))?.len();
        let written = self.file.write_all(&buf).and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // No half line may stay in the middle of the file (a full disk):
            // back to where this append began, so a retry starts clean.
            let _ = self.file.set_len(before);
            return Err(io_at(&self.path, e));
        }
        self.rows += rows.len();
        Ok(())
    }

    /// Every whole item in the file, oldest first.
    pub fn read(&self) -> std::io::Result<Vec<T>> {
        let file = File::open(&self.path).map_err(|e| io_at(&self.path, e))?;
        let mut rows = Vec::new();
        let mut reader = BufReader::new(file);
        let mut line = String::new();
        loop {
            line.clear();
            let n = reader.read_line(&mut line).map_err(|e| io_at(&self.path, e))?;
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            rows.push(serde_json::from_str(line.trim_end())?);
        }
        Ok(rows)
    }

    /// Empties the file (after its rows were committed elsewhere).
    pub fn clear(&mut self) -> std::io::Result<()> {
        self.file.set_len(0).map_err(|e| io_at(&self.path, e))?;
        self.file.sync_data().map_err(|e| io_at(&self.path, e))?;
        self.rows = 0;
        Ok(())
    }
}

/// Starts a thread that calls `replay` on `owner` every second while it
/// lives (its spill is replayed even when nothing new is written); it ends
/// by itself once the owner is dropped.
pub fn spawn_idle_replay<S: Send + Sync + 'static>(name: &str, owner: Weak<S>, replay: fn(&S)) -> std::io::Result<()> {
    std::thread::Builder::new().name(name.into()).spawn(move || {
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let Some(owner) = owner.upgrade() else { return };
            replay(&owner);
        }
    })?;
    Ok(())
}

fn io_at(path: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoosh_governance::UsageRecord;

    fn row(id: &str) -> UsageRecord {
        UsageRecord { id: id.into(), model: "m".into(), prompt_tokens: 3, ..UsageRecord::default() }
    }

    #[test]
    fn rows_survive_a_reopen_in_order_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spill.jsonl");
        let mut spill: Spill<UsageRecord> = Spill::open(&path, "rows").unwrap();
        spill.append(&[row("a"), row("b")]).unwrap();
        spill.append(&[row("c")]).unwrap();
        drop(spill);
        // A crash mid-append leaves half a line.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"id\":\"d\",\"mod").unwrap();
        let mut spill: Spill<UsageRecord> = Spill::open(&path, "rows").unwrap();
        let ids: Vec<String> = spill.read().unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(spill.len(), 3);
        spill.append(&[row("e")]).unwrap();
        let ids: Vec<String> = spill.read().unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["a", "b", "c", "e"]);
        spill.clear().unwrap();
        assert!(spill.read().unwrap().is_empty());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
