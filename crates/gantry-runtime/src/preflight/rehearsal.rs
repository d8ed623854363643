//! The pre-flight's dry run: every service rehearsed short of starting it (directory, environment, program, ports, its own preflight command, probe hosts), then the machine's limits, external services, TLS certificates and coverage.

use super::ports::{PortCheck, implied_ports, port_holder};
use super::{Builder, Report, ServiceEnvs, Severity, secrets};
use crate::env::{SecretValue, global_env, service_env};
use crate::probe;
use crate::process::resolve_program;
use crate::reaper::Reaper;
use gantry_plan::{Plan, PlanUnit};
use gantry_spec::{Kind, Probe, ProbeKind, Restart, Service, Spec};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const STAGE: &str = "rehearsal";

pub(super) async fn rehearse(
    spec: &Spec,
    plan: &Plan,
    base: &Path,
    reaper: &Reaper,
    revalidate: bool,
    limits: Option<&crate::resource::Limiter>,
) -> (Report, Vec<SecretValue>, ServiceEnvs) {
    let mut envs = ServiceEnvs((0..plan.units.len()).map(|_| None).collect());
    let mut b = Builder { checks: Vec::new() };
    b.push(
        "config and secrets",
        "config",
        None,
        Severity::Critical,
        true,
        format!(
            "{} services, {} dependencies, valid",
            plan.units.len(),
            plan.edge_count()
        ),
        None,
    );
    let secrets = secrets(spec, base, reaper, &mut b, &|_| true).await;
    let global = match global_env(spec, base) {
        Ok(g) => g,
        Err(e) => {
            b.push(
                "config and secrets",
                "env_file",
                None,
                Severity::Critical,
                false,
                e,
                Some("fix the path in env_file, or create the file".into()),
            );
            crate::envset::Env::default()
        }
    };
    let mut r = Rehearsal {
        base,
        reaper,
        revalidate,
        global: &global,
        secrets: &secrets,
        dirs: HashMap::new(),
        programs: HashMap::new(),
        hosts: HashMap::new(),
        ports: None,
        // glibc reads RLIMIT_STACK for it: once, not once per service.
        arg_max: nix::unistd::sysconf(nix::unistd::SysconfVar::ARG_MAX)
            .ok()
            .flatten()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(2 * 1024 * 1024),
    };
    for (i, u) in plan.units.iter().enumerate() {
        envs.0[i] = r.service(u, &mut b).await;
    }
    machine_limits(spec, plan, base, &mut b);
    if let Some(limits) = limits {
        service_limits(limits, &mut b);
    }
    external_services(plan, &global, base, reaper, &mut b).await;
    certificates(plan, base, revalidate, &mut b).await;
    let coverage_pct = coverage(plan, &mut b);
    (
        Report {
            checks: b.checks,
            coverage_pct,
        },
        secrets,
        envs,
    )
}

/// What the rehearsal of the services shares: services usually share their working
/// directory and often their program, so each distinct one is looked at once.
struct Rehearsal<'a> {
    base: &'a Path,
    reaper: &'a Reaper,
    /// The running instance checks itself: its own ports are held by its services, and
    /// the per-service preflight commands are a boot-time rehearsal.
    revalidate: bool,
    global: &'a crate::envset::Env,
    secrets: &'a [SecretValue],
    /// Working dir → (is a directory, exists).
    dirs: HashMap<PathBuf, (bool, bool)>,
    /// (program, the service's PATH, working dir) → resolved path or why not.
    programs: HashMap<(String, Option<String>, PathBuf), Result<String, String>>,
    /// Probe host → resolves.
    hosts: HashMap<String, bool>,
    ports: Option<PortCheck>,
    /// What `execve` takes for the command and environment together.
    arg_max: usize,
}

