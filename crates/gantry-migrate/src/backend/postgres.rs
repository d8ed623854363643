//! PostgreSQL: tokio-postgres over plain TCP, `application_name = 'gantry-migrate'`,
//! transactional DDL (each migration in `BEGIN … COMMIT`), a session advisory lock polled
//! with `pg_try_advisory_lock`, and the catalog from pg_catalog.

use std::error::Error as _;
use std::time::{Duration, Instant};

use tokio_postgres::error::{ErrorPosition, SqlState};
use tokio_postgres::{Client, Config, NoTls};

use super::{APP_NAME, Failure, HistoryRow, Recorded, line_col, ms_since, quote_ident};
use crate::catalog::{Catalog, FORMAT, OWN_TABLES, one_line};
use crate::error::fmt_duration;
use crate::files::{MigrationFile, sha256_hex};
use crate::url::Target;
use crate::{Error, HASH_TABLE, HISTORY_TABLE, Options};

pub(crate) struct Pg {
    client: Client,
    task: tokio::task::JoinHandle<()>,
    target: Target,
    dbname: String,
    key: i64,
    locked: bool,
}

/// The schemas that are PostgreSQL's own.
const SYSTEM_SCHEMAS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'";

impl Pg {
    pub async fn open(t: &Target, o: &Options, create: bool) -> Result<(Pg, bool), Error> {
        let mut config: Config = t.url.parse().map_err(|e| {
            Error::Config(t.scrub(&format!("invalid postgres URL {}: {e}", t.shown)))
        })?;
        config.application_name(APP_NAME);
        config.connect_timeout(o.connect_timeout);
        let dbname = config
            .get_dbname()
            .or(config.get_user())
            .unwrap_or("postgres")
            .to_string();
        let mut created = false;
        let client = match connect(&config, t).await {
            Ok(c) => c,
            Err(e)
                if e.as_db_error().map(|d| d.code()) == Some(&SqlState::INVALID_CATALOG_NAME) =>
            {
                if !create {
                    return Err(Error::DatabaseMissing {
                        what: format!("database \"{dbname}\" does not exist ({})", t.shown),
                        hint: "set create_database = true on the migrate service, or create it \
                               (CREATE DATABASE)"
                            .into(),
                    });
                }
                // The maintenance database, with the same host, user and password.
                let mut admin = config.clone();
                admin.dbname("postgres");
                let (admin, admin_task) = connect(&admin, t).await.map_err(|e| {
                    connect_error(&e, t, "connecting to the postgres database to create it")
                })?;
                let sql = format!("CREATE DATABASE {}", quote_ident(&dbname, '"'));
                let r = admin.batch_execute(&sql).await;
                drop(admin);
                let _ = admin_task.await;
                match r {
                    Ok(()) => created = true,
                    // Another migrator created it at the same moment.
                    Err(e)
                        if matches!(
                            e.code(),
                            Some(c) if *c == SqlState::DUPLICATE_DATABASE
                                || *c == SqlState::UNIQUE_VIOLATION
                        ) => {}
                    Err(e) => {
                        return Err(Error::Database(t.scrub(&format!(
                            "cannot create database \"{dbname}\" ({}): {}",
                            t.shown,
                            describe(&e)
                        ))));
                    }
                }
                connect(&config, t)
                    .await
                    .map_err(|e| connect_error(&e, t, "connecting"))?
            }
            Err(e) => return Err(connect_error(&e, t, "connecting")),
        };
        let (client, task) = client;
        let digest = sha256_hex(format!("gantry-migrate:{dbname}").as_bytes());
        let key = u64::from_str_radix(&digest[..16], 16).unwrap_or_default() as i64;
        Ok((
            Pg {
                client,
                task,
                target: t.clone(),
                dbname,
                key,
                locked: false,
            },
            created,
        ))
    }

