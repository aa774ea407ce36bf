//! One PostgreSQL connection owned by one thread. The synchronous
//! `postgres` client runs its own small runtime and must not be called
//! from an async task, while [`hoosh_governance::Store`] is synchronous and
//! called from anywhere (admin handlers, the ledger's writer thread): so
//! each call is handed to the connection's thread and its caller waits for
//! the answer. A broken connection is dropped and made again on the next
//! call.

use std::str::FromStr;
use std::sync::mpsc;
use std::time::Duration;

use postgres::{Client, NoTls};

/// How long a connection attempt may take before PostgreSQL counts as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long sent data may go unacknowledged, and an idle connection unprobed,
/// before the connection counts as broken: a silent network partition then
/// fails a call within seconds instead of the kernel's many minutes.
const TCP_GIVE_UP: Duration = Duration::from_secs(10);

/// After a failed connection attempt, calls fail at once for this long
/// instead of each waiting for its own attempt: callers queue on the
/// connection's thread, and some (a stored Responses answer) are on the
/// request path.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Why a call failed: PostgreSQL was not reachable (worth spilling and
/// retrying), or it answered with an error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PgFail {
    #[error("PostgreSQL is unreachable: {0}")]
    Unreachable(String),
    #[error("PostgreSQL: {0}")]
    Refused(String),
}

impl PgFail {
    pub fn is_unreachable(&self) -> bool {
        matches!(self, PgFail::Unreachable(_))
    }

    /// PostgreSQL gave up waiting: a lock held too long (`55P03`) or a
    /// statement over its time (`57014`, see [`PgConn::start_with_timeouts`]).
    pub fn is_timeout(&self) -> bool {
        matches!(self, PgFail::Refused(why) if why.starts_with("55P03:") || why.starts_with("57014:"))
    }
}

impl From<PgFail> for hoosh_governance::StoreError {
    fn from(e: PgFail) -> Self {
        hoosh_governance::StoreError::Remote(e.to_string())
    }
}

type Job = Box<dyn FnOnce(&mut Session) + Send>;

/// The connection as its thread holds it.
pub struct Session {
    config: postgres::Config,
    client: Option<Client>,
    /// When the last connection attempt failed, and why.
    down: Option<(std::time::Instant, String)>,
}

impl Session {
    /// Runs `f` on the connection, connecting first if needed; a failure
    /// that leaves the connection closed is reported as unreachable.
    pub fn with<T>(&mut self, f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>) -> Result<T, PgFail> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = None;
            if let Some((at, why)) = &self.down
                && at.elapsed() < RETRY_AFTER
            {
                return Err(PgFail::Unreachable(why.clone()));
            }
            match self.config.connect(NoTls) {
                Ok(client) => {
                    self.client = Some(client);
                    self.down = None;
                }
                Err(e) => {
                    let why = describe(&e);
                    self.down = Some((std::time::Instant::now(), why.clone()));
                    return Err(PgFail::Unreachable(why));
                }
            }
        }
        let Some(client) = self.client.as_mut() else {
            return Err(PgFail::Unreachable("no connection".into()));
        };
        match f(client) {
            Ok(v) => Ok(v),
            Err(e) if e.is_closed() || client.is_closed() || e.as_db_error().is_none() => {
                self.client = None;
                Err(PgFail::Unreachable(describe(&e)))
            }
            Err(e) => Err(PgFail::Refused(describe(&e))),
        }
    }
}

/// The error with its database detail (postgres's `Display` alone says "db error").
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => {
            let source = std::error::Error::source(e).map(|s| format!(": {s}")).unwrap_or_default();
            format!("{e}{source}")
        }
    }
}

/// A handle to a connection thread.
pub struct PgConn {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConn").finish_non_exhaustive()
    }
}

impl PgConn {
    /// Starts the thread; connects lazily (a down server is not an error yet).
    pub fn start(url: &str, name: &str) -> Result<PgConn, PgFail> {
        Self::start_with(url, name, None)
    }

    /// [`PgConn::start`], with every statement limited to `limit` and every
    /// lock wait to half of it (server side): for a connection whose
    /// callers must not wait behind another holder of a lock for long.
    pub fn start_with_timeouts(url: &str, name: &str, limit: Duration) -> Result<PgConn, PgFail> {
        Self::start_with(url, name, Some(limit))
    }

    fn start_with(url: &str, name: &str, limit: Option<Duration>) -> Result<PgConn, PgFail> {
        let mut config = postgres::Config::from_str(url).map_err(|e| PgFail::Refused(format!("postgres_url: {e}")))?;
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .application_name("hoosh")
            .keepalives(true)
            .keepalives_idle(TCP_GIVE_UP)
            .tcp_user_timeout(TCP_GIVE_UP);
        if let Some(limit) = limit {
            let ms = limit.as_millis();
            config.options(&format!("-c statement_timeout={ms} -c lock_timeout={}", ms / 2));
        }
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(format!("hoosh-pg-{name}"))
            .spawn(move || {
                let mut session = Session { config, client: None, down: None };
                while let Ok(job) = rx.recv() {
                    job(&mut session);
                }
            })
            .map_err(|e| PgFail::Refused(format!("starting a database thread: {e}")))?;
        Ok(PgConn { jobs })
    }

    /// Runs `f` on the connection's thread and waits for its answer.
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send + 'static,
    ) -> Result<T, PgFail> {
        self.session(move |s| s.with(f))
    }

    /// Runs `f` with the session itself (several statements that may each fail).
    pub fn session<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<T, PgFail> + Send + 'static,
    ) -> Result<T, PgFail> {
        self.submit(f)?.recv().map_err(|_| stopped())?
    }

    /// Queues `f` on the connection's thread without waiting; its answer
    /// arrives on the returned channel (for a caller that talks to the job
    /// while it runs, e.g. consuming pages it sends).
    pub fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<T, PgFail> + Send + 'static,
    ) -> Result<mpsc::Receiver<Result<T, PgFail>>, PgFail> {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |session| {
            let _ = tx.send(f(session));
        });
        self.jobs.send(job).map_err(|_| stopped())?;
        Ok(rx)
    }
}

fn stopped() -> PgFail {
    PgFail::Unreachable("the database thread stopped".into())
}
