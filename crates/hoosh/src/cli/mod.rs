//! One file per command family.

pub mod client;
pub mod inspect;
pub mod pull;
pub mod serve;
