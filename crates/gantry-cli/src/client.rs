//! The API client used by `status`, `restart`, `down`, `wait`, `up --detach`: finds the running instance through the stack file.

use crate::load::load_for_client;
use gantry_state::StateDir;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::path::Path;
use std::time::Duration;

/// Where a running instance listens and the token it accepts.
#[derive(Clone)]
pub struct Instance {
    pub addr: String,
    token: Option<String>,
    pub state_dir: StateDir,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret: never printed.
        f.debug_struct("Instance")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// A response: status code and body text.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Instance {
    /// Reads the stack file for `settings.api` and `state_dir`; the address a running
    /// instance actually bound (`state_dir/api.addr`) wins over the configured one.
    pub fn find(file: &Path) -> Result<Instance, String> {
        let checked = load_for_client(file)?;
        let state_dir = StateDir::for_stack(file, &checked.spec.settings.state_dir);
        let addr = std::fs::read_to_string(state_dir.api_addr())
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| checked.spec.settings.api.clone());
        let token = std::fs::read_to_string(state_dir.api_token())
            .ok()
            .map(|t| t.trim().to_string());
        Ok(Instance {
            addr,
            token,
            state_dir,
        })
    }

    /// A read: with the token when this user can read it (an API reachable beyond loopback
    /// needs one for every read of the stack), without when there is none (loopback).
    pub async fn get(&self, path: &str) -> Result<Response, String> {
        self.request("GET", path, self.token.is_some(), None).await
    }

    /// A GET that sends the token (reads that may be protected: the audit log).
    pub async fn get_auth(&self, path: &str) -> Result<Response, String> {
        self.request("GET", path, true, None).await
    }

    /// A mutation, with the reason for the audit log when there is one.
    pub async fn post(&self, path: &str, reason: Option<&str>) -> Result<Response, String> {
        let body = reason.map(|r| serde_json::json!({ "reason": r }).to_string());
        self.request("POST", path, true, body).await
    }

    /// A POST with a JSON body.
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<Response, String> {
        self.request("POST", path, true, Some(body.to_string()))
            .await
    }

    /// Any method with the token and an optional JSON body (PUT / DELETE of flags).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Response, String> {
        self.request(method, path, true, body.map(ToString::to_string))
            .await
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        auth: bool,
        body: Option<String>,
    ) -> Result<Response, String> {
        let mut sender = self.connect().await?;
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost");
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        if auth {
            let token = self.token.as_deref().ok_or_else(|| {
                format!(
                    "no API token in {}\n  hint: is `gantry up` running for this file?",
                    self.state_dir.api_token().display()
                )
            })?;
            req = req
                .header("authorization", format!("Bearer {token}"))
                // Who, for the audit log: believed because the operator token came from
                // this user's state dir.
                .header("x-gantry-actor", local_actor());
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| e.to_string())?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("request to {} failed: {e}", self.addr))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(Response {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    /// Opens a streaming GET (for SSE): returns the body to read chunk by chunk.
    pub async fn stream(&self, path: &str) -> Result<hyper::body::Incoming, String> {
        let mut sender = self.connect().await?;
        let req = hyper::Request::builder()
            .uri(path)
            .header("host", "localhost")
            .header("accept", "text/event-stream")
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("request to {} failed: {e}", self.addr))?;
        Ok(resp.into_body())
    }

    async fn connect(
        &self,
    ) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, String> {
        let not_running = |e: std::io::Error| {
            format!(
                "cannot reach gantry at {}: {e}\n  hint: start it with `gantry up` (or `gantry up --detach`)",
                self.addr
            )
        };
        let timeout = Duration::from_secs(5);
        macro_rules! handshake {
            ($stream:expr) => {{
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new($stream))
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Ok(sender)
            }};
        }
        if let Some(path) = self.addr.strip_prefix("unix:") {
            let stream = tokio::time::timeout(timeout, tokio::net::UnixStream::connect(path))
                .await
                .map_err(|_| format!("timed out connecting to {}", self.addr))?
                .map_err(not_running)?;
            handshake!(stream)
        } else {
            let stream = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&self.addr))
                .await
                .map_err(|_| format!("timed out connecting to {}", self.addr))?
                .map_err(not_running)?;
            handshake!(stream)
        }
    }
}

/// `cli:USER` for the audit log: the login name, else the uid.
fn local_actor() -> String {
    use std::os::unix::fs::MetadataExt as _;
    let name = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|n| {
            !n.is_empty()
                && n.len() <= 32
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
        });
    let name = name.unwrap_or_else(|| {
        std::fs::metadata("/proc/self")
            .map_or_else(|_| "unknown".into(), |m| format!("uid{}", m.uid()))
    });
    format!("cli:{name}")
}

/// A small runtime for client commands.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}
