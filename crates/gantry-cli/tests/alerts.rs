//! Alerts on a real stack: a killed critical service fires the built-in P0 rule, the webhook (a real
//! HTTP receiver in the test) gets exactly one firing and one resolve in Alertmanager's format,
//! a failing receiver is retried, and a notification not yet delivered survives a restart of gantry;
//! the exec sink runs a real script per notification (no secret reaches it); gantry's own planned
//! restarts notify nobody.

mod support;

use std::io::{BufRead, BufReader, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use support::*;

/// An HTTP receiver: answers 503 to the first `fail_first` requests, 200 after; keeps the bodies
/// of every request it answered 200.
struct Receiver {
    port: u16,
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    attempts: Arc<Mutex<u32>>,
}

/// Reads one HTTP request's head and returns its body (by its Content-Length).
fn request_body(reader: &mut impl BufRead) -> Vec<u8> {
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; len];
    let _ = reader.read_exact(&mut body);
    body
}

/// Waits (20 s at most) until `hook` got a firing `alert`; its notification.
fn firing_body(hook: &Receiver, alert: &str) -> serde_json::Value {
    assert!(
        eventually(20, || statuses(hook)
            .iter()
            .any(|(s, a, _)| s == "firing" && a == alert)),
        "no firing {alert}; received {:?}",
        statuses(hook)
    );
    hook.bodies
        .lock()
        .unwrap()
        .iter()
        .find(|b| b["alerts"][0]["labels"]["alertname"] == alert)
        .cloned()
        .unwrap()
}

fn receiver_on(listener: TcpListener, fail_first: u32) -> Receiver {
    let port = listener.local_addr().unwrap().port();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let attempts = Arc::new(Mutex::new(0u32));
    let (b, a) = (bodies.clone(), attempts.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let body = request_body(&mut BufReader::new(stream.try_clone().unwrap()));
            let n = {
                let mut a = a.lock().unwrap();
                *a += 1;
                *a
            };
            let ok = n > fail_first;
            if ok && let Ok(v) = serde_json::from_slice(&body) {
                b.lock().unwrap().push(v);
            }
            let status = if ok {
                "200 OK"
            } else {
                "503 Service Unavailable"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    Receiver {
        port,
        bodies,
        attempts,
    }
}

fn stack(hook: u16, web: u16) -> String {
    format!(
        r#"
[alerts]
webhook = "http://127.0.0.1:{hook}/hook"

[services.web]
command = "FIXTURE --name alerted-web --listen {web}"
priority = "critical"
readiness = {{ tcp = "127.0.0.1:{web}", period = "100ms" }}
"#
    )
}

fn kill_web(web: u16) {
    let pids = processes_with(&format!("--listen {web}"));
    assert_eq!(pids.len(), 1, "{pids:?}");
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pids[0].to_string()])
        .status();
}

