//! Quarantine's freeze of one service's process tree, with the best means this machine has: the service's own cgroup v2 group (`cgroup.freeze`), else a cgroup v2 group made for the quarantine, else a v1 freezer group made for it (`freezer.state`), else SIGSTOP of its process group. A group made for the quarantine receives the processes of the service's process group (what left it with setsid stays out; a service's own group has everything).

use super::Limiter;
use super::cgroupfs::{mkdir, own_dir, own_group_name, parse_mounts, parse_own, procs, write};
use std::path::{Path, PathBuf};

/// How a service was frozen, and so how it is thawed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frozen {
    /// `cgroup.freeze` of the service's own cgroup v2 group (its whole tree, forks included).
    CgroupV2(PathBuf),
    /// A group made for the quarantine (cgroup v2 when `v2`, else in the v1 freezer
    /// hierarchy): the processes of the service's process group were moved into it, then
    /// it was frozen (`cgroup.freeze` 1, `freezer.state` FROZEN).
    Moved {
        v2: bool,
        /// The quarantine group.
        group: PathBuf,
        /// gantry's own group in that hierarchy, where the processes go back at thaw.
        home: PathBuf,
    },
    /// SIGSTOP to the service's process group (SIGCONT thaws it).
    Sigstop(i32),
}

impl Frozen {
    /// What status and the answer say: `cgroup v2 freezer`, `cgroup v1 freezer`, `SIGSTOP`.
    pub fn method(&self) -> &'static str {
        match self {
            Frozen::CgroupV2(_) => "cgroup v2 freezer",
            Frozen::Moved { v2: true, .. } => "cgroup v2 freezer (quarantine group)",
            Frozen::Moved { v2: false, .. } => "cgroup v1 freezer",
            Frozen::Sigstop(_) => "SIGSTOP of its process group",
        }
    }

    /// Whether the kernel reports the freeze complete (`frozen 1` in `cgroup.events`,
    /// `FROZEN` in `freezer.state`; for SIGSTOP every process of the group in state `T`).
    pub fn is_complete(&self) -> bool {
        match self {
            Frozen::CgroupV2(dir) => std::fs::read_to_string(dir.join("cgroup.events"))
                .is_ok_and(|t| super::cgroupfs::keyed(&t, "frozen") == Some(1)),
            Frozen::Moved {
                v2: true, group, ..
            } => Frozen::CgroupV2(group.clone()).is_complete(),
            Frozen::Moved { group, .. } => std::fs::read_to_string(group.join("freezer.state"))
                .is_ok_and(|t| t.trim() == "FROZEN"),
            Frozen::Sigstop(pgid) => {
                let members = group_members(*pgid);
                !members.is_empty()
                    && members
                        .iter()
                        .all(|&(host, _)| proc_state(host) == Some('T'))
            }
        }
    }

    /// Thaws what [`freeze`] froze; a v1 quarantine group is emptied back into gantry's
    /// group and removed.
    pub fn thaw(&self) -> Result<(), String> {
        match self {
            Frozen::CgroupV2(dir) => write(&dir.join("cgroup.freeze"), "0"),
            Frozen::Moved { v2, group, home } => {
                if *v2 {
                    write(&group.join("cgroup.freeze"), "0")?;
                } else {
                    write(&group.join("freezer.state"), "THAWED")?;
                }
                for pid in procs(group) {
                    // A process that exited meanwhile cannot be moved; nothing is lost.
                    let _ = write(&home.join("cgroup.procs"), &pid.to_string());
                }
                let _ = std::fs::remove_dir(group);
                // gantry's `gantry-<pid>` base goes too once empty (it may hold limit groups).
                if let Some(base) = group.parent() {
                    let _ = std::fs::remove_dir(base);
                }
                Ok(())
            }
            Frozen::Sigstop(pgid) => signal_group(*pgid, nix::sys::signal::Signal::SIGCONT),
        }
    }
}

