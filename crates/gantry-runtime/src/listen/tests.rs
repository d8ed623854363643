//! Tests of the LISTEN scanner against real sockets, and of its parsing and matching on crafted messages.

use super::*;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

fn scan() -> Vec<SocketAddr> {
    let mut out = Vec::new();
    ListenScanner::new()
        .expect("open sock_diag socket")
        .scan(&mut out)
        .expect("scan");
    out
}

#[test]
fn of_port_in_answers_as_of_port_does() {
    let mut list: Vec<SocketAddr> = (0..300u32)
        .map(|i| {
            let port = ((i * 7919) % 97) as u16 * 3 + 1;
            let ip = if i % 3 == 0 { "0.0.0.0" } else { "127.0.0.1" };
            format!("{ip}:{port}").parse().unwrap()
        })
        .collect();
    list.sort_unstable_by_key(SocketAddr::port);
    let ports: Vec<u16> = list.iter().map(SocketAddr::port).collect();
    for port in 0..=400u16 {
        assert_eq!(
            of_port_in(&ports, &list, port),
            of_port(&list, port),
            "{port}"
        );
    }
    assert!(of_port_in(&[], &[], 80).is_empty());
}

#[test]
fn of_port_finds_every_listener_of_a_port_in_a_sorted_list() {
    let a = |s: &str| s.parse::<SocketAddr>().unwrap();
    let mut list = vec![
        a("127.0.0.1:9000"),
        a("0.0.0.0:80"),
        a("[::]:9000"),
        a("127.0.0.2:443"),
        a("10.0.0.1:9000"),
    ];
    list.sort_unstable_by_key(SocketAddr::port);
    let mut got = of_port(&list, 9000).to_vec();
    got.sort();
    let mut want = vec![a("127.0.0.1:9000"), a("[::]:9000"), a("10.0.0.1:9000")];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(of_port(&list, 80), [a("0.0.0.0:80")]);
    assert!(of_port(&list, 81).is_empty());
    assert!(of_port(&list, 1).is_empty());
    assert!(of_port(&list, 65535).is_empty());
    assert!(of_port(&[], 80).is_empty());
}

fn count(listeners: &[SocketAddr], addr: SocketAddr) -> usize {
    listeners.iter().filter(|&&a| a == addr).count()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// An IPv6 listener, or `None` (with a message) if IPv6 is unavailable here.
fn bind_v6(at: &str) -> Option<TcpListener> {
    match TcpListener::bind(at) {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("skipping {at}: IPv6 unavailable ({e})");
            None
        }
    }
}

#[test]
fn reports_listeners_with_their_exact_address() {
    let v4: Vec<TcpListener> = ["127.0.0.1:0", "0.0.0.0:0", "127.0.0.2:0"]
        .iter()
        .map(|a| TcpListener::bind(a).unwrap())
        .collect();
    let v6: Vec<TcpListener> = ["[::1]:0", "[::]:0", "[::ffff:127.0.0.1]:0"]
        .iter()
        .filter_map(|a| bind_v6(a))
        .collect();

    let mut scanner = ListenScanner::new().unwrap();
    let mut found = Vec::new();
    // Twice: the second scan reuses the scanner and replaces, not appends.
    for _ in 0..2 {
        scanner.scan(&mut found).unwrap();
        for l in v4.iter().chain(&v6) {
            let local = l.local_addr().unwrap();
            assert_eq!(count(&found, local), 1, "{local} in {found:?}");
        }
    }

    let port = |l: &TcpListener| l.local_addr().unwrap().port();
    let loopback = |p: u16| SocketAddr::from((Ipv4Addr::LOCALHOST, p));
    // 127.0.0.1 and 0.0.0.0 take 127.0.0.1; 127.0.0.2 does not.
    assert!(accepts(&found, loopback(port(&v4[0]))));
    assert!(accepts(&found, loopback(port(&v4[1]))));
    assert!(!accepts(
        &[v4[2].local_addr().unwrap()],
        loopback(port(&v4[2]))
    ));
    // [::1] takes [::1] only, [::] takes IPv4 too, [::ffff:127.0.0.1] takes 127.0.0.1.
    for l in &v6 {
        let local = l.local_addr().unwrap();
        assert!(accepts(&found, local), "{local}");
        let v4_ok = local.ip() != Ipv6Addr::LOCALHOST;
        assert_eq!(accepts(&[local], loopback(local.port())), v4_ok, "{local}");
    }
}

