//! Hot reload of `[settings] flags_file`: an inotify watch on the file's parent directory (so a
//! temp file renamed over it and a Kubernetes ConfigMap `..data` symlink swap are seen), a short
//! debounce, the read and parse on the blocking pool, and a message to the driver only when the
//! content changed. A file that does not parse is reported only once it stayed so through a quiet
//! period: an in-place rewrite caught half-written is read again instead.

use super::Msg;
use gantry_flags::FlagSet;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::ffi::{OsStr, OsString};
use std::hash::{Hash, Hasher};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// From the first change seen to the read: a burst of writes is read once.
pub(super) const DEBOUNCE: Duration = Duration::from_millis(20);
/// How long a file must stay unchanged before a failed read is taken as the file's content.
pub(super) const QUIET: Duration = Duration::from_millis(100);
/// The largest flags file gantry reads (as `gantry check`).
pub(super) const FLAGS_FILE_CAP: u64 = 16 * 1024 * 1024;
/// How often a lost watch (the directory itself removed or replaced) is set up again.
const REWATCH: Duration = Duration::from_secs(1);

/// One read of the flags file, as the driver gets it.
#[derive(Debug)]
pub(super) struct FileRead {
    /// The file as the user named it (for messages).
    pub(super) path: PathBuf,
    /// The parsed set, or what is wrong (file, JSON path, what to do).
    pub(super) outcome: Result<FlagSet, String>,
}

/// What to do after a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decision {
    /// The content is the one last handed over: nothing to do.
    Same,
    /// Hand this read to the driver.
    Publish,
    /// Invalid, but the file changed too recently: read it again at [`Debounce::due`].
    Wait,
}

/// When to read the file and whether a read is news: the pure part of the watcher.
#[derive(Debug)]
pub(super) struct Debounce {
    /// Hash of the content last handed over (at start, the content the driver loaded).
    sent: u64,
    last_change: Option<Instant>,
    due: Option<Instant>,
}

impl Debounce {
    pub(super) fn new(loaded: u64) -> Debounce {
        Debounce {
            sent: loaded,
            last_change: None,
            due: None,
        }
    }

    /// Something changed in the directory at `now`: read within [`DEBOUNCE`] of the first change
    /// of a burst (later changes do not push the read back, so a busy directory is still read).
    pub(super) fn changed(&mut self, now: Instant) {
        self.last_change = Some(now);
        let at = now + DEBOUNCE;
        self.due = Some(self.due.map_or(at, |d| d.min(at)));
    }

    /// When the next read is due.
    pub(super) fn due(&self) -> Option<Instant> {
        self.due
    }

    /// A read starts now.
    pub(super) fn reading(&mut self) {
        self.due = None;
    }

    /// A read at `now` found content hashing to `hash`, valid or not.
    pub(super) fn read(&mut self, now: Instant, hash: u64, valid: bool) -> Decision {
        if hash == self.sent {
            return Decision::Same;
        }
        let quiet_at = self.last_change.map_or(now, |t| t + QUIET);
        if valid || now >= quiet_at {
            self.sent = hash;
            return Decision::Publish;
        }
        self.due = Some(self.due.map_or(quiet_at, |d| d.min(quiet_at)));
        Decision::Wait
    }
}

/// Whether a change to `name` in the watched directory may change the flags file `file`:
/// the file itself, the first component of its symlink target when that is relative (a
/// ConfigMap's `..data`), any `..`-prefixed name (a ConfigMap's timestamped directories), and
/// events about the directory itself (no name) or a lost queue.
pub(super) fn relevant(name: Option<&OsStr>, file: &OsStr, link_head: Option<&OsStr>) -> bool {
    let Some(name) = name else { return true };
    name == file || link_head == Some(name) || name.as_encoded_bytes().starts_with(b"..")
}

