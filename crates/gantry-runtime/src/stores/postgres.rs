//! PostgreSQL probe: connect (tokio-postgres; TLS on rustls for `sslmode=require`,
//! `verify-ca` and `verify-full`), `SELECT 1`, and with `rw = true` a write/read/delete round
//! trip in the scratch table.
//!
//! tokio-postgres knows `sslmode` disable, prefer and require only, and no certificate
//! parameters, so the probe takes `sslmode` and libpq's `sslrootcert`, `sslcert` and
//! `sslkey` out of the URL (the probe's `ca_file`, `cert_file`, `key_file` win over them)
//! and hands tokio-postgres `sslmode=require` with its own rustls connector. As in libpq,
//! `require` encrypts without verifying unless a CA is given, `verify-ca` checks the chain
//! and `verify-full` the chain and the host name; `disable`, `allow` and `prefer` connect
//! without TLS.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use gantry_spec::{StoreProbe, TlsOptions};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, Config, NoTls};

use super::{Ctx, SCRATCH_TABLE, connect_failure, host_port, io_error, random_token, resolve};
use crate::tls::Verify;
use crate::tls::inspect::{Endpoint, Preamble};

pub(super) async fn check(p: &StoreProbe, ctx: &Ctx, base: &Path) -> Result<String, String> {
    let url = PgUrl::parse(&p.url, &p.tls)?;
    let mut config: Config = url
        .url
        .parse()
        .map_err(|e| format!("invalid postgres URL: {e}"))?;
    config.connect_timeout(ctx.client_timeout());
    let targets = targets(&config);
    ctx.step("resolving the host name");
    for h in config.get_hosts().iter().zip(ports(&config)) {
        if let (Host::Tcp(host), port) = h {
            resolve(host, port).await?;
        }
    }

    match url.verify {
        None => {
            ctx.step("connecting");
            let (client, connection) = config
                .connect(NoTls)
                .await
                .map_err(|e| describe(&e, &targets))?;
            session(client, connection, p, ctx, &targets).await
        }
        Some(verify) => {
            ctx.step("loading the TLS settings");
            let tls = crate::tls::client_config(&url.tls, base, verify).await?;
            ctx.step("connecting over TLS");
            let (client, connection) = config
                .connect(RustlsConnect(Arc::new(tls)))
                .await
                .map_err(|e| describe(&e, &targets))?;
            session(client, connection, p, ctx, &targets).await
        }
    }
}

/// The work on an open connection, then a polite close.
async fn session<S, T>(
    client: Client,
    connection: tokio_postgres::Connection<S, T>,
    p: &StoreProbe,
    ctx: &Ctx,
    targets: &str,
) -> Result<String, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let targets = targets.to_string();
    let targets = targets.as_str();
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        r = work(&client, p, ctx, targets) => r,
        r = &mut connection => Err(match r {
            Ok(()) => format!("the server closed the connection while {}", ctx.current_step()),
            Err(e) => describe(&e, targets),
        }),
    };
    // Dropping the client makes the connection send Terminate and finish.
    ctx.step("closing the connection");
    drop(client);
    let _ = connection.await;
    result
}

async fn work(client: &Client, p: &StoreProbe, ctx: &Ctx, targets: &str) -> Result<String, String> {
    let fail =
        |e: tokio_postgres::Error| format!("{}: {}", ctx.current_step(), describe(&e, targets));
    ctx.step("running SELECT 1");
    client.simple_query("SELECT 1").await.map_err(fail)?;
    if !p.rw {
        return Ok("connected, SELECT 1 ok".into());
    }
    ctx.step(format!("creating table {SCRATCH_TABLE}"));
    let create = format!(
        "CREATE TABLE IF NOT EXISTS {SCRATCH_TABLE} \
         (k text primary key, v text, at timestamptz default now())"
    );
    if let Err(e) = client.batch_execute(&create).await {
        // Two first-time probes can race on the catalog (pg_type unique index); the table
        // exists once either wins.
        if e.code() != Some(&SqlState::UNIQUE_VIOLATION) {
            return Err(fail(e));
        }
        client.batch_execute(&create).await.map_err(fail)?;
    }
    let key = format!("gantry-probe-{}", random_token());
    let value = random_token();
    ctx.step(format!("inserting into {SCRATCH_TABLE}"));
    client
        .execute(
            &format!("INSERT INTO {SCRATCH_TABLE} (k, v) VALUES ($1, $2)"),
            &[&key, &value],
        )
        .await
        .map_err(fail)?;
    ctx.step(format!("reading back from {SCRATCH_TABLE}"));
    let read: Option<String> = client
        .query_opt(
            &format!("SELECT v FROM {SCRATCH_TABLE} WHERE k = $1"),
            &[&key],
        )
        .await
        .map_err(fail)?
        .map(|r| r.get(0));
    ctx.step(format!("deleting from {SCRATCH_TABLE}"));
    let deleted = client
        .execute(
            &format!("DELETE FROM {SCRATCH_TABLE} WHERE k = $1"),
            &[&key],
        )
        .await
        .map_err(fail)?;
    super::round_trip_result(read.as_deref(), &value, deleted)?;
    Ok("connected, SELECT 1 ok, write/read/delete ok".into())
}

