//! Incidents: opened by a P0/P1 alert, an append-only timeline of what happened while open
//! (alerts, state changes, operator actions), resolved when no P0/P1 alert fires any more; and
//! the post-incident draft built from them.

use crate::store::Store;
use rusqlite::params;
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    severity TEXT NOT NULL,
    title TEXT NOT NULL,
    opened_ms INTEGER NOT NULL,
    detected_after_ms INTEGER,
    resolved_ms INTEGER,
    resolved_by TEXT,
    status TEXT NOT NULL DEFAULT 'open'
);
CREATE TABLE IF NOT EXISTS incident_timeline (
    incident INTEGER NOT NULL REFERENCES incidents(id),
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL
);
";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn rfc3339(ms: i64) -> String {
    gantry_time::rfc3339_utc(UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64))
}

/// The most timeline rows one incident keeps (a flapping service cannot grow it without bound).
const MAX_TIMELINE: i64 = 10_000;

impl Store {
    /// Opens an incident; `detected_after_ms` is how long the condition held before it fired.
    pub fn open_incident(
        &self,
        severity: &str,
        title: &str,
        detected_after_ms: u64,
    ) -> Result<i64, String> {
        self.conn
            .execute(
                "INSERT INTO incidents (severity, title, opened_ms, detected_after_ms) VALUES (?1, ?2, ?3, ?4)",
                params![severity, title, now_ms(), detected_after_ms as i64],
            )
            .map_err(|e| format!("cannot open an incident: {e}"))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The open incident, if any (the newest).
    pub fn open_incident_id(&self) -> Option<i64> {
        self.conn
            .query_row(
                "SELECT id FROM incidents WHERE status IN ('open', 'acknowledged') ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .ok()
    }

    /// Appends to an incident's timeline (append-only; bounded).
    pub fn incident_note(&self, incident: i64, kind: &str, text: &str) {
        let count: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM incident_timeline WHERE incident = ?1",
                params![incident],
                |r| r.get(0),
            )
            .unwrap_or(0);
        if count < MAX_TIMELINE {
            let _ = self.conn.execute(
                "INSERT INTO incident_timeline (incident, at_ms, kind, text) VALUES (?1, ?2, ?3, ?4)",
                params![incident, now_ms(), kind, text],
            );
        }
    }

    /// Resolves an open (or acknowledged) incident; false when it was not open.
    pub fn resolve_incident(&self, incident: i64, by: &str) -> Result<bool, String> {
        self.conn
            .execute(
                "UPDATE incidents SET status = 'resolved', resolved_ms = ?1, resolved_by = ?2 WHERE id = ?3 AND status IN ('open', 'acknowledged')",
                params![now_ms(), by, incident],
            )
            .map(|n| n > 0)
            .map_err(|e| format!("cannot resolve incident {incident}: {e}"))
    }

    /// Someone is on it: an open incident becomes `acknowledged` (noted on its timeline by the
    /// caller); false when it was not open.
    pub fn ack_incident(&self, incident: i64) -> Result<bool, String> {
        self.conn
            .execute(
                "UPDATE incidents SET status = 'acknowledged' WHERE id = ?1 AND status = 'open'",
                params![incident],
            )
            .map(|n| n > 0)
            .map_err(|e| format!("cannot acknowledge incident {incident}: {e}"))
    }

    /// Whether an incident was opened by hand (`gantry incident open`): its timeline starts with
    /// an `opened` row. Such an incident is resolved by hand only.
    pub fn incident_by_hand(&self, incident: i64) -> bool {
        self.conn
            .query_row(
                "SELECT 1 FROM incident_timeline WHERE incident = ?1 AND kind = 'opened' LIMIT 1",
                params![incident],
                |_| Ok(true),
            )
            .unwrap_or(false)
    }

    /// An incident's status (`open`, `acknowledged`, `resolved`), None when there is none.
    pub fn incident_status(&self, incident: i64) -> Option<String> {
        self.conn
            .query_row(
                "SELECT status FROM incidents WHERE id = ?1",
                params![incident],
                |r| r.get(0),
            )
            .ok()
    }

    /// Every incident, newest first, as JSON objects (without timelines).
    pub fn incidents(&self) -> Result<Vec<serde_json::Value>, String> {
        if !self.has_table("incidents") {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare("SELECT id, severity, title, opened_ms, resolved_ms, resolved_by, status FROM incidents ORDER BY id DESC")
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map([], |r| {
                let opened: i64 = r.get(3)?;
                let resolved: Option<i64> = r.get(4)?;
                Ok(serde_json::json!({
                    "id": r.get::<_, i64>(0)?,
                    "severity": r.get::<_, String>(1)?,
                    "title": r.get::<_, String>(2)?,
                    "opened_at": rfc3339(opened),
                    "resolved_at": resolved.map(rfc3339),
                    "resolved_by": r.get::<_, Option<String>>(5)?,
                    "status": r.get::<_, String>(6)?,
                    "duration_ms": resolved.map(|x| x - opened),
                }))
            })
            .map_err(|e| e.to_string())?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())
    }

    /// One incident with its timeline.
    pub fn incident(&self, id: i64) -> Result<Option<serde_json::Value>, String> {
        let Some(mut head) = self.incidents()?.into_iter().find(|i| i["id"] == id) else {
            return Ok(None);
        };
        let detected: Option<i64> = self
            .conn
            .query_row(
                "SELECT detected_after_ms FROM incidents WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .ok()
            .flatten();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT at_ms, kind, text FROM incident_timeline WHERE incident = ?1 ORDER BY seq",
            )
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map(params![id], |r| {
                Ok(serde_json::json!({
                    "at": rfc3339(r.get::<_, i64>(0)?),
                    "kind": r.get::<_, String>(1)?,
                    "text": r.get::<_, String>(2)?,
                }))
            })
            .map_err(|e| e.to_string())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        head["detected_after_ms"] = detected.into();
        head["timeline"] = rows.into();
        Ok(Some(head))
    }

    fn has_table(&self, name: &str) -> bool {
        self.conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                params![name],
                |_| Ok(true),
            )
            .unwrap_or(false)
    }
}

