//! The key tables and defaults of `[ingress]`: TLS, listeners and routes.

use super::{Key, Ty, k};
use std::time::Duration;

/// The most instances one service may ask for.
pub const REPLICAS_MAX: i64 = 1000;
/// `[ingress] retry_budget` when unset: retries may add 10 % to the requests.
pub const INGRESS_RETRY_BUDGET: f64 = 10.0;
/// `[ingress] max_body` when unset.
pub const INGRESS_MAX_BODY: u64 = 10 << 20;
/// `[ingress] max_header` when unset.
pub const INGRESS_MAX_HEADER: u64 = 64 << 10;
/// `[ingress] header_timeout` when unset: a client has this long to send its headers.
pub const INGRESS_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// `[ingress] drain_timeout` when unset.
pub const INGRESS_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// A route's `timeout` when unset.
pub const ROUTE_TIMEOUT: Duration = Duration::from_secs(30);
/// A route's `connect_timeout` when unset.
pub const ROUTE_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

pub static INGRESS_TLS: &[Key] = &[
    k(
        "cert",
        Ty::Str,
        None,
        "PEM certificate chain the listener presents; relative to the file. Needs `key`.",
    ),
    k(
        "key",
        Ty::Str,
        None,
        "PEM private key of `cert`; relative to the file.",
    ),
];

pub static LISTENER: &[Key] = &[
    k(
        "listen",
        Ty::Str,
        None,
        "`host:port` the listener binds, e.g. `\"127.0.0.1:8443\"`. Required.",
    ),
    k(
        "cert",
        Ty::Str,
        None,
        "PEM certificate chain: this listener speaks TLS. Needs `key`.",
    ),
    k("key", Ty::Str, None, "PEM private key of `cert`."),
];

pub static ROUTE: &[Key] = &[
    k(
        "path",
        Ty::Str,
        None,
        "A path prefix, starting with `/`; it matches on segment boundaries (`/api` matches `/api` and `/api/x`, not `/apix`). A route needs `path`, `host` or both.",
    ),
    k(
        "host",
        Ty::Str,
        None,
        "The request's host name (without port), compared without case.",
    ),
    k(
        "service",
        Ty::Str,
        None,
        "The service that answers; it needs `upstream`, or `replicas` with `replica_ports`. Required.",
    ),
    k(
        "strip_prefix",
        Ty::Bool,
        Some("false"),
        "Remove `path` from the request's path before it is sent upstream.",
    ),
    k(
        "timeout",
        Ty::Duration,
        Some("\"30s\""),
        "The longest an upstream may take to answer (until its response headers).",
    ),
    k(
        "connect_timeout",
        Ty::Duration,
        Some("\"2s\""),
        "The longest a connection to an upstream instance may take.",
    ),
    k(
        "shed_in_brownout",
        Ty::Bool,
        Some("false"),
        "In `brownout` mode this route answers 503.",
    ),
    k(
        "write_allow",
        Ty::StrList,
        Some("[]"),
        "Path prefixes of this route that keep accepting writes (POST, PUT, PATCH, DELETE) in `write_drain` mode.",
    ),
];

pub static INGRESS: &[Key] = &[
    k(
        "listen",
        Ty::Str,
        None,
        "`host:port` of the one plain listener, e.g. `\"127.0.0.1:8080\"` (with `tls`, it speaks TLS). Or use `listeners` for several.",
    ),
    k(
        "tls",
        Ty::Table(INGRESS_TLS),
        None,
        "TLS for `listen`: `{ cert = \"tls/cert.pem\", key = \"tls/key.pem\" }`.",
    ),
    k(
        "listeners",
        Ty::TableList(LISTENER),
        Some("[]"),
        "Several listeners: `[{ listen = \"127.0.0.1:8080\" }, { listen = \"127.0.0.1:8443\", cert = \"...\", key = \"...\" }]`.",
    ),
    k(
        "retry_budget",
        Ty::Str,
        Some("\"10%\""),
        "Retries of idempotent requests may add at most this share to the requests (`\"0%\"` turns retries off).",
    ),
    k(
        "max_body",
        Ty::Size { min: 0 },
        Some("\"10MiB\""),
        "Largest request body accepted; a larger one gets 413.",
    ),
    k(
        "max_header",
        Ty::Size { min: 1024 },
        Some("\"64KiB\""),
        "Largest request head (request line and headers) accepted; a larger one gets 431.",
    ),
    k(
        "header_timeout",
        Ty::Duration,
        Some("\"10s\""),
        "A client must send its whole request head within this time (slow clients are cut).",
    ),
    k(
        "drain_timeout",
        Ty::Duration,
        Some("\"30s\""),
        "How long in-flight requests of an instance being stopped or replaced may take to finish.",
    ),
    k(
        "maintenance_page",
        Ty::Str,
        None,
        "An HTML file served in `emergency` mode (relative to the file); absent: a built-in page.",
    ),
    k(
        "access_log",
        Ty::Bool,
        Some("true"),
        "Write an access log to `state_dir/logs/ingress.log` (JSON lines; never Authorization or cookies).",
    ),
    k(
        "listen_when_ready",
        Ty::Bool,
        Some("false"),
        "Accept connections only once the boot is GO: until then the port is reserved but refuses connections (clients and load balancers see \"connection refused\"). Off: the listeners answer 503 with `Retry-After` while the stack boots.",
    ),
    k(
        "threads",
        Ty::Int { min: 1, max: 64 },
        None,
        "Proxy threads, each with its own listener socket (`SO_REUSEPORT`), runtime and upstream connections. Unset: half the machine's cores, 1 to 4, since the services behind the ingress run on the same machine (on 2 cores one thread had the lower tail latency and as many requests per second; bench/README.md, Ingress).",
    ),
    k(
        "routes",
        Ty::TableList(ROUTE),
        Some("[]"),
        "The routes, `[[ingress.routes]]`: a request goes to the route with the longest matching `path` among those whose `host` matches (a route with a host wins over one without).",
    ),
];
