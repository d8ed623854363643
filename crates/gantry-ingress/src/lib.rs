//! gantry's ingress guard: a reverse proxy that stays closed until the boot is GO, balances
//! across ready instances (power of two choices), breaks circuits per instance, retries
//! idempotent requests under a budget, switches modes (write_drain, brownout, emergency)
//! for the next request, and measures the golden signals.
//!
//! It runs on its own thread with its own tokio runtime, so request traffic never delays
//! the supervisor's single-threaded event loop; the supervisor drives it through a cheap
//! [`IngressHandle`].
//!
//! ```no_run
//! use gantry_ingress::{start, IngressConfig, ListenerConfig, RouteConfig, Instance, Mode};
//! let cfg = IngressConfig {
//!     listeners: vec![ListenerConfig { listen: "127.0.0.1:8080".parse().unwrap(), tls: None }],
//!     routes: vec![RouteConfig::new("api", "/api", "api")],
//!     ..IngressConfig::default()
//! };
//! let ingress = start(cfg).expect("ingress starts");
//! ingress.set_instances("api", vec![Instance { id: "api#1".into(), addr: "127.0.0.1:8000".parse().unwrap(), ready: true }]);
//! ingress.set_open(true);
//! ingress.set_mode(Mode::WriteDrain);
//! ```

#![warn(missing_docs)]

mod access_log;
mod config;
mod headers;
mod metrics;
mod pool;
mod proxy;
mod server;
mod timer;
mod upstream;

pub use config::{
    BreakerConfig, IngressConfig, Instance, Limits, ListenerConfig, Mode, OutlierConfig,
    PoolConfig, RouteConfig, RuntimeFlavor, Split, Sticky, TlsFiles,
};
pub use metrics::{
    IngressSnapshot, InstanceSnapshot, RequestsByClass, RouteSnapshot, SignalsSnapshot, SplitTally,
    Tally, Window,
};

use bytes::Bytes;
use gantry_resilience::retry::RetryBudget;
use http::HeaderValue;
use proxy::{Route, Shared};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use upstream::Registry;

const MAINTENANCE: &str = "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Maintenance</title></head>\n<body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\"><h1>We'll be right back</h1>\n<p>This service is in maintenance. Please try again in a few minutes.</p></body></html>\n";

/// Why the ingress did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound.
    #[error(
        "ingress: cannot listen on {addr}: {source} (is another process using the port? pick a free `listen` address)"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A TLS listener's files are unusable.
    #[error("ingress: TLS listener {addr}: {message}")]
    Tls {
        /// The listener.
        addr: SocketAddr,
        /// What is wrong and what to do.
        message: String,
    },
    /// A file named by the configuration could not be read.
    #[error("ingress: {0}")]
    Config(String),
    /// The proxy thread or runtime could not start.
    #[error("ingress: cannot start the proxy thread: {0}")]
    Runtime(std::io::Error),
}

struct Inner {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    /// True once the listeners listen (at start, or at the first open with `listen_when_open`).
    listen: watch::Sender<bool>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    drain_timeout: Duration,
    local_addrs: Vec<SocketAddr>,
    dropped: Option<Arc<AtomicU64>>,
}

/// Controls a running ingress; cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct IngressHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for IngressHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngressHandle")
            .field("listening", &self.inner.local_addrs)
            .finish()
    }
}

