//! The PostgreSQL schema: versioned migrations embedded in the binary
//! (`migrations/V{n}__{name}.sql`, applied by `refinery`, recorded in
//! `refinery_schema_history`). Two instances starting at once do not race:
//! migrations run under a session advisory lock.

use crate::pg_conn::{PgConn, PgFail};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Advisory lock id held while migrating ("hoosh" in ASCII).
const MIGRATION_LOCK: i64 = 0x0068_6f6f_7368;

/// The schema version this build writes.
pub fn latest() -> i64 {
    embedded::migrations::runner().get_migrations().iter().map(|m| i64::from(m.version())).max().unwrap_or(0)
}

/// Applies the migrations the database lacks; returns the names applied.
pub fn migrate(conn: &PgConn) -> Result<Vec<String>, PgFail> {
    conn.session(|session| {
        session.with(|c| c.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).map(drop))?;
        let applied = session.with(|c| {
            let report = embedded::migrations::runner().run(c);
            Ok(report)
        });
        let unlocked = session.with(|c| c.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).map(drop));
        let report = applied?.map_err(|e| PgFail::Refused(format!("migrating: {e}")))?;
        unlocked?;
        Ok(report.applied_migrations().iter().map(|m| format!("V{}__{}", m.version(), m.name())).collect())
    })
}

/// The version the database is at (0: never migrated).
pub fn current(conn: &PgConn) -> Result<i64, PgFail> {
    conn.run(|c| {
        let exists: bool = c.query_one("SELECT to_regclass('refinery_schema_history') IS NOT NULL", &[])?.get(0);
        if !exists {
            return Ok(0);
        }
        let v: Option<i32> = c.query_one("SELECT MAX(version) FROM refinery_schema_history", &[])?.get(0);
        Ok(i64::from(v.unwrap_or(0)))
    })
}

/// PostgreSQL's version string.
pub fn server_version(conn: &PgConn) -> Result<String, PgFail> {
    conn.run(|c| Ok(c.query_one("SHOW server_version", &[])?.get::<_, String>(0)))
}
