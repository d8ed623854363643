//! Shared by the migration tests: one fresh database per test on the real servers
//! (PostgreSQL 127.0.0.1:5432 user postgres, MariaDB 127.0.0.1:3306 root, SQLite in a temp
//! dir), a temp migration directory, raw SQL for assertions, and scenarios that run the
//! same way on every backend. Databases are named `gantry_mig_<pid>_<n>` and dropped when
//! the [`Db`] is dropped (a failing assertion included).

#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use gantry_migrate::{Error, Migrator, Options, Problem, Repair};
use gantry_spec::OnDrift;
use mysql_async::prelude::Queryable;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Postgres,
    Mysql,
    Sqlite,
}

/// Fails the test (never skips it) when a server is down.
pub fn require(server: Server) {
    let (name, port) = match server {
        Server::Postgres => ("PostgreSQL", 5432),
        Server::Mysql => ("MariaDB", 3306),
        Server::Sqlite => return,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    if TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_err() {
        panic!(
            "{name} is not answering on 127.0.0.1:{port}; run scripts/stores to start the \
             store servers the migration tests need"
        );
    }
}

pub fn unique() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "gantry_mig_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub const PG_ADMIN: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";
pub const MY_ADMIN: &str = "mysql://root@127.0.0.1:3306";

/// One test's database (not created: the migrator creates it, or the test does) and its
/// migration directory.
pub struct Db {
    pub server: Server,
    pub name: String,
    pub url: String,
    /// The base directory (the "stack file's directory"); `dir` is `base/migrations`.
    pub base: PathBuf,
    pub dir: PathBuf,
}

impl Db {
    pub fn new(server: Server) -> Db {
        require(server);
        let name = unique();
        let base = std::env::temp_dir().join(format!("{name}-dir"));
        let _ = std::fs::remove_dir_all(&base);
        let dir = base.join("migrations");
        std::fs::create_dir_all(&dir).unwrap();
        let url = match server {
            Server::Postgres => format!("postgres://postgres@127.0.0.1:5432/{name}"),
            Server::Mysql => format!("mysql://root@127.0.0.1:3306/{name}"),
            Server::Sqlite => format!("sqlite://data/{name}.db"),
        };
        Db {
            server,
            name,
            url,
            base,
            dir,
        }
    }

    /// The SQLite file.
    pub fn file(&self) -> PathBuf {
        self.base.join("data").join(format!("{}.db", self.name))
    }

    pub fn options(&self) -> Options {
        Options {
            create_database: true,
            on_drift: OnDrift::Fail,
            lock_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            base_dir: self.base.clone(),
        }
    }

    pub fn migrator(&self) -> Migrator {
        self.migrator_with(self.options())
    }

    pub fn migrator_with(&self, options: Options) -> Migrator {
        Migrator::new(&self.url, "migrations", options).unwrap()
    }

    pub fn write(&self, file: &str, text: &str) {
        std::fs::write(self.dir.join(file), text).unwrap();
    }

    pub fn remove(&self, file: &str) {
        std::fs::remove_file(self.dir.join(file)).unwrap();
    }

    /// Writes the standard migrations (see [`standard`]).
    pub fn write_standard(&self) {
        for (file, text) in standard(self.server) {
            self.write(file, &text);
        }
    }

    /// Creates the database up front.
    pub async fn create(&self) {
        match self.server {
            Server::Postgres => {
                pg(PG_ADMIN)
                    .await
                    .batch_execute(&format!("CREATE DATABASE {}", self.name))
                    .await
                    .unwrap();
            }
            Server::Mysql => {
                let mut c = my(MY_ADMIN).await;
                c.query_drop(format!("CREATE DATABASE {}", self.name))
                    .await
                    .unwrap();
                c.disconnect().await.unwrap();
            }
            Server::Sqlite => {
                std::fs::create_dir_all(self.file().parent().unwrap()).unwrap();
                rusqlite::Connection::open(self.file()).unwrap();
            }
        }
    }

    /// Runs `sql` in the test database; every value as text (NULL → None).
    pub async fn sql(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        match self.server {
            Server::Postgres => {
                let c = pg(&format!(
                    "host=127.0.0.1 port=5432 user=postgres dbname={}",
                    self.name
                ))
                .await;
                let mut out = Vec::new();
                for m in c.simple_query(sql).await.unwrap() {
                    if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                        out.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect());
                    }
                }
                out
            }
            Server::Mysql => {
                let mut c = my(&format!("{MY_ADMIN}/{}", self.name)).await;
                let rows: Vec<mysql_async::Row> = c.query(sql).await.unwrap();
                c.disconnect().await.unwrap();
                rows.iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| match r.as_ref(i).unwrap() {
                                mysql_async::Value::NULL => None,
                                mysql_async::Value::Bytes(b) => {
                                    Some(String::from_utf8_lossy(b).into_owned())
                                }
                                v => Some(format!("{v:?}")),
                            })
                            .collect()
                    })
                    .collect()
            }
            Server::Sqlite => {
                let c = rusqlite::Connection::open(self.file()).unwrap();
                let mut stmt = c.prepare(sql).unwrap();
                let n = stmt.column_count();
                let rows = stmt
                    .query_map([], |r| {
                        (0..n)
                            .map(|i| {
                                Ok(match r.get_ref(i)? {
                                    rusqlite::types::ValueRef::Null => None,
                                    rusqlite::types::ValueRef::Integer(v) => Some(v.to_string()),
                                    rusqlite::types::ValueRef::Real(v) => Some(v.to_string()),
                                    rusqlite::types::ValueRef::Text(t) => {
                                        Some(String::from_utf8_lossy(t).into_owned())
                                    }
                                    rusqlite::types::ValueRef::Blob(_) => Some("<blob>".into()),
                                })
                            })
                            .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .unwrap();
                rows.collect::<rusqlite::Result<Vec<_>>>().unwrap()
            }
        }
    }

    /// Runs statements that return nothing.
    pub async fn exec(&self, sql: &str) {
        match self.server {
            Server::Postgres => {
                pg(&format!(
                    "host=127.0.0.1 port=5432 user=postgres dbname={}",
                    self.name
                ))
                .await
                .batch_execute(sql)
                .await
                .unwrap();
            }
            Server::Mysql => {
                let mut c = my(&format!("{MY_ADMIN}/{}", self.name)).await;
                c.query_drop(sql).await.unwrap();
                c.disconnect().await.unwrap();
            }
            Server::Sqlite => {
                rusqlite::Connection::open(self.file())
                    .unwrap()
                    .execute_batch(sql)
                    .unwrap();
            }
        }
    }

    /// One number from a query.
    pub async fn count(&self, sql: &str) -> i64 {
        self.sql(sql).await[0][0]
            .as_deref()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// (version, success) of every history row.
    pub async fn history(&self) -> Vec<(i64, bool)> {
        self.sql("SELECT version, success FROM gantry_schema_migrations ORDER BY version")
            .await
            .into_iter()
            .map(|r| {
                let ok = r[1].as_deref().unwrap();
                (
                    r[0].as_deref().unwrap().parse().unwrap(),
                    matches!(ok, "1" | "t" | "true"),
                )
            })
            .collect()
    }

    /// The ids in the side-effect table, sorted (a migration that ran twice shows twice).
    pub async fn events(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .sql("SELECT id FROM events")
            .await
            .into_iter()
            .map(|r| r[0].as_deref().unwrap().parse().unwrap())
            .collect();
        ids.sort();
        ids
    }

    pub async fn table_exists(&self, table: &str) -> bool {
        let sql = match self.server {
            Server::Postgres => {
                format!("SELECT count(*) FROM pg_tables WHERE tablename = '{table}'")
            }
            Server::Mysql => format!(
                "SELECT count(*) FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}'"
            ),
            Server::Sqlite => {
                format!(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '{table}'"
                )
            }
        };
        self.count(&sql).await > 0
    }

    pub async fn exists(&self) -> bool {
        match self.server {
            Server::Postgres => {
                let c = pg(PG_ADMIN).await;
                let r = c
                    .query_one(
                        "SELECT count(*) FROM pg_database WHERE datname = $1",
                        &[&self.name],
                    )
                    .await
                    .unwrap();
                r.get::<_, i64>(0) > 0
            }
            Server::Mysql => {
                let mut c = my(MY_ADMIN).await;
                let n: Option<i64> = c
                    .exec_first(
                        "SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
                        (&self.name,),
                    )
                    .await
                    .unwrap();
                c.disconnect().await.unwrap();
                n == Some(1)
            }
            Server::Sqlite => self.file().exists(),
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let (server, name) = (self.server, self.name.clone());
        // Async clean-up from a plain thread with its own runtime: Drop may run inside the
        // test's runtime (or while it unwinds).
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                match server {
                    Server::Postgres => {
                        let _ = pg(PG_ADMIN)
                            .await
                            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .await;
                    }
                    Server::Mysql => {
                        let mut c = my(MY_ADMIN).await;
                        let _ = c
                            .query_drop(format!("DROP DATABASE IF EXISTS {name}"))
                            .await;
                        let _ = c.disconnect().await;
                    }
                    Server::Sqlite => {}
                }
            });
        })
        .join();
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

