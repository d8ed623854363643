//! Store probes: `postgres`, `mysql`, `redis`, `amqp`, `nats` and `sqlite` readiness checks.
//!
//! [`check`] runs one probe of a [`StoreProbe`] and answers a [`ProbeOutcome`] like the
//! tcp/http/exec probes do. Each store has its own file; they share the rules written here:
//!
//! - **Cut at the timeout.** The whole probe (DNS, connect, handshake, queries, close) runs
//!   under one `tokio::time::timeout`; the message then says which step was running
//!   (`timed out after 2s while connecting`). The SQLite check, which blocks, is also
//!   interrupted inside SQLite at that moment.
//! - **One connection per probe, closed after it.** No pools; every client is shut down
//!   politely (Terminate, COM_QUIT, Connection.Close, drain) on success and failure alike,
//!   and dropping the probe future (timeout) drops the socket.
//! - **Messages say exactly what failed**: DNS resolution, connection refused, timeout,
//!   authentication, a missing database / vhost / queue / stream, a queue without a
//!   dead-letter exchange, the `quick_check` output — followed by the store's URL.
//! - **No password is ever printed.** URLs are shown through [`redact_url`]
//!   (`postgres://app:***@db:5432/app`), and every text that comes from a client library is
//!   also scrubbed of the URL's password, raw and percent-decoded.
//! - **Host names are resolved first** by the probe itself, so a DNS failure reads as one
//!   whatever the client library would have said.

mod amqp;
mod mysql;
mod nats;
mod postgres;
mod redis;
mod sqlite;
pub(crate) mod urls;

use std::error::Error as StdError;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gantry_spec::{ProbeKind, StoreProbe};

use crate::probe::ProbeOutcome;
use gantry_engine::HumanDuration;

pub use urls::redact_url;

/// The scratch table the `rw = true` round trips write to (created when missing, rows
/// deleted after each probe).
pub const SCRATCH_TABLE: &str = "gantry_probe_scratch";

/// True for the probe kinds this module runs.
pub fn is_store(kind: &ProbeKind) -> bool {
    store_of(kind).is_some()
}

fn store_of(kind: &ProbeKind) -> Option<&StoreProbe> {
    match kind {
        ProbeKind::Postgres(p)
        | ProbeKind::Mysql(p)
        | ProbeKind::Redis(p)
        | ProbeKind::Amqp(p)
        | ProbeKind::Nats(p)
        | ProbeKind::Sqlite(p) => Some(p),
        _ => None,
    }
}

/// The TLS endpoint a store probe connects to, when its URL asks for TLS (`sslmode`,
/// `ssl-mode`, `rediss://`, `amqps://`, `tls://`).
pub fn tls_endpoint(kind: &ProbeKind) -> Option<crate::tls::inspect::Endpoint> {
    match kind {
        ProbeKind::Postgres(p) => postgres::tls_endpoint(p),
        ProbeKind::Mysql(p) => mysql::tls_endpoint(p),
        ProbeKind::Redis(p) => redis::tls_endpoint(p),
        ProbeKind::Amqp(p) => amqp::tls_endpoint(p),
        ProbeKind::Nats(p) => nats::tls_endpoint(p),
        _ => None,
    }
}

/// Runs one store probe, cut at `timeout`. A relative SQLite path is taken from `base_dir`
/// (the directory of `gantry.toml`). Any other probe kind fails with a message saying so.
pub async fn check(kind: &ProbeKind, timeout: Duration, base_dir: &Path) -> ProbeOutcome {
    let started = Instant::now();
    let Some(p) = store_of(kind) else {
        return ProbeOutcome {
            ok: false,
            message: format!("`{}` is not a store probe", kind.name()),
            duration: Duration::ZERO,
        };
    };
    let ctx = Ctx::new(&p.url, timeout);
    let (shown, result) = match kind {
        ProbeKind::Sqlite(p) => {
            let path = sqlite::resolve_path(&p.url, base_dir);
            let shown = path.display().to_string();
            (shown, ctx.run(sqlite::check(path, p.rw, timeout)).await)
        }
        ProbeKind::Postgres(p) => (
            redact_url(&p.url),
            ctx.run(postgres::check(p, &ctx, base_dir)).await,
        ),
        ProbeKind::Mysql(p) => (
            redact_url(&p.url),
            ctx.run(mysql::check(p, &ctx, base_dir)).await,
        ),
        ProbeKind::Redis(p) => (
            redact_url(&p.url),
            ctx.run(redis::check(p, &ctx, base_dir)).await,
        ),
        ProbeKind::Amqp(p) => (
            redact_url(&p.url),
            ctx.run(amqp::check(p, &ctx, base_dir)).await,
        ),
        ProbeKind::Nats(p) => (
            redact_url(&p.url),
            ctx.run(nats::check(p, &ctx, base_dir)).await,
        ),
        _ => unreachable!("store_of returned Some"),
    };
    let (ok, detail) = match result {
        Ok(detail) => (true, detail),
        Err(detail) => (false, detail),
    };
    ProbeOutcome {
        ok,
        message: format!("{} ({shown})", ctx.scrub(&detail)),
        duration: started.elapsed(),
    }
}

/// What one probe run shares with its store: the step it is at (for the timeout message),
/// the secrets to scrub and the timeout (for the clients' own connect timeouts).
pub(crate) struct Ctx {
    step: Mutex<String>,
    secrets: Vec<String>,
    timeout: Duration,
}