fn statuses(r: &Receiver) -> Vec<(String, String, String)> {
    r.bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["status"].as_str().unwrap_or("").to_string(),
                b["alerts"][0]["labels"]["alertname"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                b["alerts"][0]["labels"]["service"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn a_killed_critical_service_pages_once_is_retried_and_resolves_once() {
    let hook = receiver_on(TcpListener::bind("127.0.0.1:0").unwrap(), 2);
    let web = free_port();
    let mut up = up("alerts", &stack(hook.port, web), &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "go");
    up.wait_state("web", "ready", 10);
    kill_web(web);
    up.wait_state("web", "failed", 10);
    up.wait_for("the alert fires", 10, |v| {
        v["event"] == "alert" && v["status"] == "firing" && v["alert"] == "critical_service_down"
    });
    // Two 503s, then delivered (backoff 1 s, 2 s).
    assert!(
        eventually(20, || statuses(&hook).len() == 1),
        "attempts {}",
        hook.attempts.lock().unwrap()
    );
    assert_eq!(*hook.attempts.lock().unwrap(), 3);
    let body = hook.bodies.lock().unwrap()[0].clone();
    assert_eq!(body["version"], "4");
    assert_eq!(body["alerts"][0]["labels"]["severity"], "P0");
    assert_eq!(
        body["alerts"][0]["annotations"]["summary"],
        "critical service web is down"
    );
    // Back: one resolve.
    let (code, out) = gantry_in(&up.dir, &["start", "web"]);
    assert_eq!(code, 0, "{out}");
    up.wait_for("the alert resolves", 15, |v| {
        v["event"] == "alert" && v["status"] == "resolved"
    });
    assert!(eventually(10, || statuses(&hook).len() == 2));
    // Several evaluations later, still exactly one firing and one resolve.
    assert!(!eventually(3, || statuses(&hook).len() > 2));
    assert_eq!(
        statuses(&hook),
        [
            (
                "firing".into(),
                "critical_service_down".into(),
                "web".into()
            ),
            (
                "resolved".into(),
                "critical_service_down".into(),
                "web".into()
            ),
        ]
    );
    // The P0 opened an incident; its timeline has the alert, the state changes and the
    // operator's start; it resolved with the alert; the review draft is built from it.
    let (code, out) = gantry_in(&up.dir, &["incident", "list", "--json"]);
    assert_eq!(code, 0, "{out}");
    let list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(list.len(), 1, "{out}");
    assert_eq!(list[0]["status"], "resolved");
    assert_eq!(list[0]["severity"], "P0");
    let (code, out) = gantry_in(&up.dir, &["incident", "show", "1", "--json"]);
    assert_eq!(code, 0, "{out}");
    let inc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let lines: Vec<String> = inc["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{} {}",
                t["kind"].as_str().unwrap(),
                t["text"].as_str().unwrap()
            )
        })
        .collect();
    let has = |p: &str| lines.iter().any(|l| l.starts_with(p));
    assert!(
        has("alert firing: [P0] critical service web is down"),
        "{lines:?}"
    );
    assert!(has("action service.start web by cli:"), "{lines:?}");
    assert!(has("transition web: "), "{lines:?}");
    assert!(has("alert resolved: [P0]"), "{lines:?}");
    let (code, md) = gantry_in(&up.dir, &["incident", "postmortem", "1"]);
    assert_eq!(code, 0, "{md}");
    assert!(
        md.starts_with("# Incident 1: critical service web is down"),
        "{md}"
    );
    assert!(md.contains("service.start web by cli:"), "{md}");
    assert_eq!(gantry_in(&up.dir, &["incident", "show", "7"]).0, 2);
    assert_eq!(up.stop(), 0);
}

#[test]
fn a_notification_the_receiver_missed_is_delivered_after_gantry_restarts() {
    // A port nothing listens on yet.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let web = free_port();
    let mut up = up("alerts-restart", &stack(port, web), &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "go");
    up.wait_state("web", "ready", 10);
    kill_web(web);
    up.wait_for("the alert fires", 10, |v| {
        v["event"] == "alert" && v["status"] == "firing"
    });
    up.stop();
    // The receiver comes up; gantry starts again on the same state dir.
    let hook = receiver_on(TcpListener::bind(("127.0.0.1", port)).unwrap(), 0);
    let mut again = std::process::Command::new(gantry())
        .arg("up")
        .current_dir(&up.dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let delivered = eventually(20, || !statuses(&hook).is_empty());
    let _ = std::process::Command::new("kill")
        .args(["-INT", &again.id().to_string()])
        .status();
    let _ = again.wait();
    assert!(delivered, "the saved notification was not delivered");
    assert_eq!(statuses(&hook)[0].0, "firing");
    assert_eq!(statuses(&hook)[0].1, "critical_service_down");
}

/// A certificate for `localhost` that expires in `days` days, as (cert PEM, key PEM).
fn short_certificate(days: u64) -> (String, String) {
    let end = std::time::SystemTime::now() + std::time::Duration::from_secs(days * 86_400);
    let date = gantry_time::rfc3339_utc(end);
    let ymd: Vec<i32> = date[..10].split('-').map(|p| p.parse().unwrap()).collect();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
    params.not_after = rcgen::date_time_ymd(ymd[0], ymd[1] as u8, ymd[2] as u8);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// A rule of the user's (`[alerts.rules.NAME]`) fires on a flapping service, the built-in
/// certificate rule on the ingress's certificate that expires in 3 days, the disabled built-in
/// never, and an override applies (crash_loop turned off for the flapping service by `except`).
#[test]
fn a_users_rule_and_the_certificate_rule_fire_and_an_override_holds() {
    let hook = receiver_on(TcpListener::bind("127.0.0.1:0").unwrap(), 0);
    let (web, ing) = (free_port(), free_port());
    let toml = format!(
        r#"
[alerts]
webhook = "http://127.0.0.1:{hook}/hook"
disabled = ["readiness_lost"]

[alerts.rules.crash_loop]
except = ["flappy"]

[alerts.rules.flappy_restarts]
severity = "P2"
signal = "service_restarts_total"
service = "flappy"
window = "1m"
above = 1
summary = "{{service}} restarted more than once in a minute"
labels = {{ team = "payments" }}

[ingress]
listen = "127.0.0.1:{ing}"
tls = {{ cert = "cert.pem", key = "key.pem" }}

[[ingress.routes]]
path = "/"
service = "web"

[services.web]
command = "FIXTURE --name alerted-web --http {web}"
upstream = "127.0.0.1:{web}"
readiness = {{ http = "http://127.0.0.1:{web}/health", period = "100ms" }}

[services.flappy]
command = ["sh", "-c", "sleep 0.4; exit 1"]
start_grace = "100ms"
restart = "always"
retry = {{ attempts = 100, backoff = "100ms", max_backoff = "200ms" }}
start_limit = {{ burst = 1000, interval = "10s" }}
"#,
        hook = hook.port
    );
    let (cert, key) = short_certificate(3);
    let mut up = up_with("alerts-rules", &toml, &[], |dir| {
        std::fs::write(dir.join("cert.pem"), cert).unwrap();
        std::fs::write(dir.join("key.pem"), key).unwrap();
    });
    up.wait_boot(20);
    let fired = |name: &str| {
        statuses(&hook)
            .iter()
            .any(|(status, alert, _)| status == "firing" && alert == name)
    };
    assert!(
        eventually(30, || fired("flappy_restarts")
            && fired("certificate_expiring")),
        "received {:?}; events:\n{}",
        statuses(&hook),
        up.log()
    );
    let bodies = hook.bodies.lock().unwrap().clone();
    let mine = bodies
        .iter()
        .find(|b| b["alerts"][0]["labels"]["alertname"] == "flappy_restarts")
        .unwrap();
    assert_eq!(mine["alerts"][0]["labels"]["severity"], "P2");
    assert_eq!(mine["alerts"][0]["labels"]["team"], "payments");
    assert_eq!(
        mine["alerts"][0]["annotations"]["summary"],
        "flappy restarted more than once in a minute"
    );
    let cert = bodies
        .iter()
        .find(|b| b["alerts"][0]["labels"]["alertname"] == "certificate_expiring")
        .unwrap();
    assert_eq!(
        cert["alerts"][0]["labels"]["target"],
        format!("ingress 127.0.0.1:{ing}")
    );
    assert!(
        !fired("crash_loop"),
        "turned off for flappy: {:?}",
        statuses(&hook)
    );
    assert!(!fired("readiness_lost"));
    up.stop();
}

/// An https receiver with a certificate for 127.0.0.1 signed by its own CA: the bodies it got.
fn https_receiver() -> (u16, String, Arc<Mutex<Vec<serde_json::Value>>>) {
    https_receiver_for(None)
}

/// [`https_receiver`] whose certificate ends in `days` days (rcgen's default when None).
fn https_receiver_for(days: Option<u64>) -> (u16, String, Arc<Mutex<Vec<serde_json::Value>>>) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let issuer = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    if let Some(days) = days {
        let end = std::time::SystemTime::now() + std::time::Duration::from_secs(days * 86_400);
        let date = gantry_time::rfc3339_utc(end);
        let ymd: Vec<i32> = date[..10].split('-').map(|p| p.parse().unwrap()).collect();
        params.not_after = rcgen::date_time_ymd(ymd[0], ymd[1] as u8, ymd[2] as u8);
    }
    let leaf = params.signed_by(&key, &issuer).unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let b = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(tcp) = stream else { break };
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                continue;
            };
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let body = request_body(&mut BufReader::new(&mut tls));
            if let Ok(v) = serde_json::from_slice(&body) {
                b.lock().unwrap().push(v);
            }
            let _ = write!(
                tls,
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    (port, issuer.pem(), bodies)
}

/// An https webhook verified against the CA the file names gets the notification; a failing
/// delivery names its sink (without the hook's path, which may be its secret).
#[test]
fn an_https_webhook_is_verified_and_delivered() {
    let (port, ca, bodies) = https_receiver();
    let web = free_port();
    let toml = format!(
        r#"
[alerts]
webhook = "https://127.0.0.1:{port}/services/T000/B000/secret-part"
webhook_ca = "ca.pem"

[services.web]
command = "FIXTURE --name alerted-web --listen {web}"
priority = "critical"
readiness = {{ tcp = "127.0.0.1:{web}", period = "100ms" }}
"#
    );
    let mut up = up_with("alerts-https", &toml, &[], |dir| {
        std::fs::write(dir.join("ca.pem"), &ca).unwrap();
    });
    assert_eq!(up.wait_boot(20)["outcome"], "go");
    kill_web(web);
    assert!(
        eventually(20, || !bodies.lock().unwrap().is_empty()),
        "nothing delivered; events:\n{}",
        up.log()
    );
    let body = bodies.lock().unwrap()[0].clone();
    assert_eq!(
        body["alerts"][0]["labels"]["alertname"],
        "critical_service_down"
    );
    up.stop();

    // Without the CA, the receiver's certificate is not trusted: the failure names the sink.
    let toml = toml.replace("webhook_ca = \"ca.pem\"\n", "");
    let web2 = free_port();
    let toml = toml.replace(&web.to_string(), &web2.to_string());
    let mut up = support::up("alerts-https-untrusted", &toml, &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "go");
    kill_web(web2);
    let failed = up.wait_for("the failed delivery", 20, |v| {
        v["event"] == "alert_delivery_failed"
    });
    let line = failed["error"].as_str().unwrap().to_string();
    assert!(
        line.contains(&format!("webhook https://127.0.0.1:{port}/…")),
        "{line}"
    );
    assert!(!line.contains("secret-part"), "{line}");
    up.stop();
}

/// The built-in P1 rules on a real stack: a crash loop (its window overridden to 10 s), a start
/// breaker left open (a 1 s cooldown whose half-open trials take 1.5 s and fail again while it is
/// broken), readiness lost (its `for` overridden to 1 s) — each notified firing exactly once, and
/// each resolved exactly once when its cause is gone: the crash loop once its window holds no
/// crash, the breaker once a trial succeeds, readiness once the probe passes again.
#[test]
fn crash_loop_breaker_and_lost_readiness_fire_and_readiness_resolves() {
    let hook = receiver_on(TcpListener::bind("127.0.0.1:0").unwrap(), 0);
    let toml = format!(
        r#"
[alerts]
webhook = "http://127.0.0.1:{hook}/hook"

[alerts.rules.readiness_lost]
for = "1s"

[alerts.rules.crash_loop]
window = "10s"

[services.crashy]
command = ["sh", "-c", "[ -f crash ] && {{ sleep 0.3; exit 1; }}; exec sleep 600"]
working_dir = "."
start_grace = "100ms"
priority = "low"
restart = "always"
retry = {{ attempts = 1000, backoff = "100ms", max_backoff = "200ms", jitter = false }}
start_limit = {{ burst = 1000, interval = "10s" }}

[services.breaky]
command = ["sh", "-c", "[ -f broken ] && {{ sleep 1.5; exit 1; }}; exec sleep 600"]
working_dir = "."
start_grace = "2s"
priority = "low"
restart = "always"
retry = {{ attempts = 1000, backoff = "50ms", jitter = false }}
start_breaker = {{ failures = 2, cooldown = "1s" }}

[services.flaky]
command = ["sleep", "600"]
working_dir = "."
priority = "low"
readiness = {{ exec = "test -f ready-flag", period = "100ms", failure_threshold = 1 }}
"#,
        hook = hook.port
    );
    let mut up = up_with("alerts-p1", &toml, &[], |dir| {
        std::fs::write(dir.join("ready-flag"), "").unwrap();
    });
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    let dir = up.dir.clone();
    // Crash loop: from now on it exits after 0.3 s, over and over.
    std::fs::write(dir.join("crash"), "").unwrap();
    let _ = gantry_in(&dir, &["restart", "crashy"]);
    // Breaker: every start fails from now on.
    std::fs::write(dir.join("broken"), "").unwrap();
    let mut pid = None;
    assert!(eventually(10, || {
        pid = status_pid(&dir, "breaky");
        pid.is_some()
    }));
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid.unwrap().to_string()])
        .status();
    // Readiness lost.
    std::fs::remove_file(dir.join("ready-flag")).unwrap();
    let count = |status: &str, name: &str| {
        statuses(&hook)
            .iter()
            .filter(|(s, alert, _)| s == status && alert == name)
            .count()
    };
    let fired = |name: &str| count("firing", name);
    let resolved = |name: &str| count("resolved", name);
    assert!(
        eventually(40, || fired("crash_loop") >= 1
            && fired("breaker_open") >= 1
            && fired("readiness_lost") >= 1),
        "received {:?}; events:\n{}",
        statuses(&hook),
        up.log()
    );
    // The breaker goes half-open for a trial that fails again, and open again: still one alert.
    let breaker = |dir: &std::path::Path| {
        let (_, out) = gantry_in(dir, &["status", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        v["services"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == "breaky"))
            .and_then(|s| s["breaker"].as_str().map(str::to_string))
            .unwrap_or_default()
    };
    assert!(
        eventually(20, || breaker(&dir) == "half-open"),
        "{}",
        breaker(&dir)
    );
    assert!(
        eventually(20, || breaker(&dir) == "open"),
        "{}",
        breaker(&dir)
    );
    assert!(
        eventually(20, || breaker(&dir) == "half-open"),
        "{}",
        breaker(&dir)
    );
    // Back: the causes go away; each alert resolves once.
    std::fs::write(dir.join("ready-flag"), "").unwrap();
    std::fs::remove_file(dir.join("crash")).unwrap();
    std::fs::remove_file(dir.join("broken")).unwrap();
    assert!(
        eventually(40, || resolved("readiness_lost") == 1
            && resolved("breaker_open") == 1
            && resolved("crash_loop") == 1),
        "received {:?}; events:\n{}",
        statuses(&hook),
        up.log()
    );
    // Several evaluations later: still one firing and one resolve each.
    assert!(!eventually(3, || statuses(&hook).len() > 6));
    for name in ["crash_loop", "breaker_open", "readiness_lost"] {
        assert_eq!(fired(name), 1, "{name}: {:?}", statuses(&hook));
        assert_eq!(resolved(name), 1, "{name}: {:?}", statuses(&hook));
    }
    assert_eq!(statuses(&hook).len(), 6, "{:?}", statuses(&hook));
    up.stop();
}

/// The pid `gantry status` shows for `service`.
fn status_pid(dir: &std::path::Path, service: &str) -> Option<u32> {
    let (_, out) = gantry_in(dir, &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).ok()?;
    v["services"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == service)?["pid"]
        .as_u64()
        .map(|p| p as u32)
}

/// The certificate of a TLS probe's endpoint (an https readiness probe) that ends in 5 days
/// fires certificate_expiring, named by the probe's endpoint.
#[test]
fn a_tls_probes_certificate_about_to_expire_fires() {
    let (port, ca, _) = https_receiver_for(Some(5));
    let hook = receiver_on(TcpListener::bind("127.0.0.1:0").unwrap(), 0);
    let toml = format!(
        r#"
[alerts]
webhook = "http://127.0.0.1:{hook}/hook"

[services.remote]
kind = "external"
readiness = {{ http = "https://127.0.0.1:{port}/health", ca_file = "ca.pem", period = "1s" }}
"#,
        hook = hook.port
    );
    let mut up = up_with("alerts-probe-cert", &toml, &[], |dir| {
        std::fs::write(dir.join("ca.pem"), &ca).unwrap();
    });
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    let cert = firing_body(&hook, "certificate_expiring");
    assert_eq!(
        cert["alerts"][0]["labels"]["target"],
        format!("probe 127.0.0.1:{port}")
    );
    up.stop();
}

/// A NO-GO boot reaches someone: the boot_no_go P0 is delivered before gantry exits.
#[test]
fn a_no_go_boot_is_notified_before_gantry_exits() {
    let hook = receiver_on(TcpListener::bind("127.0.0.1:0").unwrap(), 0);
    let toml = format!(
        r#"
[alerts]
webhook = "http://127.0.0.1:{hook}/hook"

[services.db]
command = ["sh", "-c", "exit 3"]
priority = "critical"
"#,
        hook = hook.port
    );
    let mut up = up("alerts-no-go", &toml, &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "no-go", "{}", up.log());
    let code = up.wait_exit(30);
    assert_eq!(code, 1);
    assert!(
        statuses(&hook)
            .iter()
            .any(|(s, a, _)| s == "firing" && a == "boot_no_go"),
        "received {:?}; events:\n{}",
        statuses(&hook),
        up.log()
    );
}

/// A rule on a service's memory fires with nobody reading the figures: the `/proc` usage is
/// sampled on a timer for such a rule (otherwise only when a reader asks for it).
#[test]
fn a_memory_rule_fires_without_a_reader_of_the_figures() {
    let hook = receiver_on(TcpListener::bind("127.0.0.1:0").unwrap(), 0);
    let toml = format!(
        r#"
[alerts]
webhook = "http://127.0.0.1:{hook}/hook"

[alerts.rules.hog_memory]
severity = "P2"
signal = "service_rss_bytes"
service = "hog"
above = 50000000
summary = "{{service}} holds more than 50 MB"

[services.hog]
command = ["sh", "-c", "sleep 1; exec python3 -c 'import time; x = b\"x\" * (64 << 20); time.sleep(600)'"]
"#,
        hook = hook.port
    );
    let mut up = up("alerts-memory", &toml, &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    let body = firing_body(&hook, "hog_memory");
    assert_eq!(body["alerts"][0]["labels"]["service"], "hog", "{body}");
    up.stop();
}

/// The disk feeder on a real stack: disk_low, its threshold overridden above any free share,
/// fires for the state dir's file system.
#[test]
fn the_disk_rule_fires_on_the_state_dirs_file_system() {
    let hook = receiver_on(TcpListener::bind("127.0.0.1:0").unwrap(), 0);
    let toml = format!(
        r#"
[alerts]
webhook = "http://127.0.0.1:{hook}/hook"

[alerts.rules.disk_low]
below = 1.01
for = "0s"

[services.idle]
command = ["sleep", "600"]
"#,
        hook = hook.port
    );
    let mut up = up("alerts-disk", &toml, &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    let disk = firing_body(&hook, "disk_low");
    assert!(
        disk["alerts"][0]["labels"]["path"]
            .as_str()
            .is_some_and(|p| p.ends_with(".gantry")),
        "{disk}"
    );
    up.stop();
}

/// Gantry's own planned work does not alert: `gantry restart` of a critical service whose new
/// incarnation fails its readiness probe for a while (it listens after 400 ms) three times in a
/// row reaches nobody — not the built-in rules (readiness_lost at once here) nor a rule on the
/// probe failures it causes, whose minute-long window spans the restarts — while the same rules
/// fire when its health fails on its own (the control: the rules would have caught the restarts).
#[test]
fn a_planned_restart_of_a_critical_service_notifies_nobody() {
    let hook = receiver_on(TcpListener::bind("127.0.0.1:0").unwrap(), 0);
    let web = free_port();
    let toml = format!(
        r#"
[alerts]
webhook = "http://127.0.0.1:{hook}/hook"

[alerts.rules.readiness_lost]
for = "0s"

[alerts.rules.probe_failures]
severity = "P2"
signal = "service_probe_failures_total"
window = "1m"
above = 0
summary = "{{service}}: a probe failed"

[services.web]
command = "FIXTURE --name planned-web --delay 400 --unready-file unready --http {web}"
working_dir = "."
priority = "critical"
readiness = {{ http = "http://127.0.0.1:{web}/health", period = "100ms" }}
"#,
        hook = hook.port
    );
    let mut up = up("alerts-planned", &toml, &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    let dir = up.dir.clone();
    let probe_failures = |dir: &std::path::Path| {
        let (_, out) = gantry_in(dir, &["status", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        v["services"][0]["probe_failures_total"]
            .as_u64()
            .unwrap_or(0)
    };
    let before = probe_failures(&dir);
    for n in 2..=4 {
        let (code, out) = gantry_in(&dir, &["restart", "web", "--reason", "planned"]);
        assert_eq!(code, 0, "{out}");
        up.wait_count("web", "ready", n, 20);
    }
    // The restarts did make its probe fail (else this test would prove nothing).
    assert!(probe_failures(&dir) > before, "no probe failed");
    // Several evaluations after the last one: nothing was sent, nothing fired.
    assert!(
        !eventually(4, || !statuses(&hook).is_empty()),
        "received {:?}",
        statuses(&hook)
    );
    assert!(
        !up.events
            .iter()
            .any(|v| v["event"] == "alert" && v["status"] == "firing"),
        "{}",
        up.log()
    );
    // The control: health failing on its own is not planned, and the same rules fire on it.
    std::fs::write(dir.join("unready"), "").unwrap();
    firing_body(&hook, "probe_failures");
    firing_body(&hook, "readiness_lost");
    up.stop();
}

/// The exec sink end to end: a real script gantry runs per notification records its arguments,
/// its environment and its standard input (the Alertmanager JSON) in a file of its own; a killed
/// critical service gives exactly one firing and one resolve, and the secret given to that
/// service (from gantry's own environment) is in none of them.
#[test]
fn the_exec_sink_runs_a_script_once_per_firing_and_resolve_without_secrets() {
    const SECRET: &str = "s3cr3t-exec-sink-value-7f1d";
    let web = free_port();
    let toml = format!(
        r#"
[alerts]
exec = ["./notify.sh", "--channel", "ops"]

[secrets.API_KEY]
from_env = "WEB_API_KEY"
services = ["web"]

[services.web]
command = "FIXTURE --name exec-sink-web --listen {web}"
priority = "critical"
readiness = {{ tcp = "127.0.0.1:{web}", period = "100ms" }}
"#
    );
    let script = "#!/bin/sh\n\
        # One file per notification: its arguments, its environment, its standard input.\n\
        out=notified/$$.txt\n\
        mkdir -p notified\n\
        {\n\
          printf 'ARGS %s\\n' \"$*\"\n\
          env | sed 's/^/ENV /'\n\
          printf 'STDIN '\n\
          cat\n\
          printf '\\n'\n\
        } > \"$out.tmp\" && mv \"$out.tmp\" \"$out\"\n";
    let mut up = up_env(
        "alerts-exec",
        &toml,
        &[],
        &[("WEB_API_KEY", SECRET)],
        |dir| {
            use std::os::unix::fs::PermissionsExt as _;
            let path = dir.join("notify.sh");
            std::fs::write(&path, script).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        },
    );
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    up.wait_state("web", "ready", 10);
    let received = |dir: &std::path::Path| -> Vec<String> {
        let mut files: Vec<_> = std::fs::read_dir(dir.join("notified"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "txt"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect()
    };
    let dir = up.dir.clone();
    kill_web(web);
    up.wait_state("web", "failed", 10);
    assert!(
        eventually(20, || received(&dir).len() == 1),
        "{:?}\n{}",
        received(&dir),
        up.log()
    );
    let (code, out) = gantry_in(&dir, &["start", "web"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        eventually(20, || received(&dir).len() == 2),
        "{:?}",
        received(&dir)
    );
    // Several evaluations later, still one firing and one resolve.
    assert!(!eventually(3, || received(&dir).len() > 2));
    let notes = received(&dir);
    let bodies: Vec<serde_json::Value> = notes
        .iter()
        .map(|n| {
            let line = n.lines().find_map(|l| l.strip_prefix("STDIN ")).unwrap();
            serde_json::from_str(line).unwrap()
        })
        .collect();
    let seen: Vec<(&str, &str)> = bodies
        .iter()
        .map(|b| {
            (
                b["status"].as_str().unwrap(),
                b["alerts"][0]["labels"]["alertname"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("firing", "critical_service_down"),
            ("resolved", "critical_service_down")
        ]
    );
    for (note, body) in notes.iter().zip(&bodies) {
        assert!(note.contains("ARGS --channel ops\n"), "{note}");
        assert_eq!(body["version"], "4", "{body}");
        assert_eq!(body["alerts"][0]["labels"]["service"], "web", "{body}");
        // The same JSON in the environment, and nothing of gantry's own environment.
        assert!(note.contains("ENV GANTRY_ALERT_JSON={"), "{note}");
        assert!(!note.contains("WEB_API_KEY"), "{note}");
        assert!(
            !note.contains(SECRET),
            "a secret reached the exec sink: {note}"
        );
    }
    assert_eq!(up.stop(), 0);
    assert!(!up.log().contains(SECRET), "a secret in gantry's output");
}

/// The exec sink runs in the stack file's directory, as services' commands do: a relative
/// `./notify.sh` next to the file is found when gantry runs from elsewhere (`-f sub/gantry.toml`).
#[test]
fn the_exec_sink_runs_in_the_stack_files_directory() {
    let web = free_port();
    let stack = format!(
        r#"
[settings]
api = "127.0.0.1:0"

[alerts]
exec = ["./notify.sh"]

[services.web]
command = "{fixture} --name exec-cwd-web --listen {web}"
priority = "critical"
readiness = {{ tcp = "127.0.0.1:{web}", period = "100ms" }}
"#,
        fixture = fixture().display()
    );
    let mut up = up_with("alerts-exec-cwd", "", &["-f", "sub/gantry.toml"], |dir| {
        use std::os::unix::fs::PermissionsExt as _;
        let sub = dir.join("sub");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("gantry.toml"), &stack).unwrap();
        let script = sub.join("notify.sh");
        std::fs::write(
            &script,
            "#!/bin/sh\ncat > \"notified.$$.tmp\" && mv \"notified.$$.tmp\" \"notified.$$.json\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    });
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    let sub = up.dir.join("sub");
    let notified = |d: &std::path::Path| {
        std::fs::read_dir(d)
            .map(|r| {
                r.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                    .filter(|e| e.file_name().to_string_lossy().starts_with("notified."))
                    .count()
            })
            .unwrap_or(0)
    };
    kill_web(web);
    assert!(
        eventually(20, || notified(&sub) >= 1),
        "no notification written next to the stack file\n{}",
        up.log()
    );
    assert_eq!(
        notified(&up.dir),
        0,
        "the sink ran in gantry's own directory"
    );
    // A critical service is down: gantry's exit status says so (not what this test is about).
    up.stop();
}

/// A rolling restart is planned work too: each instance of a replicated critical service drained,
/// restarted (its probe failing 400 ms) and ready again, twice over, notifies nobody; the same
/// rules fire when the instances' health fails on its own.
#[test]
fn a_rolling_restart_notifies_nobody() {
    let hook = receiver_on(TcpListener::bind("127.0.0.1:0").unwrap(), 0);
    let ing = free_port();
    let first = free_pair();
    let last = first + 1;
    let toml = format!(
        r#"
[alerts]
webhook = "http://127.0.0.1:{hook}/hook"

[alerts.rules.readiness_lost]
for = "0s"

[alerts.rules.probe_failures]
severity = "P2"
signal = "service_probe_failures_total"
window = "1m"
above = 0
summary = "{{service}}: a probe failed"

[ingress]
listen = "127.0.0.1:{ing}"

[[ingress.routes]]
path = "/"
service = "api"

[services.api]
command = "FIXTURE --name rolled-api-${{REPLICA}} --delay 400 --unready-file unready --http ${{PORT}}"
working_dir = "."
replicas = 2
replica_ports = "{first}-{last}"
priority = "critical"
readiness = {{ http = "http://127.0.0.1:${{PORT}}/health", period = "100ms" }}
"#,
        hook = hook.port
    );
    let mut up = up("alerts-rolling", &toml, &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    let dir = up.dir.clone();
    for n in 2..=3 {
        let (code, out) = gantry_in(&dir, &["restart", "api", "--reason", "planned"]);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("rolling restart"), "{out}");
        up.wait_count("api.1", "ready", n, 30);
        up.wait_count("api.2", "ready", n, 30);
    }
    assert!(
        !eventually(4, || !statuses(&hook).is_empty()),
        "received {:?}",
        statuses(&hook)
    );
    assert!(
        !up.events
            .iter()
            .any(|v| v["event"] == "alert" && v["status"] == "firing"),
        "{}",
        up.log()
    );
    // The control: health failing on its own fires the same rules.
    std::fs::write(dir.join("unready"), "").unwrap();
    firing_body(&hook, "probe_failures");
    firing_body(&hook, "readiness_lost");
    up.stop();
}

/// A blue/green rollout is planned work: its green set starting (each green instance failing its
/// probe for 400 ms), taking the traffic and being promoted notifies nobody; the same rules fire
/// when the instances' health fails on its own afterwards.
#[test]
fn a_blue_green_rollout_notifies_nobody() {
    let hook = receiver_on(TcpListener::bind("127.0.0.1:0").unwrap(), 0);
    let ing = free_port();
    let first = free_pair();
    let last = first + 1;
    let toml = format!(
        r#"
[alerts]
webhook = "http://127.0.0.1:{hook}/hook"

[alerts.rules.readiness_lost]
for = "0s"

[alerts.rules.probe_failures]
severity = "P2"
signal = "service_probe_failures_total"
window = "1m"
above = 0
summary = "{{service}}: a probe failed"

[ingress]
listen = "127.0.0.1:{ing}"

[[ingress.routes]]
path = "/"
service = "api"

[services.api]
command = "FIXTURE --name bg-api-${{REPLICA}} --delay 400 --unready-file unready --http ${{PORT}}"
working_dir = "."
env = {{ VERSION = "1" }}
replicas = 2
replica_ports = "{first}-{last}"
priority = "critical"
readiness = {{ http = "http://127.0.0.1:${{PORT}}/health", period = "100ms" }}
"#,
        hook = hook.port
    );
    let mut up = up("alerts-bluegreen", &toml, &[]);
    assert_eq!(up.wait_boot(30)["outcome"], "go", "{}", up.log());
    let dir = up.dir.clone();
    let (code, out) = gantry_in(
        &dir,
        &[
            "rollout",
            "api",
            "--strategy",
            "blue-green",
            "--set-env",
            "VERSION=2",
            "--interval",
            "1h",
            "--reason",
            "planned",
        ],
    );
    assert_eq!(code, 0, "{out}");
    up.wait_for("the switch", 60, |v| {
        v["event"] == "rollout" && v["phase"] == "switched"
    });
    let (code, out) = gantry_in(&dir, &["rollout", "promote", "api", "--reason", "ok"]);
    assert_eq!(code, 0, "{out}");
    let done = up.wait_for("the promote's end", 60, |v| {
        v["event"] == "rollout" && v["phase"] == "done"
    });
    assert_eq!(done["outcome"], "promoted", "{done}");
    assert!(
        !eventually(4, || !statuses(&hook).is_empty()),
        "received {:?}",
        statuses(&hook)
    );
    assert!(
        !up.events
            .iter()
            .any(|v| v["event"] == "alert" && v["status"] == "firing"),
        "{}",
        up.log()
    );
    // The control: health failing on its own fires the same rules.
    std::fs::write(dir.join("unready"), "").unwrap();
    firing_body(&hook, "probe_failures");
    firing_body(&hook, "readiness_lost");
    up.stop();
}
