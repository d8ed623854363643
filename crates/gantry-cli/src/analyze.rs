//! `gantry analyze`: where the last boot spent its time — critical chain, blame, comparison with the previous boot, SVG waterfall.
//!
//! The data comes from the state store (`<state_dir>/state.db`) that `gantry up` fills in
//! when a boot is decided; the dependencies come from the stack file's plan. Everything
//! below [`run`] is pure (records in, text out) so it is tested without a database.

use crate::Outcome;
use crate::load::load;
use gantry_runtime::store::{ServiceRecord, Store};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Output format of `gantry analyze`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AnalyzeFormat {
    Text,
    Json,
    Svg,
}

/// A boot is a regression for a service when it got ready more than this much slower…
pub const REGRESSION_PCT: u64 = 20;
/// …and more than this many milliseconds slower.
pub const REGRESSION_MS: u64 = 50;

/// A decided boot and its services' timings.
#[derive(Debug, Clone, PartialEq)]
pub struct Boot {
    pub id: i64,
    pub started_at: String,
    /// `go`, `degraded` or `no-go` as recorded.
    pub outcome: String,
    pub duration_ms: u64,
    pub reason: Option<String>,
    pub services: Vec<ServiceRecord>,
}

/// Each service's dependencies by name (from the plan).
pub type Deps = HashMap<String, Vec<String>>;

/// `gantry analyze`: reads the last decided boot (and the one before with `compare`) and prints
/// the critical chain (text), the blame list (`blame`), a comparison, JSON or an SVG waterfall.
pub fn run(
    file: &Path,
    format: AnalyzeFormat,
    compare: bool,
    blame: bool,
) -> anyhow::Result<Outcome> {
    if compare && format == AnalyzeFormat::Svg {
        eprintln!(
            "error: --compare cannot be drawn as SVG; the waterfall shows one boot\n  hint: use `gantry analyze --compare` (text) or `--compare --format json`"
        );
        return Ok(Outcome::Usage);
    }
    let checked = match load(file, &Default::default()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Outcome::Usage);
        }
    };
    if checked.has_errors() && format != AnalyzeFormat::Svg {
        eprintln!(
            "warning: {} has errors, so dependencies may be missing from the critical chain\n  hint: run `gantry check` for details",
            checked.source.path
        );
    }
    let plan = &checked.plan;
    let deps: Deps = plan
        .units
        .iter()
        .map(|u| {
            let names = u.deps.iter().map(|d| plan.units[d.unit].name().to_string());
            (u.name().to_string(), names.collect())
        })
        .collect();

    let state_dir = state_dir(file, &checked.spec.settings.state_dir);
    let boots = read_boots(&state_dir, if compare { 2 } else { 1 })?;
    let current = &boots[0]; // read_boots returns at least one or an error
    let previous = if compare {
        let Some(prev) = boots.get(1) else {
            anyhow::bail!(
                "only one decided boot (#{}) in {}: nothing to compare with\n  hint: run `gantry up` again, then `gantry analyze --compare`",
                current.id,
                state_dir.join("state.db").display()
            );
        };
        Some(prev)
    } else {
        None
    };

    let text = match format {
        AnalyzeFormat::Svg => render_svg(current, &deps),
        AnalyzeFormat::Json => {
            let value = to_json(current, &deps, blame, previous);
            format!("{}\n", serde_json::to_string_pretty(&value)?)
        }
        AnalyzeFormat::Text => match previous {
            Some(prev) => render_compare(current, prev, blame),
            None if blame => format!("{}\n\n{}", header(current), render_blame(&current.services)),
            None => render_text(current, &deps),
        },
    };
    crate::emit(&text);
    Ok(Outcome::Success)
}

/// `state_dir` from the file, relative to the file's directory (shown as the user would type it).
pub fn state_dir(file: &Path, state_dir: &str) -> PathBuf {
    match file.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(base) => base.join(state_dir),
        None => PathBuf::from(state_dir),
    }
}

