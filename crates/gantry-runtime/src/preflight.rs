//! The GO/NO-GO pre-flight: config and secrets, a dry-run rehearsal (commands, dirs, ports, limits, DNS, preflight commands), external stores, coverage.
//!
//! Everything is checked before anything starts; every check has a severity
//! (critical → NO-GO, warning → GO with a note), says what failed and what to do.
//! Secret values never appear in a check's text: only names and where they were looked for.

use crate::env::{SecretValue, global_env, service_env};
use crate::probe;
use crate::process::resolve_program;
use crate::reaper::Reaper;
use gantry_plan::Plan;
use gantry_spec::{Kind, ProbeKind, Restart, Secret, SecretSource, Service, Spec};
use gantry_state::missions::NewMission;
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub stage: &'static str,
    pub check: String,
    pub service: Option<String>,
    pub severity: Severity,
    pub status: Status,
    pub message: String,
    pub hint: Option<String>,
}

/// The report as JSON. Keys are in alphabetical order, the order the document had when
/// it was built as a `serde_json::Value` (whose maps sort their keys).
#[derive(Serialize)]
struct JsonView<'a> {
    checks: Vec<CheckView<'a>>,
    coverage_pct: u32,
    go: bool,
    verdict: &'static str,
}

/// One check as JSON, keys in alphabetical order.
struct CheckView<'a>(&'a Check);

impl Serialize for CheckView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let c = self.0;
        let mut st = s.serialize_struct("Check", 7)?;
        st.serialize_field("check", &c.check)?;
        st.serialize_field("hint", &c.hint)?;
        st.serialize_field("message", &c.message)?;
        st.serialize_field("service", &c.service)?;
        st.serialize_field("severity", &c.severity)?;
        st.serialize_field("stage", c.stage)?;
        st.serialize_field("status", &c.status)?;
        st.end()
    }
}

/// The whole pre-flight.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
    /// Share of the coverage rules that hold, in percent.
    pub coverage_pct: u32,
}

/// Records a mission for every critical pre-flight failure in the store of `state_dir`
/// (best effort: a broken state store must not hide the NO-GO itself).
pub fn record_preflight(state_dir: &Path, report: &Report) {
    gantry_state::missions::record_all(state_dir, &report.missions());
}

impl Report {
    /// GO unless a critical check failed.
    pub fn go(&self) -> bool {
        !self
            .checks
            .iter()
            .any(|c| c.status == Status::Fail && c.severity == Severity::Critical)
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.view()).unwrap_or_default()
    }

    /// A mission for every critical check that failed.
    pub fn missions(&self) -> Vec<NewMission> {
        self.checks
            .iter()
            .filter(|c| c.status == Status::Fail && c.severity == Severity::Critical)
            .map(|c| NewMission {
                service: c.service.clone(),
                layer: None,
                check: format!("preflight: {}", c.check),
                error: c.message.clone(),
                output: Vec::new(),
                fix_criteria: format!("the pre-flight check `{}` passes", c.check),
                next_step: c
                    .hint
                    .clone()
                    .unwrap_or_else(|| "run `gantry preflight` for details".into()),
            })
            .collect()
    }

    /// The `gantry up --json` pre-flight event line (without the newline), serialized
    /// straight from the report: building a `Value` tree first took ~0.4 ms for 50
    /// services, on the way to the first spawn.
    pub fn event_json(&self) -> String {
        #[derive(Serialize)]
        struct Event<'a> {
            event: &'static str,
            report: JsonView<'a>,
        }
        serde_json::to_string(&Event {
            event: "preflight",
            report: self.view(),
        })
        .unwrap_or_default()
    }

    fn view(&self) -> JsonView<'_> {
        JsonView {
            checks: self.checks.iter().map(CheckView).collect(),
            coverage_pct: self.coverage_pct,
            go: self.go(),
            verdict: if self.go() { "GO" } else { "NO-GO" },
        }
    }

    /// The human report: a table with ✓ / ✗ / ! per check, hints under failures, the verdict.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut stage = "";
        for c in &self.checks {
            if c.stage != stage {
                stage = c.stage;
                out.push_str(&format!("{stage}\n"));
            }
            let mark = match (c.status, c.severity) {
                (Status::Pass, _) => "✓",
                (Status::Fail, Severity::Critical) => "✗",
                (Status::Fail, Severity::Warning) => "!",
                (Status::Skip, _) => "-",
            };
            let who = c
                .service
                .as_deref()
                .map(|s| format!("{s}: "))
                .unwrap_or_default();
            out.push_str(&format!("  {mark} {who}{}: {}\n", c.check, c.message));
            if c.status == Status::Fail
                && let Some(h) = &c.hint
            {
                out.push_str(&format!("      hint: {h}\n"));
            }
        }
        let failed = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail && c.severity == Severity::Critical)
            .count();
        let warned = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail && c.severity == Severity::Warning)
            .count();
        out.push_str(&format!("coverage: {}%\n", self.coverage_pct));
        if self.go() {
            out.push_str(&format!(
                "pre-flight: GO ({}, {})\n",
                plural(self.checks.len(), "check"),
                plural(warned, "warning")
            ));
        } else {
            out.push_str(&format!(
                "pre-flight: NO-GO ({failed} critical, {}); nothing was started\n",
                plural(warned, "warning")
            ));
        }
        out
    }
}

