//! Plan unit → engine unit configuration: the one place where the spec's types and defaults become the engine's.
//!
//! User-visible defaults (`start_timeout` per kind) come from the key registry
//! (`gantry_spec::keys`), so `docs/config.md` shows the values applied here. The rest are
//! engine tuning the file does not expose; they are named below.

use crate::build::{Plan, PlanUnit};
use gantry_engine as eng;
use gantry_spec::{Condition, Kind, Priority, Probe, ProbeKind, Restart, keys};
use std::time::Duration;

/// Boot polling floor of a tcp probe: a loopback connect costs microseconds, so readiness
/// is seen within a millisecond.
pub const TCP_MIN_INTERVAL: Duration = Duration::from_millis(1);
/// Boot polling floor of an http probe (a request and a response).
pub const HTTP_MIN_INTERVAL: Duration = Duration::from_millis(2);
/// Boot polling floor of every other polled probe (exec, stores): each costs a process
/// or a connection handshake.
pub const OTHER_MIN_INTERVAL: Duration = Duration::from_millis(10);

/// How the engine schedules a probe of this kind: pushed ones (a log line, sd_notify)
/// are never polled; cheap ones are polled fast at boot.
pub fn probe_mode(kind: &ProbeKind) -> eng::ProbeMode {
    let min_interval = match kind {
        ProbeKind::Log(_) | ProbeKind::Notify => return eng::ProbeMode::Pushed,
        ProbeKind::Tcp(_) => TCP_MIN_INTERVAL,
        ProbeKind::Http { .. } => HTTP_MIN_INTERVAL,
        _ => OTHER_MIN_INTERVAL,
    };
    eng::ProbeMode::Polled { min_interval }
}

/// The engine's view of a probe: its schedule and thresholds. A `watchdog` (notify
/// liveness only, checked by the decoder) makes it a watchdog whose period is that interval.
pub fn probe_config(p: &Probe) -> eng::ProbeConfig {
    let (mode, period) = match p.watchdog {
        Some(interval) => (eng::ProbeMode::Watchdog, interval.0),
        None => (probe_mode(&p.kind), p.period.0),
    };
    eng::ProbeConfig {
        mode,
        initial_delay: p.initial_delay.0,
        period,
        timeout: p.timeout.0,
        success_threshold: p.success_threshold,
        failure_threshold: p.failure_threshold,
    }
}

/// `start_timeout` when the service sets none (the registry's documented defaults).
pub fn default_start_timeout(kind: Kind) -> Duration {
    if kind.is_oneshot() {
        keys::START_TIMEOUT_ONESHOT
    } else {
        keys::START_TIMEOUT
    }
}

impl PlanUnit {
    /// The engine's configuration of this unit.
    pub fn engine_config(&self) -> eng::UnitConfig {
        let s = &self.service;
        let kind = match s.kind {
            Kind::Process => eng::UnitKind::Process,
            Kind::Task | Kind::Migrate => eng::UnitKind::Task,
            Kind::External => eng::UnitKind::External,
        };
        let mut c = eng::UnitConfig::new(s.name.value.clone(), kind);
        c.priority = match s.priority {
            Priority::Critical => eng::Priority::Critical,
            Priority::High => eng::Priority::High,
            Priority::Medium => eng::Priority::Medium,
            Priority::Low => eng::Priority::Low,
        };
        c.deps = self
            .deps
            .iter()
            .map(|d| eng::Dep {
                unit: eng::UnitId(d.unit),
                condition: match d.condition {
                    Condition::Started => eng::Condition::Started,
                    Condition::Ready => eng::Condition::Ready,
                    Condition::Completed => eng::Condition::Completed,
                },
                required: d.required && !d.instance,
            })
            .collect();
        c.layer = self.layer;
        c.startup = s.startup.as_deref().map(probe_config);
        c.readiness = s.readiness.as_deref().map(probe_config);
        c.liveness = s.liveness.as_deref().map(probe_config);
        c.restart = match s.restart {
            Restart::Never => eng::RestartPolicy::Never,
            Restart::OnFailure => eng::RestartPolicy::OnFailure,
            Restart::Always => eng::RestartPolicy::Always,
        };
        c.retry = eng::RetryPolicy {
            attempts: s.retry.attempts,
            backoff: s.retry.backoff.0,
            max_backoff: s.retry.max_backoff.0,
            jitter: s.retry.jitter,
        };
        c.start_timeout = Some(
            s.start_timeout
                .map_or_else(|| default_start_timeout(s.kind), |d| d.0),
        );
        c.stop_timeout = s.stop_timeout.0;
        c.has_cleanup = s.cleanup.is_some();
        c.start_limit = eng::StartLimit {
            burst: s.start_limit.burst,
            interval: s.start_limit.interval.0,
        };
        c.breaker = s.start_breaker.map(|b| eng::BreakerConfig {
            failures: b.failures,
            cooldown: b.cooldown.0,
        });
        c.healthy_after = s.healthy_after.0;
        c.start_grace = s.start_grace.0;
        c
    }
}