    fn err(&self, what: &str, e: &tokio_postgres::Error) -> Error {
        Error::Database(self.target.scrub(&format!(
            "{what} on {}: {}",
            self.target.shown,
            describe(e)
        )))
    }

    pub async fn lock(&mut self, timeout: Duration) -> Result<(), Error> {
        let start = Instant::now();
        loop {
            let got: bool = self
                .client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&self.key])
                .await
                .map_err(|e| self.err("taking the migration lock", &e))?
                .get(0);
            if got {
                self.locked = true;
                return Ok(());
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(Error::Lock {
                    database: format!("database \"{}\" ({})", self.dbname, self.target.shown),
                    waited: timeout,
                    holder: self.holder().await,
                });
            }
            tokio::time::sleep((timeout - waited).min(Duration::from_millis(100))).await;
        }
    }

    /// Who holds the advisory lock: pg_locks joined with pg_stat_activity.
    async fn holder(&self) -> Option<String> {
        let k = self.key as u64;
        let (hi, lo) = ((k >> 32) as i64, (k & 0xffff_ffff) as i64);
        let rows = self
            .client
            .query(
                "SELECT a.pid, coalesce(a.application_name, ''), \
                        coalesce(host(a.client_addr), 'local socket'), coalesce(a.state, ''), \
                        coalesce(extract(epoch FROM now() - a.backend_start)::bigint, 0) \
                 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
                   AND l.classid::bigint = $1 AND l.objid::bigint = $2 \
                   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                &[&hi, &lo],
            )
            .await
            .ok()?;
        let shown: Vec<String> = rows
            .iter()
            .map(|r| {
                let (pid, app, addr, state, secs): (i32, String, String, String, i64) =
                    (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
                format!(
                    "held by pid {pid} (application_name \"{app}\", client {addr}, state \
                     \"{state}\", connected for {})",
                    fmt_duration(Duration::from_secs(secs.max(0) as u64))
                )
            })
            .collect();
        (!shown.is_empty()).then(|| shown.join("; "))
    }

    pub async fn unlock(&mut self) -> Result<(), Error> {
        if std::mem::take(&mut self.locked) {
            self.client
                .query_one("SELECT pg_advisory_unlock($1)", &[&self.key])
                .await
                .map_err(|e| self.err("releasing the migration lock", &e))?;
        }
        Ok(())
    }

    pub async fn ensure_tables(&mut self) -> Result<(), Error> {
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (
                version bigint PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                duration_ms bigint NOT NULL,
                success boolean NOT NULL
            );
            CREATE TABLE IF NOT EXISTS {HASH_TABLE} (
                id integer PRIMARY KEY CHECK (id = 1),
                hash text NOT NULL,
                catalog text NOT NULL,
                format integer NOT NULL,
                recorded_at timestamptz NOT NULL DEFAULT now(),
                checked_at timestamptz NOT NULL DEFAULT now()
            );"
        );
        self.client
            .batch_execute(&sql)
            .await
            .map_err(|e| self.err("creating the history tables", &e))
    }

    async fn has_table(&self, name: &str) -> Result<bool, Error> {
        let row = self
            .client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
            .await
            .map_err(|e| self.err(&format!("looking for {name}"), &e))?;
        Ok(row.get(0))
    }

    pub async fn history(&mut self) -> Result<Vec<HistoryRow>, Error> {
        if !self.has_table(HISTORY_TABLE).await? {
            return Ok(Vec::new());
        }
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT version, name, checksum, \
                       to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
                       duration_ms, success \
                     FROM {HISTORY_TABLE} ORDER BY version"
                ),
                &[],
            )
            .await
            .map_err(|e| self.err(&format!("reading {HISTORY_TABLE}"), &e))?;
        Ok(rows
            .iter()
            .map(|r| HistoryRow {
                version: r.get(0),
                name: r.get(1),
                checksum: r.get(2),
                applied_at: r.get(3),
                duration_ms: r.get(4),
                success: r.get(5),
            })
            .collect())
    }

    async fn insert(
        &self,
        m: &MigrationFile,
        ms: i64,
        success: bool,
    ) -> Result<(), tokio_postgres::Error> {
        self.client
            .execute(
                &format!(
                    "INSERT INTO {HISTORY_TABLE} (version, name, checksum, duration_ms, success) \
                     VALUES ($1, $2, $3, $4, $5)"
                ),
                &[&m.version, &m.name, &m.checksum, &ms, &success],
            )
            .await
            .map(drop)
    }

    pub async fn apply(&mut self, m: &MigrationFile, sql: &str) -> Result<i64, Failure> {
        let start = Instant::now();
        let run = async {
            self.client.batch_execute("BEGIN").await?;
            if !crate::files::is_blank_sql(sql) {
                self.client.batch_execute(sql).await?;
            }
            self.insert(m, ms_since(start), true).await?;
            self.client.batch_execute("COMMIT").await
        };
        match run.await {
            Ok(()) => Ok(ms_since(start)),
            Err(e) => {
                let message = self.target.scrub(&describe_in(&e, sql));
                let _ = self.client.batch_execute("ROLLBACK").await;
                let not_recorded = self
                    .insert(m, ms_since(start), false)
                    .await
                    .err()
                    .map(|e| self.target.scrub(&describe(&e)));
                Err(Failure {
                    message,
                    not_recorded,
                })
            }
        }
    }

    pub async fn revert(&mut self, version: i64, sql: &str) -> Result<i64, Failure> {
        let start = Instant::now();
        let run = async {
            self.client.batch_execute("BEGIN").await?;
            if !crate::files::is_blank_sql(sql) {
                self.client.batch_execute(sql).await?;
            }
            self.client
                .execute(
                    &format!("DELETE FROM {HISTORY_TABLE} WHERE version = $1"),
                    &[&version],
                )
                .await?;
            self.client.batch_execute("COMMIT").await
        };
        match run.await {
            Ok(()) => Ok(ms_since(start)),
            Err(e) => {
                let message = self.target.scrub(&describe_in(&e, sql));
                let not_recorded = self
                    .client
                    .batch_execute("ROLLBACK")
                    .await
                    .err()
                    .map(|e| self.target.scrub(&describe(&e)));
                Err(Failure {
                    message,
                    not_recorded,
                })
            }
        }
    }

    pub async fn mark_dirty(&mut self, version: i64) -> Result<(), Error> {
        self.client
            .execute(
                &format!("UPDATE {HISTORY_TABLE} SET success = false WHERE version = $1"),
                &[&version],
            )
            .await
            .map(drop)
            .map_err(|e| self.err("marking the migration dirty", &e))
    }

    pub async fn delete_row(&mut self, version: i64) -> Result<(), Error> {
        self.client
            .execute(
                &format!("DELETE FROM {HISTORY_TABLE} WHERE version = $1"),
                &[&version],
            )
            .await
            .map(drop)
            .map_err(|e| {
                self.err(
                    &format!("deleting version {version} from {HISTORY_TABLE}"),
                    &e,
                )
            })
    }

    pub async fn set_checksum(&mut self, version: i64, checksum: &str) -> Result<(), Error> {
        self.client
            .execute(
                &format!("UPDATE {HISTORY_TABLE} SET checksum = $2 WHERE version = $1"),
                &[&version, &checksum],
            )
            .await
            .map(drop)
            .map_err(|e| self.err(&format!("updating the checksum of version {version}"), &e))
    }

    pub async fn catalog(&mut self) -> Result<Catalog, Error> {
        let own: Vec<String> = OWN_TABLES.iter().map(|s| s.to_string()).collect();
        let this = &*self;
        let q = async |sql: String| {
            this.client
                .query(&sql, &[&own])
                .await
                .map_err(|e| this.err("reading the catalog", &e))
        };
        // `public.users` is shown as `users`.
        let qual = "CASE WHEN n.nspname = 'public' THEN '' ELSE n.nspname || '.' END";
        let mut lines = Vec::new();
        for r in q(format!(
            "SELECT {qual} || c.relname, c.relkind::text, \
                    CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) ELSE '' END \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {SYSTEM_SCHEMAS} \
               AND NOT (c.relname = ANY($1))"
        ))
        .await?
        {
            let (name, kind, def): (String, String, String) = (r.get(0), r.get(1), r.get(2));
            lines.push(match kind.as_str() {
                "v" => format!("view {name} AS {}", one_line(&def)),
                "m" => format!("materialized view {name} AS {}", one_line(&def)),
                "p" => format!("table {name} PARTITIONED"),
                "f" => format!("foreign table {name}"),
                _ => format!("table {name}"),
            });
        }
        for r in q(format!(
            "SELECT {qual} || c.relname, a.attname::text, format_type(a.atttypid, a.atttypmod), \
                    a.attnotnull, coalesce(pg_get_expr(d.adbin, d.adrelid), ''), \
                    a.attidentity::text, a.attgenerated::text, \
                    coalesce((SELECT collname FROM pg_collation co WHERE co.oid = a.attcollation \
                              AND a.attcollation <> t.typcollation)::text, '') \
             FROM pg_attribute a \
             JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_type t ON t.oid = a.atttypid \
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE a.attnum > 0 AND NOT a.attisdropped \
               AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {SYSTEM_SCHEMAS} \
               AND NOT (c.relname = ANY($1))"
        ))
        .await?
        {
            let (table, col, ty, notnull, default, identity, generated, coll): (
                String,
                String,
                String,
                bool,
                String,
                String,
                String,
                String,
            ) = (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
                r.get(7),
            );
            let mut line = format!(
                "column {table}.{col} {ty} {}",
                if notnull { "NOT NULL" } else { "NULL" }
            );
            if !coll.is_empty() {
                line.push_str(&format!(" COLLATE {coll}"));
            }
            match (identity.as_str(), generated.as_str()) {
                ("a", _) => line.push_str(" GENERATED ALWAYS AS IDENTITY"),
                ("d", _) => line.push_str(" GENERATED BY DEFAULT AS IDENTITY"),
                (_, "s") => line.push_str(&format!(" GENERATED ALWAYS AS ({default}) STORED")),
                _ if !default.is_empty() => line.push_str(&format!(" DEFAULT {default}")),
                _ => {}
            }
            lines.push(line);
        }
        for r in q(format!(
            "SELECT {qual} || t.relname, i.relname::text, pg_get_indexdef(i.oid) \
             FROM pg_index x \
             JOIN pg_class i ON i.oid = x.indexrelid \
             JOIN pg_class t ON t.oid = x.indrelid \
             JOIN pg_namespace n ON n.oid = t.relnamespace \
             WHERE {SYSTEM_SCHEMAS} AND NOT (t.relname = ANY($1))"
        ))
        .await?
        {
            let (table, index, def): (String, String, String) = (r.get(0), r.get(1), r.get(2));
            // `CREATE UNIQUE INDEX x ON public.t USING btree (a)` → `UNIQUE btree (a)`.
            let unique = if def.starts_with("CREATE UNIQUE") {
                "UNIQUE "
            } else {
                ""
            };
            let using = def.split_once(" USING ").map_or(def.as_str(), |(_, u)| u);
            lines.push(format!("index {table}.{index} {unique}{using}"));
        }
        for r in q(format!(
            "SELECT {qual} || c.relname, k.conname::text, pg_get_constraintdef(k.oid) \
             FROM pg_constraint k \
             JOIN pg_class c ON c.oid = k.conrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE {SYSTEM_SCHEMAS} AND NOT (c.relname = ANY($1))"
        ))
        .await?
        {
            let (table, name, def): (String, String, String) = (r.get(0), r.get(1), r.get(2));
            lines.push(format!("constraint {table}.{name} {}", one_line(&def)));
        }
        for r in q(format!(
            "SELECT {qual} || c.relname, g.tgname::text, pg_get_triggerdef(g.oid) \
             FROM pg_trigger g \
             JOIN pg_class c ON c.oid = g.tgrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE NOT g.tgisinternal AND {SYSTEM_SCHEMAS} AND NOT (c.relname = ANY($1))"
        ))
        .await?
        {
            let (table, name, def): (String, String, String) = (r.get(0), r.get(1), r.get(2));
            lines.push(format!("trigger {table}.{name} {}", one_line(&def)));
        }
        Ok(Catalog::from_lines(lines))
    }

    pub async fn recorded(&mut self) -> Result<Option<Recorded>, Error> {
        if !self.has_table(HASH_TABLE).await? {
            return Ok(None);
        }
        let row = self
            .client
            .query_opt(
                &format!(
                    "SELECT hash, catalog, format::bigint, \
                       to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
                     FROM {HASH_TABLE} WHERE id = 1"
                ),
                &[],
            )
            .await
            .map_err(|e| self.err(&format!("reading {HASH_TABLE}"), &e))?;
        Ok(row.map(|r| Recorded {
            hash: r.get(0),
            catalog: Catalog::parse(r.get(1)),
            format: r.get(2),
            recorded_at: r.get(3),
        }))
    }

    pub async fn record(&mut self, catalog: &Catalog) -> Result<(), Error> {
        let (hash, text, format) = (catalog.hash(), catalog.text(), FORMAT as i32);
        let sql = format!(
            "INSERT INTO {HASH_TABLE} (id, hash, catalog, format) VALUES (1, '', '', 0) \
             ON CONFLICT (id) DO NOTHING"
        );
        self.client
            .batch_execute(&sql)
            .await
            .map_err(|e| self.err(&format!("writing {HASH_TABLE}"), &e))?;
        self.client
            .execute(
                &format!(
                    "UPDATE {HASH_TABLE} SET \
                       recorded_at = CASE WHEN hash = $1 THEN recorded_at ELSE now() END, \
                       hash = $1, catalog = $2, format = $3, checked_at = now() \
                     WHERE id = 1"
                ),
                &[&hash, &text, &format],
            )
            .await
            .map(drop)
            .map_err(|e| self.err(&format!("writing {HASH_TABLE}"), &e))
    }

    pub async fn close(self) {
        drop(self.client);
        let _ = self.task.await;
    }
}

