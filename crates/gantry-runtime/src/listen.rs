//! Lists the listening TCP sockets of our network namespace with one sock_diag dump, for TCP readiness polling.
//!
//! While services are starting, the supervisor polls every millisecond for the ports they
//! should open (LINUX-SUPERVISION.md, C). A `NETLINK_SOCK_DIAG` dump restricted to the
//! `LISTEN` state walks only the kernel's listening hash, so one dump answers for every
//! pending port at once: about 18 µs per pass for IPv4 + IPv6, 23 µs with 10k sockets in
//! the namespace. The alternatives are worse:
//!
//! - a nonblocking `connect()` per pending port per tick costs more (43 µs for ten ports),
//!   grows with the number of services, and disturbs the service: every probe is accepted
//!   and keeps an accept-queue slot until the service calls `accept()`, so a small backlog
//!   fills up and real clients wait for a SYN retransmit (a second);
//! - `/proc/net/tcp{,6}` walks the whole established hash on every read (about 2 ms).
//!
//! [`ListenScanner::scan`] dumps both families: a `[::]` listener accepts IPv4 too but is
//! reported only under `AF_INET6`. [`accepts`] then matches a target address against the
//! result, with the kernel's wildcard rules.
//!
//! Caveats:
//! - The dump sees the caller's network namespace only. A service in another namespace is
//!   invisible, however it listens.
//! - "Something listens" is not "it accepts": the listener may belong to another process,
//!   a `[::]` listener may be `IPV6_V6ONLY`, and the service may not have started calling
//!   `accept()`. Callers should confirm a hit with one real connect before declaring the
//!   service ready; the scan only tells them when that one connect is worth making.
//! - Each scan makes blocking `send`/`recv` calls on the netlink socket. The kernel answers
//!   them synchronously (tens of µs), so calling [`ListenScanner::scan`] from an async task
//!   is fine; it must not be shared between threads without a lock (it needs `&mut self`).

use std::io;
use std::mem::{offset_of, size_of};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::libc;
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, recv, send, socket,
};

/// Size of the receive buffer. The kernel sizes each dump part after the largest `recv`
/// buffer it has seen on the socket, capped at 32 KiB, so a part always fits in this.
const RECV_BUF_LEN: usize = 32 * 1024;

