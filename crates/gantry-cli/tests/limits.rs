//! `memory_max` and `cpu_max` in a real `gantry up`: a memory hog is OOM-killed and named so, a CPU hog is held near its share, a service without limits is untouched, and no cgroup is left behind.
//!
//! They need a cgroup gantry may use (root with cgroup v1 controllers, as on the dev VM,
//! or a cgroup v2 root group that offers them); elsewhere they print why and pass.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::*;

/// The pre-flight's `limits` line for `service`; `None` (after printing why) when the
/// limits are not enforced by a cgroup on this machine, so the test has nothing to check.
fn cgroup_enforced(up: &mut Up, service: &str) -> Option<String> {
    let pre = up.wait_for("the pre-flight", 30, |v| v["event"] == "preflight");
    let check = pre["report"]["checks"]
        .as_array()
        .and_then(|c| {
            c.iter()
                .find(|c| c["check"] == "limits" && c["service"] == service)
                .cloned()
        })
        .unwrap_or_else(|| panic!("no limits check for {service}: {pre}"));
    let message = check["message"].as_str().unwrap_or_default().to_string();
    if message.contains("by cgroup") {
        return Some(message);
    }
    eprintln!(
        "skipped: no cgroup gantry can use here ({message}; {})",
        check["hint"].as_str().unwrap_or_default()
    );
    None
}

/// The cgroup directories `pid` is in, one per hierarchy (read from /proc/PID/cgroup,
/// found under the mounts in /sys/fs/cgroup), that gantry made (`gantry-N/NAME.service`).
fn gantry_groups(pid: u32) -> Vec<PathBuf> {
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let mounts: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for line in own.lines() {
        let Some(path) = line.splitn(3, ':').nth(2) else {
            continue;
        };
        if !path.contains("/gantry-") || !path.ends_with(".service") {
            continue;
        }
        let rel = path.trim_start_matches('/');
        for m in std::iter::once(PathBuf::from("/sys/fs/cgroup")).chain(mounts.iter().cloned()) {
            let dir = m.join(rel);
            if dir.join("cgroup.procs").exists() && !out.contains(&dir) {
                out.push(dir);
            }
        }
    }
    out
}

/// The single live process whose command line holds `marker`.
fn pid_of(marker: &str) -> u32 {
    let mut found = Vec::new();
    assert!(
        eventually(10, || {
            found = processes_with(marker);
            found.len() == 1
        }),
        "expected one process with {marker}, found {found:?}"
    );
    found[0]
}

/// User plus system CPU time of `pid` so far, in clock ticks (1/100 s).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    // After the command: state is field 3, utime 14 and stime 15 (proc(5)).
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn a_memory_hog_over_memory_max_is_oom_killed_and_named_so_and_others_are_untouched() {
    let marker = format!("lim-{}", std::process::id());
    let mut up = up(
        "limits-oom",
        &format!(
            r#"
[services.hog]
command = ["tail", "/dev/zero"]
memory_max = "64MiB"
# It may die within the default start_grace: its exit then reads "a failed start".
start_grace = "0s"

[services.steady]
command = "FIXTURE --name steady-{marker}"
memory_max = "256MiB"

[services.free]
command = "FIXTURE --name free-{marker}"
"#
        ),
        &[],
    );
    let Some(message) = cgroup_enforced(&mut up, "hog") else {
        up.stop();
        return;
    };
    assert!(message.contains("memory_max 64MiB"), "{message}");
    // `tail /dev/zero` keeps one endless line in memory: it grows until the kernel kills it.
    let failed = up.wait_state("hog", "failed", 60);
    let reason = failed["reason"].as_str().unwrap_or_default();
    assert_eq!(
        reason,
        "exited unexpectedly (killed by the kernel's OOM killer (memory_max 64MiB))",
        "{}",
        up.log()
    );

    // The other services run on, each in its place: the limited one in its own group,
    // the other one in none of gantry's.
    let steady = pid_of(&format!("steady-{marker}"));
    let free = pid_of(&format!("free-{marker}"));
    let groups = gantry_groups(steady);
    assert!(
        groups.iter().any(|g| g.ends_with("steady.service")),
        "steady is not in its group: {groups:?}"
    );
    for g in &groups {
        let limit = std::fs::read_to_string(g.join("memory.limit_in_bytes"))
            .or_else(|_| std::fs::read_to_string(g.join("memory.max")));
        if let Ok(limit) = limit {
            assert_eq!(limit.trim(), (256u64 << 20).to_string(), "{}", g.display());
        }
    }
    assert_eq!(
        gantry_groups(free),
        Vec::<PathBuf>::new(),
        "free is in a gantry group"
    );
    // The hog's own group went with it.
    let gantry_dirs: Vec<PathBuf> = groups.iter().map(|g| g.parent().unwrap().into()).collect();
    assert!(
        eventually(5, || gantry_dirs
            .iter()
            .all(|d| !d.join("hog.service").exists())),
        "hog.service was not removed"
    );

    // The mission says it too.
    let out = std::process::Command::new(gantry())
        .args(["missions", "--json"])
        .current_dir(&up.dir)
        .output()
        .unwrap();
    let missions = String::from_utf8_lossy(&out.stdout);
    assert!(
        missions.contains("killed by the kernel's OOM killer (memory_max 64MiB)"),
        "{missions}"
    );

    assert_eq!(up.stop(), 0);
    // Nothing gantry made is left: the services' groups and gantry's own.
    for d in groups.iter().chain(&gantry_dirs) {
        assert!(!d.exists(), "{} is left after the run", d.display());
    }
}

