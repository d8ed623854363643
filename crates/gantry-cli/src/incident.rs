//! `gantry incident list|show|postmortem`: the incidents (opened by P0/P1 alerts or by hand), their
//! timelines, and the post-incident draft, read from the state store (works while gantry runs and
//! after); `open`, `ack` and `resolve` go through the running instance's API (audited).

use crate::Outcome;
use std::path::Path;

fn store(file: &Path) -> Result<Option<gantry_state::store::Store>, Outcome> {
    let checked = crate::load::load_for_client(file).map_err(|e| {
        eprintln!("error: {e}");
        Outcome::Usage
    })?;
    let dir = gantry_state::StateDir::for_stack(file, &checked.spec.settings.state_dir);
    Ok(gantry_state::store::Store::open_existing(&dir))
}

pub fn list(file: &Path, json: bool) -> anyhow::Result<Outcome> {
    let list = match store(file) {
        Ok(Some(s)) => s.incidents().map_err(anyhow::Error::msg)?,
        Ok(None) => Vec::new(),
        Err(o) => return Ok(o),
    };
    if json {
        crate::emit(&format!("{}\n", serde_json::to_string_pretty(&list)?));
        return Ok(Outcome::Success);
    }
    if list.is_empty() {
        crate::emit("no incidents\n");
        return Ok(Outcome::Success);
    }
    let mut out = String::new();
    for i in &list {
        out.push_str(&format!(
            "#{:<4} {} {:<9} {}  {}\n",
            i["id"],
            i["severity"].as_str().unwrap_or(""),
            i["status"].as_str().unwrap_or(""),
            i["opened_at"].as_str().unwrap_or(""),
            i["title"].as_str().unwrap_or("")
        ));
    }
    crate::emit(&out);
    Ok(Outcome::Success)
}

fn one(file: &Path, id: i64) -> Result<serde_json::Value, Outcome> {
    let found = match store(file)? {
        Some(s) => s.incident(id).map_err(|e| {
            eprintln!("error: {e}");
            Outcome::Failure
        })?,
        None => None,
    };
    found.ok_or_else(|| {
        eprintln!("error: no incident {id}\n  hint: `gantry incident list` shows them");
        Outcome::Usage
    })
}

pub fn show(file: &Path, id: i64, json: bool) -> anyhow::Result<Outcome> {
    let inc = match one(file, id) {
        Ok(i) => i,
        Err(o) => return Ok(o),
    };
    if json {
        crate::emit(&format!("{}\n", serde_json::to_string_pretty(&inc)?));
        return Ok(Outcome::Success);
    }
    let mut out = format!(
        "incident {} [{}] {} — {}\nopened {}{}\n\n",
        inc["id"],
        inc["severity"].as_str().unwrap_or(""),
        inc["status"].as_str().unwrap_or(""),
        inc["title"].as_str().unwrap_or(""),
        inc["opened_at"].as_str().unwrap_or(""),
        inc["resolved_at"]
            .as_str()
            .map(|r| format!(", resolved {r}"))
            .unwrap_or_default()
    );
    for t in inc["timeline"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{}  {:<10} {}\n",
            t["at"].as_str().unwrap_or(""),
            t["kind"].as_str().unwrap_or(""),
            t["text"].as_str().unwrap_or("")
        ));
    }
    crate::emit(&out);
    Ok(Outcome::Success)
}

pub fn postmortem(file: &Path, id: i64) -> anyhow::Result<Outcome> {
    match one(file, id) {
        Ok(inc) => {
            crate::emit(&gantry_state::incidents::postmortem(&inc));
            Ok(Outcome::Success)
        }
        Err(o) => Ok(o),
    }
}

/// `gantry incident open --severity P1 --title TEXT [--reason TEXT]`.
pub fn open(
    file: &Path,
    severity: &str,
    title: &str,
    reason: Option<&str>,
) -> anyhow::Result<Outcome> {
    let body = serde_json::json!({ "severity": severity, "title": title, "reason": reason });
    post(file, "/api/v1/incidents", &body)
}

/// `gantry incident ack|resolve ID [--reason TEXT]`.
pub fn act(file: &Path, id: i64, action: &str, reason: Option<&str>) -> anyhow::Result<Outcome> {
    let body = serde_json::json!({ "reason": reason });
    post(file, &format!("/api/v1/incidents/{id}/{action}"), &body)
}

fn post(file: &Path, path: &str, body: &serde_json::Value) -> anyhow::Result<Outcome> {
    let inst = match crate::ctl::find(file) {
        Ok(i) => i,
        Err(o) => return Ok(o),
    };
    let rt = crate::client::runtime()?;
    Ok(crate::ctl::report(rt.block_on(inst.post_json(path, body))))
}
