//! MySQL / MariaDB probe: connect (mysql_async, plain TCP), `SELECT 1`, and with `rw = true`
//! a write/read/delete round trip in the scratch table of the URL's database.

use gantry_spec::StoreProbe;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};

use super::{Ctx, SCRATCH_TABLE, connect_failure, host_port, io_error, random_token, resolve};

pub(super) async fn check(p: &StoreProbe, ctx: &Ctx) -> Result<String, String> {
    let opts = Opts::from_url(&p.url).map_err(|e| format!("invalid mysql URL: {e}"))?;
    let target = match opts.socket() {
        Some(sock) => sock.to_string(),
        None => host_port(opts.ip_or_hostname(), opts.tcp_port()),
    };
    let db = opts.db_name().map(str::to_string);
    if opts.socket().is_none() {
        ctx.step("resolving the host name");
        resolve(opts.ip_or_hostname(), opts.tcp_port()).await?;
    }
    // One plain connection: no switch to the unix socket after connecting over TCP (that
    // would be a second connection, and not the path the URL names).
    let opts = OptsBuilder::from_opts(opts).prefer_socket(false);

    ctx.step("connecting");
    let mut conn = Conn::new(opts)
        .await
        .map_err(|e| describe(&e, &target, db.as_deref()))?;
    let result = work(&mut conn, p, ctx, &target, db.as_deref()).await;
    ctx.step("closing the connection");
    let _ = conn.disconnect().await;
    result
}

async fn work(
    conn: &mut Conn,
    p: &StoreProbe,
    ctx: &Ctx,
    target: &str,
    db: Option<&str>,
) -> Result<String, String> {
    let fail =
        |e: mysql_async::Error| format!("{}: {}", ctx.current_step(), describe(&e, target, db));
    ctx.step("running SELECT 1");
    let one: Option<i64> = conn.query_first("SELECT 1").await.map_err(fail)?;
    if one != Some(1) {
        return Err(format!("SELECT 1 returned {one:?}"));
    }
    if !p.rw {
        return Ok("connected, SELECT 1 ok".into());
    }
    if db.is_none() {
        return Err(format!(
            "rw = true needs a database in the URL (mysql://user@host:3306/DB) for {SCRATCH_TABLE}"
        ));
    }
    ctx.step(format!("creating table {SCRATCH_TABLE}"));
    conn.query_drop(format!(
        "CREATE TABLE IF NOT EXISTS {SCRATCH_TABLE} \
         (k VARCHAR(64) PRIMARY KEY, v TEXT, at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)"
    ))
    .await
    .map_err(fail)?;
    let key = format!("gantry-probe-{}", random_token());
    let value = random_token();
    ctx.step(format!("inserting into {SCRATCH_TABLE}"));
    conn.exec_drop(
        format!("INSERT INTO {SCRATCH_TABLE} (k, v) VALUES (?, ?)"),
        (&key, &value),
    )
    .await
    .map_err(fail)?;
    ctx.step(format!("reading back from {SCRATCH_TABLE}"));
    let read: Option<String> = conn
        .exec_first(
            format!("SELECT v FROM {SCRATCH_TABLE} WHERE k = ?"),
            (&key,),
        )
        .await
        .map_err(fail)?;
    ctx.step(format!("deleting from {SCRATCH_TABLE}"));
    conn.exec_drop(format!("DELETE FROM {SCRATCH_TABLE} WHERE k = ?"), (&key,))
        .await
        .map_err(fail)?;
    let deleted = conn.affected_rows();
    super::round_trip_result(read.as_deref(), &value, deleted)?;
    Ok("connected, SELECT 1 ok, write/read/delete ok".into())
}

/// What went wrong, by MySQL error code or socket error.
fn describe(e: &mysql_async::Error, target: &str, db: Option<&str>) -> String {
    match e {
        mysql_async::Error::Server(s) => match s.code {
            // ER_BAD_DB_ERROR
            1049 => format!(
                "database {} does not exist ({})",
                db.map(|d| format!("{d:?}")).unwrap_or_default(),
                s.message
            ),
            // ER_ACCESS_DENIED_ERROR, ER_ACCESS_DENIED_NO_PASSWORD_ERROR, ER_HOST_NOT_PRIVILEGED
            1045 | 1698 | 1130 => format!("authentication failed: {}", s.message),
            // ER_DBACCESS_DENIED_ERROR
            1044 => format!("access to the database denied: {}", s.message),
            // ER_CON_COUNT_ERROR
            1040 => format!("too many connections: {}", s.message),
            // ER_OPTION_PREVENTS_STATEMENT (read_only), ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
            1290 | 1792 => format!("the database is read-only: {}", s.message),
            code => format!("server error {code} ({}): {}", s.state, s.message),
        },
        mysql_async::Error::Io(_) => match io_error(e).and_then(|io| connect_failure(io, target)) {
            Some(m) => m,
            None => format!("{e} ({target})"),
        },
        mysql_async::Error::Driver(mysql_async::DriverError::ConnectionClosed) => {
            format!("the server closed the connection ({target})")
        }
        other => other.to_string(),
    }
}
