//! The pre-flight's look at a TLS endpoint: one handshake (after the protocol's own preamble for postgres, mysql and nats), the chain's verdict and the days until its first certificate expires.
//!
//! The handshake runs with the probe's own verifier wrapped in a recorder: the recorder
//! keeps the chain and what the verifier said, and lets the handshake finish, so a bad
//! chain is reported with its dates and a good one with its expiry. The connection is
//! closed right after; nothing is sent to the service beyond the TLS request of its
//! protocol (postgres SSLRequest, the MySQL SSL request packet).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gantry_spec::TlsOptions;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Problem, Verify, x509};

/// What a protocol sends before its TLS handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preamble {
    /// TLS from the first byte (https, rediss, amqps).
    None,
    /// PostgreSQL SSLRequest, answered `S`.
    Postgres,
    /// The server's greeting, then the client's SSL request packet.
    Mysql,
    /// The server's `INFO` line (none when the server wants TLS first).
    Nats,
}

/// One TLS endpoint a probe connects to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub preamble: Preamble,
    /// What the probe verifies (`insecure_skip_verify` already applied).
    pub verify: Verify,
    pub tls: TlsOptions,
}

impl Endpoint {
    /// `host:port`, brackets around an IPv6 literal.
    pub fn target(&self) -> String {
        crate::stores::host_port(&self.host, self.port)
    }
}

/// What the handshake showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Verified as the probe verifies (or not verified, when it does not), not expired.
    Valid,
    /// Refused: unknown CA, wrong name, expired, or the TLS keys cannot be used.
    Invalid(Problem),
    /// No certificate seen: no connection, no TLS on that port, a timeout.
    NoHandshake(String),
}

/// The pre-flight's view of one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub verdict: Verdict,
    /// The earliest end of validity in the chain (seconds since the epoch) and whose it
    /// is ("the server's certificate", "intermediate certificate 1").
    pub expires: Option<(i64, String)>,
    pub verify: Verify,
}

impl Report {
    /// Whole days from `now` until the chain's first expiry (negative once expired).
    pub fn days_left(&self, now: i64) -> Option<i64> {
        self.expires
            .as_ref()
            .map(|(at, _)| (at - now).div_euclid(86_400))
    }
}

/// For a client that verifies the name itself and cannot leave it out (mysql_async): the
/// name to verify the certificate of `ep` against so that checking the chain and that
/// name is what `verify-ca` asks. `None` when `ep.host` itself is valid; a name the
/// certificate lists when it is not (the chain still has to verify, on the connection
/// that counts); an error when the chain does not verify or no handshake happens.
pub(crate) async fn name_for_chain_check(
    ep: &Endpoint,
    base: &Path,
    timeout: Duration,
) -> Result<Option<String>, String> {
    let full = Endpoint {
        verify: Verify::Full,
        ..ep.clone()
    };
    let seen = Arc::new(Mutex::new(Seen::default()));
    let outcome = tokio::time::timeout(timeout, handshake(&full, base, seen.clone())).await;
    let verdict = seen.lock().map(|mut s| s.verdict.take()).unwrap_or(None);
    match (verdict, outcome) {
        (Some(Ok(())), _) => Ok(None),
        (
            Some(Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { presented, .. },
            ))),
            _,
        ) if !presented.is_empty() => Ok(Some(super::bare_name(&presented[0]).to_string())),
        (Some(Err(e)), _) => Err(super::describe(&e, &ep.host).to_string()),
        (None, Err(_)) => Err(format!(
            "no TLS handshake with {} within {}",
            ep.target(),
            gantry_engine::HumanDuration(timeout)
        )),
        (None, Ok(Err(Failure::Config(why) | Failure::Connection(why)))) => Err(why),
        (None, Ok(Ok(()))) => Err(format!("{} sent no certificate", ep.target())),
    }
}

/// What the recorder saw.
#[derive(Debug, Default)]
struct Seen {
    chain: Vec<Vec<u8>>,
    verdict: Option<Result<(), rustls::Error>>,
}

