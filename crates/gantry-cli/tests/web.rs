//! The web page against a real `gantry up`: in Debian's Chromium through Playwright for Python
//! (`tests/web/e2e.py`, both installed by scripts/setup) — services drawn live, a killed service
//! red then green again without a reload, a log line in the service view, an action refused
//! without a session, write_drain switched on through the page making the ingress answer 503 to a
//! POST, the incident the kill opened with its timeline and draft, no console errors, screenshots
//! in `target/web-artifacts/`; the first render of a 100-service stack measured and printed; the
//! page reconnecting to a restarted gantry without a reload; and, without a browser, the session
//! cookie on the API (reads, actions, CSRF, audit actor, CSP headers) and the log-tail route.

mod support;

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::*;

fn python() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-tests/bin/python");
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup (it installs playwright and chromium)",
        path.display()
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: run scripts/setup (Debian's chromium package)"
    );
    path
}

fn artifacts() -> PathBuf {
    // CARGO_TARGET_DIR when set, else the workspace's target/.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("web-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn operator_token(dir: &Path) -> String {
    let file = dir.join(".gantry/api.token");
    assert!(
        eventually(10, || file.exists()),
        "api.token was not written"
    );
    std::fs::read_to_string(file).unwrap().trim().to_string()
}

/// Runs the Playwright script; its figures (the `RESULT {json}` line) are printed and returned.
fn run_browser(env: &[(&str, String)]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web/e2e.py");
    let out = Command::new(python())
        .arg(script)
        .env("ARTIFACTS", artifacts())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}"
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line:\n{stdout}\n{stderr}"));
    serde_json::from_str(line).unwrap()
}

#[test]
fn the_page_shows_the_stack_live_and_acts_with_a_session() {
    let (ing, db, api, worker, chatty) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let toml = format!(
        r#"
[alerts]
log = true

[layers]
order = ["data", "apps"]

[ingress]
listen = "127.0.0.1:{ing}"

[[ingress.routes]]
path = "/"
service = "api"

[services.db]
command = "FIXTURE --name web-db --listen {db}"
layer = "data"
readiness = {{ tcp = "127.0.0.1:{db}", period = "100ms" }}

[services.api]
command = "FIXTURE --name web-api --http {api}"
layer = "apps"
upstream = "127.0.0.1:{api}"
depends_on = ["db"]
readiness = {{ http = "http://127.0.0.1:{api}/health", period = "100ms" }}

[services.worker]
command = "FIXTURE --name web-worker --listen {worker}"
layer = "apps"
priority = "critical"
depends_on = ["db"]
readiness = {{ tcp = "127.0.0.1:{worker}", period = "100ms" }}

[services.chatty]
command = "FIXTURE --name web-chatty --listen {chatty} --stdout-lines 300"
priority = "low"
readiness = {{ tcp = "127.0.0.1:{chatty}", period = "100ms" }}
"#
    );
    let mut up = up("web", &toml, &[]);
    let boot = up.wait_boot(30);
    assert_eq!(boot["outcome"], "go", "{}", up.log());
    let addr = api_addr_in(&up.dir);
    let figures = run_browser(&[
        ("GANTRY_URL", format!("http://{addr}")),
        ("OPERATOR_TOKEN", operator_token(&up.dir)),
        ("MODE", "stack".into()),
        ("SERVICES", "4".into()),
        ("INGRESS_PORT", ing.to_string()),
    ]);
    println!("web page, 4-service stack: {figures}");
    assert!(
        figures["page_bytes_gzip"].as_u64().unwrap() <= 300 * 1024,
        "{figures}"
    );
    // The operator token never reached gantry's output.
    let token = operator_token(&up.dir);
    assert!(!up.log().contains(&token));
    up.stop();
}

