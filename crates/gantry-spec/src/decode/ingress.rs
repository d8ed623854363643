//! Decodes `[ingress]` (listeners, limits, routes) and a service's `upstream`, `replicas` and `replica_ports`, and checks routes against the services.

use super::{Decoder, Value, join};
use crate::diag::{Diagnostic, did_you_mean};
use crate::keys;
use crate::model::*;
use crate::source::Source;
use std::borrow::Cow;
use std::net::SocketAddr;
use toml::de::{DeTable, DeValue};

/// `text` with `${PORT}` and `${REPLICA}` replaced by a sample value, so an address or
/// URL written for replicas can be checked like any other.
pub(super) fn with_sample_instance(text: &str) -> Cow<'_, str> {
    if text.contains("${PORT}") || text.contains("${REPLICA}") {
        Cow::Owned(text.replace("${PORT}", "1").replace("${REPLICA}", "1"))
    } else {
        Cow::Borrowed(text)
    }
}

/// Whether `addr` is `host:port` with a host and a port from 1 to 65535.
fn host_port(addr: &str) -> bool {
    let Some((host, port)) = addr.rsplit_once(':') else {
        return false;
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    !host.is_empty() && !host.contains(['/', ' ', '@']) && port.parse::<u16>().is_ok_and(|p| p > 0)
}

impl Decoder<'_> {
    /// `[ingress]`; None when it is not a table.
    pub(super) fn ingress(&mut self, v: &Value<'_>) -> Option<Ingress> {
        let t = self.table(v, "ingress")?;
        self.unknown_keys(t, keys::INGRESS, "ingress");
        let mut listeners = Vec::new();
        if let Some(x) = t.get("listen") {
            let tls = t.get("tls").and_then(|tls| self.ingress_tls(tls));
            if let Some(l) = self.listener_addr(x, "ingress.listen", tls) {
                listeners.push(l);
            }
        } else if let Some(x) = t.get("tls") {
            self.error(
                "missing-key",
                "ingress.tls",
                x.span(),
                "`tls` without `listen`: there is no listener to secure",
                "add listen = \"127.0.0.1:8443\", or give each entry of `listeners` its own cert and key",
            );
        }
        if let Some(x) = t.get("listeners") {
            self.listeners(x, &mut listeners);
        }
        self.duplicate_listeners(&listeners);
        if listeners.is_empty() && !t.contains_key("listen") && !t.contains_key("listeners") {
            self.error(
                "missing-key",
                "ingress",
                v.span(),
                "the ingress has no listener",
                "add listen = \"127.0.0.1:8080\" under [ingress]",
            );
        }
        let retry_budget = t
            .get("retry_budget")
            .and_then(|x| self.percent(x, "ingress.retry_budget"))
            .unwrap_or(keys::INGRESS_RETRY_BUDGET);
        let size = |d: &mut Self, key: &str, min: u64, default: u64| {
            t.get(key)
                .and_then(|x| d.size(x, &join("ingress", key), min))
                .unwrap_or(default)
        };
        let max_body = size(self, "max_body", 0, keys::INGRESS_MAX_BODY);
        let max_header = size(self, "max_header", 1024, keys::INGRESS_MAX_HEADER);
        let header_timeout = self
            .positive_duration(t, "ingress", "header_timeout")
            .unwrap_or(Dur(keys::INGRESS_HEADER_TIMEOUT));
        let drain_timeout = t
            .get("drain_timeout")
            .and_then(|x| self.duration(x, "ingress.drain_timeout"))
            .unwrap_or(Dur(keys::INGRESS_DRAIN_TIMEOUT));
        let maintenance_page = t
            .get("maintenance_page")
            .and_then(|x| self.string(x, "ingress.maintenance_page"))
            .filter(|p| {
                let empty = p.value.trim().is_empty();
                if empty {
                    self.error(
                        "invalid-value",
                        "ingress.maintenance_page",
                        p.span.clone(),
                        "`maintenance_page` is empty",
                        "name an HTML file (relative to this file), or remove the key for the built-in page",
                    );
                }
                !empty
            });
        let access_log = t
            .get("access_log")
            .and_then(|x| self.boolean(x, "ingress.access_log"))
            .unwrap_or(true);
        let listen_when_ready = t
            .get("listen_when_ready")
            .and_then(|x| self.boolean(x, "ingress.listen_when_ready"))
            .unwrap_or(false);
        let threads = t
            .get("threads")
            .and_then(|x| self.int(x, "ingress.threads", 1, 64))
            .and_then(|n| u32::try_from(n).ok());
        let mut routes = Vec::new();
        if let Some(x) = t.get("routes") {
            match x.get_ref() {
                DeValue::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Some(r) = self.route(item, &format!("ingress.routes[{i}]")) {
                            routes.push(r);
                        }
                    }
                }
                _ => self.wrong_type(
                    "ingress.routes",
                    x,
                    "an array of tables ([[ingress.routes]])",
                ),
            }
        }
        Some(Ingress {
            span: v.span(),
            listeners,
            retry_budget,
            max_body,
            max_header,
            header_timeout,
            drain_timeout,
            maintenance_page,
            access_log,
            listen_when_ready,
            threads,
            routes,
        })
    }

    /// A duration key that must be greater than zero.
    fn positive_duration(&mut self, t: &DeTable<'_>, path: &str, key: &str) -> Option<Dur> {
        let x = t.get(key)?;
        let p = join(path, key);
        let d = self.duration(x, &p)?;
        if d.0.is_zero() {
            self.error(
                "out-of-range",
                &p,
                x.span(),
                format!("{key} must be greater than zero"),
                "use at least 1ms, e.g. \"10s\"",
            );
            return None;
        }
        Some(d)
    }

    /// `"10%"` (or `"2.5%"`): a percentage from 0 to 100.
    pub(super) fn percent(&mut self, v: &Value<'_>, path: &str) -> Option<f64> {
        let s = self.string(v, path)?;
        let n = s
            .value
            .trim()
            .strip_suffix('%')
            .and_then(|n| n.trim().parse::<f64>().ok())
            .filter(|n| n.is_finite() && (0.0..=100.0).contains(n));
        if n.is_none() {
            self.error(
                "invalid-value",
                path,
                v.span(),
                format!("`{}` is not a percentage from 0% to 100%", s.value),
                "write a percentage such as \"10%\" (\"0%\" turns retries off)",
            );
        }
        n
    }

    fn listener_addr(
        &mut self,
        x: &Value<'_>,
        path: &str,
        tls: Option<ListenerTls>,
    ) -> Option<Listener> {
        let listen = self.string(x, path)?;
        match listen.value.parse::<SocketAddr>() {
            Ok(addr) => Some(Listener { listen, addr, tls }),
            Err(_) => {
                self.error(
                    "invalid-address",
                    path,
                    x.span(),
                    format!("`{}` is not an IP address and port", listen.value),
                    "write ip:port, e.g. \"127.0.0.1:8080\" or \"[::1]:8080\" (a host name is not accepted: say which address to bind)",
                );
                None
            }
        }
    }

    /// `tls = { cert, key }` of the `listen` listener.
    fn ingress_tls(&mut self, v: &Value<'_>) -> Option<ListenerTls> {
        let t = self.table(v, "ingress.tls")?;
        self.unknown_keys(t, keys::INGRESS_TLS, "ingress.tls");
        self.cert_key(t, "ingress.tls")
    }

    /// `cert` and `key` of a table: both or neither; an empty path is an error.
    fn cert_key(&mut self, t: &DeTable<'_>, path: &str) -> Option<ListenerTls> {
        let file = |d: &mut Self, key: &str| {
            d.pem_path(
                t,
                path,
                key,
                "write the path of a PEM file (relative to this file)",
            )
        };
        let cert = file(self, "cert");
        let key = file(self, "key");
        for (have, missing) in [("cert", "key"), ("key", "cert")] {
            if let Some((k, _)) = t.get_key_value(have)
                && !t.contains_key(missing)
            {
                self.error(
                    "missing-key",
                    &join(path, have),
                    k.span(),
                    format!("`{have}` without `{missing}`: a TLS listener needs both"),
                    format!("add {missing} = \"tls/{missing}.pem\" (PEM), or remove {have}"),
                );
            }
        }
        Some(ListenerTls {
            cert: cert?,
            key: key?,
        })
    }

    fn listeners(&mut self, v: &Value<'_>, out: &mut Vec<Listener>) {
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(
                "ingress.listeners",
                v,
                "an array of tables such as [{ listen = \"127.0.0.1:8080\" }]",
            );
            return;
        };
        for (i, item) in items.iter().enumerate() {
            let path = format!("ingress.listeners[{i}]");
            let Some(t) = self.table(item, &path) else {
                continue;
            };
            self.unknown_keys(t, keys::LISTENER, &path);
            let tls = self.cert_key(t, &path);
            match t.get("listen") {
                Some(x) => {
                    if let Some(l) = self.listener_addr(x, &join(&path, "listen"), tls) {
                        out.push(l);
                    }
                }
                None => self.error(
                    "missing-key",
                    &path,
                    item.span(),
                    "a listener needs `listen`",
                    "add listen = \"127.0.0.1:8080\"",
                ),
            }
        }
    }

    /// Two listeners on one address cannot both bind.
    fn duplicate_listeners(&mut self, listeners: &[Listener]) {
        for (i, l) in listeners.iter().enumerate() {
            if let Some(first) = listeners[..i].iter().find(|f| f.addr == l.addr) {
                self.error(
                    "duplicate-listener",
                    "ingress.listeners",
                    l.listen.span.clone(),
                    if first.listen.value == l.listen.value {
                        format!("`{}` is listed twice", l.listen.value)
                    } else {
                        format!(
                            "`{}` is the same address as `{}`",
                            l.listen.value, first.listen.value
                        )
                    },
                    "give each listener its own address, or remove one",
                );
            }
        }
    }

    fn route(&mut self, v: &Value<'_>, path: &str) -> Option<Route> {
        let t = self.table(v, path)?;
        self.unknown_keys(t, keys::ROUTE, path);
        let p = |k: &str| join(path, k);
        let route_path = t.get("path").and_then(|x| self.string(x, &p("path")));
        if let Some(rp) = &route_path
            && !rp.value.starts_with('/')
        {
            self.error(
                "invalid-value",
                &p("path"),
                rp.span.clone(),
                format!("`{}` is not a path: it must start with `/`", rp.value),
                format!("write path = \"/{}\"", rp.value.trim_start_matches('/')),
            );
        }
        let host = t
            .get("host")
            .and_then(|x| self.string(x, &p("host")))
            .map(|h| Sp::new(h.value.trim().to_ascii_lowercase(), h.span));
        if let Some(h) = &host
            && (h.value.is_empty() || h.value.contains(['/', ':', ' ', '@']))
        {
            self.error(
                "invalid-value",
                &p("host"),
                h.span.clone(),
                format!("`{}` is not a host name", h.value),
                "write the name alone, without scheme, port or path, e.g. host = \"api.example.com\"",
            );
        }
        if route_path.is_none()
            && host.is_none()
            && !t.contains_key("path")
            && !t.contains_key("host")
        {
            self.error(
                "route-match",
                path,
                v.span(),
                "the route matches nothing: it has neither `path` nor `host`",
                "add path = \"/\" to send every request to the service, or a host",
            );
        }
        let service = match t.get("service") {
            Some(x) => self.string(x, &p("service"))?,
            None => {
                self.error(
                    "missing-key",
                    path,
                    v.span(),
                    "the route names no service",
                    "add service = \"NAME\" (a [services.NAME] table)",
                );
                return None;
            }
        };
        let timeout = self
            .positive_duration(t, path, "timeout")
            .unwrap_or(Dur(keys::ROUTE_TIMEOUT));
        let connect_timeout = self
            .positive_duration(t, path, "connect_timeout")
            .unwrap_or(Dur(keys::ROUTE_CONNECT_TIMEOUT));
        let flag = |d: &mut Self, key: &str| {
            t.get(key)
                .and_then(|x| d.boolean(x, &p(key)))
                .unwrap_or(false)
        };
        let strip_prefix = flag(self, "strip_prefix");
        let shed_in_brownout = flag(self, "shed_in_brownout");
        let write_allow = t
            .get("write_allow")
            .map(|x| self.str_list(x, &p("write_allow")))
            .unwrap_or_default();
        for w in &write_allow {
            if !w.value.starts_with('/') {
                self.error(
                    "invalid-value",
                    &p("write_allow"),
                    w.span.clone(),
                    format!("`{}` is not a path: it must start with `/`", w.value),
                    format!("write \"/{}\"", w.value.trim_start_matches('/')),
                );
            }
        }
        if strip_prefix && route_path.is_none() {
            self.diags.push(
                Diagnostic::warning("ignored-key", "strip_prefix without `path` strips nothing")
                    .key(p("strip_prefix"))
                    .at(t.get("strip_prefix").map_or(v.span(), |x| x.span()))
                    .hint("add a path, or remove strip_prefix"),
            );
        }
        Some(Route {
            span: v.span(),
            path: route_path,
            host,
            service,
            strip_prefix,
            timeout,
            connect_timeout,
            shed_in_brownout,
            write_allow,
        })
    }

    /// A service's `upstream`: `host:port`, where the port may be `${PORT}`.
    pub(super) fn upstream(&mut self, v: &Value<'_>, path: &str) -> Option<Sp<String>> {
        let s = self.string(v, path)?;
        if !host_port(&with_sample_instance(&s.value)) {
            self.error(
                "invalid-address",
                path,
                v.span(),
                format!("`{}` is not host:port", s.value),
                "write where the service listens, e.g. upstream = \"127.0.0.1:8000\" (with replicas: \"127.0.0.1:${PORT}\")",
            );
            return None;
        }
        Some(s)
    }

    /// `replicas` and `replica_ports` of service `path`.
    pub(super) fn replicas(&mut self, t: &DeTable<'_>, path: &str, kind: Kind) -> Option<Replicas> {
        let ports_key = join(path, "replica_ports");
        let ports = t
            .get("replica_ports")
            .and_then(|x| self.port_range(x, &ports_key));
        let Some(x) = t.get("replicas") else {
            if let Some(r) = &ports {
                self.diags.push(
                    Diagnostic::warning("ignored-key", "replica_ports without replicas is ignored")
                        .key(ports_key)
                        .at(r.span.clone())
                        .hint("add replicas = 2 (or more), or remove replica_ports"),
                );
            }
            return None;
        };
        let key = join(path, "replicas");
        let n = self.int(x, &key, 0, keys::REPLICAS_MAX)?;
        if n == 0 {
            self.error(
                "out-of-range",
                &key,
                x.span(),
                "replicas = 0 runs nothing",
                "use 1 or more; to keep the service from starting, leave it out of the profile (gantry up --except NAME)",
            );
            return None;
        }
        if kind != Kind::Process {
            let what = match kind {
                Kind::External => "an external service is not started by gantry",
                _ => "a one-shot runs once",
            };
            self.error(
                "replicas-kind",
                &key,
                x.span(),
                format!("replicas applies to kind = \"process\" only: {what}"),
                "remove replicas, or make the service a process",
            );
            return None;
        }
        let count = n as u32;
        if let Some(r) = &ports
            && r.len() < count
        {
            self.error(
                "replica-ports",
                &ports_key,
                r.span.clone(),
                format!(
                    "{count} replicas need {count} ports, the range {}-{} holds {}",
                    r.first,
                    r.last,
                    r.len()
                ),
                format!(
                    "widen the range to at least \"{}-{}\", or lower replicas",
                    r.first,
                    u32::from(r.first) + count - 1
                ),
            );
        }
        if ports.is_none()
            && !t.contains_key("replica_ports")
            && let Some(span) = self.port_used.clone()
        {
            self.error(
                "replica-ports",
                path,
                span,
                "`${PORT}` is used but the service has no replica_ports to take ports from",
                "add replica_ports = \"9100-9199\" (instance i gets the i-th port)",
            );
        }
        Some(Replicas {
            count: Sp::new(count, x.span()),
            ports,
        })
    }

    /// `"9100-9199"`: two ports from 1 to 65535, the first not above the second.
    fn port_range(&mut self, v: &Value<'_>, path: &str) -> Option<PortRange> {
        let s = self.string(v, path)?;
        let parsed = s.value.split_once('-').and_then(|(a, b)| {
            let a = a.trim().parse::<u16>().ok().filter(|p| *p > 0)?;
            let b = b.trim().parse::<u16>().ok().filter(|p| *p > 0)?;
            Some((a, b))
        });
        match parsed {
            Some((first, last)) if first <= last => Some(PortRange {
                first,
                last,
                span: v.span(),
            }),
            Some((first, last)) => {
                self.error(
                    "replica-ports",
                    path,
                    v.span(),
                    format!("the range `{}` runs backwards", s.value),
                    format!("write the lower port first: \"{last}-{first}\""),
                );
                None
            }
            None => {
                self.error(
                    "replica-ports",
                    path,
                    v.span(),
                    format!("`{}` is not a port range", s.value),
                    "write FIRST-LAST with ports from 1 to 65535, e.g. replica_ports = \"9100-9199\"",
                );
                None
            }
        }
    }

    /// Across services: replica port ranges that overlap each other or a service's
    /// `ports`, and instance names (`api.1`) taken by a service of that name.
    pub(super) fn check_instances(&mut self, spec: &Spec) {
        let ranged: Vec<(&Service, &PortRange, u32)> = spec
            .services
            .iter()
            .filter_map(|s| {
                let r = s.replicas.as_ref()?;
                Some((s, r.ports.as_ref()?, r.count.value))
            })
            .collect();
        for (i, (s, r, n)) in ranged.iter().enumerate() {
            let used = |r: &PortRange, n: u32| (r.first, r.port(n).unwrap_or(r.last));
            let (lo, hi) = used(r, *n);
            for (other, or, on) in &ranged[..i] {
                let (olo, ohi) = used(or, *on);
                if lo <= ohi && olo <= hi {
                    self.error(
                        "port-conflict",
                        &format!("services.{}.replica_ports", s.name.value),
                        r.span.clone(),
                        format!(
                            "the instances of `{}` (ports {lo}-{hi}) and of `{}` (ports {olo}-{ohi}) would share ports",
                            s.name.value, other.name.value
                        ),
                        "give each replicated service its own range",
                    );
                }
            }
            for other in &spec.services {
                if let Some(p) = other.ports.iter().find(|p| (lo..=hi).contains(*p)) {
                    self.error(
                        "port-conflict",
                        &format!("services.{}.replica_ports", s.name.value),
                        r.span.clone(),
                        format!(
                            "port {p} of `{}`'s instances is also in the ports of `{}`",
                            s.name.value, other.name.value
                        ),
                        "move the range, or the port",
                    );
                }
            }
        }
        for s in &spec.services {
            let Some(r) = &s.replicas else { continue };
            for i in 1..=r.count.value {
                let name = instance_name(&s.name.value, i);
                if let Some(taken) = spec.services.iter().find(|o| o.name.value == name) {
                    self.error(
                        "duplicate-name",
                        &format!("services.{}", taken.name.value),
                        taken.name.span.clone(),
                        format!(
                            "`{name}` is the name of an instance of `{}` (replicas = {})",
                            s.name.value, r.count.value
                        ),
                        "rename this service; instances are named NAME.1 to NAME.N",
                    );
                }
            }
        }
    }
}

