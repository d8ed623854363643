//! Hot standby: one leader among the gantry instances running a file, elected through a lease row in PostgreSQL.
//!
//! The lease is one row of `gantry_cluster_lease` per cluster name, timed by the
//! **database's** clock (`now()`), never the hosts'. Every statement is a single autocommit
//! statement with no session state (no advisory lock, no open transaction), so the election
//! works through connection poolers:
//!
//! - **acquire** ([`Db::acquire`]): an upsert that takes the row when it expired (or is
//!   already ours) and increments the **term**, the fencing token: every tenure has its own.
//! - **renew** ([`Db::renew`]): pushes `expires_at` on while holder and term are still ours
//!   and the lease has not expired; the leader renews every third of the TTL and stops acting
//!   when it could not renew before its lease ends, measured on its own monotonic clock from
//!   the moment it sent the last successful renewal ([`LeaseClock`]).
//! - **resign** ([`Db::resign`]): ends the lease now and `NOTIFY`s the standbys, which
//!   `LISTEN` on the channel and try at once (the listen is only a speed-up: without it, a
//!   standby tries when the lease it read runs out).
//! - **leader-only writes** ([`Db::record`]): one `INSERT … SELECT … FOR SHARE` into
//!   `gantry_cluster_actions` that writes only while the lease row still names this holder and
//!   term and has not expired; the row lock orders it against a concurrent takeover, so rows
//!   of two terms never interleave.
//!
//! [`campaign`] is a standby's wait; [`Leadership::run`] the leader's renewal task.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls};

/// The channel standbys listen on; the payload is the cluster name.
pub const CHANNEL: &str = "gantry_cluster";

/// The tables gantry creates (idempotent; serialised by a transaction-scoped advisory lock so
/// two instances starting together do not race on the catalog).
const SCHEMA: &str = "BEGIN;
SELECT pg_advisory_xact_lock(7157374245983614208);
CREATE TABLE IF NOT EXISTS gantry_cluster_lease (
    cluster text PRIMARY KEY,
    holder text NOT NULL,
    term bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS gantry_cluster_actions (
    seq bigserial PRIMARY KEY,
    cluster text NOT NULL,
    term bigint NOT NULL,
    holder text NOT NULL,
    action text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE UNIQUE INDEX IF NOT EXISTS gantry_cluster_actions_one_takeover
    ON gantry_cluster_actions (cluster, term) WHERE action = 'takeover';
CREATE TABLE IF NOT EXISTS gantry_cluster_members (
    cluster text NOT NULL,
    name text NOT NULL,
    role text NOT NULL,
    seen_at timestamptz NOT NULL,
    PRIMARY KEY (cluster, name)
);
COMMIT;";

const ACQUIRE: &str =
    "INSERT INTO gantry_cluster_lease AS l (cluster, holder, term, expires_at, acquired_at)
VALUES ($1, $2, 1, now() + $3::float8 * interval '1 millisecond', now())
ON CONFLICT (cluster) DO UPDATE
    SET holder = EXCLUDED.holder, term = l.term + 1,
        expires_at = EXCLUDED.expires_at, acquired_at = now()
    WHERE l.expires_at <= now() OR l.holder = EXCLUDED.holder
RETURNING term";

const RENEW: &str = "UPDATE gantry_cluster_lease
SET expires_at = now() + $4::float8 * interval '1 millisecond'
WHERE cluster = $1 AND holder = $2 AND term = $3 AND expires_at > now()";

const RESIGN: &str = "WITH r AS (
    UPDATE gantry_cluster_lease SET expires_at = now()
    WHERE cluster = $1 AND holder = $2 AND term = $3 AND expires_at > now()
    RETURNING cluster
)
SELECT pg_notify('gantry_cluster', cluster) FROM r";

const RESIGN_ANY: &str = "WITH r AS (
    UPDATE gantry_cluster_lease SET expires_at = now()
    WHERE cluster = $1 AND holder = $2 AND expires_at > now()
    RETURNING cluster
)
SELECT pg_notify('gantry_cluster', cluster) FROM r";

const RECORD: &str = "INSERT INTO gantry_cluster_actions (cluster, term, holder, action)
SELECT l.cluster, l.term, l.holder, $4 FROM gantry_cluster_lease l
WHERE l.cluster = $1 AND l.holder = $2 AND l.term = $3 AND l.expires_at > now()
FOR SHARE";