#[test]
fn a_hundred_services_are_drawn_and_the_first_render_is_measured() {
    let mut toml = String::new();
    for i in 0..100 {
        let port = free_port();
        // A tree: each service depends on the one at i / 4, so the graph has several waves.
        let deps = if i == 0 {
            String::new()
        } else {
            format!("depends_on = [\"s{:02}\"]\n", (i - 1) / 4)
        };
        toml.push_str(&format!(
            "[services.s{i:02}]\ncommand = \"FIXTURE --name web100-{i} --listen {port}\"\n{deps}readiness = {{ tcp = \"127.0.0.1:{port}\", period = \"100ms\" }}\n\n"
        ));
    }
    let mut up = up("web100", &toml, &[]);
    let boot = up.wait_boot(60);
    assert_eq!(boot["outcome"], "go", "{}", up.log());
    let addr = api_addr_in(&up.dir);
    let figures = run_browser(&[
        ("GANTRY_URL", format!("http://{addr}")),
        ("OPERATOR_TOKEN", operator_token(&up.dir)),
        ("MODE", "hundred".into()),
        ("SERVICES", "100".into()),
    ]);
    println!(
        "web page, 100-service stack: first render (all 100 nodes drawn) {} ms after navigation start; figures {figures}",
        figures["first_render_ms"]
    );
    up.stop();
}

#[test]
fn the_page_reconnects_to_a_restarted_gantry_without_a_reload() {
    let (api, port) = (free_port(), free_port());
    let toml = format!(
        r#"
[settings]
api = "127.0.0.1:{api}"

[services.svc]
command = "FIXTURE --name web-reconnect --listen {port}"
readiness = {{ tcp = "127.0.0.1:{port}", period = "100ms" }}
"#
    );
    let mut up = up("web-reconnect", &toml, &[]);
    up.wait_boot(30);
    let request = up.dir.join("restart-request");
    let (out, err) = (up.dir.join("py.out"), up.dir.join("py.err"));
    let mut browser = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web/e2e.py"))
        .env("ARTIFACTS", artifacts())
        .env("GANTRY_URL", format!("http://127.0.0.1:{api}"))
        .env("OPERATOR_TOKEN", operator_token(&up.dir))
        .env("MODE", "reconnect")
        .env("SERVICES", "1")
        .env("RESTART_REQUEST", &request)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let report = |what: &str| {
        format!(
            "{what}\n{}\n{}",
            std::fs::read_to_string(&out).unwrap_or_default(),
            std::fs::read_to_string(&err).unwrap_or_default()
        )
    };
    let asked = eventually(60, || {
        request.exists() || browser.try_wait().ok().flatten().is_some()
    });
    assert!(
        asked && request.exists(),
        "{}",
        report("the page never asked for the restart")
    );
    // Same directory, same state dir, same API address: a new gantry process.
    let mut up = up.again(&[]);
    up.wait_boot(30);
    let mut status = None;
    assert!(
        eventually(120, || {
            status = browser.try_wait().ok().flatten();
            status.is_some()
        }),
        "{}",
        report("the browser script did not finish")
    );
    assert!(
        status.unwrap().success(),
        "{}",
        report("the browser test failed")
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let figures = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_default();
    println!("web page, reconnect after a restart of gantry: {figures}");
    up.stop();
}

/// One HTTP/1.1 request: status, the head (lower-cased names) and the body.
fn call(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_ascii_lowercase(), body.to_string())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::trim)
}

