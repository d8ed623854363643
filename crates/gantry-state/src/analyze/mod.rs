//! The pure logic of `gantry analyze`: where a recorded boot spent its time — critical chain, blame order, comparison with the previous boot — and its text, JSON and SVG forms.
//!
//! The data comes from the state store that `gantry up` fills in when a boot is decided
//! ([`read_boots`]); the dependencies come from the stack file's plan
//! ([`Deps::from_plan`](gantry_plan::NamedGraph::from_plan)). Everything but [`read_boots`]
//! is pure (records in, values or text out), so it is tested without a database.

mod json;
mod svg;
mod text;

pub use json::to_json;
pub use svg::{render_svg, tick_step, xml_escape};
pub use text::{
    fmt_delta, fmt_ms, header, render_blame, render_chain, render_compare, render_text,
    render_times,
};

use crate::StateDir;
use crate::store::{ServiceRecord, Store};
use gantry_plan::UnitTimes;
use std::collections::{HashMap, HashSet};

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

/// Each service's dependencies and layer by name (from the plan of the file as it is now).
pub type Deps = gantry_plan::NamedGraph;

/// The newest `count` decided boots of the store in `state_dir`, newest first; at least one,
/// or an error saying what is missing and what to do.
pub fn read_boots(state_dir: &StateDir, count: usize) -> Result<Vec<Boot>, String> {
    let db = state_dir.state_db();
    if !db.exists() {
        return Err(format!(
            "no boot recorded in {} yet\n  hint: run `gantry up` first",
            db.display()
        ));
    }
    let Some(store) = Store::open_existing(state_dir) else {
        return Err(format!(
            "cannot open the state store {}\n  hint: check that it is readable",
            db.display()
        ));
    };
    let records = store.decided_boots(count).map_err(|e| {
        format!(
            "cannot read the boot history in {}: {e}\n  hint: is it a gantry state store? moving it aside starts a new history",
            db.display()
        )
    })?;
    if records.is_empty() {
        if let Some((id, _, _)) = store.last_boot() {
            return Err(format!(
                "boot #{id} in {} is not decided yet (still booting, or `gantry up` was stopped before GO/NO-GO)\n  hint: wait for `gantry up` to print its verdict, then run this again",
                db.display()
            ));
        }
        return Err(format!(
            "no boot recorded in {} yet\n  hint: run `gantry up` first",
            db.display()
        ));
    }
    records
        .into_iter()
        .map(|b| {
            let services = store.boot_services(b.id).map_err(|e| {
                format!(
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

/// The newest of `earlier` boots that ran the same selection of services as `current`
/// (`--only`, `--except` and profiles change it): a comparison is only meaningful like
/// with like.
pub fn comparable<'a>(current: &Boot, earlier: &'a [Boot]) -> Option<&'a Boot> {
    fn names(b: &Boot) -> Vec<&str> {
        let mut n: Vec<&str> = b.services.iter().map(|s| s.name.as_str()).collect();
        n.sort_unstable();
        n
    }
    let want = names(current);
    earlier.iter().find(|b| names(b) == want)
}

/// Time from the first spawn to ready/completed; None when it never got there (or never spawned).
pub fn to_ready(s: &ServiceRecord) -> Option<u64> {
    match (s.started_ms, s.ready_ms) {
        (Some(start), Some(ready)) => Some(ready.saturating_sub(start)),
        _ => None,
    }
}

/// The critical chain, like `systemd-analyze critical-chain`: starts at the service that became
/// ready last and walks back, each time to whichever gate released it last: the dependency, or
/// with layers the unit of an earlier layer, that became ready last among those ready by the
/// time the service was spawned. Last-ready first. Computed by
/// [`gantry_plan::critical_chain_by_name`], the same walk the runtime prints on its GO line.
pub fn critical_chain<'a>(services: &'a [ServiceRecord], deps: &Deps) -> Vec<&'a ServiceRecord> {
    let units: Vec<(&str, UnitTimes)> = services
        .iter()
        .map(|s| (s.name.as_str(), UnitTimes::new(s.started_ms, s.ready_ms)))
        .collect();
    gantry_plan::critical_chain_by_name(deps, &units)
        .into_iter()
        .map(|i| &services[i])
        .collect()
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
pub fn boot_order(services: &[ServiceRecord]) -> Vec<&ServiceRecord> {
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

#[cfg(test)]
pub(crate) mod testdata {
    //! Records shared by the tests of the analysis modules.
    use super::*;

    pub(crate) fn svc(name: &str, started: Option<u64>, ready: Option<u64>) -> ServiceRecord {
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

    pub(crate) fn deps(pairs: &[(&str, &[&str])]) -> Deps {
        pairs
            .iter()
            .map(|(n, ds)| (n.to_string(), ds.iter().map(|d| d.to_string()).collect()))
            .collect()
    }

    pub(crate) fn boot(id: i64, duration: u64, services: Vec<ServiceRecord>) -> Boot {
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
    pub(crate) fn sample() -> (Vec<ServiceRecord>, Deps) {
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

    pub(crate) fn names(list: &[&ServiceRecord]) -> Vec<String> {
        list.iter().map(|s| s.name.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testdata::*;
    use super::*;

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
    fn critical_chain_crosses_a_layer_barrier() {
        // `web` (layer 1) has no dependency; it waited for layer 0, where `api` was last.
        let (services, mut d) = sample();
        let mut services = services;
        services.retain(|s| s.name != "web");
        services.push(svc("edge", Some(930), Some(1240)));
        d.layers = ["api", "cache", "db", "migrate"]
            .iter()
            .map(|n| (n.to_string(), 0))
            .chain([("edge".to_string(), 1)])
            .collect();
        assert_eq!(names(&critical_chain(&services, &d)), ["edge", "api", "db"]);
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
    fn only_a_boot_of_the_same_selection_is_comparable() {
        let all = || {
            vec![
                svc("pg", Some(0), Some(300)),
                svc("api", Some(300), Some(500)),
            ]
        };
        let current = boot(3, 500, all());
        let only_pg = boot(2, 300, vec![svc("pg", Some(0), Some(300))]);
        let earlier_all = boot(1, 520, all());
        let found = comparable(&current, std::slice::from_ref(&only_pg));
        assert!(found.is_none());
        let earlier = [only_pg, earlier_all];
        assert_eq!(comparable(&current, &earlier).map(|b| b.id), Some(1));
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
}
