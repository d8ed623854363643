//! CPU time and resident memory of service processes, read from /proc, with namespace pids mapped to host pids.
//!
//! `gantry up` runs as PID 1 of its own PID namespace without remounting /proc
//! (LINUX-SUPERVISION.md, A), so the pids it knows are namespace pids while /proc
//! shows host pids. The `NSpid:` line of /proc/<pid>/status lists a process's pid in
//! every namespace from the /proc mount's down to its own; the last field is the
//! namespace pid we know, the first is the directory name we need.

use std::collections::HashMap;

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
    /// Our own NSpid depth: services live one level below nothing when we are not
    /// in a namespace (depth 1) or at our depth when we are.
    depth: usize,
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
            depth: own.len().max(1),
        }
    }

    /// Refreshes the mapping for `pids` (namespace pids) with one scan of /proc.
    pub fn refresh(&mut self, pids: &[u32]) {
        self.host.retain(|k, _| pids.contains(k));
        let missing: Vec<u32> = pids
            .iter()
            .copied()
            .filter(|p| !self.host.contains_key(p))
            .collect();
        if missing.is_empty() {
            return;
        }
        if self.depth == 1 {
            for p in missing {
                self.host.insert(p, p);
            }
            return;
        }
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        for e in entries.flatten() {
            let Ok(host) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(status) = std::fs::read_to_string(format!("/proc/{host}/status")) else {
                continue;
            };
            let ns = nspid(&status);
            if ns.len() == self.depth
                && let Some(&inner) = ns.last()
                && missing.contains(&inner)
            {
                self.host.insert(inner, host);
            }
        }
    }

    /// CPU seconds (user + system) and RSS of the process with namespace pid `pid`.
    pub fn usage(&self, pid: u32) -> Option<Usage> {
        let host = *self.host.get(&pid)?;
        let stat = std::fs::read_to_string(format!("/proc/{host}/stat")).ok()?;
        // Fields after the command name, which is in parentheses and may contain spaces.
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        // rest[0] is field 3 (state); utime is field 14, stime 15, rss 24 (in pages).
        let utime: f64 = f.get(11)?.parse().ok()?;
        let stime: f64 = f.get(12)?.parse().ok()?;
        let rss_pages: u64 = f.get(21)?.parse().ok()?;
        // USER_HZ is 100 on every Linux ABI gantry targets; the page size 4 KiB on x86_64/aarch64 defaults.
        Some(Usage {
            cpu_seconds: (utime + stime) / 100.0,
            rss_bytes: rss_pages * 4096,
        })
    }
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
}