/// The name of instance `replica` (1-based) of service `service`: `api.1`. A valid service
/// name (so it fits every place a unit name goes: URL paths, log file names, metrics
/// labels) that needs no escaping anywhere.
pub fn instance_name(service: &str, replica: u32) -> String {
    format!("{service}.{replica}")
}

/// Routes against the services: an unknown service ("did you mean"), a service that
/// cannot be reached (no upstream, no replica ports) or does not serve (a task), and two
/// routes with the same host and path.
pub(super) fn check_routes(spec: &Spec, source: &Source, diags: &mut Vec<Diagnostic>) {
    let Some(ingress) = &spec.ingress else {
        return;
    };
    for (i, r) in ingress.routes.iter().enumerate() {
        let key = format!("ingress.routes[{i}].service");
        let Some(s) = spec
            .services
            .iter()
            .find(|s| s.name.value == r.service.value)
        else {
            let names = spec.services.iter().map(|s| s.name.value.as_str());
            let d = Diagnostic::error(
                "unknown-service",
                format!("the route names unknown service `{}`", r.service.value),
            )
            .key(key)
            .at(r.service.span.clone());
            diags.push(match did_you_mean(&r.service.value, names) {
                Some(m) => d.hint(format!("did you mean `{m}`?")),
                None => d.hint("use the name of a [services.NAME] table"),
            });
            continue;
        };
        if s.kind.is_oneshot() {
            diags.push(
                Diagnostic::error(
                    "route-target",
                    format!(
                        "`{}` is a one-shot (kind = \"{}\"); it serves no requests",
                        s.name.value,
                        if s.kind == Kind::Migrate {
                            "migrate"
                        } else {
                            "task"
                        }
                    ),
                )
                .key(key)
                .at(r.service.span.clone())
                .hint("route to a process or external service"),
            );
            continue;
        }
        let by_range = s.replicas.as_ref().is_some_and(|x| x.ports.is_some());
        if s.upstream.is_none() && !by_range {
            let (line, _) = source.line_col(s.name.span.start);
            diags.push(
                Diagnostic::error(
                    "no-upstream",
                    format!(
                        "service `{}` ({}:{line}) has no address for the ingress to send to",
                        s.name.value, source.path
                    ),
                )
                .key(key)
                .at(r.service.span.clone())
                .hint(format!(
                    "add upstream = \"127.0.0.1:8000\" to [services.{}] (or replicas with replica_ports)",
                    s.name.value
                )),
            );
        }
    }
    // Same host and same prefix twice: the second can never be chosen.
    let norm = |p: &Option<Sp<String>>| {
        p.as_ref().map_or_else(
            || "/".to_string(),
            |p| {
                let t = p.value.trim_end_matches('/');
                if t.is_empty() {
                    "/".into()
                } else {
                    t.to_string()
                }
            },
        )
    };
    for (i, r) in ingress.routes.iter().enumerate() {
        let host = r.host.as_ref().map(|h| h.value.as_str());
        let path = norm(&r.path);
        if let Some((j, first)) = ingress.routes[..i].iter().enumerate().find(|(_, f)| {
            f.host.as_ref().map(|h| h.value.as_str()) == host && norm(&f.path) == path
        }) {
            let (line, _) = source.line_col(first.span.start);
            let what = match host {
                Some(h) => format!("host `{h}` and path `{path}`"),
                None => format!("path `{path}`"),
            };
            diags.push(
                Diagnostic::error(
                    "overlapping-routes",
                    format!(
                        "routes {j} ({}:{line}) and {i} both match {what}; the second is never used",
                        source.path
                    ),
                )
                .key(format!("ingress.routes[{i}]"))
                .at(r.path.as_ref().or(r.host.as_ref()).map_or(r.span.clone(), |x| x.span.clone()))
                .hint("remove one, or give them different paths or hosts"),
            );
        }
    }
}
