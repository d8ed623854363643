//! Store probes against the real servers on this machine (PostgreSQL, MariaDB, Redis,
//! RabbitMQ, NATS JetStream) and real SQLite files: passes, rw round trips, and each
//! failure with the message it must give. Run `scripts/stores` first to start the servers.
//!
//! Every test makes its own database / queues / streams with unique names, collects the
//! probe outcomes, cleans up, and only then asserts, so a failing assertion leaves nothing
//! behind on the shared servers.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use gantry_runtime::probe::ProbeOutcome;
use gantry_runtime::stores::{self, SCRATCH_TABLE};
use gantry_spec::{ProbeKind, StoreProbe};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Fails the test (never skips it) when a server is down.
fn require(name: &str, port: u16) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    if TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_err() {
        panic!(
            "{name} is not answering on 127.0.0.1:{port}; run scripts/stores to start the \
             store servers the store-probe tests need"
        );
    }
}

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A port nothing listens on (bound, then released).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn sp(url: impl Into<String>) -> StoreProbe {
    StoreProbe {
        url: url.into(),
        ..Default::default()
    }
}

async fn run(kind: &ProbeKind) -> ProbeOutcome {
    stores::check(kind, TIMEOUT, Path::new("/nonexistent-base")).await
}

#[track_caller]
fn assert_ok(o: &ProbeOutcome, contains: &str) {
    assert!(o.ok, "expected a pass, got: {}", o.message);
    assert!(
        o.message.contains(contains),
        "expected {contains:?} in: {}",
        o.message
    );
}

#[track_caller]
fn assert_fail(o: &ProbeOutcome, contains: &str) {
    assert!(!o.ok, "expected a failure, got a pass: {}", o.message);
    assert!(
        o.message.contains(contains),
        "expected {contains:?} in: {}",
        o.message
    );
}

// ---------------------------------------------------------------------------- postgres

async fn pg_admin() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres",
        tokio_postgres::NoTls,
    )
    .await
    .expect("connect to PostgreSQL as postgres");
    tokio::spawn(conn);
    client
}

#[tokio::test]
async fn postgres_select_and_rw_round_trip_pass() {
    require("PostgreSQL", 5432);
    let admin = pg_admin().await;
    let db = unique("gantry_probe");
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let url = format!("postgres://postgres@127.0.0.1:5432/{db}");
    let plain = run(&ProbeKind::Postgres(sp(&url))).await;
    let rw = run(&ProbeKind::Postgres(StoreProbe {
        rw: true,
        ..sp(&url)
    }))
    .await;
    // Twice: the second run finds the scratch table already there.
    let rw2 = run(&ProbeKind::Postgres(StoreProbe {
        rw: true,
        ..sp(&url)
    }))
    .await;
    let left = {
        let (c, conn) = tokio_postgres::connect(
            &format!("host=127.0.0.1 user=postgres dbname={db}"),
            tokio_postgres::NoTls,
        )
        .await
        .unwrap();
        let h = tokio::spawn(conn);
        let n: i64 = c
            .query_one(&format!("SELECT count(*) FROM {SCRATCH_TABLE}"), &[])
            .await
            .unwrap()
            .get(0);
        drop(c);
        let _ = h.await;
        n
    };
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await
        .unwrap();

    assert_ok(&plain, "SELECT 1 ok");
    assert!(plain.message.contains(&url), "{}", plain.message);
    assert_ok(&rw, "write/read/delete ok");
    assert_ok(&rw2, "write/read/delete ok");
    assert_eq!(left, 0, "the round trip leaves no row behind");
}

#[tokio::test]
async fn postgres_missing_database_is_named() {
    require("PostgreSQL", 5432);
    let db = unique("gantry_probe_missing");
    let o = run(&ProbeKind::Postgres(sp(format!(
        "postgres://postgres@127.0.0.1:5432/{db}"
    ))))
    .await;
    assert_fail(&o, &format!("database \"{db}\" does not exist"));
}