impl Limiter {
    /// Freezes unit `i` (service `name`, process group `pgid`) for a quarantine and keeps how,
    /// for [`Limiter::thaw_unit`]. Returns the means used (`cgroup v2 freezer`, ...).
    pub fn freeze_unit(&mut self, i: usize, name: &str, pgid: i32) -> Result<&'static str, String> {
        if let Some(f) = self.frozen.get(&i) {
            return Ok(f.method());
        }
        let frozen = freeze(self, i, name, pgid)?;
        let method = frozen.method();
        self.frozen.insert(i, frozen);
        Ok(method)
    }

    /// Thaws unit `i` if it is frozen (a release, or before a signal: a process frozen by a
    /// v1 freezer would not even die of SIGKILL). True when it was frozen.
    pub fn thaw_unit(&mut self, i: usize) -> Result<bool, String> {
        match self.frozen.remove(&i) {
            Some(f) => f.thaw().map(|()| true),
            None => Ok(false),
        }
    }

    /// How unit `i` is frozen, if it is.
    pub fn frozen(&self, i: usize) -> Option<&Frozen> {
        self.frozen.get(&i)
    }

    /// The cgroup v2 group of unit `i`, when its limits made one (the only per-service
    /// groups gantry keeps).
    pub fn v2_group(&self, i: usize) -> Option<PathBuf> {
        let u = self.units.get(i)?;
        if !u.made {
            return None;
        }
        self.dirs(i)
            .into_iter()
            .find(|(tree, _)| self.trees[*tree].v2)
            .map(|(_, dir)| dir)
    }
}

/// Freezes the process tree of service `name` (unit `i`, process group `pgid`): its own
/// cgroup v2 group when it has one, else a v1 freezer group when this machine mounts the
/// v1 freezer and gantry may make a group in it, else SIGSTOP of the process group. The
/// freeze may complete a moment later: [`Frozen::is_complete`].
pub fn freeze(limiter: &Limiter, i: usize, name: &str, pgid: i32) -> Result<Frozen, String> {
    if pgid <= 1 {
        return Err(format!("cannot freeze {name}: it has no process group"));
    }
    if let Some(dir) = limiter.v2_group(i)
        && write(&dir.join("cgroup.freeze"), "1").is_ok()
    {
        return Ok(Frozen::CgroupV2(dir));
    }
    for v2 in [true, false] {
        if let Some(home) = freezer_home(v2)
            && let Ok(frozen) = freeze_moved(&home, v2, name, pgid)
        {
            return Ok(frozen);
        }
    }
    signal_group(pgid, nix::sys::signal::Signal::SIGSTOP)?;
    Ok(Frozen::Sigstop(pgid))
}

/// gantry's own group in the mounted cgroup2 hierarchy (`v2`; freezing needs no
/// controller there) or in a v1 freezer hierarchy, when there is one.
fn freezer_home(v2: bool) -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let own = parse_own(&std::fs::read_to_string("/proc/self/cgroup").ok()?);
    parse_mounts(&mountinfo)
        .iter()
        .filter(|m| {
            if v2 {
                m.v2
            } else {
                !m.v2 && m.controllers.iter().any(|c| c == "freezer")
            }
        })
        .find_map(|m| own_dir(m, &own))
}

/// Moves the processes of process group `pgid` into `<home>/gantry-<pid>/<name>.quarantine`
/// and freezes that group.
pub(crate) fn freeze_moved(home: &Path, v2: bool, name: &str, pgid: i32) -> Result<Frozen, String> {
    let base = home.join(own_group_name());
    mkdir(&base)?;
    let group = base.join(format!("{name}.quarantine"));
    mkdir(&group)?;
    let members = group_members(pgid);
    if members.is_empty() {
        let _ = std::fs::remove_dir(&group);
        return Err(format!("process group {pgid} has no process"));
    }
    for (_, pid) in members {
        write(&group.join("cgroup.procs"), &pid.to_string())?;
    }
    let frozen = Frozen::Moved {
        v2,
        group,
        home: home.to_path_buf(),
    };
    let froze = if v2 {
        write(&frozen_group(&frozen).join("cgroup.freeze"), "1")
    } else {
        write(&frozen_group(&frozen).join("freezer.state"), "FROZEN")
    };
    if let Err(e) = froze {
        // Put the processes back rather than leave them in a group that does nothing.
        let _ = frozen.thaw();
        return Err(e);
    }
    Ok(frozen)
}

