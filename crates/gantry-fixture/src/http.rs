//! The fixture's listeners: `--listen` (accept and close) and `--http` (a minimal HTTP/1.1
//! server with `/health` and `/app`).

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

pub(crate) fn bind(name: &str, port: u16) -> TcpListener {
    match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
        Ok(listener) => listener,
        Err(e) => {
            warn!("fixture {name}: cannot bind 127.0.0.1:{port}: {e}");
            process::exit(1);
        }
    }
}

/// Accepts connections forever and closes each one at once.
pub(crate) fn accept_and_drop(listener: TcpListener) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => drop(stream),
            // E.g. EMFILE or ECONNABORTED: keep going, but don't spin.
            Err(_) => thread::park_timeout(Duration::from_millis(10)),
        }
    }
}

/// What `GET /health` answers.
#[derive(Clone, Debug)]
pub(crate) struct Health {
    pub(crate) status: u16,
    /// While this file exists, 503.
    pub(crate) unready_file: Option<Arc<PathBuf>>,
}

impl Health {
    fn status(&self) -> u16 {
        match &self.unready_file {
            Some(path) if path.exists() => 503,
            _ => self.status,
        }
    }
}

/// Serves minimal HTTP/1.1 forever, one thread per connection.
pub(crate) fn serve_http(listener: TcpListener, health: Health) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                let health = health.clone();
                thread::spawn(move || {
                    let _ = answer_http(stream, health.status());
                });
            }
            Err(_) => thread::park_timeout(Duration::from_millis(10)),
        }
    }
}

fn answer_http(mut stream: TcpStream, health_status: u16) -> io::Result<()> {
    const LIMIT: usize = 16 * 1024;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > LIMIT {
            break;
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut parts = text.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next(), parts.next());
    let path = target.map(|t| t.split(['?', '#']).next().unwrap_or(t));
    let (status, body) = match (method, path) {
        (Some("GET" | "HEAD"), Some("/health")) => {
            let body = if (200..300).contains(&health_status) {
                "ok"
            } else {
                "not ready"
            };
            (health_status, body)
        }
        (Some(_), Some("/health")) => (405, "method not allowed"),
        (Some("GET" | "HEAD"), Some(p)) if p == "/app" || p.starts_with("/app/") => {
            if app_fails() {
                (500, "injected failure")
            } else {
                (200, "app")
            }
        }
        (Some(_), Some(_)) => (404, "not found"),
        _ => (400, "bad request"),
    };
    let no_body = (100..200).contains(&status) || status == 204 || status == 304;
    let body = if no_body { "" } else { body };
    let version = std::env::var("VERSION").unwrap_or_default();
    let body = if body == "app" {
        format!("version {version}")
    } else {
        body.to_string()
    };
    let version_header = if version.is_empty() {
        String::new()
    } else {
        format!("X-Fixture-Version: {version}\r\n")
    };
    let mut response = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain\r\n{version_header}Content-Length: {}\r\nConnection: close\r\n\r\n",
        reason(status),
        body.len()
    );
    if method != Some("HEAD") {
        response.push_str(&body);
    }
    stream.write_all(response.as_bytes())?;
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Write)
}

/// Whether this request to `/app` is one of the `FIXTURE_ERROR_PERCENT` injected failures:
/// request n fails when the running share of failures would otherwise fall behind the percent.
fn app_fails() -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEEN: AtomicU64 = AtomicU64::new(0);
    let percent: u64 = std::env::var("FIXTURE_ERROR_PERCENT")
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(0)
        .min(100);
    let n = SEEN.fetch_add(1, Ordering::Relaxed);
    (n + 1) * percent / 100 > n * percent / 100
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
