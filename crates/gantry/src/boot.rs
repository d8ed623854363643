//! `BootBuilder` (validation and the mapping of components onto engine units) and `Boot`, the cloneable handle an application starts, queries, reinitializes and shuts down.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gantry_api::model::{ApiState, CommandRequest, Snapshot};
use gantry_engine::{
    Condition, Dep, Engine, EngineError, EngineOptions, Priority, ProbeConfig, ProbeMode,
    RestartPolicy, UnitConfig, UnitId, UnitKind,
};
use gantry_plan::{GraphEdge, GraphNode};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::component::Component;
use crate::driver::{Ctl, Driver, Finals, Wiring};
use crate::error::BootError;
use crate::report::{
    BootOutcome, BootStatus, ComponentReport, ComponentStatus, ShutdownReport, StartupReport,
};

/// Collects components and options, then validates them into a [`Boot`].
///
/// ```
/// use gantry::{Boot, BootError, Component, Priority};
///
/// let boot = Boot::builder()
///     .name("orders-service")
///     .component(Component::new("config").priority(Priority::Critical))
///     .component(Component::new("db").priority(Priority::Critical).depends_on(["config"]))
///     .component(Component::new("search").priority(Priority::Low).depends_on(["db"]))
///     .allow_degraded(true)
///     .build();
/// assert!(boot.is_ok());
///
/// let typo = Boot::builder()
///     .component(Component::new("config"))
///     .component(Component::new("db").depends_on(["confg"]))
///     .build()
///     .unwrap_err();
/// assert_eq!(
///     typo,
///     BootError::UnknownDependency {
///         component: "db".into(),
///         dependency: "confg".into(),
///         suggestion: Some("config".into()),
///     }
/// );
/// ```
#[derive(Debug)]
pub struct BootBuilder {
    components: Vec<Component>,
    allow_degraded: bool,
    name: String,
    seed: Option<u64>,
}

impl BootBuilder {
    /// Registers a component. Registration order is the report's order; start order comes
    /// from the dependencies only (independent components initialize in parallel).
    pub fn component(mut self, component: Component) -> BootBuilder {
        self.components.push(component);
        self
    }

    /// Registers several components.
    pub fn components(mut self, components: impl IntoIterator<Item = Component>) -> BootBuilder {
        self.components.extend(components);
        self
    }

    /// On (the default, as the seeds' `ALLOW_DEGRADED_MODE`): a failed non-critical
    /// component makes the boot DEGRADED and skips what requires it. Off: any failure is NO-GO.
    pub fn allow_degraded(mut self, allow: bool) -> BootBuilder {
        self.allow_degraded = allow;
        self
    }

    /// The name shown as `serviceId` by `/health` (default `gantry`).
    pub fn name(mut self, name: impl Into<String>) -> BootBuilder {
        self.name = name.into();
        self
    }

    /// Seed of the retry jitter, for reproducible runs (default: from the clock and the
    /// process id, so replicas do not retry in lockstep).
    pub fn seed(mut self, seed: u64) -> BootBuilder {
        self.seed = Some(seed);
        self
    }

