//! The real PostgreSQL and Redis the cluster tests run against (this
//! machine's, as `scripts/services.sh` leaves them, or the ones
//! `HOOSH_TEST_POSTGRES` / `HOOSH_TEST_REDIS` name), and a fresh database
//! or namespace per test so tests never see each other's data.

/// A database the tests may create others from (`postgres://…/test`).
pub fn postgres_admin_url() -> String {
    std::env::var("HOOSH_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn redis_url() -> String {
    std::env::var("HOOSH_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// `prefix` and 32 hex digits: a name no other test run uses
/// (`scripts/services.sh` drops what earlier runs left under such names).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// A new, empty database (`hoosh_c_…`); its URL. Safe to call from async
/// tests: the synchronous client runs on a thread of its own.
///
/// # Panics
/// When PostgreSQL cannot be reached: the cluster tests need it.
pub fn fresh_database() -> String {
    let name = unique("hoosh_c");
    let admin = postgres_admin_url();
    let created = std::thread::scope(|s| {
        s.spawn(|| {
            let mut c = postgres::Client::connect(&admin, postgres::NoTls)?;
            c.batch_execute(&format!("CREATE DATABASE {name}"))
        })
        .join()
    });
    match created {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("PostgreSQL at {admin} (scripts/services.sh starts it): {e}"),
        Err(_) => panic!("creating a test database panicked"),
    }
    let root = admin.rsplit_once('/').map_or(admin.as_str(), |(root, _)| root);
    format!("{root}/{name}")
}