impl Rehearsal<'_> {
    /// Rehearses one service; its environment when it could be built.
    async fn service(&mut self, u: &PlanUnit, b: &mut Builder) -> Option<crate::envset::Env> {
        let s = &u.service;
        let name = s.name.value.as_str();
        if s.kind == Kind::External {
            return None;
        }
        let cwd = self.base.join(s.working_dir.as_deref().unwrap_or("."));
        let (is_dir, exists) = *self.dirs.entry(cwd.clone()).or_insert_with(|| {
            let is_dir = cwd.is_dir();
            (is_dir, is_dir || cwd.exists())
        });
        if !is_dir {
            let what = if exists {
                format!("{} is not a directory", cwd.display())
            } else {
                format!("{} does not exist", cwd.display())
            };
            let hint = Some("create it or fix working_dir".into());
            b.push(
                STAGE,
                "working_dir",
                Some(name),
                Severity::Critical,
                false,
                what,
                hint,
            );
            return None;
        }
        let env = match service_env(self.global, s, self.base, self.secrets) {
            Ok(e) => e,
            Err(e) => {
                let hint = Some("fix the path in env_file, or create the file".into());
                b.push(
                    STAGE,
                    "env_file",
                    Some(name),
                    Severity::Critical,
                    false,
                    e,
                    hint,
                );
                return None;
            }
        };
        if let Some(problem) = crate::env::empty_database(s, &env) {
            let (message, hint) = (problem.message, Some(problem.hint));
            b.push(
                STAGE,
                "database",
                Some(name),
                Severity::Critical,
                false,
                message,
                hint,
            );
        }
        self.spawn_size(s, &env, b);
        self.command(s, &env, &cwd, b);
        if !self.revalidate {
            self.ports(s, b);
            self.preflight_command(s, &env, &cwd, b).await;
        }
        for p in [&s.readiness, &s.liveness, &s.startup]
            .into_iter()
            .flatten()
        {
            self.probe_host(name, p, b).await;
        }
        Some(env)
    }

    /// The command and environment fit what `execve` takes (E2BIG otherwise, at every
    /// start): each string under the kernel's 128 KiB, all of them under `ARG_MAX`.
    fn spawn_size(&mut self, s: &Service, env: &crate::envset::Env, b: &mut Builder) {
        const MAX_ARG_STRLEN: usize = 32 * 4096;
        let arg_max = self.arg_max;
        let argv = s.command.as_ref().map_or(&[][..], |c| c.value.as_slice());
        let sizes = env
            .iter()
            .map(|(k, v)| (k, k.len() + v.len() + 2))
            .chain(argv.iter().map(|a| ("the command", a.len() + 1)));
        let (mut total, mut too_long) = (0usize, None);
        for (what, n) in sizes {
            // Each string also costs a pointer in the arrays execve builds.
            total += n + std::mem::size_of::<usize>();
            if n > MAX_ARG_STRLEN && too_long.is_none() {
                too_long = Some((what.to_string(), n));
            }
        }
        let name = s.name.value.as_str();
        let problem = match too_long {
            Some((what, n)) => Some(format!(
                "{what} is {} KiB; the kernel refuses a single argument or variable over 128 KiB (E2BIG at every start)",
                n / 1024
            )),
            None if total > arg_max => Some(format!(
                "command and environment take {} KiB; the kernel refuses more than {} KiB (E2BIG at every start)",
                total / 1024,
                arg_max / 1024
            )),
            None => None,
        };
        if let Some(what) = problem {
            let hint = Some("pass large data in a file (env_file values and secrets too), not in the environment or arguments".into());
            b.push(
                STAGE,
                "spawn size",
                Some(name),
                Severity::Critical,
                false,
                what,
                hint,
            );
        }
    }

    /// The program resolves (in the service's PATH, relative to its working dir).
    fn command(&mut self, s: &Service, env: &crate::envset::Env, cwd: &Path, b: &mut Builder) {
        let Some(program) = s.command.as_ref().and_then(|c| c.value.first()) else {
            return;
        };
        let name = s.name.value.as_str();
        // The search depends on the program, the service's PATH and its directory.
        let path_var = env.get("PATH").map(str::to_string);
        let resolved = self
            .programs
            .entry((program.clone(), path_var, cwd.to_path_buf()))
            .or_insert_with(|| {
                resolve_program(program, env, Some(cwd))
                    .map(|path| path.display().to_string())
                    .map_err(|e| e.to_string())
            });
        match resolved {
            Ok(path) => {
                let what = format!("{program} resolves to {path}");
                b.push(
                    STAGE,
                    "command",
                    Some(name),
                    Severity::Critical,
                    true,
                    what,
                    None,
                );
            }
            Err(e) => {
                let hint = "install the program, fix its path (relative paths are relative to working_dir), or add it to PATH";
                let what = e.clone();
                b.push(
                    STAGE,
                    "command",
                    Some(name),
                    Severity::Critical,
                    false,
                    what,
                    Some(hint.into()),
                );
            }
        }
    }

    /// The ports the service will take are free (and who holds them when not).
    fn ports(&mut self, s: &Service, b: &mut Builder) {
        let name = s.name.value.as_str();
        for port in implied_ports(s) {
            if self.ports.get_or_insert_with(PortCheck::new).free(port) {
                let what = format!("port {port} is free");
                b.push(
                    STAGE,
                    "port",
                    Some(name),
                    Severity::Critical,
                    true,
                    what,
                    None,
                );
            } else {
                let holder = port_holder(port).unwrap_or_else(|| "an unknown process".into());
                let what = format!("port {port} is already in use by {holder}");
                let hint = Some(format!("stop {holder}, or move {name} to a free port"));
                b.push(
                    STAGE,
                    "port",
                    Some(name),
                    Severity::Critical,
                    false,
                    what,
                    hint,
                );
            }
        }
    }

    /// The service's own `preflight` command passes.
    async fn preflight_command(
        &mut self,
        s: &Service,
        env: &crate::envset::Env,
        cwd: &Path,
        b: &mut Builder,
    ) {
        let Some(argv) = &s.preflight else { return };
        let outcome = probe::exec(
            argv.clone(),
            env.clone(),
            Some(cwd.to_path_buf()),
            Duration::from_secs(30),
            self.reaper,
        )
        .await;
        let hint = Some(format!(
            "run `{}` in {} to see why it fails",
            argv.join(" "),
            cwd.display()
        ));
        let name = s.name.value.as_str();
        b.push(
            STAGE,
            "preflight command",
            Some(name),
            Severity::Critical,
            outcome.ok,
            outcome.message,
            hint,
        );
    }

    /// A probe's host name resolves (IP literals need no check); each name once.
    async fn probe_host(&mut self, name: &str, p: &Probe, b: &mut Builder) {
        let host = match &p.kind {
            ProbeKind::Tcp(a) => a
                .rsplit_once(':')
                .map(|(h, _)| h.trim_matches(['[', ']']).to_string()),
            ProbeKind::Http { url, .. } => url
                .split_once("://")
                .and_then(|(_, r)| r.split('/').next())
                .and_then(|hp| {
                    hp.rsplit_once(':')
                        .map(|(h, _)| h.to_string())
                        .or(Some(hp.to_string()))
                }),
            _ => None,
        };
        let Some(h) = host.filter(|h| h.parse::<std::net::IpAddr>().is_err()) else {
            return;
        };
        let ok = match self.hosts.get(&h) {
            Some(&ok) => ok,
            None => {
                let lookup = tokio::net::lookup_host((h.as_str(), 0));
                let ok = match tokio::time::timeout(Duration::from_secs(3), lookup).await {
                    Ok(Ok(mut addrs)) => addrs.next().is_some(),
                    _ => false,
                };
                self.hosts.insert(h.clone(), ok);
                ok
            }
        };
        let what = if ok {
            format!("{h} resolves")
        } else {
            format!("{h} does not resolve")
        };
        let hint = Some("fix the host name in the probe, or add it to /etc/hosts".into());
        b.push(
            STAGE,
            "probe host",
            Some(name),
            Severity::Critical,
            ok,
            what,
            hint,
        );
    }
}