/// The newest `count` decided boots, newest first; at least one or an error saying what to do.
fn read_boots(state_dir: &Path, count: usize) -> anyhow::Result<Vec<Boot>> {
    let db = state_dir.join("state.db");
    if !db.exists() {
        anyhow::bail!(
            "no boot recorded in {} yet\n  hint: run `gantry up` first",
            db.display()
        );
    }
    let Some(store) = Store::open_existing(state_dir) else {
        anyhow::bail!(
            "cannot open the state store {}\n  hint: check that it is readable",
            db.display()
        );
    };
    let records = store.decided_boots(count).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the boot history in {}: {e}\n  hint: is it a gantry state store? moving it aside starts a new history",
            db.display()
        )
    })?;
    if records.is_empty() {
        if let Some((id, _, _)) = store.last_boot() {
            anyhow::bail!(
                "boot #{id} in {} is not decided yet (still booting, or `gantry up` was stopped before GO/NO-GO)\n  hint: wait for `gantry up` to print its verdict, then run this again",
                db.display()
            );
        }
        anyhow::bail!(
            "no boot recorded in {} yet\n  hint: run `gantry up` first",
            db.display()
        );
    }
    records
        .into_iter()
        .map(|b| {
            let services = store.boot_services(b.id).map_err(|e| {
                anyhow::anyhow!(
                    "cannot read the services of boot #{} in {}: {e}",
                    b.id,
                    db.display()
                )
            })?;
            Ok(Boot {
                id: b.id,
                started_at: b.started_at,
                outcome: b.outcome.unwrap_or_default(),
                duration_ms: b.duration_ms.unwrap_or(0).max(0) as u64,
                reason: b.reason,
                services,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Pure logic

/// Time from the first spawn to ready/completed; None when it never got there (or never spawned).
pub fn to_ready(s: &ServiceRecord) -> Option<u64> {
    match (s.started_ms, s.ready_ms) {
        (Some(start), Some(ready)) => Some(ready.saturating_sub(start)),
        _ => None,
    }
}

/// The critical chain, like `systemd-analyze critical-chain`: starts at the service that became
/// ready last and walks back, each time to the dependency that became ready last among those
/// ready by the time the service was spawned (the one that held it back). Last-ready first.
pub fn critical_chain<'a>(services: &'a [ServiceRecord], deps: &Deps) -> Vec<&'a ServiceRecord> {
    let by_name: HashMap<&str, &ServiceRecord> =
        services.iter().map(|s| (s.name.as_str(), s)).collect();
    let Some(mut cur) = services
        .iter()
        .filter(|s| s.ready_ms.is_some())
        .max_by(|a, b| {
            a.ready_ms
                .cmp(&b.ready_ms)
                .then_with(|| b.name.cmp(&a.name))
        })
    else {
        return Vec::new();
    };
    let mut chain = vec![cur];
    let mut seen: HashSet<&str> = HashSet::from([cur.name.as_str()]);
    loop {
        let gate = cur.started_ms.or(cur.ready_ms).unwrap_or(u64::MAX);
        let next = deps
            .get(&cur.name)
            .into_iter()
            .flatten()
            .filter_map(|d| by_name.get(d.as_str()).copied())
            .filter(|d| d.ready_ms.is_some_and(|r| r <= gate) && !seen.contains(d.name.as_str()))
            .max_by(|a, b| {
                a.ready_ms
                    .cmp(&b.ready_ms)
                    .then_with(|| b.name.cmp(&a.name))
            });
        let Some(next) = next else { break };
        seen.insert(next.name.as_str());
        chain.push(next);
        cur = next;
    }
    chain
}

/// Every service, slowest to get ready first (like `systemd-analyze blame`); services that never
/// got ready come last (failed first), by name.
pub fn blame_order(services: &[ServiceRecord]) -> Vec<&ServiceRecord> {
    let mut out: Vec<&ServiceRecord> = services.iter().collect();
    out.sort_by(|a, b| match (to_ready(a), to_ready(b)) {
        (Some(x), Some(y)) => y.cmp(&x).then_with(|| a.name.cmp(&b.name)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => (a.state != "failed", a.ready_ms.is_none(), &a.name).cmp(&(
            b.state != "failed",
            b.ready_ms.is_none(),
            &b.name,
        )),
    });
    out
}

/// Boot order: by spawn time, then ready time, then name; never-started services last.
fn boot_order(services: &[ServiceRecord]) -> Vec<&ServiceRecord> {
    let mut out: Vec<&ServiceRecord> = services.iter().collect();
    out.sort_by_key(|s| {
        (
            s.started_ms.or(s.ready_ms).unwrap_or(u64::MAX),
            s.ready_ms.unwrap_or(u64::MAX),
            s.name.clone(),
        )
    });
    out
}

/// One service's time to ready in two boots.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    pub name: String,
    /// Time to ready in the previous boot (None: not ready, or absent).
    pub previous_ms: Option<u64>,
    pub current_ms: Option<u64>,
    /// Whether the service was in the previous boot at all.
    pub in_previous: bool,
    pub in_current: bool,
    /// The current state (empty when the service is gone).
    pub state: String,
    /// Slower by more than [`REGRESSION_PCT`] % and [`REGRESSION_MS`] ms, or failed where it
    /// was ready before.
    pub regression: bool,
}

impl Delta {
    pub fn delta_ms(&self) -> Option<i64> {
        Some(self.current_ms? as i64 - self.previous_ms? as i64)
    }

    /// Relative change in percent; None without both times or when the previous time was 0.
    pub fn delta_pct(&self) -> Option<f64> {
        let prev = self.previous_ms.filter(|&p| p > 0)?;
        Some(self.delta_ms()? as f64 * 100.0 / prev as f64)
    }
}

/// Whether going from `previous` to `current` ms is a regression.
pub fn is_regression(previous: u64, current: u64) -> bool {
    let slower = current.saturating_sub(previous);
    slower > REGRESSION_MS && slower * 100 > previous * REGRESSION_PCT
}

/// Per-service comparison of two boots, in the order of the current boot's blame list, then the
/// services that are gone.
pub fn compare(previous: &[ServiceRecord], current: &[ServiceRecord]) -> Vec<Delta> {
    let prev: HashMap<&str, &ServiceRecord> =
        previous.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut out: Vec<Delta> = blame_order(current)
        .into_iter()
        .map(|c| {
            let p = prev.get(c.name.as_str());
            let previous_ms = p.and_then(|p| to_ready(p));
            let current_ms = to_ready(c);
            let regression = match (previous_ms, current_ms) {
                (Some(p), Some(n)) => is_regression(p, n),
                (Some(_), None) => c.state == "failed",
                _ => false,
            };
            Delta {
                name: c.name.clone(),
                previous_ms,
                current_ms,
                in_previous: p.is_some(),
                in_current: true,
                state: c.state.clone(),
                regression,
            }
        })
        .collect();
    let names: HashSet<&str> = current.iter().map(|s| s.name.as_str()).collect();
    let mut gone: Vec<&ServiceRecord> = previous
        .iter()
        .filter(|p| !names.contains(p.name.as_str()))
        .collect();
    gone.sort_by(|a, b| a.name.cmp(&b.name));
    out.extend(gone.into_iter().map(|p| Delta {
        name: p.name.clone(),
        previous_ms: to_ready(p),
        current_ms: None,
        in_previous: true,
        in_current: false,
        state: String::new(),
        regression: false,
    }));
    out
}

// ---------------------------------------------------------------------------------------------
// Formatting

/// `340 ms`, `1.24 s`, `2 min 5.3 s`.
pub fn fmt_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.2} s", ms as f64 / 1000.0)
    } else {
        format!("{} min {:.1} s", ms / 60_000, (ms % 60_000) as f64 / 1000.0)
    }
}

