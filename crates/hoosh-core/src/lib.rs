//! hoosh-core: everything between "a decoded request" and "a provider call",
//! with no HTTP server and no HTTP client in it.
//!
//! Layout (one job per file):
//! - [`error`]: [`ProviderError`], the typed error every adapter returns
//!   (kind, upstream status, retryability, `Retry-After`). Failover reads its
//!   fields, never its message.
//! - [`provider`]: the small [`Provider`] trait (`chat`, `chat_stream`,
//!   `embed`, `list_models`, `health`) and capability flags.
//! - [`params`]: which optional request parameters a provider takes, and the
//!   drop-or-refuse policy for the rest.
//! - [`config`]: the strict TOML config tree, its defaults and `validate()`;
//!   its `[governance]` part (keys, budgets, limits) is in [`governance_config`].
//! - [`router`]: model name → ordered candidate list (globs, aliases,
//!   `provider/model` addressing), ordered by [`strategy`]; each entry's
//!   [`placement`] (in-process, nearby, remote) decides ties and price.
//! - [`stats`]: per-provider live state: in-flight count, latency EWMA,
//!   health, and the [`breaker`] (closed → open → half-open).
//! - [`backoff`]: jittered exponential backoff.
//! - [`executor`]: tries candidates in order with retries and failover, only
//!   before the first byte of a response exists.
//! - [`pricing`]: the shipped price table (USD per million tokens).
//! - [`convert`]: legacy text completions expressed as chat and back.
//! - [`state_config`]: `[state]`: embedded (SQLite, in-process) or cluster
//!   (Redis + PostgreSQL shared by several instances).
//! - [`secret`]: [`Secret`] and [`SecretHeaders`]: credentials that never print.
//! - [`trace`]: W3C `traceparent` of the request being served, propagated
//!   to every upstream call.

pub mod audio;
pub mod backoff;
pub mod breaker;
pub mod config;
pub mod convert;
pub mod error;
pub mod executor;
pub mod governance_config;
pub mod params;
pub mod placement;
pub mod pricing;
pub mod provider;
pub mod router;
pub mod secret;
pub mod state_config;
pub mod stats;
pub mod strategy;
pub mod trace;

pub use error::{ErrorKind, ProviderError};
pub use placement::Placement;
pub use provider::{Capabilities, ChunkStream, EmbedRequest, EmbedResponse, Provider};
pub use secret::{Secret, SecretHeaders};
