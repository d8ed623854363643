//! Ports for the pre-flight: which a service will take (its loopback probes, store URLs), whether they are free, and who holds them when not.

use gantry_spec::{Kind, ProbeKind, Service};

/// `host:port` of a store probe's URL (`postgres://u:p@127.0.0.1:5432/db` →
/// `127.0.0.1:5432`), with the scheme's default port when the URL has none; `None` for
/// SQLite and for a URL without a host.
pub(super) fn store_host_port(kind: &ProbeKind) -> Option<String> {
    let (url, default) = match kind {
        ProbeKind::Postgres(p) => (&p.url, 5432),
        ProbeKind::Mysql(p) => (&p.url, 3306),
        ProbeKind::Redis(p) => (&p.url, 6379),
        ProbeKind::Amqp(p)
            if p.url
                .get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("amqps://")) =>
        {
            (&p.url, 5671)
        }
        ProbeKind::Amqp(p) => (&p.url, 5672),
        ProbeKind::Nats(p) => (&p.url, 4222),
        _ => return None,
    };
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    // The first host of a multi-host URL is the one gantry's own probe connects to.
    let hostport = hostport.split(',').next()?;
    if hostport.is_empty() {
        return None;
    }
    let has_port = match hostport.rsplit_once(':') {
        Some((h, p)) => !(h.is_empty() || p.contains(']')),
        None => false,
    };
    Some(if has_port {
        hostport.to_string()
    } else {
        format!("{hostport}:{default}")
    })
}

/// Ports a service will listen on: declared ones, plus the port of a tcp/http/store
/// readiness or liveness probe on a loopback address (never for external services).
pub fn implied_ports(s: &Service) -> Vec<u16> {
    let mut ports = s.ports.clone();
    if s.kind == Kind::External {
        return ports;
    }
    for p in [&s.readiness, &s.liveness, &s.startup]
        .into_iter()
        .flatten()
    {
        let hostport = match &p.kind {
            ProbeKind::Tcp(a) => Some(a.clone()),
            ProbeKind::Http { url, .. } => url
                .split_once("://")
                .map(|(_, rest)| rest.split('/').next().unwrap_or("").to_string()),
            k => store_host_port(k),
        };
        if let Some(hp) = hostport
            && let Some((host, port)) = hp.rsplit_once(':')
            && matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "0.0.0.0")
            && let Ok(port) = port.parse::<u16>()
            && !ports.contains(&port)
        {
            ports.push(port);
        }
    }
    ports
}

/// Who listens on a TCP port: "pid 123 (postgres)" when /proc tells.
pub fn port_holder(port: u16) -> Option<String> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9
                && f[3] == "0A"
                && let Some((_, p)) = f[1].rsplit_once(':')
                && u16::from_str_radix(p, 16) == Ok(port)
            {
                inodes.push(format!("socket:[{}]", f[9]));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path())
                && inodes.iter().any(|i| target.to_string_lossy() == *i)
            {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                return Some(format!("pid {pid} ({})", comm.trim()));
            }
        }
    }
    Some("another process (its pid is not visible)".into())
}

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Port checks for a whole stack: one sock_diag LISTEN dump (listen.rs) answers "nothing
/// listens there" for every port at once; only a port something listens on is confirmed
/// by binding it. (Binding each port — socket, bind, listen, close — was ~0.1 ms per
/// service before the first spawn.) Without sock_diag every port is bound. A socket that
/// is bound but not listening is only caught by the bind fallback.
pub(super) struct PortCheck {
    listeners: Option<Vec<std::net::SocketAddr>>,
}

impl PortCheck {
    pub(super) fn new() -> PortCheck {
        let listeners = crate::listen::ListenScanner::new().ok().and_then(|mut s| {
            let mut out = Vec::new();
            s.scan(&mut out).ok().map(|()| out)
        });
        PortCheck { listeners }
    }

    pub(super) fn free(&self, port: u16) -> bool {
        let target = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        match &self.listeners {
            Some(l) if !crate::listen::accepts(l, target) => true,
            _ => port_free(port),
        }
    }
}
