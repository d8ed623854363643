//! Per-service `memory_max` and `cpu_max`: enforced with cgroup v2, cgroup v1 or an rlimit, whichever this machine allows, detected once at start.
//!
//! **Detection** ([`Limiter::detect`], only when some service sets a limit): for each
//! controller needed (memory, cpu), in this order of preference,
//! 1. cgroup v2: gantry's group in the cgroup2 hierarchy offers the controller and gantry
//!    can enable it for its children (`cgroup.subtree_control`). The no-internal-processes
//!    rule allows that only where gantry's group holds no process but the root's own;
//!    gantry's group holds gantry and its namespace stub, so outside the root group the
//!    kernel refuses (EBUSY), and the reason is said;
//! 2. cgroup v1: a v1 hierarchy has the controller and gantry can make a group in it
//!    (root on a hybrid system such as the dev VM);
//! 3. otherwise memory falls back to `RLIMIT_AS` per process, and a CPU rate to nothing (no
//!    rlimit limits a rate: `RLIMIT_CPU` kills after a total of CPU seconds). The pre-flight
//!    says which of these is in force for every service that sets a limit, with a warning
//!    for the fallback.
//!
//! **Layout:** gantry's own group `gantry-<host pid>` is made under gantry's group in each
//! hierarchy used, and one group per service below it, `NAME.service`, made at its first
//! spawn with its limits written (`memory.max` / `cpu.max` on v2;
//! `memory.limit_in_bytes` / `cpu.cfs_quota_us` per `cpu.cfs_period_us` on v1). Swap is not
//! counted.
//!
//! **Entering the group:** the child writes `0` (itself) into its group's `cgroup.procs`
//! between fork and exec (a `pre_exec` write on a descriptor opened by gantry; `write(2)`
//! is async-signal-safe), so no instruction of the service, and no process it forks, runs
//! outside its limits. That forces std's fork path for limited services only (notes §B:
//! ~0.35 ms at 10 MB of gantry RSS instead of ~0.1 ms). The alternatives were worse:
//! moving the pid right after `posix_spawn` leaves a window in which the program runs,
//! allocates and may fork outside its group; `clone3(CLONE_INTO_CGROUP)` is v2-only and
//! std's `Command` cannot pass it, so it would mean re-implementing posix_spawn in unsafe
//! code. The rlimit fallback is set in the same place.
//!
//! **OOM:** at each exit gantry compares the group's `oom_kill` counter (`memory.events`
//! on v2, `memory.oom_control` on v1) with its value at the spawn; a kill in between names
//! the exit "killed by the kernel's OOM killer (memory_max …)".
//!
//! **Cleanup:** when an incarnation exits, what is left in its group is SIGKILLed and the
//! group removed (retried from the event loop while the processes die); at gantry's exit
//! every group it made is removed ([`Limiter::close`]); groups a SIGKILLed gantry left
//! behind are swept at the next start.

mod cgroupfs;
pub mod freeze;

use cgroupfs::{keyed, mkdir, own_dir, procs, remove_tree, write};
use gantry_plan::Plan;
use gantry_spec::{Kind, Limits};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The CFS period gantry writes: a quota is so many µs of CPU per 100 ms.
const PERIOD_US: u64 = 100_000;

/// How long [`Limiter::close`] waits for the last processes of a group to die.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// How a limit is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforcement {
    CgroupV2,
    CgroupV1,
    /// `RLIMIT_AS` per process (memory only).
    Rlimit,
    /// Not at all (a CPU rate without cgroups), or not needed.
    None,
}

/// gantry's own group in one hierarchy and the controllers gantry uses there.
#[derive(Debug)]
struct Tree {
    v2: bool,
    memory: bool,
    cpu: bool,
    /// Where the hierarchy is mounted (v1 hierarchies may carry several controllers).
    mount: PathBuf,
    /// `<gantry's group>/gantry-<pid>`.
    base: PathBuf,
}

impl Tree {
    fn version(&self) -> Enforcement {
        if self.v2 {
            Enforcement::CgroupV2
        } else {
            Enforcement::CgroupV1
        }
    }
}

/// What the limiter keeps per plan unit.
#[derive(Debug, Default)]
struct Unit {
    name: String,
    limits: Limits,
    /// Its groups exist with their limits written.
    made: bool,
    /// A spawn was prepared and its exit not yet seen: the groups must stay.
    in_use: bool,
    /// The `oom_kill` counter when the incarnation was spawned.
    oom_seen: u64,
}

