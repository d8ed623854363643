//! The state dir as a private place: created 0700, refused when someone else can write it, files opened 0600 without following links, and one instance lock.
//!
//! The state dir holds the API token (full control of the stack), service output and the
//! state store. When it sits where other users can write (e.g. under /tmp), a planted
//! symlink could make gantry write the token into a file they read, or append service
//! output to a file they want to damage. So:
//!
//! - [`prepare`] creates it mode 0700 and refuses one that is not a directory we own or that
//!   group or others may write, saying what to do;
//! - [`open_private`] opens every file in it with `O_NOFOLLOW`, created mode 0600;
//! - [`InstanceLock`] is an exclusive `flock` on `instance.lock`: a second `gantry up` on the
//!   same state dir learns the pid and API address of the one running instead of starting
//!   the stack twice.

use crate::StateDir;
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::Path;

/// Creates the state dir (and its logs dir) private to this user, or says why it cannot be
/// used and what to do.
pub fn prepare(dir: &StateDir) -> Result<(), String> {
    for path in [dir.root().to_path_buf(), dir.logs_dir()] {
        match std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&path)
        {
            Ok(()) => {}
            Err(e) => {
                return Err(format!(
                    "cannot create the state dir {}: {e}\n  hint: set [settings] state_dir to a directory this user can create, or create it with `mkdir -m 700`",
                    path.display()
                ));
            }
        }
        check_private(&path)?;
    }
    Ok(())
}

/// A directory we own that nobody else may write, and not a symlink.
fn check_private(path: &Path) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| format!("cannot inspect the state dir {}: {e}", path.display()))?;
    if meta.file_type().is_symlink() {
        return Err(format!(
            "the state dir {} is a symbolic link; gantry writes its API token there and refuses to follow links\n  hint: point [settings] state_dir at the real directory",
            path.display()
        ));
    }
    if !meta.is_dir() {
        return Err(format!(
            "the state dir {} is not a directory\n  hint: move the file away or set [settings] state_dir to another path",
            path.display()
        ));
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(format!(
            "the state dir {} belongs to uid {}, not to this user (uid {me}); its owner could read the API token and plant links\n  hint: use a state_dir this user owns, or `chown` it",
            path.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "the state dir {} is writable by group or others (mode {:o}); they could replace the API token or plant links\n  hint: `chmod go-w {}` (gantry creates it 0700)",
            path.display(),
            meta.mode() & 0o7777,
            path.display()
        ));
    }
    Ok(())
}

/// Opens `path` for writing without following a symlink in its last component; a new file
/// is created mode 0600. `append` appends, else the file is truncated.
pub fn open_private(path: &Path, append: bool) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits());
    if append {
        opts.append(true);
    } else {
        opts.truncate(true);
    }
    opts.open(path)
}

/// The instance lock of a state dir: held by the one `gantry up` that runs the stack.
#[derive(Debug)]
pub struct InstanceLock {
    file: File,
}

/// Another instance holds the lock: what it wrote about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub pid: Option<u32>,
    pub api: Option<String>,
}

impl std::fmt::Display for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("already running:")?;
        match self.pid {
            Some(pid) => write!(f, " gantry pid {pid}")?,
            None => f.write_str(" another gantry")?,
        }
        match &self.api {
            Some(api) => write!(f, ", API {api}"),
            None => Ok(()),
        }
    }
}

/// What went wrong taking the lock.
#[derive(Debug)]
pub enum LockError {
    Running(Running),
    Io(String),
}