fn ports(config: &Config) -> Vec<u16> {
    let hosts = config.get_hosts().len();
    let ports = config.get_ports();
    (0..hosts)
        .map(|i| match ports.len() {
            0 => 5432,
            1 => ports[0],
            _ => ports.get(i).copied().unwrap_or(5432),
        })
        .collect()
}

fn targets(config: &Config) -> String {
    let list: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(ports(config))
        .map(|(h, port)| match h {
            Host::Tcp(host) => host_port(host, port),
            Host::Unix(path) => path.join(format!(".s.PGSQL.{port}")).display().to_string(),
        })
        .collect();
    if list.is_empty() {
        "default socket".into()
    } else {
        list.join(", ")
    }
}

/// What went wrong, in the words of the error's kind.
fn describe(e: &tokio_postgres::Error, targets: &str) -> String {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let msg = db.message();
        return if *code == SqlState::INVALID_CATALOG_NAME {
            // 'database "x" does not exist'
            msg.to_string()
        } else if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            format!("authentication failed: {msg}")
        } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
            format!("the database is read-only: {msg}")
        } else if *code == SqlState::CANNOT_CONNECT_NOW || *code == SqlState::ADMIN_SHUTDOWN {
            format!("the server is not accepting connections: {msg}")
        } else if *code == SqlState::TOO_MANY_CONNECTIONS {
            format!("too many connections: {msg}")
        } else {
            format!("server error {}: {msg}", code.code())
        };
    }
    if let Some(io) = io_error(e)
        && let Some(m) = connect_failure(io, targets)
    {
        return m;
    }
    if let Some(tls) = crate::tls::find_error(e) {
        let host = targets.rsplit_once(':').map_or(targets, |(h, _)| h);
        return crate::tls::describe(tls, host).to_string();
    }
    let text = e.to_string();
    if text.contains("password missing") {
        return "authentication failed: the server asks for a password and the URL has none".into();
    }
    if text.contains("server does not support TLS") {
        return format!(
            "the server does not accept TLS ({targets}): turn ssl on in its postgresql.conf, or use sslmode=prefer or sslmode=disable in the URL"
        );
    }
    if text.contains("TLS") {
        // The kind alone ("error performing TLS handshake") does not say why; the cause
        // is in the source.
        let cause = std::error::Error::source(e)
            .map(|c| format!(": {c}"))
            .unwrap_or_default();
        return format!("{text}{cause} ({targets})");
    }
    text
}

/// `sslmode` values, libpq's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// A postgres URL (or key=value string) as tokio-postgres takes it, and the TLS the probe
/// adds.
#[derive(Debug, PartialEq, Eq)]
struct PgUrl {
    /// Without `sslrootcert`, `sslcert`, `sslkey`; `sslmode` as tokio-postgres knows it.
    url: String,
    /// `None`: no TLS (disable, allow, prefer or no sslmode).
    verify: Option<Verify>,
    /// The probe's keys, with the URL's certificate parameters where the probe has none.
    tls: TlsOptions,
}

