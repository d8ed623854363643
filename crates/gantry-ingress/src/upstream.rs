//! Upstream side: the services and their instances (swapped lock-free), power-of-two-choices
//! balancing on in-flight counts, per-instance circuit breakers, and the count of open
//! connections per instance (kept by the pool).

use crate::config::{BreakerConfig, Instance, OutlierConfig, Split};
use crate::metrics::Signals;
use arc_swap::ArcSwap;
use gantry_resilience::CircuitBreaker;
use gantry_resilience::breaker::{OwnedPermit, SlidingWindow};
use std::cell::Cell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// One instance with its live state.
#[derive(Debug)]
pub(crate) struct InstanceState {
    pub(crate) id: String,
    pub(crate) addr: SocketAddr,
    pub(crate) authority: http::uri::Authority,
    pub(crate) ready: AtomicBool,
    pub(crate) draining: AtomicBool,
    pub(crate) breaker: CircuitBreaker,
    pub(crate) signals: Signals,
    pub(crate) connections: Arc<AtomicU64>,
    pub(crate) idle: Notify,
    /// Failed calls in a row (outlier detection).
    pub(crate) consecutive_failures: AtomicU32,
    /// Ejected until this many ms after [`epoch`] (0 = not ejected).
    pub(crate) ejected_until: AtomicU64,
    /// Times ejected (the next ejection lasts this many + 1 base times).
    pub(crate) ejections: AtomicU32,
    /// Belongs to the service's canary release (see [`Split`]).
    pub(crate) canary: AtomicBool,
}

/// The instant outlier deadlines count from.
fn epoch() -> std::time::Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

fn now_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl InstanceState {
    fn eligible(&self) -> bool {
        self.ready.load(Relaxed)
            && !self.draining.load(Relaxed)
            && !self.ejected()
            && self.breaker.state().permits_calls()
    }

    /// Whether outlier detection has it out of balancing now.
    pub(crate) fn ejected(&self) -> bool {
        let until = self.ejected_until.load(Relaxed);
        until != 0 && now_ms() < until
    }

    /// Counts a call's outcome for outlier detection; a run of failures ejects the instance
    /// when the service can spare it.
    pub(crate) fn outlier_record(&self, failed: bool, slot: &ServiceSlot, cfg: &OutlierConfig) {
        if !failed {
            if self.consecutive_failures.load(Relaxed) != 0 {
                self.consecutive_failures.store(0, Relaxed);
            }
            return;
        }
        let run = self.consecutive_failures.fetch_add(1, Relaxed) + 1;
        if cfg.consecutive_failures == 0 || run < cfg.consecutive_failures || self.ejected() {
            return;
        }
        let set = slot.instances.load();
        let n = set.len();
        let out = set.iter().filter(|i| i.ejected()).count();
        let cap = (n * usize::from(cfg.max_ejected_percent.min(100)) / 100).max(1);
        let others = set
            .iter()
            .any(|i| !std::ptr::eq(Arc::as_ptr(i), self) && i.eligible());
        if out + 1 > cap || !others {
            return;
        }
        let times = self.ejections.fetch_add(1, Relaxed) + 1;
        let span = cfg
            .base_ejection
            .saturating_mul(times)
            .min(cfg.max_ejection.max(cfg.base_ejection));
        let until = now_ms().saturating_add(u64::try_from(span.as_millis()).unwrap_or(u64::MAX));
        self.ejected_until.store(until.max(1), Relaxed);
        self.consecutive_failures.store(0, Relaxed);
    }
}

/// A request's hold on an instance: counts it in flight until dropped.
#[derive(Debug)]
pub(crate) struct InFlight(pub(crate) Arc<InstanceState>);

