//! MySQL / MariaDB: mysql_async over plain TCP, session time zone UTC, `GET_LOCK` for the
//! migration lock, the catalog from information_schema.
//!
//! DDL is not transactional here: every `CREATE` / `ALTER` / `DROP` commits on its own. A
//! migration still runs inside `START TRANSACTION … COMMIT` (a data-only migration is rolled
//! back as a whole), and when one fails the error says which statement failed and that the
//! ones before it may have been applied.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Row, Value};

use super::{APP_NAME, Failure, HistoryRow, Recorded, ms_since, quote_ident};
use crate::catalog::{Catalog, FORMAT, OWN_TABLES, one_line};
use crate::files::{MigrationFile, sha256_hex};
use crate::url::Target;
use crate::{Error, HASH_TABLE, HISTORY_TABLE, Options};

pub(crate) struct My {
    conn: Conn,
    target: Target,
    db: String,
    lock_name: String,
    locked: bool,
}

impl My {
    pub async fn open(t: &Target, o: &Options, create: bool) -> Result<(My, bool), Error> {
        let opts = Opts::from_url(&t.url)
            .map_err(|e| Error::Config(t.scrub(&format!("invalid mysql URL {}: {e}", t.shown))))?;
        let Some(db) = opts.db_name().map(str::to_string) else {
            return Err(Error::Config(format!(
                "the URL {} names no database; add it: mysql://user@host:3306/DATABASE",
                t.shown
            )));
        };
        let attrs = HashMap::from([("program_name".to_string(), APP_NAME.to_string())]);
        let builder = OptsBuilder::from_opts(opts)
            .prefer_socket(false)
            .connect_attributes(attrs)
            .init(vec!["SET time_zone = '+00:00'"]);
        let mut created = false;
        let conn = match connect(builder.clone(), t, o).await {
            Ok(c) => c,
            Err(ConnectError::Server(1049, _)) if create => {
                let mut admin = connect(builder.clone().db_name(None::<String>), t, o)
                    .await
                    .map_err(|e| e.into_error(t, "connecting (without a database) to create it"))?;
                let r = admin
                    .query_drop(format!(
                        "CREATE DATABASE IF NOT EXISTS {}",
                        quote_ident(&db, '`')
                    ))
                    .await;
                // A warning means it existed already (another migrator made it just now).
                created = r.is_ok() && admin.get_warnings() == 0;
                let _ = admin.disconnect().await;
                r.map_err(|e| {
                    Error::Database(t.scrub(&format!(
                        "cannot create database `{db}` ({}): {}",
                        t.shown,
                        describe(&e)
                    )))
                })?;
                connect(builder, t, o)
                    .await
                    .map_err(|e| e.into_error(t, "connecting"))?
            }
            Err(ConnectError::Server(1049, _)) => {
                return Err(Error::DatabaseMissing {
                    what: format!("database `{db}` does not exist ({})", t.shown),
                    hint: "set create_database = true on the migrate service, or create it \
                           (CREATE DATABASE)"
                        .into(),
                });
            }
            Err(e) => return Err(e.into_error(t, "connecting")),
        };
        let lock_name = format!(
            "gantry-migrate:{}",
            &sha256_hex(format!("gantry-migrate:{db}").as_bytes())[..16]
        );
        Ok((
            My {
                conn,
                target: t.clone(),
                db,
                lock_name,
                locked: false,
            },
            created,
        ))
    }

    fn err(&self, what: &str, e: &mysql_async::Error) -> Error {
        Error::Database(self.target.scrub(&format!(
            "{what} on {}: {}",
            self.target.shown,
            describe(e)
        )))
    }

    pub async fn lock(&mut self, timeout: Duration) -> Result<(), Error> {
        // GET_LOCK takes whole seconds.
        let secs = timeout.as_millis().div_ceil(1000) as i64;
        let got: Option<Option<i64>> = self
            .conn
            .exec_first("SELECT GET_LOCK(?, ?)", (&self.lock_name, secs))
            .await
            .map_err(|e| self.err("taking the migration lock (GET_LOCK)", &e))?;
        if got.flatten() == Some(1) {
            self.locked = true;
            return Ok(());
        }
        Err(Error::Lock {
            database: format!("database `{}` ({})", self.db, self.target.shown),
            waited: timeout,
            holder: self.holder().await,
        })
    }