    /// Checks names, dependencies and cycles and builds the engine. Needs no runtime: the
    /// work starts with [`Boot::start`].
    pub fn build(self) -> Result<Boot, BootError> {
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, c) in self.components.iter().enumerate() {
            if c.name.is_empty() {
                return Err(BootError::EmptyName);
            }
            if index.insert(c.name.as_str(), i).is_some() {
                return Err(BootError::DuplicateComponent {
                    name: c.name.clone(),
                });
            }
        }
        let mut units = Vec::with_capacity(self.components.len());
        for c in &self.components {
            let mut deps = Vec::with_capacity(c.deps.len());
            for (dep, required) in &c.deps {
                let Some(&target) = index.get(dep.as_str()) else {
                    return Err(BootError::UnknownDependency {
                        component: c.name.clone(),
                        dependency: dep.clone(),
                        suggestion: closest(dep, index.keys().copied()),
                    });
                };
                deps.push(Dep {
                    unit: UnitId(target),
                    condition: Condition::Ready,
                    required: *required,
                });
            }
            units.push(unit_config(c, deps));
        }
        let options = EngineOptions {
            allow_degraded: self.allow_degraded,
            seed: self.seed.unwrap_or_else(clock_seed),
        };
        let engine = Engine::new(units, options).map_err(|e| match e {
            EngineError::Cycle { path } => BootError::Cycle { path },
            other => BootError::Invalid(other.to_string()),
        })?;
        let graph = graph_json(&self.components, &index);
        let names: Vec<String> = self.components.iter().map(|c| c.name.clone()).collect();
        let priorities: Vec<Priority> = self.components.iter().map(|c| c.priority).collect();

        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let (api_tx, api_rx) = mpsc::channel(64);
        let (events, _) = broadcast::channel(1024);
        let finals = Arc::new(Mutex::new(Finals::default()));
        // Placeholders, replaced below by the driver's own view of the not-yet-started boot.
        let (status_tx, status_rx) = watch::channel(Arc::new(BootStatus {
            started: false,
            outcome: None,
            shutting_down: false,
            finished: false,
            components: Vec::new(),
        }));
        let (snapshot_tx, snapshot_rx) = watch::channel(Arc::new(Snapshot {
            file: self.name.clone(),
            started_at: SystemTime::now(),
            boot: gantry_api::model::BootPhase::Booting,
            shutting_down: false,
            services: Vec::new(),
            graph: Value::Null.into(),
            drift_problems: 0,
            cluster: None,
            published_at: None,
            usage_sampled: None,
            usage_deferred: false,
        }));
        let mut driver = Driver::new(
            engine,
            self.components,
            self.allow_degraded,
            self.name,
            graph.into(),
            Wiring {
                ctl: ctl_rx,
                api: api_rx,
                status: status_tx.clone(),
                snapshot: snapshot_tx.clone(),
                events: events.clone(),
                finals: finals.clone(),
            },
        );
        let (status, snapshot) = driver.initial_views();
        status_tx.send_replace(Arc::new(status));
        snapshot_tx.send_replace(Arc::new(snapshot));
        Ok(Boot {
            inner: Arc::new(Inner {
                ctl: ctl_tx,
                pending: Mutex::new(Some(driver)),
                started: AtomicBool::new(false),
                status: status_rx,
                snapshot: snapshot_rx,
                events,
                api: api_tx,
                finals,
                names,
                priorities,
            }),
        })
    }
}

/// One component as an engine unit: a `Process` whose "process" is its `init` future.
fn unit_config(c: &Component, deps: Vec<Dep>) -> UnitConfig {
    let mut u = UnitConfig::new(c.name.clone(), UnitKind::Process);
    u.priority = c.priority;
    u.deps = deps;
    if c.readiness.is_some() {
        // `init` done is a pushed startup probe; the readiness function is polled after it,
        // fast at first (the engine's adaptive schedule), at most every `readiness_interval`,
        // and every `readiness_interval` while the component is up.
        u.startup = Some(ProbeConfig::pushed());
        u.readiness = Some(ProbeConfig {
            mode: ProbeMode::Polled {
                min_interval: Duration::from_millis(10),
            },
            initial_delay: Duration::ZERO,
            period: c.readiness_interval,
            timeout: c.readiness_timeout,
            success_threshold: 1,
            // While up, three failures in a row make the component unready (not one blip).
            failure_threshold: 3,
        });
    } else {
        // Ready = `init` returned Ok, reported as a pushed readiness pass.
        u.readiness = Some(ProbeConfig::pushed());
    }
    // A component never exits on its own; it only stops when asked.
    u.restart = RestartPolicy::Never;
    u.retry = c.retry;
    u.start_timeout = Some(c.timeout);
    // The stop deadline bounds the cleanup, which runs while the unit is stopping.
    u.stop_timeout = c.cleanup_timeout;
    u.has_cleanup = false;
    u.breaker = c.breaker;
    u
}

/// The components as the plan's graph JSON: kind "component", no layers, waves and the
/// longest chain from the dependencies.
fn graph_json(components: &[Component], index: &HashMap<&str, usize>) -> Value {
    let n = components.len();
    let deps: Vec<Vec<usize>> = components
        .iter()
        .map(|c| {
            c.deps
                .iter()
                .filter_map(|(d, _)| index.get(d.as_str()).copied())
                .collect()
        })
        .collect();
    // The engine accepted the graph, so it has an order; waves and the longest chain
    // (by step count: components carry no expected times) follow it.
    let order = gantry_engine::dependency_order(n, |i| deps[i].iter().copied()).unwrap_or_default();
    let mut wave = vec![0usize; n];
    let mut pred: Vec<Option<usize>> = vec![None; n];
    for &u in &order {
        for &d in &deps[u] {
            if pred[u].is_none() || wave[d] + 1 > wave[u] {
                wave[u] = wave[d] + 1;
                pred[u] = Some(d);
            }
        }
    }
    let mut waves = vec![Vec::new(); wave.iter().max().map_or(0, |m| m + 1)];
    for (u, &w) in wave.iter().enumerate() {
        waves[w].push(u);
    }
    let mut critical = Vec::new();
    let mut cur = (0..n).max_by_key(|&u| (wave[u], std::cmp::Reverse(u)));
    while let Some(u) = cur {
        critical.push(u);
        cur = pred[u];
    }
    critical.reverse();
    let priorities: Vec<String> = components.iter().map(|c| c.priority.to_string()).collect();
    let nodes: Vec<GraphNode<'_>> = components
        .iter()
        .zip(&priorities)
        .zip(&wave)
        .map(|((c, priority), &wave)| GraphNode {
            name: &c.name,
            kind: "component",
            priority,
            layer: None,
            wave,
            depends_on: c
                .deps
                .iter()
                .map(|(name, required)| GraphEdge {
                    name,
                    condition: "ready",
                    required: *required,
                })
                .collect(),
            expected_ms: None,
        })
        .collect();
    gantry_plan::graph_json(&nodes, &[], &waves, &critical, None)
}

