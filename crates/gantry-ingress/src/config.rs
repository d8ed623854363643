//! The ingress's plain Rust configuration (the `[ingress]` decoding lives in gantry-spec;
//! the driver maps one onto the other) and its defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything the proxy needs to start.
#[derive(Debug, Clone)]
pub struct IngressConfig {
    /// Where to listen; every one is bound before [`crate::start`] returns.
    pub listeners: Vec<ListenerConfig>,
    /// Routes, matched by host (if any) then longest path prefix.
    pub routes: Vec<RouteConfig>,
    /// Request size, header size and slow-client limits.
    pub limits: Limits,
    /// Upstream keep-alive pool.
    pub pool: PoolConfig,
    /// Per-instance circuit breaker (also the outlier ejection).
    pub breaker: BreakerConfig,
    /// Outlier ejection on consecutive failures.
    pub outlier: OutlierConfig,
    /// JSON lines access log (no headers are ever written).
    pub access_log: Option<PathBuf>,
    /// Share of requests that may be retried (0.1 = 10 %).
    pub retry_budget: f64,
    /// Largest request body kept in memory so an idempotent request can be retried.
    pub retry_body_cap: usize,
    /// Bind at start but call `listen` only at the first `set_open(true)`: until the boot is GO
    /// connections are refused rather than answered with 503.
    pub listen_when_open: bool,
    /// The page emergency mode answers with; a built-in one when `None`.
    pub maintenance_page: Option<PathBuf>,
    /// Paths that keep passing in emergency mode: exact, or a prefix ending in `*`.
    pub health_paths: Vec<String>,
    /// `Retry-After` seconds on every 503 the ingress makes itself.
    pub retry_after_secs: u32,
    /// How long `drain_instance` waits for in-flight requests.
    pub drain_timeout: Duration,
    /// How long `shutdown` lets in-flight requests finish.
    pub shutdown_timeout: Duration,
    /// The proxy's own runtime.
    pub runtime: RuntimeFlavor,
}

impl Default for IngressConfig {
    fn default() -> Self {
        IngressConfig {
            listeners: Vec::new(),
            routes: Vec::new(),
            limits: Limits::default(),
            pool: PoolConfig::default(),
            breaker: BreakerConfig::default(),
            outlier: OutlierConfig::default(),
            access_log: None,
            retry_budget: 0.1,
            retry_body_cap: 64 * 1024,
            maintenance_page: None,
            listen_when_open: false,
            health_paths: vec![
                "/healthz".into(),
                "/health/*".into(),
                "/readyz".into(),
                "/livez".into(),
            ],
            retry_after_secs: 5,
            drain_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
            runtime: RuntimeFlavor::Threads {
                threads: default_threads(),
            },
        }
    }
}

/// Proxy threads when the configuration does not say: half the cores, 1 to 4. The services
/// behind gantry's ingress run on the same machine, so the proxy leaves them cores: on 2
/// cores shared with the upstream and the load generator, one thread answered as many
/// requests per second as two and its p99 was 1.4–1.8 ms against 4.3–4.5 ms (bench/README.md,
/// Ingress, seventh round).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).clamp(1, 4))
}

/// Which tokio runtime the proxy thread runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeFlavor {
    /// One thread does everything.
    CurrentThread,
    /// This many threads, each a current-thread runtime with its own accept on the same
    /// port (`SO_REUSEPORT`: the kernel spreads connections) and its own upstream pools,
    /// so no request crosses threads (nginx's worker model).
    Threads {
        /// Threads (at least 1).
        threads: usize,
    },
    /// A work-stealing pool of this many workers.
    MultiThread {
        /// Worker threads (at least 1).
        workers: usize,
    },
}

/// One listening socket.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Serve HTTPS with this certificate chain and key (PEM files).
    pub tls: Option<TlsFiles>,
}

/// PEM files of a TLS listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// One route: requests matching `host` and `path_prefix` go to `service`.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// Name used in metrics and logs.
    pub name: String,
    /// Host to match (without port, case-insensitive); any host when `None`.
    pub host: Option<String>,
    /// Path prefix, matched at a segment boundary (`/api` matches `/api` and `/api/x`, not `/apix`).
    pub path_prefix: String,
    /// Remove the prefix before forwarding.
    pub strip_prefix: bool,
    /// Service whose ready instances serve the route.
    pub service: String,
    /// Upstream connect timeout.
    pub connect_timeout: Duration,
    /// From sending the request to the upstream's response head.
    pub request_timeout: Duration,
    /// Answer 503 while in brownout.
    pub shed_in_brownout: bool,
    /// Paths that keep writing in write_drain: exact, or a prefix ending in `*`.
    pub write_allow: Vec<String>,
}