#[test]
fn the_session_cookie_reads_acts_with_csrf_and_is_audited_as_its_token() {
    let port = free_port();
    let toml = format!(
        r#"
[services.svc]
command = "FIXTURE --name web-session --listen {port}"
readiness = {{ tcp = "127.0.0.1:{port}", period = "100ms" }}
"#
    );
    let mut up = up("web-session", &toml, &[]);
    up.wait_boot(30);
    let addr = api_addr_in(&up.dir);
    let token = operator_token(&up.dir);
    let read_token = std::fs::read_to_string(up.dir.join(".gantry/api.read-token"))
        .unwrap()
        .trim()
        .to_string();

    // The page and its assets: a strict CSP, nosniff, the right types.
    for (path, kind) in [
        ("/", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/views.js", "text/javascript"),
        ("/ui/graph.js", "text/javascript"),
        ("/ui/style.css", "text/css"),
        ("/ui/favicon.svg", "image/svg+xml"),
    ] {
        let (code, head, body) = call(&addr, "GET", path, &[], "");
        assert_eq!(code, 200, "{path}: {head}");
        let csp = header(&head, "content-security-policy").unwrap_or_default();
        assert!(
            csp.contains("default-src 'none'")
                && csp.contains("script-src 'self'")
                && csp.contains("frame-ancestors 'none'"),
            "{path}: {head}"
        );
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(
            header(&head, "x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert!(
            header(&head, "content-type")
                .unwrap_or_default()
                .starts_with(kind),
            "{path}: {head}"
        );
        assert!(!body.is_empty());
    }
    let (_, _, page) = call(&addr, "GET", "/", &[], "");
    assert!(
        !page.contains("<script>") && !page.contains("style="),
        "no inline script or style"
    );

    // A wrong token makes no session; the operator token does: an HttpOnly SameSite=Strict cookie
    // that is not the token, and a CSRF token in the answer.
    let (code, head, _) = call(
        &addr,
        "POST",
        "/api/v1/session",
        &[("Authorization", "Bearer nope")],
        "",
    );
    assert_eq!(code, 401);
    assert!(header(&head, "set-cookie").is_none());
    let bearer = format!("Bearer {token}");
    let (code, head, body) = call(
        &addr,
        "POST",
        "/api/v1/session",
        &[("Authorization", &bearer)],
        "",
    );
    assert_eq!(code, 200, "{head}{body}");
    let set_cookie = header(&head, "set-cookie").expect("a cookie").to_string();
    assert!(
        set_cookie.contains("httponly") && set_cookie.contains("samesite=strict"),
        "{set_cookie}"
    );
    let made: serde_json::Value = serde_json::from_str(&body).unwrap();
    let csrf = made["session"]["csrf"].as_str().unwrap().to_string();
    assert_eq!(made["session"]["role"], "operator");
    // The head was lower-cased; the id is hex, so it reads the same.
    let id = set_cookie
        .strip_prefix("gantry_session=")
        .and_then(|r| r.split(';').next())
        .unwrap()
        .to_string();
    assert!(!id.is_empty() && id != token.to_ascii_lowercase() && !body.contains(&token));
    let cookie = format!("gantry_session={id}");

    // Reads through the cookie: the session itself, the audit log, the event stream's auth.
    let (code, _, body) = call(&addr, "GET", "/api/v1/session", &[("Cookie", &cookie)], "");
    assert_eq!(code, 200);
    assert!(body.contains(&csrf), "{body}");
    let (code, _, _) = call(&addr, "GET", "/api/v1/audit", &[("Cookie", &cookie)], "");
    assert_eq!(code, 200);
    // OFREP always needs a token: the cookie is accepted there too.
    let (code, _, body) = call(
        &addr,
        "GET",
        "/ofrep/v1/configuration",
        &[("Cookie", &cookie)],
        "",
    );
    assert_eq!(code, 200, "{body}");

    // An action with the cookie but without the CSRF header (or with a wrong one) is refused.
    let path = "/api/v1/services/svc/restart";
    let (code, _, body) = call(&addr, "POST", path, &[("Cookie", &cookie)], "");
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("CSRF"), "{body}");
    let (code, _, _) = call(
        &addr,
        "POST",
        path,
        &[("Cookie", &cookie), ("X-Gantry-CSRF", "wrong")],
        "",
    );
    assert_eq!(code, 403);
    // With it, the action is accepted and audited with the token's actor and the reason.
    let (code, _, body) = call(
        &addr,
        "POST",
        path,
        &[
            ("Cookie", &cookie),
            ("X-Gantry-CSRF", &csrf),
            ("Content-Type", "application/json"),
        ],
        r#"{"reason":"through the page"}"#,
    );
    assert_eq!(code, 202, "{body}");
    let mut row = serde_json::Value::Null;
    assert!(eventually(10, || {
        let (_, _, body) = call(&addr, "GET", "/api/v1/audit", &[("Cookie", &cookie)], "");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        row = v["audit"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["action"] == "service.restart" && r["reason"] == "through the page")
            .cloned()
            .unwrap_or_default();
        !row.is_null()
    }));
    assert_eq!(row["actor"], "operator", "{row}");

    // A session made from the read token reads but may not act, CSRF or not.
    let read_bearer = format!("Bearer {read_token}");
    let (code, head, body) = call(
        &addr,
        "POST",
        "/api/v1/session",
        &[("Authorization", &read_bearer)],
        "",
    );
    assert_eq!(code, 200);
    let read_id = header(&head, "set-cookie")
        .and_then(|c| c.strip_prefix("gantry_session="))
        .and_then(|r| r.split(';').next())
        .unwrap()
        .to_string();
    let read_csrf = serde_json::from_str::<serde_json::Value>(&body).unwrap()["session"]["csrf"]
        .as_str()
        .unwrap()
        .to_string();
    let read_cookie = format!("gantry_session={read_id}");
    let (code, _, _) = call(
        &addr,
        "POST",
        path,
        &[("Cookie", &read_cookie), ("X-Gantry-CSRF", &read_csrf)],
        "",
    );
    assert_eq!(code, 403);

    // Logout forgets the session: the cookie no longer acts.
    let (code, head, _) = call(
        &addr,
        "DELETE",
        "/api/v1/session",
        &[("Cookie", &cookie)],
        "",
    );
    assert_eq!(code, 200);
    assert!(
        header(&head, "set-cookie")
            .unwrap_or_default()
            .contains("max-age=0")
    );
    let (code, _, _) = call(
        &addr,
        "POST",
        path,
        &[("Cookie", &cookie), ("X-Gantry-CSRF", &csrf)],
        "",
    );
    assert_eq!(code, 401);

    // The incidents routes answer (none opened here).
    let (code, _, body) = call(&addr, "GET", "/api/v1/incidents", &[], "");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"incidents\""), "{body}");
    let (code, _, _) = call(&addr, "GET", "/api/v1/incidents/999", &[], "");
    assert_eq!(code, 404);

    // The log tail route: the last lines of the service's log file, oldest first; bad queries
    // and unknown services are refused.
    // gantry writes log files every 250 ms: poll.
    let mut two = serde_json::Value::Null;
    assert!(
        eventually(10, || {
            let (code, _, body) = call(&addr, "GET", "/api/v1/services/svc/logs?tail=2", &[], "");
            two = serde_json::from_str(&body).unwrap_or_default();
            code == 200 && two["lines"].as_array().is_some_and(|l| l.len() == 2)
        }),
        "{two}"
    );
    // The restart above may still be under way: its lines come and go at the end; the first
    // incarnation's ready line is in the file for good.
    let (_, _, body) = call(&addr, "GET", "/api/v1/services/svc/logs?tail=1000", &[], "");
    let all: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ready = all["lines"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|l| l["line"] == "fixture web-session ready")
        .unwrap_or_else(|| panic!("no ready line: {all}"));
    assert_eq!(ready["stream"], "out");
    assert!(ready["at"].is_string(), "{ready}");
    for bad in ["tail=0", "tail=1001", "tail=x", "lines=3"] {
        let (code, _, _) = call(
            &addr,
            "GET",
            &format!("/api/v1/services/svc/logs?{bad}"),
            &[],
            "",
        );
        assert_eq!(code, 400, "{bad}");
    }
    let (code, _, _) = call(
        &addr,
        "GET",
        "/api/v1/services/..%2Fapi.token/logs",
        &[],
        "",
    );
    assert_eq!(code, 404);

    // No token or session id in gantry's output.
    let log = up.log();
    assert!(!log.contains(&token) && !log.contains(&id));
    up.stop();
}
