//! The key tables of `[flags]`, `[alerts]`, `[runbooks]` and `[slo]`.

use super::{Key, Ty, k};

/// The values `type` accepts in `[flags.NAME]`.
pub const FLAG_TYPES: &[&str] = &["bool", "string", "number", "object"];
/// The values `state` accepts in `[flags.NAME]`.
pub const FLAG_STATES: &[&str] = &["enabled", "disabled"];

pub static FLAG: &[Key] = &[
    k("description", Ty::Str, None, "What the flag is for."),
    k(
        "owner",
        Ty::Str,
        None,
        "Who owns the flag (a team or a person), shown by `gantry flag list`.",
    ),
    k(
        "type",
        Ty::Enum(FLAG_TYPES),
        None,
        "The type of the flag's values; when absent, inferred from the variants (all must agree).",
    ),
    k(
        "variants",
        Ty::MapOf(&Ty::Any, "VARIANT"),
        None,
        "Variant name → value, e.g. `{ on = true, off = false }` or `{ red = \"#f00\", blue = \"#00f\" }`.",
    ),
    k(
        "default",
        Ty::Str,
        None,
        "The variant served when no override or rule applies; one of `variants`.",
    ),
    k(
        "expires",
        Ty::Str,
        None,
        "A date `YYYY-MM-DD` after which `gantry check` warns that the flag should be removed.",
    ),
    k("tags", Ty::StrList, Some("[]"), "Free tags."),
    k(
        "state",
        Ty::Enum(FLAG_STATES),
        Some("\"enabled\""),
        "`disabled` serves no value (OFREP answers reason DISABLED; clients use their code default).",
    ),
];

pub static ALERTS: &[Key] = &[
    k(
        "webhook",
        Ty::Str,
        None,
        "An http:// or https:// URL: POST every notification here as Alertmanager-compatible JSON (version 4), so receivers written for Alertmanager work; retried with backoff, kept across restarts of gantry until delivered. https verifies the receiver's certificate (system roots, or `webhook_ca`).",
    ),
    k(
        "webhook_ca",
        Ty::Str,
        None,
        "A PEM file of the CA certificates an https webhook's certificate must chain to, instead of the system roots.",
    ),
    k(
        "exec",
        Ty::Command,
        None,
        "Run this command per notification with the Alertmanager JSON on stdin and in `GANTRY_ALERT_JSON`, in the file's directory (exit 0 = delivered; cut after 30 s). It gets no other environment: none of gantry's, no secret.",
    ),
    k(
        "log",
        Ty::Bool,
        Some("true"),
        "Print a line on gantry's output per notification.",
    ),
    k(
        "repeat_interval",
        Ty::Duration,
        Some("\"4h\""),
        "Notify a firing alert again this often.",
    ),
    k(
        "disabled",
        Ty::StrList,
        Some("[]"),
        "Built-in rules turned off: critical_service_down (P0), boot_no_go (P0), crash_loop (P1), breaker_open (P1), readiness_lost (P1), disk_low (P2), certificate_expiring (P2).",
    ),
    k(
        "rules",
        Ty::MapOf(&Ty::Table(ALERT_RULE), "NAME"),
        Some("{}"),
        "Rules of your own over gantry's signals, `[alerts.rules.NAME]`. A rule named like a built-in one overrides it: the keys you give replace the built-in's, the others stay (e.g. `[alerts.rules.readiness_lost] for = \"5m\"`, `except = [\"worker\"]`).",
    ),
];

pub static ALERT_RULE: &[Key] = &[
    k(
        "severity",
        Ty::Enum(&["P0", "P1", "P2"]),
        None,
        "P0 (respond within 5 minutes; opens an incident), P1 (15 minutes; opens an incident), P2 (1 hour).",
    ),
    k(
        "signal",
        Ty::Enum(crate::model::ALERT_SIGNALS),
        None,
        "What the rule watches, per service / route / path: service_down, service_unready, breaker_open, boot_no_go (0 or 1); service_restarts_total (restarts no command asked for), service_starting_seconds (how long a service has been starting after the boot: stuck), service_readiness_lost_total and service_probe_failures_total (a flapping probe), service_cpu_seconds_total, ingress_requests_total, ingress_failures_total (counters: give `window`); service_rss_bytes, disk_free_ratio (0-1, under the state dir), certificate_days_left (the ingress's certificates, and those of TLS probes, looked at hourly), ingress_p95_ms, ingress_p99_ms (a route's latency percentiles since gantry started), ingress_traffic_ratio (a route's requests in the last 15 minutes over the same 15 minutes a day earlier, once a day of history holds at least 100 requests there: `below = 0.5` is a traffic drop), ingress_instance_requests_total, ingress_instance_failures_total and ingress_instance_p99_ms (the same per instance of a replicated service: `ratio_of` spots one bad replica), missions_open.",
    ),
    k(
        "above",
        Ty::Any,
        None,
        "Fires while the value is above this number.",
    ),
    k(
        "below",
        Ty::Any,
        None,
        "Fires while the value is below this number.",
    ),
    k(
        "window",
        Ty::Duration,
        None,
        "For a counter: its increase over this window is judged (with `ratio_of`: the ratio of the two increases).",
    ),
    k(
        "ratio_of",
        Ty::Enum(crate::model::ALERT_SIGNALS),
        None,
        "A counter: the rule judges signal's increase / this counter's increase over `window` (e.g. ingress_failures_total over ingress_requests_total).",
    ),
    k(
        "min_volume",
        Ty::Int {
            min: 0,
            max: i64::MAX,
        },
        Some("0"),
        "With `ratio_of`: a window whose denominator grew by less is not judged (no alert on three requests).",
    ),
    k(
        "for",
        Ty::Duration,
        Some("\"0s\""),
        "The condition must hold this long before the alert fires.",
    ),
    k("service", Ty::Str, None, "Only this service's series."),
    k(
        "route",
        Ty::Str,
        None,
        "Only this ingress route's series (its path).",
    ),
    k("except", Ty::StrList, Some("[]"), "Never these services."),
    k(
        "summary",
        Ty::Str,
        None,
        "One line for people; `{service}`, `{route}`, `{path}`, `{target}` are replaced by the alert's labels.",
    ),
    k(
        "runbook",
        Ty::Str,
        None,
        "A `[runbooks.NAME]` shown with the alert; with `auto_runbook = true` it runs once per incident.",
    ),
    k(
        "labels",
        Ty::MapOf(&Ty::Str, "LABEL"),
        Some("{}"),
        "Labels added to the alert (`team = \"payments\"`), for routing in the receiver.",
    ),
    k(
        "auto_runbook",
        Ty::Bool,
        Some("false"),
        "Run `runbook` by itself when the alert fires, at most once per incident (a P0's auto-mitigation); every step is audited as `runbook:NAME` and on the incident's timeline.",
    ),
];