/// The limits of every service and the groups that enforce them. Lives on the event loop.
#[derive(Debug)]
pub struct Limiter {
    trees: Vec<Tree>,
    memory: Option<Enforcement>,
    cpu: Option<Enforcement>,
    /// Why cgroups could not be used (for the pre-flight's hint).
    why_not: Vec<String>,
    units: Vec<Unit>,
    /// Quarantined units' frozen process trees, by unit index (freeze.rs).
    frozen: std::collections::HashMap<usize, freeze::Frozen>,
}

/// What a spawn does in the child before exec: join its groups, set its rlimit.
#[derive(Debug, Clone)]
pub struct Confine {
    /// `cgroup.procs` of each of its groups, opened `O_CLOEXEC` by gantry.
    procs: Arc<[OwnedFd]>,
    rlimit_as: Option<u64>,
}

impl PartialEq for Confine {
    fn eq(&self, other: &Confine) -> bool {
        Arc::ptr_eq(&self.procs, &other.procs) && self.rlimit_as == other.rlimit_as
    }
}

impl Eq for Confine {}

impl Confine {
    /// The work of the child between fork and exec. It must stay async-signal-safe: the
    /// descriptors are copied out here, in the parent, and the child only writes and
    /// calls setrlimit.
    pub(crate) fn child_setup(
        &self,
    ) -> impl FnMut() -> std::io::Result<()> + Send + Sync + 'static + use<> {
        let fds: Vec<RawFd> = self.procs.iter().map(AsRawFd::as_raw_fd).collect();
        let rlimit_as = self.rlimit_as;
        move || {
            for &fd in &fds {
                // SAFETY: `fd` belongs to the `Confine` the spawning parent holds for the
                // whole spawn; the child got a copy of it at fork.
                #[allow(unsafe_code)]
                let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
                nix::unistd::write(fd, b"0")?;
            }
            if let Some(bytes) = rlimit_as {
                use nix::sys::resource::{Resource, setrlimit};
                setrlimit(Resource::RLIMIT_AS, bytes, bytes)?;
            }
            Ok(())
        }
    }
}

/// What the end of an incarnation showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// The memory limit, when the kernel's OOM killer killed a process of the incarnation.
    pub oom_kill: Option<u64>,
    /// Its groups still hold dying processes: call [`Limiter::remove`] again shortly.
    pub removal_pending: bool,
}

impl Limiter {
    /// Finds how this machine can enforce the limits the plan's services set, and makes
    /// gantry's own groups for it. Touches nothing when no service sets a limit.
    pub fn detect(plan: &Plan) -> Limiter {
        Self::detect_for(Self::units(plan))
    }

    /// What [`Limiter::detect`] finds on a machine where gantry can use no cgroup:
    /// `RLIMIT_AS` for memory, nothing for a CPU rate. Touches no cgroup (the tests of
    /// the fallback run on any machine with it).
    pub fn without_cgroups(plan: &Plan) -> Limiter {
        let units = Self::units(plan);
        let need = |f: fn(&Limits) -> bool| units.iter().any(|u| f(&u.limits));
        Limiter {
            trees: Vec::new(),
            memory: need(|l| l.memory_max.is_some()).then_some(Enforcement::Rlimit),
            cpu: need(|l| l.cpu_max.is_some()).then_some(Enforcement::None),
            why_not: vec!["cgroups were not looked for".into()],
            units,
            frozen: Default::default(),
        }
    }

    /// The limiter's view of each unit; none at all when no service sets a limit (a boot
    /// without limits pays nothing for them).
    fn units(plan: &Plan) -> Vec<Unit> {
        let limited = |u: &&gantry_plan::PlanUnit| {
            u.service.kind != Kind::External && !u.service.limits.is_empty()
        };
        if !plan.units.iter().any(|u| limited(&u)) {
            return Vec::new();
        }
        plan.units
            .iter()
            .map(|u| Unit {
                name: u.service.name.value.clone(),
                // External services are not started: their limits mean nothing here.
                limits: if u.service.kind == Kind::External {
                    Limits::default()
                } else {
                    u.service.limits
                },
                ..Unit::default()
            })
            .collect()
    }