impl InFlight {
    pub(crate) fn new(inst: Arc<InstanceState>) -> Self {
        inst.signals.in_flight.fetch_add(1, Relaxed);
        InFlight(inst)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.signals.in_flight.fetch_sub(1, Relaxed) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// A service's current instance set and its canary split.
#[derive(Debug, Default)]
pub(crate) struct ServiceSlot {
    pub(crate) instances: ArcSwap<Vec<Arc<InstanceState>>>,
    pub(crate) split: ArcSwap<Split>,
}

impl ServiceSlot {
    /// Replaces the split and marks the current instances that belong to the canary.
    pub(crate) fn set_split(&self, split: Split) {
        let split = Arc::new(split);
        for i in self.instances.load().iter() {
            i.canary.store(split.canary.contains(&i.id), Relaxed);
        }
        self.split.store(split);
    }
}

/// Every service the ingress knows, plus the per-address connection counters.
#[derive(Debug)]
pub(crate) struct Registry {
    services: Mutex<HashMap<String, Arc<ServiceSlot>>>,
    conns: Mutex<HashMap<SocketAddr, Arc<AtomicU64>>>,
    breaker: BreakerConfig,
}

impl Registry {
    pub(crate) fn new(breaker: BreakerConfig) -> Self {
        Registry {
            services: Mutex::default(),
            conns: Mutex::default(),
            breaker,
        }
    }

    pub(crate) fn slot(&self, service: &str) -> Arc<ServiceSlot> {
        let mut map = self.services.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(service.to_owned()).or_default().clone()
    }

    pub(crate) fn all(&self) -> Vec<(String, Arc<ServiceSlot>)> {
        let map = self.services.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn conn_counter(&self, addr: SocketAddr) -> Arc<AtomicU64> {
        let mut map = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(addr).or_default().clone()
    }

    /// Replaces a service's set; an instance with the same id and address keeps its
    /// breaker, counters and draining flag — except that one coming back ready after being
    /// unready (a new incarnation, after a drain and restart) takes traffic again.
    pub(crate) fn set_instances(&self, service: &str, instances: Vec<Instance>) {
        let slot = self.slot(service);
        let old = slot.instances.load_full();
        let split = slot.split.load_full();
        let new: Vec<Arc<InstanceState>> = instances
            .into_iter()
            .map(
                |i| match old.iter().find(|o| o.id == i.id && o.addr == i.addr) {
                    Some(o) => {
                        if !o.ready.swap(i.ready, Relaxed) && i.ready {
                            // A new incarnation: no drain, no ejection carried over.
                            o.draining.store(false, Relaxed);
                            o.ejected_until.store(0, Relaxed);
                            o.consecutive_failures.store(0, Relaxed);
                            o.ejections.store(0, Relaxed);
                        }
                        o.clone()
                    }
                    None => Arc::new(InstanceState {
                        authority: http::uri::Authority::try_from(i.addr.to_string().as_str())
                            .unwrap_or_else(|_| http::uri::Authority::from_static("invalid")),
                        connections: self.conn_counter(i.addr),
                        breaker: self.build_breaker(),
                        id: i.id,
                        addr: i.addr,
                        ready: AtomicBool::new(i.ready),
                        draining: AtomicBool::new(false),
                        signals: Signals::default(),
                        idle: Notify::new(),
                        consecutive_failures: AtomicU32::new(0),
                        ejected_until: AtomicU64::new(0),
                        ejections: AtomicU32::new(0),
                        canary: AtomicBool::new(false),
                    }),
                },
            )
            .collect();
        for i in &new {
            i.canary.store(split.canary.contains(&i.id), Relaxed);
        }
        slot.instances.store(Arc::new(new));
    }

    fn build_breaker(&self) -> CircuitBreaker {
        let c = &self.breaker;
        let built = CircuitBreaker::builder()
            .sliding_window(SlidingWindow::Count {
                size: c.window.max(1),
            })
            .minimum_number_of_calls(c.minimum_calls.max(1))
            .failure_rate_threshold(c.failure_rate.clamp(0.01, 1.0))
            .wait_in_open(c.open_for)
            .permitted_calls_in_half_open(c.trial_calls.max(1))
            .build();
        match built {
            Ok(b) => b,
            // Out-of-range settings fall back to the library's defaults rather than no breaker.
            Err(_) => match CircuitBreaker::builder().build() {
                Ok(b) => b,
                Err(_) => unreachable!("the default breaker settings are valid"),
            },
        }
    }

    /// Finds an instance by id.
    pub(crate) fn find(&self, service: &str, id: &str) -> Option<Arc<InstanceState>> {
        self.slot(service)
            .instances
            .load()
            .iter()
            .find(|i| i.id == id)
            .cloned()
    }
}

thread_local! {
    static RNG: Cell<u64> = Cell::new({
        let x = &0u8 as *const u8 as u64;
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        (x ^ t) | 1
    });
}

/// A cheap xorshift in `0..n` (n > 0).
pub(crate) fn rand_below(n: usize) -> usize {
    RNG.with(|c| {
        let mut x = c.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c.set(x);
        (x % n as u64) as usize
    })
}

/// Why no instance was picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoPick {
    /// No instance is ready (or all are draining).
    NoneReady,
    /// Ready instances exist but every breaker is open.
    AllBroken,
}

/// Which side of a canary split a request goes to: `None` when the service has no split
/// (or no canary instance); `key` is the sticky hash of the client, else a random draw.
pub(crate) fn side(slot: &ServiceSlot, key: Option<u64>) -> Option<bool> {
    let split = slot.split.load();
    if split.canary.is_empty() {
        return None;
    }
    let draw = key.map_or_else(|| rand_below(100), |k| (k % 100) as usize);
    Some(draw < usize::from(split.percent.min(100)))
}

/// Power of two choices on in-flight counts among eligible instances, avoiding `avoid`
/// when another is eligible, and on the `canary` side when one is asked for and has an
/// eligible instance (else the other side: a split never fails a request by itself);
/// returns the instance with a breaker permit.
pub(crate) fn pick(
    slot: &ServiceSlot,
    avoid: Option<&Arc<InstanceState>>,
    canary: Option<bool>,
) -> Result<(Arc<InstanceState>, OwnedPermit), NoPick> {
    if let Some(side) = canary {
        let set = slot.instances.load();
        if set
            .iter()
            .any(|i| i.canary.load(Relaxed) == side && i.eligible())
            && let Ok(p) = pick_among(slot, avoid, Some(side))
        {
            return Ok(p);
        }
    }
    pick_among(slot, avoid, None)
}

fn pick_among(
    slot: &ServiceSlot,
    avoid: Option<&Arc<InstanceState>>,
    side: Option<bool>,
) -> Result<(Arc<InstanceState>, OwnedPermit), NoPick> {
    let set = slot.instances.load();
    let n = set.len();
    let ok = |i: &Arc<InstanceState>| {
        i.eligible()
            && avoid.is_none_or(|a| !Arc::ptr_eq(a, i))
            && side.is_none_or(|s| i.canary.load(Relaxed) == s)
    };
    if n == 0 {
        return Err(NoPick::NoneReady);
    }
    // Two random draws first (the common case), then a scan from a random start.
    // (A single instance, or the same one drawn twice, is judged once: eligibility reads
    // the breaker's clock.)
    let ia = rand_below(n);
    let ib = if n == 1 { 0 } else { rand_below(n) };
    let a = &set[ia];
    let b = &set[ib];
    let first = if ia == ib {
        ok(a).then_some(a)
    } else {
        match (ok(a), ok(b)) {
            (true, true) => {
                if b.signals.in_flight.load(Relaxed) < a.signals.in_flight.load(Relaxed) {
                    Some(b)
                } else {
                    Some(a)
                }
            }
            (true, false) => Some(a),
            (false, true) => Some(b),
            _ => None,
        }
    };
    if let Some(i) = first
        && let Ok(p) = i.breaker.try_acquire_owned()
    {
        return Ok((i.clone(), p));
    }
    let start = rand_below(n);
    let mut any_ready = false;
    for k in 0..n {
        let i = &set[(start + k) % n];
        if i.ready.load(Relaxed) && !i.draining.load(Relaxed) {
            any_ready = true;
        }
        if ok(i)
            && let Ok(p) = i.breaker.try_acquire_owned()
        {
            return Ok((i.clone(), p));
        }
    }
    // Only the avoided instance is left: let the caller use it rather than fail (within a
    // side, the caller tries the other side first).
    if side.is_none()
        && let Some(a) = avoid
        && a.eligible()
        && let Ok(p) = a.breaker.try_acquire_owned()
    {
        return Ok((a.clone(), p));
    }
    Err(if any_ready {
        NoPick::AllBroken
    } else {
        NoPick::NoneReady
    })
}
