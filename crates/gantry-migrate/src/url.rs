//! Database URLs: which backend, the URL as shown (password masked), the SQLite file path,
//! and scrubbing of the password from any text a client library returns.

use std::path::{Path, PathBuf};

use crate::Error;

/// The database behind a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `postgres://` or `postgresql://`.
    Postgres,
    /// `mysql://` or `mariadb://`.
    Mysql,
    /// `sqlite://PATH` (relative paths are taken from the base directory).
    Sqlite,
}

impl Backend {
    /// True when a failed migration is rolled back as a whole (DDL included).
    pub fn transactional_ddl(self) -> bool {
        !matches!(self, Backend::Mysql)
    }

    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "PostgreSQL",
            Backend::Mysql => "MySQL/MariaDB",
            Backend::Sqlite => "SQLite",
        }
    }
}

/// A parsed database URL. Its `Debug` shows only the masked URL.
#[derive(Clone)]
pub(crate) struct Target {
    pub backend: Backend,
    /// The URL handed to the client (`mariadb://` rewritten to `mysql://`).
    pub url: String,
    /// The URL with its password masked; the only form ever printed.
    pub shown: String,
    /// The database file (SQLite only).
    pub path: Option<PathBuf>,
    secrets: Vec<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("backend", &self.backend)
            .field("url", &self.shown)
            .finish_non_exhaustive()
    }
}

impl Target {
    pub fn parse(url: &str, base_dir: &Path) -> Result<Target, Error> {
        let url = url.trim();
        let lower = url.to_ascii_lowercase();
        let (backend, client_url) =
            if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
                (Backend::Postgres, url.to_string())
            } else if lower.starts_with("mysql://") {
                (Backend::Mysql, url.to_string())
            } else if lower.starts_with("mariadb://") {
                (
                    Backend::Mysql,
                    format!("mysql://{}", &url["mariadb://".len()..]),
                )
            } else if lower.starts_with("sqlite:") {
                (Backend::Sqlite, url.to_string())
            } else {
                return Err(Error::Config(format!(
                    "unsupported database URL {}: use postgres://…, mysql://… or sqlite://path",
                    redact_url(url)
                )));
            };
        let path = (backend == Backend::Sqlite).then(|| sqlite_path(url, base_dir));
        if let Some(p) = &path
            && p.as_os_str().is_empty()
        {
            return Err(Error::Config(
                "the sqlite:// URL has no file path (sqlite://data/app.db)".into(),
            ));
        }
        let shown = match &path {
            Some(p) => format!("sqlite://{}", p.display()),
            None => redact_url(url),
        };
        Ok(Target {
            backend,
            url: client_url,
            shown,
            path,
            secrets: secrets(url),
        })
    }

    /// `text` with the URL's password (raw and percent-decoded) replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            out = out.replace(s.as_str(), "***");
        }
        out
    }
}

/// The file of `sqlite://PATH`, `sqlite:PATH`; a query (`?mode=rwc`) is not part of it.
fn sqlite_path(url: &str, base_dir: &Path) -> PathBuf {
    let rest = &url["sqlite:".len()..];
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let rest = rest.split_once('?').map_or(rest, |(p, _)| p);
    if rest.is_empty() {
        return PathBuf::new();
    }
    base_dir.join(rest)
}

pub use gantry_spec::url::redact_url;
use gantry_spec::url::url_secrets as secrets;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_the_password_only() {
        assert_eq!(
            redact_url("postgres://app:s3cr@t@db:5432/app"),
            "postgres://app:***@db:5432/app"
        );
        assert_eq!(
            redact_url("mysql://root@127.0.0.1:3306/x"),
            "mysql://root@127.0.0.1:3306/x"
        );
        assert_eq!(
            redact_url("postgres://db/app?user=a&password=zz&sslmode=disable"),
            "postgres://db/app?user=a&password=***&sslmode=disable"
        );
    }

    #[test]
    fn scrubs_raw_and_decoded_passwords() {
        let t = Target::parse("postgres://u:p%40ssword@h/db", Path::new("/")).unwrap();
        assert_eq!(t.scrub("bad p@ssword and p%40ssword"), "bad *** and ***");
        assert_eq!(t.shown, "postgres://u:***@h/db");
        assert!(!format!("{t:?}").contains("p@ssword") && !format!("{t:?}").contains("%40"));
    }

    #[test]
    fn sqlite_paths_are_relative_to_the_base() {
        let t = Target::parse("sqlite://data/app.db?mode=rwc", Path::new("/srv")).unwrap();
        assert_eq!(t.path.unwrap(), Path::new("/srv/data/app.db"));
        let t = Target::parse("sqlite:///var/app.db", Path::new("/srv")).unwrap();
        assert_eq!(t.path.unwrap(), Path::new("/var/app.db"));
        assert_eq!(
            Target::parse("mariadb://r@h/d", Path::new("/"))
                .unwrap()
                .url,
            "mysql://r@h/d"
        );
        assert!(Target::parse("redis://h", Path::new("/")).is_err());
    }
}