    /// Who holds the lock: IS_USED_LOCK → the processlist row.
    async fn holder(&mut self) -> Option<String> {
        let id: Option<Option<u64>> = self
            .conn
            .exec_first("SELECT IS_USED_LOCK(?)", (&self.lock_name,))
            .await
            .ok()?;
        let id = id.flatten()?;
        let row: Option<Row> = self
            .conn
            .exec_first(
                "SELECT USER, HOST, DB, COMMAND, TIME, STATE \
                 FROM information_schema.PROCESSLIST WHERE ID = ?",
                (id,),
            )
            .await
            .ok()?;
        Some(match row {
            Some(r) => format!(
                "held by connection {id} (user {}, client {}, database {}, command {}, for {}s, \
                 state \"{}\"; end it with KILL {id} if it is stuck)",
                text(&r, 0),
                text(&r, 1),
                text(&r, 2),
                text(&r, 3),
                text(&r, 4),
                text(&r, 5)
            ),
            None => format!("held by connection {id}"),
        })
    }

    pub async fn unlock(&mut self) -> Result<(), Error> {
        if std::mem::take(&mut self.locked) {
            let name = self.lock_name.clone();
            self.conn
                .exec_drop("DO RELEASE_LOCK(?)", (name,))
                .await
                .map_err(|e| self.err("releasing the migration lock", &e))?;
        }
        Ok(())
    }

