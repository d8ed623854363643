//! The driver's side of the ingress: the proxy built from `[ingress]`, started on its own
//! thread before the boot (closed: every route answers 503 until the boot is GO), fed the
//! instances of each routed service and their readiness after every state change, closed
//! again when the stack stops; and the control the API switches modes through.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use gantry_engine::UnitId;
use gantry_ingress::{IngressConfig, IngressHandle, Instance, ListenerConfig, Mode, RouteConfig};
use gantry_plan::Plan;
use gantry_spec::Spec;

/// One routed service and its instances (a unit each).
struct Group {
    service: String,
    members: Vec<(UnitId, String, Option<SocketAddr>)>,
    /// Instances beside the service's units (a blue/green rollout's green set).
    extra: Vec<(UnitId, String, Option<SocketAddr>)>,
    /// What the proxy was last told (ids and readiness), to tell it only changes.
    sent: Option<Vec<(String, bool)>>,
}

/// The running ingress and what the driver keeps for it.
pub(super) struct IngressSide {
    pub(super) handle: IngressHandle,
    groups: Vec<Group>,
    open: bool,
}

/// The proxy's configuration from the file (paths relative to the file; the access log in
/// `state_dir/logs/ingress.log`).
pub(super) fn config(spec: &Spec, base_dir: &Path, logs_dir: &Path) -> Option<IngressConfig> {
    let ing = spec.ingress.as_ref()?;
    let resolve = |p: &str| base_dir.join(p);
    let defaults = IngressConfig::default();
    let mut limits = defaults.limits.clone();
    limits.max_body_bytes = ing.max_body;
    limits.max_header_bytes = usize::try_from(ing.max_header).unwrap_or(usize::MAX);
    limits.header_read_timeout = ing.header_timeout.0;
    let routes = ing
        .routes
        .iter()
        .map(|r| {
            let path = r.path.as_ref().map_or("/", |p| p.value.as_str());
            let host = r.host.as_ref().map(|h| h.value.clone());
            let name = match &host {
                Some(h) => format!("{h}{path}"),
                None => path.to_string(),
            };
            let mut route = RouteConfig::new(&name, path, &r.service.value);
            route.host = host;
            route.strip_prefix = r.strip_prefix;
            route.request_timeout = r.timeout.0;
            route.connect_timeout = r.connect_timeout.0;
            route.shed_in_brownout = r.shed_in_brownout;
            route.write_allow = r.write_allow.iter().map(|w| w.value.clone()).collect();
            route
        })
        .collect();
    Some(IngressConfig {
        listeners: ing
            .listeners
            .iter()
            .map(|l| ListenerConfig {
                listen: l.addr,
                tls: l.tls.as_ref().map(|t| gantry_ingress::TlsFiles {
                    cert: resolve(&t.cert.value),
                    key: resolve(&t.key.value),
                }),
            })
            .collect(),
        routes,
        limits,
        access_log: ing.access_log.then(|| logs_dir.join("ingress.log")),
        retry_budget: (ing.retry_budget / 100.0).clamp(0.0, 1.0),
        maintenance_page: ing.maintenance_page.as_ref().map(|p| resolve(&p.value)),
        drain_timeout: ing.drain_timeout.0,
        listen_when_open: ing.listen_when_ready,
        runtime: match ing.threads {
            Some(n) => gantry_ingress::RuntimeFlavor::Threads {
                threads: n as usize,
            },
            None => defaults.runtime,
        },
        ..defaults
    })
}

impl IngressSide {
    /// Starts the proxy (closed) for the routed services of `plan`.
    pub(super) fn start(
        spec: &Spec,
        plan: &Plan,
        base_dir: &Path,
        logs_dir: &Path,
    ) -> Result<Option<IngressSide>, String> {
        let Some(cfg) = config(spec, base_dir, logs_dir) else {
            return Ok(None);
        };
        let mut services: Vec<String> = cfg.routes.iter().map(|r| r.service.clone()).collect();
        services.sort();
        services.dedup();
        let groups = services
            .into_iter()
            .map(|service| Group {
                members: members(plan, &service),
                extra: Vec::new(),
                service,
                sent: None,
            })
            .collect();
        let handle = gantry_ingress::start(cfg).map_err(|e| e.to_string())?;
        Ok(Some(IngressSide {
            handle,
            groups,
            open: false,
        }))
    }

