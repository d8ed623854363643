//! Starting `gantry rollout NAME`: the request's body (what changes, the steps and thresholds,
//! the strategy), checked against the service, and the canary (or the green set) set going.
//! The running rollout is rollout.rs.

use std::collections::BTreeMap;

use gantry_engine as eng;
use gantry_engine::UnitId;
use gantry_ingress::{Sticky, Tally};
use gantry_rollout::{OnMaxHold, Plan, Rollout, Strategy, Thresholds};
use serde::Deserialize;
use tokio::time::Instant;

use super::Driver;
use super::rollout::{Active, Changes, FileRelease, Task};

/// The body of `POST /api/v1/services/{name}/rollout` (the CLI sends the same).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    #[serde(default)]
    set_env: BTreeMap<String, String>,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    steps: Option<Vec<u8>>,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    max_error_ratio: Option<f64>,
    #[serde(default)]
    max_p99: Option<String>,
    #[serde(default)]
    min_requests: Option<u64>,
    #[serde(default)]
    max_hold: Option<String>,
    #[serde(default)]
    on_max_hold: Option<String>,
    #[serde(default)]
    sticky_cookie: Option<String>,
    #[serde(default)]
    sticky_header: Option<String>,
    /// `canary` or `blue_green` (`blue-green`); the default is the service's `rollout.strategy`.
    #[serde(default)]
    strategy: Option<String>,
    /// Blue/green: the pre-promotion check URL (`${PORT}`: each green instance's port).
    #[serde(default)]
    check: Option<String>,
}

fn duration_ms(field: &str, text: &Option<String>, default: u64) -> Result<u64, String> {
    match text {
        None => Ok(default),
        Some(t) => gantry_spec::duration::parse_duration(t)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .map_err(|e| format!("{field}: {e} (e.g. \"30s\", \"300ms\", \"5m\")")),
    }
}

