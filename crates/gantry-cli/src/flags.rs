//! `gantry flags`, `gantry flag get|set|unset` and the kill-switch shorthands (`gantry drain on`,
//! `brownout`, `emergency`, `safe-mode`): they talk to the running instance's flag API.

use crate::Outcome;
use crate::client::runtime;
use crate::ctl::{find, report};
use std::fmt::Write as _;
use std::path::Path;

/// A flag key as a path segment (keys are `[A-Za-z0-9_.-]`; anything else is percent-encoded).
fn segment(key: &str) -> String {
    key.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn fetch(file: &Path) -> Result<serde_json::Value, Outcome> {
    crate::ctl::get_json(file, "/api/v1/flags")
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "-".to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The flag list as a table, then the overrides and the unknown keys.
pub fn render(v: &serde_json::Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<24} {:<8} {:<16} {:<10} {:<16} {:<12} {:<10} OVERRIDE",
        "FLAG", "TYPE", "VALUE", "VARIANT", "REASON", "OWNER", "EXPIRES"
    );
    for f in v["flags"].as_array().into_iter().flatten() {
        let e = &f["evaluation"];
        let over = match f["override"].as_object() {
            Some(o) => format!(
                "by {} ({}){}",
                text(&o["actor"].clone()),
                text(&o.get("reason").cloned().unwrap_or_default()),
                o.get("expires_at")
                    .and_then(|x| x.as_str())
                    .map(|t| format!(" until {t}"))
                    .unwrap_or_default()
            ),
            None => "-".to_string(),
        };
        let _ = writeln!(
            out,
            "{:<24} {:<8} {:<16} {:<10} {:<16} {:<12} {:<10} {over}",
            text(&f["key"]),
            text(&f["kind"]),
            text(&e["value"]),
            text(&e["variant"]),
            text(e.get("reason").unwrap_or(&e["errorCode"])),
            text(&f["owner"]),
            text(&f["expires"]),
        );
    }
    if let Some(unknown) = v["unknown"].as_object()
        && !unknown.is_empty()
    {
        let _ = writeln!(out, "\nunknown flags asked for (warn, not crash):");
        for (key, n) in unknown {
            let _ = writeln!(out, "  {key}: {n}");
        }
    }
    if let Some(source) = v["source"].as_str() {
        let _ = writeln!(out, "\ndefinitions: {source}");
    }
    out
}

/// `gantry flags [--json]`.
pub fn list(file: &Path, json: bool) -> anyhow::Result<Outcome> {
    let v = match fetch(file) {
        Ok(v) => v,
        Err(o) => return Ok(o),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", render(&v));
    }
    Ok(Outcome::Success)
}

/// `gantry flag get NAME [--json]`.
pub fn get(file: &Path, name: &str, json: bool) -> anyhow::Result<Outcome> {
    let v = match fetch(file) {
        Ok(v) => v,
        Err(o) => return Ok(o),
    };
    let Some(flag) = v["flags"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["key"] == name)
    else {
        eprintln!("error: no flag `{name}`");
        eprintln!("  hint: `gantry flags` lists them; define it in gantry.toml or the flags file");
        return Ok(Outcome::Usage);
    };
    if json {
        println!("{}", serde_json::to_string_pretty(flag)?);
    } else {
        let e = &flag["evaluation"];
        println!(
            "{name} = {} (variant {}, reason {})",
            text(&e["value"]),
            text(&e["variant"]),
            text(&e["reason"])
        );
        if let Some(o) = flag["override"].as_object() {
            println!(
                "  override by {}: {}{}",
                text(&o["actor"].clone()),
                text(&o.get("reason").cloned().unwrap_or_default()),
                o.get("expires_at")
                    .and_then(|x| x.as_str())
                    .map(|t| format!(", until {t}"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(Outcome::Success)
}

/// `gantry flag set NAME VALUE --reason TEXT [--expires 2h]`: VALUE is JSON when it parses,
/// a string otherwise.
pub fn set(
    file: &Path,
    name: &str,
    value: &str,
    reason: Option<&str>,
    expires: Option<&str>,
) -> anyhow::Result<Outcome> {
    let value: serde_json::Value = serde_json::from_str(value)
        .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
    let inst = match find(file) {
        Ok(i) => i,
        Err(o) => return Ok(o),
    };
    let rt = runtime()?;
    let mut body = serde_json::json!({ "value": value, "reason": reason });
    if let Some(e) = expires {
        body["expires"] = serde_json::Value::String(e.to_string());
    }
    let path = format!("/api/v1/flags/{}", segment(name));
    Ok(report(rt.block_on(inst.send("PUT", &path, Some(&body)))))
}

/// `gantry flag unset NAME --reason TEXT`.
pub fn unset(file: &Path, name: &str, reason: Option<&str>) -> anyhow::Result<Outcome> {
    let inst = match find(file) {
        Ok(i) => i,
        Err(o) => return Ok(o),
    };
    let rt = runtime()?;
    let body = serde_json::json!({ "reason": reason });
    let path = format!("/api/v1/flags/{}", segment(name));
    Ok(report(rt.block_on(inst.send("DELETE", &path, Some(&body)))))
}

/// `gantry drain|brownout|emergency|safe-mode on|off --reason`: `on` overrides the kill switch
/// to true, `off` removes the override (back to the definition: off unless defined otherwise).
/// `gantry brownout on [--shed PERCENT]|off`: the shed share first, so the switch turns on
/// with it; `off` clears both.
pub fn brownout(
    file: &Path,
    on: bool,
    shed: Option<u8>,
    reason: Option<&str>,
) -> anyhow::Result<Outcome> {
    let share = gantry_flags::SHED_PERCENT;
    match (on, shed) {
        (true, Some(p)) => {
            let outcome = set(file, share, &p.to_string(), reason, None)?;
            if outcome != Outcome::Success {
                return Ok(outcome);
            }
        }
        (false, _) => {
            let outcome = unset(file, share, reason)?;
            if outcome != Outcome::Success {
                return Ok(outcome);
            }
        }
        (true, None) => {}
    }
    switch(file, "brownout", on, reason)
}

pub fn switch(file: &Path, key: &str, on: bool, reason: Option<&str>) -> anyhow::Result<Outcome> {
    if on {
        set(file, key, "true", reason, None)
    } else {
        unset(file, key, reason)
    }
}