pub async fn pg(conn: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(conn, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL on 127.0.0.1:5432: {e}; run scripts/stores to start it")
        });
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

pub async fn my(url: &str) -> mysql_async::Conn {
    mysql_async::Conn::from_url(url).await.unwrap_or_else(|e| {
        panic!("MariaDB on 127.0.0.1:3306: {e}; run scripts/stores to start it")
    })
}

/// Three migrations that run on every backend. `events` is the side-effect table: it has
/// no key, so a migration that ran twice leaves its id twice. 0001 holds the lock a little
/// longer (a sleep where the database has one) so concurrent migrators really wait.
pub fn standard(server: Server) -> Vec<(&'static str, String)> {
    let sleep = match server {
        Server::Postgres => "SELECT pg_sleep(0.3);\n",
        Server::Mysql => "DO SLEEP(0.3);\n",
        Server::Sqlite => "",
    };
    vec![
        (
            "0001_create_users.up.sql",
            format!(
                "-- users and the side-effect table\n\
                 CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL);\n\
                 CREATE INDEX users_name ON users (name);\n\
                 CREATE TABLE events (id INTEGER NOT NULL, note VARCHAR(100) NOT NULL);\n\
                 {sleep}\
                 INSERT INTO events (id, note) VALUES (1, 'created users');\n"
            ),
        ),
        (
            "0001_create_users.down.sql",
            "DROP TABLE users;\nDROP TABLE events;\n".into(),
        ),
        (
            "0002_add_email.up.sql",
            "ALTER TABLE users ADD COLUMN email VARCHAR(200);\n\
             INSERT INTO events (id, note) VALUES (2, 'added email');\n"
                .into(),
        ),
        (
            "0002_add_email.down.sql",
            "ALTER TABLE users DROP COLUMN email;\nDELETE FROM events WHERE id = 2;\n".into(),
        ),
        (
            "0003_seed.up.sql",
            "INSERT INTO users (id, name) VALUES (1, 'ada');\n\
             INSERT INTO events (id, note) VALUES (3, 'seeded');\n"
                .into(),
        ),
        (
            "0003_seed.down.sql",
            "DELETE FROM users WHERE id = 1;\nDELETE FROM events WHERE id = 3;\n".into(),
        ),
    ]
}

