//! End to end over real sockets: `serve` on a loopback TCP port and on a Unix socket, with a
//! hand-written HTTP/1.1 request, graceful shutdown and stale-socket handling.

mod support;

use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::time::Duration;

use support::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::oneshot;

const DEADLINE: Duration = Duration::from_secs(10);

/// Sends one request with `Connection: close` and reads the whole answer.
async fn http<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    method: &str,
    path: &str,
) -> String {
    let request =
        format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut out))
        .await
        .expect("answer within 10 s")
        .expect("read");
    String::from_utf8(out).expect("UTF-8")
}

fn body(response: &str) -> &str {
    response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or("")
}

async fn wait_for_socket(path: &std::path::Path) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !path.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn serves_over_loopback_tcp_and_shuts_down() {
    let h = Harness::new(go());
    let listener = gantry_api::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
        "{addr}"
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(gantry_api::serve_on(listener, h.router(), async move {
        let _ = stopped.await;
    }));

    let response = http(
        TcpStream::connect(&addr).await.expect("connect"),
        "GET",
        "/health/live",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert_eq!(body(&response), "ok");
    let response = http(
        TcpStream::connect(&addr).await.expect("connect"),
        "GET",
        "/health/ready?verbose",
    )
    .await;
    assert!(
        body(&response).ends_with("readyz check passed\n"),
        "{response}"
    );

    stop.send(()).unwrap();
    let result = tokio::time::timeout(DEADLINE, server)
        .await
        .expect("serve returned")
        .expect("join");
    assert!(result.is_ok(), "{result:?}");
    assert!(
        TcpStream::connect(&addr).await.is_err(),
        "the port is closed after shutdown"
    );
}

#[tokio::test]
async fn serve_takes_a_host_port_string() {
    // Pick a free port, then hand `serve` the plain string as the driver does.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let h = Harness::new(booting());
    let (stop, stopped) = oneshot::channel::<()>();
    let served = addr.clone();
    let router = h.router();
    let server = tokio::spawn(async move {
        gantry_api::serve(&served, router, async move {
            let _ = stopped.await;
        })
        .await
    });
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let stream = loop {
        match TcpStream::connect(&addr).await {
            Ok(s) => break s,
            Err(e) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "never listened: {e}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    let response = http(stream, "GET", "/health/startup").await;
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    stop.send(()).unwrap();
    assert!(
        tokio::time::timeout(DEADLINE, server)
            .await
            .expect("stopped")
            .expect("join")
            .is_ok()
    );
}

#[tokio::test]
async fn serves_on_a_private_unix_socket_and_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api.sock");
    // A stale socket file from a dead instance is replaced.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());

    let h = Harness::new(go());
    let (stop, stopped) = oneshot::channel::<()>();
    let addr = format!("unix:{}", path.display());
    let router = h.router();
    let server = tokio::spawn(async move {
        gantry_api::serve(&addr, router, async move {
            let _ = stopped.await;
        })
        .await
    });
    wait_for_socket(&path).await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let stream = loop {
        match UnixStream::connect(&path).await {
            Ok(s) => break s,
            Err(e) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "never listened: {e}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    let meta = std::fs::metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    let response = http(stream, "GET", "/health/live").await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert_eq!(body(&response), "ok");

    // A second instance on the same live socket is refused, not allowed to steal it.
    let err = gantry_api::bind(&format!("unix:{}", path.display()))
        .await
        .expect_err("in use");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");

    stop.send(()).unwrap();
    assert!(
        tokio::time::timeout(DEADLINE, server)
            .await
            .expect("stopped")
            .expect("join")
            .is_ok()
    );
    assert!(!path.exists(), "the socket file is removed on shutdown");
}

#[tokio::test]
async fn bad_addresses_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-socket");
    std::fs::write(&file, "keep me").unwrap();
    let err = gantry_api::bind(&format!("unix:{}", file.display()))
        .await
        .expect_err("not a socket");
    assert!(err.to_string().contains("is not a socket"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "keep me",
        "a regular file is never removed"
    );

    assert_eq!(
        gantry_api::bind("unix:").await.expect_err("empty").kind(),
        std::io::ErrorKind::InvalidInput
    );
    assert_eq!(
        gantry_api::bind("").await.expect_err("empty").kind(),
        std::io::ErrorKind::InvalidInput
    );
    let err = gantry_api::bind("not an address").await.expect_err("bad");
    assert!(
        err.to_string()
            .starts_with("cannot listen on not an address"),
        "{err}"
    );
    let missing = dir.path().join("no/such/dir/api.sock");
    assert!(
        gantry_api::bind(&format!("unix:{}", missing.display()))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn shutdown_ends_open_event_streams_cleanly() {
    let h = Harness::new(go());
    let listener = gantry_api::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(gantry_api::serve_on(listener, h.router(), async move {
        let _ = stopped.await;
    }));
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"GET /api/v1/events HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    // Wait for the response head, so the stream is subscribed before the event is sent.
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(DEADLINE, stream.read(&mut buf))
            .await
            .expect("head")
            .expect("read");
        assert!(n > 0, "closed early");
        head.extend_from_slice(&buf[..n]);
    }
    h.events
        .send(serde_json::json!({"event": "boot", "outcome": "go"}))
        .unwrap();
    while !String::from_utf8_lossy(&head).contains("event: boot") {
        let n = tokio::time::timeout(DEADLINE, stream.read(&mut buf))
            .await
            .expect("event")
            .expect("read");
        assert!(n > 0, "closed before the event");
        head.extend_from_slice(&buf[..n]);
    }
    stop.send(()).unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut rest))
        .await
        .expect("closed")
        .expect("read");
    let text = String::from_utf8_lossy(&head).into_owned() + &String::from_utf8_lossy(&rest);
    // The terminating chunk shows the stream ended at the signal rather than being cut off.
    assert!(text.ends_with("0\r\n\r\n"), "{text:?}");
    assert!(
        tokio::time::timeout(DEADLINE, server)
            .await
            .expect("stopped")
            .expect("join")
            .is_ok()
    );
}

/// Reads until EOF or `within`; true when the peer closed the connection in time.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(within, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// Serves `h` on a loopback port with `limits`; the address and a stop switch.
async fn serve_limited(
    h: &Harness,
    limits: gantry_api::Limits,
) -> (
    String,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = gantry_api::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(gantry_api::serve_with(
        listener,
        h.router(),
        async move {
            let _ = stopped.await;
        },
        limits,
    ));
    (addr, stop, server)
}

/// Opens an event stream and reads its response head.
async fn open_stream(addr: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /api/v1/events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let mut head = vec![0u8; 512];
    let n = tokio::time::timeout(DEADLINE, s.read(&mut head))
        .await
        .expect("answer")
        .expect("read");
    (s, String::from_utf8_lossy(&head[..n]).to_string())
}

#[tokio::test]
async fn silent_connections_give_their_slots_to_newcomers_so_health_stays_answered() {
    let h = Harness::new(go());
    // The header-read timeout is far away: what frees the slots here is eviction.
    let limits = gantry_api::Limits {
        max_connections: 4,
        header_read_timeout: Duration::from_secs(60),
    };
    let (addr, stop, server) = serve_limited(&h, limits).await;
    // Four clients connect and send nothing: they hold every slot...
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(TcpStream::connect(&addr).await.expect("connect"));
    }
    // ...yet a newcomer is answered: it takes the slot of the longest-silent one.
    let response = http(
        TcpStream::connect(&addr).await.expect("connect"),
        "GET",
        "/health/live",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(
        closed_within(&mut silent[0], DEADLINE).await,
        "the oldest silent connection kept its slot"
    );
    // Four newer silent connections push out the older ones, oldest first, and a request
    // still gets through after them.
    let mut newer = Vec::new();
    for _ in 0..4 {
        newer.push(TcpStream::connect(&addr).await.expect("connect"));
    }
    for conn in &mut silent[1..] {
        assert!(
            closed_within(conn, DEADLINE).await,
            "an older silent connection kept its slot"
        );
    }
    let response = http(
        TcpStream::connect(&addr).await.expect("connect"),
        "GET",
        "/health/live",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(
        closed_within(&mut newer[0], DEADLINE).await,
        "the oldest of the newer connections kept its slot"
    );
    for conn in &mut newer[1..] {
        assert!(
            !closed_within(conn, Duration::from_millis(100)).await,
            "a younger silent connection was closed before an older one"
        );
    }
    stop.send(()).unwrap();
    let _ = tokio::time::timeout(DEADLINE, server)
        .await
        .expect("serve returned");
}

#[tokio::test]
async fn event_streams_are_capped_and_never_evicted_by_newcomers() {
    let h = Harness::new(go());
    // Eight connections, so at most two event streams.
    let limits = gantry_api::Limits {
        max_connections: 8,
        header_read_timeout: Duration::from_secs(60),
    };
    let (addr, stop, server) = serve_limited(&h, limits).await;
    let (mut first, head) = open_stream(&addr).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let (mut second, head) = open_stream(&addr).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let (_third, head) = open_stream(&addr).await;
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(head.contains("too many event streams"), "{head}");
    // Silent connections fill the rest, then newcomers keep coming: they evict the silent
    // ones, never a stream in progress.
    let mut silent = Vec::new();
    for _ in 0..8 {
        silent.push(TcpStream::connect(&addr).await.expect("connect"));
    }
    for _ in 0..10 {
        let response = http(
            TcpStream::connect(&addr).await.expect("connect"),
            "GET",
            "/health/live",
        )
        .await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    }
    for stream in [&mut first, &mut second] {
        assert!(
            !closed_within(stream, Duration::from_millis(200)).await,
            "an event stream was evicted"
        );
    }
    drop((first, second));
    stop.send(()).unwrap();
    let _ = tokio::time::timeout(DEADLINE, server)
        .await
        .expect("serve returned");
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_header_read_timeout() {
    let h = Harness::new(go());
    let limits = gantry_api::Limits {
        max_connections: 4,
        header_read_timeout: Duration::from_millis(400),
    };
    let (addr, stop, server) = serve_limited(&h, limits).await;
    let mut silent = TcpStream::connect(&addr).await.expect("connect");
    assert!(
        closed_within(&mut silent, DEADLINE).await,
        "a silent connection was kept open"
    );
    let response = http(
        TcpStream::connect(&addr).await.expect("connect"),
        "GET",
        "/health/live",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    stop.send(()).unwrap();
    let _ = tokio::time::timeout(DEADLINE, server)
        .await
        .expect("serve returned");
}

#[tokio::test]
async fn a_host_header_naming_a_dns_name_is_refused_against_dns_rebinding() {
    let h = Harness::new(go());
    let listener = gantry_api::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(gantry_api::serve_on(listener, h.router(), async move {
        let _ = stopped.await;
    }));
    let get = |host: String| {
        let addr = addr.clone();
        async move {
            let mut s = TcpStream::connect(&addr).await.expect("connect");
            let request =
                format!("GET /api/v1/events HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            s.write_all(request.as_bytes()).await.expect("write");
            let mut head = vec![0u8; 64];
            let n = tokio::time::timeout(DEADLINE, s.read(&mut head))
                .await
                .expect("answer")
                .expect("read");
            String::from_utf8_lossy(&head[..n]).to_string()
        }
    };
    let refused = get("attacker.example:7070".to_string()).await;
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    for ok in [
        addr.clone(),
        "localhost".to_string(),
        "[::1]:7070".to_string(),
    ] {
        let answer = get(ok.clone()).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{ok}: {answer}");
    }
    stop.send(()).unwrap();
    let _ = tokio::time::timeout(DEADLINE, server)
        .await
        .expect("serve returned");
}

#[test]
fn host_allowed_takes_ip_literals_and_localhost_only() {
    use gantry_api::host_allowed;
    for ok in [
        None,
        Some("127.0.0.1:7070"),
        Some("10.0.0.5"),
        Some("[::1]:80"),
        Some("[fe80::1]"),
        Some("LOCALHOST:1"),
        Some("localhost"),
    ] {
        assert!(host_allowed(ok), "{ok:?}");
    }
    for bad in [
        Some("evil.example"),
        Some("localhost.evil.example:7070"),
        Some("[::1"),
        Some("[::1]x"),
        Some("127.0.0.1.nip.io"),
        Some(""),
    ] {
        assert!(!host_allowed(bad), "{bad:?}");
    }
}
