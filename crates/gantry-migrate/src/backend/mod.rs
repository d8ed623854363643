//! One connection to the database, whichever it is: the operations the migrator needs,
//! dispatched to the PostgreSQL, MySQL/MariaDB or SQLite implementation.

mod mysql;
mod postgres;
mod sqlite;

use std::time::Duration;

use crate::catalog::Catalog;
use crate::files::MigrationFile;
use crate::url::{Backend, Target};
use crate::{Error, Options};

/// The `application_name` (PostgreSQL) / `program_name` connection attribute (MySQL) of
/// every migrator connection, so a lock holder can be recognised.
pub(crate) const APP_NAME: &str = "gantry-migrate";

/// One row of the history table.
#[derive(Debug, Clone)]
pub(crate) struct HistoryRow {
    pub version: i64,
    pub name: String,
    pub checksum: String,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub applied_at: String,
    pub duration_ms: i64,
    pub success: bool,
}

/// The row of the schema hash table.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub hash: String,
    pub catalog: Catalog,
    pub format: i64,
    pub recorded_at: String,
}

/// A migration's SQL failed.
#[derive(Debug)]
pub(crate) struct Failure {
    pub message: String,
    /// Why the dirty mark / the rollback could not be written, when it could not.
    pub not_recorded: Option<String>,
}

pub(crate) enum Conn {
    Pg(postgres::Pg),
    My(mysql::My),
    Lite(sqlite::Lite),
}

macro_rules! each {
    ($self:expr, $c:ident => $e:expr) => {
        match $self {
            Conn::Pg($c) => $e,
            Conn::My($c) => $e,
            Conn::Lite($c) => $e,
        }
    };
}

impl Conn {
    /// Connects; with `create`, creates the database first when it is missing. The bool
    /// says whether it was created by this call.
    pub async fn open(t: &Target, o: &Options, create: bool) -> Result<(Conn, bool), Error> {
        Ok(match t.backend {
            Backend::Postgres => {
                let (c, created) = postgres::Pg::open(t, o, create).await?;
                (Conn::Pg(c), created)
            }
            Backend::Mysql => {
                let (c, created) = mysql::My::open(t, o, create).await?;
                (Conn::My(c), created)
            }
            Backend::Sqlite => {
                let (c, created) = sqlite::Lite::open(t, o, create)?;
                (Conn::Lite(c), created)
            }
        })
    }

    /// Takes the migration lock, waiting up to `timeout` for another migrator.
    pub async fn lock(&mut self, timeout: Duration) -> Result<(), Error> {
        each!(self, c => c.lock(timeout).await)
    }

    /// Releases the lock (SQLite: commits the exclusive transaction).
    pub async fn unlock(&mut self) -> Result<(), Error> {
        each!(self, c => c.unlock().await)
    }

    /// Creates the history and schema hash tables when missing.
    pub async fn ensure_tables(&mut self) -> Result<(), Error> {
        each!(self, c => c.ensure_tables().await)
    }

    /// The history, by version; empty when the table does not exist yet.
    pub async fn history(&mut self) -> Result<Vec<HistoryRow>, Error> {
        each!(self, c => c.history().await)
    }

    /// Runs an up file and records it (success, or a dirty row on failure). Answers the
    /// duration in ms.
    pub async fn apply(&mut self, m: &MigrationFile, sql: &str) -> Result<i64, Failure> {
        each!(self, c => c.apply(m, sql).await)
    }

    /// Runs a down file and deletes the history row, in one transaction where possible.
    pub async fn revert(&mut self, version: i64, sql: &str) -> Result<i64, Failure> {
        each!(self, c => c.revert(version, sql).await)
    }

    pub async fn mark_dirty(&mut self, version: i64) -> Result<(), Error> {
        each!(self, c => c.mark_dirty(version).await)
    }

    pub async fn delete_row(&mut self, version: i64) -> Result<(), Error> {
        each!(self, c => c.delete_row(version).await)
    }

    pub async fn set_checksum(&mut self, version: i64, checksum: &str) -> Result<(), Error> {
        each!(self, c => c.set_checksum(version, checksum).await)
    }

    /// The live schema, without gantry's own tables.
    pub async fn catalog(&mut self) -> Result<Catalog, Error> {
        each!(self, c => c.catalog().await)
    }

    /// The recorded schema hash row, if any.
    pub async fn recorded(&mut self) -> Result<Option<Recorded>, Error> {
        each!(self, c => c.recorded().await)
    }

    /// Writes the schema hash row (hash, catalog text, format, timestamps).
    pub async fn record(&mut self, catalog: &Catalog) -> Result<(), Error> {
        each!(self, c => c.record(catalog).await)
    }

    /// Closes the connection politely.
    pub async fn close(self) {
        each!(self, c => c.close().await)
    }
}

/// Line and column (1-based) of the character at 1-based `pos` in `text`.
pub(crate) fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let mut line = 1;
    let mut col = 1;
    for (i, ch) in text.chars().enumerate() {
        if i + 1 >= pos {
            break;
        }
        if ch == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
}

/// Milliseconds since `start`, as stored in the history.
pub(crate) fn ms_since(start: std::time::Instant) -> i64 {
    i64::try_from(start.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// An identifier quoted with `q` (doubling it inside).
pub(crate) fn quote_ident(name: &str, q: char) -> String {
    let doubled = format!("{q}{q}");
    format!("{q}{}{q}", name.replace(q, &doubled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_map_to_lines() {
        assert_eq!(line_col("ab\ncd", 1), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 1));
        assert_eq!(line_col("ab\ncd", 5), (2, 2));
        assert_eq!(quote_ident("a\"b", '"'), "\"a\"\"b\"");
    }
}