/// `1 warning`, `2 warnings`.
fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

struct Builder {
    checks: Vec<Check>,
}

impl Builder {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        stage: &'static str,
        check: &str,
        service: Option<&str>,
        severity: Severity,
        ok: bool,
        message: String,
        hint: Option<String>,
    ) {
        self.checks.push(Check {
            stage,
            check: check.to_string(),
            service: service.map(str::to_string),
            severity,
            status: if ok { Status::Pass } else { Status::Fail },
            message,
            hint,
        });
    }
}

/// Values that mean "nobody set this yet".
fn is_placeholder(v: &str) -> bool {
    let t = v.trim().to_ascii_lowercase();
    [
        "changeme",
        "change-me",
        "change_me",
        "todo",
        "fixme",
        "xxx",
        "secret",
        "password",
        "placeholder",
        "<secret>",
    ]
    .contains(&t.as_str())
}

fn describe(src: &SecretSource) -> String {
    match src {
        SecretSource::FromEnv(v) => format!("environment variable {v}"),
        SecretSource::FromFile(p) => format!("file {p}"),
        SecretSource::FromCommand(argv) => format!("command `{}`", argv.join(" ")),
    }
}

/// Resolves every secret `wanted` accepts; failures are checks, values are returned
/// for the services.
async fn secrets(
    spec: &Spec,
    base: &Path,
    reaper: &Reaper,
    b: &mut Builder,
    wanted: &(dyn Fn(&Secret) -> bool + Sync),
) -> Vec<SecretValue> {
    let mut out = Vec::new();
    for s in spec.secrets.iter().filter(|s| wanted(s)) {
        let name = &s.name.value;
        let severity = if s.required {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let Some(src) = &s.source else { continue };
        let where_ = describe(&src.value);
        let value: Result<String, String> = match &src.value {
            SecretSource::FromEnv(var) => {
                std::env::var(var).map_err(|_| format!("not set (looked in {where_})"))
            }
            SecretSource::FromFile(p) => {
                let path = base.join(p);
                match std::fs::read_to_string(&path) {
                    Ok(v) => {
                        use std::os::unix::fs::PermissionsExt as _;
                        if let Ok(meta) = std::fs::metadata(&path)
                            && meta.permissions().mode() & 0o077 != 0
                        {
                            b.push(
                                "config and secrets",
                                "secret file permissions",
                                None,
                                Severity::Warning,
                                false,
                                format!(
                                    "secret {name}: {} is readable by group or others (mode {:o})",
                                    path.display(),
                                    meta.permissions().mode() & 0o777
                                ),
                                Some(format!("chmod 600 {}", path.display())),
                            );
                        }
                        Ok(v.trim_end_matches(['\n', '\r']).to_string())
                    }
                    Err(e) => Err(format!("cannot read {}: {e}", path.display())),
                }
            }
            SecretSource::FromCommand(argv) => {
                let env = global_env(spec, base).unwrap_or_default();
                let (outcome, lines) = probe::capture(
                    argv.clone(),
                    env,
                    Some(base.to_path_buf()),
                    Duration::from_secs(10),
                    reaper,
                )
                .await;
                if outcome.ok {
                    Ok(lines.join("\n").trim_end().to_string())
                } else {
                    // The command's own output may contain the secret: say only how it ended.
                    Err(format!(
                        "{where_} failed: {}",
                        outcome.message.split(':').next().unwrap_or("failed")
                    ))
                }
            }
        };
        match value {
            Ok(v) if v.is_empty() => b.push(
                "config and secrets",
                "secret",
                None,
                severity,
                false,
                format!("secret {name} is empty (from {where_})"),
                Some("set a value; required secrets fail closed".into()),
            ),
            Ok(v) => {
                if is_placeholder(&v) {
                    b.push(
                        "config and secrets",
                        "secret",
                        None,
                        Severity::Warning,
                        false,
                        format!("secret {name} looks like a placeholder (from {where_})"),
                        Some("replace it with the real value".into()),
                    );
                } else {
                    b.push(
                        "config and secrets",
                        "secret",
                        None,
                        severity,
                        true,
                        format!("secret {name} resolved from {where_}"),
                        None,
                    );
                }
                out.push(SecretValue {
                    name: name.clone(),
                    env: s.env.clone().unwrap_or_else(|| name.clone()),
                    value: v,
                    services: s.services.iter().map(|x| x.value.clone()).collect(),
                });
            }
            Err(e) => b.push(
                "config and secrets",
                "secret",
                None,
                severity,
                false,
                format!("secret {name}: {e}"),
                Some(match &src.value {
                    SecretSource::FromEnv(var) => format!(
                        "export {var}=... before `gantry up`, or use from_file / from_command"
                    ),
                    SecretSource::FromFile(p) => {
                        format!("create {p} (mode 600) or point from_file elsewhere")
                    }
                    SecretSource::FromCommand(_) => {
                        "run the command by hand to see why it fails".into()
                    }
                }),
            ),
        }
    }
    out
}

/// `host:port` of a store probe's URL (`postgres://u:p@127.0.0.1:5432/db` →
/// `127.0.0.1:5432`), with the scheme's default port when the URL has none; `None` for
/// SQLite and for a URL without a host.
fn store_host_port(kind: &ProbeKind) -> Option<String> {
    let (url, default) = match kind {
        ProbeKind::Postgres(p) => (&p.url, 5432),
        ProbeKind::Mysql(p) => (&p.url, 3306),
        ProbeKind::Redis(p) => (&p.url, 6379),
        ProbeKind::Amqp(p) => (&p.url, 5672),
        ProbeKind::Nats(p) => (&p.url, 4222),
        _ => return None,
    };
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    // The first host of a multi-host URL is the one gantry's own probe connects to.
    let hostport = hostport.split(',').next()?;
    if hostport.is_empty() {
        return None;
    }
    let has_port = match hostport.rsplit_once(':') {
        Some((h, p)) => !(h.is_empty() || p.contains(']')),
        None => false,
    };
    Some(if has_port {
        hostport.to_string()
    } else {
        format!("{hostport}:{default}")
    })
}

/// Ports a service will listen on: declared ones, plus the port of a tcp/http/store
/// readiness or liveness probe on a loopback address (never for external services).
pub fn implied_ports(s: &Service) -> Vec<u16> {
    let mut ports = s.ports.clone();
    if s.kind == Kind::External {
        return ports;
    }
    for p in [&s.readiness, &s.liveness, &s.startup]
        .into_iter()
        .flatten()
    {
        let hostport = match &p.kind {
            ProbeKind::Tcp(a) => Some(a.clone()),
            ProbeKind::Http { url, .. } => url
                .split_once("://")
                .map(|(_, rest)| rest.split('/').next().unwrap_or("").to_string()),
            k => store_host_port(k),
        };
        if let Some(hp) = hostport
            && let Some((host, port)) = hp.rsplit_once(':')
            && matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "0.0.0.0")
            && let Ok(port) = port.parse::<u16>()
            && !ports.contains(&port)
        {
            ports.push(port);
        }
    }
    ports
}