/// `requests=N failed=M`: the ingress counters a timeline row of kind `ingress` carries.
fn counters(text: &str) -> Option<(u64, u64)> {
    let mut requests = None;
    let mut failed = None;
    for part in text.split_whitespace() {
        if let Some(v) = part.strip_prefix("requests=") {
            requests = v.parse().ok();
        } else if let Some(v) = part.strip_prefix("failed=") {
            failed = v.parse().ok();
        }
    }
    Some((requests?, failed?))
}

/// The impact on requests: the ingress counters at the opening and at the resolve.
fn requests_line(timeline: &[serde_json::Value]) -> String {
    let marks: Vec<(u64, u64)> = timeline
        .iter()
        .filter(|t| t["kind"] == "ingress")
        .filter_map(|t| counters(t["text"].as_str()?))
        .collect();
    match (marks.first(), marks.last()) {
        (Some(a), Some(b)) if marks.len() >= 2 => {
            let (requests, failed) = (b.0.saturating_sub(a.0), b.1.saturating_sub(a.1));
            let share = if requests == 0 {
                String::new()
            } else {
                format!(" ({:.1} %)", failed as f64 * 100.0 / requests as f64)
            };
            format!(
                "Requests through the ingress while it was open: {requests}, failed (5xx or no upstream): {failed}{share}"
            )
        }
        (Some(_), _) => "Requests failed: counted when the incident is resolved".to_string(),
        _ => "Requests failed: no ingress (no request counters)".to_string(),
    }
}

/// The post-incident draft (Markdown): summary, impact, detection, timeline, actions and who took
/// them, duration, follow-ups to fill in.
pub fn postmortem(incident: &serde_json::Value) -> String {
    let s = |k: &str| incident[k].as_str().unwrap_or("-").to_string();
    let timeline = incident["timeline"].as_array().cloned().unwrap_or_default();
    let mut out = format!(
        "# Incident {}: {}\n\n## Summary\n\nSeverity {}, opened {}, {}.\n\n",
        incident["id"],
        s("title"),
        s("severity"),
        s("opened_at"),
        match incident["resolved_at"].as_str() {
            Some(r) => format!("resolved {r} by {}", s("resolved_by")),
            None => "still open".into(),
        }
    );
    let duration = incident["duration_ms"]
        .as_i64()
        .map_or("still open".to_string(), |ms| {
            format!("{:.1} minutes", ms as f64 / 60_000.0)
        });
    let alerts = timeline.iter().filter(|t| t["kind"] == "alert").count();
    let changes = timeline
        .iter()
        .filter(|t| t["kind"] == "transition")
        .count();
    out.push_str(&format!(
        "## Impact\n\n- Duration: {duration}\n- Alerts: {alerts}\n- Service state changes: {changes}\n- {}\n\n",
        requests_line(&timeline)
    ));
    out.push_str(&format!(
        "## Detection\n\nThe first alert fired {} after its condition began.\n\n",
        incident["detected_after_ms"]
            .as_i64()
            .map_or("-".to_string(), |ms| format!("{:.1} s", ms as f64 / 1000.0))
    ));
    out.push_str("## Timeline\n\n| time (UTC) | what | detail |\n|---|---|---|\n");
    for t in &timeline {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            t["at"].as_str().unwrap_or(""),
            t["kind"].as_str().unwrap_or(""),
            t["text"].as_str().unwrap_or("").replace('|', "\\|")
        ));
    }
    out.push_str("\n## Actions taken\n\n");
    let actions: Vec<_> = timeline.iter().filter(|t| t["kind"] == "action").collect();
    if actions.is_empty() {
        out.push_str("None recorded.\n");
    }
    for a in actions {
        out.push_str(&format!(
            "- {} — {}\n",
            a["at"].as_str().unwrap_or(""),
            a["text"].as_str().unwrap_or("")
        ));
    }
    out.push_str("\n## Follow-ups\n\n- [ ] Root cause:\n- [ ] What would have detected it sooner:\n- [ ] What prevents it next time:\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incident_keeps_its_timeline_and_drafts_a_postmortem() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.open_incident_id(), None);
        let id = store
            .open_incident("P0", "critical service db is down", 1_500)
            .unwrap();
        assert_eq!(store.open_incident_id(), Some(id));
        store.incident_note(id, "alert", "firing: [P0] critical service db is down");
        store.incident_note(id, "transition", "db: failed -> starting");
        store.incident_note(id, "action", "service.start db by cli:alice: bring it back");
        store.resolve_incident(id, "gantry").unwrap();
        assert_eq!(store.open_incident_id(), None);
        let inc = store.incident(id).unwrap().unwrap();
        assert_eq!(inc["timeline"].as_array().unwrap().len(), 3);
        let md = postmortem(&inc);
        assert!(
            md.starts_with("# Incident 1: critical service db is down"),
            "{md}"
        );
        assert!(md.contains("- Alerts: 1"));
        assert!(md.contains("service.start db by cli:alice"));
        assert!(md.contains("1.5 s after its condition began"));
        assert!(store.incident(99).unwrap().is_none());
    }
}
