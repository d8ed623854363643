//! TLS store probes against real servers configured for TLS, each a throwaway instance on a free loopback port in its own temp dir, with certificates made in the test: Redis (`--tls-port`), PostgreSQL (`ssl=on`, started from /usr/lib/postgresql/*/bin under runuser) and NATS (`--tls`); RabbitMQ (`amqps://`) through a rustls terminator in the test in front of the machine's broker. Valid, wrong CA, expired and wrong-name certificates; the pre-flight's inspection through each protocol's preamble.
//!
//! The servers are the machine's packages (scripts/setup installs them); a missing one
//! fails the test with what to do, except PostgreSQL with GANTRY_TEST_NO_POSTGRES=1. The
//! AMQP test needs the RabbitMQ that scripts/stores starts on 5672.

mod pki;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gantry_runtime::probe::ProbeOutcome;
use gantry_runtime::stores;
use gantry_runtime::tls::inspect::{self, Verdict};
use gantry_spec::{ProbeKind, StoreProbe, TlsOptions};
use pki::{Ca, Leaf, TempDir};

const T: Duration = Duration::from_secs(10);

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A server process, killed (and reaped) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (polling, bounded) until `port` accepts on loopback; panics with `log` if the
/// server exits or the deadline passes.
async fn wait_port(p: &mut Proc, port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Ok(Some(st)) = p.0.try_wait() {
            panic!(
                "{what} exited ({st}) before listening on {addr}:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "{what} did not listen on {addr} within 30s:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is not installed; run scripts/setup, which installs the store servers");
}

fn ca_file(file: &str) -> TlsOptions {
    TlsOptions {
        ca_file: Some(file.into()),
        ..TlsOptions::default()
    }
}

fn probe_of(url: String, tls: TlsOptions) -> StoreProbe {
    StoreProbe {
        url,
        tls,
        ..StoreProbe::default()
    }
}

#[track_caller]
fn assert_ok(o: &ProbeOutcome, contains: &str) {
    assert!(o.ok, "expected a pass, got: {}", o.message);
    assert!(
        o.message.contains(contains),
        "expected {contains:?} in: {}",
        o.message
    );
}

#[track_caller]
fn assert_fail(o: &ProbeOutcome, contains: &str) {
    assert!(!o.ok, "expected a failure, got a pass: {}", o.message);
    assert!(
        o.message.contains(contains),
        "expected {contains:?} in: {}",
        o.message
    );
}

/// The certificate files of one server under `dir`: `NAME.pem`, `NAME.key`.
fn write_leaf(dir: &TempDir, name: &str, leaf: &Leaf) -> (PathBuf, PathBuf) {
    (
        dir.write(&format!("{name}.pem"), &leaf.cert),
        dir.write(&format!("{name}.key"), &leaf.key),
    )
}

// ------------------------------------------------------------------------------- redis

async fn redis_tls(dir: &TempDir, name: &str, leaf: &Leaf, ca: &Path) -> (Proc, u16) {
    let (cert, key) = write_leaf(dir, name, leaf);
    let port = free_port();
    let log = dir.path().join(format!("{name}.log"));
    let mut p = Proc(
        Command::new(tool("redis-server"))
            .args([
                "--port",
                "0",
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--tls-port")
            .arg(port.to_string())
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .arg("--tls-ca-cert-file")
            .arg(ca)
            .args(["--tls-auth-clients", "optional"])
            .arg("--dir")
            .arg(dir.path())
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server"),
    );
    wait_port(&mut p, port, "redis-server", &log).await;
    (p, port)
}

#[tokio::test]
async fn rediss_probes_a_real_tls_redis() {
    let dir = TempDir::new("rediss");
    let ca = Ca::new("gantry test CA");
    let ca_pem = dir.write("ca.pem", &ca.pem());
    dir.write("other.pem", &Ca::new("another CA").pem());
    let (_valid, port) = redis_tls(
        &dir,
        "valid",
        &ca.server(&["127.0.0.1", "localhost"], -1, 365),
        &ca_pem,
    )
    .await;
    let (_expired, expired_port) = redis_tls(
        &dir,
        "expired",
        &ca.server(&["127.0.0.1"], -400, -10),
        &ca_pem,
    )
    .await;
    let (_named, named_port) = redis_tls(
        &dir,
        "named",
        &ca.server(&["cache.example"], -1, 365),
        &ca_pem,
    )
    .await;
    let run = |url: String, tls: TlsOptions, rw: bool| {
        let base = dir.path().to_path_buf();
        async move {
            let kind = ProbeKind::Redis(StoreProbe {
                rw,
                ..probe_of(url, tls)
            });
            stores::check(&kind, T, &base).await
        }
    };

    let url = format!("rediss://127.0.0.1:{port}/0");
    assert_ok(
        &run(url.clone(), ca_file("ca.pem"), false).await,
        "connected, PING ok",
    );
    assert_ok(
        &run(url.clone(), ca_file("ca.pem"), true).await,
        "SET/GET/DEL ok",
    );
    assert_ok(
        &run(
            format!("rediss://localhost:{port}"),
            ca_file("ca.pem"),
            false,
        )
        .await,
        "PING ok",
    );
    let o = run(url.clone(), ca_file("other.pem"), false).await;
    assert_fail(&o, "is not signed by a trusted CA");
    assert_fail(&o, &format!("(rediss://127.0.0.1:{port}/0)"));
    assert_fail(
        &run(
            format!("rediss://127.0.0.1:{expired_port}"),
            ca_file("ca.pem"),
            false,
        )
        .await,
        "expired on",
    );
    assert_fail(
        &run(
            format!("rediss://127.0.0.1:{named_port}"),
            ca_file("ca.pem"),
            false,
        )
        .await,
        "is not valid for the name 127.0.0.1 (it names cache.example)",
    );
    // Plain RESP against the TLS port: no PONG.
    let o = run(
        format!("redis://127.0.0.1:{port}"),
        TlsOptions::default(),
        false,
    )
    .await;
    assert!(!o.ok, "{}", o.message);

    // The pre-flight's inspection of the same endpoints.
    let probe = probe_of(url, ca_file("ca.pem"));
    let ep = gantry_runtime::tls::endpoint(&ProbeKind::Redis(probe)).expect("a TLS endpoint");
    let r = inspect::inspect(&ep, dir.path(), T).await;
    assert_eq!(r.verdict, Verdict::Valid);
    assert!(r.days_left(pki::now()).unwrap() >= 364);
}

// ---------------------------------------------------------------------------- postgres

/// The newest PostgreSQL server binaries, `/usr/lib/postgresql/N/bin`.
fn pg_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file()).then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

/// A throwaway PostgreSQL with `ssl=on` serving `leaf`, run as `nobody` (it refuses root);
/// the server process itself is the child, so dropping it stops the server.
struct Pg {
    proc: Proc,
    port: u16,
    data: PathBuf,
}

async fn postgres_tls(dir: &TempDir, bin: &Path, leaf: &Leaf) -> Pg {
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("a nobody user");
    let own = |p: &Path| nix::unistd::chown(p, Some(nobody.uid), Some(nobody.gid)).unwrap();
    let root = dir.path().join("pg");
    for d in [&root, &root.join("sock")] {
        std::fs::create_dir_all(d).unwrap();
        own(d);
    }
    own(dir.path());
    let data = root.join("data");
    // As `nobody` directly (not through runuser, which would stay the parent: killing it
    // would leave the server behind).
    let as_nobody = |cmd: &mut Command| {
        use std::os::unix::process::CommandExt as _;
        cmd.uid(nobody.uid.as_raw()).gid(nobody.gid.as_raw());
    };
    let mut initdb = Command::new(bin.join("initdb"));
    as_nobody(&mut initdb);
    let st = initdb
        .arg("-D")
        .arg(&data)
        .args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "--no-instructions",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run initdb as nobody");
    assert!(
        st.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    install_pg_cert(&data, leaf, &own);
    let port = free_port();
    let log = root.join("server.log");
    let logfile = std::fs::File::create(&log).unwrap();
    let mut proc = Proc(
        {
            let mut c = Command::new(bin.join("postgres"));
            as_nobody(&mut c);
            c
        }
        .arg("-D")
        .arg(&data)
        .arg("-p")
        .arg(port.to_string())
        .arg("-k")
        .arg(root.join("sock"))
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "ssl=on",
        ])
        .args([
            "-c",
            "ssl_cert_file=server.pem",
            "-c",
            "ssl_key_file=server.key",
        ])
        .stdin(Stdio::null())
        .stdout(logfile.try_clone().unwrap())
        .stderr(logfile)
        .spawn()
        .expect("start postgres"),
    );
    wait_port(&mut proc, port, "postgres", &log).await;
    // Listening is not accepting yet ("the database system is starting up"): poll a plain
    // SELECT 1, bounded.
    let plain = ProbeKind::Postgres(probe_of(
        format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        TlsOptions::default(),
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = stores::check(&plain, T, dir.path()).await;
        if o.ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "postgres never accepted a query: {}",
            o.message
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Pg { proc, port, data }
}

fn install_pg_cert(data: &Path, leaf: &Leaf, own: &dyn Fn(&Path)) {
    use std::os::unix::fs::PermissionsExt as _;
    for (name, text) in [("server.pem", &leaf.cert), ("server.key", &leaf.key)] {
        let p = data.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        own(&p);
    }
}

#[tokio::test]
async fn postgres_sslmodes_against_a_real_tls_postgres() {
    let Some(bin) = pg_bin() else {
        if std::env::var_os("GANTRY_TEST_NO_POSTGRES").is_some() {
            eprintln!(
                "skipped: no PostgreSQL under /usr/lib/postgresql (GANTRY_TEST_NO_POSTGRES=1)"
            );
            return;
        }
        panic!(
            "no PostgreSQL server under /usr/lib/postgresql/*/bin (initdb, postgres)\n  hint: run scripts/setup, or set GANTRY_TEST_NO_POSTGRES=1 to skip this test"
        );
    };
    let dir = TempDir::new("pgtls");
    let ca = Ca::new("gantry test CA");
    dir.write("ca.pem", &ca.pem());
    dir.write("other.pem", &Ca::new("another CA").pem());
    // The certificate names localhost only: 127.0.0.1 is the wrong name.
    let mut pg = postgres_tls(&dir, &bin, &ca.server(&["localhost"], -1, 365)).await;
    let port = pg.port;
    let run = |url: String, tls: TlsOptions| {
        let base = dir.path().to_path_buf();
        async move { stores::check(&ProbeKind::Postgres(probe_of(url, tls)), T, &base).await }
    };
    let url = |host: &str, mode: &str| {
        format!("postgres://postgres@{host}:{port}/postgres?sslmode={mode}")
    };

    assert_ok(
        &run(url("localhost", "verify-full"), ca_file("ca.pem")).await,
        "connected, SELECT 1 ok",
    );
    let rw = StoreProbe {
        rw: true,
        ..probe_of(url("localhost", "verify-full"), ca_file("ca.pem"))
    };
    assert_ok(
        &stores::check(&ProbeKind::Postgres(rw), T, dir.path()).await,
        "write/read/delete ok",
    );
    // libpq's own parameter for the CA works too.
    let with_rootcert = format!("{}&sslrootcert=ca.pem", url("localhost", "verify-full"));
    assert_ok(
        &run(with_rootcert, TlsOptions::default()).await,
        "SELECT 1 ok",
    );
    assert_fail(
        &run(url("127.0.0.1", "verify-full"), ca_file("ca.pem")).await,
        "is not valid for the name 127.0.0.1 (it names localhost)",
    );
    assert_ok(
        &run(url("127.0.0.1", "verify-ca"), ca_file("ca.pem")).await,
        "SELECT 1 ok",
    );
    assert_fail(
        &run(url("localhost", "verify-full"), ca_file("other.pem")).await,
        "is not signed by a trusted CA",
    );
    // require: encrypted, not verified (no CA given) ...
    assert_ok(
        &run(url("127.0.0.1", "require"), TlsOptions::default()).await,
        "SELECT 1 ok",
    );
    // ... but with a CA the chain is checked, as libpq does.
    assert_fail(
        &run(url("127.0.0.1", "require"), ca_file("other.pem")).await,
        "is not signed by a trusted CA",
    );

    // The pre-flight's inspection, through the SSLRequest.
    let kind = ProbeKind::Postgres(probe_of(url("localhost", "verify-full"), ca_file("ca.pem")));
    let ep = gantry_runtime::tls::endpoint(&kind).expect("a TLS endpoint");
    let r = inspect::inspect(&ep, dir.path(), T).await;
    assert_eq!(r.verdict, Verdict::Valid, "{r:?}");

    // An expired certificate, reloaded into the running server (SIGHUP): polled until the
    // server serves it, bounded.
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let own = |p: &Path| nix::unistd::chown(p, Some(nobody.uid), Some(nobody.gid)).unwrap();
    install_pg_cert(&pg.data, &ca.server(&["localhost"], -400, -2), &own);
    let pid = std::fs::read_to_string(pg.data.join("postmaster.pid")).unwrap();
    let pid: i32 = pid.lines().next().unwrap().trim().parse().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let o = loop {
        let o = run(url("localhost", "verify-full"), ca_file("ca.pem")).await;
        if !o.ok || Instant::now() > deadline {
            break o;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_fail(&o, "expired on");
    let r = inspect::inspect(&ep, dir.path(), T).await;
    assert!(
        matches!(&r.verdict, Verdict::Invalid(p) if p.what.contains("expired on")),
        "{r:?}"
    );
    let _ = pg.proc.0.kill();
}

// -------------------------------------------------------------------------------- nats

#[tokio::test]
async fn nats_tls_probes_a_real_tls_nats() {
    let dir = TempDir::new("natstls");
    let ca = Ca::new("gantry test CA");
    dir.write("ca.pem", &ca.pem());
    dir.write("other.pem", &Ca::new("another CA").pem());
    let (cert, key) = write_leaf(&dir, "server", &ca.server(&["127.0.0.1"], -1, 365));
    let port = free_port();
    let log = dir.path().join("nats.log");
    let mut p = Proc(
        Command::new(tool("nats-server"))
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "--tls"])
            .arg("--tlscert")
            .arg(&cert)
            .arg("--tlskey")
            .arg(&key)
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server"),
    );
    wait_port(&mut p, port, "nats-server", &log).await;
    let run = |url: String, tls: TlsOptions| {
        let base = dir.path().to_path_buf();
        async move { stores::check(&ProbeKind::Nats(probe_of(url, tls)), T, &base).await }
    };
    let url = format!("tls://127.0.0.1:{port}");
    assert_ok(&run(url.clone(), ca_file("ca.pem")).await, "connected");
    assert_fail(
        &run(url.clone(), ca_file("other.pem")).await,
        "is not signed by a trusted CA",
    );

    let kind = ProbeKind::Nats(probe_of(url, ca_file("ca.pem")));
    let ep = gantry_runtime::tls::endpoint(&kind).expect("a TLS endpoint");
    let r = inspect::inspect(&ep, dir.path(), T).await;
    assert_eq!(r.verdict, Verdict::Valid, "{r:?}");
}

// -------------------------------------------------------------------------------- amqp

/// A TLS terminator on a free loopback port serving `leaf` and passing the bytes on to
/// `upstream`; stopped when dropped.
struct Terminator {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Terminator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn terminator(leaf: &Leaf, upstream: SocketAddr) -> Terminator {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_slice_iter(leaf.cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
    Terminator { port, task }
}

#[tokio::test]
async fn amqps_probes_rabbitmq_through_tls() {
    let broker = SocketAddr::from(([127, 0, 0, 1], 5672));
    if TcpStream::connect_timeout(&broker, Duration::from_secs(3)).is_err() {
        panic!(
            "RabbitMQ is not answering on {broker}; run scripts/stores to start the store servers"
        );
    }
    let dir = TempDir::new("amqps");
    let ca = Ca::new("gantry test CA");
    dir.write("ca.pem", &ca.pem());
    dir.write("other.pem", &Ca::new("another CA").pem());
    let valid = terminator(&ca.server(&["127.0.0.1", "localhost"], -1, 365), broker).await;
    let expired = terminator(&ca.server(&["127.0.0.1"], -400, -5), broker).await;
    let named = terminator(&ca.server(&["mq.example"], -1, 365), broker).await;
    let run = |port: u16, tls: TlsOptions| {
        let base = dir.path().to_path_buf();
        let url = format!("amqps://guest:guest@127.0.0.1:{port}/%2f");
        async move { stores::check(&ProbeKind::Amqp(probe_of(url, tls)), T, &base).await }
    };
    let o = run(valid.port, ca_file("ca.pem")).await;
    assert_ok(&o, "connected");
    assert!(!o.message.contains("guest:guest"), "{}", o.message);
    assert_fail(
        &run(valid.port, ca_file("other.pem")).await,
        "is not signed by a trusted CA",
    );
    assert_fail(&run(expired.port, ca_file("ca.pem")).await, "expired on");
    assert_fail(
        &run(named.port, ca_file("ca.pem")).await,
        "is not valid for the name 127.0.0.1 (it names mq.example)",
    );

    let kind = ProbeKind::Amqp(probe_of(
        format!("amqps://guest:guest@127.0.0.1:{}/%2f", valid.port),
        ca_file("ca.pem"),
    ));
    let ep = gantry_runtime::tls::endpoint(&kind).expect("a TLS endpoint");
    let r = inspect::inspect(&ep, dir.path(), T).await;
    assert_eq!(r.verdict, Verdict::Valid, "{r:?}");
}

// ------------------------------------------------------------------------------- mysql

/// A throwaway MariaDB with TLS serving `leaf` (root without a password on 127.0.0.1).
async fn mariadb_tls(dir: &TempDir, leaf: &Leaf) -> (Proc, u16) {
    let (cert, key) = write_leaf(dir, "server", leaf);
    let data = dir.path().join("data");
    let st = Command::new(tool("mariadb-install-db"))
        .args([
            "--no-defaults",
            "--user=root",
            "--auth-root-authentication-method=normal",
        ])
        .args(["--skip-test-db"])
        .arg(format!("--datadir={}", data.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run mariadb-install-db");
    assert!(
        st.status.success(),
        "mariadb-install-db failed: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let port = free_port();
    let log = dir.path().join("mariadb.log");
    let logfile = std::fs::File::create(&log).unwrap();
    let mut p = Proc(
        Command::new(tool("mariadbd"))
            .args(["--no-defaults", "--user=root", "--bind-address=127.0.0.1"])
            .args(["--skip-log-bin", "--innodb-buffer-pool-size=16M"])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={port}"))
            .arg(format!("--socket={}", dir.path().join("sock").display()))
            .arg(format!("--ssl-cert={}", cert.display()))
            .arg(format!("--ssl-key={}", key.display()))
            .stdin(Stdio::null())
            .stdout(logfile.try_clone().unwrap())
            .stderr(logfile)
            .spawn()
            .expect("start mariadbd"),
    );
    wait_port(&mut p, port, "mariadbd", &log).await;
    (p, port)
}

#[tokio::test]
async fn mysql_ssl_modes_against_a_real_tls_mariadb() {
    let dir = TempDir::new("mysqltls");
    let ca = Ca::new("gantry test CA");
    dir.write("ca.pem", &ca.pem());
    dir.write("other.pem", &Ca::new("another CA").pem());
    // The certificate names localhost only: 127.0.0.1 is the wrong name.
    let (_db, port) = mariadb_tls(&dir, &ca.server(&["localhost"], -1, 365)).await;
    let run = |host: &str, mode: &str, tls: TlsOptions| {
        let base = dir.path().to_path_buf();
        let url = format!("mysql://root@{host}:{port}/mysql?ssl-mode={mode}");
        async move { stores::check(&ProbeKind::Mysql(probe_of(url, tls)), T, &base).await }
    };
    assert_ok(
        &run("localhost", "VERIFY_IDENTITY", ca_file("ca.pem")).await,
        "connected, SELECT 1 ok",
    );
    assert_fail(
        &run("127.0.0.1", "VERIFY_IDENTITY", ca_file("ca.pem")).await,
        "is not valid for the name 127.0.0.1 (it names localhost)",
    );
    assert_ok(
        &run("127.0.0.1", "VERIFY_CA", ca_file("ca.pem")).await,
        "SELECT 1 ok",
    );
    assert_fail(
        &run("localhost", "VERIFY_IDENTITY", ca_file("other.pem")).await,
        "is not signed by a trusted CA",
    );
    // REQUIRED without a CA encrypts without verifying, as the MySQL client does.
    assert_ok(
        &run("127.0.0.1", "REQUIRED", TlsOptions::default()).await,
        "SELECT 1 ok",
    );

    // The pre-flight's inspection, through the greeting and the SSL request packet.
    let kind = ProbeKind::Mysql(probe_of(
        format!("mysql://root@localhost:{port}/mysql?ssl-mode=VERIFY_IDENTITY"),
        ca_file("ca.pem"),
    ));
    let ep = gantry_runtime::tls::endpoint(&kind).expect("a TLS endpoint");
    let r = inspect::inspect(&ep, dir.path(), T).await;
    assert_eq!(r.verdict, Verdict::Valid, "{r:?}");
}