impl Plan {
    /// The engine's configuration of every unit, in plan order (index = `UnitId`).
    pub fn unit_configs(&self) -> Vec<eng::UnitConfig> {
        self.units.iter().map(PlanUnit::engine_config).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_spec::{Source, decode};

    fn plan(text: &str) -> Plan {
        let source = Source::new("gantry.toml", text);
        let loaded = decode(&source, &|_| None);
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        let (plan, diags) = crate::build(&loaded.spec, &source, &Default::default());
        assert!(diags.is_empty(), "{diags:?}");
        plan
    }

    #[test]
    fn defaults_come_from_the_registry_and_the_engine_tuning() {
        let p = plan(
            r#"
[services.db]
command = "db"
readiness = { tcp = "127.0.0.1:5432" }
[services.api]
command = "api"
depends_on = { db = "ready" }
readiness = { http = "http://127.0.0.1:8000/" }
liveness = { log = "up" }
startup = { exec = "true" }
[services.migrate]
kind = "task"
command = "m"
[services.own]
command = "x"
start_timeout = "5s"
healthy_after = "2.5s"
start_grace = "0s"
"#,
        );
        let c = p.unit_configs();
        assert_eq!(c.len(), 4);
        let by = |n: &str| c.iter().find(|u| u.name == n).unwrap();
        assert_eq!(by("db").start_timeout, Some(keys::START_TIMEOUT));
        assert_eq!(
            by("migrate").start_timeout,
            Some(keys::START_TIMEOUT_ONESHOT)
        );
        assert_eq!(by("own").start_timeout, Some(Duration::from_secs(5)));
        assert_eq!(by("db").healthy_after, keys::HEALTHY_AFTER);
        assert_eq!(by("own").healthy_after, Duration::from_millis(2500));
        assert_eq!(by("db").start_grace, keys::START_GRACE);
        assert_eq!(by("own").start_grace, Duration::ZERO);
        let mode = |u: &eng::UnitConfig, r| u.probe(r).map(|p| p.mode);
        assert_eq!(
            mode(by("db"), eng::ProbeRole::Readiness),
            Some(eng::ProbeMode::Polled {
                min_interval: TCP_MIN_INTERVAL
            })
        );
        let api = by("api");
        assert_eq!(
            mode(api, eng::ProbeRole::Readiness),
            Some(eng::ProbeMode::Polled {
                min_interval: HTTP_MIN_INTERVAL
            })
        );
        assert_eq!(
            mode(api, eng::ProbeRole::Liveness),
            Some(eng::ProbeMode::Pushed)
        );
        assert_eq!(
            mode(api, eng::ProbeRole::Startup),
            Some(eng::ProbeMode::Polled {
                min_interval: OTHER_MIN_INTERVAL
            })
        );
        let db = p.index("db").unwrap();
        assert_eq!(
            api.deps,
            [eng::Dep::hard(eng::UnitId(db), eng::Condition::Ready)]
        );
    }

    #[test]
    fn a_notify_liveness_watchdog_becomes_an_engine_watchdog_of_that_period() {
        let p = plan(
            r#"
[services.watched]
command = "w"
liveness = { notify = true, watchdog = "2s", period = "9s", failure_threshold = 1 }
[services.ready_only]
command = "r"
readiness = { notify = true }
"#,
        );
        let c = p.unit_configs();
        let by = |n: &str| c.iter().find(|u| u.name == n).unwrap();
        let live = by("watched").liveness.expect("liveness");
        assert_eq!(live.mode, eng::ProbeMode::Watchdog);
        assert_eq!(live.period, Duration::from_secs(2));
        assert_eq!(live.failure_threshold, 1);
        let ready = by("ready_only").readiness.expect("readiness");
        assert_eq!(ready.mode, eng::ProbeMode::Pushed);
    }
}