/// Looks at `ep`'s certificate chain, all of it cut at `timeout`.
pub async fn inspect(ep: &Endpoint, base: &Path, timeout: Duration) -> Report {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let outcome = tokio::time::timeout(timeout, handshake(ep, base, seen.clone())).await;
    let seen = std::mem::take(&mut *seen.lock().unwrap_or_else(|p| p.into_inner()));
    let expires = soonest_expiry(&seen.chain);
    let verdict = match (seen.verdict, outcome) {
        (Some(Ok(())), _) => match &expires {
            // Unverified chains are still dated: an expired one is reported as such.
            Some((at, whose)) if *at < now() => Verdict::Invalid(Problem {
                what: format!(
                    "{whose} of {} expired on {} ({} ago)",
                    ep.target(),
                    x509::date(*at),
                    super::days_text((now() - at).div_euclid(86_400))
                ),
                todo: format!("renew the certificate {} serves", ep.target()),
            }),
            _ => Verdict::Valid,
        },
        (Some(Err(e)), _) => Verdict::Invalid(super::describe(&e, &ep.host)),
        (None, Err(_)) => Verdict::NoHandshake(format!(
            "no TLS handshake with {} within {}",
            ep.target(),
            gantry_engine::HumanDuration(timeout)
        )),
        (None, Ok(Err(Failure::Config(what)))) => Verdict::Invalid(Problem {
            what,
            todo: "fix ca_file, cert_file or key_file of the probe".into(),
        }),
        (None, Ok(Err(Failure::Connection(why)))) => Verdict::NoHandshake(why),
        (None, Ok(Ok(()))) => Verdict::NoHandshake(format!("{} sent no certificate", ep.target())),
    };
    Report {
        verdict,
        expires,
        verify: ep.verify,
    }
}

fn now() -> i64 {
    UnixTime::now().as_secs() as i64
}

/// The earliest notAfter of the chain and whose it is.
fn soonest_expiry(chain: &[Vec<u8>]) -> Option<(i64, String)> {
    chain
        .iter()
        .enumerate()
        .filter_map(|(i, der)| {
            let (_, not_after) = x509::validity(der)?;
            let whose = if i == 0 {
                "the server's certificate".to_string()
            } else {
                format!("intermediate certificate {i}")
            };
            Some((not_after, whose))
        })
        .min_by_key(|(at, _)| *at)
}

enum Failure {
    /// The TLS keys could not be used (unreadable file, no roots).
    Config(String),
    /// No connection, no TLS on the port.
    Connection(String),
}

async fn handshake(ep: &Endpoint, base: &Path, seen: Arc<Mutex<Seen>>) -> Result<(), Failure> {
    let inner = super::verifier(&ep.tls, base, ep.verify)
        .await
        .map_err(Failure::Config)?;
    let recorder = Arc::new(Recorder { inner, seen });
    let config = super::config_with(&ep.tls, base, recorder).map_err(Failure::Config)?;
    let target = ep.target();
    let mut stream = TcpStream::connect((ep.host.trim_matches(['[', ']']), ep.port))
        .await
        .map_err(|e| {
            Failure::Connection(
                crate::stores::connect_failure(&e, &target)
                    .unwrap_or_else(|| format!("{e} ({target})")),
            )
        })?;
    preamble(&mut stream, ep.preamble, &target)
        .await
        .map_err(Failure::Connection)?;
    let mut tls = super::handshake(stream, &ep.host, Arc::new(config))
        .await
        .map_err(Failure::Connection)?;
    let _ = tls.shutdown().await;
    Ok(())
}

/// Longest server greeting read before the handshake.
const MAX_GREETING: usize = 64 * 1024;