pub static RUNBOOK: &[Key] = &[
    k(
        "description",
        Ty::Str,
        None,
        "What the runbook is for, shown by `gantry runbook list`.",
    ),
    k(
        "steps",
        Ty::TableList(RUNBOOK_STEP),
        None,
        "The steps, in order (`[[runbooks.NAME.steps]]`), each exactly one action; a step that fails stops the runbook.",
    ),
];

pub static RUNBOOK_STEP: &[Key] = &[
    k(
        "drain",
        Ty::Str,
        None,
        "`\"on\"` or `\"off\"`: the write_drain kill switch.",
    ),
    k(
        "brownout",
        Ty::Str,
        None,
        "`\"on\"` or `\"off\"`: the brownout kill switch.",
    ),
    k(
        "emergency",
        Ty::Str,
        None,
        "`\"on\"` or `\"off\"`: the emergency kill switch.",
    ),
    k(
        "safe_mode",
        Ty::Str,
        None,
        "`\"on\"` or `\"off\"`: the safe_mode flag.",
    ),
    k(
        "flag",
        Ty::Any,
        None,
        "`{ key = \"NAME\", value = ..., expires = \"1h\" }`: a flag override.",
    ),
    k("start", Ty::Str, None, "A service to start."),
    k("stop", Ty::Str, None, "A service to stop."),
    k(
        "restart",
        Ty::Str,
        None,
        "A service to restart (a replicated one rolls).",
    ),
    k(
        "disable",
        Ty::Str,
        None,
        "A service to disable (kept stopped across restarts of gantry).",
    ),
    k("enable", Ty::Str, None, "A service to enable."),
    k(
        "quarantine",
        Ty::Str,
        None,
        "A service to freeze for inspection.",
    ),
    k("release", Ty::Str, None, "A quarantined service to thaw."),
    k(
        "rollback",
        Ty::Str,
        None,
        "A service whose rollout to abort: all traffic back to the stable release.",
    ),
    k(
        "rotate",
        Ty::Str,
        None,
        "A secret to rotate (its consumers restart).",
    ),
    k(
        "run",
        Ty::Command,
        None,
        "A command run in the stack's directory; a non-zero exit fails the step.",
    ),
    k(
        "timeout",
        Ty::Duration,
        Some("\"60s\""),
        "With `run`: how long the command may take.",
    ),
    k(
        "wait",
        Ty::Any,
        None,
        "`{ service = \"db\", state = \"ready\", timeout = \"60s\" }`: wait until the service (or, without `service`, the stack) is in that state.",
    ),
];

pub static SLO: &[Key] = &[
    k(
        "route",
        Ty::Str,
        None,
        "The path of one of the `[[ingress.routes]]`: the SLO is measured on its requests (failed = 5xx and upstream errors).",
    ),
    k(
        "availability",
        Ty::Str,
        None,
        "The objective, e.g. \"99.9%\", over `window`. gantry pages when the error budget burns at 14.4× over 1 h and 5 min (P0) or 6× over 6 h and 30 min (P1), and warns at 1× over 3 days and 6 h (P2) — the factors of a 30-day window (2 %, 5 % and 10 % of the budget spent over the long window); another window scales them (7 days: 3.36×, 1.4×, 1×), never below 1×.",
    ),
    k(
        "window",
        Ty::Duration,
        Some("\"30d\""),
        "The window the objective is over, and so its error budget (what may fail over it): between 1h and 90d. The burn-rate rules' own windows (1 h, 6 h, 3 days and their short ones) stay.",
    ),
    k(
        "min_requests",
        Ty::Int {
            min: 1,
            max: i64::MAX,
        },
        Some("100"),
        "A window with fewer requests is not judged (no alert on three requests).",
    ),
];