/// Starts the proxy on its own thread and runtime; every listener is bound before it returns.
pub fn start(cfg: IngressConfig) -> Result<IngressHandle, StartError> {
    let maintenance = match &cfg.maintenance_page {
        Some(p) => Bytes::from(std::fs::read(p).map_err(|e| {
            StartError::Config(format!(
                "cannot read maintenance_page {}: {e}; fix the path or remove it to use the built-in page",
                p.display()
            ))
        })?),
        None => Bytes::from_static(MAINTENANCE.as_bytes()),
    };
    let mut acceptors = Vec::new();
    for l in &cfg.listeners {
        acceptors.push(match &l.tls {
            Some(files) => Some(server::tls_acceptor(l.listen, files)?),
            None => None,
        });
    }
    let registry = Arc::new(Registry::new(cfg.breaker.clone()));
    let threads = match cfg.runtime {
        RuntimeFlavor::Threads { threads } => threads.max(1),
        _ => 1,
    };
    let routes = cfg
        .routes
        .iter()
        .map(|r| Route {
            host: r.host.as_ref().map(|h| h.to_ascii_lowercase()),
            slot: registry.slot(&r.service),
            metrics: Default::default(),
            cfg: r.clone(),
        })
        .collect();
    let budget = RetryBudget::builder()
        .retry_ratio(cfg.retry_budget.clamp(0.0, 1.0))
        .min_retries_per_sec(10)
        .build()
        .map_err(|e| StartError::Config(format!("retry_budget {}: {e}", cfg.retry_budget)))?;
    let (log, log_task) = match &cfg.access_log {
        Some(p) => {
            let names = cfg.routes.iter().map(|r| r.name.clone()).collect();
            let (log, task) = access_log::open(p, names).map_err(|e| {
                StartError::Config(format!("cannot open access_log {}: {e}", p.display()))
            })?;
            (Some(log), Some(task))
        }
        None => (None, None),
    };
    let dropped = log.as_ref().map(|l| l.dropped.clone());
    let shared = Arc::new(Shared {
        open: AtomicBool::new(false),
        mode: AtomicU32::new(Mode::Normal.encode()),
        routes,
        registry,
        budget,
        max_body: cfg.limits.max_body_bytes,
        retry_body_cap: cfg.retry_body_cap,
        retry_after: HeaderValue::from(cfg.retry_after_secs),
        retry_after_secs: cfg.retry_after_secs,
        health_paths: cfg.health_paths.clone(),
        maintenance,
        access_log: log,
        outlier: cfg.outlier.clone(),
        pool: pool::Pool {
            idle_timeout: cfg.pool.idle_timeout,
            max_idle: cfg.pool.max_idle_per_instance,
        },
    });

    // Every listener bound here, before any thread starts (errors name the address); with
    // several proxy threads each gets its own socket on the same address (SO_REUSEPORT).
    let mut per_thread: Vec<Vec<socket2::Socket>> = (0..threads).map(|_| Vec::new()).collect();
    let mut local_addrs = Vec::new();
    for l in &cfg.listeners {
        let first = server::bind_std(l.listen, threads > 1)?;
        let addr = first
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .ok_or_else(|| StartError::Bind {
                addr: l.listen,
                source: std::io::Error::other("the bound socket has no address"),
            })?;
        local_addrs.push(addr);
        per_thread[0].push(first);
        for t in per_thread.iter_mut().skip(1) {
            t.push(server::bind_std(addr, true)?);
        }
    }
    // Listening now, unless it waits for the boot: a failure is an error of `start`, naming
    // the address (threads listen again on adoption, which only sets the same backlog).
    if !cfg.listen_when_open {
        for (t, addr) in per_thread
            .iter()
            .flat_map(|t| t.iter().zip(local_addrs.iter()))
        {
            t.listen(4096).map_err(|e| StartError::Bind {
                addr: *addr,
                source: e,
            })?;
        }
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    // Listening starts at once, or at the first `set_open(true)` with `listen_when_open`.
    let (listen_tx, listen_rx) = watch::channel(!cfg.listen_when_open);
    let tracker = Arc::new(server::ConnTracker::default());
    let limits = cfg.limits.clone();
    let shutdown_timeout = cfg.shutdown_timeout;
    let mut log_task = log_task;
    let mut handles = Vec::with_capacity(threads);
    // Several current-thread runtimes: connections are spread evenly (server::Balance).
    let (balance, mut inboxes) = match cfg.runtime {
        RuntimeFlavor::Threads { .. } if threads > 1 => {
            let (b, rxs) = server::Balance::new(threads);
            (Some(b), rxs.into_iter().map(Some).collect())
        }
        _ => (None, (0..threads).map(|_| None).collect::<Vec<_>>()),
    };
    for (worker, listeners) in per_thread.into_iter().enumerate() {
        let inbox = inboxes[worker].take();
        let balance = balance.clone();
        let mut rt = match cfg.runtime {
            RuntimeFlavor::MultiThread { workers } => {
                let mut b = tokio::runtime::Builder::new_multi_thread();
                b.worker_threads(workers.max(1));
                b
            }
            _ => tokio::runtime::Builder::new_current_thread(),
        };
        let rt = rt
            .enable_all()
            .thread_name("gantry-ingress")
            .build()
            .map_err(StartError::Runtime)?;
        let (shared, tracker, limits) = (shared.clone(), tracker.clone(), limits.clone());
        let acceptors = acceptors.clone();
        let stop_rx = stop_rx.clone();
        let mut listen_rx = listen_rx.clone();
        let log_task = log_task.take();
        let thread = std::thread::Builder::new()
            .name(format!("gantry-ingress-{worker}"))
            .spawn(move || {
                rt.block_on(async move {
                    let mut accepts = Vec::new();
                    // Until listening may start (or the proxy stops first).
                    let mut stop_early = stop_rx.clone();
                    let may_listen = tokio::select! {
                        r = listen_rx.wait_for(|&go| go) => r.is_ok(),
                        _ = stop_early.wait_for(|&stop| stop) => false,
                    };
                    let listeners = if may_listen { listeners } else { Vec::new() };
                    let ctx = server::Ctx {
                        shared: shared.clone(),
                        limits: limits.clone(),
                        tracker: tracker.clone(),
                        stop: stop_rx.clone(),
                        balance,
                        me: worker,
                    };
                    if let Some(inbox) = inbox {
                        accepts.push(tokio::spawn(server::handoffs(
                            inbox,
                            acceptors.clone(),
                            ctx.clone(),
                        )));
                    }
                    for (index, (sock, tls)) in listeners.into_iter().zip(acceptors).enumerate() {
                        let at = sock.local_addr().ok().and_then(|a| a.as_socket());
                        let listener = match server::listen(sock)
                            .and_then(tokio::net::TcpListener::from_std)
                        {
                            Ok(l) => l,
                            Err(e) => {
                                // Only with `listen_when_open` can this happen after start
                                // (another program took the port meanwhile): say so where
                                // the operator looks.
                                eprintln!(
                                    "gantry-ingress: cannot listen on {}: {e}; free the port and restart gantry",
                                    at.map_or_else(|| "?".to_string(), |a| a.to_string())
                                );
                                continue;
                            }
                        };
                        accepts.push(tokio::spawn(server::accept_loop(
                            listener,
                            index,
                            tls,
                            ctx.clone(),
                        )));
                    }
                    let log_task = log_task.map(tokio::spawn);
                    let mut stop = stop_rx;
                    while !*stop.borrow_and_update() {
                        if stop.changed().await.is_err() {
                            break;
                        }
                    }
                    for a in accepts {
                        let _ = a.await;
                    }
                    let _ = tokio::time::timeout(shutdown_timeout, tracker.wait_idle()).await;
                    if let (Some(task), Some(log)) = (log_task, &shared.access_log) {
                        // Every connection is done: write what is queued, then stop.
                        log.closing.notify_one();
                        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
                    }
                });
                // Let the access log flush what it holds, briefly.
                rt.shutdown_timeout(Duration::from_millis(200));
            })
            .map_err(StartError::Runtime)?;
        handles.push(thread);
    }
    Ok(IngressHandle {
        inner: Arc::new(Inner {
            shared,
            stop: stop_tx,
            listen: listen_tx,
            threads: Mutex::new(handles),
            drain_timeout: cfg.drain_timeout,
            local_addrs,
            dropped,
        }),
    })
}

impl IngressHandle {
    /// The bound addresses, in listener order (useful with port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.inner.local_addrs
    }

    /// Opens (boot is GO) or closes the gate; closed routes answer 503 saying what they wait for.
    pub fn set_open(&self, open: bool) {
        self.inner.shared.open.store(open, Relaxed);
        if open {
            // Listening, once started, never stops before shutdown: closing again is 503s.
            self.inner
                .listen
                .send_if_modified(|listening| !std::mem::replace(listening, true));
        }
    }

    /// Replaces a service's instances; one with the same id and address keeps its breaker,
    /// counters and draining state.
    pub fn set_instances(&self, service: &str, instances: Vec<Instance>) {
        self.inner.shared.registry.set_instances(service, instances);
    }

    /// Splits a service's traffic between its stable instances and the canary ones (by id):
    /// `percent` of requests (of clients, with a sticky cookie or header) go to the canary.
    /// Takes effect on the next request; in-flight requests are not moved.
    pub fn set_split(&self, service: &str, split: Split) {
        self.inner.shared.registry.slot(service).set_split(split);
    }

    /// The cumulative figures of each side of a service's split (see [`Tally::since`]).
    pub fn tally(&self, service: &str) -> SplitTally {
        let mut t = SplitTally::default();
        for i in self
            .inner
            .shared
            .registry
            .slot(service)
            .instances
            .load()
            .iter()
        {
            if i.canary.load(Relaxed) {
                t.canary.add(&i.signals);
            } else {
                t.stable.add(&i.signals);
            }
        }
        t
    }

    /// Stops sending new requests to an instance; resolves once its in-flight requests are
    /// done or the drain timeout passed (an unknown instance resolves at once).
    pub fn drain_instance(
        &self,
        service: &str,
        id: &str,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let inst = self.inner.shared.registry.find(service, id);
        let timeout = self.inner.drain_timeout;
        async move {
            let Some(inst) = inst else { return };
            inst.draining.store(true, Relaxed);
            let wait = async {
                loop {
                    let notified = inst.idle.notified();
                    if inst.signals.in_flight.load(Relaxed) == 0 {
                        return;
                    }
                    notified.await;
                }
            };
            let _ = tokio::time::timeout(timeout, wait).await;
        }
    }

    /// Switches the mode; the next request sees it, in-flight ones are never cut.
    pub fn set_mode(&self, mode: Mode) {
        self.inner.shared.mode.store(mode.encode(), Relaxed);
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        Mode::decode(self.inner.shared.mode.load(Relaxed))
    }

    /// Golden signals per route and instance.
    pub fn snapshot(&self) -> IngressSnapshot {
        let s = &self.inner.shared;
        let routes = s
            .routes
            .iter()
            .map(|r| metrics::route_snapshot(&r.cfg.name, &r.cfg.service, &r.metrics))
            .collect();
        let mut instances = Vec::new();
        for (svc, slot) in s.registry.all() {
            for i in slot.instances.load().iter() {
                instances.push(InstanceSnapshot {
                    service: svc.clone(),
                    id: i.id.clone(),
                    addr: i.addr.to_string(),
                    ready: i.ready.load(Relaxed),
                    draining: i.draining.load(Relaxed),
                    breaker: i.breaker.state().as_str(),
                    connections: i.connections.load(Relaxed),
                    ejected: i.ejected(),
                    canary: i.canary.load(Relaxed),
                    ejections: u64::from(i.ejections.load(Relaxed)),
                    signals: metrics::signals_snapshot(&i.signals),
                });
            }
        }
        IngressSnapshot {
            open: s.open.load(Relaxed),
            mode: self.mode(),
            routes,
            instances,
            access_log_dropped: self.inner.dropped.as_ref().map_or(0, |d| d.load(Relaxed)),
        }
    }

    /// Appends the Prometheus text of every signal to `out`.
    pub fn render_prometheus(&self, out: &mut String) {
        use std::fmt::Write as _;
        let s = &self.inner.shared;
        let _ = writeln!(
            out,
            "# HELP gantry_ingress_open Whether the ingress lets traffic through (boot is GO)."
        );
        let _ = writeln!(out, "# TYPE gantry_ingress_open gauge");
        let _ = writeln!(
            out,
            "gantry_ingress_open {}",
            u8::from(s.open.load(Relaxed))
        );
        let _ = writeln!(
            out,
            "# HELP gantry_ingress_mode The current traffic mode (1 on the active one)."
        );
        let _ = writeln!(out, "# TYPE gantry_ingress_mode gauge");
        let mode = self.mode().as_str();
        for m in ["normal", "write_drain", "brownout", "emergency"] {
            let _ = writeln!(
                out,
                "gantry_ingress_mode{{mode=\"{m}\"}} {}",
                u8::from(m == mode)
            );
        }
        metrics::render_headers(out, "gantry_ingress", "route");
        for r in &s.routes {
            let labels = format!("route=\"{}\"", metrics::label(&r.cfg.name));
            metrics::render_signals(out, "gantry_ingress", &labels, &r.metrics.signals);
            metrics::render_sheds(out, &labels, &r.metrics);
        }
        metrics::render_headers(out, "gantry_ingress_instance", "instance");
        let _ = writeln!(
            out,
            "# HELP gantry_ingress_instance_breaker_state Ingress instance: breaker state (0 closed, 1 open, 2 half-open, 3 forced open, 4 disabled)."
        );
        let _ = writeln!(out, "# TYPE gantry_ingress_instance_breaker_state gauge");
        let _ = writeln!(
            out,
            "# HELP gantry_ingress_instance_connections Ingress instance: upstream connections open (idle and active)."
        );
        let _ = writeln!(out, "# TYPE gantry_ingress_instance_connections gauge");
        let _ = writeln!(
            out,
            "# HELP gantry_ingress_instance_ejected Ingress instance: 1 while outlier detection has it out of balancing."
        );
        let _ = writeln!(out, "# TYPE gantry_ingress_instance_ejected gauge");
        let _ = writeln!(
            out,
            "# HELP gantry_ingress_instance_ejections_total Ingress instance: times outlier detection ejected it (this incarnation)."
        );
        let _ = writeln!(
            out,
            "# TYPE gantry_ingress_instance_ejections_total counter"
        );
        for (svc, slot) in s.registry.all() {
            for i in slot.instances.load().iter() {
                let labels = format!(
                    "service=\"{}\",instance=\"{}\"",
                    metrics::label(&svc),
                    metrics::label(&i.id)
                );
                metrics::render_signals(out, "gantry_ingress_instance", &labels, &i.signals);
                let _ = writeln!(
                    out,
                    "gantry_ingress_instance_breaker_state{{{labels}}} {}",
                    i.breaker.state().as_u8()
                );
                let _ = writeln!(
                    out,
                    "gantry_ingress_instance_connections{{{labels}}} {}",
                    i.connections.load(Relaxed)
                );
                let _ = writeln!(
                    out,
                    "gantry_ingress_instance_ejected{{{labels}}} {}",
                    u8::from(i.ejected())
                );
                let _ = writeln!(
                    out,
                    "gantry_ingress_instance_ejections_total{{{labels}}} {}",
                    i.ejections.load(Relaxed)
                );
            }
        }
    }

    /// Stops accepting, lets in-flight requests finish within the shutdown timeout and joins
    /// the proxy thread (blocking; from async code call it on `spawn_blocking`).
    pub fn shutdown(&self) {
        let _ = self.inner.stop.send(true);
        let threads =
            std::mem::take(&mut *self.inner.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}
