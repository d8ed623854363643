//! What services send back to the loop: their output (masked, logged, shown, streamed and matched against log probes), their exits, and their sd_notify datagrams.

use super::output::Out;
use super::{Driver, Msg, TAIL_LINES, svc};
use crate::output::OutputMode;
use crate::process::StreamKind;
use gantry_engine as eng;
use gantry_engine::{Event, ProbeRole, UnitId};
use std::time::Duration;

impl Driver {
    pub(super) fn output(&mut self, out: Out) {
        self.host.mark_stats();
        match out {
            Out::Line {
                unit,
                stream,
                line,
                cut,
                cost,
            } => {
                self.svcs[unit.0].budget.add_permits(cost as usize);
                // A chunk of a longer line: a secret may straddle the cut, so the end
                // that could start one waits for the next chunk (redact.rs).
                let carry = &mut self.svcs[unit.0].carry[stream as usize];
                let line = self.redactor.redact_stream(carry, line, cut);
                if !line.is_empty() || !cut {
                    self.line(unit, stream, line);
                }
            }
            Out::Dropped { unit, lines } => {
                let svc = &mut self.svcs[unit.0];
                svc.dropped += lines;
                let marker = format!(
                    "[gantry] {lines} line(s) dropped: {} wrote faster than gantry could log (see gantry_output_dropped_lines_total)",
                    svc.name
                );
                let name = svc.name.clone();
                self.log_line(unit, StreamKind::Err, &marker);
                if self.wants_events() {
                    self.event(serde_json::json!({ "event": "output_dropped", "service": name, "lines": lines }));
                }
            }
            Out::Exited {
                unit,
                r#gen,
                status,
            } => {
                let svc = &mut self.svcs[unit.0];
                let mut oom_kill = None;
                if svc.live.is_some_and(|(g, _)| g == r#gen) {
                    svc.live = None;
                    oom_kill = self.groups_after_exit(unit);
                }
                let status = eng::ExitStatus {
                    code: status.code,
                    signal: status.signal,
                    oom_kill,
                };
                self.host.handle(Event::Exited {
                    unit,
                    r#gen,
                    status,
                });
            }
        }
    }

    /// A line of a service's output (masked already): logged, kept for failure reports, shown,
    /// streamed, and matched against its log probes.
    pub(super) fn line(&mut self, unit: UnitId, stream: StreamKind, line: String) {
        let wants_events = self.wants_events();
        self.log_line(unit, stream, &line);
        let svc = &mut self.svcs[unit.0];
        if svc.tail.len() == TAIL_LINES {
            svc.tail.pop_front();
        }
        svc.tail.push_back(line.clone());
        if self.out.mode() != OutputMode::Json {
            self.out.service_line(&svc.name, unit.0, stream, &line);
        }
        let name = wants_events.then(|| svc.name.clone());
        if let Some(name) = name {
            self.event(serde_json::json!({ "event": "output", "service": name, "stream": stream.as_str(), "line": line }));
        }
        let matched: Vec<ProbeRole> = eng::ProbeRole::ALL
            .into_iter()
            .filter(|r| self.svcs[unit.0].log_match(*r, &line))
            .collect();
        for role in matched {
            self.host
                .pushed_pass(unit, role, format!("log line matched: {line}"));
        }
    }

    /// An sd_notify datagram: start-timeout extensions, STATUS= text, READY=1 and
    /// WATCHDOG=1 for the roles that listen for them.
    pub(super) fn notified(&mut self, unit: UnitId, msg: crate::notify::NotifyMessage) {
        // EXTEND_TIMEOUT_USEC: the start may take this much longer from now
        // (the engine ignores it unless the current incarnation is starting).
        if let Some(usec) = msg.extend_timeout_usec {
            let r#gen = self.host.unit(unit).r#gen;
            let by = Duration::from_micros(usec);
            self.host
                .handle(Event::ExtendStartTimeout { unit, r#gen, by });
        }
        let svc = &mut self.svcs[unit.0];
        if let Some(status) = &msg.status {
            svc.status_text = Some(status.clone());
        }
        let notify_roles: Vec<ProbeRole> = eng::ProbeRole::ALL
            .into_iter()
            .filter(|r| svc.role(*r).is_some_and(svc::RoleProbe::is_notify))
            .collect();
        let watchdog = svc.watchdog().is_some();
        for role in notify_roles {
            let pass = match role {
                // A watchdog is kept alive by WATCHDOG=1 only, as systemd's.
                ProbeRole::Liveness if watchdog => msg.watchdog,
                ProbeRole::Liveness => msg.watchdog || msg.ready,
                _ => msg.ready,
            };
            if pass {
                let what = if msg.ready { "READY=1" } else { "WATCHDOG=1" };
                self.host
                    .pushed_pass(unit, role, format!("sd_notify {what}"));
            }
        }
        // The service says it is hung: restarted at once if a watchdog watches it.
        if msg.watchdog_trigger && watchdog {
            self.host
                .reported_hung(unit, "sd_notify WATCHDOG=trigger".into());
        }
    }

    pub(super) fn start_notify_listener(&mut self, unit: UnitId) {
        let Some(sock) = self.svcs[unit.0].notify.clone() else {
            return;
        };
        let tx = self.tx.clone();
        tokio::spawn(async move {
            while let Ok(msg) = sock.recv().await {
                if tx.send(Msg::Notify { unit, msg }).is_err() {
                    break;
                }
            }
        });
    }

    /// A line into a service's log file (buffered; written at the next flush).
    pub(super) fn log_line(&mut self, unit: UnitId, stream: StreamKind, line: &str) {
        let svc = &mut self.svcs[unit.0];
        if let Some(log) = &mut svc.log {
            let _ = log.write_line(stream, line);
            if !svc.log_busy {
                svc.log_busy = true;
                self.busy_logs.push(unit);
            }
        }
    }

    /// Writes what the logs buffered. Only the logs that wrote since their file was last
    /// closed are visited (a quiet log is closed after a few empty flushes), and the tick
    /// that calls this is off while there are none: a thousand quiet services cost nothing.
    pub(super) fn flush_logs(&mut self) {
        let svcs = &mut self.svcs;
        self.busy_logs.retain(|unit| {
            let Some(svc) = svcs.get_mut(unit.0) else {
                return false;
            };
            let open = svc.log.as_mut().is_some_and(|log| {
                let _ = log.flush();
                log.is_open()
            });
            svc.log_busy = open;
            open
        });
    }
}
