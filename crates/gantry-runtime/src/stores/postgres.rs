//! PostgreSQL probe: connect (tokio-postgres, no TLS), `SELECT 1`, and with `rw = true` a
//! write/read/delete round trip in the scratch table.

use gantry_spec::StoreProbe;
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};

use super::{Ctx, SCRATCH_TABLE, connect_failure, host_port, io_error, random_token, resolve};

pub(super) async fn check(p: &StoreProbe, ctx: &Ctx) -> Result<String, String> {
    let mut config: Config = p
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

    ctx.step("connecting");
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| describe(&e, &targets))?;
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        r = work(&client, p, ctx, &targets) => r,
        r = &mut connection => Err(match r {
            Ok(()) => format!("the server closed the connection while {}", ctx.current_step()),
            Err(e) => describe(&e, &targets),
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
    let text = e.to_string();
    if text.contains("password missing") {
        return "authentication failed: the server asks for a password and the URL has none".into();
    }
    if text.contains("TLS") {
        // The kind alone ("error performing TLS handshake") does not say why; the cause
        // is in the source ("no TLS implementation configured").
        let cause = std::error::Error::source(e)
            .map(|c| format!(": {c}"))
            .unwrap_or_default();
        return format!(
            "{text}{cause}; this probe connects without TLS: use sslmode=prefer or sslmode=disable in the URL"
        );
    }
    text
}
