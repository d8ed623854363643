//! The driver's upkeep: the pre-flight run again in the background (revalidation), the state
//! store opened once the first services are spawned, memory trimmed after the boot, resource
//! usage sampled, and the live board redrawn on a terminal.

use super::*;

impl Driver {
    pub(super) fn revalidate(&mut self) {
        let (spec, plan, base, reaper, tx) = (
            self.spec.clone(),
            self.plan.clone(),
            self.base_dir.clone(),
            self.reaper.clone(),
            self.tx.clone(),
        );
        tokio::spawn(async move {
            let (report, values) =
                crate::preflight::run_with(&spec, &plan, &base, &reaper, true).await;
            let _ = tx.send(Msg::Revalidated(report, values));
        });
    }

    /// Drift found by the continuous validation becomes missions (never a stop);
    /// checks that pass again resolve theirs.
    pub(super) fn revalidated(&mut self, report: crate::preflight::Report) {
        use crate::preflight::Status;
        let problems: Vec<_> = report
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .collect();
        if let Some(store) = &self.store {
            for c in &report.checks {
                let check = format!("revalidate: {}", c.check);
                if c.status == Status::Fail {
                    self.open_mission(&gantry_state::missions::NewMission {
                        service: c.service.clone(),
                        layer: None,
                        check,
                        error: c.message.clone(),
                        output: Vec::new(),
                        fix_criteria: format!("the check `{}` passes again", c.check),
                        next_step: c
                            .hint
                            .clone()
                            .unwrap_or_else(|| "run `gantry preflight` for details".into()),
                    });
                } else {
                    store.resolve_missions(&check, c.service.as_deref());
                }
            }
        }
        self.drift = problems.len();
        self.host.mark_dirty();
        if !problems.is_empty() {
            self.out.gantry_line(&format!(
                "revalidation: {} problem(s): {} (see `gantry missions`)",
                problems.len(),
                problems
                    .iter()
                    .map(|c| format!(
                        "{}{}",
                        c.service
                            .as_deref()
                            .map(|s| format!("{s}: "))
                            .unwrap_or_default(),
                        c.message
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        self.event(serde_json::json!({ "event": "revalidated", "problems": problems.len() }));
    }

    /// Opens the state store unless it is open already (it waits for the first wave).
    pub(super) fn open_pending_store(&mut self) {
        if let Some((dir, file, started)) = self.pending_store.take() {
            self.open_store(&dir, &file, started);
        }
    }

    pub(super) fn open_store(
        &mut self,
        state_dir: &Path,
        file: &str,
        started: std::time::SystemTime,
    ) {
        match Store::open(state_dir) {
            Ok(s) => {
                self.boot_missions = s
                    .missions(false)
                    .unwrap_or_default()
                    .iter()
                    .filter(|m| m["check"] == "boot")
                    .filter_map(|m| m["service"].as_str().map(str::to_string))
                    .collect();
                self.boot_id = s
                    .begin_boot(&gantry_state::time::rfc3339_utc(started), file)
                    .ok();
                self.store = Some(s);
                // An incident an earlier run left open collects what happens from now on.
                self.load_incident();
                self.record_first_releases();
            }
            Err(e) => self
                .out
                .gantry_line(&format!("warning: boot history is not recorded: {e}")),
        }
    }

    /// Once the boot is decided and has settled (the usage tick runs every 2 s), the code
    /// that only start-up ran leaves the resident set (see trim.rs).
    pub(super) fn trim_once(&mut self) {
        if !self.trimmed && self.host.engine().boot_outcome().is_some() {
            self.trimmed = true;
            crate::trim::release_startup_pages();
            crate::trim::release_free_heap();
        }
    }

    /// Whether the usage figures are sampled on a timer: only for an alert rule that
    /// watches them. Otherwise a reader asks for them (`gantry_api::figures`).
    pub(super) fn usage_on_timer(&self) -> bool {
        self.alerts.as_ref().is_some_and(|a| a.watches_usage())
    }

    /// Host pids and CPU / RSS of every service (one /proc scan).
    pub(super) fn sample_usage(&mut self) {
        self.usage_sampled = Some(std::time::Instant::now());
        let engine = self.host.engine();
        let pids: Vec<u32> = engine.units().filter_map(|v| v.pid).collect();
        self.procstat.refresh(&pids);
        for (i, usage) in self.usage.iter_mut().enumerate() {
            *usage = engine
                .unit(UnitId(i))
                .pid
                .and_then(|p| self.procstat.usage(p));
        }
        self.host.mark_stats();
    }

    pub(super) fn board_live(&self) -> bool {
        self.out.mode() == OutputMode::Tty && self.host.engine().boot_outcome().is_none()
    }

    pub(super) fn redraw_board(&self) {
        let now = self.host.now();
        let rows: Vec<BoardRow> = self
            .host
            .engine()
            .units()
            .map(|v| {
                let svc = &self.svcs[v.id.0];
                let since = self.host.first_spawn(v.id).unwrap_or(now);
                let end = v
                    .ready_at
                    .filter(|_| v.state != eng::State::Starting)
                    .unwrap_or(now);
                BoardRow {
                    name: v.name.to_string(),
                    state: v.state.to_string(),
                    elapsed: end.0.saturating_sub(since.0),
                    attempt: v.attempt,
                    note: svc
                        .status_text
                        .clone()
                        .or_else(|| v.reason.map(str::to_string)),
                }
            })
            .collect();
        self.out.board(&rows);
    }
}

/// How old the CPU and memory figures a reader is shown may be: 2 s up to 100 services, then
/// 2 s more per 100 (20 s at 1,000), as one sample costs more with every service.
pub(super) fn usage_max_age(services: usize) -> Duration {
    Duration::from_secs(2 * (services / 100).max(1) as u64)
}
