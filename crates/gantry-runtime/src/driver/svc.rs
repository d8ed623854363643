//! What the driver keeps per service beside the engine: how to spawn it, its probes (one executor per role), its log, its last lines, its live incarnation.

use crate::notify::NotifySocket;
use crate::probe::LogMatcher;
use crate::process::SpawnSpec;
use gantry_engine as eng;
use gantry_engine::ProbeRole;
use gantry_plan::PlanUnit;
use gantry_spec::{Kind, Probe, ProbeKind};
use gantry_state::logfmt::{LogFile, Rotation};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use tokio::time::Instant;

/// Per-service I/O state the engine does not own.
pub(super) struct Svc {
    pub(super) name: String,
    pub(super) spawn: Result<SpawnSpec, String>,
    pub(super) cleanup: Option<Vec<String>>,
    /// Startup, readiness, liveness (see [`role_index`]).
    /// Boxed: a probe's definition is a few hundred bytes and most services have one role
    /// of three.
    probes: [Option<Box<RoleProbe>>; 3],
    pub(super) notify: Option<Arc<NotifySocket>>,
    pub(super) stop_signal: nix::sys::signal::Signal,
    pub(super) log: Option<LogFile>,
    /// In the driver's list of logs to flush (it wrote a line since its file was closed).
    pub(super) log_busy: bool,
    pub(super) tail: VecDeque<String>,
    /// Per stream (out, err): the end of a cut line held back until the next chunk
    /// shows whether a secret straddles the cut (`Redactor::redact_stream`).
    pub(super) carry: [String; 2],
    /// (generation, pid) of the live incarnation.
    pub(super) live: Option<(eng::Gen, u32)>,
    pub(super) status_text: Option<String>,
    /// When the current incarnation was spawned.
    pub(super) spawned_at: Option<Instant>,
    /// Bytes of output in flight to the loop (see output.rs), and lines dropped so far.
    pub(super) budget: Arc<tokio::sync::Semaphore>,
    pub(super) dropped: u64,
    /// Spawns retried in a row because gantry was out of descriptors.
    pub(super) fd_retries: u32,
}

impl Svc {
    /// The probe of one role, if the service has one.
    pub(super) fn role(&self, role: ProbeRole) -> Option<&RoleProbe> {
        self.probes[role_index(role)].as_deref()
    }

    /// Whether `line` passes the service's log probe of `role`.
    pub(super) fn log_match(&self, role: ProbeRole, line: &str) -> bool {
        self.role(role)
            .and_then(|p| p.matcher.as_ref())
            .is_some_and(|m| m.matches(line))
    }

    /// The keep-alive interval of a notify liveness probe with a `watchdog`.
    pub(super) fn watchdog(&self) -> Option<std::time::Duration> {
        self.role(ProbeRole::Liveness)
            .filter(|p| p.is_notify())
            .and_then(|p| p.probe.watchdog)
            .map(|d| d.0)
    }

    /// Loopback addresses the listen watch looks for on behalf of `role`'s tcp probe.
    pub(super) fn listen_targets(&self, role: ProbeRole) -> &[std::net::SocketAddr] {
        self.role(role).map_or(&[], |p| &p.listen)
    }
}

impl Svc {
    /// Takes on what a reloaded definition (`new`, from [`make_svc`]) says: how to spawn,
    /// probe, stop, clean up and log it. What belongs to the running incarnation (its
    /// pid, last lines, output budget, and its log file unless `logs_changed`) stays.
    /// Returns true when the service now needs a notify listener it did not have.
    pub(super) fn take_definition(&mut self, new: Svc, logs_changed: bool) -> bool {
        self.spawn = new.spawn;
        self.cleanup = new.cleanup;
        self.probes = new.probes;
        self.stop_signal = new.stop_signal;
        let listen = match (&self.notify, new.notify) {
            // The socket (and its listener) of the running incarnation stays.
            (Some(_), Some(_)) => false,
            (None, Some(n)) => {
                self.notify = Some(n);
                true
            }
            (_, None) => {
                self.notify = None;
                false
            }
        };
        if logs_changed {
            if let Some(log) = &mut self.log {
                let _ = log.flush();
            }
            self.log = new.log;
        }
        listen
    }
}

/// One probe of one role, with what running it needs prepared once.
pub(super) struct RoleProbe {
    pub(super) probe: Probe,
    /// The compiled pattern of a `log` probe.
    matcher: Option<LogMatcher>,
    /// Loopback addresses of a `tcp` probe (empty: not loopback, connect every time).
    listen: Vec<std::net::SocketAddr>,
}

impl RoleProbe {
    fn new(probe: &Probe) -> RoleProbe {
        RoleProbe {
            matcher: match &probe.kind {
                ProbeKind::Log(re) => Some(LogMatcher::from(re.clone())),
                _ => None,
            },
            listen: match &probe.kind {
                ProbeKind::Tcp(addr) => loopback_targets(addr),
                _ => Vec::new(),
            },
            probe: probe.clone(),
        }
    }