/// Limits of the machine: open files for this many services, free disk under the state dir.
fn machine_limits(spec: &Spec, plan: &Plan, base: &Path, b: &mut Builder) {
    if let Ok((soft, hard)) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
    {
        // `gantry up` raises its soft limit to the hard one before this check runs.
        let (verdict, shortfall) = descriptors(plan.units.len() as u64, soft, hard);
        let (severity, ok) = match verdict {
            Descriptors::Enough => (Severity::Warning, true),
            Descriptors::Tight => (Severity::Warning, false),
            Descriptors::TooFew => (Severity::Critical, false),
        };
        b.push(
            STAGE,
            "open files limit",
            None,
            severity,
            ok,
            shortfall,
            Some(
                "raise it with `ulimit -n 65536` (and `ulimit -Hn` when the hard limit is the \
                 cap), or LimitNOFILE in the unit that starts gantry; or start fewer services \
                 (a profile or a service list after `gantry up`)"
                    .into(),
            ),
        );
    }
    let state_dir = base.join(&spec.settings.state_dir);
    // The state dir may not exist yet: measure the filesystem it will be created on,
    // i.e. its nearest existing ancestor, not the file's directory.
    let probe_dir = state_dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(base)
        .to_path_buf();
    if let Ok(st) = nix::sys::statvfs::statvfs(&probe_dir) {
        let free = st.blocks_available() * st.fragment_size();
        let mb = free / (1024 * 1024);
        let severity = if mb < 10 {
            Severity::Critical
        } else {
            Severity::Warning
        };
        b.push(
            STAGE,
            "free disk",
            None,
            severity,
            mb >= 100,
            format!("{mb} MiB free in {}", probe_dir.display()),
            Some("free some space: logs and the state store live there".into()),
        );
    }
}