/// `+340 ms`, `-1.20 s`, `+0 ms`.
pub fn fmt_delta(ms: i64) -> String {
    let sign = if ms < 0 { '-' } else { '+' };
    format!("{sign}{}", fmt_ms(ms.unsigned_abs()))
}

fn fmt_pct(pct: f64) -> String {
    format!("{:+}%", pct.round() as i64)
}

fn outcome_label(outcome: &str) -> String {
    outcome.to_uppercase()
}

/// `boot #12 at 2026-11-24T07:41:00.123Z: GO in 1.24 s` (with the reason when there is one).
pub fn header(boot: &Boot) -> String {
    let mut out = format!(
        "boot #{} at {}: {} in {}",
        boot.id,
        boot.started_at,
        outcome_label(&boot.outcome),
        fmt_ms(boot.duration_ms)
    );
    if let Some(reason) = &boot.reason {
        let _ = write!(out, " ({reason})");
    }
    out
}

fn attempts_note(s: &ServiceRecord) -> String {
    if s.attempts > 1 {
        format!(" ({} attempts)", s.attempts)
    } else {
        String::new()
    }
}

/// What happened to a service that never got ready: `FAILED after 3 attempts: exit code 1`.
fn not_ready_note(s: &ServiceRecord) -> String {
    let mut out = match s.state.as_str() {
        "failed" => "FAILED".to_string(),
        "skipped" => "skipped (never started)".to_string(),
        _ if s.started_ms.is_none() => format!("{} (never started)", s.state),
        other => format!("{other} (not ready)"),
    };
    if s.attempts > 1 {
        let _ = write!(out, " after {} attempts", s.attempts);
    }
    if let Some(e) = &s.error {
        let _ = write!(out, ": {e}");
    }
    out
}

/// The critical chain as text, last-ready service first, like systemd-analyze.
pub fn render_chain(chain: &[&ServiceRecord]) -> String {
    let mut out =
        String::from("critical chain (@ = when it became ready, + = time from spawn to ready):\n");
    if chain.is_empty() {
        out.push_str("  (no service became ready)\n");
        return out;
    }
    for (depth, s) in chain.iter().enumerate() {
        let indent = if depth == 0 {
            String::new()
        } else {
            format!("{}└─", "  ".repeat(depth - 1))
        };
        let ready = s.ready_ms.map_or_else(|| "-".to_string(), fmt_ms);
        let _ = write!(out, "{indent}{} @{ready}", s.name);
        if let Some(t) = to_ready(s) {
            let _ = write!(out, " +{}", fmt_ms(t));
        }
        out.push_str(&attempts_note(s));
        out.push('\n');
    }
    out
}

