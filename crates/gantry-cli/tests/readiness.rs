//! Readiness for the life of the stack (issue 14, item 1): a readiness probe keeps running after the boot; losing it turns `/health/ready` 503 naming the service, without a restart, and passing again turns it 200.

mod support;

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// A minimal HTTP/1.1 GET over loopback: (status, body).
fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

fn api_addr(up: &Up) -> String {
    let file = up.dir.join(".gantry/api.addr");
    assert!(eventually(10, || file.exists()), "api.addr was not written");
    std::fs::read_to_string(file).unwrap().trim().to_string()
}

/// Polls `/health/ready` until it answers `code` (within `secs`); the body.
fn ready_becomes(up: &Up, addr: &str, code: u16, secs: u64) -> String {
    let until = Instant::now() + Duration::from_secs(secs);
    let mut last = None;
    while Instant::now() < until {
        last = get(addr, "/health/ready");
        if let Some((c, body)) = &last
            && *c == code
        {
            return body.clone();
        }
        // Polling interval for a state another process changes.
        let _ = std::sync::mpsc::channel::<()>()
            .1
            .recv_timeout(Duration::from_millis(20));
    }
    panic!(
        "/health/ready never answered {code} within {secs} s (last: {last:?}); events:\n{}",
        up.log()
    );
}

/// One service of `/api/v1/status`.
fn status_of(addr: &str, service: &str) -> serde_json::Value {
    let (code, body) = get(addr, "/api/v1/status").expect("status answers");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == service)
        .unwrap_or_else(|| panic!("no {service} in {body}"))
        .clone()
}

/// The value of one sample line of `/metrics`.
fn metric(addr: &str, line_start: &str) -> Option<f64> {
    let (_, body) = get(addr, "/metrics")?;
    body.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn a_service_whose_readiness_endpoint_turns_off_makes_the_stack_unready_then_ready_same_pid() {
    let (web, api) = (free_port(), free_port());
    let toml = format!(
        r#"
[services.web]
command = "FIXTURE --name web --http {web} --unready-file web.unready"
readiness = {{ http = "http://127.0.0.1:{web}/health", period = "200ms", failure_threshold = 2, success_threshold = 2 }}
restart = "always"

[services.api]
command = "FIXTURE --name api --http {api}"
depends_on = ["web"]
readiness = {{ http = "http://127.0.0.1:{api}/health" }}
"#
    );
    let mut up = up("readiness-life", &toml, &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    let addr = api_addr(&up);
    assert_eq!(ready_becomes(&up, &addr, 200, 10), "ok");
    let pid = status_of(&addr, "web")["pid"].as_u64().expect("web's pid");

    // Readiness off: within two failed probes the stack is not ready, naming web.
    std::fs::write(up.dir.join("web.unready"), "").unwrap();
    let body = ready_becomes(&up, &addr, 503, 10);
    assert_eq!(body, "not ready: missing web (unready)");
    let (_, verbose) = get(&addr, "/health/ready?verbose").unwrap();
    assert!(
        verbose.contains("[-]web unready: readiness failed 2 times: "),
        "{verbose}"
    );
    let lost = up.wait_state("web", "unready", 10);
    assert!(
        lost["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not restarted, dependents keep running")),
        "{lost}"
    );
    // The dependent is told, not restarted.
    up.wait_for("api told", 10, |v| {
        v["event"] == "transition"
            && v["service"] == "api"
            && v["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("dependency web is unready"))
    });
    let web_now = status_of(&addr, "web");
    assert_eq!(web_now["state"], "unready");
    assert_eq!(web_now["pid"].as_u64(), Some(pid), "web was not restarted");
    assert_eq!(web_now["restarts"], 0);
    assert_eq!(status_of(&addr, "api")["state"], "ready");
    assert_eq!(
        metric(
            &addr,
            "gantry_service_readiness_lost_total{service=\"web\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &addr,
            "gantry_service_state{service=\"web\",state=\"unready\"}"
        ),
        Some(1.0)
    );

    // Readiness on again: ready after two passes, the same process.
    std::fs::remove_file(up.dir.join("web.unready")).unwrap();
    assert_eq!(ready_becomes(&up, &addr, 200, 10), "ok");
    let web_now = status_of(&addr, "web");
    assert_eq!(web_now["state"], "ready");
    assert_eq!(web_now["pid"].as_u64(), Some(pid), "web was not restarted");
    up.wait_for("api told again", 10, |v| {
        v["event"] == "transition"
            && v["service"] == "api"
            && v["reason"] == "dependency web is ready again"
    });
    assert_eq!(up.states("web"), ["starting", "ready", "unready", "ready"]);
    assert_eq!(
        up.states("api").first().map(String::as_str),
        Some("starting")
    );
    assert!(
        !up.states("api").iter().any(|s| s == "stopping"),
        "api must not be restarted: {:?}",
        up.states("api")
    );
    assert_eq!(up.stop(), 0);
}

// ------------------------------------------------------------------------ postgres

/// The newest PostgreSQL server binaries, `/usr/lib/postgresql/N/bin`.
fn postgres_bin() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version: Vec<u32> = e
                .file_name()
                .to_str()?
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file()
                && bin.join("postgres").is_file()
                && bin.join("pg_ctl").is_file())
            .then_some((version, bin))
        })
        .max()
        .map(|(_, bin)| bin)
}

