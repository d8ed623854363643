//! The request path: route matching, the open gate, modes, limits, balancing, retries
//! under the budget, upgrades, and the golden signals of every request.

use crate::access_log::{AccessLog, Line};
use crate::config::{Mode, RouteConfig, path_matches};
use crate::headers::{Forwarding, strip_hop_by_hop, wants_upgrade};
use crate::metrics::{RouteMetrics, Shed};
use crate::pool::{Leased, Pool};
use crate::timer::Coarse;
use crate::upstream::{InFlight, InstanceState, NoPick, Registry, ServiceSlot, pick, rand_below};
use bytes::Bytes;
use gantry_resilience::Outcome;
use gantry_resilience::retry::RetryBudget;
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Full, Limited, combinators::BoxBody};
use hyper::body::{Body, Incoming};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::time::Instant;

/// Boxed error of the bodies the proxy moves.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Body type both ways.
pub(crate) type ProxyBody = BoxBody<Bytes, BoxError>;

/// One route, ready to serve.
pub(crate) struct Route {
    pub(crate) cfg: RouteConfig,
    pub(crate) host: Option<String>,
    pub(crate) slot: Arc<ServiceSlot>,
    pub(crate) metrics: RouteMetrics,
}

/// State every connection shares.
pub(crate) struct Shared {
    pub(crate) open: AtomicBool,
    pub(crate) mode: AtomicU32,
    pub(crate) routes: Vec<Route>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) budget: RetryBudget,
    pub(crate) max_body: u64,
    pub(crate) retry_body_cap: usize,
    pub(crate) retry_after: HeaderValue,
    pub(crate) retry_after_secs: u32,
    pub(crate) health_paths: Vec<String>,
    pub(crate) maintenance: Bytes,
    pub(crate) access_log: Option<AccessLog>,
    pub(crate) pool: Pool,
    pub(crate) outlier: crate::config::OutlierConfig,
}

impl Shared {
    /// Host (without port, case-insensitive) then longest prefix at a segment boundary.
    fn route(&self, host: Option<&str>, path: &str) -> Option<usize> {
        let host = host.map(strip_port);
        let mut best: Option<(usize, &Route)> = None;
        for (i, r) in self.routes.iter().enumerate() {
            if let Some(rh) = &r.host {
                match host {
                    Some(h) if h.eq_ignore_ascii_case(rh) => {}
                    _ => continue,
                }
            }
            if !prefix_matches(&r.cfg.path_prefix, path) {
                continue;
            }
            let better = match best {
                None => true,
                Some((_, b)) => {
                    (r.host.is_some(), r.cfg.path_prefix.len())
                        > (b.host.is_some(), b.cfg.path_prefix.len())
                }
            };
            if better {
                best = Some((i, r));
            }
        }
        best.map(|(i, _)| i)
    }
}

fn strip_port(h: &str) -> &str {
    if let Some(rest) = h.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match h.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => h,
    }
}

pub(crate) fn prefix_matches(prefix: &str, path: &str) -> bool {
    let p = prefix.trim_end_matches('/');
    if p.is_empty() {
        return true;
    }
    path == p || (path.starts_with(p) && path.as_bytes().get(p.len()) == Some(&b'/'))
}

fn strip(prefix: &str, path: &str) -> String {
    let p = prefix.trim_end_matches('/');
    let rest = path.get(p.len()..).unwrap_or("");
    if rest.starts_with('/') {
        rest.to_owned()
    } else {
        format!("/{rest}")
    }
}