const LEASE: &str = "SELECT holder, term,
    GREATEST(0, EXTRACT(EPOCH FROM (expires_at - now())) * 1000)::float8
FROM gantry_cluster_lease WHERE cluster = $1";

const HEARTBEAT: &str = "INSERT INTO gantry_cluster_members (cluster, name, role, seen_at)
VALUES ($1, $2, $3, now())
ON CONFLICT (cluster, name) DO UPDATE SET role = EXCLUDED.role, seen_at = now()";

const STANDBYS: &str = "SELECT name FROM gantry_cluster_members
WHERE cluster = $1 AND name <> $2 AND role = 'standby'
    AND seen_at > now() - $3::float8 * interval '1 millisecond'
ORDER BY name";

const LEAVE: &str = "DELETE FROM gantry_cluster_members WHERE cluster = $1 AND name = $2";

/// What an instance needs to take part: the store, the election's name, its own name, the TTL.
#[derive(Clone)]
pub struct Config {
    /// The postgres:// URL (may hold a password: never printed; see [`Config::shown`]).
    url: String,
    /// The URL with its password masked.
    shown: String,
    /// Every form of the password a client error could quote.
    secrets: Vec<String>,
    pub cluster: String,
    pub name: String,
    pub ttl: Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("store", &self.shown)
            .field("cluster", &self.cluster)
            .field("name", &self.name)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl Config {
    pub fn new(url: &str, cluster: &str, name: &str, ttl: Duration) -> Config {
        Config {
            url: url.trim().to_string(),
            shown: gantry_spec::url::redact_url(url.trim()),
            secrets: gantry_spec::url::url_secrets(url),
            cluster: cluster.to_string(),
            name: name.to_string(),
            ttl,
        }
    }

    /// The store URL as it may be shown (password masked).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    fn ttl_ms(&self) -> f64 {
        self.ttl.as_secs_f64() * 1000.0
    }

    /// How often the leader renews and a standby looks again: a third of the TTL.
    pub fn period(&self) -> Duration {
        self.ttl / 3
    }

    /// The longest a single statement may take before the connection is given up.
    fn statement_timeout(&self) -> Duration {
        self.period().max(Duration::from_millis(300))
    }

    fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in self.secrets.iter().filter(|s| !s.is_empty()) {
            out = out.replace(s.as_str(), "***");
        }
        out
    }
}

/// A failure talking to the store: what, where, and what to do next (password scrubbed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub what: String,
    pub hint: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\n  hint: {}", self.what, self.hint)
    }
}

impl std::error::Error for Error {}

fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} (SQLSTATE {})", db.message(), db.code().code());
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = cur {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    "connection refused (is the server running?)".into()
                }
                _ => format!("{e}: {io}"),
            };
        }
        cur = s.source();
    }
    e.to_string()
}

/// A live lease as read from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub holder: String,
    pub term: i64,
    /// Until it expires by the database's clock (zero once expired).
    pub remaining: Duration,
}

/// One connection to the store; its connection task forwards `NOTIFY`s on [`CHANNEL`].
pub struct Db {
    client: Client,
    task: tokio::task::JoinHandle<()>,
    notices: mpsc::UnboundedReceiver<()>,
    cfg: Config,
}

impl Db {
    /// Connects (plain TCP, `application_name = 'gantry-cluster'`) and creates the tables.
    pub async fn connect(cfg: &Config) -> Result<Db, Error> {
        let db = Db::open(cfg).await?;
        db.timed(
            "creating the cluster tables",
            db.client.batch_execute(SCHEMA),
        )
        .await?;
        Ok(db)
    }

