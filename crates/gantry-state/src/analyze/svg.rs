//! `gantry analyze --format svg`: a standalone SVG waterfall of one boot, the critical chain outlined.

use super::text::{attempts_note, fmt_ms, header, not_ready_note, opt_ms, outcome_label};
use super::{Boot, Deps, boot_order, critical_chain, to_ready};
use crate::store::ServiceRecord;
use std::collections::HashSet;
use std::fmt::Write as _;

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
    use super::super::testdata::*;
    use super::*;

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
}
