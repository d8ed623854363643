//! `StateDir`: the name of every file under the state dir, so that writers and readers in different crates cannot drift apart.

use std::path::{Path, PathBuf};

/// The state dir of one stack (`settings.state_dir`, `.gantry` by default) and the files in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// The state dir at `root` (nothing is created).
    pub fn new(root: impl Into<PathBuf>) -> StateDir {
        StateDir { root: root.into() }
    }

    /// `settings.state_dir` of the stack file `file`: relative to the file's directory, kept
    /// as short as the user would type it (`.gantry`, not `./.gantry`, for `gantry.toml`).
    pub fn for_stack(file: &Path, state_dir: &str) -> StateDir {
        match file.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(base) => StateDir::new(base.join(state_dir)),
            None => StateDir::new(state_dir),
        }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The SQLite state store.
    pub fn state_db(&self) -> PathBuf {
        self.root.join("state.db")
    }

    /// The API's bearer token (mode 0600), for the CLI's mutating calls.
    pub fn api_token(&self) -> PathBuf {
        self.root.join("api.token")
    }

    /// The read-only API token (OFREP, status readers), mode 0600 like the operator token.
    pub fn api_read_token(&self) -> PathBuf {
        self.root.join("api.read-token")
    }

    /// The address the running API actually bound (it wins over the configured one).
    pub fn api_addr(&self) -> PathBuf {
        self.root.join("api.addr")
    }

    /// What a detached `gantry up --detach` prints (its stdout and stderr).
    pub fn detach_log(&self) -> PathBuf {
        self.root.join("gantry.out")
    }

    /// `[cluster]`: a standby's view of the election (leader, term), while it waits; `gantry
    /// status` reads it, as a standby serves no API.
    pub fn cluster_standby(&self) -> PathBuf {
        self.root.join("cluster.json")
    }

    /// The lock the running instance holds (its pid and API address inside).
    pub fn instance_lock(&self) -> PathBuf {
        self.root.join("instance.lock")
    }

    /// The per-service log files' directory.
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// The log file of `service`. The name is not checked here; [`crate::logfmt::LogFile`]
    /// refuses names that would leave the directory.
    pub fn log_file(&self, service: &str) -> PathBuf {
        log_file_in(&self.logs_dir(), service)
    }
}

impl AsRef<Path> for StateDir {
    fn as_ref(&self) -> &Path {
        &self.root
    }
}

impl From<PathBuf> for StateDir {
    fn from(root: PathBuf) -> Self {
        StateDir::new(root)
    }
}

impl From<&Path> for StateDir {
    fn from(root: &Path) -> Self {
        StateDir::new(root)
    }
}

/// `<logs_dir>/<service>.log`.
pub(crate) fn log_file_in(logs_dir: &Path, service: &str) -> PathBuf {
    logs_dir.join(format!("{service}.log"))
}

/// The service a file name in the logs dir belongs to (`db.log` → `db`); None for other
/// files (rotated `db.log.1`, hidden files).
pub(crate) fn service_of_log_file(file_name: &str) -> Option<&str> {
    let stem = file_name.strip_suffix(".log")?;
    (!stem.is_empty() && !stem.starts_with('.')).then_some(stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_to_the_stack_file() {
        let d = |f: &str, s: &str| StateDir::for_stack(Path::new(f), s).root().to_path_buf();
        assert_eq!(d("gantry.toml", ".gantry"), PathBuf::from(".gantry"));
        assert_eq!(
            d("/srv/app/gantry.toml", ".gantry"),
            PathBuf::from("/srv/app/.gantry")
        );
        assert_eq!(
            d("/srv/gantry.toml", "/var/lib/g"),
            PathBuf::from("/var/lib/g")
        );
    }

    #[test]
    fn file_names() {
        let s = StateDir::new("/s");
        assert_eq!(s.state_db(), PathBuf::from("/s/state.db"));
        assert_eq!(s.api_token(), PathBuf::from("/s/api.token"));
        assert_eq!(s.api_addr(), PathBuf::from("/s/api.addr"));
        assert_eq!(s.detach_log(), PathBuf::from("/s/gantry.out"));
        assert_eq!(s.logs_dir(), PathBuf::from("/s/logs"));
        assert_eq!(s.log_file("db"), PathBuf::from("/s/logs/db.log"));
        let name = s.log_file("api");
        let name = name.file_name().unwrap().to_str().unwrap();
        assert_eq!(service_of_log_file(name), Some("api"));
        for other in ["api.log.1", ".log", ".hidden.log", "notes.txt"] {
            assert_eq!(service_of_log_file(other), None, "{other}");
        }
    }
}
