//! The GO/NO-GO pre-flight: config and secrets, a dry-run rehearsal (commands, dirs, ports, limits, DNS, preflight commands), external stores, the certificates of reachable TLS endpoints, coverage.
//!
//! Everything is checked before anything starts; every check has a severity
//! (critical → NO-GO, warning → GO with a note), says what failed and what to do.
//! Secret values never appear in a check's text: only names and where they were looked for.

mod ports;
mod rehearsal;
mod secrets;

pub use ports::{implied_ports, port_holder};

use crate::env::SecretValue;
use crate::reaper::Reaper;
use gantry_plan::Plan;
use gantry_spec::{Secret, Spec};
use gantry_state::missions::NewMission;
use secrets::secrets;
use serde::Serialize;
use std::path::Path;

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

pub(super) struct Builder {
    pub(super) checks: Vec<Check>,
}

impl Builder {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn push(
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
    // How limits would be enforced is found the way `gantry up` finds it (gantry's own
    // groups are made, and removed again when `limits` is dropped); the running instance
    // already said it at its start.
    let limits = (!revalidate).then(|| crate::resource::Limiter::detect(plan));
    let (report, secrets, _) =
        rehearsal::rehearse(spec, plan, base, reaper, revalidate, limits.as_ref()).await;
    (report, secrets)
}

/// Each service's environment as the pre-flight built it, by plan unit index (`None`
/// where it was not built: external services, a missing working directory or env file).
/// `gantry up` spawns with these instead of building them a second time. Holds secret
/// values, so its `Debug` shows only how many there are.
#[derive(Default)]
pub struct ServiceEnvs(Vec<Option<crate::envset::Env>>);

impl std::fmt::Debug for ServiceEnvs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let built = self.0.iter().filter(|e| e.is_some()).count();
        write!(f, "ServiceEnvs({built} built)")
    }
}

impl ServiceEnvs {
    /// Takes the environment built for unit `i`, if any.
    pub fn take(&mut self, i: usize) -> Option<crate::envset::Env> {
        self.0.get_mut(i).and_then(Option::take)
    }
}

/// The pre-flight for `gantry up`: also hands back every service's environment. `limits`
/// is the limiter the boot will use (the pre-flight says how it enforces each limit).
pub async fn run_for_up(
    spec: &Spec,
    plan: &Plan,
    base: &Path,
    reaper: &Reaper,
    limits: &crate::resource::Limiter,
) -> (Report, Vec<SecretValue>, ServiceEnvs) {
    rehearsal::rehearse(spec, plan, base, reaper, false, Some(limits)).await
}

#[cfg(test)]
mod tests {
    use super::ports::store_host_port;
    use super::*;
    use gantry_spec::ProbeKind;
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
            tls: Default::default(),
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
            (
                ProbeKind::Amqp(store("amqps://guest:guest@127.0.0.1/%2f")),
                Some("127.0.0.1:5671"),
            ),
            (
                ProbeKind::Redis(store("rediss://127.0.0.1")),
                Some("127.0.0.1:6379"),
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