type Connected = (Client, tokio::task::JoinHandle<()>);

async fn connect(config: &Config, _t: &Target) -> Result<Connected, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    // The connection future does the socket I/O; it ends when the client is dropped.
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok((client, task))
}

fn connect_error(e: &tokio_postgres::Error, t: &Target, what: &str) -> Error {
    Error::Connect(t.scrub(&format!("{what} to {}: {}", t.shown, describe(e))))
}

/// The database's words for an error: SQLSTATE, message, detail and hint; or the socket
/// failure.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut out = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        if let Some(d) = db.detail() {
            out.push_str(&format!("; detail: {d}"));
        }
        if let Some(h) = db.hint() {
            out.push_str(&format!("; hint: {h}"));
        }
        if *db.code() == SqlState::INVALID_PASSWORD
            || *db.code() == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            out = format!("authentication failed: {out}");
        }
        return out;
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(s) = cur {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    "connection refused (is the server running?)".into()
                }
                _ => format!("{e}: {io}"),
            };
        }
        cur = s.source();
    }
    e.to_string()
}

/// [`describe`], with the line and column in the file when the server gives a position.
fn describe_in(e: &tokio_postgres::Error, sql: &str) -> String {
    let mut out = describe(e);
    if let Some(db) = e.as_db_error()
        && let Some(ErrorPosition::Original(pos)) = db.position()
    {
        let (line, col) = line_col(sql, *pos as usize);
        out.push_str(&format!(" at line {line}, column {col}"));
    }
    out
}
