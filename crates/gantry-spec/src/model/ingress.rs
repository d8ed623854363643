//! The typed `[ingress]` table and a service's replicas: what the ingress proxy and the plan's instance expansion read.

use super::{Dur, Sp};
use crate::source::Span;
use std::net::SocketAddr;

/// `[ingress]`: where the proxy listens, its limits and its routes.
#[derive(Debug, Clone, PartialEq)]
pub struct Ingress {
    /// The `[ingress]` table itself.
    pub span: Span,
    /// `listen` (with `tls`) and every entry of `listeners`, in that order.
    pub listeners: Vec<Listener>,
    /// Retries may add at most this percentage (0 to 100) to the requests.
    pub retry_budget: f64,
    /// Largest request body, in bytes.
    pub max_body: u64,
    /// Largest request head, in bytes.
    pub max_header: u64,
    /// A client sends its whole request head within this.
    pub header_timeout: Dur,
    /// In-flight requests of an instance being stopped may take this long.
    pub drain_timeout: Dur,
    /// The page `emergency` mode serves, as written (relative to the file); None: built in.
    pub maintenance_page: Option<Sp<String>>,
    /// JSON lines to `state_dir/logs/ingress.log`.
    pub access_log: bool,
    /// Accept connections only once the boot is GO (the port is reserved from the start but
    /// refuses connections until then), instead of answering 503 while the stack boots.
    pub listen_when_ready: bool,
    /// Proxy threads (each its own runtime, listener and pools); None: half the cores, 1 to 4.
    pub threads: Option<u32>,
    pub routes: Vec<Route>,
}

/// One listening socket of the ingress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// The address as written, where it was written.
    pub listen: Sp<String>,
    /// The parsed address (a listener whose address does not parse is reported and dropped).
    pub addr: SocketAddr,
    /// Present when the listener speaks TLS.
    pub tls: Option<ListenerTls>,
}

/// PEM files of a TLS listener, as written (relative to the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerTls {
    pub cert: Sp<String>,
    pub key: Sp<String>,
}

/// `[[ingress.routes]]`: requests matching `host` and the `path` prefix go to `service`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The route's table.
    pub span: Span,
    /// A path prefix starting with `/` (matched on segment boundaries).
    pub path: Option<Sp<String>>,
    /// A host name, lower case, without port.
    pub host: Option<Sp<String>>,
    pub service: Sp<String>,
    pub strip_prefix: bool,
    /// Until the upstream's response headers.
    pub timeout: Dur,
    pub connect_timeout: Dur,
    pub shed_in_brownout: bool,
    /// Path prefixes that keep accepting writes in `write_drain`.
    pub write_allow: Vec<Sp<String>>,
}

/// `replicas = N` (with `replica_ports`) on a process service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replicas {
    /// 1 or more.
    pub count: Sp<u32>,
    /// The instances' ports: instance i (1-based) gets `first + i - 1`.
    pub ports: Option<PortRange>,
}

/// `replica_ports = "9100-9199"`: both ends included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
    pub span: Span,
}

impl PortRange {
    /// How many ports the range holds.
    pub fn len(&self) -> u32 {
        u32::from(self.last) - u32::from(self.first) + 1
    }

    /// Never true: a range holds at least one port.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The port of instance `replica` (1-based), if the range holds it.
    pub fn port(&self, replica: u32) -> Option<u16> {
        let p = u32::from(self.first) + replica.checked_sub(1)?;
        (replica >= 1 && p <= u32::from(self.last)).then_some(p as u16)
    }
}

impl Replicas {
    /// The port of instance `replica` (1-based), when the service has a port range.
    pub fn port(&self, replica: u32) -> Option<u16> {
        self.ports.as_ref()?.port(replica)
    }
}

/// One instance of a replicated service, as the plan expands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The service's name in the file (`api`).
    pub service: String,
    /// 1-based.
    pub replica: u32,
    /// Its port from `replica_ports`, if the service has a range.
    pub port: Option<u16>,
}
