//! The edge's own bounds, below the router: each accepted connection is
//! served with a header read timeout, an absolute request body deadline, a
//! write-stall timeout and an idle timeout ([`connection`]); the accept loop
//! in [`crate::serve`] holds at most `server.max_connections` of them.
//! `docs/SECURITY.md` lists every bound with its default.

pub mod connection;
pub mod deadline;
pub mod stall;