/// How each service's `memory_max` and `cpu_max` are enforced: a warning when a limit is
/// only approximated (RLIMIT_AS) or not enforced at all (a CPU rate without cgroups).
fn service_limits(limits: &crate::resource::Limiter, b: &mut Builder) {
    for (service, enforced, message, hint) in limits.report() {
        b.push(
            STAGE,
            "limits",
            Some(&service),
            Severity::Warning,
            enforced,
            message,
            hint,
        );
    }
}

/// Whether the descriptors gantry can have are enough for this many services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Descriptors {
    /// At least the comfortable figure.
    Enough,
    /// Enough to run, not to weather a burst of API clients and probes: a warning.
    Tight,
    /// Fewer than the services' pipes and logs alone hold: NO-GO, it would fail midway.
    TooFew,
}

/// Descriptors needed for `units` services: at least 64 for gantry itself plus 3 per
/// service (its stdout and stderr pipes, its log file), comfortably 256 + 16 per service
/// (notify sockets, probes in flight, API clients). The limit that counts is the hard
/// one, which `gantry up` raises its soft limit to.
fn descriptors(units: u64, soft: u64, hard: u64) -> (Descriptors, String) {
    let limit = soft.max(hard);
    let min = 64 + 3 * units;
    let want = 256 + 16 * units;
    let verdict = if limit < min {
        Descriptors::TooFew
    } else if limit < want {
        Descriptors::Tight
    } else {
        Descriptors::Enough
    };
    let text = match verdict {
        Descriptors::TooFew => format!(
            "limit {limit}: {units} services need at least {min} open files (want {want}); \
             the boot would run out of descriptors midway"
        ),
        _ => format!("limit {limit} (want at least {want} for {units} services)"),
    };
    (verdict, text)
}