#[test]
fn dropped_listener_disappears() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let local = listener.local_addr().unwrap();
    let mut scanner = ListenScanner::new().unwrap();
    let mut found = Vec::new();
    scanner.scan(&mut found).unwrap();
    assert!(found.contains(&local));

    drop(listener);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        scanner.scan(&mut found).unwrap();
        if !found.contains(&local) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{local} still listed after close"
        );
        std::thread::yield_now();
    }
}

#[test]
fn connected_and_bound_sockets_are_not_reported() {
    use nix::sys::socket::{SockaddrIn, bind, getsockname};

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let local = listener.local_addr().unwrap();
    let client = TcpStream::connect(local).unwrap();
    let (server, _) = listener.accept().unwrap();
    // Bound without SO_REUSEADDR and never listening: nobody else in this namespace can
    // listen on this port while we hold it.
    let bound = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    bind(bound.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0)).unwrap();
    let bound_addr: SockaddrIn = getsockname(bound.as_raw_fd()).unwrap();
    let bound_addr = SocketAddr::V4(bound_addr.into());

    let found = scan();
    assert!(found.contains(&local));
    assert!(!found.contains(&client.local_addr().unwrap()));
    assert!(!accepts(&found, bound_addr), "{bound_addr} in {found:?}");

    // The accepted socket has the listener's local address but is not listening.
    drop(listener);
    assert_eq!(server.local_addr().unwrap(), local);
    assert!(!scan().contains(&local));
    drop((client, server, bound));
}

#[test]
fn finds_two_thousand_listeners() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};

    const N: usize = 2_000;
    // Room for the rest of the test binary's sockets and files too.
    let want = (N + 512) as u64;
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < want {
        if hard < want {
            eprintln!("skipping: RLIMIT_NOFILE hard limit {hard} < {want}");
            return;
        }
        if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, want, hard) {
            eprintln!("skipping: cannot raise RLIMIT_NOFILE to {want}: {e}");
            return;
        }
    }

    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    // About 150 KB of replies: several dump parts, several recvs.
    let found = scan();
    assert!(found.len() >= N);
    for l in &listeners {
        let local = l.local_addr().unwrap();
        assert_eq!(count(&found, local), 1, "{local}");
    }
}

#[test]
fn a_listener_with_a_full_accept_queue_is_not_accepting() {
    use nix::sys::socket::{
        AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, bind, getsockname, listen, socket,
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("socket");
    bind(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0)).expect("bind");
    // Backlog 0: the first connection the service does not accept fills the queue.
    listen(&fd, Backlog::new(0).expect("backlog")).expect("listen");
    let local: SockaddrIn = getsockname(fd.as_raw_fd()).expect("getsockname");
    let addr = SocketAddr::from(([127, 0, 0, 1], local.port()));
    let mut scanner = ListenScanner::new().expect("scanner");
    let mut out = Vec::new();
    scanner.scan_accepting(&mut out).expect("scan");
    assert_eq!(certainly_accepts(&out, addr), Some(addr));
    let _client = TcpStream::connect(addr).expect("first connect is queued");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        scanner.scan_accepting(&mut out).expect("scan");
        if certainly_accepts(&out, addr).is_none() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a full queue still looked accepting"
        );
        std::thread::yield_now();
    }
    scanner.scan(&mut out).expect("scan");
    assert!(
        out.contains(&addr),
        "scan() lists every listener, full or not"
    );
}

#[test]
fn certainly_accepts_only_matches_that_do_not_depend_on_v6only() {
    let v4 = |s: &str| s.parse::<SocketAddr>().unwrap();
    let target = v4("127.0.0.1:80");
    for (listener, want) in [
        ("127.0.0.1:80", true),
        ("0.0.0.0:80", true),
        ("[::]:80", false),
        ("[::ffff:127.0.0.1]:80", false),
        ("127.0.0.2:80", false),
        ("127.0.0.1:81", false),
    ] {
        let l = v4(listener);
        assert_eq!(
            certainly_accepts(&[l], target),
            want.then_some(l),
            "{listener}"
        );
    }
    let t6 = v4("[::1]:80");
    assert!(certainly_accepts(&[v4("[::]:80")], t6).is_some());
    assert!(certainly_accepts(&[v4("0.0.0.0:80")], t6).is_none());
}

