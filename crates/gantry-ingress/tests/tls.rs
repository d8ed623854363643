//! A TLS listener with a generated certificate, and a clear error for unusable files.

mod common;

use common::*;
use gantry_ingress::{ListenerConfig, RouteConfig, TlsFiles};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn write_cert(dir: &std::path::Path) -> (TlsFiles, rustls::pki_types::CertificateDer<'static>) {
    std::fs::create_dir_all(dir).unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&files.cert, ck.cert.pem()).unwrap();
    std::fs::write(&files.key, ck.signing_key.serialize_pem()).unwrap();
    (files, ck.cert.der().clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_a_generated_certificate() {
    let up = upstream().await;
    let dir = std::env::temp_dir().join(format!("gantry-ingress-tls-{}", std::process::id()));
    let (files, der) = write_cert(&dir);
    let mut cfg = config(vec![RouteConfig::new("api", "/", "api")]);
    cfg.listeners = vec![ListenerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: Some(files),
    }];
    let (h, addr) = start(cfg);
    h.set_instances("api", vec![inst("api#1", up.addr)]);
    h.set_open(true);

    let mut roots = rustls::RootCertStore::empty();
    roots.add(der).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cc = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let conn = tokio_rustls::TlsConnector::from(Arc::new(cc));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = conn.connect(name, tcp).await.expect("TLS handshake");
    tls.write_all(b"GET /secure HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("x-forwarded-proto\",\"https"), "{text}");
    h.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unusable_tls_files_are_named() {
    let dir = std::env::temp_dir().join(format!("gantry-ingress-badtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cert.pem"), "not a pem").unwrap();
    let mut cfg = config(vec![]);
    cfg.listeners[0].tls = Some(TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    });
    let err = gantry_ingress::start(cfg).unwrap_err().to_string();
    assert!(err.contains("cert.pem"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
