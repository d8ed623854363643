//! Client commands that talk to a running instance: `status`, `start|stop|restart`, `rotate`, `reload`, `down`, `wait`, and `up --detach`.

use crate::Outcome;
use crate::client::{Instance, runtime};
use std::io::IsTerminal as _;
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

fn fmt_ms(ms: u64) -> String {
    let s = ms / 1000;
    if ms < 1000 {
        format!("{ms}ms")
    } else if s < 60 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    }
}

/// Renders `/api/v1/status` as a table.
pub fn render_status(v: &serde_json::Value) -> String {
    let boot = &v["boot"];
    let phase = match boot["phase"].as_str() {
        Some("decided") => {
            let outcome = boot["outcome"].as_str().unwrap_or("?").to_uppercase();
            let took = boot["duration_ms"].as_u64().map(fmt_ms).unwrap_or_default();
            match boot["reason"].as_str() {
                Some(r) => format!("{outcome} in {took}: {r}"),
                None => format!("{outcome} in {took}"),
            }
        }
        Some(p) => p.to_string(),
        None => "unknown".into(),
    };
    let mut out = format!(
        "{}: {phase}{}\n",
        v["file"].as_str().unwrap_or("?"),
        if v["shutting_down"] == true {
            " (shutting down)"
        } else {
            ""
        }
    );
    // `[cluster]`: who leads with which term, and who stands by.
    let c = &v["cluster"];
    if let Some(name) = c["name"].as_str() {
        let standbys: Vec<&str> = c["standbys"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str()).collect())
            .unwrap_or_default();
        out.push_str(&format!(
            "cluster {}: {} is {} (leader {}, term {}); standbys: {}\n",
            c["cluster"].as_str().unwrap_or("?"),
            name,
            c["role"].as_str().unwrap_or("?"),
            c["leader"].as_str().unwrap_or("?"),
            c["term"].as_i64().unwrap_or(0),
            if standbys.is_empty() {
                "none".to_string()
            } else {
                standbys.join(", ")
            }
        ));
    }
    let services = v["services"].as_array().cloned().unwrap_or_default();
    let width = services
        .iter()
        .filter_map(|s| s["name"].as_str())
        .map(str::len)
        .max()
        .unwrap_or(7)
        .max(7);
    out.push_str(&format!(
        "{:<width$}  {:<10} {:>7}  {:<5} {:>8}  {:>8}  {}\n",
        "SERVICE", "STATE", "PID", "READY", "RESTARTS", "UPTIME", "LAST ERROR"
    ));
    for s in services {
        let pid = s["pid"]
            .as_u64()
            .map(|p| p.to_string())
            .unwrap_or_else(|| "-".into());
        let uptime = s["uptime_ms"]
            .as_u64()
            .map(fmt_ms)
            .unwrap_or_else(|| "-".into());
        let ready = if s["ready"] == true { "yes" } else { "no" };
        out.push_str(&format!(
            "{:<width$}  {:<10} {:>7}  {:<5} {:>8}  {:>8}  {}\n",
            s["name"].as_str().unwrap_or("?"),
            // An operator's switch shows in place of the state, with who, since when and why.
            s["switch"]
                .as_str()
                .or_else(|| s["state"].as_str())
                .unwrap_or("?"),
            pid,
            ready,
            s["restarts"].as_u64().unwrap_or(0),
            uptime,
            s["switch_detail"]
                .as_str()
                .or_else(|| s["last_error"].as_str())
                .unwrap_or("")
        ));
    }
    out
}

/// A standby's view (`cluster.json`), while the instance holding the state dir still runs.
fn standby_view(inst: &Instance, file: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(inst.state_dir.cluster_standby()).ok()?;
    gantry_state::secure::InstanceLock::holder(&inst.state_dir)?;
    let mut v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["file"] = file.display().to_string().into();
    v["boot"] = serde_json::json!({ "phase": "standby (the leader runs the stack)" });
    v["services"] = serde_json::json!([]);
    Some(v)
}