fn frozen_group(frozen: &Frozen) -> &Path {
    match frozen {
        Frozen::CgroupV2(dir) | Frozen::Moved { group: dir, .. } => dir,
        Frozen::Sigstop(_) => Path::new(""),
    }
}

fn signal_group(pgid: i32, signal: nix::sys::signal::Signal) -> Result<(), String> {
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), signal)
        .map_err(|e| format!("cannot send {signal} to process group {pgid}: {e}"))
}

/// The processes whose process group is `pgid` as (host pid, pid in gantry's PID namespace).
/// gantry may be the init of its own PID namespace while /proc shows the host's pids
/// (nsinit.rs), so /proc is read through each process's `NSpid` / `NSpgid` lines (the last
/// value is the innermost namespace's), among the processes of gantry's own namespace only:
/// `cgroup.procs` and signals take the namespace's pids, /proc/PID/stat the host's.
pub(crate) fn group_members(pgid: i32) -> Vec<(i32, i32)> {
    let ours = std::fs::read_link("/proc/self/ns/pid").ok();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&host| std::fs::read_link(format!("/proc/{host}/ns/pid")).ok() == ours)
        .filter_map(|host| {
            let status = std::fs::read_to_string(format!("/proc/{host}/status")).ok()?;
            let innermost = |key: &str| -> Option<i32> {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(key))?
                    .split_whitespace()
                    .last()?
                    .parse()
                    .ok()
            };
            (innermost("NSpgid:")? == pgid).then_some((host, innermost("NSpid:")?))
        })
        .collect()
}

/// The state letter of /proc/PID/stat (`R`, `S`, `T`, ...) of host pid `pid`.
pub fn proc_state(pid: i32) -> Option<char> {
    stat_fields(pid)
}

fn stat_fields(pid: i32) -> Option<char> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields follow the last `)`.
    let rest = &text[text.rfind(')')? + 1..];
    rest.split_whitespace().next()?.chars().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt as _;
    use std::time::{Duration, Instant};

    fn sleeper() -> std::process::Child {
        std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap()
    }

    fn wait_until(mut f: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if f() {
                return true;
            }
            // Polled with a deadline; parked briefly so the poll does not spin a core.
            std::thread::park_timeout(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn sigstop_freezes_the_process_group_and_sigcont_thaws_it() {
        let mut child = sleeper();
        let pid = child.id() as i32;
        let frozen = Frozen::Sigstop(pid);
        signal_group(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
        assert!(wait_until(|| frozen.is_complete()));
        assert_eq!(proc_state(pid), Some('T'));
        frozen.thaw().unwrap();
        assert!(wait_until(|| proc_state(pid) == Some('S')));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn a_quarantine_group_freezes_the_process_group_where_this_machine_has_one() {
        for v2 in [true, false] {
            let Some(home) = freezer_home(v2) else {
                eprintln!(
                    "no freezer hierarchy (v2: {v2}) here; the SIGSTOP test covers the fallback"
                );
                continue;
            };
            let mut child = sleeper();
            let pid = child.id() as i32;
            let frozen = match freeze_moved(&home, v2, &format!("test-{pid}"), pid) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("cannot freeze in {} here: {e}", home.display());
                    child.kill().unwrap();
                    child.wait().unwrap();
                    continue;
                }
            };
            assert!(wait_until(|| frozen.is_complete()), "{frozen:?}");
            assert_ne!(proc_state(pid), Some('R'));
            frozen.thaw().unwrap();
            let group = frozen_group(&frozen).to_path_buf();
            assert!(!group.exists(), "the quarantine group is removed at thaw");
            assert!(procs(&home).contains(&pid) || !v2, "back in gantry's group");
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}
