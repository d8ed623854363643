//! `gantry rollout NAME ...` (start a canary rollout of a replicated, routed service) and
//! `gantry rollout status|promote|pause|resume|abort NAME`, through the running instance's API.

use crate::Outcome;
use crate::client::runtime;
use crate::ctl::{find, report};
use clap::{Args, Subcommand};
use std::path::Path;

/// `gantry rollout status|promote|pause|resume|abort NAME`.
#[derive(Debug, Subcommand)]
pub enum RolloutAction {
    /// Phase, step, weight and the last verdict with its numbers.
    Status {
        name: String,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Skip the remaining steps: every instance gets the new release now.
    Promote(Control),
    /// Hold the current step: the weights stay, nothing advances (a breach still rolls back).
    Pause(Control),
    /// Go on from a paused step (its analysis starts over).
    Resume(Control),
    /// Traffic back to the stable release and the canary restarted with it.
    Abort(Control),
}

/// The service and why.
#[derive(Debug, Args)]
pub struct Control {
    pub name: String,
    /// Why: kept in the audit log with who asked (`gantry audit`).
    #[arg(long)]
    pub reason: Option<String>,
}

/// `gantry rollout NAME [--set-env K=V ...] ...`.
#[derive(Debug, Args)]
pub struct Start {
    /// The replicated service (replicas >= 2, behind an ingress route).
    pub name: Option<String>,
    /// A variable of the new release (repeatable): the running definition with this set.
    #[arg(long = "set-env", value_name = "K=V")]
    pub set_env: Vec<String>,
    /// The new release's command (split like the file's string commands; `${PORT}` etc. expand per instance).
    #[arg(long)]
    pub command: Option<String>,
    /// Percentages of requests to the canary, one step each, e.g. 1,10,50,100.
    #[arg(long, value_delimiter = ',')]
    pub steps: Vec<u8>,
    /// How long each step is analysed (e.g. 30s).
    #[arg(long)]
    pub interval: Option<String>,
    /// The highest share of failed canary requests, 0-1 (default 0.01).
    #[arg(long)]
    pub max_error_ratio: Option<f64>,
    /// The highest canary p99 latency (e.g. 250ms).
    #[arg(long)]
    pub max_p99: Option<String>,
    /// Fewer canary requests in a step than this is "not verified": the step holds.
    #[arg(long)]
    pub min_requests: Option<u64>,
    /// How long a step may stay not verified past its interval (e.g. 5m).
    #[arg(long)]
    pub max_hold: Option<String>,
    /// What a step held for --max-hold does.
    #[arg(long, value_parser = ["pause", "rollback"])]
    pub on_max_hold: Option<String>,
    /// Keep a client on one side by a hash of this cookie.
    #[arg(long, conflicts_with = "sticky_header")]
    pub sticky_cookie: Option<String>,
    /// Keep a client on one side by a hash of this header.
    #[arg(long)]
    pub sticky_header: Option<String>,
    /// canary: the last instance takes weighted steps; blue-green: a full green set beside
    /// the running one, one switch of all traffic, analysed after it (default: the service's
    /// `rollout.strategy`, else canary).
    #[arg(long, value_parser = ["canary", "blue-green"])]
    pub strategy: Option<String>,
    /// Blue/green: an http URL each green instance must answer 2xx/3xx before the switch
    /// (`${PORT}` is its port).
    #[arg(long)]
    pub check: Option<String>,
    /// Why: kept in the audit log with who asked (`gantry audit`).
    #[arg(long)]
    pub reason: Option<String>,
}

/// Starts a rollout.
pub fn start(file: &Path, s: &Start) -> anyhow::Result<Outcome> {
    let Some(name) = &s.name else {
        eprintln!(
            "error: name the service: `gantry rollout NAME --set-env K=V --reason TEXT` (or `gantry rollout status NAME`)"
        );
        return Ok(Outcome::Usage);
    };
    let mut env = serde_json::Map::new();
    for kv in &s.set_env {
        let Some((k, v)) = kv.split_once('=') else {
            eprintln!("error: --set-env {kv}: expected K=V");
            return Ok(Outcome::Usage);
        };
        env.insert(k.to_string(), v.into());
    }
    let mut body = serde_json::json!({ "set_env": env });
    let o = body.as_object_mut().expect("an object");
    let mut put = |k: &str, v: serde_json::Value| {
        if !v.is_null() {
            o.insert(k.into(), v);
        }
    };
    put("command", s.command.clone().into());
    if !s.steps.is_empty() {
        put("steps", s.steps.clone().into());
    }
    put("interval", s.interval.clone().into());
    put("max_error_ratio", s.max_error_ratio.into());
    put("max_p99", s.max_p99.clone().into());
    put("min_requests", s.min_requests.into());
    put("max_hold", s.max_hold.clone().into());
    put("on_max_hold", s.on_max_hold.clone().into());
    put("sticky_cookie", s.sticky_cookie.clone().into());
    put("sticky_header", s.sticky_header.clone().into());
    put("strategy", s.strategy.clone().into());
    put("check", s.check.clone().into());
    put("reason", s.reason.clone().into());
    let inst = match find(file) {
        Ok(i) => i,
        Err(usage) => return Ok(usage),
    };
    let rt = runtime()?;
    let path = format!("/api/v1/services/{name}/rollout");
    Ok(report(rt.block_on(inst.post_json(&path, &body))))
}

/// `status`, `promote`, `pause`, `resume`, `abort`.
pub fn action(file: &Path, a: &RolloutAction) -> anyhow::Result<Outcome> {
    let inst = match find(file) {
        Ok(i) => i,
        Err(usage) => return Ok(usage),
    };
    let rt = runtime()?;
    let (verb, c) = match a {
        RolloutAction::Status { name, json } => {
            let resp = rt.block_on(inst.get_auth(&format!("/api/v1/services/{name}/rollout")));
            return Ok(match resp {
                Ok(r) if r.status == 200 => {
                    if *json {
                        println!("{}", r.body);
                    } else {
                        let v: serde_json::Value =
                            serde_json::from_str(&r.body).unwrap_or_default();
                        print!("{}", render(&v));
                    }
                    Outcome::Success
                }
                other => report(other),
            });
        }
        RolloutAction::Promote(c) => ("promote", c),
        RolloutAction::Pause(c) => ("pause", c),
        RolloutAction::Resume(c) => ("resume", c),
        RolloutAction::Abort(c) => ("abort", c),
    };
    let path = format!("/api/v1/services/{}/rollout/{verb}", c.name);
    Ok(report(rt.block_on(inst.post(&path, c.reason.as_deref()))))
}

/// `gantry rollback NAME [--to N]`.
pub fn rollback(
    file: &Path,
    name: &str,
    to: Option<i64>,
    reason: Option<&str>,
) -> anyhow::Result<Outcome> {
    let inst = match find(file) {
        Ok(i) => i,
        Err(usage) => return Ok(usage),
    };
    let rt = runtime()?;
    let body = serde_json::json!({ "to": to, "reason": reason });
    let path = format!("/api/v1/services/{name}/rollback");
    Ok(report(rt.block_on(inst.post_json(&path, &body))))
}

/// `gantry releases NAME [--json]`.
pub fn releases(file: &Path, name: &str, json: bool) -> anyhow::Result<Outcome> {
    let inst = match find(file) {
        Ok(i) => i,
        Err(usage) => return Ok(usage),
    };
    let rt = runtime()?;
    let resp = rt.block_on(inst.get_auth(&format!("/api/v1/services/{name}/releases")));
    Ok(match resp {
        Ok(r) if r.status == 200 => {
            if json {
                println!("{}", r.body);
            } else {
                let v: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
                for rel in v.as_array().into_iter().flatten() {
                    let restores = rel["restores"]
                        .as_i64()
                        .map(|n| format!("restores {n}  "))
                        .unwrap_or_default();
                    println!(
                        "{:>4}  {:<12} {}  {restores}{}",
                        rel["number"].as_i64().unwrap_or(0),
                        rel["status"].as_str().unwrap_or("?"),
                        rel["created_at"].as_str().unwrap_or("?"),
                        rel["definition"]["command"]
                            .as_array()
                            .map(|a| a
                                .iter()
                                .filter_map(|x| x.as_str())
                                .collect::<Vec<_>>()
                                .join(" "))
                            .unwrap_or_default()
                    );
                }
            }
            Outcome::Success
        }
        other => report(other),
    })
}

/// The status as a few lines.
pub fn render(v: &serde_json::Value) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if v["strategy"] == "blue_green" {
        let _ = writeln!(
            out,
            "{}: blue/green, {} ({}; green {}, {} % of traffic on green)",
            v["service"].as_str().unwrap_or("?"),
            v["phase"].as_str().unwrap_or("?"),
            v["stage"].as_str().unwrap_or("?"),
            v["canary"].as_str().unwrap_or("?"),
            v["weight"].as_u64().unwrap_or(0),
        );
    } else {
        let _ = writeln!(
            out,
            "{}: {} (canary {}, weight {} %{})",
            v["service"].as_str().unwrap_or("?"),
            v["phase"].as_str().unwrap_or("?"),
            v["canary"].as_str().unwrap_or("?"),
            v["weight"].as_u64().unwrap_or(0),
            v["step"]
                .as_u64()
                .map(|s| format!(
                    ", step {s} of {}",
                    v["steps"].as_array().map_or(0, Vec::len)
                ))
                .unwrap_or_default()
        );
    }
    if let Some(t) = v["last_verdict"]["text"].as_str() {
        let _ = writeln!(out, "  last verdict: {t}");
    } else if v["last_verdict"]["verdict"] == "pass" {
        let _ = writeln!(out, "  last verdict: pass");
    }
    if let Some(why) = v["detail"]["RolledBack"]["why"].as_str() {
        let _ = writeln!(out, "  rolled back: {why}");
    }
    if let Some(why) = v["detail"]["Paused"]["why"].as_str() {
        let _ = writeln!(out, "  paused: {why}");
    }
    out
}