/// The running instance of `file`, or the usage outcome after saying why there is none.
pub(crate) fn find(file: &Path) -> Result<Instance, Outcome> {
    Instance::find(file).map_err(|e| {
        eprintln!("error: {e}");
        Outcome::Usage
    })
}

pub fn status(file: &Path, json: bool, watch: bool) -> anyhow::Result<Outcome> {
    let inst = match find(file) {
        Ok(i) => i,
        Err(usage) => return Ok(usage),
    };
    // `[cluster]`: a running standby serves no API; it says who leads in its state dir.
    if let Some(v) = standby_view(&inst, file) {
        if json {
            crate::emit(&format!("{v}\n"));
        } else {
            crate::emit(&render_status(&v));
        }
        return Ok(Outcome::Success);
    }
    let rt = runtime()?;
    rt.block_on(async move {
        let tty = std::io::stdout().is_terminal();
        loop {
            let resp = match inst.get("/api/v1/status").await {
                Ok(r) if r.status == 200 => r,
                Ok(r) => {
                    eprintln!("error: gantry answered {}: {}", r.status, r.body);
                    return Ok(Outcome::Failure);
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(Outcome::Failure);
                }
            };
            if json && !watch {
                // The API's own JSON, as it came (1,000 services: no parse and re-encode of
                // half a megabyte).
                crate::emit(&format!("{}\n", resp.body.trim_end()));
                return Ok(Outcome::Success);
            }
            let v: serde_json::Value = serde_json::from_str(&resp.body)?;
            if json {
                crate::emit(&format!("{}\n", serde_json::to_string(&v)?));
            } else {
                if watch && tty {
                    crate::emit("\x1b[H\x1b[2J");
                }
                crate::emit(&render_status(&v));
            }
            if !watch {
                return Ok(Outcome::Success);
            }
            // Re-render on the next event, at most every 250 ms, at least every 2 s.
            let mut body = inst.stream("/api/v1/events").await.ok();
            let deadline = Instant::now() + Duration::from_secs(2);
            if let Some(b) = body.as_mut() {
                use http_body_util::BodyExt as _;
                let _ = tokio::time::timeout_at(deadline, b.frame()).await;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            if !json && !tty {
                crate::emit("\n");
            }
        }
    })
}

/// `gantry start|stop|restart NAME`.
pub fn service_action(
    file: &Path,
    action: &str,
    name: &str,
    reason: Option<&str>,
) -> anyhow::Result<Outcome> {
    let inst = match find(file) {
        Ok(i) => i,
        Err(usage) => return Ok(usage),
    };
    let rt = runtime()?;
    let resp = rt.block_on(inst.post(&format!("/api/v1/services/{name}/{action}"), reason));
    Ok(report(resp))
}

/// `gantry rotate SECRET`.
pub fn rotate(file: &Path, name: &str, reason: Option<&str>) -> anyhow::Result<Outcome> {
    let inst = match find(file) {
        Ok(i) => i,
        Err(usage) => return Ok(usage),
    };
    let rt = runtime()?;
    let resp = rt.block_on(inst.post(&format!("/api/v1/secrets/{name}/rotate"), reason));
    Ok(report(resp))
}

/// `gantry reload [FILE]`: the running instance loads its file again and applies it.
pub fn reload(file: &Path, reason: Option<&str>) -> anyhow::Result<Outcome> {
    let inst = match find(file) {
        Ok(i) => i,
        Err(usage) => return Ok(usage),
    };
    let rt = runtime()?;
    let resp = rt.block_on(inst.post("/api/v1/reload", reason));
    Ok(report(resp))
}

/// `gantry ingress [status] [--json]`: routes, instances, the mode and the golden signals.
pub fn ingress_status(file: &Path, json: bool) -> anyhow::Result<Outcome> {
    let inst = match find(file) {
        Ok(i) => i,
        Err(usage) => return Ok(usage),
    };
    let rt = runtime()?;
    let resp = match rt.block_on(inst.get("/api/v1/ingress")) {
        Ok(r) if r.status == 200 => r,
        other => return Ok(report(other)),
    };
    if json {
        println!("{}", resp.body);
        return Ok(Outcome::Success);
    }
    let v: serde_json::Value = serde_json::from_str(&resp.body).unwrap_or_default();
    print!("{}", render_ingress(&v));
    Ok(Outcome::Success)
}

/// The ingress status as a table: one line per route, one per instance under it.
pub fn render_ingress(v: &serde_json::Value) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mode = v["mode"]["mode"]
        .as_str()
        .or(v["mode"].as_str())
        .unwrap_or("?");
    let _ = writeln!(
        out,
        "mode: {mode}   open: {}",
        v["open"].as_bool().unwrap_or(false)
    );
    let quantile = |x: &serde_json::Value| {
        x.as_f64()
            .map_or("-".to_string(), |s| format!("{:.1}ms", s * 1000.0))
    };
    for r in v["routes"].as_array().into_iter().flatten() {
        let s = &r["signals"];
        let _ = writeln!(
            out,
            "route {:<16} → {:<12} requests {:>8}  5xx {:>6}  in flight {:>4}  p50 {}  p99 {}",
            r["name"].as_str().unwrap_or("?"),
            r["service"].as_str().unwrap_or("?"),
            s["requests"].as_u64().unwrap_or(0),
            s["status"]["5xx"].as_u64().unwrap_or(0),
            s["in_flight"].as_u64().unwrap_or(0),
            quantile(&s["p50"]),
            quantile(&s["p99"]),
        );
    }
    for i in v["instances"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  instance {:<14} {:<21} ready {:<5} breaker {}{}{}",
            i["id"].as_str().unwrap_or("?"),
            i["addr"].as_str().unwrap_or("?"),
            i["ready"].as_bool().unwrap_or(false),
            i["breaker"].as_str().unwrap_or("?"),
            if i["ejected"].as_bool() == Some(true) {
                " (ejected: failing in a row)"
            } else {
                ""
            },
            if i["draining"].as_bool() == Some(true) {
                " (draining)"
            } else {
                ""
            },
        );
    }
    out
}

