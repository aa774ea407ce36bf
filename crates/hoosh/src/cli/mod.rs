//! One file per command family.

pub mod admin;
pub mod audio;
pub mod audit;
pub mod banner;
pub mod budgets;
pub mod client;
pub mod inspect;
pub mod keys;
pub mod pull;
pub mod serve;
pub mod state;
pub mod usage;