#[tokio::test]
async fn postgres_unknown_role_is_an_authentication_failure() {
    // The server trusts every local connection, so a wrong password cannot be tested;
    // a role that does not exist fails authentication all the same.
    require("PostgreSQL", 5432);
    let o = run(&ProbeKind::Postgres(sp(
        "postgres://gantry_no_such_role:hunter2-secret@127.0.0.1:5432/postgres",
    )))
    .await;
    assert_fail(&o, "authentication failed");
    assert_fail(&o, "gantry_no_such_role");
    assert!(!o.message.contains("hunter2-secret"), "{}", o.message);
    assert!(
        o.message.contains("gantry_no_such_role:***@"),
        "{}",
        o.message
    );
}

// ---------------------------------------------------------------------------- mysql

async fn mysql_admin() -> mysql_async::Conn {
    mysql_async::Conn::new(mysql_async::Opts::from_url("mysql://root@127.0.0.1:3306").unwrap())
        .await
        .expect("connect to MariaDB as root")
}

#[tokio::test]
async fn mysql_select_and_rw_round_trip_pass() {
    use mysql_async::prelude::Queryable;
    require("MariaDB", 3306);
    let mut admin = mysql_admin().await;
    let db = unique("gantry_probe");
    admin
        .query_drop(format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let url = format!("mysql://root@127.0.0.1:3306/{db}");
    let plain = run(&ProbeKind::Mysql(sp(&url))).await;
    let rw = run(&ProbeKind::Mysql(StoreProbe {
        rw: true,
        ..sp(&url)
    }))
    .await;
    let no_db = run(&ProbeKind::Mysql(StoreProbe {
        rw: true,
        ..sp("mysql://root@127.0.0.1:3306")
    }))
    .await;
    let left: Option<i64> = admin
        .query_first(format!("SELECT count(*) FROM {db}.{SCRATCH_TABLE}"))
        .await
        .unwrap();
    admin
        .query_drop(format!("DROP DATABASE IF EXISTS {db}"))
        .await
        .unwrap();
    admin.disconnect().await.unwrap();

    assert_ok(&plain, "SELECT 1 ok");
    assert_ok(&rw, "write/read/delete ok");
    assert_eq!(left, Some(0));
    assert_fail(&no_db, "needs a database in the URL");
}

#[tokio::test]
async fn mysql_missing_database_is_named() {
    require("MariaDB", 3306);
    let db = unique("gantry_probe_missing");
    let o = run(&ProbeKind::Mysql(sp(format!(
        "mysql://root@127.0.0.1:3306/{db}"
    ))))
    .await;
    assert_fail(&o, &format!("database \"{db}\" does not exist"));
}

#[tokio::test]
async fn mysql_bad_user_is_an_authentication_failure_without_the_password() {
    require("MariaDB", 3306);
    let o = run(&ProbeKind::Mysql(sp(
        "mysql://gantry_nobody:s3cr%40t-pw@127.0.0.1:3306/mysql",
    )))
    .await;
    assert_fail(&o, "authentication failed");
    assert_fail(&o, "Access denied");
    assert!(!o.message.contains("s3cr"), "{}", o.message);
    assert!(o.message.contains("gantry_nobody:***@"), "{}", o.message);
}

// ---------------------------------------------------------------------------- redis

#[tokio::test]
async fn redis_ping_and_rw_round_trip_pass() {
    require("Redis", 6379);
    let plain = run(&ProbeKind::Redis(sp("redis://127.0.0.1:6379"))).await;
    let rw = run(&ProbeKind::Redis(StoreProbe {
        rw: true,
        ..sp("redis://127.0.0.1:6379/3")
    }))
    .await;
    assert_ok(&plain, "PING ok");
    assert_ok(&rw, "SET/GET/DEL ok");
}

#[tokio::test]
async fn redis_failures_say_what_failed() {
    require("Redis", 6379);
    let db = run(&ProbeKind::Redis(sp("redis://127.0.0.1:6379/999"))).await;
    assert_fail(&db, "database 999 does not exist");
    let auth = run(&ProbeKind::Redis(sp(
        "redis://gantry_nobody:wr0ng-pw@127.0.0.1:6379",
    )))
    .await;
    assert_fail(&auth, "authentication failed");
    assert!(!auth.message.contains("wr0ng-pw"), "{}", auth.message);
}

// ---------------------------------------------------------------------------- amqp

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

async fn amqp_admin() -> lapin::Connection {
    lapin::Connection::connect(AMQP, lapin::ConnectionProperties::default())
        .await
        .expect("connect to RabbitMQ as guest")
}

async fn declare_queue(
    conn: &lapin::Connection,
    name: &str,
    durable: bool,
    args: &[(&str, lapin::types::AMQPValue)],
) {
    let ch = conn.create_channel().await.unwrap();
    let mut table = lapin::types::FieldTable::default();
    for (k, v) in args {
        table.insert((*k).into(), v.clone());
    }
    ch.queue_declare(
        name.into(),
        lapin::options::QueueDeclareOptions {
            durable,
            ..Default::default()
        },
        table,
    )
    .await
    .unwrap();
    ch.close(200, "ok".into()).await.unwrap();
}

fn amqp_probe(queues: &[&str], require_dlq: bool) -> ProbeKind {
    ProbeKind::Amqp(StoreProbe {
        queues: queues.iter().map(|q| q.to_string()).collect(),
        require_dlq,
        ..sp(AMQP)
    })
}

#[tokio::test]
async fn amqp_queues_and_dead_letter_exchanges() {
    use lapin::types::{AMQPValue, LongString};
    require("RabbitMQ", 5672);
    let conn = amqp_admin().await;
    let plain = unique("gantry_probe_plain");
    let with_dlx = unique("gantry_probe_dlx");
    let durable_ttl = unique("gantry_probe_durable_ttl");
    let dangling = unique("gantry_probe_dangling");
    let dlx = unique("gantry_probe_dlx_exchange");
    let missing = unique("gantry_probe_missing");
    let dlx_arg = |x: &str| {
        (
            "x-dead-letter-exchange",
            AMQPValue::LongString(LongString::from(x)),
        )
    };
    {
        let ch = conn.create_channel().await.unwrap();
        ch.exchange_declare(
            dlx.as_str().into(),
            lapin::ExchangeKind::Fanout,
            Default::default(),
            Default::default(),
        )
        .await
        .unwrap();
        ch.close(200, "ok".into()).await.unwrap();
    }
    declare_queue(&conn, &plain, false, &[]).await;
    declare_queue(&conn, &with_dlx, false, &[dlx_arg(&dlx)]).await;
    // Durable, with a TTL argument that sorts before the DLX: the probe has to learn both.
    declare_queue(
        &conn,
        &durable_ttl,
        true,
        &[
            ("x-message-ttl", AMQPValue::LongInt(60_000)),
            ("x-max-length", AMQPValue::LongInt(1000)),
            dlx_arg(&dlx),
        ],
    )
    .await;
    declare_queue(
        &conn,
        &dangling,
        false,
        &[dlx_arg("gantry_probe_no_such_exchange")],
    )
    .await;

    let connect_only = run(&ProbeKind::Amqp(sp(AMQP))).await;
    let exist = run(&amqp_probe(&[&plain, &with_dlx], false)).await;
    let gone = run(&amqp_probe(&[&plain, &missing], false)).await;
    let dlq_ok = run(&amqp_probe(&[&with_dlx, &durable_ttl], true)).await;
    let no_dlq = run(&amqp_probe(&[&with_dlx, &plain], true)).await;
    let dangling_dlq = run(&amqp_probe(&[&dangling], true)).await;
    let missing_dlq = run(&amqp_probe(&[&missing], true)).await;

    // Cleanup before asserting. The DLX check must not have created or changed anything.
    let ch = conn.create_channel().await.unwrap();
    let mut counts = Vec::new();
    for q in [&plain, &with_dlx, &durable_ttl, &dangling] {
        counts.push(
            ch.queue_delete(q.as_str().into(), Default::default())
                .await
                .is_ok(),
        );
    }
    let _ = ch
        .exchange_delete(dlx.as_str().into(), Default::default())
        .await;
    let missing_created = {
        let ch2 = conn.create_channel().await.unwrap();
        let passive = ch2
            .queue_declare(
                missing.as_str().into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                Default::default(),
            )
            .await;
        if passive.is_ok() {
            let _ = ch2
                .queue_delete(missing.as_str().into(), Default::default())
                .await;
        }
        passive.is_ok()
    };
    let _ = conn.close(200, "ok".into()).await;

    assert_ok(&connect_only, "connected");
    assert_ok(&exist, "queues present");
    assert_fail(
        &gone,
        &format!("queue \"{missing}\" does not exist in vhost \"/\""),
    );
    assert_ok(&dlq_ok, &format!("{with_dlx} → {dlx}"));
    assert_ok(&dlq_ok, &format!("{durable_ttl} → {dlx}"));
    assert_fail(
        &no_dlq,
        &format!("queue \"{plain}\" has no dead-letter exchange"),
    );
    assert_fail(
        &dangling_dlq,
        "dead-letters to \"gantry_probe_no_such_exchange\"",
    );
    assert_fail(&dangling_dlq, "does not exist");
    assert_fail(&missing_dlq, "does not exist");
    assert!(
        !missing_created,
        "the probe must not create a missing queue"
    );
    assert_eq!(counts, vec![true; 4]);
}

#[tokio::test]
async fn amqp_missing_vhost_and_bad_password() {
    require("RabbitMQ", 5672);
    let vhost = unique("gantry_probe_vhost");
    let v = run(&ProbeKind::Amqp(sp(format!(
        "amqp://guest:guest@127.0.0.1:5672/{vhost}"
    ))))
    .await;
    assert_fail(&v, &format!("vhost \"{vhost}\" does not exist"));
    let auth = run(&ProbeKind::Amqp(sp(
        "amqp://guest:not-the-password@127.0.0.1:5672/%2f",
    )))
    .await;
    assert_fail(&auth, "authentication failed");
    assert!(
        !auth.message.contains("not-the-password"),
        "{}",
        auth.message
    );
    assert!(auth.message.contains("guest:***@"), "{}", auth.message);
}

// ---------------------------------------------------------------------------- nats

#[tokio::test]
async fn nats_connect_and_streams() {
    require("NATS", 4222);
    let stream = unique("gantry_probe_stream");
    let missing = unique("gantry_probe_missing");
    let client = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
    let js = async_nats::jetstream::new(client.clone());
    js.create_stream(async_nats::jetstream::stream::Config {
        name: stream.clone(),
        subjects: vec![format!("gantry.probe.{stream}.>")],
        storage: async_nats::jetstream::stream::StorageType::Memory,
        ..Default::default()
    })
    .await
    .unwrap();

    let url = "nats://127.0.0.1:4222";
    let connect_only = run(&ProbeKind::Nats(sp(url))).await;
    let present = run(&ProbeKind::Nats(StoreProbe {
        streams: vec![stream.clone()],
        ..sp(url)
    }))
    .await;
    let absent = run(&ProbeKind::Nats(StoreProbe {
        streams: vec![stream.clone(), missing.clone()],
        ..sp(url)
    }))
    .await;

    let deleted = js.delete_stream(&stream).await.is_ok();
    let _ = client.drain().await;

    assert_ok(&connect_only, "connected");
    assert_ok(&present, &format!("JetStream streams present: {stream}"));
    assert_fail(
        &absent,
        &format!("JetStream stream \"{missing}\" does not exist"),
    );
    assert!(deleted);
}

// ---------------------------------------------------------------------------- all network stores

fn network_kinds(host_port: &str) -> Vec<ProbeKind> {
    vec![
        ProbeKind::Postgres(sp(format!(
            "postgres://postgres:pw-x1@{host_port}/postgres"
        ))),
        ProbeKind::Mysql(sp(format!("mysql://root:pw-x1@{host_port}/mysql"))),
        ProbeKind::Redis(sp(format!("redis://:pw-x1@{host_port}/0"))),
        ProbeKind::Amqp(sp(format!("amqp://guest:pw-x1@{host_port}/%2f"))),
        ProbeKind::Nats(sp(format!("nats://u:pw-x1@{host_port}"))),
    ]
}

#[tokio::test]
async fn closed_port_is_connection_refused() {
    let port = free_port();
    for kind in network_kinds(&format!("127.0.0.1:{port}")) {
        let o = run(&kind).await;
        assert_fail(&o, &format!("connection refused (127.0.0.1:{port})"));
        assert!(!o.message.contains("pw-x1"), "{}", o.message);
        assert!(o.message.contains(":***@"), "{}", o.message);
    }
}

#[tokio::test]
async fn unresolvable_host_is_a_dns_failure() {
    for kind in network_kinds("nosuch.invalid:5999") {
        let o = run(&kind).await;
        assert_fail(&o, "DNS resolution of nosuch.invalid failed");
    }
}

#[tokio::test]
async fn a_silent_server_is_cut_at_the_timeout() {
    // Accepts connections (the kernel does, into the backlog) and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let timeout = Duration::from_millis(300);
    for kind in network_kinds(&addr.to_string()) {
        let started = std::time::Instant::now();
        let o = stores::check(&kind, timeout, Path::new(".")).await;
        let took = started.elapsed();
        assert_fail(&o, "timed out");
        assert!(
            took < Duration::from_secs(3),
            "{} took {took:?}",
            kind.name()
        );
    }
    drop(listener);
}

// ---------------------------------------------------------------------------- sqlite

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique("gantry-stores-test"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn sqlite(url: &str, rw: bool) -> ProbeKind {
    ProbeKind::Sqlite(StoreProbe { rw, ..sp(url) })
}

#[tokio::test]
async fn sqlite_quick_check_and_rw_pass() {
    let dir = temp_dir();
    let db = dir.join("app.db");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
    }
    // Relative to the base dir, with and without the sqlite:// prefix; and absolute.
    let rel = stores::check(&sqlite("app.db", false), TIMEOUT, &dir).await;
    let prefixed = stores::check(&sqlite("sqlite://app.db", true), TIMEOUT, &dir).await;
    let abs = run(&sqlite(&format!("sqlite://{}", db.display()), true)).await;
    let left: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(&format!("SELECT count(*) FROM {SCRATCH_TABLE}"), [], |r| {
            r.get(0)
        })
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    assert_ok(&rel, "quick_check ok");
    assert!(
        rel.message.contains(&db.display().to_string()),
        "{}",
        rel.message
    );
    assert_ok(&prefixed, "write/read/delete ok");
    assert_ok(&abs, "write/read/delete ok");
    assert_eq!(left, 0);
}

#[tokio::test]
async fn sqlite_failures_say_what_failed() {
    let dir = temp_dir();
    // Not a database at all.
    std::fs::write(dir.join("garbage.db"), vec![0x5a_u8; 8192]).unwrap();
    // A real database whose table page is overwritten.
    let broken = dir.join("broken.db");
    {
        let c = rusqlite::Connection::open(&broken).unwrap();
        c.execute_batch(
            "PRAGMA page_size = 1024; CREATE TABLE t (x TEXT); \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) \
             INSERT INTO t SELECT printf('%0100d', i) FROM n;",
        )
        .unwrap();
    }
    {
        let mut bytes = std::fs::read(&broken).unwrap();
        // Page 2 (the table's root, an interior page with 200 rows) gets garbage.
        for b in &mut bytes[1024 + 8..1024 + 200] {
            *b = 0xff;
        }
        std::fs::write(&broken, bytes).unwrap();
    }
    let garbage = stores::check(&sqlite("garbage.db", false), TIMEOUT, &dir).await;
    let corrupt = stores::check(&sqlite("broken.db", false), TIMEOUT, &dir).await;
    let missing = stores::check(&sqlite("nope.db", false), TIMEOUT, &dir).await;
    let nope_created = dir.join("nope.db").exists();
    let _ = std::fs::remove_dir_all(&dir);

    assert_fail(&garbage, "quick_check");
    assert_fail(&garbage, "not a database");
    assert_fail(&corrupt, "quick_check");
    assert_fail(&missing, "does not exist");
    assert!(!nope_created, "the probe must not create the file");
}

#[tokio::test]
async fn non_store_kinds_are_refused() {
    let o = run(&ProbeKind::Tcp("127.0.0.1:1".into())).await;
    assert_fail(&o, "not a store probe");
    assert!(stores::is_store(&ProbeKind::Nats(StoreProbe::default())));
    assert!(!stores::is_store(&ProbeKind::Notify));
}

#[test]
fn redact_url_hides_passwords() {
    assert_eq!(
        stores::redact_url("amqp://guest:guest@127.0.0.1:5672/%2f"),
        "amqp://guest:***@127.0.0.1:5672/%2f"
    );
    assert_eq!(
        stores::redact_url("postgres://app:p@ss/w:rd@db:5432/app?password=x&sslmode=disable"),
        "postgres://app:***@db:5432/app?password=***&sslmode=disable"
    );
    assert_eq!(
        stores::redact_url("redis://127.0.0.1:6379/0"),
        "redis://127.0.0.1:6379/0"
    );
}