/// The failing migration: a table, a row, then a syntax error on line 4.
pub const BROKEN: &str = "-- broken on purpose\n\
                          CREATE TABLE half (x INTEGER);\n\
                          INSERT INTO events (id, note) VALUES (4, 'broken');\n\
                          SELEC oops;\n";

#[track_caller]
pub fn assert_contains(text: &str, needle: &str) {
    assert!(text.contains(needle), "expected {needle:?} in:\n{text}");
}

// ------------------------------------------------------------------------------ scenarios

/// Applies the three migrations, then a second `up` applies nothing and changes nothing.
pub async fn apply_and_rerun(server: Server) {
    let db = Db::new(server);
    db.write_standard();
    let m = db.migrator();
    let r = m.up().await.unwrap();
    assert_eq!(
        r.applied.iter().map(|a| a.version).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(r.already_applied, 0);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(r.applied[0].file, db.dir.join("0001_create_users.up.sql"));
    assert_eq!(db.history().await, [(1, true), (2, true), (3, true)]);
    assert_eq!(db.events().await, [1, 2, 3]);
    assert_eq!(r.schema_hash.len(), 64);

    let again = m.up().await.unwrap();
    assert!(again.applied.is_empty());
    assert_eq!(again.already_applied, 3);
    assert_eq!(
        again.schema_hash, r.schema_hash,
        "nothing changed: same hash"
    );
    assert_eq!(db.events().await, [1, 2, 3]);

    let v = m.verify().await.unwrap();
    assert!(v.is_ok(), "{:?}", v.problems);
    // The history table records checksum, duration and applied_at.
    let rows = db
        .sql("SELECT checksum, duration_ms, applied_at FROM gantry_schema_migrations WHERE version = 1")
        .await;
    let sum = rows[0][0].clone().unwrap();
    let file = std::fs::read(db.dir.join("0001_create_users.up.sql")).unwrap();
    use sha2::Digest as _;
    let expected: String = sha2::Sha256::digest(&file)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sum, expected);
    assert!(rows[0][1].is_some() && rows[0][2].is_some());
}