async fn preamble(stream: &mut TcpStream, p: Preamble, target: &str) -> Result<(), String> {
    match p {
        Preamble::None => Ok(()),
        Preamble::Postgres => {
            // SSLRequest: length 8, code 80877103.
            stream
                .write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
                .await
                .map_err(|e| format!("sending the SSLRequest to {target}: {e}"))?;
            let mut answer = [0u8; 1];
            stream
                .read_exact(&mut answer)
                .await
                .map_err(|e| format!("reading the SSLRequest answer of {target}: {e}"))?;
            match answer[0] {
                b'S' => Ok(()),
                b'N' => Err(format!(
                    "{target} does not accept TLS (it answered N to the SSLRequest): turn ssl on in the server, or use sslmode=disable"
                )),
                other => Err(format!(
                    "{target} answered {other:#04x} to the SSLRequest: is it a PostgreSQL server?"
                )),
            }
        }
        Preamble::Mysql => mysql_ssl_request(stream, target).await,
        Preamble::Nats => {
            // The INFO line, unless the server waits for the TLS handshake first.
            let mut line = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let read = tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf));
                match read.await {
                    Err(_) if line.is_empty() => return Ok(()),
                    Err(_) => return Err(format!("{target} sent half an INFO line")),
                    Ok(Ok(0)) => return Err(format!("{target} closed the connection")),
                    Ok(Ok(n)) => line.extend_from_slice(&buf[..n]),
                    Ok(Err(e)) => return Err(format!("reading the INFO line of {target}: {e}")),
                }
                if !line.starts_with(b"INFO") && line.len() >= 4 {
                    return Err(format!(
                        "{target} did not greet with INFO: is it a NATS server?"
                    ));
                }
                if line.ends_with(b"\r\n") {
                    return Ok(());
                }
                if line.len() > MAX_GREETING {
                    return Err(format!("{target} sent an INFO line over 64 KiB"));
                }
            }
        }
    }
}

/// Reads the MySQL greeting (protocol 10) and answers with the SSL request packet.
async fn mysql_ssl_request(stream: &mut TcpStream, target: &str) -> Result<(), String> {
    const CLIENT_LONG_PASSWORD: u32 = 0x1;
    const CLIENT_PROTOCOL_41: u32 = 0x200;
    const CLIENT_SSL: u32 = 0x800;
    const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
    let mut header = [0u8; 4];
    stream
        .read_exact(&mut header)
        .await
        .map_err(|e| format!("reading the greeting of {target}: {e}"))?;
    let len = usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
    if len > MAX_GREETING {
        return Err(format!("{target} sent a greeting over 64 KiB"));
    }
    let mut payload = vec![0u8; len];
    stream
        .read_exact(&mut payload)
        .await
        .map_err(|e| format!("reading the greeting of {target}: {e}"))?;
    if payload.first() == Some(&0xff) {
        let msg = String::from_utf8_lossy(payload.get(3..).unwrap_or_default()).to_string();
        return Err(format!("{target} refused the connection: {}", msg.trim()));
    }
    if payload.first() != Some(&10) {
        return Err(format!("{target} did not greet with MySQL protocol 10"));
    }
    // version string (NUL-terminated), connection id (4), auth data (8), filler (1), then
    // the lower two bytes of the capability flags.
    let caps_at = payload
        .iter()
        .skip(1)
        .position(|&b| b == 0)
        .map(|nul| 1 + nul + 1 + 4 + 8 + 1);
    let caps = caps_at
        .and_then(|at| payload.get(at..at + 2))
        .map(|b| u32::from(b[0]) | u32::from(b[1]) << 8)
        .ok_or_else(|| format!("{target} sent a greeting too short to read"))?;
    if caps & CLIENT_SSL == 0 {
        return Err(format!(
            "{target} does not offer TLS: configure ssl_cert and ssl_key in the server, or drop ssl-mode from the URL"
        ));
    }
    let flags = CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SSL | CLIENT_SECURE_CONNECTION;
    let mut packet = vec![32, 0, 0, header[3].wrapping_add(1)];
    packet.extend_from_slice(&flags.to_le_bytes());
    packet.extend_from_slice(&(16u32 << 20).to_le_bytes());
    packet.push(45); // utf8mb4_general_ci
    packet.extend_from_slice(&[0u8; 23]);
    stream
        .write_all(&packet)
        .await
        .map_err(|e| format!("sending the SSL request to {target}: {e}"))
}

/// The probe's verifier, recording the chain and its verdict and letting the handshake
/// finish either way (the pre-flight reports the verdict; nothing is sent after it).
#[derive(Debug)]
struct Recorder {
    inner: Arc<dyn ServerCertVerifier>,
    seen: Arc<Mutex<Seen>>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map(|_| ());
        if let Ok(mut seen) = self.seen.lock() {
            seen.chain = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.as_ref().to_vec())
                .collect();
            seen.verdict = Some(verdict);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