impl Driver {
    /// Starts a canary rollout of `service`; the API's answer.
    pub(super) fn rollout_start(
        &mut self,
        service: &str,
        body: &serde_json::Value,
        file: Option<FileRelease>,
    ) -> Result<String, String> {
        let req: StartBody = serde_json::from_value(body.clone())
            .map_err(|e| format!("rollout of {service}: invalid request: {e}"))?;
        if let Some(a) = &self.rollout
            && a.service == service
            && a.task != Task::Done
        {
            return Err(format!(
                "a rollout of {service} is in progress ({}); `gantry rollout abort {service}` ends it",
                a.rollout.phase.name()
            ));
        }
        if let Some(a) = &self.rollout
            && a.task != Task::Done
        {
            return Err(format!(
                "a rollout of {} is in progress; one rollout at a time",
                a.service
            ));
        }
        if self.rolling.is_some() {
            return Err(
                "a rolling restart is in progress; start the rollout once it is done".into(),
            );
        }
        // The service's `[services.NAME.rollout]` (the file's, for a release from the file).
        let conf = file
            .as_ref()
            .and_then(|f| f.base.as_ref())
            .or_else(|| self.file_service(service))
            .and_then(|s| s.rollout.clone())
            .unwrap_or_default();
        let blue_green = match req.strategy.as_deref() {
            None => conf.strategy == gantry_spec::RolloutStrategy::BlueGreen,
            Some("canary") => false,
            Some("blue_green" | "blue-green") => true,
            Some(other) => {
                return Err(format!(
                    "strategy: `{other}` is neither `canary` nor `blue-green`"
                ));
            }
        };
        let Some(group) = self.plan.replica_group(service) else {
            if self.plan.index(service).is_some() {
                return Err(format!(
                    "{service} runs one instance: a rollout needs `replicas` (2 or more for a canary) and `replica_ports` under [services.{service}] (then `gantry reload`)"
                ));
            }
            return Err(format!("unknown service `{service}`"));
        };
        if !blue_green && group.units.len() < 2 {
            return Err(format!(
                "{service} runs one instance: a canary rollout needs `replicas = 2` or more under [services.{service}] (then `gantry reload`)"
            ));
        }
        let routed = self.ingress.as_ref().is_some_and(|i| i.routes(service));
        if !routed {
            return Err(format!(
                "{service} has no ingress route: a canary is weighed by the ingress; add an [[ingress.routes]] entry with service = \"{service}\" (and an [ingress] listener)"
            ));
        }
        let canary = UnitId(*group.units.last().unwrap_or(&0));
        let stable = self.svcs[canary.0]
            .spawn
            .clone()
            .map_err(|e| format!("{service}: its definition cannot be spawned: {e}"))?;
        let command = match &req.command {
            None => None,
            Some(c) => match shlex::split(c) {
                Some(argv) if !argv.is_empty() => Some(argv),
                _ => {
                    return Err(format!(
                        "command: cannot split `{c}` into words (check its quotes)"
                    ));
                }
            },
        };
        for k in req.set_env.keys() {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(format!("set_env: `{k}` is not a variable name"));
            }
        }
        let changes = Changes {
            set_env: req.set_env.clone(),
            command,
            file,
        };
        if changes.set_env.is_empty() && changes.command.is_none() && changes.file.is_none() {
            return Err(
                "nothing to roll out: edit the service in gantry.toml (the new release is its definition there), or give --set-env K=V or --command \"...\" (the running definition with those changes)".into(),
            );
        }
        let defaults = Plan::canary();
        let ms = |d: gantry_spec::Dur| u64::try_from(d.0.as_millis()).unwrap_or(u64::MAX);
        let thresholds = Thresholds {
            max_error_ratio: req
                .max_error_ratio
                .or(conf.max_error_ratio)
                .unwrap_or(defaults.thresholds.max_error_ratio),
            max_p99_ms: match &req.max_p99 {
                None => conf.max_p99.map(|d| ms(d) as f64),
                Some(_) => Some(duration_ms("max_p99", &req.max_p99, 0)? as f64),
            },
            min_requests: req
                .min_requests
                .or(conf.min_requests)
                .unwrap_or(defaults.thresholds.min_requests),
        };
        let check = req.check.clone().or(conf.check.clone());
        if let Some(c) = &check
            && !(c.starts_with("http://") || c.starts_with("https://"))
        {
            return Err(format!(
                "check: `{c}` is not an http(s) URL (e.g. http://127.0.0.1:${{PORT}}/smoke)"
            ));
        }
        if !blue_green && check.is_some() {
            return Err("check: a pre-promotion check is for `--strategy blue-green`".into());
        }
        let on_max_hold = match req.on_max_hold.as_deref() {
            None | Some("pause") => OnMaxHold::Pause,
            Some("rollback") => OnMaxHold::Rollback,
            Some(other) => {
                return Err(format!(
                    "on_max_hold: `{other}` is neither `pause` nor `rollback`"
                ));
            }
        };
        let strategy = if blue_green {
            Strategy::BlueGreen
        } else {
            Strategy::Canary {
                steps: req.steps.clone().or(conf.steps.clone()).unwrap_or(
                    match defaults.strategy {
                        Strategy::Canary { steps } => steps,
                        Strategy::BlueGreen => vec![100],
                    },
                ),
            }
        };
        let plan = Plan {
            strategy,
            interval_ms: duration_ms(
                "interval",
                &req.interval,
                conf.interval.map_or(defaults.interval_ms, ms),
            )?,
            thresholds,
            max_hold_ms: duration_ms("max_hold", &req.max_hold, defaults.max_hold_ms)?,
            on_max_hold,
        };
        let problems = plan.check();
        if !problems.is_empty() {
            return Err(format!("rollout of {service}: {}", problems.join("; ")));
        }
        let sticky = match (&req.sticky_cookie, &req.sticky_header) {
            (Some(_), Some(_)) => {
                return Err("give --sticky-cookie or --sticky-header, not both".into());
            }
            (Some(c), None) => Some(Sticky::Cookie(c.clone())),
            (None, Some(h)) => Some(Sticky::Header(h.clone())),
            (None, None) => None,
        };
        let (rollout, outputs) = Rollout::start(plan);
        let canary_name = self.plan.units[canary.0].name().to_string();
        // A release from the file runs the migrate services the service hard-depends on first
        // (their pending migrations: the new release may need them); never a down-migration.
        let mut migrations: Vec<(UnitId, eng::Gen)> = Vec::new();
        if changes.file.is_some() {
            for &i in &group.units {
                for d in self.plan.units[i].deps.iter().filter(|d| d.required) {
                    let m = UnitId(d.unit);
                    if self.plan.units[d.unit].service.kind == gantry_spec::Kind::Migrate
                        && !migrations.iter().any(|(u, _)| *u == m)
                    {
                        migrations.push((m, self.host.engine().unit(m).r#gen));
                    }
                }
            }
        }
        self.rollout = Some(Active {
            green: blue_green.then(|| super::bluegreen::Green::new(check.clone())),
            migrations: migrations.clone(),
            held: Vec::new(),
            service: service.to_string(),
            rollout,
            epoch: Instant::now(),
            canary,
            canary_name: canary_name.clone(),
            stable,
            changes,
            sticky,
            step_tally: Tally::default(),
            task: Task::Idle,
            weight: 0,
            aborting: false,
            analyses: 0,
            stable_release: None,
            new_release: None,
        });
        self.record_new_release();
        let steps = match &self
            .rollout
            .as_ref()
            .map(|a| a.rollout.plan.strategy.clone())
        {
            Some(Strategy::Canary { steps }) => steps
                .iter()
                .map(|s| format!("{s} %"))
                .collect::<Vec<_>>()
                .join(" → "),
            _ => String::new(),
        };
        let first = if migrations.is_empty() {
            self.rollout_outputs(outputs);
            String::new()
        } else {
            let names: Vec<String> = migrations
                .iter()
                .map(|(u, _)| self.plan.units[u.0].name().to_string())
                .collect();
            for (u, _) in &migrations {
                self.host.command(eng::Command::Restart(*u));
            }
            if let Some(a) = &mut self.rollout {
                a.held = outputs;
                a.task = Task::Migrating;
            }
            self.out.gantry_line(&format!(
                "{service}: rollout: running {} first (pending migrations of the new release)",
                names.join(", ")
            ));
            format!("first {} completes, then ", names.join(", "))
        };
        if blue_green {
            let interval = self
                .rollout
                .as_ref()
                .map_or(0, |a| a.rollout.plan.interval_ms);
            let count = self
                .plan
                .replica_group(service)
                .map_or(0, |g| g.units.len());
            return Ok(format!(
                "blue/green rollout of {service}: {first}{} green instances start beside the running ones, take all traffic in one switch once ready{}, then their traffic is analysed for {interval} ms (a breach switches back at once); `gantry rollout status {service}` follows it",
                count,
                if check.is_some() { " and checked" } else { "" },
            ));
        }
        Ok(format!(
            "rollout of {service}: {first}canary {canary_name} restarts with the new release (no traffic until ready), then {steps}, each step analysed; `gantry rollout status {service}` follows it"
        ))
    }
}