impl PgUrl {
    fn parse(url: &str, probe: &TlsOptions) -> Result<PgUrl, String> {
        let mut mode = None;
        let mut tls = probe.clone();
        let mut keep = |key: &str, value: &str| -> Result<Option<&'static str>, String> {
            match key {
                "sslmode" => {
                    let (m, as_written) = match value {
                        "disable" => (SslMode::Disable, "disable"),
                        "allow" => (SslMode::Allow, "prefer"),
                        "prefer" => (SslMode::Prefer, "prefer"),
                        "require" => (SslMode::Require, "require"),
                        "verify-ca" => (SslMode::VerifyCa, "require"),
                        "verify-full" => (SslMode::VerifyFull, "require"),
                        other => {
                            return Err(format!(
                                "invalid postgres URL: sslmode={other:?} (disable, allow, prefer, require, verify-ca or verify-full)"
                            ));
                        }
                    };
                    mode = Some(m);
                    Ok(Some(as_written))
                }
                "sslrootcert" => {
                    // libpq 16: `system` means the system roots.
                    if value != "system" && tls.ca_file.is_none() {
                        tls.ca_file = Some(value.to_string());
                    }
                    Ok(None)
                }
                "sslcert" => {
                    tls.cert_file.get_or_insert_with(|| value.to_string());
                    Ok(None)
                }
                "sslkey" => {
                    tls.key_file.get_or_insert_with(|| value.to_string());
                    Ok(None)
                }
                _ => Ok(Some("")),
            }
        };
        let rewritten = if url.contains("://") {
            let (head, query) = match url.split_once('?') {
                Some((h, q)) => (h, Some(q)),
                None => (url, None),
            };
            let mut params = Vec::new();
            for param in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
                let (k, v) = param.split_once('=').unwrap_or((param, ""));
                let value = crate::stores::urls::decode(v);
                match keep(k, &value)? {
                    None => {}
                    Some("") => params.push(param.to_string()),
                    Some(mode) => params.push(format!("{k}={mode}")),
                }
            }
            if params.is_empty() {
                head.to_string()
            } else {
                format!("{head}?{}", params.join("&"))
            }
        } else {
            let mut out = Vec::new();
            for (raw, k, v) in key_values(url) {
                match keep(k, &v)? {
                    None => {}
                    Some("") => out.push(raw.to_string()),
                    Some(mode) => out.push(format!("{k}={mode}")),
                }
            }
            out.join(" ")
        };
        let verify = match mode {
            None | Some(SslMode::Disable | SslMode::Allow | SslMode::Prefer) => None,
            // libpq: require with a root certificate verifies the chain.
            Some(SslMode::Require) if tls.ca_file.is_none() => Some(Verify::None),
            Some(SslMode::Require | SslMode::VerifyCa) => Some(Verify::ChainOnly),
            Some(SslMode::VerifyFull) => Some(Verify::Full),
        };
        let verify = verify.map(|v| v.with(&tls));
        Ok(PgUrl {
            url: rewritten,
            verify,
            tls,
        })
    }
}

/// The `key=value` pairs of a libpq connection string: the raw text of each pair, its key
/// and its (unquoted) value.
fn key_values(s: &str) -> Vec<(&str, &str, String)> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < s.len() {
        while i < s.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while i < s.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &s[start..i];
        if i >= s.len() || bytes[i] != b'=' {
            if !key.is_empty() {
                out.push((key, key, String::new()));
            }
            continue;
        }
        i += 1;
        let mut value = String::new();
        if i < s.len() && bytes[i] == b'\'' {
            i += 1;
            while i < s.len() && bytes[i] != b'\'' {
                if bytes[i] == b'\\' && i + 1 < s.len() {
                    i += 1;
                }
                let ch = s[i..].chars().next().unwrap_or_default();
                value.push(ch);
                i += ch.len_utf8().max(1);
            }
            i = (i + 1).min(s.len());
        } else {
            let vstart = i;
            while i < s.len() && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            value.push_str(&s[vstart..i]);
        }
        out.push((&s[start..i], key, value));
    }
    out
}

/// The TLS endpoint of a postgres probe whose URL asks for TLS (its first TCP host).
pub(super) fn tls_endpoint(p: &StoreProbe) -> Option<Endpoint> {
    let url = PgUrl::parse(&p.url, &p.tls).ok()?;
    let verify = url.verify?;
    let config: Config = url.url.parse().ok()?;
    let (host, port) =
        config
            .get_hosts()
            .iter()
            .zip(ports(&config))
            .find_map(|(h, port)| match h {
                Host::Tcp(host) => Some((host.clone(), port)),
                Host::Unix(_) => None,
            })?;
    Some(Endpoint {
        host,
        port,
        preamble: Preamble::Postgres,
        verify,
        tls: url.tls,
    })
}

/// tokio-postgres' TLS hook on tokio-rustls.
struct RustlsConnect(Arc<rustls::ClientConfig>);