/// An applied file that changed blocks `up` (naming the file) until `repair` records the
/// new checksum; `status` and `verify` say "changed".
pub async fn checksum_mismatch_blocks(server: Server) {
    let db = Db::new(server);
    db.write_standard();
    let m = db.migrator();
    m.up().await.unwrap();
    let path = db.dir.join("0002_add_email.up.sql");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("-- an edit after the fact\n");
    std::fs::write(&path, text).unwrap();
    // A new migration waits behind the problem.
    db.write(
        "0004_more.up.sql",
        "INSERT INTO events (id, note) VALUES (5, 'more');\n",
    );

    let err = m.up().await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(&err, Error::NoGo(p) if p.len() == 1), "{msg}");
    assert_contains(&msg, "NO-GO");
    assert_contains(&msg, &path.display().to_string());
    assert_contains(&msg, "changed after it was applied");
    assert_contains(&msg, "gantry migrate repair 2");
    assert_eq!(db.events().await, [1, 2, 3], "nothing ran");

    let s = m.status().await.unwrap();
    let states: Vec<&str> = s.rows.iter().map(|r| r.state.as_str()).collect();
    assert_eq!(states, ["ok", "changed", "ok", "pending"]);
    let v = m.verify().await.unwrap();
    assert!(!v.is_ok());

    match m.repair(2).await.unwrap() {
        Repair::Rechecksummed { version, file, .. } => {
            assert_eq!(version, 2);
            assert_eq!(file, path);
        }
        other => panic!("{other:?}"),
    }
    let r = m.up().await.unwrap();
    assert_eq!(r.applied.len(), 1);
    assert_eq!(db.events().await, [1, 2, 3, 5]);
    assert!(matches!(
        m.repair(2).await.unwrap(),
        Repair::NothingToRepair { version: 2, .. }
    ));
    assert!(matches!(m.repair(42).await, Err(Error::NotInHistory(42))));
}

/// A failing migration leaves a dirty row; every `up` is NO-GO until `repair`, which
/// removes the row so the fixed migration runs again (exactly once).
pub async fn dirty_blocks_until_repair(server: Server) {
    let db = Db::new(server);
    db.write_standard();
    db.write("0004_broken.up.sql", BROKEN);
    db.write(
        "0005_after.up.sql",
        "INSERT INTO events (id, note) VALUES (5, 'after');\n",
    );
    let m = db.migrator();
    let err = m.up().await.unwrap_err();
    let msg = err.to_string();
    let Error::MigrationFailed {
        version,
        transactional,
        ..
    } = &err
    else {
        panic!("expected MigrationFailed, got {msg}");
    };
    assert_eq!(*version, 4);
    assert_contains(
        &msg,
        &db.dir.join("0004_broken.up.sql").display().to_string(),
    );
    assert_contains(&msg, "gantry migrate repair 4");
    let transactional = *transactional;
    if server == Server::Mysql {
        assert!(!transactional);
        assert_contains(&msg, "half-applied");
        assert_contains(&msg, "statement 3 (line 4)");
        assert_contains(&msg, "statements 1–2 ran before it");
        // MySQL really did keep the statements before the failing one.
        assert!(db.table_exists("half").await);
        assert_eq!(db.events().await, [1, 2, 3, 4]);
    } else {
        assert!(transactional);
        assert_contains(&msg, "rolled back: nothing of it was applied");
        assert_contains(&msg, "line 4");
        assert!(!db.table_exists("half").await, "rolled back");
        assert_eq!(db.events().await, [1, 2, 3]);
    }
    assert_eq!(
        db.history().await,
        [(1, true), (2, true), (3, true), (4, false)]
    );

    // Dirty: NO-GO, and nothing after it runs.
    let err = m.up().await.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, Error::NoGo(p) if matches!(p[0], Problem::Dirty { version: 4, .. })),
        "{msg}"
    );
    assert_contains(&msg, "marked dirty");
    assert_contains(&msg, "gantry migrate repair 4");
    let s = m.status().await.unwrap();
    assert!(s.rows.iter().find(|r| r.version == 4).unwrap().dirty);
    assert!(!m.verify().await.unwrap().is_ok());
    assert!(
        matches!(m.down(1).await, Err(Error::NoGo(_))),
        "down refuses too"
    );

    // The user fixes the schema (MySQL) and the file, then repairs.
    if server == Server::Mysql {
        db.exec("DROP TABLE half; DELETE FROM events WHERE id = 4")
            .await;
    }
    db.write("0004_broken.up.sql", &BROKEN.replace("SELEC oops;\n", ""));
    assert!(matches!(
        m.repair(4).await.unwrap(),
        Repair::ClearedDirty { version: 4, .. }
    ));
    let r = m.up().await.unwrap();
    assert_eq!(
        r.applied.iter().map(|a| a.version).collect::<Vec<_>>(),
        [4, 5]
    );
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(db.events().await, [1, 2, 3, 4, 5]);
    assert!(m.verify().await.unwrap().is_ok());
}