#[test]
fn accepts_follows_the_kernel_wildcard_rules() {
    let cases = [
        // (listener, target, accepted)
        ("127.0.0.1:80", "127.0.0.1:80", true),
        ("127.0.0.1:80", "127.0.0.1:81", false),
        ("127.0.0.2:80", "127.0.0.1:80", false),
        ("0.0.0.0:80", "127.0.0.1:80", true),
        ("0.0.0.0:80", "10.1.2.3:80", true),
        ("0.0.0.0:80", "[::1]:80", false),
        ("127.0.0.1:80", "[::1]:80", false),
        ("[::1]:80", "[::1]:80", true),
        ("[::1]:80", "127.0.0.1:80", false),
        ("[::]:80", "[::1]:80", true),
        ("[::]:80", "127.0.0.1:80", true),
        ("[::]:80", "127.0.0.1:81", false),
        ("[::2]:80", "[::1]:80", false),
        // v4-mapped listener, and v4-mapped targets (an AF_INET6 socket connecting to IPv4).
        ("[::ffff:127.0.0.1]:80", "127.0.0.1:80", true),
        ("[::ffff:127.0.0.1]:80", "127.0.0.2:80", false),
        ("[::ffff:0.0.0.0]:80", "127.0.0.2:80", true),
        ("127.0.0.1:80", "[::ffff:127.0.0.1]:80", true),
        ("0.0.0.0:80", "[::ffff:127.0.0.1]:80", true),
        ("[::1]:80", "[::ffff:127.0.0.1]:80", false),
    ];
    for (listener, target, expected) in cases {
        assert_eq!(
            accepts(&[addr(listener)], addr(target)),
            expected,
            "{listener} accepts {target}"
        );
    }
    assert!(!accepts(&[], addr("127.0.0.1:80")));
    let several = [addr("127.0.0.2:80"), addr("[::1]:81"), addr("0.0.0.0:80")];
    assert!(accepts(&several, addr("127.0.0.1:80")));
    assert!(!accepts(&several, addr("127.0.0.1:81")));
}

/// A netlink message of `ty` with `payload`, padded to the netlink alignment.
fn message(ty: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDRLEN + payload.len();
    let mut b = vec![0; len.next_multiple_of(NLMSG_ALIGNTO)];
    NlMsgHdr {
        nlmsg_len: len as u32,
        nlmsg_type: ty,
        nlmsg_flags: 0,
        nlmsg_seq: seq,
        nlmsg_pid: 0,
    }
    .encode(&mut b);
    b[NLMSG_HDRLEN..len].copy_from_slice(payload);
    b
}

fn diag_msg(family: i32, state: u8, ip: &[u8], port: u16) -> Vec<u8> {
    let mut b = vec![0; size_of::<InetDiagMsg>() + 8]; // plus an attribute
    b[0] = family as u8;
    b[1] = state;
    let mut id = InetDiagSockId {
        idiag_sport: port.to_be_bytes(),
        ..InetDiagSockId::default()
    };
    id.idiag_src[..ip.len()].copy_from_slice(ip);
    id.encode(&mut b[offset_of!(InetDiagMsg, id)..]);
    b
}