    /// The instances again from a reloaded plan (an `upstream` may have changed).
    pub(super) fn replan(&mut self, plan: &Plan) {
        for g in &mut self.groups {
            g.members = members(plan, &g.service);
            g.members.extend(g.extra.iter().cloned());
            g.sent = None;
        }
    }

    /// Sets the instances `service` has beside its units (a blue/green rollout's green set,
    /// empty once it is gone); the proxy learns them at the next sync.
    pub(super) fn set_extra(
        &mut self,
        plan: &Plan,
        service: &str,
        extra: Vec<(UnitId, String, Option<SocketAddr>)>,
    ) {
        if let Some(g) = self.groups.iter_mut().find(|g| g.service == service) {
            g.extra = extra;
            g.members = members(plan, service);
            g.members.extend(g.extra.iter().cloned());
            g.sent = None;
        }
    }

    /// Tells the proxy what changed: each routed service's ready (and not quarantined) instances, and whether
    /// the stack is open (the boot decided GO or DEGRADED, no shutdown begun).
    pub(super) fn sync(&mut self, engine: &gantry_engine::Engine) {
        for g in &mut self.groups {
            let now: Vec<(String, bool)> = g
                .members
                .iter()
                .map(|(id, name, addr)| {
                    // A quarantined instance is frozen: no new requests until released.
                    let up = engine
                        .get(*id)
                        .is_some_and(|v| gantry_host::is_up(v.state) && v.pid.is_some())
                        && !engine.quarantined(*id);
                    (name.clone(), up && addr.is_some())
                })
                .collect();
            if g.sent.as_ref() == Some(&now) {
                continue;
            }
            let instances = g
                .members
                .iter()
                .zip(&now)
                .filter_map(|((_, name, addr), (_, ready))| {
                    addr.map(|addr| Instance {
                        id: name.clone(),
                        addr,
                        ready: *ready,
                    })
                })
                .collect();
            self.handle.set_instances(&g.service, instances);
            g.sent = Some(now);
        }
        let open = !engine.is_shutting_down() && engine.boot_outcome().is_some_and(|o| o.is_up());
        if open != self.open {
            self.handle.set_open(open);
            self.open = open;
        }
    }

    /// Whether the ingress routes `service`.
    pub(super) fn routes(&self, service: &str) -> bool {
        self.groups.iter().any(|g| g.service == service)
    }

    /// The control the API gets.
    pub(super) fn control(&self) -> Arc<dyn gantry_api::IngressControl> {
        Arc::new(Control(self.handle.clone()))
    }
}

/// The units of `service` with their names and upstream addresses.
fn members(plan: &Plan, service: &str) -> Vec<(UnitId, String, Option<SocketAddr>)> {
    plan.units_of(service)
        .unwrap_or_default()
        .into_iter()
        .map(|i| {
            let u = &plan.units[i];
            let addr = u
                .service
                .upstream
                .as_ref()
                .and_then(|a| resolve_upstream(&a.value));
            (UnitId(i), u.name().to_string(), addr)
        })
        .collect()
}

/// `host:port` → an address; a name is resolved once (`localhost:8000`).
fn resolve_upstream(addr: &str) -> Option<SocketAddr> {
    use std::net::ToSocketAddrs as _;
    addr.parse()
        .ok()
        .or_else(|| addr.to_socket_addrs().ok()?.next())
}

struct Control(IngressHandle);

impl gantry_api::IngressControl for Control {
    fn status(&self) -> serde_json::Value {
        serde_json::to_value(self.0.snapshot()).unwrap_or_default()
    }

    fn set_mode(&self, mode: &str, shed_percent: Option<u8>) -> Result<String, String> {
        let mode = match mode {
            "normal" => Mode::Normal,
            "write_drain" => Mode::WriteDrain,
            "brownout" => Mode::Brownout {
                shed_percent: shed_percent.unwrap_or(0).min(100),
            },
            "emergency" => Mode::Emergency,
            other => {
                return Err(format!(
                    "unknown mode `{other}`: expected normal, write_drain, brownout or emergency"
                ));
            }
        };
        self.0.set_mode(mode);
        Ok(mode.as_str().to_string())
    }

    fn render_metrics(&self, out: &mut String) {
        self.0.render_prometheus(out);
    }
}