/// `down` runs the down files newest first and removes the history rows; a missing down
/// file stops it before anything runs.
pub async fn down_reverts(server: Server) {
    let db = Db::new(server);
    db.write_standard();
    let m = db.migrator();
    m.up().await.unwrap();
    let r = m.down(1).await.unwrap();
    assert_eq!(r.reverted.len(), 1);
    assert_eq!(r.reverted[0].version, 3);
    assert_eq!(r.reverted[0].file, db.dir.join("0003_seed.down.sql"));
    assert_eq!(db.history().await, [(1, true), (2, true)]);
    assert_eq!(db.events().await, [1, 2]);
    assert_eq!(db.count("SELECT count(*) FROM users").await, 0);

    let r = m.down(5).await.unwrap();
    assert_eq!(
        r.reverted.iter().map(|a| a.version).collect::<Vec<_>>(),
        [2, 1]
    );
    assert!(!db.table_exists("users").await);
    assert!(db.history().await.is_empty());
    assert!(
        m.verify().await.unwrap().is_ok(),
        "the record follows the reverts"
    );
    assert!(m.down(1).await.unwrap().reverted.is_empty());

    // Up again: all three once more.
    assert_eq!(m.up().await.unwrap().applied.len(), 3);
    assert_eq!(db.events().await, [1, 2, 3]);

    db.remove("0003_seed.down.sql");
    let err = m.down(2).await.unwrap_err();
    assert!(matches!(err, Error::NoDownFile { version: 3, .. }), "{err}");
    assert_contains(
        &err.to_string(),
        &db.dir.join("0003_seed.down.sql").display().to_string(),
    );
    assert_eq!(db.history().await.len(), 3, "nothing was reverted");
}

/// `create_database = false` on a missing database is an error with a hint; `true` creates
/// it (once).
pub async fn create_database(server: Server) {
    let db = Db::new(server);
    db.write_standard();
    let off = db.migrator_with(Options {
        create_database: false,
        ..db.options()
    });
    let err = off.up().await.unwrap_err();
    assert!(matches!(err, Error::DatabaseMissing { .. }), "{err}");
    assert_contains(&err.to_string(), "create_database = true");
    assert!(!db.exists().await);
    // status / verify never create it either.
    assert!(matches!(
        db.migrator().status().await,
        Err(Error::DatabaseMissing { .. })
    ));

    let r = db.migrator().up().await.unwrap();
    assert!(r.created_database);
    assert!(db.exists().await);
    assert_eq!(r.applied.len(), 3);
    let r = db.migrator().up().await.unwrap();
    assert!(!r.created_database);
}