impl InstanceLock {
    /// Takes the lock of `dir` (which [`prepare`] made), or says who holds it.
    pub fn acquire(dir: &StateDir) -> Result<InstanceLock, LockError> {
        let path = dir.instance_lock();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(&path)
            .map_err(|e| LockError::Io(format!("cannot open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(LockError::Running(parse(&text)));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(LockError::Io(format!(
                    "cannot lock {}: {e}",
                    path.display()
                )));
            }
        }
        let mut lock = InstanceLock { file };
        lock.write(host_pid(), None);
        Ok(lock)
    }

    /// Who holds the lock of `dir` right now, if anyone (without taking it).
    pub fn holder(dir: &StateDir) -> Option<Running> {
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(dir.instance_lock())
            .ok()?;
        match file.try_lock_shared() {
            Ok(()) => None,
            Err(_) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                Some(parse(&text))
            }
        }
    }

    /// Records the API address the instance bound, for a second `gantry up` to name.
    pub fn set_api(&mut self, api: &str) {
        self.write(host_pid(), Some(api));
    }

    /// The same as [`InstanceLock::set_api`], as work for another thread (a truncate can
    /// wait on a busy file-system journal; the event loop must not).
    pub fn set_api_later(&self, api: &str) -> impl FnOnce() + Send + 'static {
        let file = self.file.try_clone();
        let api = api.to_string();
        move || {
            if let Ok(file) = file {
                InstanceLock { file }.write(host_pid(), Some(&api));
            }
        }
    }

    fn write(&mut self, pid: u32, api: Option<&str>) {
        let text = match api {
            Some(api) => format!("pid={pid}\napi={api}\n"),
            None => format!("pid={pid}\n"),
        };
        let _ = self.file.set_len(0);
        let _ = self.file.rewind();
        let _ = self.file.write_all(text.as_bytes());
    }
}

/// This process's pid as the host sees it: inside gantry's PID namespace `getpid()` is 1,
/// but /proc (mounted before the namespace) names the host pid.
fn host_pid() -> u32 {
    std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str()?.parse().ok())
        .unwrap_or_else(std::process::id)
}

fn parse(text: &str) -> Running {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    Running {
        pid: field("pid").and_then(|p| p.parse().ok()),
        api: field("api").map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("gantry-secure-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn prepare_creates_a_private_dir_and_refuses_shared_or_linked_ones() {
        let root = temp("prepare");
        let dir = StateDir::new(root.join("state"));
        prepare(&dir).unwrap();
        let mode = std::fs::metadata(dir.root()).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(dir.root(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = prepare(&dir).unwrap_err();
        assert!(
            err.contains("writable by group or others") && err.contains("chmod go-w"),
            "{err}"
        );
        let link = StateDir::new(root.join("link"));
        std::os::unix::fs::symlink(root.join("state"), link.root()).unwrap();
        let err = prepare(&link).unwrap_err();
        assert!(err.contains("symbolic link"), "{err}");
        let file = StateDir::new(root.join("file"));
        std::fs::write(file.root(), "x").unwrap();
        assert!(prepare(&file).unwrap_err().contains("cannot create"));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn private_files_are_0600_and_never_follow_a_planted_link() {
        let root = temp("open");
        let dir = StateDir::new(&root);
        prepare(&dir).unwrap();
        let token = dir.api_token();
        open_private(&token, false)
            .unwrap()
            .write_all(b"t")
            .unwrap();
        assert_eq!(std::fs::metadata(&token).unwrap().mode() & 0o777, 0o600);
        let victim = root.join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let planted = root.join("api.addr");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        assert!(open_private(&planted, false).is_err(), "followed a symlink");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_second_instance_learns_who_holds_the_lock() {
        let root = temp("lock");
        let dir = StateDir::new(&root);
        prepare(&dir).unwrap();
        assert_eq!(InstanceLock::holder(&dir), None);
        let mut first = InstanceLock::acquire(&dir).unwrap();
        first.set_api("127.0.0.1:7070");
        let running = Running {
            pid: Some(std::process::id()),
            api: Some("127.0.0.1:7070".into()),
        };
        match InstanceLock::acquire(&dir) {
            Err(LockError::Running(r)) => assert_eq!(r, running),
            other => panic!("expected the lock to be held: {other:?}"),
        }
        assert_eq!(InstanceLock::holder(&dir), Some(running.clone()));
        assert_eq!(
            running.to_string(),
            format!(
                "already running: gantry pid {}, API 127.0.0.1:7070",
                std::process::id()
            )
        );
        drop(first);
        assert!(InstanceLock::acquire(&dir).is_ok(), "released when dropped");
        let _ = std::fs::remove_dir_all(&root);
    }
}