    pub async fn ensure_tables(&mut self) -> Result<(), Error> {
        let r = self
            .conn
            .query_drop(format!(
                "CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (
                    version BIGINT NOT NULL PRIMARY KEY,
                    name VARCHAR(255) NOT NULL,
                    checksum CHAR(64) NOT NULL,
                    applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
                    duration_ms BIGINT NOT NULL,
                    success BOOLEAN NOT NULL
                );
                CREATE TABLE IF NOT EXISTS {HASH_TABLE} (
                    id INT NOT NULL PRIMARY KEY,
                    hash CHAR(64) NOT NULL,
                    catalog LONGTEXT NOT NULL,
                    format INT NOT NULL,
                    recorded_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
                    checked_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
                )"
            ))
            .await;
        r.map_err(|e| self.err("creating the history tables", &e))
    }

    async fn has_table(&mut self, name: &str) -> Result<bool, Error> {
        let n: Option<i64> = self
            .conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                (name,),
            )
            .await
            .map_err(|e| self.err(&format!("looking for {name}"), &e))?;
        Ok(n.unwrap_or(0) > 0)
    }

    async fn rows(&mut self, what: &str, sql: &str) -> Result<Vec<Row>, Error> {
        let r = self.conn.query::<Row, _>(sql).await;
        r.map_err(|e| self.err(what, &e))
    }

    pub async fn history(&mut self) -> Result<Vec<HistoryRow>, Error> {
        if !self.has_table(HISTORY_TABLE).await? {
            return Ok(Vec::new());
        }
        let rows = self
            .rows(
                &format!("reading {HISTORY_TABLE}"),
                &format!(
                    "SELECT version, name, checksum, \
                       DATE_FORMAT(applied_at, '%Y-%m-%dT%H:%i:%sZ'), duration_ms, success \
                     FROM {HISTORY_TABLE} ORDER BY version"
                ),
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| HistoryRow {
                version: text(r, 0).parse().unwrap_or_default(),
                name: text(r, 1),
                checksum: text(r, 2),
                applied_at: text(r, 3),
                duration_ms: text(r, 4).parse().unwrap_or_default(),
                success: text(r, 5) != "0",
            })
            .collect())
    }

    async fn insert(
        &mut self,
        m: &MigrationFile,
        ms: i64,
        success: bool,
    ) -> Result<(), mysql_async::Error> {
        self.conn
            .exec_drop(
                format!(
                    "INSERT INTO {HISTORY_TABLE} (version, name, checksum, duration_ms, success) \
                     VALUES (?, ?, ?, ?, ?)"
                ),
                (m.version, &m.name, &m.checksum, ms, success),
            )
            .await
    }

    /// Runs every statement of `sql`; on failure answers which one (1-based) failed.
    async fn run_statements(&mut self, sql: &str) -> Result<(), (usize, mysql_async::Error)> {
        if crate::files::is_blank_sql(sql) {
            return Ok(());
        }
        let mut result = self.conn.query_iter(sql).await.map_err(|e| (1, e))?;
        // One result set per statement. Finishing one reads the next statement's result;
        // a server error there is kept back until the next read asks for it.
        let mut statement = 1;
        loop {
            result.collect::<Row>().await.map_err(|e| (statement, e))?;
            statement += 1;
            if result.is_empty() {
                return result
                    .collect::<Row>()
                    .await
                    .map(drop)
                    .map_err(|e| (statement, e));
            }
        }
    }

    fn statement_failure(&self, sql: &str, n: usize, e: &mysql_async::Error) -> String {
        let starts = statement_lines(sql);
        let at = match starts.get(n - 1) {
            Some(line) => format!("statement {n} (line {line})"),
            None => format!("statement {n}"),
        };
        let before = if n > 1 {
            format!("; statements 1–{} ran before it", n - 1)
        } else {
            String::new()
        };
        self.target
            .scrub(&format!("{at} failed: {}{before}", describe(e)))
    }

    pub async fn apply(&mut self, m: &MigrationFile, sql: &str) -> Result<i64, Failure> {
        let start = Instant::now();
        let target = self.target.clone();
        let d = |e: mysql_async::Error| target.scrub(&describe(&e));
        let run: Result<(), String> = async {
            self.conn.query_drop("START TRANSACTION").await.map_err(d)?;
            if let Err((n, e)) = self.run_statements(sql).await {
                return Err(self.statement_failure(sql, n, &e));
            }
            self.insert(m, ms_since(start), true).await.map_err(d)?;
            self.conn.query_drop("COMMIT").await.map_err(d)
        }
        .await;
        match run {
            Ok(()) => Ok(ms_since(start)),
            Err(message) => {
                let _ = self.conn.query_drop("ROLLBACK").await;
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
        let target = self.target.clone();
        let d = |e: mysql_async::Error| target.scrub(&describe(&e));
        let run: Result<(), String> = async {
            self.conn.query_drop("START TRANSACTION").await.map_err(d)?;
            if let Err((n, e)) = self.run_statements(sql).await {
                return Err(self.statement_failure(sql, n, &e));
            }
            self.conn
                .exec_drop(
                    format!("DELETE FROM {HISTORY_TABLE} WHERE version = ?"),
                    (version,),
                )
                .await
                .map_err(d)?;
            self.conn.query_drop("COMMIT").await.map_err(d)
        }
        .await;
        match run {
            Ok(()) => Ok(ms_since(start)),
            Err(message) => {
                let not_recorded = self
                    .conn
                    .query_drop("ROLLBACK")
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

    async fn exec_history(
        &mut self,
        what: &str,
        sql: String,
        params: (i64, Option<String>),
    ) -> Result<(), Error> {
        let r = match params.1 {
            Some(s) => self.conn.exec_drop(sql, (s, params.0)).await,
            None => self.conn.exec_drop(sql, (params.0,)).await,
        };
        r.map_err(|e| self.err(what, &e))
    }

    pub async fn mark_dirty(&mut self, version: i64) -> Result<(), Error> {
        self.exec_history(
            "marking the migration dirty",
            format!("UPDATE {HISTORY_TABLE} SET success = FALSE WHERE version = ?"),
            (version, None),
        )
        .await
    }

    pub async fn delete_row(&mut self, version: i64) -> Result<(), Error> {
        self.exec_history(
            &format!("deleting version {version} from {HISTORY_TABLE}"),
            format!("DELETE FROM {HISTORY_TABLE} WHERE version = ?"),
            (version, None),
        )
        .await
    }

    pub async fn set_checksum(&mut self, version: i64, checksum: &str) -> Result<(), Error> {
        self.exec_history(
            &format!("updating the checksum of version {version}"),
            format!("UPDATE {HISTORY_TABLE} SET checksum = ? WHERE version = ?"),
            (version, Some(checksum.to_string())),
        )
        .await
    }

    pub async fn catalog(&mut self) -> Result<Catalog, Error> {
        let own = OWN_TABLES
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let what = "reading the catalog (information_schema)";
        let mut lines = Vec::new();
        for r in self
            .rows(
                what,
                &format!(
                    "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES \
                     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME NOT IN ({own})"
                ),
            )
            .await?
        {
            let kind = if text(&r, 1) == "VIEW" {
                "view"
            } else {
                "table"
            };
            lines.push(format!("{kind} {}", text(&r, 0)));
        }
        for r in self
            .rows(
                what,
                &format!(
                    "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, \
                            EXTRA, COLLATION_NAME \
                     FROM information_schema.COLUMNS \
                     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME NOT IN ({own})"
                ),
            )
            .await?
        {
            let mut line = format!(
                "column {}.{} {} {}",
                text(&r, 0),
                text(&r, 1),
                text(&r, 2),
                if text(&r, 3) == "YES" {
                    "NULL"
                } else {
                    "NOT NULL"
                }
            );
            // MariaDB writes a missing default as the text NULL.
            if let Some(d) = opt_text(&r, 4).filter(|d| d != "NULL") {
                line.push_str(&format!(" DEFAULT {d}"));
            }
            if let Some(c) = opt_text(&r, 6).filter(|c| !c.is_empty()) {
                line.push_str(&format!(" COLLATE {c}"));
            }
            let extra = text(&r, 5);
            if !extra.is_empty() {
                line.push_str(&format!(" {}", extra.to_uppercase()));
            }
            lines.push(line);
        }
        // Indexes: one line each, columns in order.
        let mut indexes: BTreeMap<(String, String), (bool, String, Vec<String>)> = BTreeMap::new();
        for r in self
            .rows(
                what,
                &format!(
                    "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART, INDEX_TYPE \
                     FROM information_schema.STATISTICS \
                     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME NOT IN ({own}) \
                     ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"
                ),
            )
            .await?
        {
            let e = indexes
                .entry((text(&r, 0), text(&r, 1)))
                .or_insert_with(|| (text(&r, 2) == "0", text(&r, 5), Vec::new()));
            let mut col = opt_text(&r, 3).unwrap_or_else(|| "(expression)".into());
            if let Some(len) = opt_text(&r, 4) {
                col.push_str(&format!("({len})"));
            }
            e.2.push(col);
        }
        for ((table, index), (unique, ty, cols)) in indexes {
            lines.push(format!(
                "index {table}.{index} {}{} ({})",
                if unique { "UNIQUE " } else { "" },
                ty.to_lowercase(),
                cols.join(", ")
            ));
        }
        // Constraints; foreign keys with their columns and references.
        // (table, name) → (columns, referenced table, referenced columns)
        type Fk = (Vec<String>, String, Vec<String>);
        let mut fks: BTreeMap<(String, String), Fk> = BTreeMap::new();
        for r in self
            .rows(
                what,
                &format!(
                    "SELECT TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, \
                            REFERENCED_COLUMN_NAME \
                     FROM information_schema.KEY_COLUMN_USAGE \
                     WHERE CONSTRAINT_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME IS NOT NULL \
                       AND TABLE_NAME NOT IN ({own}) \
                     ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION"
                ),
            )
            .await?
        {
            let e = fks
                .entry((text(&r, 0), text(&r, 1)))
                .or_insert_with(|| (Vec::new(), text(&r, 3), Vec::new()));
            e.0.push(text(&r, 2));
            e.2.push(text(&r, 4));
        }
        let mut rules: HashMap<(String, String), String> = HashMap::new();
        for r in self
            .rows(
                what,
                "SELECT TABLE_NAME, CONSTRAINT_NAME, UPDATE_RULE, DELETE_RULE \
                 FROM information_schema.REFERENTIAL_CONSTRAINTS \
                 WHERE CONSTRAINT_SCHEMA = DATABASE()",
            )
            .await?
        {
            rules.insert(
                (text(&r, 0), text(&r, 1)),
                format!(" ON UPDATE {} ON DELETE {}", text(&r, 2), text(&r, 3)),
            );
        }
        for ((table, name), (cols, rtable, rcols)) in fks {
            let rule = rules.get(&(table.clone(), name.clone())).cloned();
            lines.push(format!(
                "constraint {table}.{name} FOREIGN KEY ({}) REFERENCES {rtable}({}){}",
                cols.join(", "),
                rcols.join(", "),
                rule.unwrap_or_default()
            ));
        }
        for r in self
            .rows(
                what,
                &format!(
                    "SELECT TABLE_NAME, CONSTRAINT_NAME, CONSTRAINT_TYPE \
                     FROM information_schema.TABLE_CONSTRAINTS \
                     WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME NOT IN ({own}) \
                       AND CONSTRAINT_TYPE NOT IN ('FOREIGN KEY', 'CHECK')"
                ),
            )
            .await?
        {
            lines.push(format!(
                "constraint {}.{} {}",
                text(&r, 0),
                text(&r, 1),
                text(&r, 2)
            ));
        }
        // CHECK constraints (MariaDB 10.2+, MySQL 8.0.16+); older servers have no such table.
        if let Ok(rows) = self
            .conn
            .query::<Row, _>(format!(
                "SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE \
                 FROM information_schema.CHECK_CONSTRAINTS \
                 WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME NOT IN ({own})"
            ))
            .await
        {
            for r in rows {
                lines.push(format!(
                    "constraint {}.{} CHECK ({})",
                    text(&r, 0),
                    text(&r, 1),
                    one_line(&text(&r, 2))
                ));
            }
        }
        for r in self
            .rows(
                what,
                "SELECT EVENT_OBJECT_TABLE, TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION, \
                        ACTION_STATEMENT \
                 FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()",
            )
            .await?
        {
            lines.push(format!(
                "trigger {}.{} {} {} {}",
                text(&r, 0),
                text(&r, 1),
                text(&r, 2),
                text(&r, 3),
                one_line(&text(&r, 4))
            ));
        }
        Ok(Catalog::from_lines(lines))
    }

    pub async fn recorded(&mut self) -> Result<Option<Recorded>, Error> {
        if !self.has_table(HASH_TABLE).await? {
            return Ok(None);
        }
        let rows = self
            .rows(
                &format!("reading {HASH_TABLE}"),
                &format!(
                    "SELECT hash, catalog, format, \
                       DATE_FORMAT(recorded_at, '%Y-%m-%dT%H:%i:%sZ') \
                     FROM {HASH_TABLE} WHERE id = 1"
                ),
            )
            .await?;
        Ok(rows.first().map(|r| Recorded {
            hash: text(r, 0),
            catalog: Catalog::parse(&text(r, 1)),
            format: text(r, 2).parse().unwrap_or_default(),
            recorded_at: text(r, 3),
        }))
    }

    pub async fn record(&mut self, catalog: &Catalog) -> Result<(), Error> {
        let what = format!("writing {HASH_TABLE}");
        let r = self
            .conn
            .query_drop(format!(
                "INSERT IGNORE INTO {HASH_TABLE} (id, hash, catalog, format) VALUES (1, '', '', 0)"
            ))
            .await;
        r.map_err(|e| self.err(&what, &e))?;
        let hash = catalog.hash();
        // MySQL assigns left to right: recorded_at must see the old hash.
        let r = self
            .conn
            .exec_drop(
                format!(
                    "UPDATE {HASH_TABLE} SET \
                       recorded_at = IF(hash = ?, recorded_at, CURRENT_TIMESTAMP), \
                       hash = ?, catalog = ?, format = ?, checked_at = CURRENT_TIMESTAMP \
                     WHERE id = 1"
                ),
                (&hash, &hash, catalog.text(), FORMAT),
            )
            .await;
        r.map_err(|e| self.err(&what, &e))
    }

    pub async fn close(self) {
        let _ = self.conn.disconnect().await;
    }
}

enum ConnectError {
    Server(u16, String),
    Other(String),
}

impl ConnectError {
    fn into_error(self, t: &Target, what: &str) -> Error {
        let msg = match self {
            ConnectError::Server(1045 | 1698, m) => format!("authentication failed: {m}"),
            ConnectError::Server(code, m) => format!("server error {code}: {m}"),
            ConnectError::Other(m) => m,
        };
        Error::Connect(t.scrub(&format!("{what} to {}: {msg}", t.shown)))
    }
}

async fn connect(b: OptsBuilder, t: &Target, o: &Options) -> Result<Conn, ConnectError> {
    match tokio::time::timeout(o.connect_timeout, Conn::new(b)).await {
        Err(_) => Err(ConnectError::Other(format!(
            "timed out after {}",
            crate::error::fmt_duration(o.connect_timeout)
        ))),
        Ok(Ok(c)) => Ok(c),
        Ok(Err(mysql_async::Error::Server(s))) => Err(ConnectError::Server(s.code, s.message)),
        Ok(Err(e)) => Err(ConnectError::Other(t.scrub(&describe(&e)))),
    }
}

fn describe(e: &mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Server(s) => match s.code {
            1045 | 1698 => format!("authentication failed: {}", s.message),
            code => format!("{} (error {code}, SQLSTATE {})", s.message, s.state),
        },
        mysql_async::Error::Io(io) => {
            let text = io.to_string();
            if text.contains("onnection refused") {
                "connection refused (is the server running?)".into()
            } else {
                text
            }
        }
        other => other.to_string(),
    }
}

/// A column as text (text protocol bytes, or a binary-protocol number); NULL → None.
fn opt_text(r: &Row, i: usize) -> Option<String> {
    match r.as_ref(i)? {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Int(n) => Some(n.to_string()),
        Value::UInt(n) => Some(n.to_string()),
        Value::Float(n) => Some(n.to_string()),
        Value::Double(n) => Some(n.to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn text(r: &Row, i: usize) -> String {
    opt_text(r, i).unwrap_or_default()
}

/// The line on which each statement of `sql` starts (split at `;` outside strings, quoted
/// names and comments). Approximate for files using `DELIMITER` (a client command MySQL
/// itself does not understand anyway).
pub(crate) fn statement_lines(sql: &str) -> Vec<usize> {
    #[derive(PartialEq)]
    enum S {
        Normal,
        Quote(char),
        Line,
        Block,
    }
    let mut out = Vec::new();
    let mut state = S::Normal;
    let mut line = 1;
    let mut in_statement = false;
    let chars: Vec<char> = sql.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match state {
            S::Normal => {
                if c == '-' && next == Some('-') || c == '#' {
                    state = S::Line;
                } else if c == '/' && next == Some('*') {
                    state = S::Block;
                    i += 1;
                } else if c == ';' {
                    in_statement = false;
                } else if !c.is_whitespace() {
                    if !in_statement {
                        out.push(line);
                        in_statement = true;
                    }
                    if matches!(c, '\'' | '"' | '`') {
                        state = S::Quote(c);
                    }
                }
            }
            S::Quote(q) => {
                if c == '\\' && q != '`' {
                    i += 1;
                } else if c == q {
                    state = S::Normal;
                }
            }
            S::Line => {
                if c == '\n' {
                    state = S::Normal;
                }
            }
            S::Block => {
                if c == '*' && next == Some('/') {
                    state = S::Normal;
                    i += 1;
                }
            }
        }
        if chars.get(i) == Some(&'\n') {
            line += 1;
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::statement_lines;

    #[test]
    fn statements_are_found_by_line() {
        let sql = "-- header\nCREATE TABLE a (x int);\n\nINSERT INTO a VALUES (1); -- c\n\
                   INSERT INTO a VALUES (';\n');\n/* c; */ SELECT 1;\n";
        assert_eq!(statement_lines(sql), [2, 4, 5, 7]);
    }
}