/// External services and stores must already answer their readiness probe.
async fn external_services(
    plan: &Plan,
    global: &crate::envset::Env,
    base: &Path,
    reaper: &Reaper,
    b: &mut Builder,
) {
    let externals = plan
        .units
        .iter()
        .filter(|u| u.service.kind == Kind::External);
    for u in externals {
        let s = &u.service;
        let name = s.name.value.as_str();
        let severity = if s.priority == gantry_spec::Priority::Critical {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let Some(p) = &s.readiness else {
            b.push(
                "stores",
                "external service",
                Some(name),
                Severity::Warning,
                false,
                "no readiness probe, so nothing checks it".into(),
                Some("add readiness = { tcp = \"host:port\" } or a store probe".into()),
            );
            continue;
        };
        let timeout = p.timeout.0.max(Duration::from_millis(500));
        let cwd = Some(base.to_path_buf());
        let outcome = probe::run(&p.kind, global.clone(), cwd, timeout, reaper, base).await;
        b.push(
            "stores",
            "external service",
            Some(name),
            severity,
            outcome.ok,
            outcome.message,
            Some(format!("start {name}, or fix its readiness probe address")),
        );
    }
}

/// Days before a certificate's end that the pre-flight starts warning.
pub const CERT_WARN_DAYS: i64 = 14;

/// The certificate chain and days to expiry of every TLS endpoint a probe connects to that
/// is up now: external services' at the boot, every service's when the running stack
/// revalidates (before the boot the others are not listening yet; their probes verify the
/// chain when they run). Each endpoint once. Under [`CERT_WARN_DAYS`] is a warning;
/// expired or not valid (unknown CA, wrong name) fails with the service's weight, as its
/// probe would: NO-GO for a critical service.
async fn certificates(plan: &Plan, base: &Path, revalidate: bool, b: &mut Builder) {
    let mut seen = std::collections::HashSet::new();
    for u in &plan.units {
        let s = &u.service;
        if s.kind != Kind::External && !revalidate {
            continue;
        }
        let name = s.name.value.as_str();
        let severity = if s.priority == gantry_spec::Priority::Critical {
            Severity::Critical
        } else {
            Severity::Warning
        };
        for p in [&s.readiness, &s.liveness, &s.startup]
            .into_iter()
            .flatten()
        {
            let Some(ep) = crate::tls::endpoint(&p.kind) else {
                continue;
            };
            if !seen.insert(ep.clone()) {
                continue;
            }
            let timeout = p.timeout.0.max(Duration::from_secs(2));
            let report = crate::tls::inspect::inspect(&ep, base, timeout).await;
            certificate_check(name, severity, &ep, &report, b);
        }
    }
}

fn certificate_check(
    name: &str,
    severity: Severity,
    ep: &crate::tls::inspect::Endpoint,
    report: &crate::tls::inspect::Report,
    b: &mut Builder,
) {
    use crate::tls::inspect::Verdict;
    let target = ep.target();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let expiry = report.expires.as_ref().map(|(at, whose)| {
        let days = report.days_left(now).unwrap_or(0);
        (days, crate::tls::x509::date(*at), whose.as_str())
    });
    match &report.verdict {
        Verdict::Invalid(problem) => b.push(
            "stores",
            "certificate",
            Some(name),
            severity,
            false,
            format!("{target}: {}", problem.what),
            Some(problem.todo.clone()),
        ),
        Verdict::NoHandshake(why) => b.checks.push(super::Check {
            stage: "stores",
            check: "certificate".into(),
            service: Some(name.to_string()),
            severity: Severity::Warning,
            status: super::Status::Skip,
            message: format!("{target}: not checked: {why}"),
            hint: None,
        }),
        Verdict::Valid => match expiry {
            Some((days, date, whose)) if days < CERT_WARN_DAYS => b.push(
                "stores",
                "certificate",
                Some(name),
                Severity::Warning,
                false,
                format!(
                    "{target}: {whose} expires in {} ({date}); {}",
                    crate::tls::days_text(days),
                    report.verify.what()
                ),
                Some(format!(
                    "renew the certificate {target} serves before {date}: its probes fail from then on"
                )),
            ),
            Some((days, date, _)) => b.push(
                "stores",
                "certificate",
                Some(name),
                Severity::Warning,
                true,
                format!(
                    "{target}: {}; expires in {} ({date})",
                    report.verify.what(),
                    crate::tls::days_text(days)
                ),
                None,
            ),
            None => b.push(
                "stores",
                "certificate",
                Some(name),
                Severity::Warning,
                true,
                format!("{target}: {}; expiry not readable", report.verify.what()),
                None,
            ),
        },
    }
}

/// Coverage: gates that prove something, and services that recover. Percent of the rules
/// that hold.
fn coverage(plan: &Plan, b: &mut Builder) -> u32 {
    let mut rules = 0u32;
    let mut held = 0u32;
    for u in &plan.units {
        let s = &u.service;
        let name = s.name.value.as_str();
        if !u.dependents.is_empty() && !s.kind.is_oneshot() {
            rules += 1;
            if s.readiness.is_some() {
                held += 1;
            } else {
                b.push(
                    "coverage",
                    "readiness probe",
                    Some(name),
                    Severity::Warning,
                    false,
                    "others depend on it but it has no readiness probe".into(),
                    Some("add readiness = { tcp | http | exec | log | notify = ... }".into()),
                );
            }
        }
        if s.kind == Kind::Process {
            rules += 1;
            if s.liveness.is_some() || s.restart != Restart::Never {
                held += 1;
            } else {
                b.push(
                    "coverage",
                    "liveness or restart",
                    Some(name),
                    Severity::Warning,
                    false,
                    "neither a liveness probe nor a restart policy: a hang or crash stays unnoticed".into(),
                    Some("add liveness = { ... } or restart = \"on-failure\"".into()),
                );
            }
        }
    }
    (held * 100).checked_div(rules).unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::{Descriptors, descriptors};

    #[test]
    fn too_few_descriptors_for_the_services_is_no_go_tight_is_a_warning() {
        // The case: 100,000 services against a limit of 20,000.
        let (v, text) = descriptors(100_000, 20_000, 20_000);
        assert_eq!(v, Descriptors::TooFew);
        assert!(text.contains("need at least 300064"), "{text}");
        assert_eq!(descriptors(1_000, 1_024, 10_000).0, Descriptors::Tight);
        assert_eq!(descriptors(100, 1_024, 1_024).0, Descriptors::Tight);
        assert_eq!(descriptors(100, 1_024, 4_096).0, Descriptors::Enough);
        assert_eq!(descriptors(400, 1_024, 1_024).0, Descriptors::TooFew);
    }
}
