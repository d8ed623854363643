//! One unit as the API shows it, built from the engine's view: one meaning of uptime and time-to-ready for every driver.
//!
//! - `started_ms`: the unit's first spawn in this boot, in ms since the boot started.
//! - `ready_ms`: when it last became ready, running or completed.
//! - `time_to_ready_ms`: from the first attempt of its latest start sequence to ready —
//!   the boot's for a unit that never restarted, the restart's after a restart (never
//!   from the boot's first spawn) — while it is up.
//! - `uptime_ms`: how long the current incarnation has been up: since it became ready,
//!   while it is ready / running / unready / degraded (none while starting, failed or
//!   stopped; a completed task has none either).

use crate::book::Book;
use gantry_api::model::{ProbeSample, ServiceSnapshot};
use gantry_engine::{BreakerState, State, Time, UnitView};
use std::time::{Duration, SystemTime};

/// What only the driver knows of a unit.
#[derive(Clone, Debug, Default)]
pub struct Extra {
    /// The kind word when the engine's (process / task / external) is not the one to show.
    pub kind: Option<&'static str>,
    /// The PID to show (the driver decides which: host PID, none for components).
    pub pid: Option<u32>,
    /// A better last error than the engine's (the user's words).
    pub last_error: Option<String>,
    /// sd_notify STATUS= text.
    pub status_text: Option<String>,
    pub cpu_seconds: Option<f64>,
    pub rss_bytes: Option<u64>,
    /// Output lines dropped so far (the service outpaced gantry).
    pub output_dropped_lines: u64,
    /// An operator's switch (`disabled`, `quarantined`) and who / since / why.
    pub switch: Option<(String, String)>,
}

/// The breaker state as one word.
pub fn breaker_word(b: BreakerState) -> &'static str {
    match b {
        BreakerState::Closed => "closed",
        BreakerState::Open { .. } => "open",
        BreakerState::HalfOpen => "half-open",
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn time_to_ready(v: &UnitView<'_>, book: &Book) -> Option<Duration> {
    match (book.sequence_start, v.ready_at) {
        (Some(s), Some(r)) if crate::is_up(v.state) && r >= s => Some(r - s),
        _ => None,
    }
}

pub(crate) fn uptime(v: &UnitView<'_>, now: Time) -> Option<Duration> {
    v.ready_at
        .filter(|_| {
            matches!(
                v.state,
                State::Ready | State::Running | State::Unready | State::Degraded
            )
        })
        .map(|r| now - r)
}

pub(crate) fn from_view(
    v: &UnitView<'_>,
    book: &Book,
    now: Time,
    started_at: SystemTime,
    extra: Extra,
) -> ServiceSnapshot {
    ServiceSnapshot {
        name: v.name.to_string(),
        kind: extra
            .kind
            .map_or_else(|| v.kind.to_string(), str::to_string),
        priority: v.priority.to_string(),
        state: v.state.to_string(),
        required: matches!(
            v.priority,
            gantry_engine::Priority::Critical | gantry_engine::Priority::High
        ),
        ready: crate::is_up(v.state),
        pid: extra.pid,
        attempts: v.attempt,
        restarts: v.restarts,
        started_ms: book.first_spawn.map(Time::as_millis),
        ready_ms: v.ready_at.map(Time::as_millis),
        time_to_ready_ms: time_to_ready(v, book).map(ms),
        uptime_ms: uptime(v, now).map(ms),
        last_error: extra
            .last_error
            .or_else(|| v.last_error.map(str::to_string))
            .filter(|e| !(crate::is_up(v.state) && book.acked_error.as_ref() == Some(e))),
        status_text: extra.status_text,
        breaker: v.breaker.map(|b| breaker_word(b).to_string()),
        probe_failures_total: book.probes.failures(),
        readiness_lost_total: u64::from(v.readiness_losses),
        probes: book.probes.histogram(),
        cpu_seconds: extra.cpu_seconds,
        rss_bytes: extra.rss_bytes,
        output_dropped_lines_total: extra.output_dropped_lines,
        switch: extra.switch.as_ref().map(|(s, _)| s.clone()),
        switch_detail: extra.switch.map(|(_, d)| d),
        last_probe: book.probes.last().map(|p| ProbeSample {
            role: p.role.to_string(),
            ok: p.ok,
            message: p.message.clone(),
            duration_ms: p.duration.as_secs_f64() * 1000.0,
            at: started_at
                .checked_add(p.at.as_duration())
                .unwrap_or(started_at),
        }),
    }
}