impl<S> MakeTlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsHandshake;
    type Error = std::io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsHandshake, std::io::Error> {
        let name = crate::tls::server_name(domain)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        Ok(RustlsHandshake(self.0.clone(), name))
    }
}

struct RustlsHandshake(
    Arc<rustls::ClientConfig>,
    rustls::pki_types::ServerName<'static>,
);

impl<S> TlsConnect<S> for RustlsHandshake
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let RustlsHandshake(config, name) = self;
        Box::pin(async move {
            tokio_rustls::TlsConnector::from(config)
                .connect(name, stream)
                .await
                .map(RustlsStream)
        })
    }
}

/// A TLS session to the server (no channel binding: SCRAM without -PLUS).
struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> PgUrl {
        PgUrl::parse(url, &TlsOptions::default()).expect("parses")
    }

    #[test]
    fn sslmode_is_taken_out_for_tokio_postgres() {
        let u = parse("postgres://app@db:5432/app?sslmode=verify-full&application_name=x");
        assert_eq!(
            u.url,
            "postgres://app@db:5432/app?sslmode=require&application_name=x"
        );
        assert_eq!(u.verify, Some(Verify::Full));
        let u = parse("postgres://app@db/app?sslmode=require");
        assert_eq!(u.verify, Some(Verify::None));
        let u = parse("postgres://app@db/app?sslmode=require&sslrootcert=%2Fetc%2Fca.pem");
        assert_eq!(u.url, "postgres://app@db/app?sslmode=require");
        assert_eq!(u.verify, Some(Verify::ChainOnly));
        assert_eq!(u.tls.ca_file.as_deref(), Some("/etc/ca.pem"));
        let u = parse("postgres://app@db/app?sslmode=verify-ca");
        assert_eq!(u.verify, Some(Verify::ChainOnly));
        for plain in [
            "postgres://app@db/app",
            "postgres://app@db/app?sslmode=disable",
            "postgres://app@db/app?sslmode=prefer",
        ] {
            assert_eq!(parse(plain).verify, None, "{plain}");
            assert_eq!(parse(plain).url, plain);
        }
        assert_eq!(
            parse("postgres://h/d?sslmode=allow").url,
            "postgres://h/d?sslmode=prefer"
        );
        assert!(PgUrl::parse("postgres://h/d?sslmode=strict", &TlsOptions::default()).is_err());
    }

    #[test]
    fn key_value_strings_too() {
        let u = parse("host=db user=app sslmode=verify-full sslrootcert='/c a.pem' dbname=app");
        assert_eq!(u.url, "host=db user=app sslmode=require dbname=app");
        assert_eq!(u.verify, Some(Verify::Full));
        assert_eq!(u.tls.ca_file.as_deref(), Some("/c a.pem"));
        let u = parse("host=db password='x y' dbname=app");
        assert_eq!(u.url, "host=db password='x y' dbname=app");
        assert_eq!(u.verify, None);
    }

    #[test]
    fn the_probe_keys_win_and_insecure_verifies_nothing() {
        let probe = TlsOptions {
            ca_file: Some("mine.pem".into()),
            ..TlsOptions::default()
        };
        let u = PgUrl::parse(
            "postgres://h/d?sslmode=verify-full&sslrootcert=theirs.pem",
            &probe,
        )
        .unwrap();
        assert_eq!(u.tls.ca_file.as_deref(), Some("mine.pem"));
        let insecure = TlsOptions {
            insecure_skip_verify: true,
            ..TlsOptions::default()
        };
        let u = PgUrl::parse("postgres://h/d?sslmode=verify-full", &insecure).unwrap();
        assert_eq!(u.verify, Some(Verify::None));
    }

    #[test]
    fn the_endpoint_is_the_first_tcp_host() {
        let p = StoreProbe {
            url: "postgres://app@db.internal:5433/app?sslmode=verify-full".into(),
            ..StoreProbe::default()
        };
        let ep = tls_endpoint(&p).expect("a TLS endpoint");
        assert_eq!((ep.host.as_str(), ep.port), ("db.internal", 5433));
        assert_eq!(ep.preamble, Preamble::Postgres);
        let plain = StoreProbe {
            url: "postgres://app@db/app".into(),
            ..StoreProbe::default()
        };
        assert_eq!(tls_endpoint(&plain), None);
    }
}