#[test]
fn cpu_max_holds_a_busy_loop_near_its_share_of_one_cpu() {
    let marker = format!("busy-{}", std::process::id());
    let mut up = up(
        "limits-cpu",
        &format!(
            r#"
[services.busy]
command = ["sh", "-c", "while :; do :; done", "{marker}"]
cpu_max = 0.2
"#
        ),
        &[],
    );
    let Some(message) = cgroup_enforced(&mut up, "busy") else {
        up.stop();
        return;
    };
    assert!(message.contains("cpu_max 0.2 CPU"), "{message}");
    up.wait_state("busy", "running", 30);
    let pid = pid_of(&marker);
    let groups = gantry_groups(pid);
    assert!(
        groups.iter().any(|g| g.ends_with("busy.service")),
        "busy is not in its group: {groups:?}"
    );

    // Its CPU time over about two seconds, as the kernel counts it.
    let (t0, c0) = (Instant::now(), cpu_ticks(pid));
    let _ = std::sync::mpsc::channel::<()>()
        .1
        .recv_timeout(Duration::from_secs(2));
    let (elapsed, used) = (t0.elapsed().as_secs_f64(), cpu_ticks(pid) - c0);
    let share = used as f64 / 100.0 / elapsed;
    eprintln!(
        "busy loop under cpu_max = 0.2: {:.0}% of a CPU",
        share * 100.0
    );
    // Unlimited it takes a whole CPU; held to 20 %. The bound is generous: this is not a
    // timing test, it fails only when the quota is not applied at all.
    assert!(
        share < 0.5,
        "the busy loop used {:.0}% of a CPU",
        share * 100.0
    );
    assert!(share > 0.02, "the busy loop did not run ({used} ticks)");

    assert_eq!(up.stop(), 0);
    let gantry_dirs: Vec<PathBuf> = groups.iter().map(|g| g.parent().unwrap().into()).collect();
    for d in groups.iter().chain(&gantry_dirs) {
        assert!(!d.exists(), "{} is left after the run", d.display());
    }
}

#[test]
fn groups_a_killed_gantry_left_behind_are_removed_at_the_next_start() {
    let marker = format!("sweep-{}", std::process::id());
    let stack = |name: &str| {
        format!(
            "[services.sleepy]\ncommand = \"FIXTURE --name {name}-{marker}\"\nmemory_max = \"128MiB\"\n"
        )
    };
    let mut first = up("limits-sweep-1", &stack("first"), &[]);
    if cgroup_enforced(&mut first, "sleepy").is_none() {
        first.stop();
        return;
    }
    first.wait_state("sleepy", "running", 30);
    let groups = gantry_groups(pid_of(&format!("first-{marker}")));
    assert!(!groups.is_empty(), "sleepy is in no group");
    // SIGKILL: gantry cannot clean up. Its PID namespace dies with it, so the groups
    // empty, but they stay.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    assert!(
        eventually(10, || groups
            .iter()
            .all(|g| std::fs::read_to_string(g.join("cgroup.procs"))
                .is_ok_and(|p| p.trim().is_empty()))),
        "the killed gantry's services did not die"
    );
    let own: Vec<PathBuf> = groups.iter().map(|g| g.parent().unwrap().into()).collect();
    assert!(own.iter().all(|d| d.exists()));

    let mut second = up("limits-sweep-2", &stack("second"), &[]);
    second.wait_state("sleepy", "running", 30);
    for d in &own {
        assert!(!d.exists(), "{} was not swept", d.display());
    }
    assert_eq!(second.stop(), 0);
}