    /// A pushed sd_notify probe.
    pub(super) fn is_notify(&self) -> bool {
        matches!(self.probe.kind, ProbeKind::Notify)
    }
}

fn role_index(role: ProbeRole) -> usize {
    match role {
        ProbeRole::Startup => 0,
        ProbeRole::Readiness => 1,
        ProbeRole::Liveness => 2,
    }
}

pub(super) fn make_svc(
    u: &PlanUnit,
    env: Result<crate::envset::Env, String>,
    base: &Path,
    state_dir: &Path,
    file: &str,
) -> Result<Svc, String> {
    let s = &u.service;
    let cwd = base.join(s.working_dir.as_deref().unwrap_or("."));
    let spawn = (|| -> Result<SpawnSpec, String> {
        let env = env?;
        let argv = if s.kind == Kind::Migrate {
            // A migrate service is gantry's own migrator run as a one-shot task, so it
            // gets the same gates, retries, logs and records as any other service.
            let exe = std::env::current_exe()
                .map_err(|e| format!("cannot find the gantry binary: {e}"))?;
            let file =
                std::fs::canonicalize(file).map_err(|e| format!("cannot resolve {file}: {e}"))?;
            vec![
                exe.display().to_string(),
                "-f".into(),
                file.display().to_string(),
                "migrate".into(),
                "up".into(),
                "--service".into(),
                s.name.value.clone(),
            ]
        } else {
            s.command
                .as_ref()
                .map(|c| c.value.clone())
                .unwrap_or_default()
        };
        let Some((program, args)) = argv.split_first() else {
            return Err("no command".into());
        };
        Ok(SpawnSpec {
            program: program.clone(),
            args: args.to_vec(),
            env,
            cwd: Some(cwd.clone()),
            notify_socket: None,
            watchdog: None,
            confine: None,
        })
    })();
    // A notify liveness probe with a watchdog: the service learns the interval (and its
    // pid) from WATCHDOG_USEC and WATCHDOG_PID.
    let watchdog = s
        .liveness
        .as_ref()
        .filter(|p| p.kind == ProbeKind::Notify)
        .and_then(|p| p.watchdog)
        .map(|d| d.0);
    let spawn = spawn.map(|spec| SpawnSpec { watchdog, ..spec });
    let probes = [&s.startup, &s.readiness, &s.liveness]
        .map(|p| p.as_ref().map(|p| Box::new(RoleProbe::new(p))));
    let notify = if probes.iter().flatten().any(|p| p.is_notify()) {
        Some(Arc::new(NotifySocket::bind(&s.name.value).map_err(
            |e| format!("{}: cannot create the sd_notify socket: {e}", s.name.value),
        )?))
    } else {
        None
    };
    let stop_signal = s
        .stop_signal
        .value
        .parse()
        .unwrap_or(nix::sys::signal::Signal::SIGTERM);
    let log = if s.kind == Kind::External {
        None
    } else {
        // Its `logs` (over `[defaults]` and `[settings]`): rotated at max_size, `keep`
        // old files kept.
        LogFile::lazy(state_dir, &s.name.value).ok().map(|log| {
            log.with_rotation(Rotation {
                max_size: s.logs.max_size,
                keep: s.logs.keep,
            })
        })
    };
    Ok(Svc {
        name: s.name.value.clone(),
        spawn,
        cleanup: s.cleanup.clone(),
        probes,
        notify,
        stop_signal,
        log,
        // Grows with the output: a quiet service holds no room for lines it never printed.
        tail: VecDeque::new(),
        carry: Default::default(),
        live: None,
        status_text: None,
        spawned_at: None,
        budget: super::output::budget(),
        dropped: 0,
        log_busy: false,
        fd_retries: 0,
    })
}

/// The loopback socket addresses a tcp probe address stands for (empty: not loopback,
/// so the listen watch cannot see it — it only sees gantry's own network namespace).
fn loopback_targets(addr: &str) -> Vec<std::net::SocketAddr> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        return match sa.ip() {
            ip if ip.is_loopback() => vec![sa],
            // A connect to the unspecified address goes to this host.
            IpAddr::V4(ip) if ip.is_unspecified() => {
                vec![SocketAddr::new(Ipv4Addr::LOCALHOST.into(), sa.port())]
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                vec![SocketAddr::new(Ipv6Addr::LOCALHOST.into(), sa.port())]
            }
            _ => Vec::new(),
        };
    }
    match addr.rsplit_once(':') {
        Some(("localhost", port)) => match port.parse::<u16>() {
            Ok(port) => vec![
                SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port),
                SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port),
            ],
            Err(_) => Vec::new(),
        },
        _ => Vec::new(),
    }
}