// Netlink message types and flags (linux/netlink.h).
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;
const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_ROOT | NLM_F_MATCH`.
const NLM_F_DUMP: u16 = 0x300;
/// Netlink messages start on 4-byte boundaries (`NLMSG_ALIGNTO`).
const NLMSG_ALIGNTO: usize = 4;

/// Request and reply type of sock_diag (linux/sock_diag.h).
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `TCP_LISTEN` from the kernel's TCP state enum (net/tcp_states.h); `idiag_states` is a
/// bit mask of these.
const TCP_LISTEN: u8 = 10;

/// `struct nlmsghdr` (linux/netlink.h), in host byte order.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct NlMsgHdr {
    nlmsg_len: u32,
    nlmsg_type: u16,
    nlmsg_flags: u16,
    nlmsg_seq: u32,
    nlmsg_pid: u32,
}

/// `struct inet_diag_sockid` (linux/inet_diag.h). The `__be16` ports and `__be32[4]`
/// addresses are kept as their network-order bytes; an IPv4 address is the first 4 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct InetDiagSockId {
    idiag_sport: [u8; 2],
    idiag_dport: [u8; 2],
    idiag_src: [u8; 16],
    idiag_dst: [u8; 16],
    idiag_if: u32,
    idiag_cookie: [u32; 2],
}

/// `struct inet_diag_req_v2` (linux/inet_diag.h): the body of a `SOCK_DIAG_BY_FAMILY`
/// request for `AF_INET` / `AF_INET6`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct InetDiagReqV2 {
    sdiag_family: u8,
    sdiag_protocol: u8,
    idiag_ext: u8,
    pad: u8,
    idiag_states: u32,
    id: InetDiagSockId,
}

/// `struct inet_diag_msg` (linux/inet_diag.h): the start of each reply message, followed
/// by attributes we do not request. Only its layout is used, through `offset_of!`.
#[repr(C)]
#[allow(
    dead_code,
    reason = "mirrors the kernel layout; read field by field from bytes"
)]
struct InetDiagMsg {
    idiag_family: u8,
    idiag_state: u8,
    idiag_timer: u8,
    idiag_retrans: u8,
    id: InetDiagSockId,
    idiag_expires: u32,
    idiag_rqueue: u32,
    idiag_wqueue: u32,
    idiag_uid: u32,
    idiag_inode: u32,
}

// The kernel's sizes; the encoders and decoders below rely on them.
const _: () = assert!(size_of::<NlMsgHdr>() == 16);
const _: () = assert!(size_of::<InetDiagSockId>() == 48);
const _: () = assert!(size_of::<InetDiagReqV2>() == 56);
const _: () = assert!(size_of::<InetDiagMsg>() == 72);

const NLMSG_HDRLEN: usize = size_of::<NlMsgHdr>();
const REQUEST_LEN: usize = NLMSG_HDRLEN + size_of::<InetDiagReqV2>();

/// `N` bytes of `b` from `at`; the caller has checked the length.
fn array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut a = [0; N];
    a.copy_from_slice(&b[at..at + N]);
    a
}

impl NlMsgHdr {
    fn encode(&self, b: &mut [u8]) {
        b[0..4].copy_from_slice(&self.nlmsg_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.nlmsg_type.to_ne_bytes());
        b[6..8].copy_from_slice(&self.nlmsg_flags.to_ne_bytes());
        b[8..12].copy_from_slice(&self.nlmsg_seq.to_ne_bytes());
        b[12..16].copy_from_slice(&self.nlmsg_pid.to_ne_bytes());
    }

    fn decode(b: &[u8]) -> Option<NlMsgHdr> {
        (b.len() >= NLMSG_HDRLEN).then(|| NlMsgHdr {
            nlmsg_len: u32::from_ne_bytes(array(b, 0)),
            nlmsg_type: u16::from_ne_bytes(array(b, 4)),
            nlmsg_flags: u16::from_ne_bytes(array(b, 6)),
            nlmsg_seq: u32::from_ne_bytes(array(b, 8)),
            nlmsg_pid: u32::from_ne_bytes(array(b, 12)),
        })
    }
}

impl InetDiagSockId {
    fn encode(&self, b: &mut [u8]) {
        b[0..2].copy_from_slice(&self.idiag_sport);
        b[2..4].copy_from_slice(&self.idiag_dport);
        b[4..20].copy_from_slice(&self.idiag_src);
        b[20..36].copy_from_slice(&self.idiag_dst);
        b[36..40].copy_from_slice(&self.idiag_if.to_ne_bytes());
        b[40..44].copy_from_slice(&self.idiag_cookie[0].to_ne_bytes());
        b[44..48].copy_from_slice(&self.idiag_cookie[1].to_ne_bytes());
    }

    /// Needs 48 bytes.
    fn decode(b: &[u8]) -> InetDiagSockId {
        InetDiagSockId {
            idiag_sport: array(b, 0),
            idiag_dport: array(b, 2),
            idiag_src: array(b, 4),
            idiag_dst: array(b, 20),
            idiag_if: u32::from_ne_bytes(array(b, 36)),
            idiag_cookie: [
                u32::from_ne_bytes(array(b, 40)),
                u32::from_ne_bytes(array(b, 44)),
            ],
        }
    }
}

impl InetDiagReqV2 {
    fn encode(&self, b: &mut [u8]) {
        b[0] = self.sdiag_family;
        b[1] = self.sdiag_protocol;
        b[2] = self.idiag_ext;
        b[3] = self.pad;
        b[4..8].copy_from_slice(&self.idiag_states.to_ne_bytes());
        self.id.encode(&mut b[8..56]);
    }
}

/// A LISTEN-only TCP dump request for `family` (`AF_INET` or `AF_INET6`).
fn request(family: u8, seq: u32) -> [u8; REQUEST_LEN] {
    let mut b = [0; REQUEST_LEN];
    NlMsgHdr {
        nlmsg_len: REQUEST_LEN as u32,
        nlmsg_type: SOCK_DIAG_BY_FAMILY,
        nlmsg_flags: NLM_F_REQUEST | NLM_F_DUMP,
        nlmsg_seq: seq,
        nlmsg_pid: 0,
    }
    .encode(&mut b[..NLMSG_HDRLEN]);
    InetDiagReqV2 {
        sdiag_family: family,
        sdiag_protocol: libc::IPPROTO_TCP as u8,
        idiag_ext: 0,
        pad: 0,
        idiag_states: 1 << TCP_LISTEN,
        id: InetDiagSockId::default(),
    }
    .encode(&mut b[NLMSG_HDRLEN..]);
    b
}

/// The local address of the listening socket an `inet_diag_msg` describes; `None` for
/// another family or state (the kernel filters those out already).
fn listener_addr(msg: &[u8], only_accepting: bool) -> io::Result<Option<SocketAddr>> {
    if msg.len() < size_of::<InetDiagMsg>() {
        return Err(malformed("inet_diag_msg shorter than its header"));
    }
    if msg[offset_of!(InetDiagMsg, idiag_state)] != TCP_LISTEN {
        return Ok(None);
    }
    if only_accepting {
        // For a listener, rqueue is the accept queue's length and wqueue its limit (the
        // listen backlog); the kernel drops new SYNs while length > limit
        // (sk_acceptq_is_full).
        let queued = u32::from_ne_bytes(array(msg, offset_of!(InetDiagMsg, idiag_rqueue)));
        let limit = u32::from_ne_bytes(array(msg, offset_of!(InetDiagMsg, idiag_wqueue)));
        if queued > limit {
            return Ok(None);
        }
    }
    let id = InetDiagSockId::decode(&msg[offset_of!(InetDiagMsg, id)..]);
    let port = u16::from_be_bytes(id.idiag_sport);
    let family = i32::from(msg[offset_of!(InetDiagMsg, idiag_family)]);
    Ok(match family {
        libc::AF_INET => {
            let ip = Ipv4Addr::from(array::<4>(&id.idiag_src, 0));
            Some(SocketAddrV4::new(ip, port).into())
        }
        libc::AF_INET6 => {
            let ip = Ipv6Addr::from(id.idiag_src);
            // As getsockname() reports it: the bound interface is the scope of a link-local
            // address only.
            let scope = if ip.is_unicast_link_local() {
                id.idiag_if
            } else {
                0
            };
            Some(SocketAddrV6::new(ip, port, 0, scope).into())
        }
        _ => None,
    })
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("sock_diag: {what}"))
}

/// A negative errno from the kernel as an `io::Error`.
fn kernel_error(negative_errno: i32) -> io::Error {
    io::Error::from_raw_os_error(negative_errno.wrapping_neg())
}

/// Whether a dump has more to come after the messages of one `recv`.
#[derive(Debug, PartialEq)]
enum Progress {
    More,
    Done,
}

/// Appends the listeners in one `recv`'s worth of netlink messages to `out`, skipping
/// messages of other requests (`seq`), and tells whether the dump ended (`NLMSG_DONE`).
fn parse_batch(
    mut bytes: &[u8],
    seq: u32,
    out: &mut Vec<SocketAddr>,
    only_accepting: bool,
) -> io::Result<Progress> {
    while !bytes.is_empty() {
        let hdr = NlMsgHdr::decode(bytes).ok_or_else(|| malformed("truncated nlmsghdr"))?;
        let len = hdr.nlmsg_len as usize;
        if len < NLMSG_HDRLEN || len > bytes.len() {
            return Err(malformed("nlmsg_len out of bounds"));
        }
        let payload = &bytes[NLMSG_HDRLEN..len];
        let aligned = len.next_multiple_of(NLMSG_ALIGNTO).min(bytes.len());
        bytes = &bytes[aligned..];
        if hdr.nlmsg_seq != seq {
            // Left over from an earlier request that ended in an error.
            continue;
        }
        match hdr.nlmsg_type {
            SOCK_DIAG_BY_FAMILY => out.extend(listener_addr(payload, only_accepting)?),
            NLMSG_DONE => {
                // The payload is an int: 0, or a negative errno if the dump failed midway.
                if payload.len() >= 4 {
                    let status = i32::from_ne_bytes(array(payload, 0));
                    if status < 0 {
                        return Err(kernel_error(status));
                    }
                }
                return Ok(Progress::Done);
            }
            NLMSG_ERROR => {
                // `struct nlmsgerr`: a negative errno, or 0 for an acknowledgement.
                if payload.len() < 4 {
                    return Err(malformed("truncated nlmsgerr"));
                }
                let errno = i32::from_ne_bytes(array(payload, 0));
                if errno != 0 {
                    return Err(kernel_error(errno));
                }
            }
            NLMSG_OVERRUN => return Err(malformed("netlink overrun")),
            NLMSG_NOOP => {}
            // Nothing else is expected in a sock_diag dump; skip what a newer kernel may add.
            _ => {}
        }
    }
    Ok(Progress::More)
}

/// Retries a syscall interrupted by a signal.
fn retry_eintr<T>(mut call: impl FnMut() -> nix::Result<T>) -> io::Result<T> {
    loop {
        match call() {
            Err(Errno::EINTR) => continue,
            result => return result.map_err(io::Error::from),
        }
    }
}

/// A reusable NETLINK_SOCK_DIAG socket that lists listening TCP sockets.
pub struct ListenScanner {
    fd: OwnedFd,
    /// Receive buffer, reused by every scan.
    buf: Box<[u8]>,
    /// Sequence number of the last request; replies to older requests are skipped.
    seq: u32,
}

impl ListenScanner {
    /// Opens the netlink socket (SOCK_CLOEXEC). Errors (e.g. EPERM/EPROTONOSUPPORT under seccomp) are returned, never panics.
    pub fn new() -> io::Result<ListenScanner> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkSockDiag,
        )?;
        Ok(ListenScanner {
            fd,
            buf: vec![0; RECV_BUF_LEN].into_boxed_slice(),
            seq: 0,
        })
    }

    /// One LISTEN-only dump (IPv4 then IPv6), replacing the contents of `out` with the local
    /// addresses (ip + port) of every listening TCP socket. Allocation-free after warm-up
    /// (reuses its buffer; `out` is cleared, not reallocated).
    ///
    /// A `[::]` listener appears once, as an IPv6 address; use [`accepts`] to match targets.
    /// `out` is sorted by port, so [`of_port`] finds a port's listeners in O(log n). On
    /// error `out` holds a partial list.
    pub fn scan(&mut self, out: &mut Vec<SocketAddr>) -> io::Result<()> {
        out.clear();
        self.dump(libc::AF_INET as u8, out, false)?;
        self.dump(libc::AF_INET6 as u8, out, false)?;
        out.sort_unstable_by_key(SocketAddr::port);
        Ok(())
    }

    /// Like [`ListenScanner::scan`], but leaves out listeners whose accept queue is full
    /// (the kernel would drop a new connection's SYN): what is left accepts connections
    /// right now.
    pub fn scan_accepting(&mut self, out: &mut Vec<SocketAddr>) -> io::Result<()> {
        out.clear();
        self.dump(libc::AF_INET as u8, out, true)?;
        self.dump(libc::AF_INET6 as u8, out, true)?;
        out.sort_unstable_by_key(SocketAddr::port);
        Ok(())
    }

    /// Sends one dump request and appends its replies to `out` until `NLMSG_DONE`.
    fn dump(&mut self, family: u8, out: &mut Vec<SocketAddr>, accepting: bool) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let req = request(family, self.seq);
        let fd = self.fd.as_raw_fd();
        // No destination address: an unconnected netlink socket sends to the kernel.
        let sent = retry_eintr(|| send(fd, &req, MsgFlags::empty()))?;
        if sent != req.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "sock_diag: short send",
            ));
        }
        loop {
            // One datagram per recv, holding one or more messages. MSG_TRUNC makes the
            // kernel report the real length, so a datagram that did not fit is detected.
            let len = retry_eintr(|| recv(fd, &mut self.buf, MsgFlags::MSG_TRUNC))?;
            if len > self.buf.len() {
                return Err(malformed("dump part larger than the receive buffer"));
            }
            if parse_batch(&self.buf[..len], self.seq, out, accepting)? == Progress::Done {
                return Ok(());
            }
        }
    }
}

/// The listeners on `port`, from a list sorted by port (as [`ListenScanner::scan`] leaves
/// it): two binary searches instead of a scan per probe (1,000 held probes against 1,000
/// listeners were a million comparisons every 250 µs of a boot).
pub fn of_port(sorted: &[SocketAddr], port: u16) -> &[SocketAddr] {
    let start = sorted.partition_point(|l| l.port() < port);
    let len = sorted[start..].partition_point(|l| l.port() == port);
    &sorted[start..start + len]
}

/// Whether a connect to `target` could be accepted by one of `listeners`: same port and
/// (same ip, or the listener is bound to the unspecified address of the target's family, or
/// the listener is `[::]` and the target is IPv4 (dual-stack), or the listener is the
/// v4-mapped form of the target ip).
///
/// V4-mapped addresses on either side are compared as the IPv4 address they map, as the
/// kernel does. A `[::]` listener is assumed dual-stack: the dump does not say whether it
/// is `IPV6_V6ONLY`, which the confirming connect will tell.
pub fn accepts(listeners: &[SocketAddr], target: SocketAddr) -> bool {
    let target_ip = target.ip().to_canonical();
    listeners.iter().any(|listener| {
        listener.port() == target.port()
            && match (listener.ip().to_canonical(), target_ip) {
                (l, t) if l == t => true,
                (IpAddr::V4(l), IpAddr::V4(_)) => l.is_unspecified(),
                // `[::]` takes IPv6 and, dual-stack, IPv4.
                (IpAddr::V6(l), _) => l.is_unspecified(),
                (IpAddr::V4(_), IpAddr::V6(_)) => false,
            }
    })
}

/// The listener that takes a connect to `target` for certain: bound to exactly that
/// address, or to the unspecified address of the target's own family. `None` also for
/// matches that depend on `IPV6_V6ONLY` (a `[::]` or v4-mapped listener for an IPv4
/// target), which the dump does not report: confirm those with a connect.
pub fn certainly_accepts(listeners: &[SocketAddr], target: SocketAddr) -> Option<SocketAddr> {
    listeners.iter().copied().find(|l| {
        l.port() == target.port()
            && match (l.ip(), target.ip()) {
                (a, b) if a == b => true,
                (IpAddr::V4(a), IpAddr::V4(_)) => a.is_unspecified(),
                (IpAddr::V6(a), IpAddr::V6(_)) => a.is_unspecified(),
                _ => false,
            }
    })
}

#[cfg(test)]
mod tests {
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
            AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, bind, getsockname, listen,
            socket,
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
}
