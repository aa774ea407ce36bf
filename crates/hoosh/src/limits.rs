//! Process limits raised at start: each open stream holds two sockets (the
//! client's and the upstream's), so the common default of 1,024 open files
//! would cap a gateway at ~500 concurrent streams. `hoosh serve` raises its
//! soft open-file limit to the hard limit and logs both.

/// Raises the open-file soft limit to the hard limit (capped at one million,
/// so an "unlimited" hard limit does not ask the kernel for more than it
/// allows).
#[cfg(unix)]
pub fn raise_open_files() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    const CEILING: u64 = 1 << 20;
    let now = getrlimit(Resource::Nofile);
    let hard = now.maximum.unwrap_or(CEILING).min(CEILING);
    let soft = now.current.unwrap_or(CEILING);
    if soft >= hard {
        return;
    }
    match setrlimit(Resource::Nofile, Rlimit { current: Some(hard), maximum: now.maximum }) {
        Ok(()) => {
            tracing::info!(from = soft, to = hard, "raised the open-file limit");
        }
        Err(e) => {
            tracing::warn!(soft, hard, error = %e, "could not raise the open-file limit; concurrent streams are capped by it");
        }
    }
}

#[cfg(not(unix))]
pub fn raise_open_files() {}