impl Ctx {
    fn new(url: &str, timeout: Duration) -> Ctx {
        Ctx {
            step: Mutex::new("starting".into()),
            secrets: urls::secrets(url),
            timeout,
        }
    }

    /// The timeout to give a client library's own connect / response timers: a little
    /// longer than the probe's, so the probe's cut (and its message naming the step) comes
    /// first, while a client never waits forever on its own.
    pub(crate) fn client_timeout(&self) -> Duration {
        self.timeout + Duration::from_secs(1)
    }

    /// Records the step now running ("connecting", "running SELECT 1", ...).
    pub(crate) fn step(&self, what: impl Into<String>) {
        if let Ok(mut s) = self.step.lock() {
            *s = what.into();
        }
    }

    pub(crate) fn current_step(&self) -> String {
        self.step
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|_| "probing".into())
    }

    /// `text` with every secret of the URL replaced by `***`. A short secret (under
    /// [`SHORT_SECRET`] bytes) is replaced only where it stands alone, so a password `x`
    /// does not turn "exist" into "e***ist"; a longer one wherever it appears.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            out = if s.len() >= SHORT_SECRET {
                out.replace(s.as_str(), "***")
            } else {
                replace_standalone(&out, s)
            };
        }
        out
    }

    async fn run(
        &self,
        fut: impl Future<Output = Result<String, String>>,
    ) -> Result<String, String> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "timed out after {} while {}",
                HumanDuration(self.timeout),
                self.current_step()
            )),
        }
    }
}

/// Secrets shorter than this are scrubbed only as whole tokens (see [`Ctx::scrub`]).
const SHORT_SECRET: usize = 6;

/// `text` with each occurrence of `needle` that has no letter or digit right before or
/// after it replaced by `***`.
fn replace_standalone(text: &str, needle: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut prev: Option<char> = None;
    while let Some(pos) = rest.find(needle) {
        let before = rest[..pos].chars().next_back().or(prev);
        let after = rest[pos + needle.len()..].chars().next();
        let alone =
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric);
        out.push_str(&rest[..pos]);
        out.push_str(if alone { "***" } else { needle });
        prev = needle.chars().next_back();
        rest = &rest[pos + needle.len()..];
    }
    out.push_str(rest);
    out
}

/// Resolves `host:port` with the system resolver, so a DNS failure is reported as one.
/// Unix socket paths and IP literals pass through.
pub(crate) async fn resolve(host: &str, port: u16) -> Result<(), String> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.starts_with('/') || host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    match tokio::net::lookup_host((host, port)).await {
        Ok(mut addrs) => match addrs.next() {
            Some(_) => Ok(()),
            None => Err(format!("DNS resolution of {host} failed: no addresses")),
        },
        Err(e) => Err(format!("DNS resolution of {host} failed: {e}")),
    }
}

/// The first `std::io::Error` in an error's source chain.
pub(crate) fn io_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a std::io::Error> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        cur = e.source();
    }
    None
}

/// A finished message for a failed TCP connect to `target`, when the error is one of the
/// common socket failures; `None` leaves the wording to the caller.
pub(crate) fn connect_failure(io: &std::io::Error, target: &str) -> Option<String> {
    use std::io::ErrorKind as K;
    let what = match io.kind() {
        K::ConnectionRefused => "connection refused",
        K::ConnectionReset => "connection reset by the server",
        K::ConnectionAborted => "connection aborted",
        K::TimedOut => "connect timed out",
        K::HostUnreachable => "host unreachable",
        K::NetworkUnreachable => "network unreachable",
        K::AddrNotAvailable => "address not available",
        K::UnexpectedEof => "the server closed the connection",
        _ => return None,
    };
    Some(format!("{what} ({target})"))
}

/// A random lowercase hex token for scratch keys and probe-only names.
pub(crate) fn random_token() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

/// `host:port`, with brackets around an IPv6 literal.
pub(crate) fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Checks what a write/read/delete round trip saw: the value read back and the rows deleted.
pub(crate) fn round_trip_result(
    read: Option<&str>,
    wrote: &str,
    deleted: u64,
) -> Result<(), String> {
    match read {
        None => Err(format!(
            "write/read/delete: the row just written to {SCRATCH_TABLE} was not found"
        )),
        Some(v) if v != wrote => Err(format!(
            "write/read/delete: read back {v:?} from {SCRATCH_TABLE}, wrote {wrote:?}"
        )),
        _ if deleted != 1 => Err(format!(
            "write/read/delete: deleted {deleted} rows from {SCRATCH_TABLE}, expected 1"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_masks_long_secrets_anywhere_and_short_ones_alone() {
        let ctx = Ctx::new("postgres://u:longsecret@h/db", Duration::from_secs(1));
        assert_eq!(ctx.scrub("bad longsecretX"), "bad ***X");
        let ctx = Ctx::new("postgres://u:x@h/db", Duration::from_secs(1));
        assert_eq!(
            ctx.scrub(r#"role "x" does not exist; x"#),
            r#"role "***" does not exist; ***"#
        );
        let ctx = Ctx::new("amqp://u:ab@h", Duration::from_secs(1));
        assert_eq!(ctx.scrub("ab ab,abc"), "*** ***,abc");
    }

    #[test]
    fn host_port_brackets_ipv6() {
        assert_eq!(host_port("::1", 5432), "[::1]:5432");
        assert_eq!(host_port("db", 5432), "db:5432");
    }
}