/// Lines of left-aligned columns (the last column is not padded).
fn table(rows: &[Vec<String>], right_aligned: &[bool]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            let w = widths[c];
            if right_aligned.get(c).copied().unwrap_or(false) {
                let _ = write!(line, "{cell:>w$}");
            } else if c + 1 < row.len() {
                let _ = write!(line, "{cell:<w$}");
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn opt_ms(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_string(), fmt_ms)
}

/// Per-service times in boot order.
pub fn render_times(services: &[ServiceRecord]) -> String {
    let mut rows = vec![vec![
        "service".to_string(),
        "state".into(),
        "spawned".into(),
        "ready".into(),
        "to ready".into(),
        "attempts".into(),
        "error".into(),
    ]];
    for s in boot_order(services) {
        rows.push(vec![
            s.name.clone(),
            s.state.clone(),
            s.started_ms.map_or_else(|| "never".to_string(), fmt_ms),
            opt_ms(s.ready_ms),
            opt_ms(to_ready(s)),
            s.attempts.to_string(),
            s.error.clone().unwrap_or_default(),
        ]);
    }
    table(&rows, &[false, false, true, true, true, true, false])
}

/// The default text report: header, critical chain, per-service times.
pub fn render_text(boot: &Boot, deps: &Deps) -> String {
    let chain = critical_chain(&boot.services, deps);
    format!(
        "{}\n\n{}\n{}",
        header(boot),
        render_chain(&chain),
        render_times(&boot.services)
    )
}

/// Slowest first, like `systemd-analyze blame`; attempts and failures marked.
pub fn render_blame(services: &[ServiceRecord]) -> String {
    let order = blame_order(services);
    let width = order
        .iter()
        .map(|s| opt_ms(to_ready(s)).len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for s in order {
        let t = opt_ms(to_ready(s));
        let _ = write!(out, "{t:>width$} {}", s.name);
        if to_ready(s).is_some() {
            out.push_str(&attempts_note(s));
            if s.state == "failed" {
                out.push_str(" FAILED later");
            }
        } else {
            let _ = write!(out, " {}", not_ready_note(s));
        }
        out.push('\n');
    }
    if services.is_empty() {
        out.push_str("(no services recorded)\n");
    }
    out
}

/// `api +340 ms (+45%)` or `worker FAILED (was 200 ms)`.
fn regression_summary(d: &Delta) -> String {
    match (d.delta_ms(), d.delta_pct()) {
        (Some(delta), Some(pct)) => format!("{} {} ({})", d.name, fmt_delta(delta), fmt_pct(pct)),
        (Some(delta), None) => format!("{} {}", d.name, fmt_delta(delta)),
        _ => format!("{} FAILED (was ready in {})", d.name, opt_ms(d.previous_ms)),
    }
}

/// The comparison of two boots; regressions marked `!` and summed up on the last line.
pub fn render_compare(current: &Boot, previous: &Boot, blame: bool) -> String {
    let mut out = format!("{}\n", header(current));
    let total = current.duration_ms as i64 - previous.duration_ms as i64;
    let _ = writeln!(
        out,
        "compared with {} — {}",
        header(previous),
        match (previous.duration_ms > 0).then(|| total as f64 * 100.0 / previous.duration_ms as f64)
        {
            Some(pct) => format!("{} ({})", fmt_delta(total), fmt_pct(pct)),
            None => fmt_delta(total),
        }
    );
    out.push('\n');
    let mut deltas = compare(&previous.services, &current.services);
    if !blame {
        // Without `blame`, the services that changed most come first.
        deltas.sort_by_key(|d| {
            (
                !d.regression,
                std::cmp::Reverse(d.delta_ms().unwrap_or(i64::MIN)),
            )
        });
    }
    let mut rows = vec![vec![
        "  service".to_string(),
        "before".into(),
        "now".into(),
        "delta".into(),
    ]];
    for d in &deltas {
        let change = if !d.in_current {
            "gone".to_string()
        } else if !d.in_previous {
            "new".to_string()
        } else {
            match (d.delta_ms(), d.delta_pct()) {
                (Some(delta), Some(pct)) => format!("{} ({})", fmt_delta(delta), fmt_pct(pct)),
                (Some(delta), None) => fmt_delta(delta),
                (_, _) if d.current_ms.is_none() => d.state.clone(),
                _ => "-".to_string(),
            }
        };
        rows.push(vec![
            format!("{} {}", if d.regression { '!' } else { ' ' }, d.name),
            opt_ms(d.previous_ms),
            opt_ms(d.current_ms),
            change,
        ]);
    }
    out.push_str(&table(&rows, &[false, true, true, false]));
    out.push('\n');
    let regressions: Vec<String> = deltas
        .iter()
        .filter(|d| d.regression)
        .map(regression_summary)
        .collect();
    match regressions.len() {
        0 => {
            let _ = writeln!(
                out,
                "no regressions (a regression is slower by more than {REGRESSION_PCT}% and {REGRESSION_MS} ms)"
            );
        }
        n => {
            let _ = writeln!(
                out,
                "{n} regression{}: {}",
                if n == 1 { "" } else { "s" },
                regressions.join(", ")
            );
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// JSON

fn boot_json(boot: &Boot) -> serde_json::Value {
    serde_json::json!({
        "id": boot.id,
        "started_at": boot.started_at,
        "outcome": boot.outcome,
        "duration_ms": boot.duration_ms,
        "reason": boot.reason,
    })
}

fn service_json(s: &ServiceRecord) -> serde_json::Value {
    serde_json::json!({
        "name": s.name,
        "state": s.state,
        "priority": s.priority,
        "started_ms": s.started_ms,
        "ready_ms": s.ready_ms,
        "to_ready_ms": to_ready(s),
        "attempts": s.attempts,
        "error": s.error,
    })
}

/// The machine-readable report: `boot`, `critical_chain` (in boot order: first-ready first),
/// `services` (blame order with `blame`, boot order otherwise) and, with a previous boot,
/// `compare`.
pub fn to_json(
    boot: &Boot,
    deps: &Deps,
    blame: bool,
    previous: Option<&Boot>,
) -> serde_json::Value {
    let chain = critical_chain(&boot.services, deps);
    let services = if blame {
        blame_order(&boot.services)
    } else {
        boot_order(&boot.services)
    };
    let mut value = serde_json::json!({
        "boot": boot_json(boot),
        "critical_chain": chain.iter().rev().map(|s| serde_json::json!({
            "name": s.name,
            "ready_ms": s.ready_ms,
            "to_ready_ms": to_ready(s),
        })).collect::<Vec<_>>(),
        "services": services.into_iter().map(service_json).collect::<Vec<_>>(),
    });
    if let Some(prev) = previous {
        let deltas = compare(&prev.services, &boot.services);
        value["compare"] = serde_json::json!({
            "previous": boot_json(prev),
            "threshold": { "pct": REGRESSION_PCT, "ms": REGRESSION_MS },
            "services": deltas.iter().map(|d| serde_json::json!({
                "name": d.name,
                "previous_ms": d.previous_ms,
                "current_ms": d.current_ms,
                "delta_ms": d.delta_ms(),
                "delta_pct": d.delta_pct().map(|p| (p * 10.0).round() / 10.0),
                "status": if !d.in_current { "gone" } else if !d.in_previous { "new" } else { d.state.as_str() },
                "regression": d.regression,
            })).collect::<Vec<_>>(),
            "regressions": deltas.iter().filter(|d| d.regression).map(|d| d.name.as_str()).collect::<Vec<_>>(),
        });
    }
    value
}

// ---------------------------------------------------------------------------------------------
// SVG

/// Escapes text for XML content and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// A round tick step (1, 2 or 5 × 10ⁿ ms) giving at most about `max_ticks` ticks over `total` ms.
pub fn tick_step(total: u64, max_ticks: u64) -> u64 {
    let want = total.div_ceil(max_ticks.max(1)).max(1);
    let mut magnitude = 1u64;
    loop {
        for m in [1, 2, 5] {
            let step = magnitude.saturating_mul(m);
            if step >= want {
                return step;
            }
        }
        magnitude = magnitude.saturating_mul(10);
    }
}

/// The text right of a bar: `+600 ms (2 attempts)` or what went wrong.
fn bar_label(s: &ServiceRecord) -> String {
    match to_ready(s) {
        Some(t) => format!("+{}{}", fmt_ms(t), attempts_note(s)),
        None => not_ready_note(s),
    }
}

/// Colour and legend of a bar.
fn bar_style(s: &ServiceRecord) -> (&'static str, &'static str) {
    match s.state.as_str() {
        "failed" => ("#d64541", "failed"),
        _ if s.ready_ms.is_none() => ("#9e9e9e", "not ready"),
        _ if s.attempts > 1 => ("#e0a030", "ready after retries"),
        "completed" => ("#4a7fc1", "completed"),
        "degraded" => ("#e0a030", "ready after retries"),
        _ => ("#3c9a5f", "ready"),
    }
}

const LEGEND: [(&str, &str); 5] = [
    ("#3c9a5f", "ready"),
    ("#4a7fc1", "completed"),
    ("#e0a030", "ready after retries"),
    ("#d64541", "failed"),
    ("#9e9e9e", "not ready"),
];

/// A standalone SVG waterfall: one bar per service from spawn to ready (to the boot decision
/// when it never got ready), coloured by outcome, the critical chain outlined, a time axis.
pub fn render_svg(boot: &Boot, deps: &Deps) -> String {
    const ROW: f64 = 24.0;
    const BAR: f64 = 16.0;
    const CHART: f64 = 800.0;
    const TOP: f64 = 64.0;
    let order = boot_order(&boot.services);
    let chain: HashSet<&str> = critical_chain(&boot.services, deps)
        .into_iter()
        .map(|s| s.name.as_str())
        .collect();
    let total = boot
        .services
        .iter()
        .flat_map(|s| [s.started_ms, s.ready_ms])
        .flatten()
        .chain([boot.duration_ms])
        .max()
        .unwrap_or(0)
        .max(1);
    let longest = order
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(0);
    let left = (longest as f64 * 7.5 + 24.0).clamp(90.0, 320.0);
    let rows = order.len().max(1) as f64;
    // Room right of the chart for the longest bar label (bars may end at the right edge).
    let right = order
        .iter()
        .map(|s| bar_label(s).chars().count())
        .max()
        .map_or(0.0, |n| n as f64 * 7.0 + 24.0)
        .max(140.0);
    let width = left + CHART + right;
    let height = TOP + rows * ROW + 64.0;
    let x = |ms: u64| left + ms as f64 / total as f64 * CHART;

    let mut out = String::new();
    let _ = writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="12">"#
    );
    let title = xml_escape(&header(boot));
    let _ = writeln!(out, "<title>{title}</title>");
    let _ = writeln!(
        out,
        r##"<rect x="0" y="0" width="{width:.0}" height="{height:.0}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        out,
        r#"<text x="10" y="22" font-size="15" font-weight="bold">{title}</text>"#
    );

    // Time axis: grid lines and labels every tick.
    let step = tick_step(total, 10);
    let axis_y = TOP - 8.0;
    let bottom = TOP + rows * ROW;
    let _ = writeln!(
        out,
        r##"<g class="axis" stroke="#cccccc" stroke-width="1">"##
    );
    let _ = writeln!(
        out,
        r#"<line x1="{left:.1}" y1="{axis_y:.1}" x2="{:.1}" y2="{axis_y:.1}"/>"#,
        left + CHART
    );
    let mut tick = 0;
    while tick <= total {
        let tx = x(tick);
        let _ = writeln!(
            out,
            r#"<line x1="{tx:.1}" y1="{:.1}" x2="{tx:.1}" y2="{bottom:.1}"/>"#,
            axis_y - 4.0
        );
        let Some(next) = tick.checked_add(step) else {
            break;
        };
        tick = next;
    }
    let _ = writeln!(out, "</g>");
    let _ = writeln!(
        out,
        r##"<g class="ticks" fill="#555555" text-anchor="middle">"##
    );
    let mut tick = 0;
    while tick <= total {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            x(tick),
            axis_y - 8.0,
            xml_escape(&fmt_ms(tick))
        );
        let Some(next) = tick.checked_add(step) else {
            break;
        };
        tick = next;
    }
    let _ = writeln!(out, "</g>");

    // One row per service.
    for (i, s) in order.iter().enumerate() {
        let y = TOP + i as f64 * ROW;
        let name = xml_escape(&s.name);
        let bold = if chain.contains(s.name.as_str()) {
            r#" font-weight="bold""#
        } else {
            ""
        };
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end"{bold}>{name}</text>"#,
            left - 8.0,
            y + BAR - 3.0
        );
        let Some(start) = s.started_ms.or(s.ready_ms) else {
            let _ = writeln!(
                out,
                r##"<text x="{:.1}" y="{:.1}" fill="#777777">{} (never started)</text>"##,
                left + 4.0,
                y + BAR - 3.0,
                xml_escape(&s.state)
            );
            continue;
        };
        let end = s.ready_ms.unwrap_or(boot.duration_ms).max(start);
        let (colour, _) = bar_style(s);
        let stroke = if chain.contains(s.name.as_str()) {
            r##" stroke="#000000" stroke-width="1.5""##
        } else {
            ""
        };
        let bar_w = (x(end) - x(start)).max(1.5);
        let label = bar_label(s);
        let tooltip = format!(
            "{}: {} — spawned {}, ready {}{}",
            s.name,
            s.state,
            opt_ms(s.started_ms),
            opt_ms(s.ready_ms),
            attempts_note(s)
        );
        let _ = writeln!(
            out,
            r#"<rect x="{:.1}" y="{y:.1}" width="{bar_w:.1}" height="{BAR:.1}" rx="2" fill="{colour}"{stroke}><title>{}</title></rect>"#,
            x(start),
            xml_escape(&tooltip)
        );
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" fill="#333333">{}</text>"##,
            x(start) + bar_w + 6.0,
            y + BAR - 3.0,
            xml_escape(&label)
        );
    }

    // The boot decision.
    let dx = x(boot.duration_ms);
    let _ = writeln!(
        out,
        r##"<line x1="{dx:.1}" y1="{axis_y:.1}" x2="{dx:.1}" y2="{bottom:.1}" stroke="#000000" stroke-width="1" stroke-dasharray="4 3"/>"##
    );
    let _ = writeln!(
        out,
        r#"<text x="{dx:.1}" y="{:.1}" text-anchor="middle" font-weight="bold">{} @{}</text>"#,
        bottom + 16.0,
        xml_escape(&outcome_label(&boot.outcome)),
        xml_escape(&fmt_ms(boot.duration_ms))
    );

    // Legend.
    let ly = bottom + 40.0;
    let mut lx = left;
    for (colour, label) in LEGEND {
        let _ = writeln!(
            out,
            r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{colour}"/><text x="{:.1}" y="{:.1}">{label}</text>"#,
            ly - 10.0,
            lx + 16.0,
            ly
        );
        lx += 30.0 + label.len() as f64 * 7.0;
    }
    let _ = writeln!(
        out,
        r##"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="#ffffff" stroke="#000000" stroke-width="1.5"/><text x="{:.1}" y="{ly:.1}">critical chain</text>"##,
        ly - 10.0,
        lx + 16.0
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, started: Option<u64>, ready: Option<u64>) -> ServiceRecord {
        ServiceRecord {
            name: name.into(),
            state: if ready.is_some() { "ready" } else { "failed" }.into(),
            priority: "normal".into(),
            started_ms: started,
            ready_ms: ready,
            attempts: 1,
            error: None,
        }
    }

    fn deps(pairs: &[(&str, &[&str])]) -> Deps {
        pairs
            .iter()
            .map(|(n, ds)| (n.to_string(), ds.iter().map(|d| d.to_string()).collect()))
            .collect()
    }

    fn boot(id: i64, duration: u64, services: Vec<ServiceRecord>) -> Boot {
        Boot {
            id,
            started_at: "2026-11-24T07:41:00.123Z".into(),
            outcome: "go".into(),
            duration_ms: duration,
            reason: None,
            services,
        }
    }

    /// db → api → web, cache (fast) → web, migrate needs db but is not on the chain.
    fn sample() -> (Vec<ServiceRecord>, Deps) {
        let mut api = svc("api", Some(330), Some(930));
        api.attempts = 2;
        let services = vec![
            api,
            svc("cache", Some(0), Some(50)),
            svc("db", Some(0), Some(330)),
            svc("migrate", Some(330), Some(400)),
            svc("web", Some(930), Some(1240)),
        ];
        let d = deps(&[
            ("api", &["db", "cache"]),
            ("web", &["api", "cache"]),
            ("migrate", &["db"]),
        ]);
        (services, d)
    }

    fn names(list: &[&ServiceRecord]) -> Vec<String> {
        list.iter().map(|s| s.name.clone()).collect()
    }

    #[test]
    fn critical_chain_walks_back_through_the_latest_dependency() {
        let (services, d) = sample();
        let chain = critical_chain(&services, &d);
        assert_eq!(names(&chain), ["web", "api", "db"]);
    }

    #[test]
    fn critical_chain_ignores_dependencies_ready_after_the_spawn() {
        // `worker` only waited for `queue` to start: queue got ready after worker spawned.
        let services = vec![
            svc("queue", Some(0), Some(700)),
            svc("db", Some(0), Some(100)),
            svc("worker", Some(120), Some(900)),
        ];
        let d = deps(&[("worker", &["queue", "db"])]);
        assert_eq!(names(&critical_chain(&services, &d)), ["worker", "db"]);
    }

    #[test]
    fn critical_chain_edge_cases() {
        assert!(critical_chain(&[], &Deps::new()).is_empty());
        let services = vec![svc("a", Some(0), None)];
        assert!(critical_chain(&services, &Deps::new()).is_empty());
        // A dependency cycle in stale data does not loop forever.
        let services = vec![svc("a", Some(10), Some(10)), svc("b", Some(10), Some(10))];
        let d = deps(&[("a", &["b"]), ("b", &["a"])]);
        assert_eq!(names(&critical_chain(&services, &d)), ["a", "b"]);
        // Unknown dependency names (service removed from the file) are skipped.
        let d = deps(&[("a", &["ghost", "b"])]);
        assert_eq!(names(&critical_chain(&services, &d)), ["a", "b"]);
    }

    #[test]
    fn chain_text_looks_like_systemd() {
        let (services, d) = sample();
        let text = render_chain(&critical_chain(&services, &d));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "web @1.24 s +310 ms");
        assert_eq!(lines[2], "└─api @930 ms +600 ms (2 attempts)");
        assert_eq!(lines[3], "  └─db @330 ms +330 ms");
    }

    #[test]
    fn blame_sorts_slowest_first_and_failures_last() {
        let (mut services, _) = sample();
        let mut worker = svc("worker", Some(400), None);
        worker.attempts = 3;
        worker.error = Some("exit code 1".into());
        services.push(worker);
        let mut skipped = svc("late", None, None);
        skipped.state = "skipped".into();
        services.push(skipped);
        assert_eq!(
            names(&blame_order(&services)),
            ["api", "db", "web", "migrate", "cache", "worker", "late"]
        );
        let text = render_blame(&services);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "600 ms api (2 attempts)");
        assert_eq!(lines[1], "330 ms db");
        assert_eq!(lines[4], " 50 ms cache");
        assert_eq!(
            lines[5],
            "     - worker FAILED after 3 attempts: exit code 1"
        );
        assert_eq!(lines[6], "     - late skipped (never started)");
    }

    #[test]
    fn regression_threshold_needs_both_percent_and_ms() {
        assert!(!is_regression(1000, 1040)); // +4%, +40 ms
        assert!(!is_regression(1000, 1150)); // +15%, +150 ms
        assert!(!is_regression(100, 140)); // +40%, +40 ms
        assert!(is_regression(100, 151)); // +51%, +51 ms
        assert!(is_regression(1000, 1201)); // +20.1%, +201 ms
        assert!(!is_regression(1000, 1200)); // exactly 20%
        assert!(is_regression(0, 60));
        assert!(!is_regression(500, 100)); // faster
    }

    #[test]
    fn compare_flags_regressions() {
        let (prev, _) = sample();
        let mut cur = prev.clone();
        // api: 600 → 940 ms (+57%), db: 330 → 320, web: 310 → 430 (+39%), cache removed, new svc.
        cur[0].ready_ms = Some(1270);
        cur[2].ready_ms = Some(320);
        cur[4].ready_ms = Some(1360);
        cur.remove(1);
        cur.push(svc("search", Some(0), Some(100)));
        let deltas = compare(&prev, &cur);
        let get = |n: &str| deltas.iter().find(|d| d.name == n).unwrap();
        assert!(get("api").regression);
        assert_eq!(get("api").delta_ms(), Some(340));
        assert!(get("web").regression);
        assert!(!get("db").regression);
        assert_eq!(get("db").delta_ms(), Some(-10));
        assert!(!get("search").in_previous && !get("search").regression);
        assert!(!get("cache").in_current);
        assert_eq!(deltas.last().unwrap().name, "cache");

        let text = render_compare(&boot(12, 1400, cur), &boot(11, 1240, prev), false);
        let last = text.lines().last().unwrap();
        assert_eq!(
            last,
            "2 regressions: api +340 ms (+57%), web +120 ms (+39%)"
        );
        assert!(text.contains("compared with boot #11"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("! api") && l.ends_with("+340 ms (+57%)")),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.contains("search") && l.ends_with("new"))
        );
        assert!(
            text.lines()
                .any(|l| l.contains("cache") && l.ends_with("gone"))
        );
    }

    #[test]
    fn compare_counts_a_new_failure_and_reports_no_regressions() {
        let prev = vec![svc("a", Some(0), Some(100))];
        let mut failed = svc("a", Some(0), None);
        failed.attempts = 3;
        let deltas = compare(&prev, &[failed.clone()]);
        assert!(deltas[0].regression);
        let text = render_compare(
            &boot(2, 900, vec![failed]),
            &boot(1, 100, prev.clone()),
            false,
        );
        assert!(
            text.ends_with("1 regression: a FAILED (was ready in 100 ms)\n"),
            "{text}"
        );

        let text = render_compare(&boot(2, 100, prev.clone()), &boot(1, 100, prev), true);
        assert!(
            text.lines().last().unwrap().starts_with("no regressions"),
            "{text}"
        );
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_ms(0), "0 ms");
        assert_eq!(fmt_ms(999), "999 ms");
        assert_eq!(fmt_ms(1240), "1.24 s");
        assert_eq!(fmt_ms(125_300), "2 min 5.3 s");
        assert_eq!(fmt_delta(-1200), "-1.20 s");
        assert_eq!(fmt_delta(0), "+0 ms");
        assert_eq!(fmt_pct(44.6), "+45%");
        let mut b = boot(12, 1240, vec![]);
        assert_eq!(
            header(&b),
            "boot #12 at 2026-11-24T07:41:00.123Z: GO in 1.24 s"
        );
        b.outcome = "no-go".into();
        b.reason = Some("api: exit code 1".into());
        assert!(header(&b).ends_with(": NO-GO in 1.24 s (api: exit code 1)"));
    }

    #[test]
    fn text_report_has_header_chain_and_times() {
        let (services, d) = sample();
        let text = render_text(&boot(12, 1240, services), &d);
        assert!(text.starts_with("boot #12 at 2026-11-24T07:41:00.123Z: GO in 1.24 s\n\n"));
        assert!(text.contains("\nweb @1.24 s +310 ms\n"), "{text}");
        let times: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("service"))
            .collect();
        assert_eq!(times.len(), 6, "{text}");
        assert!(
            times[1].starts_with("cache") && times[2].starts_with("db"),
            "{text}"
        );
        assert!(times[3].starts_with("migrate"), "{text}");
        assert!(
            times[4].starts_with("api ") && times[4].contains("600 ms"),
            "{text}"
        );
    }

    #[test]
    fn json_report() {
        let (services, d) = sample();
        let prev = boot(11, 1000, services.clone());
        let v = to_json(&boot(12, 1240, services), &d, true, Some(&prev));
        assert_eq!(v["boot"]["id"], 12);
        assert_eq!(v["boot"]["outcome"], "go");
        let chain: Vec<&str> = v["critical_chain"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(chain, ["db", "api", "web"]);
        assert_eq!(v["services"][0]["name"], "api");
        assert_eq!(v["services"][0]["to_ready_ms"], 600);
        assert_eq!(v["services"][0]["attempts"], 2);
        assert_eq!(v["compare"]["previous"]["id"], 11);
        assert_eq!(v["compare"]["regressions"].as_array().unwrap().len(), 0);
        assert_eq!(v["compare"]["services"][0]["delta_ms"], 0);
    }

    #[test]
    fn tick_steps_are_round() {
        assert_eq!(tick_step(1240, 10), 200);
        assert_eq!(tick_step(1000, 10), 100);
        assert_eq!(tick_step(1, 10), 1);
        assert_eq!(tick_step(45_000, 10), 5000);
        assert!(tick_step(u64::MAX, 10) >= u64::MAX / 10);
    }

    #[test]
    fn svg_is_well_formed_and_escaped() {
        let (mut services, d) = sample();
        services.push(svc("a&b<\"c\">", Some(100), None));
        let mut skipped = svc("never", None, None);
        skipped.state = "skipped".into();
        services.push(skipped);
        let mut b = boot(7, 1240, services);
        b.reason = Some("x < y & z".into());
        let svg = render_svg(&b, &d);
        assert!(svg.starts_with("<?xml"));
        assert!(svg.contains("a&amp;b&lt;&quot;c&quot;&gt;"));
        assert!(!svg.contains("x < y"));
        assert_eq!(
            svg.matches("<rect").count(),
            1 + 6 + LEGEND.len() + 1,
            "{svg}"
        );
        // Balanced tags (the binary-level test parses it with a real XML parser).
        let opens = svg.matches("<svg").count() + svg.matches("<g ").count();
        let closes = svg.matches("</svg>").count() + svg.matches("</g>").count();
        assert_eq!(opens, closes);
        assert!(svg.contains(">1.20 s</text>"), "{svg}");
    }

    #[test]
    fn state_dir_is_relative_to_the_file() {
        assert_eq!(
            state_dir(Path::new("gantry.toml"), ".gantry"),
            PathBuf::from(".gantry")
        );
        assert_eq!(
            state_dir(Path::new("/srv/app/gantry.toml"), ".gantry"),
            PathBuf::from("/srv/app/.gantry")
        );
        assert_eq!(
            state_dir(Path::new("/srv/gantry.toml"), "/var/lib/g"),
            PathBuf::from("/var/lib/g")
        );
    }
}
