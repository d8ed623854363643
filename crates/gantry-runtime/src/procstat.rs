//! CPU time and resident memory of service processes, read from /proc, with namespace pids mapped to host pids.
//!
//! `gantry up` runs as PID 1 of its own PID namespace without remounting /proc
//! (LINUX-SUPERVISION.md, A), so the pids it knows are namespace pids while /proc
//! shows host pids. The `NSpid:` line of /proc/<pid>/status lists a process's pid in
//! every namespace from the /proc mount's down to its own; the last field is the
//! namespace pid we know, the first is the directory name we need.
//!
//! A service's usage is the sum over its process group (every service is spawned as the
//! leader of its own group), so `runuser … postgres` counts postgres, not only runuser.
//! The `pgrp` of /proc/<pid>/stat is in the /proc mount's (host) numbering, i.e. the host
//! pid of the group leader.

use std::collections::{HashMap, HashSet};

/// Resource usage of one process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
}

/// Maps namespace pids to /proc entries and samples them.
#[derive(Debug, Default)]
pub struct ProcStat {
    host: HashMap<u32, u32>,
    /// Usage summed per process group (keyed by the leader's host pid), from the last refresh.
    groups: HashMap<u32, Usage>,
    /// Our own NSpid depth: services live one level below nothing when we are not
    /// in a namespace (depth 1) or at our depth when we are.
    depth: usize,
    /// gantry's PID namespace (`/proc/self/ns/pid`): another gantry's services have the
    /// same namespace pids in a namespace of their own, so a match must be in ours.
    ns: Option<std::path::PathBuf>,
}