    fn detect_for(units: Vec<Unit>) -> Limiter {
        let need_memory = units.iter().any(|u| u.limits.memory_max.is_some());
        let need_cpu = units.iter().any(|u| u.limits.cpu_max.is_some());
        let mut l = Limiter {
            trees: Vec::new(),
            memory: None,
            cpu: None,
            why_not: Vec::new(),
            units,
            frozen: Default::default(),
        };
        if !need_memory && !need_cpu {
            return l;
        }
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let mounts = cgroupfs::parse_mounts(&read("/proc/self/mountinfo"));
        let own = cgroupfs::parse_own(&read("/proc/self/cgroup"));
        let name = cgroupfs::own_group_name();
        let mut want: Vec<&'static str> =
            [need_memory.then_some("memory"), need_cpu.then_some("cpu")]
                .into_iter()
                .flatten()
                .collect();

        if let Some(m) = mounts.iter().find(|m| m.v2)
            && let Some(dir) = own_dir(m, &own)
        {
            let offered =
                std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
            let here: Vec<&'static str> = want
                .iter()
                .copied()
                .filter(|c| offered.split_whitespace().any(|o| o == *c))
                .collect();
            if here.is_empty() {
                l.why_not.push(format!(
                    "cgroup v2: gantry's group {} offers no {} controller",
                    dir.display(),
                    want.join(" or ")
                ));
            } else {
                match setup_v2(&dir, &here, &name) {
                    Ok(base) => {
                        l.trees.push(Tree {
                            v2: true,
                            memory: here.contains(&"memory"),
                            cpu: here.contains(&"cpu"),
                            mount: m.point.clone(),
                            base,
                        });
                        want.retain(|c| !here.contains(c));
                    }
                    Err(e) => l.why_not.push(e),
                }
            }
        }
        for c in want {
            let Some(m) = mounts
                .iter()
                .find(|m| !m.v2 && m.controllers.iter().any(|x| x == c))
            else {
                l.why_not
                    .push(format!("cgroup v1: no hierarchy has the {c} controller"));
                continue;
            };
            if let Some(t) = l.trees.iter_mut().find(|t| !t.v2 && t.mount == m.point) {
                // Co-mounted with a controller already in use (`cpu,cpuacct,memory`).
                t.memory |= c == "memory";
                t.cpu |= c == "cpu";
                continue;
            }
            let Some(dir) = own_dir(m, &own) else {
                l.why_not.push(format!(
                    "cgroup v1: gantry's {c} group is not under {}",
                    m.point.display()
                ));
                continue;
            };
            match setup_v1(&dir, c, &name) {
                Ok(base) => l.trees.push(Tree {
                    v2: false,
                    memory: c == "memory",
                    cpu: c == "cpu",
                    mount: m.point.clone(),
                    base,
                }),
                Err(e) => l.why_not.push(e),
            }
        }
        let by = |pick: fn(&Tree) -> bool| l.trees.iter().find(|t| pick(t)).map(Tree::version);
        l.memory = need_memory.then(|| by(|t| t.memory).unwrap_or(Enforcement::Rlimit));
        l.cpu = need_cpu.then(|| by(|t| t.cpu).unwrap_or(Enforcement::None));
        l
    }

    /// How `memory_max` and `cpu_max` are enforced (`None` when no service sets it).
    pub fn enforcement(&self) -> (Option<Enforcement>, Option<Enforcement>) {
        (self.memory, self.cpu)
    }

