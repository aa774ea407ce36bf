//! What the cluster tests share: a fresh PostgreSQL database and a fresh
//! Redis namespace per test (the real servers on this machine, or the ones
//! `HOOSH_TEST_POSTGRES` / `HOOSH_TEST_REDIS` name).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub fn postgres_admin_url() -> String {
    std::env::var("HOOSH_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn redis_url() -> String {
    std::env::var("HOOSH_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// A unique name for this test's data.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// A new, empty database; its URL.
pub fn fresh_database() -> String {
    let name = unique("hoosh_t");
    let mut admin = postgres::Client::connect(&postgres_admin_url(), postgres::NoTls).expect("PostgreSQL is running");
    admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    let base = postgres_admin_url();
    let (root, _) = base.rsplit_once('/').unwrap();
    format!("{root}/{name}")
}
