//! Owner-only files: the data directory is 0700 and the SQLite files in it
//! (`hoosh.db` and its `-wal`, `-shm`, `-journal`) are 0600, whatever the
//! umask. They hold key digests, usage and, with `include_content`, prompts.
//!
//! Policy for a data directory that already exists:
//! - writable by group or others: refused. Another user could already have
//!   planted or swapped files in it; tightening the mode now would not undo
//!   that.
//! - readable or searchable by group or others (a `0755` directory from an
//!   older hoosh, or one made by hand): tightened to 0700, with a warning.
//!
//! Every error message names the path and, where there is one, the fix.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of the data directory.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every database file in it.
pub const FILE_MODE: u32 = 0o600;

/// Files SQLite keeps next to a database: their modes must match its.
const SQLITE_SIDECARS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Creates `dir` (and missing parents) with mode 0700, or checks an existing
/// one: group/other write bits are refused, read bits tightened to 0700.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| at(parent, "cannot create", e))?;
    }
    match DirBuilder::new().mode(DIR_MODE).create(dir) {
        // The umask may have cleared owner bits: set the mode outright.
        Ok(()) => return set_mode(dir, DIR_MODE),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(at(dir, "cannot create", e)),
    }
    let meta = std::fs::metadata(dir).map_err(|e| at(dir, "cannot read", e))?;
    if !meta.is_dir() {
        return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} is not a directory", dir.display())));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "data directory {} is writable by other users (mode {mode:04o}), who could replace the files \
                 hoosh keeps there; refusing it. Use a directory of its own, or check its contents and run \
                 `chmod 700 {}`",
                dir.display(),
                dir.display()
            ),
        ));
    }
    if mode & 0o077 != 0 {
        set_mode(dir, DIR_MODE)?;
        tracing::warn!(dir = %dir.display(), was = %format!("{mode:04o}"), "data directory was readable by other users; set it to 0700");
    }
    Ok(())
}

/// Makes the SQLite database at `db` owner-only before SQLite opens it:
/// creates it empty with mode 0600 when missing (SQLite then gives the
/// `-wal` and `-shm` files it creates the same mode), and sets 0600 on the
/// database and on any side file an older build left looser.
pub fn prepare_sqlite_file(db: &Path) -> io::Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(db)
        .map_err(|e| at(db, "cannot create", e))?;
    tighten(&file.metadata().map_err(|e| at(db, "cannot read", e))?.permissions(), db)?;
    for suffix in SQLITE_SIDECARS {
        let side = sidecar(db, suffix);
        match std::fs::metadata(&side) {
            Ok(meta) => tighten(&meta.permissions(), &side)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(at(&side, "cannot read", e)),
        }
    }
    Ok(())
}

/// `hoosh.db` → `hoosh.db-wal` (SQLite appends the suffix to the whole name).
pub fn sidecar(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn tighten(perms: &Permissions, path: &Path) -> io::Result<()> {
    if perms.mode() & 0o077 != 0 { set_mode(path, FILE_MODE) } else { Ok(()) }
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    std::fs::set_permissions(path, Permissions::from_mode(mode))
        .map_err(|e| at(path, &format!("cannot set mode {mode:04o} on"), e))
}

fn at(path: &Path, what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn creates_the_directory_and_its_missing_parents_0700() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/data");
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        // Idempotent.
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn a_readable_existing_directory_is_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn a_directory_others_can_write_is_refused_and_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        for (name, loose) in [("world", 0o777), ("group", 0o770), ("sticky", 0o1777)] {
            let dir = tmp.path().join(name);
            std::fs::create_dir(&dir).unwrap();
            std::fs::set_permissions(&dir, Permissions::from_mode(loose)).unwrap();
            let err = ensure_private_dir(&dir).unwrap_err().to_string();
            assert!(err.contains("writable by other users") && err.contains("chmod 700"), "{err}");
            assert!(err.contains(&dir.display().to_string()), "{err}");
            assert_eq!(mode(&dir), loose, "{name}: a refused directory is not changed");
        }
    }

    #[test]
    fn a_file_where_the_directory_should_be_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("data");
        std::fs::write(&file, b"x").unwrap();
        let err = ensure_private_dir(&file).unwrap_err().to_string();
        assert!(err.contains("not a directory"), "{err}");
    }

    /// What SQLite itself creates next to the database (the WAL and the
    /// shared-memory index) takes the database's mode.
    #[test]
    fn a_store_opened_fresh_keeps_its_wal_and_shm_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("hoosh.db");
        let store = crate::SqliteStore::open(&db).unwrap();
        let spec = crate::BudgetSpec { tokens: Some(10), usd: None, period: crate::Period::Never };
        crate::Store::put_budget(&store, &crate::PoolId::Team("t".into()), Some(&spec)).unwrap();
        for p in [db.clone(), sidecar(&db, "-wal"), sidecar(&db, "-shm")] {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
        drop(store);
    }

    #[test]
    fn database_files_end_0600_even_when_an_older_build_left_them_0644() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("hoosh.db");
        prepare_sqlite_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert_eq!(std::fs::metadata(&db).unwrap().len(), 0, "an empty file is a valid new SQLite database");

        std::fs::write(&db, b"kept").unwrap();
        for p in [db.clone(), sidecar(&db, "-wal"), sidecar(&db, "-shm")] {
            std::fs::write(&p, b"kept").unwrap();
            std::fs::set_permissions(&p, Permissions::from_mode(0o644)).unwrap();
        }
        prepare_sqlite_file(&db).unwrap();
        for p in [db.clone(), sidecar(&db, "-wal"), sidecar(&db, "-shm")] {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
            assert_eq!(std::fs::read(&p).unwrap(), b"kept", "never truncated");
        }
    }
}
