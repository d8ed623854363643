//! `gantry analyze` as text: durations, the header, the critical chain like systemd-analyze, per-service times, blame and the comparison of two boots.

use super::{
    Boot, Delta, Deps, REGRESSION_MS, REGRESSION_PCT, blame_order, boot_order, compare,
    critical_chain, to_ready,
};
use crate::store::ServiceRecord;
use std::fmt::Write as _;

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

pub(crate) fn fmt_pct(pct: f64) -> String {
    format!("{:+}%", pct.round() as i64)
}

pub(crate) fn outcome_label(outcome: &str) -> String {
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

pub(crate) fn attempts_note(s: &ServiceRecord) -> String {
    if s.attempts > 1 {
        format!(" ({} attempts)", s.attempts)
    } else {
        String::new()
    }
}

/// What happened to a service that never got ready: `FAILED after 3 attempts: exit code 1`.
pub(crate) fn not_ready_note(s: &ServiceRecord) -> String {
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

pub(crate) fn opt_ms(v: Option<u64>) -> String {
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

#[cfg(test)]
mod tests {
    use super::super::testdata::*;
    use super::*;

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
}