impl RouteConfig {
    /// A route with default timeouts (connect 2 s, request 30 s).
    pub fn new(name: &str, path_prefix: &str, service: &str) -> Self {
        RouteConfig {
            name: name.to_owned(),
            host: None,
            path_prefix: path_prefix.to_owned(),
            strip_prefix: false,
            service: service.to_owned(),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(30),
            shed_in_brownout: false,
            write_allow: Vec::new(),
        }
    }
}

/// Limits that protect the proxy from its clients.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body; bigger gets 413.
    pub max_body_bytes: u64,
    /// Largest request head (request line + headers); bigger gets 431 (at least 8192).
    pub max_header_bytes: usize,
    /// Time a client has to send a whole request head (slowloris).
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 10 * 1024 * 1024,
            max_header_bytes: 64 * 1024,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// The upstream keep-alive pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Idle keep-alive connections close after this (keep it below the upstream's).
    pub idle_timeout: Duration,
    /// Idle connections kept per instance.
    pub max_idle_per_instance: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            idle_timeout: Duration::from_secs(30),
            max_idle_per_instance: 256,
        }
    }
}

/// Outlier ejection: an instance that fails this many calls in a row (5xx, timeouts, connect
/// errors; not 429) is taken out of balancing for `base_ejection` × the times it was ejected
/// (at most `max_ejection`), as long as at most `max_ejected_percent` of the service's
/// instances are out and one other instance is still eligible. This acts on a burst at once,
/// where the breaker waits for its window's failure rate.
#[derive(Debug, Clone)]
pub struct OutlierConfig {
    /// Failures in a row that eject (0 = never).
    pub consecutive_failures: u32,
    /// First ejection time; each further ejection adds as much.
    pub base_ejection: Duration,
    /// Longest ejection.
    pub max_ejection: Duration,
    /// Most of a service's instances ejected at once, in percent (at least one instance).
    pub max_ejected_percent: u8,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        OutlierConfig {
            consecutive_failures: 5,
            base_ejection: Duration::from_secs(10),
            max_ejection: Duration::from_secs(300),
            max_ejected_percent: 50,
        }
    }
}

/// The per-instance breaker: a count window of recent calls.
#[derive(Debug, Clone)]
pub struct BreakerConfig {
    /// Calls in the window.
    pub window: u32,
    /// Calls needed before the rate is judged.
    pub minimum_calls: u32,
    /// Failure ratio that opens it (0.5 = half).
    pub failure_rate: f64,
    /// Time an open breaker ejects the instance before trial calls.
    pub open_for: Duration,
    /// Trial calls in half-open.
    pub trial_calls: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            window: 20,
            minimum_calls: 5,
            failure_rate: 0.5,
            open_for: Duration::from_secs(5),
            trial_calls: 2,
        }
    }
}

/// The traffic mode; switched with [`crate::IngressHandle::set_mode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Mode {
    /// Everything passes.
    Normal,
    /// POST/PUT/PATCH/DELETE get 503 (except each route's allow-list); reads pass.
    WriteDrain,
    /// Routes with `shed_in_brownout` get 503; `shed_percent` % of the others too.
    Brownout {
        /// Share of the other routes' requests shed (0..=100).
        shed_percent: u8,
    },
    /// A maintenance page for everything but the health paths.
    Emergency,
}

impl Mode {
    pub(crate) fn encode(self) -> u32 {
        match self {
            Mode::Normal => 0,
            Mode::WriteDrain => 1,
            Mode::Brownout { shed_percent } => 2 | (u32::from(shed_percent.min(100)) << 8),
            Mode::Emergency => 3,
        }
    }

    pub(crate) fn decode(word: u32) -> Mode {
        match word & 0xff {
            1 => Mode::WriteDrain,
            2 => Mode::Brownout {
                shed_percent: ((word >> 8) & 0xff) as u8,
            },
            3 => Mode::Emergency,
            _ => Mode::Normal,
        }
    }

    /// Stable name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Normal => "normal",
            Mode::WriteDrain => "write_drain",
            Mode::Brownout { .. } => "brownout",
            Mode::Emergency => "emergency",
        }
    }
}

/// One instance of a service as the supervisor sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `api#2`.
    pub id: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Passed its readiness gate.
    pub ready: bool,
}

/// How a service's traffic is split between its stable instances and a canary release
/// (set with [`crate::IngressHandle::set_split`]; the default sends everything to stable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Split {
    /// Ids of the instances that belong to the canary.
    pub canary: Vec<String>,
    /// Share of requests for the canary, 0..=100.
    pub percent: u8,
    /// Where a client's identity comes from, so it stays on one side across requests.
    pub sticky: Option<Sticky>,
}

/// The request part a sticky assignment hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sticky {
    /// A cookie by name.
    Cookie(String),
    /// A header by name (case-insensitive).
    Header(String),
}

/// Pattern match used by allow-lists and health paths: exact, or a prefix ending in `*`.
pub(crate) fn path_matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}
