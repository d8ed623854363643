//! https probes and the pre-flight's certificate report against a rustls test server on loopback, with certificates made in the test (rcgen): valid, wrong CA, expired, wrong name, expiring soon, client certificates, insecure_skip_verify.

mod pki;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gantry_runtime::preflight::{Severity, Status};
use gantry_runtime::probe;
use gantry_runtime::tls::Verify;
use gantry_runtime::tls::inspect::{self, Endpoint, Preamble, Verdict};
use gantry_spec::TlsOptions;
use pki::{Ca, Leaf, TempDir};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(5);

/// A TLS server answering every request with `200 ok`; stopped when dropped.
struct Server {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn server_config(leaf: &Leaf, client_ca: Option<&Ca>) -> rustls::ServerConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = CertificateDer::pem_slice_iter(leaf.cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(ca.pem().as_bytes()).unwrap())
                .unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder.with_single_cert(chain, key).unwrap()
}

async fn https(leaf: &Leaf, client_ca: Option<&Ca>) -> Server {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config(leaf, client_ca)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let (mut buf, mut got) = (vec![0u8; 4096], Vec::new());
                while !got.windows(4).any(|w| w == b"\r\n\r\n") && got.len() < 65_536 {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    Server { addr, task }
}

fn ca_file(file: &str) -> TlsOptions {
    TlsOptions {
        ca_file: Some(file.into()),
        ..TlsOptions::default()
    }
}

async fn get(url: &str, tls: &TlsOptions, base: &Path) -> probe::ProbeOutcome {
    probe::http(url, None, None, tls, base, T).await
}

#[track_caller]
fn assert_fails(o: &probe::ProbeOutcome, parts: &[&str]) {
    assert!(!o.ok, "expected a failure, got a pass: {}", o.message);
    for p in parts {
        assert!(o.message.contains(p), "expected {p:?} in: {}", o.message);
    }
}

#[tokio::test]
async fn https_probe_passes_with_its_ca_and_says_why_it_fails_otherwise() {
    let dir = TempDir::new("https");
    let ca = Ca::new("gantry test CA");
    let other = Ca::new("another CA");
    dir.write("ca.pem", &ca.pem());
    dir.write("other.pem", &other.pem());
    let base = dir.path();
    let valid = https(&ca.server(&["127.0.0.1", "localhost"], -1, 365), None).await;
    let expired = https(&ca.server(&["127.0.0.1"], -400, -30), None).await;
    let wrong_name = https(&ca.server(&["db.example"], -1, 365), None).await;

    let url = format!("https://{}/health", valid.addr);
    let o = get(&url, &ca_file("ca.pem"), base).await;
    assert!(o.ok, "{}", o.message);
    assert_eq!(o.message, format!("HTTP 200 from {url}"));
    let by_name = format!("https://localhost:{}/health", valid.addr.port());
    let o = get(&by_name, &ca_file("ca.pem"), base).await;
    assert!(o.ok, "{}", o.message);

    // Wrong CA: the chain leads nowhere trusted.
    let o = get(&url, &ca_file("other.pem"), base).await;
    assert_fails(
        &o,
        &[
            "the certificate of 127.0.0.1 is not signed by a trusted CA",
            "set ca_file",
        ],
    );
    // The system roots do not know the test CA either (or there are none to load).
    let o = get(&url, &TlsOptions::default(), base).await;
    assert!(!o.ok, "{}", o.message);
    assert!(
        o.message.contains("not signed by a trusted CA")
            || o.message.contains("no system root certificates"),
        "{}",
        o.message
    );

    // Expired: the date and how long ago.
    let o = get(
        &format!("https://{}/", expired.addr),
        &ca_file("ca.pem"),
        base,
    )
    .await;
    let (y, m, d) = pki::ymd(-30);
    assert_fails(
        &o,
        &[
            &format!("expired on {y:04}-{m:02}-{d:02} (30 days ago)"),
            "renew the certificate",
        ],
    );

    // Wrong name: what it names instead.
    let o = get(
        &format!("https://{}/", wrong_name.addr),
        &ca_file("ca.pem"),
        base,
    )
    .await;
    assert_fails(
        &o,
        &[
            "is not valid for the name 127.0.0.1 (it names db.example)",
            "subjectAltName",
        ],
    );

    // insecure_skip_verify accepts any of them.
    let insecure = TlsOptions {
        insecure_skip_verify: true,
        ..ca_file("other.pem")
    };
    for s in [&valid, &expired, &wrong_name] {
        let o = get(&format!("https://{}/", s.addr), &insecure, base).await;
        assert!(o.ok, "{}", o.message);
    }

    // A CA file that is not there names itself.
    let o = get(&url, &ca_file("missing.pem"), base).await;
    assert_fails(&o, &["ca_file", "missing.pem"]);
    // A plain (non-TLS) port behind an https URL.
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_addr = plain.local_addr().unwrap();
    let answer = tokio::spawn(async move {
        if let Ok((mut s, _)) = plain.accept().await {
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let o = get(&format!("https://{plain_addr}/"), &ca_file("ca.pem"), base).await;
    answer.abort();
    assert_fails(
        &o,
        &["did not answer with TLS", "check that the port speaks TLS"],
    );
}

#[tokio::test]
async fn https_probe_presents_a_client_certificate() {
    let dir = TempDir::new("mtls");
    let ca = Ca::new("gantry test CA");
    let client = ca.client("gantry-probe");
    let stranger = Ca::new("another CA").client("gantry-probe");
    dir.write("ca.pem", &ca.pem());
    dir.write("client.pem", &client.cert);
    dir.write("client.key", &client.key);
    dir.write("stranger.pem", &stranger.cert);
    dir.write("stranger.key", &stranger.key);
    let server = https(&ca.server(&["127.0.0.1"], -1, 365), Some(&ca)).await;
    let url = format!("https://{}/", server.addr);
    let with = |cert: &str, key: &str| TlsOptions {
        cert_file: Some(cert.into()),
        key_file: Some(key.into()),
        ..ca_file("ca.pem")
    };

    let o = get(&url, &with("client.pem", "client.key"), dir.path()).await;
    assert!(o.ok, "{}", o.message);
    let o = get(&url, &ca_file("ca.pem"), dir.path()).await;
    assert_fails(&o, &["refused the TLS handshake", "cert_file and key_file"]);
    let o = get(&url, &with("stranger.pem", "stranger.key"), dir.path()).await;
    assert_fails(&o, &["refused the TLS handshake"]);
    // A key that is not a key.
    let o = get(&url, &with("client.pem", "client.pem"), dir.path()).await;
    assert_fails(&o, &["key_file client.pem"]);
}

fn endpoint(addr: SocketAddr, tls: TlsOptions) -> Endpoint {
    Endpoint {
        host: addr.ip().to_string(),
        port: addr.port(),
        preamble: Preamble::None,
        verify: Verify::Full.with(&tls),
        tls,
    }
}

#[tokio::test]
async fn inspection_reports_the_chain_and_days_to_expiry() {
    let dir = TempDir::new("inspect");
    let ca = Ca::new("gantry test CA");
    dir.write("ca.pem", &ca.pem());
    dir.write("other.pem", &Ca::new("another CA").pem());
    let base = dir.path();
    let now = pki::now();

    let valid = https(&ca.server(&["127.0.0.1"], -1, 365), None).await;
    let r = inspect::inspect(&endpoint(valid.addr, ca_file("ca.pem")), base, T).await;
    assert_eq!(r.verdict, Verdict::Valid);
    let left = r.days_left(now).unwrap();
    assert!((364..=365).contains(&left), "{left}");
    assert_eq!(r.expires.as_ref().unwrap().1, "the server's certificate");

    let soon = https(&ca.server(&["127.0.0.1"], -1, 5), None).await;
    let r = inspect::inspect(&endpoint(soon.addr, ca_file("ca.pem")), base, T).await;
    assert_eq!(r.verdict, Verdict::Valid);
    assert!((4..=5).contains(&r.days_left(now).unwrap()), "{r:?}");

    let expired = https(&ca.server(&["127.0.0.1"], -400, -3), None).await;
    let r = inspect::inspect(&endpoint(expired.addr, ca_file("ca.pem")), base, T).await;
    let Verdict::Invalid(p) = &r.verdict else {
        panic!("expired must be invalid: {r:?}");
    };
    assert!(p.what.contains("expired on"), "{p:?}");
    assert!(r.days_left(now).unwrap() < 0);

    // Unverified, still dated: an expired certificate is reported as such.
    let insecure = TlsOptions {
        insecure_skip_verify: true,
        ..TlsOptions::default()
    };
    let r = inspect::inspect(&endpoint(expired.addr, insecure), base, T).await;
    assert_eq!(r.verify, Verify::None);
    let Verdict::Invalid(p) = &r.verdict else {
        panic!("expired must be invalid even unverified: {r:?}");
    };
    assert!(
        p.what.contains("the server's certificate of 127.0.0.1:"),
        "{p:?}"
    );

    let r = inspect::inspect(&endpoint(valid.addr, ca_file("other.pem")), base, T).await;
    let Verdict::Invalid(p) = &r.verdict else {
        panic!("a wrong CA must be invalid: {r:?}");
    };
    assert!(p.what.contains("not signed by a trusted CA"), "{p:?}");
    assert!(p.todo.contains("ca_file"), "{p:?}");
    assert!(r.expires.is_some(), "the chain is dated even when refused");

    let wrong_name = https(&ca.server(&["db.example"], -1, 365), None).await;
    let r = inspect::inspect(&endpoint(wrong_name.addr, ca_file("ca.pem")), base, T).await;
    assert!(
        matches!(&r.verdict, Verdict::Invalid(p) if p.what.contains("it names db.example")),
        "{r:?}"
    );
    // verify-ca style: the chain without the name passes.
    let chain_only = Endpoint {
        verify: Verify::ChainOnly,
        ..endpoint(wrong_name.addr, ca_file("ca.pem"))
    };
    assert_eq!(
        inspect::inspect(&chain_only, base, T).await.verdict,
        Verdict::Valid
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let r = inspect::inspect(&endpoint(closed_addr, ca_file("ca.pem")), base, T).await;
    assert!(
        matches!(&r.verdict, Verdict::NoHandshake(why) if why.contains("connection refused")),
        "{r:?}"
    );
}

/// A stack of one external service behind https, through the whole pre-flight.
async fn preflight(
    dir: &TempDir,
    addr: SocketAddr,
    priority: &str,
) -> gantry_runtime::preflight::Report {
    let text = format!(
        "[services.edge]\nkind = \"external\"\npriority = \"{priority}\"\n\
         readiness = {{ http = \"https://{addr}/health\", ca_file = \"ca.pem\" }}\n"
    );
    let source = gantry_spec::Source::new("gantry.toml", &text);
    let loaded = gantry_spec::decode(&source, &|_| None);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let (plan, diags) = gantry_plan::build(&loaded.spec, &source, &Default::default());
    assert!(diags.iter().all(|d| !d.is_error()), "{diags:?}");
    gantry_runtime::preflight::run(&loaded.spec, &plan, dir.path(), reaper())
        .await
        .0
}

/// The pre-flight tests share one runtime, where the one reaper of the process runs.
fn rt() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("build tokio runtime")
    })
}

fn reaper() -> &'static gantry_runtime::reaper::Reaper {
    static REAPER: std::sync::OnceLock<gantry_runtime::reaper::Reaper> = std::sync::OnceLock::new();
    REAPER.get_or_init(|| {
        let _guard = rt().enter();
        gantry_runtime::reaper::Reaper::start().expect("start the reaper")
    })
}

fn certificate_check(
    report: &gantry_runtime::preflight::Report,
) -> &gantry_runtime::preflight::Check {
    report
        .checks
        .iter()
        .find(|c| c.check == "certificate")
        .unwrap_or_else(|| panic!("no certificate check in:\n{}", report.render()))
}

#[test]
fn the_preflight_reports_certificates_of_external_services() {
    reaper();
    rt().block_on(preflight_reports_certificates());
}

async fn preflight_reports_certificates() {
    let dir = TempDir::new("preflight-tls");
    let ca = Ca::new("gantry test CA");
    dir.write("ca.pem", &ca.pem());

    let valid = https(&ca.server(&["127.0.0.1"], -1, 200), None).await;
    let report = preflight(&dir, valid.addr, "critical").await;
    let c = certificate_check(&report);
    assert_eq!(c.status, Status::Pass, "{}", report.render());
    assert!(
        c.message
            .contains("chain and host name verified; expires in"),
        "{}",
        c.message
    );
    assert!(report.go(), "{}", report.render());

    let soon = https(&ca.server(&["127.0.0.1"], -1, 6), None).await;
    let report = preflight(&dir, soon.addr, "critical").await;
    let c = certificate_check(&report);
    assert_eq!(
        (c.status, c.severity),
        (Status::Fail, Severity::Warning),
        "{}",
        report.render()
    );
    assert!(c.message.contains("expires in"), "{}", c.message);
    assert!(c.hint.as_deref().unwrap_or("").contains("renew"), "{c:?}");
    assert!(
        report.go(),
        "a certificate expiring soon is a warning:\n{}",
        report.render()
    );
    assert!(
        report.render().contains("certificate: "),
        "{}",
        report.render()
    );

    let expired = https(&ca.server(&["127.0.0.1"], -400, -1), None).await;
    let report = preflight(&dir, expired.addr, "critical").await;
    let c = certificate_check(&report);
    assert_eq!(
        (c.status, c.severity),
        (Status::Fail, Severity::Critical),
        "{}",
        report.render()
    );
    assert!(c.message.contains("expired on"), "{}", c.message);
    assert!(!report.go(), "{}", report.render());
    assert!(
        report.render().contains("hint: renew the certificate"),
        "{}",
        report.render()
    );

    // Not critical: the same failure weighs as the probe's does, a warning.
    let report = preflight(&dir, expired.addr, "medium").await;
    let c = certificate_check(&report);
    assert_eq!(
        (c.status, c.severity),
        (Status::Fail, Severity::Warning),
        "{}",
        report.render()
    );
}

#[test]
fn revalidation_also_checks_the_certificates_of_running_services() {
    reaper();
    rt().block_on(revalidation_checks_certificates());
}

async fn revalidation_checks_certificates() {
    let dir = TempDir::new("revalidate-tls");
    let ca = Ca::new("gantry test CA");
    dir.write("ca.pem", &ca.pem());
    let soon = https(&ca.server(&["127.0.0.1"], -1, 3), None).await;
    let text = format!(
        "[services.api]\ncommand = \"true\"\nrestart = \"always\"\n\
         readiness = {{ http = \"https://{}/health\", ca_file = \"ca.pem\" }}\n",
        soon.addr
    );
    let source = gantry_spec::Source::new("gantry.toml", &text);
    let loaded = gantry_spec::decode(&source, &|_| None);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let (plan, _) = gantry_plan::build(&loaded.spec, &source, &Default::default());
    let run = |revalidate| {
        gantry_runtime::preflight::run_with(&loaded.spec, &plan, dir.path(), reaper(), revalidate)
    };
    // At the boot the service is not listening yet: its probe checks the chain when it runs.
    let (boot, _) = run(false).await;
    assert!(
        boot.checks.iter().all(|c| c.check != "certificate"),
        "{}",
        boot.render()
    );
    let (running, _) = run(true).await;
    let c = certificate_check(&running);
    assert_eq!(
        (c.status, c.severity),
        (Status::Fail, Severity::Warning),
        "{}",
        running.render()
    );
    assert!(c.message.contains("expires in"), "{}", c.message);
    assert_eq!(c.service.as_deref(), Some("api"));
}