/// Who listens on a TCP port: "pid 123 (postgres)" when /proc tells.
pub fn port_holder(port: u16) -> Option<String> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9
                && f[3] == "0A"
                && let Some((_, p)) = f[1].rsplit_once(':')
                && u16::from_str_radix(p, 16) == Ok(port)
            {
                inodes.push(format!("socket:[{}]", f[9]));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path())
                && inodes.iter().any(|i| target.to_string_lossy() == *i)
            {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                return Some(format!("pid {pid} ({})", comm.trim()));
            }
        }
    }
    Some("another process (its pid is not visible)".into())
}

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Port checks for a whole stack: one sock_diag LISTEN dump (listen.rs) answers "nothing
/// listens there" for every port at once; only a port something listens on is confirmed
/// by binding it. (Binding each port — socket, bind, listen, close — was ~0.1 ms per
/// service before the first spawn.) Without sock_diag every port is bound. A socket that
/// is bound but not listening is only caught by the bind fallback.
struct PortCheck {
    listeners: Option<Vec<std::net::SocketAddr>>,
}

impl PortCheck {
    fn new() -> PortCheck {
        let listeners = crate::listen::ListenScanner::new().ok().and_then(|mut s| {
            let mut out = Vec::new();
            s.scan(&mut out).ok().map(|()| out)
        });
        PortCheck { listeners }
    }

