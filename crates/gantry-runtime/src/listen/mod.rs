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

/// `INET_DIAG_REQ_BYTECODE` (linux/inet_diag.h): the request attribute holding a filter.
const INET_DIAG_REQ_BYTECODE: u16 = 1;

/// A LISTEN-only TCP dump request for `family` (`AF_INET` or `AF_INET6`), with `filter`
/// (bytecode, see filter.rs) attached when it is not empty, written over `out`.
fn request(family: u8, seq: u32, filter: &[u8], out: &mut Vec<u8>) {
    let attr = if filter.is_empty() {
        0
    } else {
        4 + filter.len()
    };
    out.clear();
    out.resize(REQUEST_LEN, 0);
    NlMsgHdr {
        nlmsg_len: (REQUEST_LEN + attr) as u32,
        nlmsg_type: SOCK_DIAG_BY_FAMILY,
        nlmsg_flags: NLM_F_REQUEST | NLM_F_DUMP,
        nlmsg_seq: seq,
        nlmsg_pid: 0,
    }
    .encode(&mut out[..NLMSG_HDRLEN]);
    InetDiagReqV2 {
        sdiag_family: family,
        sdiag_protocol: libc::IPPROTO_TCP as u8,
        idiag_ext: 0,
        pad: 0,
        idiag_states: 1 << TCP_LISTEN,
        id: InetDiagSockId::default(),
    }
    .encode(&mut out[NLMSG_HDRLEN..]);
    if attr > 0 {
        // struct nlattr { nla_len, nla_type }, then the program (a multiple of 4 bytes).
        out.extend_from_slice(&(attr as u16).to_ne_bytes());
        out.extend_from_slice(&INET_DIAG_REQ_BYTECODE.to_ne_bytes());
        out.extend_from_slice(filter);
    }
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
    /// The request being sent, and the port filter of the last [`ListenScanner::scan_ports`].
    req: Vec<u8>,
    filter: Vec<u8>,
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
            req: Vec::new(),
            filter: Vec::new(),
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
        self.filter.clear();
        self.scan_filtered(out)
    }

    /// Like [`ListenScanner::scan_accepting`], for listeners on `ports` only: the kernel
    /// leaves the others out (a bytecode filter, see filter.rs), which is what makes a scan
    /// cheap while a thousand other services already listen. `out` may also hold
    /// listeners on ports near those asked for. An empty `ports` scans every port.
    pub fn scan_ports(&mut self, ports: &[u16], out: &mut Vec<SocketAddr>) -> io::Result<()> {
        self.filter.clear();
        if !ports.is_empty() {
            filter::encode(&filter::ranges(ports), &mut self.filter);
        }
        self.scan_filtered(out)
    }

    /// The accepting IPv4 listeners only: a running service's probe of an IPv4 target is
    /// answered by them, and the IPv6 dump (which walks the same listening table again) is
    /// needed only when one is not ([`ListenScanner::add_v6_accepting`]).
    pub fn scan_v4_accepting(&mut self, out: &mut Vec<SocketAddr>) -> io::Result<()> {
        self.filter.clear();
        out.clear();
        self.dump(libc::AF_INET as u8, out, true)?;
        out.sort_unstable_by_key(SocketAddr::port);
        Ok(())
    }

    /// Adds the accepting IPv6 listeners to a table from [`ListenScanner::scan_v4_accepting`].
    pub fn add_v6_accepting(&mut self, out: &mut Vec<SocketAddr>) -> io::Result<()> {
        self.filter.clear();
        self.dump(libc::AF_INET6 as u8, out, true)?;
        out.sort_unstable_by_key(SocketAddr::port);
        Ok(())
    }

    fn scan_filtered(&mut self, out: &mut Vec<SocketAddr>) -> io::Result<()> {
        out.clear();
        self.dump(libc::AF_INET as u8, out, true)?;
        self.dump(libc::AF_INET6 as u8, out, true)?;
        out.sort_unstable_by_key(SocketAddr::port);
        Ok(())
    }

    /// Sends one dump request and appends its replies to `out` until `NLMSG_DONE`.
    fn dump(&mut self, family: u8, out: &mut Vec<SocketAddr>, accepting: bool) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let filter = if accepting { &self.filter[..] } else { &[] };
        request(family, self.seq, filter, &mut self.req);
        let fd = self.fd.as_raw_fd();
        let req = &self.req;
        // No destination address: an unconnected netlink socket sends to the kernel.
        let sent = retry_eintr(|| send(fd, req, MsgFlags::empty()))?;
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

/// [`of_port`] searched in `ports`, the ports of `sorted` in the same order: a 2-byte array
/// stays in cache where the 32-byte addresses did not (a thousand running probes a second
/// each searched the whole table).
pub fn of_port_in<'a>(ports: &[u16], sorted: &'a [SocketAddr], port: u16) -> &'a [SocketAddr] {
    let start = ports.partition_point(|&p| p < port);
    let len = ports[start..].partition_point(|&p| p == port);
    sorted.get(start..start + len).unwrap_or_default()
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

mod filter;
#[cfg(test)]
mod tests;