fn full(b: impl Into<Bytes>) -> ProxyBody {
    Full::new(b.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn unavailable(
    shared: &Shared,
    ctype: &'static str,
    body: impl Into<Bytes>,
) -> Response<ProxyBody> {
    let mut r = Response::new(full(body));
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    r.headers_mut()
        .insert(header::RETRY_AFTER, shared.retry_after.clone());
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn plain(status: StatusCode, msg: String) -> Response<ProxyBody> {
    let mut r = Response::new(full(msg));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Decrements a route's in-flight count when the response body ends (or is dropped).
struct RouteGuard(Arc<Shared>, usize);

impl Drop for RouteGuard {
    fn drop(&mut self) {
        self.0.routes[self.1]
            .metrics
            .signals
            .in_flight
            .fetch_sub(1, Relaxed);
    }
}

fn is_write(m: &Method) -> bool {
    matches!(
        *m,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

fn is_idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    )
}

/// One client connection: who it is, and the forwarding headers built for it once.
pub(crate) struct Conn {
    pub(crate) peer: SocketAddr,
    pub(crate) forwarding: Forwarding,
    /// The runtime's coarse timer (request timeouts).
    pub(crate) timer: Coarse,
}

impl Conn {
    pub(crate) fn new(peer: SocketAddr, tls: bool, timer: Coarse) -> Self {
        Conn {
            peer,
            forwarding: Forwarding::new(peer.ip(), tls),
            timer,
        }
    }
}

/// Serves one request; never fails (every error is an HTTP answer).
pub(crate) async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    conn: Arc<Conn>,
) -> Result<Response<ProxyBody>, Infallible> {
    let start = Instant::now();
    let peer = conn.peer;
    // The Host header (a cheap clone of the parsed bytes), else the request target's authority.
    let host_header = req.headers().get(header::HOST).cloned();
    let has_host_header = host_header.is_some();
    let host: Option<HeaderValue> = host_header.or_else(|| {
        req.uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    let host_str = host.as_ref().and_then(|h| h.to_str().ok());
    let Some(idx) = shared.route(host_str, req.uri().path()) else {
        let msg = format!(
            "gantry ingress: no route for host {:?} and path {:?}; add an [[ingress.routes]] entry that matches it\n",
            host_str.unwrap_or(""),
            req.uri().path()
        );
        return Ok(plain(StatusCode::NOT_FOUND, msg));
    };
    let route = &shared.routes[idx];
    route.metrics.signals.in_flight.fetch_add(1, Relaxed);
    let guard = RouteGuard(shared.clone(), idx);
    let method = req.method().clone();
    let path = shared
        .access_log
        .is_some()
        .then(|| req.uri().path().to_owned());
    let head = Head {
        host: host.as_ref(),
        has_host_header,
    };
    let (resp, instance, done) = serve(&shared, route, guard, req, &conn, head).await;
    let elapsed = done
        .unwrap_or_else(Instant::now)
        .saturating_duration_since(start);
    let status = resp.status().as_u16();
    route.metrics.signals.record(status, elapsed);
    if let Some(log) = &shared.access_log {
        log.send(Line {
            route: idx,
            method,
            path: path.unwrap_or_default(),
            status,
            micros: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            instance: instance.map(|i| i.id.clone()),
            client: peer.ip(),
        });
    }
    Ok(resp)
}

/// Answers the request itself when the gate is closed or the mode sheds it.
fn gate(shared: &Shared, route: &Route, req: &Request<Incoming>) -> Option<Response<ProxyBody>> {
    let svc = &route.cfg.service;
    if !shared.open.load(Relaxed) {
        route.metrics.shed(Shed::NotOpen);
        let body = format!(
            "gantry ingress is not open yet: it waits for the boot to be GO before route {:?} sends traffic to service {:?}\n",
            route.cfg.name, svc
        );
        return Some(unavailable(shared, "text/plain; charset=utf-8", body));
    }
    let path = req.uri().path();
    match Mode::decode(shared.mode.load(Relaxed)) {
        Mode::Normal => None,
        Mode::Emergency => {
            if shared.health_paths.iter().any(|p| path_matches(p, path)) {
                return None;
            }
            route.metrics.shed(Shed::Emergency);
            Some(unavailable(
                shared,
                "text/html; charset=utf-8",
                shared.maintenance.clone(),
            ))
        }
        Mode::WriteDrain => {
            if !is_write(req.method())
                || route.cfg.write_allow.iter().any(|p| path_matches(p, path))
            {
                return None;
            }
            route.metrics.shed(Shed::WriteDrain);
            let body = format!(
                "{{\"error\":\"write_drain\",\"message\":\"writes are paused (write_drain mode): this {} was not applied; reads still work, retry later\",\"route\":{},\"path\":{},\"retry_after\":{}}}\n",
                req.method(),
                json_str(&route.cfg.name),
                json_str(path),
                shared.retry_after_secs
            );
            Some(unavailable(shared, "application/json", body))
        }
        Mode::Brownout { shed_percent } => {
            if !route.cfg.shed_in_brownout
                && (shed_percent == 0 || rand_below(100) >= usize::from(shed_percent))
            {
                return None;
            }
            route.metrics.shed(Shed::Brownout);
            let body = format!(
                "{{\"error\":\"brownout\",\"message\":\"this request is shed while the stack is in brownout; retry later\",\"route\":{},\"retry_after\":{}}}\n",
                json_str(&route.cfg.name),
                shared.retry_after_secs
            );
            Some(unavailable(shared, "application/json", body))
        }
    }
}

/// A response, the instance that gave it (if any), and when its head came back (one clock
/// reading for the instance's and the route's latency).
type Served = (
    Response<ProxyBody>,
    Option<Arc<InstanceState>>,
    Option<Instant>,
);

/// What `handle` already read of the request's head.
struct Head<'a> {
    /// The Host header, else the request target's authority.
    host: Option<&'a HeaderValue>,
    /// Whether the request carries a Host header (else the upstream gets the instance's).
    has_host_header: bool,
}

async fn serve(
    shared: &Arc<Shared>,
    route: &Route,
    guard: RouteGuard,
    mut req: Request<Incoming>,
    conn: &Conn,
    head_seen: Head<'_>,
) -> Served {
    let host = head_seen.host;
    if let Some(r) = gate(shared, route, &req) {
        return (r, None, None);
    }
    let svc = &route.cfg.service;
    let too_large = || {
        plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "gantry ingress: the request body is larger than the {} byte limit\n",
                shared.max_body
            ),
        )
    };
    let declared = req.body().size_hint().exact();
    if declared.is_some_and(|n| n > shared.max_body) {
        return (too_large(), None, None);
    }

    // The upstream request's head.
    let upgrade = wants_upgrade(req.headers());
    let mut client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    // Without strip_prefix the client's path and query are forwarded as they are (no copy).
    let pq = match (route.cfg.strip_prefix, parts.uri.path_and_query()) {
        (false, Some(pq)) => pq.clone(),
        _ => {
            let p = if route.cfg.strip_prefix {
                strip(&route.cfg.path_prefix, parts.uri.path())
            } else {
                parts.uri.path().to_owned()
            };
            let p = match parts.uri.query() {
                Some(q) => format!("{p}?{q}"),
                None => p,
            };
            match http::uri::PathAndQuery::try_from(p) {
                Ok(pq) => pq,
                Err(_) => {
                    let msg = "gantry ingress: the request path cannot be forwarded\n".to_owned();
                    return (plain(StatusCode::BAD_REQUEST, msg), None, None);
                }
            }
        }
    };
    // A Host named in Connection is gone now: then the upstream gets the instance's.
    let has_host_header = if strip_hop_by_hop(&mut parts.headers, upgrade) {
        parts.headers.contains_key(header::HOST)
    } else {
        head_seen.has_host_header
    };
    conn.forwarding.apply(&mut parts.headers, host);

    // A body is kept for a retry only when it is small and the method idempotent.
    let empty = body.is_end_stream() || declared == Some(0);
    let retryable_method = is_idempotent(&parts.method) && !upgrade;
    let mut retry_body: Option<Bytes> = None;
    let mut stream_body: Option<ProxyBody> = None;
    if empty {
        retry_body = Some(Bytes::new());
    } else if retryable_method && declared.is_some_and(|n| n <= shared.retry_body_cap as u64) {
        match Limited::new(body, shared.retry_body_cap).collect().await {
            Ok(c) => retry_body = Some(c.to_bytes()),
            Err(_) => {
                let msg = "gantry ingress: the request body was cut short\n".to_owned();
                return (plain(StatusCode::BAD_REQUEST, msg), None, None);
            }
        }
    } else {
        let cap = usize::try_from(shared.max_body).unwrap_or(usize::MAX);
        stream_body = Some(Limited::new(body, cap).boxed());
    }
    // A retry goes to another instance: with one, there is none to go to, and the copy of
    // the head a retry needs (~1,000 instructions, 4 % of a request) is not made.
    let attempts =
        if retryable_method && retry_body.is_some() && route.slot.instances.load().len() > 1 {
            3
        } else {
            1
        };
    shared.budget.deposit();

    let side = crate::upstream::side(&route.slot, sticky_key(&route.slot, &parts.headers));
    let mut last: Option<Arc<InstanceState>> = None;
    let mut guard = Some(guard);
    let mut failure = String::new();
    let mut timed_out = false;
    for attempt in 0..attempts {
        let (inst, permit) = match pick(&route.slot, last.as_ref(), side) {
            Ok(p) => p,
            Err(why) if attempt == 0 => {
                route.metrics.shed(Shed::NoInstance);
                let body = match why {
                    NoPick::NoneReady => format!(
                        "gantry ingress: service {svc:?} has no ready instance (route {:?}); it waits for one to pass its readiness gate\n",
                        route.cfg.name
                    ),
                    NoPick::AllBroken => format!(
                        "gantry ingress: every instance of service {svc:?} is failing and its circuit is open (route {:?}); retry shortly\n",
                        route.cfg.name
                    ),
                };
                return (
                    unavailable(shared, "text/plain; charset=utf-8", body),
                    None,
                    None,
                );
            }
            Err(_) => break,
        };
        let held = InFlight::new(inst.clone());
        if attempt > 0 {
            route.metrics.signals.retries.fetch_add(1, Relaxed);
            inst.signals.retries.fetch_add(1, Relaxed);
        }
        // The head is copied only while a retry may still need it.
        let mut head = if attempt + 1 < attempts {
            parts.clone()
        } else {
            std::mem::replace(&mut parts, Request::new(()).into_parts().0)
        };
        // Origin-form toward the upstream; the client's Host is kept, or the instance's given.
        head.uri = Uri::from(pq.clone());
        if !has_host_header && let Ok(h) = HeaderValue::from_str(inst.authority.as_str()) {
            head.headers.insert(header::HOST, h);
        }
        let body = match (&retry_body, stream_body.take()) {
            // An empty body boxes a zero-sized value: no allocation.
            (Some(b), _) if b.is_empty() => Empty::new()
                .map_err(|never: Infallible| match never {})
                .boxed(),
            (Some(b), _) => full(b.clone()),
            (None, Some(s)) => s,
            (None, None) => break,
        };
        let up = Request::from_parts(head, body);
        let sent = Instant::now();
        let result = {
            let expiry = conn.timer.sleep_until(sent + route.cfg.request_timeout);
            tokio::select! {
                biased;
                r = shared.pool.send(&inst, up, route.cfg.connect_timeout, sent) => Ok(r),
                () = expiry => Err(()),
            }
        };
        match result {
            Ok(Ok((mut resp, lease))) => {
                let status = resp.status();
                // 5xx counts against the breaker; 429 and other 4xx do not.
                let failed = status.is_server_error();
                permit.record(if failed {
                    Outcome::Failure
                } else {
                    Outcome::Success
                });
                inst.outlier_record(failed, &route.slot, &shared.outlier);
                let done = Instant::now();
                inst.signals
                    .record(status.as_u16(), done.saturating_duration_since(sent));
                let switching = status == StatusCode::SWITCHING_PROTOCOLS;
                if switching && let Some(cu) = client_upgrade.take() {
                    let su = hyper::upgrade::on(&mut resp);
                    tokio::spawn(async move {
                        if let (Ok(c), Ok(s)) = (cu.await, su.await) {
                            let _ = tokio::io::copy_bidirectional(
                                &mut TokioIo::new(c),
                                &mut TokioIo::new(s),
                            )
                            .await;
                        }
                    });
                }
                let (mut rp, rb) = resp.into_parts();
                let _ = strip_hop_by_hop(&mut rp.headers, switching);
                let Some(g) = guard.take() else { break };
                let body = Leased {
                    inner: rb,
                    lease,
                    ended: false,
                    _guards: (held, g),
                }
                .boxed();
                return (Response::from_parts(rp, body), Some(inst), Some(done));
            }
            Ok(Err(e)) => {
                permit.record(Outcome::Failure);
                inst.outlier_record(true, &route.slot, &shared.outlier);
                inst.signals.errors.fetch_add(1, Relaxed);
                if error_is_too_large(&e) {
                    return (too_large(), Some(inst), None);
                }
                failure = format!("{} at {}: {}", inst.id, inst.addr, error_chain(&e));
                timed_out = false;
            }
            Err(_) => {
                permit.record(Outcome::Failure);
                inst.outlier_record(true, &route.slot, &shared.outlier);
                inst.signals.errors.fetch_add(1, Relaxed);
                failure = format!(
                    "{} at {} gave no response within {:?}",
                    inst.id, inst.addr, route.cfg.request_timeout
                );
                timed_out = true;
            }
        }
        last = Some(inst);
        if attempt + 1 < attempts && !shared.budget.try_withdraw() {
            break;
        }
    }
    let (status, what) = if timed_out {
        (StatusCode::GATEWAY_TIMEOUT, "timed out")
    } else {
        (StatusCode::BAD_GATEWAY, "failed")
    };
    let msg = format!("gantry ingress: the upstream of service {svc:?} {what}: {failure}\n");
    (plain(status, msg), last, None)
}

/// The hash of the client's sticky cookie or header for the service's split (FNV-1a, stable
/// across restarts of gantry, so a client keeps its side); `None` without a split or value.
fn sticky_key(slot: &crate::upstream::ServiceSlot, headers: &http::HeaderMap) -> Option<u64> {
    let split = slot.split.load();
    let value: &[u8] = match split.sticky.as_ref()? {
        crate::config::Sticky::Header(name) => headers.get(name.as_str())?.as_bytes(),
        crate::config::Sticky::Cookie(name) => headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| {
                let (k, v) = c.trim().split_once('=')?;
                (k == name).then_some(v.as_bytes())
            })?,
    };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in value {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    Some(h)
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn error_is_too_large(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if c.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = c.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_at_segment_boundaries() {
        assert!(prefix_matches("/api", "/api"));
        assert!(prefix_matches("/api", "/api/x"));
        assert!(prefix_matches("/api/", "/api/x"));
        assert!(!prefix_matches("/api", "/apix"));
        assert!(prefix_matches("/", "/anything"));
        assert_eq!(strip("/api", "/api/x"), "/x");
        assert_eq!(strip("/api", "/api"), "/");
        assert_eq!(strip_port("Example.com:8080"), "Example.com");
        assert_eq!(strip_port("[::1]:80"), "::1");
    }
}