    /// One pre-flight line per service that sets a limit: `(service, enforced, message,
    /// hint)`; `enforced` is false when a limit is only approximated or not enforced.
    pub fn report(&self) -> Vec<(String, bool, String, Option<String>)> {
        let mut out = Vec::new();
        for u in self.units.iter().filter(|u| !u.limits.is_empty()) {
            let mut parts = Vec::new();
            let mut enforced = true;
            if let Some(m) = u.limits.memory_max {
                let size = gantry_spec::size::format_size(m);
                parts.push(match self.memory.unwrap_or(Enforcement::None) {
                    Enforcement::CgroupV2 => format!("memory_max {size} by cgroup v2 (memory.max)"),
                    Enforcement::CgroupV1 => {
                        format!("memory_max {size} by cgroup v1 (memory.limit_in_bytes)")
                    }
                    _ => {
                        enforced = false;
                        format!(
                            "memory_max {size} only as RLIMIT_AS: each process's address space is capped, not the memory the service uses, and allocations fail instead of an OOM kill"
                        )
                    }
                });
            }
            if let Some(c) = u.limits.cpu_max {
                parts.push(match self.cpu.unwrap_or(Enforcement::None) {
                    Enforcement::CgroupV2 => format!("cpu_max {c} by cgroup v2 (cpu.max)"),
                    Enforcement::CgroupV1 => {
                        format!("cpu_max {c} by cgroup v1 (cpu.cfs_quota_us)")
                    }
                    _ => {
                        enforced = false;
                        format!(
                            "cpu_max {c} is not enforced: without cgroups nothing limits a CPU rate"
                        )
                    }
                });
            }
            let hint = (!enforced).then(|| {
                let mut why = self.why_not.clone();
                why.dedup();
                format!(
                    "{}; run gantry as root where cgroup v1 has the memory and cpu controllers, or in the root group of a cgroup v2 hierarchy that offers them",
                    why.join("; ")
                )
            });
            out.push((u.name.clone(), enforced, parts.join("; "), hint));
        }
        out
    }

    /// Readies unit `i`'s next spawn: its groups (made at the first spawn), the OOM
    /// counter's value now, and what the child must do. `None`: no limits.
    pub fn prepare(&mut self, i: usize) -> Result<Option<Confine>, String> {
        let Some(u) = self.units.get(i) else {
            return Ok(None);
        };
        if u.limits.is_empty() {
            return Ok(None);
        }
        let limits = u.limits;
        let rlimit_as = match self.memory {
            Some(Enforcement::Rlimit) => limits.memory_max,
            _ => None,
        };
        let dirs = self.dirs(i);
        if !self.units[i].made {
            for (tree, dir) in &dirs {
                mkdir(dir)?;
                write_limits(&self.trees[*tree], dir, limits)?;
            }
            self.units[i].made = true;
        }
        let mut fds = Vec::with_capacity(dirs.len());
        for (_, dir) in &dirs {
            let path = dir.join("cgroup.procs");
            let fd = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| format!("opening {}: {e}", path.display()))?;
            fds.push(OwnedFd::from(fd));
        }
        let oom_seen = self.oom_count(i).unwrap_or(0);
        let u = &mut self.units[i];
        u.oom_seen = oom_seen;
        u.in_use = true;
        Ok(Some(Confine {
            procs: fds.into(),
            rlimit_as,
        }))
    }

    /// The incarnation of unit `i` is gone (or its spawn failed): whether the OOM killer
    /// struck, and its groups emptied (what is left is SIGKILLed) and removed.
    pub fn exited(&mut self, i: usize) -> Ended {
        // A quarantine ends with its incarnation (a v1 quarantine group is removed).
        let _ = self.thaw_unit(i);
        let Some(u) = self.units.get_mut(i) else {
            return Ended {
                oom_kill: None,
                removal_pending: false,
            };
        };
        let was_in_use = std::mem::replace(&mut u.in_use, false);
        let (seen, memory_max) = (u.oom_seen, u.limits.memory_max);
        let oom_kill = match self.oom_count(i) {
            Some(now) if was_in_use && now > seen => memory_max,
            _ => None,
        };
        Ended {
            oom_kill,
            removal_pending: !self.remove(i),
        }
    }

    /// SIGKILLs what is left in unit `i`'s groups and removes them; true when they are
    /// gone (or back in use by a new spawn, which keeps them).
    pub fn remove(&mut self, i: usize) -> bool {
        match self.units.get(i) {
            Some(u) if u.made && !u.in_use => {}
            _ => return true,
        }
        let mut gone = true;
        for (_, dir) in self.dirs(i) {
            kill_all(&dir);
            gone &= remove_tree(&dir);
        }
        if gone {
            self.units[i].made = false;
        }
        gone
    }

    /// Removes every group gantry made (at its exit): the processes left are killed and
    /// waited for, at most [`CLOSE_WAIT`].
    pub async fn close(&mut self) {
        if self.trees.is_empty() {
            return;
        }
        let deadline = tokio::time::Instant::now() + CLOSE_WAIT;
        loop {
            for u in &mut self.units {
                u.in_use = false;
            }
            let mut left = false;
            for i in 0..self.units.len() {
                left |= !self.remove(i);
            }
            if !left || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.remove_bases();
    }

    fn remove_bases(&mut self) {
        for t in self.trees.drain(..) {
            remove_tree(&t.base);
        }
    }

    /// The group of unit `i` in each tree that enforces one of its limits.
    fn dirs(&self, i: usize) -> Vec<(usize, PathBuf)> {
        let u = &self.units[i];
        self.trees
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                (t.memory && u.limits.memory_max.is_some()) || (t.cpu && u.limits.cpu_max.is_some())
            })
            .map(|(n, t)| (n, t.base.join(format!("{}.service", u.name))))
            .collect()
    }

    /// The `oom_kill` counter of unit `i`'s memory group, when it has one.
    fn oom_count(&self, i: usize) -> Option<u64> {
        let u = &self.units[i];
        u.limits.memory_max?;
        let t = self.trees.iter().find(|t| t.memory)?;
        let dir = t.base.join(format!("{}.service", u.name));
        let file = if t.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        keyed(&std::fs::read_to_string(dir.join(file)).ok()?, "oom_kill")
    }
}

