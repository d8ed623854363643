//! The migrator against the real MariaDB on this machine (127.0.0.1:3306, run scripts/stores
//! first): apply, re-run, checksum mismatch, a half-applied failure and repair, down,
//! create_database, drift, five migrators at once, status, the lock holder, no password shown.

mod support;

use support::Server::Mysql;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applies_and_a_rerun_changes_nothing() {
    apply_and_rerun(Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_blocks_until_repair() {
    checksum_mismatch_blocks(Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_migration_is_dirty_until_repair() {
    dirty_blocks_until_repair(Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_reverts_newest_first() {
    down_reverts(Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_database_creates_a_missing_database() {
    create_database(Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_after_a_manual_alter_table_names_the_column() {
    drift_detected(Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_migrators_at_once_apply_each_migration_once() {
    concurrent_migrators(Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_applied_pending_changed_and_missing() {
    status_rows(Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_timeout_names_the_holder() {
    use mysql_async::prelude::Queryable;
    use std::time::Duration;
    let db = Db::new(Mysql);
    db.create().await;
    db.write_standard();
    let mut holder = my(&format!("{MY_ADMIN}/{}", db.name)).await;
    let name = {
        use sha2::Digest as _;
        let d = sha2::Sha256::digest(format!("gantry-migrate:{}", db.name).as_bytes());
        let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
        format!("gantry-migrate:{}", &hex[..16])
    };
    let got: Option<i64> = holder
        .exec_first("SELECT GET_LOCK(?, 0)", (&name,))
        .await
        .unwrap();
    assert_eq!(got, Some(1));
    let m = db.migrator_with(gantry_migrate::Options {
        lock_timeout: Duration::from_secs(1),
        ..db.options()
    });
    let err = m.up().await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, gantry_migrate::Error::Lock { .. }), "{msg}");
    assert_contains(&msg, &format!("held by connection {}", holder.id()));
    assert_contains(&msg, "user root");
    holder.disconnect().await.unwrap();
    assert_eq!(m.up().await.unwrap().applied.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_is_never_shown() {
    const PW: &str = "Sup3rSecretPw";
    let db = Db::new(Mysql);
    db.write_standard();
    let m = gantry_migrate::Migrator::new(
        &format!("mysql://root:{PW}@127.0.0.1:3306/{}", db.name),
        "migrations",
        db.options(),
    )
    .unwrap();
    assert!(!m.database().contains(PW));
    let err = m.up().await.unwrap_err().to_string();
    assert!(!err.contains(PW), "{err}");
    assert_contains(&err, "root:***@");
    assert_contains(&err, "authentication failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comment_only_and_mariadb_urls_work() {
    let db = Db::new(Mysql);
    db.write("0001_nothing.up.sql", "-- nothing yet\n# nor here\n");
    let m = gantry_migrate::Migrator::new(
        &db.url.replace("mysql://", "mariadb://"),
        "migrations",
        db.options(),
    )
    .unwrap();
    let r = m.up().await.unwrap();
    assert_eq!(r.applied.len(), 1);
    assert_eq!(db.history().await, [(1, true)]);
}
