//! The migrator on SQLite files in a temp dir: apply, re-run, checksum mismatch, dirty state
//! and repair, down, create_database (the file), drift, five migrators at once, status, the
//! lock, file-name rules and `new`.

mod support;

use support::Server::Sqlite;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applies_and_a_rerun_changes_nothing() {
    apply_and_rerun(Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_blocks_until_repair() {
    checksum_mismatch_blocks(Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_migration_is_dirty_until_repair() {
    dirty_blocks_until_repair(Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_reverts_newest_first() {
    down_reverts(Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_database_creates_a_missing_database() {
    create_database(Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_after_a_manual_alter_table_names_the_column() {
    drift_detected(Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_migrators_at_once_apply_each_migration_once() {
    concurrent_migrators(Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_applied_pending_changed_and_missing() {
    status_rows(Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_timeout_says_who_has_the_file_open() {
    use std::time::Duration;
    let db = Db::new(Sqlite);
    db.create().await;
    db.write_standard();
    let holder = rusqlite::Connection::open(db.file()).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let m = db.migrator_with(gantry_migrate::Options {
        lock_timeout: Duration::from_millis(300),
        ..db.options()
    });
    let err = m.up().await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, gantry_migrate::Error::Lock { .. }), "{msg}");
    assert_contains(&msg, "could not take the migration lock");
    assert_contains(&msg, &format!("pid {} (", std::process::id()));
    assert_contains(&msg, "this process");
    holder.execute_batch("COMMIT").unwrap();
    drop(holder);
    assert_eq!(m.up().await.unwrap().applied.len(), 3);
}

#[test]
fn bad_file_names_are_all_reported_at_once() {
    let db = Db::new(Sqlite);
    db.write("0001_a.up.sql", "");
    db.write("0001_b.up.sql", "");
    db.write("0002_c.down.sql", "");
    db.write("notes.sql", "");
    db.write("0003_d.up.sql", "");
    db.write("0003_e.down.sql", "");
    db.write("README.md", "not a migration, ignored");
    let err = db.migrator().files().unwrap_err();
    assert!(err.is_usage());
    let msg = err.to_string();
    assert_contains(&msg, "two up files for version 1");
    assert_contains(&msg, "0002_c.down.sql: a down file without its up file");
    assert_contains(&msg, "notes.sql: not a migration file name");
    assert_contains(&msg, "rename it to 0003_d.down.sql");
    assert!(!msg.contains("README"));
}

#[test]
fn new_writes_the_next_pair() {
    let db = Db::new(Sqlite);
    std::fs::remove_dir_all(&db.dir).unwrap();
    let n = gantry_migrate::new_migration(&db.dir, "Create users!").unwrap();
    assert_eq!(n.version, 1);
    assert_eq!(n.up, db.dir.join("0001_create_users.up.sql"));
    assert!(n.down.ends_with("0001_create_users.down.sql"));
    let n = gantry_migrate::new_migration(&db.dir, "add email").unwrap();
    assert_eq!(n.up, db.dir.join("0002_add_email.up.sql"));
    db.write("0010_jump.up.sql", "");
    let n = gantry_migrate::new_migration(&db.dir, "next").unwrap();
    assert_eq!(n.up, db.dir.join("0011_next.up.sql"));
    assert!(gantry_migrate::new_migration(&db.dir, "!!").is_err());
    let files = db.migrator().files().unwrap();
    assert_eq!(files.len(), 4);
    assert!(files[0].down.is_some() && files[2].down.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_directory_is_a_configuration_error() {
    let db = Db::new(Sqlite);
    std::fs::remove_dir_all(&db.dir).unwrap();
    let err = db.migrator().up().await.unwrap_err();
    assert!(err.is_usage());
    assert_contains(&err.to_string(), "gantry migrate new NAME");
}
