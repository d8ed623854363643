//! `gantry runbook list|show|run|status`: the stack's `[runbooks.NAME]` through the running
//! instance's API; `run` follows the run step by step until it ends (its exit code says how).

use crate::Outcome;
use crate::client::runtime;
use crate::ctl::{find, report};
use std::path::Path;
use std::time::{Duration, Instant};

fn fetch(file: &Path) -> Result<serde_json::Value, Outcome> {
    crate::ctl::get_json(file, "/api/v1/runbooks")
}

fn book<'a>(v: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    v["runbooks"].as_array()?.iter().find(|b| b["name"] == name)
}

/// `gantry runbook list [--json]`.
pub fn list(file: &Path, json: bool) -> anyhow::Result<Outcome> {
    let v = match fetch(file) {
        Ok(v) => v,
        Err(o) => return Ok(o),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(Outcome::Success);
    }
    let books = v["runbooks"].as_array().cloned().unwrap_or_default();
    if books.is_empty() {
        println!("no runbooks: define [runbooks.NAME] with [[runbooks.NAME.steps]] in gantry.toml");
    }
    for b in &books {
        println!(
            "{:<24} {} step(s)  {}",
            b["name"].as_str().unwrap_or("?"),
            b["steps"].as_array().map_or(0, Vec::len),
            b["description"].as_str().unwrap_or("")
        );
    }
    Ok(Outcome::Success)
}

/// `gantry runbook show NAME`.
pub fn show(file: &Path, name: &str) -> anyhow::Result<Outcome> {
    let v = match fetch(file) {
        Ok(v) => v,
        Err(o) => return Ok(o),
    };
    let Some(b) = book(&v, name) else {
        eprintln!("error: no runbook `{name}`\n  hint: `gantry runbook list` lists them");
        return Ok(Outcome::Usage);
    };
    println!("{name}: {}", b["description"].as_str().unwrap_or(""));
    for (i, s) in b["steps"].as_array().into_iter().flatten().enumerate() {
        println!("  {}. {}", i + 1, s.as_str().unwrap_or("?"));
    }
    for run in v["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["runbook"] == name)
        .take(3)
    {
        println!(
            "  ran {} by {}: {}",
            run["started"].as_str().unwrap_or("?"),
            run["actor"].as_str().unwrap_or("?"),
            run["status"].as_str().unwrap_or("?")
        );
    }
    Ok(Outcome::Success)
}

/// `gantry runbook status`: the run under way, else the last one.
pub fn status(file: &Path, json: bool) -> anyhow::Result<Outcome> {
    let v = match fetch(file) {
        Ok(v) => v,
        Err(o) => return Ok(o),
    };
    let run = if v["running"].is_null() {
        v["runs"][0].clone()
    } else {
        v["running"].clone()
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&run)?);
    } else if run.is_null() {
        println!("no runbook has run in this instance");
    } else {
        print_run(&run, 0);
    }
    Ok(Outcome::Success)
}

/// Prints the steps of `run` from `from` on; returns how many it has.
fn print_run(run: &serde_json::Value, from: usize) -> usize {
    let steps = run["steps"].as_array().cloned().unwrap_or_default();
    if from == 0 {
        println!(
            "runbook {} by {} ({}): {}",
            run["runbook"].as_str().unwrap_or("?"),
            run["actor"].as_str().unwrap_or("?"),
            run["started"].as_str().unwrap_or("?"),
            run["status"].as_str().unwrap_or("?")
        );
    }
    let total = run["total"].as_u64().unwrap_or(0);
    for (i, s) in steps.iter().enumerate().skip(from) {
        println!(
            "  {}/{total} {}: {} {}",
            i + 1,
            s["step"].as_str().unwrap_or("?"),
            if s["ok"].as_bool() == Some(true) {
                "ok"
            } else {
                "FAILED"
            },
            s["message"].as_str().unwrap_or("")
        );
    }
    steps.len()
}

/// `gantry runbook run NAME [--dry-run] --reason TEXT`: started, then followed to its end.
pub fn run(
    file: &Path,
    name: &str,
    dry_run: bool,
    reason: Option<&str>,
) -> anyhow::Result<Outcome> {
    let inst = match find(file) {
        Ok(i) => i,
        Err(o) => return Ok(o),
    };
    let rt = runtime()?;
    let body = serde_json::json!({ "reason": reason, "dry_run": dry_run });
    let path = format!("/api/v1/runbooks/{name}/run");
    let resp = rt.block_on(inst.post_json(&path, &body));
    let started = match resp {
        Ok(r) if r.status == 200 && dry_run => {
            let v: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
            println!("runbook {name} (dry run: nothing is done)");
            for s in v["steps"].as_array().into_iter().flatten() {
                println!(
                    "  {}. {}  [{}]",
                    s["step"],
                    s["action"].as_str().unwrap_or("?"),
                    s["now"].as_str().unwrap_or("")
                );
            }
            return Ok(Outcome::Success);
        }
        Ok(r) if (200..300).contains(&r.status) => r,
        other => return Ok(report(other)),
    };
    let v: serde_json::Value = serde_json::from_str(&started.body).unwrap_or_default();
    println!("{}", v["message"].as_str().unwrap_or("started"));
    // Follow it: the run under way, then the finished one.
    let mut shown = usize::MAX;
    let deadline = Instant::now() + Duration::from_secs(3600);
    while Instant::now() < deadline {
        let now = match rt.block_on(inst.get_auth("/api/v1/runbooks")) {
            Ok(r) if r.status == 200 => {
                serde_json::from_str::<serde_json::Value>(&r.body).unwrap_or_default()
            }
            other => return Ok(report(other)),
        };
        let (run, done) = if now["running"]["runbook"] == name {
            (now["running"].clone(), false)
        } else {
            (
                now["runs"]
                    .as_array()
                    .and_then(|r| r.iter().find(|r| r["runbook"] == name).cloned())
                    .unwrap_or_default(),
                true,
            )
        };
        if !run.is_null() {
            shown = if shown == usize::MAX {
                print_run(&run, 0)
            } else {
                shown.max(print_run(&run, shown))
            };
        }
        if done {
            return Ok(if run["status"] == "succeeded" {
                println!("runbook {name}: done");
                Outcome::Success
            } else {
                eprintln!(
                    "runbook {name}: {}",
                    run["status"].as_str().unwrap_or("failed")
                );
                Outcome::Failure
            });
        }
        rt.block_on(async { tokio::time::sleep(Duration::from_millis(100)).await });
    }
    eprintln!("runbook {name}: still running after an hour; `gantry runbook status` follows it");
    Ok(Outcome::Failure)
}