    fn free(&self, port: u16) -> bool {
        let target = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        match &self.listeners {
            Some(l) if !crate::listen::accepts(l, target) => true,
            _ => port_free(port),
        }
    }
}

/// Only the secrets stage: used when the rest of the pre-flight is skipped, since
/// secrets must be resolved (and required ones fail closed) either way.
pub async fn resolve_secrets(
    spec: &Spec,
    base: &Path,
    reaper: &Reaper,
) -> (Report, Vec<SecretValue>) {
    resolve_secrets_where(spec, base, reaper, &|_| true).await
}

/// The secrets stage for the secrets `wanted` accepts only, resolved from their sources
/// exactly as the pre-flight does (the manual `gantry migrate` commands resolve the
/// secrets a migrate service's `database` names this way).
pub async fn resolve_secrets_where(
    spec: &Spec,
    base: &Path,
    reaper: &Reaper,
    wanted: &(dyn Fn(&Secret) -> bool + Sync),
) -> (Report, Vec<SecretValue>) {
    let mut b = Builder { checks: Vec::new() };
    let values = secrets(spec, base, reaper, &mut b, wanted).await;
    (
        Report {
            checks: b.checks,
            coverage_pct: 100,
        },
        values,
    )
}

/// Runs the pre-flight. Returns the report and the resolved secrets.
pub async fn run(
    spec: &Spec,
    plan: &Plan,
    base: &Path,
    reaper: &Reaper,
) -> (Report, Vec<SecretValue>) {
    run_with(spec, plan, base, reaper, false).await
}

/// The pre-flight; with `revalidate`, as re-run while the stack is up: the ports are
/// held by our own services then, and per-service preflight commands were a boot-time
/// rehearsal, so both are left out.
pub async fn run_with(
    spec: &Spec,
    plan: &Plan,
    base: &Path,
    reaper: &Reaper,
    revalidate: bool,
) -> (Report, Vec<SecretValue>) {
    let (report, secrets, _) = rehearse(spec, plan, base, reaper, revalidate).await;
    (report, secrets)
}

