//! placeholder (written next)
