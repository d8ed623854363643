//! The cgroup filesystems as gantry finds them: where each hierarchy is mounted, which group gantry is in, and gantry's own group in each (made, swept, removed).

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Mount {
    /// Where it is mounted (`/sys/fs/cgroup/memory`).
    pub(super) point: PathBuf,
    /// The group of the hierarchy that is the mount's root (`/` unless bind-mounted).
    pub(super) root: String,
    /// cgroup2, else v1.
    pub(super) v2: bool,
    /// v1: the controllers bound to it (`memory`, `cpu`, `cpuacct`, …).
    pub(super) controllers: Vec<String>,
}

/// The cgroup mounts listed in `/proc/self/mountinfo` (proc(5): fields 4 and 5 are the
/// mount's root and mount point; after ` - ` come the type, the source and the super
/// options, which name a v1 hierarchy's controllers).
pub(super) fn parse_mounts(mountinfo: &str) -> Vec<Mount> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split(' ').collect();
        let tail: Vec<&str> = right.split(' ').collect();
        if fields.len() < 5 || tail.len() < 3 {
            continue;
        }
        let v2 = match tail[0] {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        let controllers = if v2 {
            Vec::new()
        } else {
            tail[2]
                .split(',')
                .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains('='))
                .map(str::to_string)
                .collect()
        };
        out.push(Mount {
            point: PathBuf::from(unescape(fields[4])),
            root: unescape(fields[3]),
            v2,
            controllers,
        });
    }
    out
}

/// mountinfo writes space, tab, newline and backslash as `\040`-style octal escapes.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// gantry's group in each hierarchy, from `/proc/self/cgroup` (cgroups(7)):
/// `(controllers, path)`, where the controllers are empty for the v2 line `0::/path`.
pub(super) fn parse_own(cgroup: &str) -> Vec<(Vec<String>, String)> {
    cgroup
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_id, list, path) = (parts.next()?, parts.next()?, parts.next()?);
            let controllers = list
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            Some((controllers, path.to_string()))
        })
        .collect()
}

/// The directory of gantry's own group in `mount`, when /proc/self/cgroup names one that
/// lies under the mount's root.
pub(super) fn own_dir(mount: &Mount, own: &[(Vec<String>, String)]) -> Option<PathBuf> {
    let path = own.iter().find_map(|(controllers, path)| {
        let matches = if mount.v2 {
            controllers.is_empty()
        } else {
            mount.controllers.iter().any(|c| controllers.contains(c))
        };
        matches.then_some(path.as_str())
    })?;
    let root = mount.root.trim_end_matches('/');
    let rel = path.strip_prefix(root)?;
    if !(rel.is_empty() || rel.starts_with('/')) {
        return None;
    }
    Some(mount.point.join(rel.trim_start_matches('/')))
}

/// The name of gantry's own group: its pid as the host's /proc sees it (inside its PID
/// namespace gantry is pid 1, like every other instance).
pub(super) fn own_group_name() -> String {
    let pid = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.parse::<u32>().ok()))
        .unwrap_or_else(std::process::id);
    format!("{OWN_PREFIX}{pid}")
}

/// gantry's groups are called `gantry-<pid>`.
const OWN_PREFIX: &str = "gantry-";

/// Removes the groups a gantry that is gone left behind in `parent` (killed with SIGKILL,
/// it could not remove them): `gantry-<pid>` with no such live process (a zombie counts as
/// gone: a killed gantry waits for a reaper that may be slow), or with our own name.
/// Groups that still hold processes stay (rmdir refuses them).
pub(super) fn sweep_stale(parent: &Path, own_name: &str) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(OWN_PREFIX) else {
            continue;
        };
        let gone = pid
            .parse::<u32>()
            .is_ok_and(|p| name == own_name || !alive(p));
        if gone && e.path().is_dir() {
            remove_tree(&e.path());
        }
    }
}

/// Whether host pid `pid` is a live process (not gone, not a zombie waiting to be reaped).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
    })
}

/// rmdir of `dir`'s child groups, then of `dir`; true when `dir` is gone.
pub(super) fn remove_tree(dir: &Path) -> bool {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                let _ = std::fs::remove_dir(e.path());
            }
        }
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => true,
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// Writes `value` to a cgroup control file in one write (as the kernel expects).
pub(super) fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|e| format!("writing `{value}` to {}: {e}", path.display()))
}

/// Makes a group directory; one that exists already is reused.
pub(super) fn mkdir(dir: &Path) -> Result<(), String> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("creating {}: {e}", dir.display())),
    }
}

/// The value of `key` in a flat-keyed file such as `memory.events` or v1's
/// `memory.oom_control` (`oom_kill 2`).
pub(super) fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// The pids in a group's `cgroup.procs`, as gantry's PID namespace numbers them (the
/// kernel lists processes outside it as 0, which are left out).
pub(super) fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
        .filter(|&p| p > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's layout: v1 controllers, and a cgroup2 tree without controllers.
    const MOUNTINFO: &str = "\
25 30 0:23 / /sys rw,nosuid - sysfs sysfs rw
31 25 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
35 31 0:31 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
36 31 0:32 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
37 31 0:33 /docker/abc /mnt/my\\040cg rw - cgroup2 cgroup2 rw,nsdelegate
";

    #[test]
    fn mounts_name_their_hierarchy_and_controllers() {
        let m = parse_mounts(MOUNTINFO);
        let names: Vec<(&str, bool, Vec<&str>)> = m
            .iter()
            .map(|m| {
                (
                    m.point.to_str().unwrap(),
                    m.v2,
                    m.controllers.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("/sys/fs/cgroup/cpu", false, vec!["cpu"]),
                ("/sys/fs/cgroup/cpu,cpuacct", false, vec!["cpu", "cpuacct"]),
                ("/sys/fs/cgroup/memory", false, vec!["memory"]),
                ("/sys/fs/cgroup/systemd", false, vec![]),
                ("/sys/fs/cgroup/unified", true, vec![]),
                ("/mnt/my cg", true, vec![]),
            ]
        );
        assert_eq!(m[5].root, "/docker/abc");
    }

    #[test]
    fn own_groups_map_to_directories_under_their_mount() {
        let own = parse_own("4:memory:/process_api/6c67\n2:cpu,cpuacct:/\n0::/user.slice/x\n");
        let m = parse_mounts(MOUNTINFO);
        assert_eq!(
            own_dir(&m[2], &own),
            Some(PathBuf::from("/sys/fs/cgroup/memory/process_api/6c67"))
        );
        assert_eq!(
            own_dir(&m[0], &own),
            Some(PathBuf::from("/sys/fs/cgroup/cpu/"))
        );
        assert_eq!(
            own_dir(&m[4], &own),
            Some(PathBuf::from("/sys/fs/cgroup/unified/user.slice/x"))
        );
        // A bind mount of another part of the tree does not hold gantry's group.
        assert_eq!(own_dir(&m[5], &own), None);
        let inside = parse_own("0::/docker/abc/sub\n");
        assert_eq!(
            own_dir(&m[5], &inside),
            Some(PathBuf::from("/mnt/my cg/sub"))
        );
        let sibling = parse_own("0::/docker/abcdef\n");
        assert_eq!(own_dir(&m[5], &sibling), None);
    }

    #[test]
    fn keyed_files_give_their_counters() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed(v1, "oom_kill"), Some(3));
        let v2 = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed(v2, "oom_kill"), Some(1));
        assert_eq!(keyed(v2, "missing"), None);
    }
}