/// `gantry ingress mode MODE [--shed PERCENT] [--reason TEXT]`.
pub fn ingress_mode(
    file: &Path,
    mode: &str,
    shed_percent: Option<u8>,
    reason: Option<&str>,
) -> anyhow::Result<Outcome> {
    let inst = match find(file) {
        Ok(i) => i,
        Err(usage) => return Ok(usage),
    };
    let rt = runtime()?;
    let body = serde_json::json!({ "mode": mode, "shed_percent": shed_percent, "reason": reason });
    let resp = rt.block_on(inst.post_json("/api/v1/ingress/mode", &body));
    match resp {
        Ok(r) if (200..300).contains(&r.status) => {
            let v: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
            println!(
                "{}",
                v["message"]
                    .as_str()
                    .map_or_else(|| format!("ingress mode: {mode}"), str::to_string)
            );
            Ok(Outcome::Success)
        }
        other => Ok(report(other)),
    }
}

/// `GET path` with the token from the instance of `file`, its JSON body; the outcome to exit
/// with (the error already printed) when it cannot be read.
pub(crate) fn get_json(file: &Path, path: &str) -> Result<serde_json::Value, Outcome> {
    let inst = find(file)?;
    let rt = runtime().map_err(|e| {
        eprintln!("error: {e}");
        Outcome::Failure
    })?;
    match rt.block_on(inst.get_auth(path)) {
        Ok(r) if r.status == 200 => Ok(serde_json::from_str(&r.body).unwrap_or_default()),
        other => Err(report(other)),
    }
}

