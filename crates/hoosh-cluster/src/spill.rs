//! The spill file: ledger rows PostgreSQL could not take, one JSON row per
//! line, appended and synced before the writer is told they were taken.
//! Replayed oldest first and emptied once all of it is committed; a line
//! torn by a crash mid-write (no newline) is dropped on reading — its
//! batch was never acknowledged.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use hoosh_governance::{StoreError, UsageRecord};

#[derive(Debug)]
pub struct Spill {
    path: PathBuf,
    file: File,
    /// Rows in the file.
    rows: usize,
}

impl Spill {
    /// Opens (creating, mode 0600) the file at `path`, counting what an earlier run left.
    pub fn open(path: &Path) -> Result<Spill, StoreError> {
        if let Some(dir) = path.parent() {
            hoosh_governance::ensure_private_dir(dir)?;
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
        let mut spill = Spill { path: path.to_path_buf(), file, rows: 0 };
        spill.rows = spill.read()?.len();
        if spill.rows > 0 {
            tracing::warn!(rows = spill.rows, path = %path.display(), "ledger rows left in the spill file; replaying");
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
    pub fn append(&mut self, rows: &[UsageRecord]) -> Result<(), StoreError> {
        let mut buf = Vec::with_capacity(rows.len() * 256);
        for row in rows {
            serde_json::to_writer(&mut buf, row)?;
            buf.push(b'\n');
        }
        self.file.write_all(&buf).map_err(|e| io_at(&self.path, e))?;
        self.file.sync_data().map_err(|e| io_at(&self.path, e))?;
        self.rows += rows.len();
        Ok(())
    }

    /// Every whole row in the file, oldest first.
    pub fn read(&self) -> Result<Vec<UsageRecord>, StoreError> {
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
    pub fn clear(&mut self) -> Result<(), StoreError> {
        self.file.set_len(0).map_err(|e| io_at(&self.path, e))?;
        self.file.sync_data().map_err(|e| io_at(&self.path, e))?;
        self.rows = 0;
        Ok(())
    }
}

fn io_at(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Io(std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> UsageRecord {
        UsageRecord { id: id.into(), model: "m".into(), prompt_tokens: 3, ..UsageRecord::default() }
    }

    #[test]
    fn rows_survive_a_reopen_in_order_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spill.jsonl");
        let mut spill = Spill::open(&path).unwrap();
        spill.append(&[row("a"), row("b")]).unwrap();
        spill.append(&[row("c")]).unwrap();
        drop(spill);
        // A crash mid-append leaves half a line.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"id\":\"d\",\"mod").unwrap();
        let mut spill = Spill::open(&path).unwrap();
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
