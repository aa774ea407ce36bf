//! hoosh-cluster: the state several hoosh instances share, so that they
//! behave as one (`[state] backend = "cluster"`).
//!
//! - Redis holds what every request touches: budget reservations as
//!   renewable leases and rate-limit state, changed only by Lua scripts
//!   that check and charge atomically ([`redis_state`]), and the pub/sub
//!   channel on which a revoked key or a config reload reaches every
//!   instance ([`bus`]).
//! - PostgreSQL holds what must last: keys, teams, budget definitions, the
//!   usage ledger and stored Responses answers ([`pg_store`]), and the
//!   cluster's one audit chain ([`pg_audit`]), under
//!   versioned migrations shipped in the binary ([`migrate`]). Each
//!   connection lives on its own thread ([`pg_conn`]); ledger rows and
//!   audit entries that cannot reach it wait in a local file ([`spill`]).
//!
//! Nothing here decides policy: admission is `hoosh-governance`'s, and this
//! crate only makes its charges hold across instances (see
//! [`hoosh_governance::shared`]).

pub mod bus;
pub mod migrate;
pub mod pg_audit;
pub mod pg_conn;
pub mod pg_store;
pub mod redis_state;
pub mod spill;

pub use bus::{Bus, Event};
pub use pg_audit::PgAuditStore;
pub use pg_conn::{PgConn, PgFail};
pub use pg_store::{PgOptions, PgStore};
pub use redis_state::{Granted, RedisState, SeedSource, Unavailable, probe};