pub(crate) fn report(resp: Result<crate::client::Response, String>) -> Outcome {
    match resp {
        Ok(r) if (200..300).contains(&r.status) => {
            let v: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
            println!("{}", v["message"].as_str().unwrap_or("accepted"));
            Outcome::Success
        }
        Ok(r) => {
            let v: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
            let msg = v["error"].as_str().map(str::to_string).unwrap_or(r.body);
            eprintln!("error: {msg}");
            if let Some(h) = v["hint"].as_str() {
                eprintln!("  hint: {h}");
            }
            if r.status == 404 {
                Outcome::Usage
            } else {
                Outcome::Failure
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            Outcome::Failure
        }
    }
}

/// `gantry audit [--since 1h] [--limit N] [--json]`: who did what, why, and what came of it.
pub fn audit(
    file: &Path,
    since: Option<Duration>,
    limit: usize,
    json: bool,
) -> anyhow::Result<Outcome> {
    let inst = match find(file) {
        Ok(i) => i,
        Err(usage) => return Ok(usage),
    };
    let mut path = format!("/api/v1/audit?limit={limit}");
    if let Some(since) = since {
        path.push_str(&format!("&since={}s", since.as_secs().max(1)));
    }
    let rt = runtime()?;
    let resp = match rt.block_on(inst.get_auth(&path)) {
        Ok(r) if r.status == 200 => r,
        other => return Ok(report(other)),
    };
    let v: serde_json::Value = serde_json::from_str(&resp.body)?;
    let rows = v["audit"].as_array().cloned().unwrap_or_default();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(Outcome::Success);
    }
    if rows.is_empty() {
        println!("no audited actions");
        return Ok(Outcome::Success);
    }
    let text = |r: &serde_json::Value, k: &str| r[k].as_str().unwrap_or("-").to_string();
    // Oldest first on screen, like a log.
    for r in rows.iter().rev() {
        let target = r["target"]
            .as_str()
            .map(|t| format!(" {t}"))
            .unwrap_or_default();
        let change = match (r["before"].as_str(), r["after"].as_str()) {
            (Some(b), Some(a)) => format!(" ({b} -> {a})"),
            (None, Some(a)) => format!(" (-> {a})"),
            (Some(b), None) => format!(" (was {b})"),
            (None, None) => String::new(),
        };
        let reason = r["reason"]
            .as_str()
            .map(|t| format!(" — {t}"))
            .unwrap_or_default();
        println!(
            "{}  {:<14} {}{target}{change}{reason}\n    {}",
            text(r, "at"),
            text(r, "actor"),
            text(r, "action"),
            text(r, "result")
        );
    }
    Ok(Outcome::Success)
}