#[test]
fn parses_batches_of_messages() {
    let seq = 7;
    let v4 = diag_msg(libc::AF_INET, TCP_LISTEN, &[10, 0, 0, 1], 8080);
    let v6 = diag_msg(
        libc::AF_INET6,
        TCP_LISTEN,
        &Ipv6Addr::LOCALHOST.octets(),
        443,
    );
    let established = diag_msg(libc::AF_INET, 1, &[10, 0, 0, 2], 22);
    let stale = diag_msg(libc::AF_INET, TCP_LISTEN, &[10, 0, 0, 3], 9);

    let mut out = Vec::new();
    let batch = [
        message(SOCK_DIAG_BY_FAMILY, seq - 1, &stale),
        message(SOCK_DIAG_BY_FAMILY, seq, &v4),
        message(NLMSG_NOOP, seq, &[]),
        message(SOCK_DIAG_BY_FAMILY, seq, &established),
    ]
    .concat();
    assert_eq!(
        parse_batch(&batch, seq, &mut out, false).unwrap(),
        Progress::More
    );
    let batch = [
        message(SOCK_DIAG_BY_FAMILY, seq, &v6),
        message(NLMSG_DONE, seq, &0i32.to_ne_bytes()),
        message(SOCK_DIAG_BY_FAMILY, seq, &stale),
    ]
    .concat();
    assert_eq!(
        parse_batch(&batch, seq, &mut out, false).unwrap(),
        Progress::Done
    );
    assert_eq!(out, [addr("10.0.0.1:8080"), addr("[::1]:443")]);

    // A stale NLMSG_DONE does not end the dump.
    let batch = message(NLMSG_DONE, seq - 1, &0i32.to_ne_bytes());
    assert_eq!(
        parse_batch(&batch, seq, &mut out, false).unwrap(),
        Progress::More
    );
}

#[test]
fn reports_kernel_errors_and_malformed_messages() {
    let seq = 3;
    let mut out = Vec::new();
    let mut err = (-libc::EBUSY).to_ne_bytes().to_vec();
    err.extend([0; NLMSG_HDRLEN]); // nlmsgerr quotes the request's header
    let e = parse_batch(&message(NLMSG_ERROR, seq, &err), seq, &mut out, false).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EBUSY));

    let done = message(NLMSG_DONE, seq, &(-libc::EINTR).to_ne_bytes());
    let e = parse_batch(&done, seq, &mut out, false).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINTR));

    let ack = message(NLMSG_ERROR, seq, &[0; 4 + NLMSG_HDRLEN]);
    assert_eq!(
        parse_batch(&ack, seq, &mut out, false).unwrap(),
        Progress::More
    );

    let mut truncated = message(SOCK_DIAG_BY_FAMILY, seq, &[0; 72]);
    truncated.truncate(40);
    let e = parse_batch(&truncated, seq, &mut out, false).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);

    let short = message(SOCK_DIAG_BY_FAMILY, seq, &[0; 20]);
    let e = parse_batch(&short, seq, &mut out, false).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert!(out.is_empty());
}

#[test]
fn a_port_filtered_scan_reports_the_ports_asked_for_and_leaves_far_ones_out() {
    // 60 listeners on ephemeral ports (v4 and, where the machine has it, v6).
    let mut v4: Vec<TcpListener> = (0..60)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    v4.sort_by_key(|l| l.local_addr().unwrap().port());
    let v6 = bind_v6("[::1]:0");
    let port = |l: &TcpListener| l.local_addr().unwrap().port();
    // Ask for every third one (more ranges than the filter holds: some get merged).
    let mut asked: Vec<u16> = v4.iter().step_by(3).map(port).collect();
    asked.extend(v6.iter().map(port));
    let mut scanner = ListenScanner::new().expect("sock_diag");
    let mut out = Vec::new();
    scanner.scan_ports(&asked, &mut out).expect("filtered scan");
    for p in &asked {
        assert!(
            !of_port(&out, *p).is_empty(),
            "port {p} asked for and missing: {out:?}"
        );
    }
    if let Some(l) = &v6 {
        assert_eq!(count(&out, l.local_addr().unwrap()), 1, "the v6 listener");
    }
    // Whatever else came back lies within the asked ports' span (merged gaps only).
    let (lo, hi) = (*asked.iter().min().unwrap(), *asked.iter().max().unwrap());
    assert!(
        out.iter().all(|a| (lo..=hi).contains(&a.port())),
        "{out:?} outside {lo}..={hi}"
    );
    // A port nobody listens on far from the rest: nothing at all comes back for it.
    scanner.scan_ports(&[1], &mut out).expect("filtered scan");
    assert!(out.iter().all(|a| a.port() == 1), "{out:?}");
    // The unfiltered scan afterwards still sees everything.
    scanner.scan_accepting(&mut out).expect("full scan");
    for l in &v4 {
        assert_eq!(count(&out, l.local_addr().unwrap()), 1);
    }
}
