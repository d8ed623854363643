//! The migrator against the real PostgreSQL on this machine (127.0.0.1:5432, run
//! scripts/stores first): apply, re-run, checksum mismatch, dirty state and repair, down,
//! create_database, drift, five migrators at once, status, the lock holder, no password shown.

mod support;

use support::Server::Postgres;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applies_and_a_rerun_changes_nothing() {
    apply_and_rerun(Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_blocks_until_repair() {
    checksum_mismatch_blocks(Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_migration_is_dirty_until_repair() {
    dirty_blocks_until_repair(Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_reverts_newest_first() {
    down_reverts(Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_database_creates_a_missing_database() {
    create_database(Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_after_a_manual_alter_table_names_the_column() {
    drift_detected(Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_migrators_at_once_apply_each_migration_once() {
    concurrent_migrators(Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_applied_pending_changed_and_missing() {
    status_rows(Postgres).await;
}

fn lock_key(db: &str) -> i64 {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(format!("gantry-migrate:{db}").as_bytes());
    i64::from_be_bytes(d[..8].try_into().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_timeout_names_the_holder() {
    use std::time::{Duration, Instant};
    let db = Db::new(Postgres);
    db.create().await;
    db.write_standard();
    let holder = pg(&format!(
        "host=127.0.0.1 port=5432 user=postgres dbname={} application_name=lock-holder-test",
        db.name
    ))
    .await;
    holder
        .query_one("SELECT pg_advisory_lock($1)", &[&lock_key(&db.name)])
        .await
        .unwrap();
    let pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let m = db.migrator_with(gantry_migrate::Options {
        lock_timeout: Duration::from_millis(600),
        ..db.options()
    });
    let start = Instant::now();
    let err = m.up().await.unwrap_err();
    assert!(start.elapsed() >= Duration::from_millis(600));
    let msg = err.to_string();
    assert!(matches!(err, gantry_migrate::Error::Lock { .. }), "{msg}");
    assert_contains(&msg, "could not take the migration lock");
    assert_contains(&msg, &format!("pid {pid}"));
    assert_contains(&msg, "application_name \"lock-holder-test\"");
    assert_contains(&msg, "client 127.0.0.1");
    assert_contains(&msg, "600ms");
    assert!(!db.table_exists("users").await, "nothing ran");
    drop(holder);
    assert_eq!(m.up().await.unwrap().applied.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrator_connections_are_named_gantry_migrate() {
    let db = Db::new(Postgres);
    db.write(
        "0001_slow.up.sql",
        "CREATE TABLE slow (x INTEGER);\nSELECT pg_sleep(1.5);\n",
    );
    let m = db.migrator();
    let task = tokio::spawn(async move { m.up().await });
    let admin = pg(PG_ADMIN).await;
    let mut seen = 0;
    for _ in 0..100 {
        seen = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = $1 AND application_name = 'gantry-migrate'",
                &[&db.name],
            )
            .await
            .unwrap()
            .get::<_, i64>(0);
        if seen > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    task.await.unwrap().unwrap();
    assert_eq!(seen, 1, "one connection, named gantry-migrate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_is_never_shown() {
    const PW: &str = "Sup3rSecretPw";
    let db = Db::new(Postgres);
    db.write_standard();
    // Trust auth: the password is accepted and ignored.
    let url = format!("postgres://postgres:{PW}@127.0.0.1:5432/{}", db.name);
    let opts = gantry_migrate::Options {
        create_database: false,
        ..db.options()
    };
    let m = gantry_migrate::Migrator::new(&url, "migrations", opts.clone()).unwrap();
    assert_eq!(
        m.database(),
        format!("postgres://postgres:***@127.0.0.1:5432/{}", db.name)
    );
    let err = m.up().await.unwrap_err().to_string();
    assert!(!err.contains(PW), "{err}");
    assert_contains(&err, "postgres:***@");
    let refused = gantry_migrate::Migrator::new(
        &format!("postgres://postgres:{PW}@127.0.0.1:1/x"),
        "migrations",
        opts,
    )
    .unwrap();
    let err = refused.status().await.unwrap_err().to_string();
    assert!(!err.contains(PW), "{err}");
    assert_contains(&err, "connection refused");
}