impl Drop for Limiter {
    /// Without [`Limiter::close`] (gantry stopped before its event loop ran): one pass.
    fn drop(&mut self) {
        for u in &mut self.units {
            u.in_use = false;
        }
        for i in 0..self.units.len() {
            self.remove(i);
        }
        self.remove_bases();
    }
}

/// cgroup v2: enables `controllers` below gantry's group `dir`, then makes gantry's own
/// group there with the same controllers for the services' groups.
fn setup_v2(dir: &std::path::Path, controllers: &[&str], name: &str) -> Result<PathBuf, String> {
    let plus: Vec<String> = controllers.iter().map(|c| format!("+{c}")).collect();
    let plus = plus.join(" ");
    cgroupfs::sweep_stale(dir, name);
    write(&dir.join("cgroup.subtree_control"), &plus).map_err(|e| {
        let busy = if e.contains("os error 16") {
            " (the group holds processes, gantry's own among them, and cgroup v2 shares \
             controllers with the children of such a group only at the root)"
        } else {
            ""
        };
        format!(
            "cgroup v2: cannot enable {} below {}: {e}{busy}",
            controllers.join(" and "),
            dir.display()
        )
    })?;
    let base = dir.join(name);
    mkdir(&base).map_err(|e| format!("cgroup v2: {e}"))?;
    if let Err(e) = write(&base.join("cgroup.subtree_control"), &plus) {
        remove_tree(&base);
        return Err(format!("cgroup v2: {e}"));
    }
    Ok(base)
}

/// cgroup v1: gantry's own group in the `controller` hierarchy, under gantry's group `dir`.
fn setup_v1(dir: &std::path::Path, controller: &str, name: &str) -> Result<PathBuf, String> {
    cgroupfs::sweep_stale(dir, name);
    let base = dir.join(name);
    mkdir(&base).map_err(|e| format!("cgroup v1 {controller}: {e}"))?;
    let probe = if controller == "memory" {
        "memory.limit_in_bytes"
    } else {
        "cpu.cfs_quota_us"
    };
    if !base.join(probe).exists() {
        remove_tree(&base);
        return Err(format!(
            "cgroup v1 {controller}: {} has no {probe}",
            base.display()
        ));
    }
    Ok(base)
}

/// Writes a service's limits into its new group `dir` in `tree`.
fn write_limits(tree: &Tree, dir: &std::path::Path, limits: Limits) -> Result<(), String> {
    if tree.memory
        && let Some(bytes) = limits.memory_max
    {
        let file = if tree.v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        write(&dir.join(file), &bytes.to_string())?;
    }
    if tree.cpu
        && let Some(c) = limits.cpu_max
    {
        let quota = u64::from(c.0) * PERIOD_US / 1000;
        if tree.v2 {
            write(&dir.join("cpu.max"), &format!("{quota} {PERIOD_US}"))?;
        } else {
            write(&dir.join("cpu.cfs_period_us"), &PERIOD_US.to_string())?;
            write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
        }
    }
    Ok(())
}

/// SIGKILLs every process in group `dir`: `cgroup.kill` where the kernel has it (v2,
/// atomic, catches forks in flight), else each pid of `cgroup.procs`.
fn kill_all(dir: &std::path::Path) {
    let kill = dir.join("cgroup.kill");
    if kill.exists() && write(&kill, "1").is_ok() {
        return;
    }
    for pid in procs(dir) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}