    /// Connects without creating anything (the pre-flight's look at the election).
    pub async fn open(cfg: &Config) -> Result<Db, Error> {
        let mut pg: tokio_postgres::Config = cfg.url.parse().map_err(|e| Error {
            what: cfg.scrub(&format!(
                "[cluster] store: invalid postgres URL {}: {e}",
                cfg.shown
            )),
            hint: "write store = \"postgres://user:password@host:5432/db\"".into(),
        })?;
        pg.application_name("gantry-cluster");
        pg.connect_timeout(cfg.ttl.max(Duration::from_secs(1)));
        let failed = |e: &tokio_postgres::Error| Error {
            what: cfg.scrub(&format!(
                "cannot reach the cluster store {}: {}",
                cfg.shown,
                describe(e)
            )),
            hint: "check [cluster] store (host, port, user, database) and that PostgreSQL runs; \
                   TLS is not supported for the cluster store yet"
                .into(),
        };
        let (client, mut conn) =
            tokio::time::timeout(cfg.ttl.max(Duration::from_secs(1)), pg.connect(NoTls))
                .await
                .map_err(|_| Error {
                    what: format!(
                        "cannot reach the cluster store {}: no answer within {:?}",
                        cfg.shown,
                        cfg.ttl.max(Duration::from_secs(1))
                    ),
                    hint: "check [cluster] store's host and port and the network to it".into(),
                })?
                .map_err(|e| failed(&e))?;
        let (tx, notices) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            // The connection's I/O; notifications become a wake-up of the waiting standby.
            while let Some(Ok(m)) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                if matches!(m, AsyncMessage::Notification(_)) && tx.send(()).is_err() {
                    break;
                }
            }
        });
        Ok(Db {
            client,
            task,
            notices,
            cfg: cfg.clone(),
        })
    }

    async fn timed<T>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.cfg.statement_timeout(), fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Error {
                what: self.cfg.scrub(&format!(
                    "cluster store {}: {what}: {}",
                    self.cfg.shown,
                    describe(&e)
                )),
                hint: "check that PostgreSQL runs and the user may create and write tables there"
                    .into(),
            }),
            Err(_) => Err(Error {
                what: format!(
                    "cluster store {}: {what}: no answer within {:?}",
                    self.cfg.shown,
                    self.cfg.statement_timeout()
                ),
                hint: "the database or the network to it is slow or down; gantry retries".into(),
            }),
        }
    }

    /// `LISTEN` on [`CHANNEL`] (session state: through a transaction pooler it may not
    /// deliver, and the standby then waits for the lease to run out instead).
    pub async fn listen(&self) -> Result<(), Error> {
        self.timed(
            "LISTEN",
            self.client.batch_execute(&format!("LISTEN {CHANNEL}")),
        )
        .await
    }

    /// Takes the lease if it expired (or is already ours): `Some(term)`, the new term.
    pub async fn acquire(&self) -> Result<Option<i64>, Error> {
        let c = &self.cfg;
        let row = self
            .timed(
                "acquiring the lease",
                self.client
                    .query_opt(ACQUIRE, &[&c.cluster, &c.name, &c.ttl_ms()]),
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Renews the lease of `term`: false when it is no longer ours or already expired.
    pub async fn renew(&self, term: i64) -> Result<bool, Error> {
        let c = &self.cfg;
        let n = self
            .timed(
                "renewing the lease",
                self.client
                    .execute(RENEW, &[&c.cluster, &c.name, &term, &c.ttl_ms()]),
            )
            .await?;
        Ok(n == 1)
    }

    /// Ends the lease of `term` now and wakes the standbys: false when it was not ours.
    pub async fn resign(&self, term: i64) -> Result<bool, Error> {
        let c = &self.cfg;
        let rows = self
            .timed(
                "resigning the lease",
                self.client.query(RESIGN, &[&c.cluster, &c.name, &term]),
            )
            .await?;
        Ok(!rows.is_empty())
    }

    /// A leader-only write: true when it was written, false when `term` no longer holds a
    /// live lease (nothing written).
    pub async fn record(&self, term: i64, action: &str) -> Result<bool, Error> {
        let c = &self.cfg;
        let n = self
            .timed(
                "writing a leader-only action",
                self.client
                    .execute(RECORD, &[&c.cluster, &c.name, &term, &action]),
            )
            .await?;
        Ok(n == 1)
    }

    /// The lease row, if any (expired ones too, with zero remaining; none before gantry made
    /// its tables).
    pub async fn lease(&self) -> Result<Option<Seen>, Error> {
        let read = async {
            match self.client.query_opt(LEASE, &[&self.cfg.cluster]).await {
                Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {
                    Ok(None)
                }
                other => other,
            }
        };
        let row = self.timed("reading the lease", read).await?;
        Ok(row.map(|r| Seen {
            holder: r.get(0),
            term: r.get(1),
            remaining: Duration::from_secs_f64(r.get::<_, f64>(2).max(0.0) / 1000.0),
        }))
    }

    /// Says this instance is alive in `role` (`standby` or `leader`).
    pub async fn heartbeat(&self, role: &str) -> Result<(), Error> {
        let c = &self.cfg;
        self.timed(
            "recording this instance",
            self.client
                .execute(HEARTBEAT, &[&c.cluster, &c.name, &role]),
        )
        .await
        .map(drop)
    }

    /// The standbys seen within two leases, this instance left out.
    pub async fn standbys(&self) -> Result<Vec<String>, Error> {
        let c = &self.cfg;
        let rows = self
            .timed(
                "listing the standbys",
                self.client
                    .query(STANDBYS, &[&c.cluster, &c.name, &(2.0 * c.ttl_ms())]),
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Removes this instance from the members (a standby that stops), and ends a lease it may
    /// have taken in the moment it was stopped (whatever its term), waking the standbys.
    pub async fn leave(&self) -> Result<(), Error> {
        let c = &self.cfg;
        self.timed(
            "leaving the cluster",
            self.client.execute(LEAVE, &[&c.cluster, &c.name]),
        )
        .await?;
        self.timed(
            "ending this instance's lease",
            self.client.query(RESIGN_ANY, &[&c.cluster, &c.name]),
        )
        .await
        .map(drop)
    }

    /// Waits for a `NOTIFY`, or returns at once when the connection ended (then
    /// [`Db::is_closed`] is true and the caller reconnects).
    pub async fn notified(&mut self) {
        let _ = self.notices.recv().await;
    }

    /// True once the connection ended (the caller reconnects).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed() || self.task.is_finished()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The leader's own view of its lease: live until a deadline on this host's monotonic
/// clock, pushed on by each successful renewal to (time the renewal was *sent* + TTL), so it
/// always ends no later than the database's expiry (as far as the two clocks' rates agree).
#[derive(Debug)]
pub struct LeaseClock {
    base: Instant,
    /// Microseconds after `base`.
    deadline: AtomicU64,
    ended: AtomicBool,
}

impl LeaseClock {
    fn new(deadline: Instant) -> LeaseClock {
        let base = Instant::now();
        let c = LeaseClock {
            base,
            deadline: AtomicU64::new(0),
            ended: AtomicBool::new(false),
        };
        c.extend(deadline);
        c
    }

    fn extend(&self, deadline: Instant) {
        let us = deadline.saturating_duration_since(self.base).as_micros();
        self.deadline
            .store(u64::try_from(us).unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// When the lease ends by this host's clock.
    pub fn deadline(&self) -> Instant {
        self.base + Duration::from_micros(self.deadline.load(Ordering::SeqCst))
    }

    /// True while this instance may act as the leader.
    pub fn live(&self) -> bool {
        !self.ended.load(Ordering::SeqCst) && Instant::now() < self.deadline()
    }

    /// Ends it for good (resigned, lost).
    pub fn end(&self) {
        self.ended.store(true, Ordering::SeqCst);
    }
}

/// What a standby's wait reports, for the operator.
#[derive(Debug, Clone, PartialEq)]
pub enum Waiting {
    /// Someone else leads.
    Standby { leader: String, term: i64 },
    /// The store could not be reached or answered with an error; retrying.
    Trouble(String),
}

/// Waits until this instance holds the lease: connects, then tries to acquire; while another
/// instance leads, waits for its `NOTIFY` or for its lease to run out (whichever is first,
/// looking again every third of the TTL). The first connection's failure is returned (a
/// wrong URL should stop `gantry up`); later ones are reported through `say` and retried.
pub async fn campaign(cfg: &Config, mut say: impl FnMut(Waiting)) -> Result<Leadership, Error> {
    let mut db = Db::connect(cfg).await?;
    let _ = db.listen().await;
    let mut last: Option<Waiting> = None;
    let mut tell = |w: Waiting, say: &mut dyn FnMut(Waiting)| {
        if last.as_ref() != Some(&w) {
            last = Some(w.clone());
            say(w);
        }
    };
    loop {
        if db.is_closed() {
            match Db::connect(cfg).await {
                Ok(d) => {
                    db = d;
                    let _ = db.listen().await;
                }
                Err(e) => {
                    tell(Waiting::Trouble(e.what.clone()), &mut say);
                    tokio::time::sleep(cfg.period()).await;
                    continue;
                }
            }
        }
        let sent = Instant::now();
        let wait = match db.acquire().await {
            Ok(Some(term)) => {
                // The first leader-only write of the term; false: lost already (a pause).
                match db.record(term, "takeover").await {
                    Ok(true) => {
                        let _ = db.heartbeat("leader").await;
                        return Ok(Leadership {
                            clock: Arc::new(LeaseClock::new(sent + cfg.ttl)),
                            db,
                            term,
                        });
                    }
                    Ok(false) => cfg.period(),
                    Err(e) => {
                        tell(Waiting::Trouble(e.what), &mut say);
                        cfg.period()
                    }
                }
            }
            Ok(None) => {
                let _ = db.heartbeat("standby").await;
                match db.lease().await {
                    Ok(Some(seen)) => {
                        tell(
                            Waiting::Standby {
                                leader: seen.holder,
                                term: seen.term,
                            },
                            &mut say,
                        );
                        seen.remaining
                            .max(Duration::from_millis(2))
                            .min(cfg.period())
                    }
                    Ok(None) => Duration::from_millis(2),
                    Err(e) => {
                        tell(Waiting::Trouble(e.what), &mut say);
                        cfg.period()
                    }
                }
            }
            Err(e) => {
                tell(Waiting::Trouble(e.what), &mut say);
                cfg.period()
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = db.notified() => {}
        }
    }
}

/// What the leader is told to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A leader-only write (`boot go`, …).
    Record(String),
    /// End the lease now and wake the standbys.
    Resign,
}

/// What the leader's task reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// The standbys seen now (sent when the list changes).
    Standbys(Vec<String>),
    /// The lease is gone: stop acting. Why, for the operator.
    Lost(String),
    /// Resigned: the standbys were woken.
    Resigned,
    /// A renewal or write failed but the lease still has time; retrying.
    Trouble(String),
}

/// This instance leads: the term (the fencing token), its lease clock and its connection.
pub struct Leadership {
    pub term: i64,
    pub clock: Arc<LeaseClock>,
    db: Db,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("term", &self.term)
            .finish_non_exhaustive()
    }
}

impl Leadership {
    /// Renews every third of the TTL until the lease is lost or resigned; writes the
    /// leader-only actions it is sent, while the lease is live. Never renews nor writes after
    /// its own deadline passed (a leader paused past its lease wakes up and stops here).
    pub async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        report: impl Fn(Report),
    ) {
        let cfg = self.db.cfg.clone();
        let term = self.term;
        let mut tick = tokio::time::interval(cfg.period());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut standbys: Option<Vec<String>> = None;
        let lost = |why: String| {
            self.clock.end();
            report(Report::Lost(why));
        };
        loop {
            let deadline = tokio::time::Instant::from_std(self.clock.deadline());
            tokio::select! {
                biased;
                _ = tokio::time::sleep_until(deadline) => {
                    lost(format!(
                        "could not renew the lease of term {term} within {:?}",
                        cfg.ttl
                    ));
                    return;
                }
                _ = tick.tick() => {
                    if !self.clock.live() {
                        lost(format!("the lease of term {term} ran out before it was renewed"));
                        return;
                    }
                    if self.db.is_closed() {
                        // Bounded by the lease: past its end the deadline branch reports it.
                        match tokio::time::timeout_at(deadline, Db::connect(&cfg)).await {
                            Ok(Ok(d)) => self.db = d,
                            Ok(Err(e)) => {
                                report(Report::Trouble(e.what));
                                continue;
                            }
                            Err(_) => continue,
                        }
                    }
                    let sent = Instant::now();
                    match self.db.renew(term).await {
                        Ok(true) => self.clock.extend(sent + cfg.ttl),
                        Ok(false) => {
                            lost(format!(
                                "the lease of term {term} was no longer this instance's in the store"
                            ));
                            return;
                        }
                        Err(e) => {
                            report(Report::Trouble(e.what));
                            continue;
                        }
                    }
                    if let Ok(now) = self.db.standbys().await
                        && standbys.as_ref() != Some(&now)
                    {
                        standbys = Some(now.clone());
                        report(Report::Standbys(now));
                    }
                }
                cmd = commands.recv() => match cmd {
                    Some(Command::Record(action)) => {
                        if !self.clock.live() {
                            continue;
                        }
                        match self.db.record(term, &action).await {
                            Ok(true) => {}
                            Ok(false) => {
                                lost(format!(
                                    "the lease of term {term} is no longer this instance's: \
                                     `{action}` was not recorded"
                                ));
                                return;
                            }
                            Err(e) => report(Report::Trouble(e.what)),
                        }
                    }
                    Some(Command::Resign) | None => {
                        let live = self.clock.live();
                        self.clock.end();
                        if live {
                            let _ = self.db.record(term, "resign").await;
                            let _ = self.db.resign(term).await;
                        }
                        let _ = self.db.leave().await;
                        report(Report::Resigned);
                        return;
                    }
                },
            }
        }
    }
}

/// This host's name, for the default instance name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
