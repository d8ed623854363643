//! Redis probe: connect (AUTH and SELECT from the URL), `PING`, and with `rw = true`
//! `SET gantry:probe:<random> EX 60` / `GET` / `DEL`.

use gantry_spec::StoreProbe;
use redis::{AsyncConnectionConfig, ConnectionAddr, ErrorKind, RedisError};

use super::{Ctx, connect_failure, host_port, io_error, random_token, resolve};

pub(super) async fn check(p: &StoreProbe, ctx: &Ctx) -> Result<String, String> {
    let client = redis::Client::open(p.url.as_str())
        .map_err(|e| format!("invalid redis URL: {}", describe(&e, "", 0)))?;
    let info = client.get_connection_info();
    let db = info.redis_settings().db();
    let target = match info.addr() {
        ConnectionAddr::Tcp(host, port) => {
            ctx.step("resolving the host name");
            resolve(host, *port).await?;
            host_port(host, *port)
        }
        ConnectionAddr::Unix(path) => path.display().to_string(),
        _ => return Err("rediss:// (TLS) is not supported by this build".into()),
    };

    ctx.step("connecting");
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(ctx.client_timeout()))
        .set_response_timeout(Some(ctx.client_timeout()));
    // The multiplexed connection's driver task ends when this, its only handle, is dropped.
    let mut con = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| describe(&e, &target, db))?;
    let fail = |e: RedisError| format!("{}: {}", ctx.current_step(), describe(&e, &target, db));

    ctx.step("running PING");
    let pong: String = redis::cmd("PING")
        .query_async(&mut con)
        .await
        .map_err(fail)?;
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
        .query_async(&mut con)
        .await
        .map_err(fail)?;
    ctx.step("running GET");
    let read: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut con)
        .await
        .map_err(fail)?;
    ctx.step("running DEL");
    let deleted: u64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut con)
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