/// A throwaway PostgreSQL outside gantry (as `nobody`, in a temp dir, on a free port): the
/// external service of the test. Dropping it stops the server and removes the directory.
struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Postgres {
    fn init(bin: PathBuf) -> Postgres {
        let dir = tempdir("readiness-pg-server");
        let port = free_port();
        let status = Command::new("install")
            .args(["-d", "-o", "nobody"])
            .arg(dir.join("pg"))
            .arg(dir.join("pg/sock"))
            .status()
            .unwrap();
        assert!(status.success(), "install -d failed");
        let out = Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(bin.join("initdb"))
            .arg("-D")
            .arg(dir.join("pg/data"))
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "--no-instructions",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Postgres {
            bin,
            dir,
            port,
            child: None,
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("pg/data")
    }

    /// Starts the server and waits (bounded) until it accepts connections.
    fn start(&mut self) {
        let child = Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(self.bin.join("postgres"))
            .arg("-D")
            .arg(self.data())
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(self.dir.join("pg/sock"))
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let port = self.port;
        assert!(
            eventually(30, || self.accepts()),
            "PostgreSQL did not accept on 127.0.0.1:{port} within 30 s"
        );
    }

    fn accepts(&self) -> bool {
        Command::new(self.bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// `pg_ctl stop -m fast`, then the runuser parent is reaped.
    fn stop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("stop")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "-t", "30"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(mut child) = self.child.take() {
            let until = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < until {
                let _ = std::sync::mpsc::channel::<()>()
                    .1
                    .recv_timeout(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| Path::new(&d).join(program).is_file()))
}

#[test]
fn an_external_postgres_stopped_under_a_running_stack_turns_ready_503_then_200_once_back() {
    let Some(bin) = postgres_bin().filter(|_| on_path("runuser")) else {
        if std::env::var("GANTRY_TEST_NO_POSTGRES").as_deref() == Ok("1") {
            eprintln!(
                "skipped: no PostgreSQL under /usr/lib/postgresql (GANTRY_TEST_NO_POSTGRES=1)"
            );
            return;
        }
        panic!(
            "no PostgreSQL server under /usr/lib/postgresql/*/bin (initdb, postgres, pg_ctl) or no runuser\n  hint: run scripts/setup, or set GANTRY_TEST_NO_POSTGRES=1 to skip this test"
        );
    };
    let mut pg = Postgres::init(bin);
    pg.start();
    let api = free_port();
    let toml = format!(
        r#"
[services.pg]
kind = "external"
priority = "critical"
readiness = {{ postgres = "postgres://postgres@127.0.0.1:{port}/postgres", period = "300ms", timeout = "1s", failure_threshold = 2 }}

[services.api]
command = "FIXTURE --name api --http {api}"
depends_on = ["pg"]
readiness = {{ http = "http://127.0.0.1:{api}/health" }}
"#,
        port = pg.port
    );
    let mut up = up("readiness-pg", &toml, &[]);
    assert_eq!(up.wait_boot(30)["outcome"], "go", "{}", up.log());
    let addr = api_addr(&up);
    assert_eq!(ready_becomes(&up, &addr, 200, 10), "ok");
    let api_pid = status_of(&addr, "api")["pid"].as_u64();

    pg.stop();
    assert_eq!(
        ready_becomes(&up, &addr, 503, 20),
        "not ready: missing pg (unready)"
    );
    assert_eq!(status_of(&addr, "api")["pid"].as_u64(), api_pid);

    pg.start();
    assert_eq!(ready_becomes(&up, &addr, 200, 20), "ok");
    up.wait_count("pg", "ready", 2, 10);
    assert_eq!(up.states("pg"), ["starting", "ready", "unready", "ready"]);
    assert_eq!(status_of(&addr, "api")["pid"].as_u64(), api_pid);
    assert_eq!(up.stop(), 0, "nothing failed: exit 0");
}