fn nspid(status: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

impl ProcStat {
    pub fn new() -> ProcStat {
        let own = std::fs::read_to_string("/proc/self/status")
            .map(|s| nspid(&s))
            .unwrap_or_default();
        ProcStat {
            host: HashMap::new(),
            groups: HashMap::new(),
            depth: own.len().max(1),
            ns: std::fs::read_link("/proc/self/ns/pid").ok(),
        }
    }

    /// Refreshes the mapping for `pids` (namespace pids) and the per-group usage, with one
    /// scan of /proc.
    pub fn refresh(&mut self, pids: &[u32]) {
        // Sets, not lists: at 1,000 services the lookups below were a million comparisons
        // a refresh (25 million at 5,000).
        let wanted: HashSet<u32> = pids.iter().copied().collect();
        self.host.retain(|k, _| wanted.contains(k));
        self.groups.clear();
        let missing: HashSet<u32> = pids
            .iter()
            .copied()
            .filter(|p| !self.host.contains_key(p))
            .collect();
        if self.depth == 1 {
            for &p in &missing {
                self.host.insert(p, p);
            }
        }
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        let leaders: HashSet<u32> = self.host.values().copied().collect();
        let mut found: Vec<(u32, u32)> = Vec::new();
        for e in entries.flatten() {
            let Ok(host) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if self.depth > 1 && !missing.is_empty() {
                let Ok(status) = std::fs::read_to_string(format!("/proc/{host}/status")) else {
                    continue;
                };
                let ns = nspid(&status);
                if ns.len() == self.depth
                    && let Some(&inner) = ns.last()
                    && missing.contains(&inner)
                    && std::fs::read_link(format!("/proc/{host}/ns/pid")).ok() == self.ns
                {
                    found.push((inner, host));
                }
            }
            if let Some((pgrp, usage)) = read_stat(host) {
                let g = self.groups.entry(pgrp).or_insert(Usage {
                    cpu_seconds: 0.0,
                    rss_bytes: 0,
                });
                g.cpu_seconds += usage.cpu_seconds;
                g.rss_bytes += usage.rss_bytes;
            }
        }
        self.host.extend(found);
        // Only the groups of known services are kept.
        let keep: HashSet<u32> = self.host.values().copied().collect();
        self.groups
            .retain(|g, _| keep.contains(g) || leaders.contains(g));
    }

    /// Whether gantry runs in its own PID namespace (its pids are not the host's).
    pub fn in_namespace(&self) -> bool {
        self.depth > 1
    }

    /// The host pid of the process with namespace pid `pid`, as of the last refresh.
    pub fn host_pid(&self, pid: u32) -> Option<u32> {
        self.host.get(&pid).copied()
    }

    /// CPU seconds (user + system) and RSS of the process with namespace pid `pid` and
    /// every process of its group (as of the last refresh); the process alone when it
    /// does not lead a group.
    pub fn usage(&self, pid: u32) -> Option<Usage> {
        let host = *self.host.get(&pid)?;
        match self.groups.get(&host) {
            Some(u) => Some(*u),
            None => read_stat(host).map(|(_, u)| u),
        }
    }
}

/// The host pid of the process whose pid in gantry's PID namespace is `ns_pid`: what `ps`,
/// `ss -ltnp` and the pre-flight show (gantry runs as PID 1 of its own namespace and sees
/// namespace pids; /proc is not remounted and shows host pids). Without a namespace the
/// two are the same. `None` when no such process exists. One /proc scan; a caller that
/// asks often keeps a [`ProcStat`] and uses [`ProcStat::host_pid`] after `refresh`.
pub fn host_pid(ns_pid: u32) -> Option<u32> {
    let mut p = ProcStat::new();
    p.refresh(&[ns_pid]);
    let host = p.host_pid(ns_pid)?;
    std::path::Path::new(&format!("/proc/{host}"))
        .exists()
        .then_some(host)
}

/// The process group (host numbering) and the usage of one process, from /proc/<host>/stat.
fn read_stat(host: u32) -> Option<(u32, Usage)> {
    // One open, one read into the stack, one close: the kernel writes the whole line at the
    // first read. `read_to_string` added a statx and five reads of growing buffers per file,
    // which at 1,000 services made this scan of every process a third of gantry's idle CPU.
    use std::io::Read as _;
    let mut buf = [0u8; 1024];
    let mut file = std::fs::File::open(format!("/proc/{host}/stat")).ok()?;
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                // A short read is the whole line (a single seq_file record).
                if buf[len - 1] == b'\n' {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    parse_stat(&buf[..len])
}

/// The process group and usage from the text of /proc/<pid>/stat.
fn parse_stat(stat: &[u8]) -> Option<(u32, Usage)> {
    // Fields after the command name, which is in parentheses and may hold spaces (or bytes
    // that are not UTF-8).
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    // Index 0 is field 3 (state); pgrp is field 5 (index 2), utime 14 (11), stime 15 (12),
    // rss 24 (21, in pages).
    let mut f = rest.split_whitespace();
    let pgrp: u32 = f.nth(2)?.parse().ok()?;
    let utime: f64 = f.nth(8)?.parse().ok()?;
    let stime: f64 = f.next()?.parse().ok()?;
    let rss_pages: u64 = f.nth(8)?.parse().ok()?;
    // USER_HZ is 100 on every Linux ABI gantry targets; the page size 4 KiB on x86_64/aarch64 defaults.
    Some((
        pgrp,
        Usage {
            cpu_seconds: (utime + stime) / 100.0,
            rss_bytes: rss_pages * 4096,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_usage() {
        let mut p = ProcStat::new();
        let own = nspid(&std::fs::read_to_string("/proc/self/status").unwrap());
        let me = *own.last().unwrap();
        p.refresh(&[me]);
        let u = p.usage(me).expect("usage of the test process");
        assert!(u.rss_bytes > 0);
        assert!(u.cpu_seconds >= 0.0);
    }

    #[test]
    fn a_group_leader_counts_its_whole_group() {
        use std::os::unix::process::CommandExt as _;
        // sh leads a group with two long-lived children.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        let leader = child.id();
        let members = |leader: u32| -> usize {
            std::fs::read_dir("/proc")
                .unwrap()
                .flatten()
                .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
                .filter(|&h| read_stat(h).is_some_and(|(g, _)| g == leader))
                .count()
        };
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while members(leader) < 3 && std::time::Instant::now() < until {
            std::hint::spin_loop();
        }
        let mut p = ProcStat::new();
        p.refresh(&[leader]);
        let group = p.usage(leader).expect("usage");
        let alone = read_stat(leader).expect("leader").1;
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(leader as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = child.wait();
        assert!(
            group.rss_bytes > alone.rss_bytes,
            "group {group:?} vs leader alone {alone:?}"
        );
    }

    #[test]
    fn host_pid_outside_a_namespace_is_the_pid_itself() {
        let me = std::process::id();
        if nspid(&std::fs::read_to_string("/proc/self/status").unwrap()).len() == 1 {
            assert_eq!(host_pid(me), Some(me));
        }
        assert_eq!(host_pid(u32::MAX - 1), None);
    }

    #[test]
    fn parses_a_stat_line_whose_command_has_spaces_parens_and_other_bytes() {
        let line = b"4242 (a b) \xff)) S 1 4240 4240 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 \
                     12345 1000000 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        let (pgrp, u) = parse_stat(line).expect("parsed");
        assert_eq!(pgrp, 4240);
        assert_eq!(u.cpu_seconds, 3.0);
        assert_eq!(u.rss_bytes, 300 * 4096);
        assert_eq!(parse_stat(b"4242 (cut"), None);
    }

    #[test]
    fn nspid_lists_the_host_pid_first_and_the_namespace_pid_last() {
        assert_eq!(nspid("Name:\tx\nNSpid:\t4242\t7\n"), [4242, 7]);
        assert_eq!(nspid("Name:\tx\n"), Vec::<u32>::new());
    }
}