/// Different in every process and every boot, which is all full jitter needs.
fn clock_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    (nanos as u64) ^ (u64::from(std::process::id()) << 32)
}

/// The registered name closest to `wanted` by edit distance, if it is plausibly a typo.
/// Candidates are sorted first so that a tie is broken the same way in every run.
fn closest<'a>(wanted: &str, names: impl Iterator<Item = &'a str>) -> Option<String> {
    let limit = (wanted.chars().count() / 3).max(1);
    let mut names: Vec<&str> = names.collect();
    names.sort_unstable();
    gantry_engine::names::nearest(wanted, names, limit).map(str::to_string)
}

struct Inner {
    ctl: mpsc::UnboundedSender<Ctl>,
    /// The driver until `start` spawns it.
    pending: Mutex<Option<Driver>>,
    started: AtomicBool,
    status: watch::Receiver<Arc<BootStatus>>,
    snapshot: watch::Receiver<Arc<Snapshot>>,
    events: broadcast::Sender<Value>,
    api: mpsc::Sender<CommandRequest>,
    finals: Arc<Mutex<Finals>>,
    names: Vec<String>,
    priorities: Vec<Priority>,
}

/// A boot of in-process components, run by gantry's lifecycle engine: the embeddable
/// counterpart of `gantry up`. Cheap to clone; every clone drives the same boot.
///
/// When the last handle is dropped the boot shuts itself down (cleanups run), but nothing
/// waits for that: call [`shutdown`](Boot::shutdown) before the program exits.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::{Arc, Mutex};
/// use gantry::{Boot, Component, Priority};
///
/// let log = Arc::new(Mutex::new(Vec::new()));
/// let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
/// let boot = Boot::builder()
///     .component(
///         Component::new("db")
///             .priority(Priority::Critical)
///             .init(move || { let l = l1.clone(); async move { l.lock().unwrap().push("db up"); Ok(()) } })
///             .cleanup(move || { let l = l2.clone(); async move { l.lock().unwrap().push("db down"); } }),
///     )
///     .component(
///         Component::new("api")
///             .depends_on(["db"])
///             .init(move || { let l = l3.clone(); async move { l.lock().unwrap().push("api up"); Ok(()) } }),
///     )
///     .build()
///     .unwrap();
///
/// let report = boot.start().await;
/// assert!(report.success);
/// assert_eq!(boot.reinitialize("api").await.unwrap().retries, 0);
/// boot.shutdown().await;
/// assert_eq!(*log.lock().unwrap(), ["db up", "api up", "api up", "db down"]);
/// # }
/// ```
#[derive(Clone)]
pub struct Boot {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Boot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Boot")
            .field("components", &self.inner.names)
            .field("started", &self.inner.started.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Boot {
    /// A new [`BootBuilder`].
    pub fn builder() -> BootBuilder {
        BootBuilder {
            components: Vec::new(),
            allow_degraded: true,
            name: "gantry".to_string(),
            seed: None,
        }
    }

    /// Starts the boot (on the current tokio runtime) and waits until it is decided: GO or
    /// DEGRADED as soon as every component settled, NO-GO once everything that had been
    /// initialized was cleaned up in reverse order. Calling it again returns the same report.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (it spawns the driver task).
    pub async fn start(&self) -> StartupReport {
        let driver = self.inner.pending.lock().ok().and_then(|mut p| p.take());
        if let Some(driver) = driver {
            self.inner.started.store(true, Ordering::SeqCst);
            tokio::spawn(driver.run());
        }
        let (tx, rx) = oneshot::channel();
        if self.inner.ctl.send(Ctl::Start(tx)).is_ok()
            && let Ok(report) = rx.await
        {
            return report;
        }
        // The driver is gone: it finished, or the boot was shut down before it started.
        self.finals()
            .startup
            .unwrap_or_else(|| self.unstarted_report())
    }

    /// Cleans up `name` and initializes it again. What hard-depends on it is stopped first
    /// (cleanup, dependents before dependencies) and initialized again, in order, once it is
    /// ready; the call returns when all of them settled. A failed or skipped component gets
    /// a fresh start, with its required dependencies.
    ///
    /// Errors: [`BootError::UnknownComponent`], [`BootError::NotStarted`],
    /// [`BootError::ShuttingDown`], or [`BootError::ReinitializeFailed`] with the
    /// component's report when it did not come back.
    pub async fn reinitialize(&self, name: &str) -> Result<ComponentReport, BootError> {
        if !self.inner.names.iter().any(|n| n == name) {
            return Err(BootError::UnknownComponent {
                name: name.to_string(),
                known: self.inner.names.clone(),
            });
        }
        if !self.inner.started.load(Ordering::SeqCst) {
            return Err(BootError::NotStarted);
        }
        let (tx, rx) = oneshot::channel();
        let request = Ctl::Reinit {
            name: name.to_string(),
            reply: tx,
        };
        if self.inner.ctl.send(request).is_err() {
            return Err(BootError::ShuttingDown);
        }
        rx.await.unwrap_or(Err(BootError::ShuttingDown))
    }

    /// Stops everything in reverse dependency order, running each initialized component's
    /// cleanup, and returns once all are done. Safe to call more than once, and before
    /// `start` (then nothing ran and nothing is cleaned up).
    pub async fn shutdown(&self) -> ShutdownReport {
        let never_started = self.inner.pending.lock().ok().and_then(|mut p| p.take());
        if let Some(driver) = never_started {
            drop(driver);
            let report = ShutdownReport::default();
            if let Ok(mut finals) = self.inner.finals.lock() {
                finals.startup = Some(self.unstarted_report());
                finals.shutdown = Some(report.clone());
            }
            return report;
        }
        let (tx, rx) = oneshot::channel();
        if self.inner.ctl.send(Ctl::Shutdown(tx)).is_ok()
            && let Ok(report) = rx.await
        {
            return report;
        }
        self.finals().shutdown.unwrap_or_default()
    }

    /// The current state of the boot and of every component.
    pub fn status(&self) -> BootStatus {
        BootStatus::clone(&self.inner.status.borrow())
    }

    /// A router with `/health/live`, `/health/ready`, `/health/startup` and `/health`
    /// (`application/health+json`): the process API's own handlers, so an embedded boot
    /// answers exactly like `gantry up` (`?verbose`, `?exclude=` included). Mount it with
    /// `Router::merge`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use axum::body::Body;
    /// use axum::http::{Request, StatusCode};
    /// use tower::ServiceExt;
    ///
    /// let boot = gantry::Boot::builder()
    ///     .component(gantry::Component::new("db"))
    ///     .build()
    ///     .unwrap();
    /// let ready = || Request::get("/health/ready").body(Body::empty()).unwrap();
    /// let before = boot.health_router().oneshot(ready()).await.unwrap();
    /// assert_eq!(before.status(), StatusCode::SERVICE_UNAVAILABLE);
    /// boot.start().await;
    /// let after = boot.health_router().oneshot(ready()).await.unwrap();
    /// assert_eq!(after.status(), StatusCode::OK);
    /// # boot.shutdown().await;
    /// # }
    /// ```
    pub fn health_router(&self) -> axum::Router {
        crate::http::health_router(self.api_state(String::new()))
    }

    /// The whole gantry API for this boot: the health paths, `/metrics` (OpenMetrics),
    /// `/api/v1/status`, `/api/v1/startup`, `/api/v1/events` (SSE) and the mutations
    /// (`POST /api/v1/services/{name}/restart` reinitializes, `.../stop`, `.../start`,
    /// `/api/v1/shutdown`), which need `Authorization: Bearer <token>`. An empty token
    /// disables the mutations.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use axum::body::Body;
    /// use axum::http::{Request, StatusCode};
    /// use tower::ServiceExt;
    ///
    /// let boot = gantry::Boot::builder()
    ///     .component(gantry::Component::new("db"))
    ///     .build()
    ///     .unwrap();
    /// boot.start().await;
    /// let metrics = Request::get("/metrics").body(Body::empty()).unwrap();
    /// let response = boot.api_router("s3cret").oneshot(metrics).await.unwrap();
    /// assert_eq!(response.status(), StatusCode::OK);
    /// # boot.shutdown().await;
    /// # }
    /// ```
    pub fn api_router(&self, token: impl Into<String>) -> axum::Router {
        gantry_api::router(self.api_state(token.into()))
    }

    /// A receiver of the JSON events (`transition`, `boot`, `finished`) the process driver
    /// also emits, for logging.
    ///
    /// ```
    /// let boot = gantry::Boot::builder().build().unwrap();
    /// let events = boot.events();
    /// assert!(events.is_empty());
    /// ```
    pub fn events(&self) -> broadcast::Receiver<Value> {
        self.inner.events.subscribe()
    }

    fn api_state(&self, token: String) -> ApiState {
        ApiState {
            snapshot: self.inner.snapshot.clone(),
            events: self.inner.events.clone(),
            commands: self.inner.api.clone(),
            token: Arc::new(token),
            // An embedded boot has no read-only or named tokens: the application's own router
            // decides who reaches it.
            read_token: Arc::new(String::new()),
            named_tokens: Arc::new(Vec::new()),
            // An embedded boot keeps no history, opens no missions and keeps no audit log.
            history: Arc::new(|| Ok(Vec::new())),
            missions: Arc::new(|| Ok(Vec::new())),
            incidents: Arc::new(|id| {
                Ok(id.is_none().then(|| serde_json::json!({ "incidents": [] })))
            }),
            sessions: Arc::default(),
            // An embedded boot's components write no log files.
            logs: Arc::new(|_, _| Ok(Vec::new())),
            audit: Arc::new(|_, _| Ok(Vec::new())),
            // The embedding application decides where its router is reachable.
            protect_reads: false,
            ingress: None,
            // An embedded boot serves the built-in kill switches only (no flags file).
            flags: tokio::sync::watch::channel(Arc::new(gantry_api::model::FlagsView::default())).1,
            flag_stats: Arc::default(),
            // The embedded driver publishes its figures itself: readers never wait.
            figures: Default::default(),
        }
    }

    fn finals(&self) -> Finals {
        self.inner
            .finals
            .lock()
            .map(|f| Finals {
                startup: f.startup.clone(),
                shutdown: f.shutdown.clone(),
            })
            .unwrap_or_default()
    }

    fn unstarted_report(&self) -> StartupReport {
        let reason = "shut down before it was started".to_string();
        StartupReport {
            success: false,
            outcome: BootOutcome::NoGo {
                component: None,
                reason: reason.clone(),
            },
            duration: Duration::ZERO,
            components: self
                .inner
                .names
                .iter()
                .zip(&self.inner.priorities)
                .map(|(name, &priority)| ComponentReport {
                    name: name.clone(),
                    status: ComponentStatus::Skipped,
                    duration: Duration::ZERO,
                    retries: 0,
                    priority,
                    error: Some(reason.clone()),
                    cleaned_up: false,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_only_for_plausible_typos() {
        let names = ["config", "db", "cache"];
        assert_eq!(
            closest("confg", names.iter().copied()),
            Some("config".into())
        );
        assert_eq!(closest("dB", names.iter().copied()), Some("db".into()));
        assert_eq!(closest("queue", names.iter().copied()), None);
    }
    // The edit distance itself is tested where it lives: gantry_engine::names.

    #[test]
    fn graph_json_has_the_plan_shape() {
        let components = [
            Component::new("db"),
            Component::new("cache"),
            Component::new("api")
                .depends_on(["db"])
                .depends_on_soft(["cache"]),
            Component::new("web").depends_on(["api"]),
        ];
        let index: HashMap<&str, usize> = components
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.as_str(), i))
            .collect();
        let g = graph_json(&components, &index);
        let api = &g["services"][2];
        assert_eq!(api["name"], "api");
        assert_eq!(api["kind"], "component");
        assert_eq!(api["priority"], "high");
        assert_eq!(api["wave"], 2);
        assert_eq!(api["layer"], Value::Null);
        assert_eq!(api["expected_ms"], Value::Null);
        assert_eq!(
            api["depends_on"],
            serde_json::json!([
                { "name": "db", "condition": "ready", "required": true },
                { "name": "cache", "condition": "ready", "required": false }
            ])
        );
        assert_eq!(
            g["waves"],
            serde_json::json!([["db", "cache"], ["api"], ["web"]])
        );
        assert_eq!(g["critical_path"], serde_json::json!(["db", "api", "web"]));
        assert_eq!(g["layers"], serde_json::json!([]));
        assert_eq!(g["critical_ms"], Value::Null);
    }
}
