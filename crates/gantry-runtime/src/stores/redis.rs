//! Redis probe: connect (AUTH and SELECT from the URL; `rediss://` over TLS), `PING`, and
//! with `rw = true` `SET gantry:probe:<random> EX 60` / `GET` / `DEL`.
//!
//! For `rediss://` the probe does the TCP connect and the rustls handshake itself (the
//! probe's `ca_file` or the system roots, chain and host name verified) and hands the
//! stream to the redis client, so every TLS probe shares one TLS stack and its messages.

use std::path::Path;
use std::sync::Arc;

use gantry_spec::StoreProbe;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, ErrorKind, RedisError};

use super::{Ctx, connect_failure, host_port, io_error, random_token, resolve};
use crate::tls::Verify;
use crate::tls::inspect::{Endpoint, Preamble};

/// The URL without its `rediss` scheme (the redis client parses it as `redis://`), and
/// whether it asked for TLS.
fn plain_url(url: &str) -> (String, bool) {
    match url.get(..9) {
        Some(scheme) if scheme.eq_ignore_ascii_case("rediss://") => {
            (format!("redis://{}", &url[9..]), true)
        }
        _ => (url.to_string(), false),
    }
}

pub(super) async fn check(p: &StoreProbe, ctx: &Ctx, base: &Path) -> Result<String, String> {
    let (url, tls) = plain_url(&p.url);
    let client = redis::Client::open(url.as_str())
        .map_err(|e| format!("invalid redis URL: {}", describe(&e, "", 0)))?;
    let info = client.get_connection_info();
    let db = info.redis_settings().db();
    let (target, host_and_port) = match info.addr() {
        ConnectionAddr::Tcp(host, port) => {
            ctx.step("resolving the host name");
            resolve(host, *port).await?;
            (host_port(host, *port), Some((host.clone(), *port)))
        }
        ConnectionAddr::Unix(path) => (path.display().to_string(), None),
        _ => return Err("unsupported redis address".into()),
    };

    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(ctx.client_timeout()))
        .set_response_timeout(Some(ctx.client_timeout()));
    let Some((host, port)) = host_and_port.filter(|_| tls) else {
        if tls {
            return Err("rediss:// needs a host and port, not a unix socket".into());
        }
        ctx.step("connecting");
        // The multiplexed connection's driver task ends when this, its only handle, is dropped.
        let mut con = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| describe(&e, &target, db))?;
        return work(&mut con, p, ctx, &target, db).await;
    };

    ctx.step("loading the TLS settings");
    let tls_config = crate::tls::client_config(&p.tls, base, Verify::Full.with(&p.tls)).await?;
    ctx.step("connecting");
    let stream = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| connect_failure(&e, &target).unwrap_or_else(|| format!("{e} ({target})")))?;
    ctx.step("TLS handshake");
    let stream = crate::tls::handshake(stream, &host, Arc::new(tls_config)).await?;
    ctx.step("authenticating");
    let (mut con, driver) =
        MultiplexedConnection::new_with_config(info.redis_settings(), stream, config)
            .await
            .map_err(|e| describe(&e, &target, db))?;
    tokio::select! {
        r = work(&mut con, p, ctx, &target, db) => r,
        () = driver => Err(format!("the server closed the connection while {}", ctx.current_step())),
    }
}

/// The TLS endpoint of a `rediss://` probe.
pub(super) fn tls_endpoint(p: &StoreProbe) -> Option<Endpoint> {
    let (url, tls) = plain_url(&p.url);
    if !tls {
        return None;
    }
    let client = redis::Client::open(url.as_str()).ok()?;
    match client.get_connection_info().addr() {
        ConnectionAddr::Tcp(host, port) => Some(Endpoint {
            host: host.clone(),
            port: *port,
            preamble: Preamble::None,
            verify: Verify::Full.with(&p.tls),
            tls: p.tls.clone(),
        }),
        _ => None,
    }
}

async fn work(
    con: &mut MultiplexedConnection,
    p: &StoreProbe,
    ctx: &Ctx,
    target: &str,
    db: i64,
) -> Result<String, String> {
    let fail = |e: RedisError| format!("{}: {}", ctx.current_step(), describe(&e, target, db));

    ctx.step("running PING");
    let pong: String = redis::cmd("PING").query_async(con).await.map_err(fail)?;
    if pong != "PONG" {
        return Err(format!("PING answered {pong:?}"));
    }
    if !p.rw {
        return Ok("connected, PING ok".into());
    }
    let key = format!("gantry:probe:{}", random_token());
    let value = random_token();
    ctx.step("running SET");
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(&value)
        .arg("EX")
        .arg(60)
        .query_async(con)
        .await
        .map_err(fail)?;
    ctx.step("running GET");
    let read: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(con)
        .await
        .map_err(fail)?;
    ctx.step("running DEL");
    let deleted: u64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(con)
        .await
        .map_err(fail)?;
    if read.as_deref() != Some(value.as_str()) {
        return Err(format!("SET/GET: read back {read:?}, wrote {value:?}"));
    }
    if deleted != 1 {
        return Err(format!("DEL removed {deleted} keys, expected 1"));
    }
    Ok("connected, PING ok, SET/GET/DEL ok".into())
}

fn describe(e: &RedisError, target: &str, db: i64) -> String {
    if let Some(tls) = crate::tls::find_error(e) {
        let host = target.rsplit_once(':').map_or(target, |(h, _)| h);
        return crate::tls::describe(tls, host).to_string();
    }
    let text = e.to_string();
    let upper = text.to_ascii_uppercase();
    if e.kind() == ErrorKind::AuthenticationFailed
        || upper.contains("WRONGPASS")
        || upper.contains("NOAUTH")
        || upper.contains("NOPERM")
        || upper.contains("AUTH <PASSWORD> CALLED WITHOUT")
        || upper.contains("INVALID USERNAME-PASSWORD")
    {
        return format!("authentication failed: {text}");
    }
    if upper.contains("DB INDEX IS OUT OF RANGE") {
        return format!("database {db} does not exist: {text}");
    }
    if upper.contains("LOADING") {
        return format!("the server is still loading its data set: {text}");
    }
    if let Some(m) = io_error(e).and_then(|io| connect_failure(io, target)) {
        return m;
    }
    // redis keeps its io::Error to itself (no `source()`), but says when it was a refusal.
    if e.is_connection_refusal() && !target.starts_with('/') {
        return format!("connection refused ({target})");
    }
    if e.is_timeout() {
        return format!("timed out ({target})");
    }
    text
}