/// Each service's environment as the pre-flight built it, by plan unit index (`None`
/// where it was not built: external services, a missing working directory or env file).
/// `gantry up` spawns with these instead of building them a second time. Holds secret
/// values, so its `Debug` shows only how many there are.
#[derive(Default)]
pub struct ServiceEnvs(Vec<Option<Vec<(String, String)>>>);

impl std::fmt::Debug for ServiceEnvs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let built = self.0.iter().filter(|e| e.is_some()).count();
        write!(f, "ServiceEnvs({built} built)")
    }
}

impl ServiceEnvs {
    /// Takes the environment built for unit `i`, if any.
    pub fn take(&mut self, i: usize) -> Option<Vec<(String, String)>> {
        self.0.get_mut(i).and_then(Option::take)
    }
}

/// The pre-flight for `gantry up`: also hands back every service's environment.
pub async fn run_for_up(
    spec: &Spec,
    plan: &Plan,
    base: &Path,
    reaper: &Reaper,
) -> (Report, Vec<SecretValue>, ServiceEnvs) {
    rehearse(spec, plan, base, reaper, false).await
}

async fn rehearse(
    spec: &Spec,
    plan: &Plan,
    base: &Path,
    reaper: &Reaper,
    revalidate: bool,
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
    let mut ports: Option<PortCheck> = None;
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
            Vec::new()
        }
    };

    // Rehearsal: everything short of starting. Services usually share their working
    // directory and often their program: each distinct one is looked at once.
    let stage = "rehearsal";
    let mut dirs: HashMap<std::path::PathBuf, (bool, bool)> = HashMap::new();
    let mut programs: HashMap<
        (String, Option<String>, std::path::PathBuf),
        Result<String, String>,
    > = HashMap::new();
    let mut hosts: HashMap<String, bool> = HashMap::new();
    for (i, u) in plan.units.iter().enumerate() {
        let s = &u.service;
        let name = s.name.value.as_str();
        if s.kind == Kind::External {
            continue;
        }
        let cwd = base.join(s.working_dir.as_deref().unwrap_or("."));
        let (is_dir, exists) = *dirs.entry(cwd.clone()).or_insert_with(|| {
            let is_dir = cwd.is_dir();
            (is_dir, is_dir || cwd.exists())
        });
        if !is_dir {
            b.push(
                stage,
                "working_dir",
                Some(name),
                Severity::Critical,
                false,
                if exists {
                    format!("{} is not a directory", cwd.display())
                } else {
                    format!("{} does not exist", cwd.display())
                },
                Some("create it or fix working_dir".into()),
            );
            continue;
        }
        let env: &[(String, String)] = match service_env(&global, s, base, &secrets) {
            Ok(e) => envs.0[i].insert(e),
            Err(e) => {
                b.push(
                    stage,
                    "env_file",
                    Some(name),
                    Severity::Critical,
                    false,
                    e,
                    Some("fix the path in env_file, or create the file".into()),
                );
                continue;
            }
        };
        if let Some(problem) = crate::env::empty_database(s, env) {
            b.push(
                stage,
                "database",
                Some(name),
                Severity::Critical,
                false,
                problem.message,
                Some(problem.hint),
            );
        }
        if let Some(cmd) = &s.command
            && let Some(program) = cmd.value.first()
        {
            // The search depends on the program, the service's PATH and its directory.
            let path_var = env
                .iter()
                .rev()
                .find(|(k, _)| k == "PATH")
                .map(|(_, v)| v.clone());
            let resolved = programs
                .entry((program.clone(), path_var, cwd.clone()))
                .or_insert_with(|| {
                    resolve_program(program, env, Some(&cwd))
                        .map(|path| path.display().to_string())
                        .map_err(|e| e.to_string())
                });
            match resolved {
                Ok(path) => b.push(stage, "command", Some(name), Severity::Critical, true, format!("{program} resolves to {path}"), None),
                Err(e) => b.push(stage, "command", Some(name), Severity::Critical, false, e.clone(), Some("install the program, fix its path (relative paths are relative to working_dir), or add it to PATH".into())),
            }
        }
        for port in implied_ports(s).into_iter().filter(|_| !revalidate) {
            if ports.get_or_insert_with(PortCheck::new).free(port) {
                b.push(
                    stage,
                    "port",
                    Some(name),
                    Severity::Critical,
                    true,
                    format!("port {port} is free"),
                    None,
                );
            } else {
                let holder = port_holder(port).unwrap_or_else(|| "an unknown process".into());
                b.push(
                    stage,
                    "port",
                    Some(name),
                    Severity::Critical,
                    false,
                    format!("port {port} is already in use by {holder}"),
                    Some(format!("stop {holder}, or move {name} to a free port")),
                );
            }
        }
        if let Some(argv) = s.preflight.as_ref().filter(|_| !revalidate) {
            let outcome = probe::exec(
                argv.clone(),
                env.to_vec(),
                Some(cwd.clone()),
                Duration::from_secs(30),
                reaper,
            )
            .await;
            b.push(
                stage,
                "preflight command",
                Some(name),
                Severity::Critical,
                outcome.ok,
                outcome.message,
                Some(format!(
                    "run `{}` in {} to see why it fails",
                    argv.join(" "),
                    cwd.display()
                )),
            );
        }
        for p in [&s.readiness, &s.liveness, &s.startup]
            .into_iter()
            .flatten()
        {
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
            if let Some(h) = host
                && h.parse::<std::net::IpAddr>().is_err()
            {
                let ok = match hosts.get(&h) {
                    Some(&ok) => ok,
                    None => {
                        let ok = match tokio::time::timeout(
                            Duration::from_secs(3),
                            tokio::net::lookup_host((h.as_str(), 0)),
                        )
                        .await
                        {
                            Ok(Ok(mut addrs)) => addrs.next().is_some(),
                            _ => false,
                        };
                        hosts.insert(h.clone(), ok);
                        ok
                    }
                };
                b.push(
                    stage,
                    "probe host",
                    Some(name),
                    Severity::Critical,
                    ok,
                    if ok {
                        format!("{h} resolves")
                    } else {
                        format!("{h} does not resolve")
                    },
                    Some("fix the host name in the probe, or add it to /etc/hosts".into()),
                );
            }
        }
    }
    // Limits of the machine.
    if let Ok((soft, _)) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
    {
        let need = 256 + 16 * plan.units.len() as u64;
        b.push(
            stage,
            "open files limit",
            None,
            Severity::Warning,
            soft >= need,
            format!(
                "soft limit {soft} (want at least {need} for {} services)",
                plan.units.len()
            ),
            Some(
                "raise it with `ulimit -n 65536` or LimitNOFILE in the unit that starts gantry"
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
            stage,
            "free disk",
            None,
            severity,
            mb >= 100,
            format!("{mb} MiB free in {}", probe_dir.display()),
            Some("free some space: logs and the state store live there".into()),
        );
    }

    // External services and stores must already answer.
    for u in plan
        .units
        .iter()
        .filter(|u| u.service.kind == Kind::External)
    {
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
        let outcome = match &p.kind {
            ProbeKind::Tcp(a) => probe::tcp(a, timeout).await,
            ProbeKind::Http {
                url,
                expect_status,
                expect_body,
            } => probe::http(url, *expect_status, expect_body.clone(), timeout).await,
            ProbeKind::Exec(argv) => {
                probe::exec(
                    argv.clone(),
                    global.clone(),
                    Some(base.to_path_buf()),
                    timeout,
                    reaper,
                )
                .await
            }
            k if crate::stores::is_store(k) => crate::stores::check(k, timeout, base).await,
            other => probe::ProbeOutcome {
                ok: true,
                message: format!("{} probe runs at boot", other.name()),
                duration: Duration::ZERO,
            },
        };
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

    // Coverage: gates that prove something, and services that recover.
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
                b.push("coverage", "liveness or restart", Some(name), Severity::Warning, false, "neither a liveness probe nor a restart policy: a hang or crash stays unnoticed".into(), Some("add liveness = { ... } or restart = \"on-failure\"".into()));
            }
        }
    }
    let coverage_pct = (held * 100).checked_div(rules).unwrap_or(100);
    (
        Report {
            checks: b.checks,
            coverage_pct,
        },
        secrets,
        envs,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_spec::StoreProbe;

    fn check(status: Status, service: Option<&str>, hint: Option<&str>) -> Check {
        Check {
            stage: "rehearsal",
            check: "command".into(),
            service: service.map(Into::into),
            severity: Severity::Critical,
            status,
            message: "say \"hi\"\n\tback\\slash ✓".into(),
            hint: hint.map(Into::into),
        }
    }

    fn store(url: &str) -> StoreProbe {
        StoreProbe {
            url: url.into(),
            rw: false,
            queues: vec![],
            require_dlq: false,
            streams: vec![],
        }
    }

    #[test]
    fn store_probes_name_their_host_and_port() {
        let cases = [
            (
                ProbeKind::Postgres(store("postgres://app:s3@127.0.0.1:5433/app")),
                Some("127.0.0.1:5433"),
            ),
            (
                ProbeKind::Postgres(store("postgres://app@localhost/app?sslmode=disable")),
                Some("localhost:5432"),
            ),
            (
                ProbeKind::Redis(store("redis://:pw@127.0.0.1:6390/0")),
                Some("127.0.0.1:6390"),
            ),
            (
                ProbeKind::Redis(store("redis://127.0.0.1")),
                Some("127.0.0.1:6379"),
            ),
            (
                ProbeKind::Mysql(store("mysql://root:x@[::1]:3307/db")),
                Some("[::1]:3307"),
            ),
            (
                ProbeKind::Mysql(store("mysql://root:x@[::1]/db")),
                Some("[::1]:3306"),
            ),
            (
                ProbeKind::Amqp(store("amqp://guest:guest@127.0.0.1/%2f")),
                Some("127.0.0.1:5672"),
            ),
            (
                ProbeKind::Nats(store("nats://127.0.0.1:4223")),
                Some("127.0.0.1:4223"),
            ),
            (ProbeKind::Sqlite(store("sqlite://data/app.db")), None),
            (ProbeKind::Postgres(store("postgres:///app")), None),
        ];
        for (kind, want) in cases {
            assert_eq!(store_host_port(&kind).as_deref(), want, "{kind:?}");
        }
    }

    #[test]
    fn one_warning_is_singular() {
        let mut warn = check(Status::Fail, None, None);
        warn.severity = Severity::Warning;
        let one = Report {
            checks: vec![check(Status::Pass, None, None), warn.clone()],
            coverage_pct: 100,
        };
        assert!(
            one.render()
                .contains("pre-flight: GO (2 checks, 1 warning)\n"),
            "{}",
            one.render()
        );
        let mut crit = check(Status::Fail, None, None);
        crit.severity = Severity::Critical;
        let no_go = Report {
            checks: vec![crit, warn.clone(), warn],
            coverage_pct: 100,
        };
        assert!(
            no_go.render().contains("NO-GO (1 critical, 2 warnings)"),
            "{}",
            no_go.render()
        );
    }

    #[test]
    fn the_event_line_is_the_document_the_value_tree_made() {
        for checks in [
            vec![],
            vec![
                check(Status::Pass, Some("db"), None),
                check(Status::Fail, None, Some("fix it")),
                check(Status::Skip, Some("api"), Some("")),
            ],
        ] {
            let report = Report {
                checks,
                coverage_pct: 67,
            };
            // What `gantry up --json` printed before the event was serialized directly.
            let tree = serde_json::json!({
                "event": "preflight",
                "report": {
                    "go": report.go(),
                    "verdict": if report.go() { "GO" } else { "NO-GO" },
                    "coverage_pct": report.coverage_pct,
                    "checks": report.checks,
                },
            });
            assert_eq!(report.event_json(), tree.to_string());
            assert_eq!(report.to_json(), tree["report"]);
        }
    }
}