/// A hash of what a read saw (the bytes, or the error), to tell a change from the same content.
pub(super) fn content_hash(bytes: &[u8]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// The first component of `path`'s symlink target when it is a relative link.
fn link_head(path: &Path) -> Option<OsString> {
    let target = std::fs::read_link(path).ok()?;
    if target.is_absolute() {
        return None;
    }
    target.components().find_map(|c| match c {
        std::path::Component::Normal(n) => Some(n.to_os_string()),
        _ => None,
    })
}

/// Reads and parses the flags file (blocking): the hash of what was read, and the outcome.
pub(super) fn read_file(path: &Path, origin: &str) -> (u64, Result<FlagSet, String>) {
    let text = match gantry_state::bounded::read_capped_text(path, FLAGS_FILE_CAP) {
        Ok(text) => text,
        Err(e) => {
            let message = format!(
                "{e}\n  hint: put a valid flags file back (flagd's JSON format); the last valid set is served meanwhile"
            );
            return (content_hash(format!("error: {e}").as_bytes()), Err(message));
        }
    };
    let hash = content_hash(text.as_bytes());
    let outcome = FlagSet::parse_flagd(&text, origin).map_err(|problems| {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        format!("{}:\n  {}", path.display(), list.join("\n  "))
    });
    (hash, outcome)
}

/// The inotify descriptor as tokio's `AsyncFd` wants it.
struct Fd(Inotify);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

#[allow(unsafe_code)]
fn register(fd: Fd) -> std::io::Result<AsyncFd<Fd>> {
    // SAFETY: `Fd` owns the inotify descriptor (an `OwnedFd` inside nix's `Inotify`), which stays
    // open and unchanged until the `AsyncFd` (its only owner) is dropped, and `as_raw_fd` always
    // returns that same descriptor.
    unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(|e| std::io::Error::other(e.to_string()))
}

fn mask() -> AddWatchFlags {
    AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_ONLYDIR
}

/// The directory to watch for `path` (its parent; `.` for a bare name).
fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Starts watching `path` (named `origin` in problems); `loaded` is the hash of the content the
/// driver loaded at start. Reads go to `tx` as [`Msg::FlagsFile`]. Must run inside the runtime.
pub(super) fn start(
    path: PathBuf,
    origin: String,
    loaded: u64,
    tx: mpsc::UnboundedSender<Msg>,
) -> Result<(), String> {
    let dir = parent_of(&path);
    let file = path
        .file_name()
        .map(OsStr::to_os_string)
        .unwrap_or_default();
    let cannot = |e: nix::Error| {
        format!(
            "flags: cannot watch {} for changes ({e}); the flags file is not reloaded while gantry runs\n  hint: raise fs.inotify.max_user_watches / max_user_instances, or restart gantry after editing the file",
            dir.display()
        )
    };
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).map_err(&cannot)?;
    let mut wd = Some(inotify.add_watch(&dir, mask()).map_err(&cannot)?);
    let fd = register(Fd(inotify)).map_err(|e| {
        format!(
            "flags: cannot watch {} for changes ({e}); the flags file is not reloaded while gantry runs",
            dir.display()
        )
    })?;
    let mut head = link_head(&path);
    tokio::spawn(async move {
        let mut debounce = Debounce::new(loaded);
        // A change between the driver's load and the watch being set up: read once (the same
        // content is no news).
        debounce.changed(Instant::now());
        let mut rewatch = tokio::time::interval(REWATCH);
        rewatch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let due = debounce.due();
            tokio::select! {
                ready = fd.readable() => {
                    let Ok(mut guard) = ready else { return };
                    let events = match guard.try_io(|inner| {
                        inner.get_ref().0.read_events().map_err(std::io::Error::from)
                    }) {
                        Ok(Ok(events)) => events,
                        Ok(Err(_)) | Err(_) => continue,
                    };
                    let now = Instant::now();
                    for ev in events {
                        if ev.mask.contains(AddWatchFlags::IN_IGNORED) && Some(ev.wd) == wd {
                            wd = None;
                        }
                        if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW)
                            || relevant(ev.name.as_deref(), &file, head.as_deref())
                        {
                            debounce.changed(now);
                        }
                    }
                }
                _ = gantry_host::sleep_until_opt(due), if due.is_some() => {
                    debounce.reading();
                    let (p, o) = (path.clone(), origin.clone());
                    let Ok((hash, outcome, new_head)) = tokio::task::spawn_blocking(move || {
                        let (hash, outcome) = read_file(&p, &o);
                        (hash, outcome, link_head(&p))
                    })
                    .await else { return };
                    head = new_head;
                    if debounce.read(Instant::now(), hash, outcome.is_ok()) == Decision::Publish
                        && tx.send(Msg::FlagsFile(Box::new(FileRead { path: path.clone(), outcome }))).is_err()
                    {
                        return;
                    }
                }
                _ = rewatch.tick(), if wd.is_none() => {
                    // The directory went away (or was replaced): watch it again once it is back,
                    // and read the file, which changed with it.
                    if let Ok(new) = fd.get_ref().0.add_watch(&dir, mask()) {
                        wd = Some(new);
                        debounce.changed(Instant::now());
                    }
                }
            }
            if tx.is_closed() {
                return;
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_change_is_published_once() {
        let t0 = Instant::now();
        let mut d = Debounce::new(1);
        assert_eq!(d.due(), None);
        d.changed(t0);
        d.changed(t0 + Duration::from_millis(5));
        assert_eq!(
            d.due(),
            Some(t0 + DEBOUNCE),
            "the first change of a burst sets the read"
        );
        d.reading();
        assert_eq!(d.read(t0 + DEBOUNCE, 2, true), Decision::Publish);
        assert_eq!(d.due(), None);
        d.changed(t0 + Duration::from_millis(50));
        d.reading();
        assert_eq!(
            d.read(t0 + Duration::from_millis(70), 2, true),
            Decision::Same,
            "the same content again is no news"
        );
    }

    #[test]
    fn an_invalid_read_waits_for_quiet_before_it_counts() {
        let t0 = Instant::now();
        let mut d = Debounce::new(1);
        d.changed(t0);
        d.reading();
        // Half-written: invalid, and the file changed 20 ms ago.
        assert_eq!(d.read(t0 + DEBOUNCE, 7, false), Decision::Wait);
        assert_eq!(d.due(), Some(t0 + QUIET), "read again once quiet");
        // The writer finished in the meantime: the next read is valid.
        d.changed(t0 + Duration::from_millis(30));
        assert_eq!(d.due(), Some(t0 + Duration::from_millis(30) + DEBOUNCE));
        d.reading();
        assert_eq!(
            d.read(t0 + Duration::from_millis(50), 3, true),
            Decision::Publish
        );
    }

    #[test]
    fn an_invalid_file_that_stays_invalid_is_published_then_not_again() {
        let t0 = Instant::now();
        let mut d = Debounce::new(1);
        d.changed(t0);
        d.reading();
        assert_eq!(d.read(t0 + DEBOUNCE, 9, false), Decision::Wait);
        d.reading();
        assert_eq!(d.read(t0 + QUIET, 9, false), Decision::Publish);
        d.changed(t0 + Duration::from_millis(200));
        d.reading();
        assert_eq!(
            d.read(t0 + Duration::from_millis(400), 9, false),
            Decision::Same
        );
        // Back to the content loaded at start: news again (the driver resolves the mission).
        assert_eq!(
            d.read(t0 + Duration::from_millis(400), 1, true),
            Decision::Publish
        );
    }

    #[test]
    fn a_later_change_pulls_the_read_forward_never_back() {
        let t0 = Instant::now();
        let mut d = Debounce::new(1);
        d.changed(t0);
        d.reading();
        assert_eq!(d.read(t0 + DEBOUNCE, 5, false), Decision::Wait);
        assert_eq!(d.due(), Some(t0 + QUIET));
        d.changed(t0 + QUIET - Duration::from_millis(1));
        assert_eq!(d.due(), Some(t0 + QUIET), "the earlier of the two");
    }

    #[test]
    fn relevant_names() {
        let file = OsStr::new("flags.json");
        assert!(relevant(Some(OsStr::new("flags.json")), file, None));
        assert!(relevant(None, file, None), "the directory itself");
        assert!(
            relevant(Some(OsStr::new("..data")), file, None),
            "a ConfigMap swap"
        );
        assert!(relevant(
            Some(OsStr::new("current")),
            file,
            Some(OsStr::new("current"))
        ));
        assert!(!relevant(Some(OsStr::new("other.log")), file, None));
        assert!(!relevant(Some(OsStr::new("flags.json.tmp")), file, None));
    }

    #[test]
    fn read_file_reports_path_and_problem() {
        let dir = std::env::temp_dir().join(format!("gantry-flags-watch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("flags.json");
        let (h_missing, missing) = read_file(&path, "flags.json");
        let err = missing.unwrap_err();
        assert!(err.contains("flags.json") && err.contains("hint"), "{err}");
        std::fs::write(&path, r#"{"flags": {"a": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "off"}}}"#).unwrap();
        let (h_bad, bad) = read_file(&path, "flags.json");
        let err = bad.unwrap_err();
        assert!(err.contains("flags.a"), "a JSON path: {err}");
        assert_ne!(h_missing, h_bad);
        std::fs::write(&path, r#"{"flags": {"a": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"}}}"#).unwrap();
        let (_, good) = read_file(&path, "flags.json");
        assert!(good.unwrap().get("a").is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