/// A column added by hand is drift: NO-GO with `on_drift = "fail"` naming the column, a
/// warning (every time) with "warn"; `repair_schema` accepts it.
pub async fn drift_detected(server: Server) {
    let db = Db::new(server);
    db.write_standard();
    let m = db.migrator();
    m.up().await.unwrap();
    db.exec("ALTER TABLE users ADD COLUMN nickname VARCHAR(50)")
        .await;

    let err = m.up().await.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, Error::NoGo(p) if matches!(p[0], Problem::Drift(_))),
        "{msg}"
    );
    assert_contains(&msg, "+ column users.nickname");
    assert_contains(&msg, "gantry migrate repair --schema");
    let v = m.verify().await.unwrap();
    assert!(!v.is_ok());
    let d = v.status.drift.as_ref().unwrap();
    assert_eq!(d.added.len(), 1, "{:?}", d.added);
    assert!(
        d.added[0].starts_with("column users.nickname "),
        "{:?}",
        d.added
    );
    assert!(d.removed.is_empty(), "{:?}", d.removed);

    // warn: goes on, and a new migration's own change is not mistaken for drift.
    let warn = db.migrator_with(Options {
        on_drift: OnDrift::Warn,
        ..db.options()
    });
    db.write(
        "0004_tags.up.sql",
        "CREATE TABLE tags (id INTEGER PRIMARY KEY, label VARCHAR(20) NOT NULL);\n",
    );
    let r = warn.up().await.unwrap();
    assert_eq!(r.applied.len(), 1);
    assert!(
        matches!(&r.warnings[..], [Problem::Drift(d)] if d.added.len() == 1 && d.added[0].contains("users.nickname")),
        "{:?}",
        r.warnings
    );
    let r = warn.up().await.unwrap();
    assert_eq!(r.warnings.len(), 1, "the drift is still reported");
    let d = m.verify().await.unwrap().status.drift.unwrap();
    assert_eq!(d.added.len(), 1, "only the hand-made column: {:?}", d.added);

    match m.repair_schema().await.unwrap() {
        Repair::SchemaRecorded { accepted, .. } => {
            assert!(accepted.unwrap().added[0].contains("users.nickname"))
        }
        other => panic!("{other:?}"),
    }
    let r = m.up().await.unwrap();
    assert!(r.warnings.is_empty());
    assert!(m.verify().await.unwrap().is_ok());
}

/// Five migrators at once on one database: each migration applied exactly once.
pub async fn concurrent_migrators(server: Server) {
    let db = Db::new(server);
    db.write_standard();
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let m = db.migrator();
            tokio::spawn(async move { m.up().await })
        })
        .collect();
    let mut applied = 0;
    let mut created = 0;
    for t in tasks {
        let r = t
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("a migrator failed: {e}"));
        applied += r.applied.len();
        created += r.created_database as usize;
    }
    assert_eq!(applied, 3, "three migrations, applied once in all");
    assert!(created <= 1);
    assert_eq!(db.history().await, [(1, true), (2, true), (3, true)]);
    assert_eq!(db.events().await, [1, 2, 3], "no migration ran twice");
}

/// status: applied, pending, changed, missing file.
pub async fn status_rows(server: Server) {
    let db = Db::new(server);
    db.write_standard();
    let m = db.migrator();
    m.up().await.unwrap();
    db.write(
        "0004_later.up.sql",
        "INSERT INTO events (id, note) VALUES (4, 'later');\n",
    );
    db.remove("0003_seed.up.sql");
    db.remove("0003_seed.down.sql");
    let s = m.status().await.unwrap();
    let rows: Vec<(i64, &str, bool, bool)> = s
        .rows
        .iter()
        .map(|r| (r.version, r.state.as_str(), r.applied_at.is_some(), r.dirty))
        .collect();
    assert_eq!(
        rows,
        [
            (1, "ok", true, false),
            (2, "ok", true, false),
            (3, "missing file", true, false),
            (4, "pending", false, false),
        ]
    );
    assert_eq!(s.pending(), 1);
    assert!(s.drift.is_none());
    assert_eq!(s.recorded.as_ref().unwrap().0, s.live_hash);
    let json = s.to_json();
    assert_eq!(json["migrations"][2]["checksum"], "missing file");
    // A missing file is a warning, not a problem.
    let v = m.verify().await.unwrap();
    assert!(v.is_ok());
    assert!(matches!(
        v.problems[..],
        [Problem::MissingFile { version: 3, .. }]
    ));
    let r = m.up().await.unwrap();
    assert_eq!(r.applied.len(), 1);
    assert!(matches!(
        r.warnings[..],
        [Problem::MissingFile { version: 3, .. }]
    ));
}