/// `gantry down`: asks the instance to shut down and waits until it is gone.
pub fn down(file: &Path, timeout: Duration, reason: Option<&str>) -> anyhow::Result<Outcome> {
    let inst = match find(file) {
        Ok(i) => i,
        Err(usage) => return Ok(usage),
    };
    // `[cluster]`: a standby serves no API; SIGTERM ends its wait (nothing runs there).
    if standby_view(&inst, file).is_some() {
        return stop_standby(&inst, timeout);
    }
    let rt = runtime()?;
    rt.block_on(async move {
        if report(inst.post("/api/v1/shutdown", reason).await) != Outcome::Success {
            return Ok(Outcome::Failure);
        }
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if inst.get("/health/live").await.is_err() {
                println!("stopped");
                return Ok(Outcome::Success);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!("error: gantry still answers after {}s", timeout.as_secs());
        Ok(Outcome::Failure)
    })
}

/// Stops a standing-by instance with SIGTERM (its host pid from the instance lock) and waits
/// for its lock to be released.
fn stop_standby(inst: &Instance, timeout: Duration) -> anyhow::Result<Outcome> {
    let holder = gantry_state::secure::InstanceLock::holder(&inst.state_dir);
    let Some(pid) = holder.and_then(|h| h.pid) else {
        println!("stopped");
        return Ok(Outcome::Success);
    };
    if let Err(e) = gantry_runtime::process::signal_pid(pid, gantry_runtime::Signal::SIGTERM) {
        eprintln!(
            "error: cannot signal the standby (pid {pid}): {e}\n  hint: stop it with `kill {pid}`"
        );
        return Ok(Outcome::Failure);
    }
    let stopped = runtime()?.block_on(async {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if gantry_state::secure::InstanceLock::holder(&inst.state_dir).is_none() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    });
    if stopped {
        println!("stopped (was standing by)");
        return Ok(Outcome::Success);
    }
    eprintln!(
        "error: the standby (pid {pid}) still runs after {}s\n  hint: `kill -9 {pid}` (it runs no services)",
        timeout.as_secs()
    );
    Ok(Outcome::Failure)
}

/// `gantry wait`: until the stack is ready, or until every target answers.
pub fn wait(file: &Path, targets: &[String], timeout: Duration) -> anyhow::Result<Outcome> {
    let rt = runtime()?;
    if targets.is_empty() {
        let inst = match Instance::find(file) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(Outcome::Usage);
            }
        };
        return rt.block_on(async move {
            let until = Instant::now() + timeout;
            let mut last;
            loop {
                match inst.get("/health/ready").await {
                    Ok(r) if r.status == 200 => {
                        println!("ready");
                        return Ok(Outcome::Success);
                    }
                    Ok(r) => last = r.body.trim().to_string(),
                    Err(e) => last = e.lines().next().unwrap_or("").to_string(),
                }
                if Instant::now() >= until {
                    eprintln!("error: not ready after {}s: {last}", timeout.as_secs());
                    return Ok(Outcome::Failure);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    }
    for t in targets {
        if !(t.starts_with("tcp://") || t.starts_with("http://") || t.starts_with("https://")) {
            eprintln!(
                "error: cannot wait for `{t}`\n  hint: write tcp://host:port, http://host:port/path or https://host:port/path"
            );
            return Ok(Outcome::Usage);
        }
    }
    rt.block_on(async move {
        let until = Instant::now() + timeout;
        let mut pending: Vec<String> = targets.to_vec();
        let mut interval = Duration::from_millis(5);
        loop {
            let mut still = Vec::new();
            for t in pending {
                let left = until
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_secs(2));
                let outcome = match t.strip_prefix("tcp://") {
                    Some(addr) => gantry_runtime::probe::tcp(addr, left).await,
                    // https:// is verified against the system roots.
                    None => {
                        let tls = gantry_spec::TlsOptions::default();
                        let base = std::path::Path::new(".");
                        gantry_runtime::probe::http(&t, None, None, &tls, base, left).await
                    }
                };
                if outcome.ok {
                    println!("{t}: up");
                } else {
                    still.push((t, outcome.message));
                }
            }
            if still.is_empty() {
                return Ok(Outcome::Success);
            }
            if Instant::now() >= until {
                for (t, why) in &still {
                    eprintln!("error: {t} not up after {}s: {why}", timeout.as_secs());
                }
                return Ok(Outcome::Failure);
            }
            pending = still.into_iter().map(|(t, _)| t).collect();
            tokio::time::sleep(interval).await;
            interval = (interval * 2).min(Duration::from_millis(250));
        }
    })
}

/// `gantry up --detach`: starts `gantry up` in the background and returns once the boot is decided.
pub fn detach(file: &Path, args: &[String]) -> anyhow::Result<Outcome> {
    let inst = match find(file) {
        Ok(i) => i,
        Err(usage) => return Ok(usage),
    };
    let rt = runtime()?;
    if rt.block_on(inst.get("/health/live")).is_ok() {
        eprintln!(
            "error: gantry already runs for {} at {}\n  hint: `gantry status` shows it; `gantry down` stops it",
            file.display(),
            inst.addr
        );
        return Ok(Outcome::Usage);
    }
    std::fs::create_dir_all(inst.state_dir.root())?;
    // A previous instance's address must not be mistaken for the new one's.
    let _ = std::fs::remove_file(inst.state_dir.api_addr());
    let _ = std::fs::remove_file(inst.state_dir.cluster_standby());
    let log_path = inst.state_dir.detach_log();
    let log = std::fs::File::create(&log_path)?;
    use std::os::unix::process::CommandExt as _;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("-f")
        .arg(file)
        .arg("up")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()?;
    let pid = child.id();
    rt.block_on(async move {
        loop {
            if let Some(status) = child.try_wait()? {
                let out = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: Vec<&str> = out.lines().rev().take(15).collect();
                eprintln!("gantry exited during boot ({status}); last output:");
                for l in tail.iter().rev() {
                    eprintln!("  {l}");
                }
                return Ok(Outcome::Failure);
            }
            // `[cluster]`: a standby boots nothing until it takes over; it is up as it is.
            if let Ok(inst) = Instance::find(file)
                && let Some(v) = standby_view(&inst, file)
            {
                print!("{}", render_status(&v));
                println!(
                    "gantry stands by in the background (pid {pid}); output in {}",
                    log_path.display()
                );
                return Ok(Outcome::Success);
            }
            if let Ok(inst) = Instance::find(file)
                && std::fs::metadata(inst.state_dir.api_addr()).is_ok()
                && let Ok(r) = inst.get("/api/v1/status").await
                && r.status == 200
            {
                let v: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
                if v["boot"]["phase"] == "decided" {
                    let outcome = v["boot"]["outcome"].as_str().unwrap_or("");
                    print!("{}", render_status(&v));
                    println!(
                        "gantry runs in the background (pid {pid}); output in {}",
                        log_path.display()
                    );
                    return Ok(if outcome == "no-go" {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    });
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
}

/// `gantry missions`: read from the state store (works whether or not gantry runs).
pub fn missions(file: &Path, json: bool, all: bool) -> anyhow::Result<Outcome> {
    let checked = match crate::load::load_for_client(file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Outcome::Usage);
        }
    };
    let state_dir = gantry_state::StateDir::for_stack(file, &checked.spec.settings.state_dir);
    let list = match gantry_state::store::Store::open_existing(&state_dir)
        .map_or(Ok(Vec::new()), |s| s.missions(all))
    {
        Ok(list) => list,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Outcome::Failure);
        }
    };
    if json {
        crate::emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&serde_json::json!({ "missions": list }))?
        ));
        return Ok(Outcome::Success);
    }
    if list.is_empty() {
        crate::emit("no open missions\n");
        return Ok(Outcome::Success);
    }
    let mut out = String::new();
    for m in &list {
        out.push_str(&format!(
            "#{} [{}] {}{}: {}\n  since {}\n  fix: {}\n  next: {}\n",
            m["id"],
            m["status"].as_str().unwrap_or(""),
            m["service"]
                .as_str()
                .map(|s| format!("{s} "))
                .unwrap_or_default(),
            m["check"].as_str().unwrap_or(""),
            m["error"].as_str().unwrap_or(""),
            m["created_at"].as_str().unwrap_or(""),
            m["fix_criteria"].as_str().unwrap_or(""),
            m["next_step"].as_str().unwrap_or(""),
        ));
        if let Some(r) = m["remediation"].as_str() {
            out.push_str(&format!("  remediate: {r}\n"));
        }
        let lines = m["output"].as_array().cloned().unwrap_or_default();
        if !lines.is_empty() {
            out.push_str("  last output:\n");
            for l in lines
                .iter()
                .rev()
                .take(10)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                out.push_str(&format!("    {}\n", l.as_str().unwrap_or("")));
            }
        }
    }
    crate::emit(&out);
    Ok(Outcome::Success)
}
