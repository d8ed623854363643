//! A coarse timer for the proxy's long deadlines (hyper's header read timeout, the upstream
//! request timeout): a slab of deadlines per runtime, scanned by one task at the earliest
//! deadline but at most every [`GRANULARITY`], so a request arms and drops its deadlines
//! under an uncontended lock, without an allocation and without tokio's timer wheel (whose
//! re-registrations woke the runtime's driver through its eventfd about once every three
//! requests). A deadline fires up to `GRANULARITY` late.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How late a deadline may fire; also the shortest pause between two scans.
pub(crate) const GRANULARITY: Duration = Duration::from_millis(20);

/// One runtime's coarse timer; cheap to clone.
#[derive(Clone)]
pub(crate) struct Coarse {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Tells the scanner about a deadline earlier than the one it sleeps to.
    changed: Notify,
}

/// The armed deadlines in a slab: arming and dropping one reuses a slot (no allocation).
#[derive(Default)]
struct State {
    slots: Vec<Slot>,
    free: Vec<usize>,
    armed: usize,
    /// When the scanner wakes next (`None`: it waits for a first deadline).
    target: Option<Instant>,
}

#[derive(Default)]
struct Slot {
    deadline: Option<Instant>,
    fired: bool,
    waker: Option<Waker>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Coarse {
    /// A timer whose scanner runs on the current runtime (call from inside it).
    pub(crate) fn start() -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        });
        tokio::spawn(scan(shared.clone()));
        Coarse { shared }
    }

    /// A future that is ready at `deadline` (give or take [`GRANULARITY`]).
    pub(crate) fn sleep_until(&self, deadline: Instant) -> CoarseSleep {
        CoarseSleep {
            timer: self.shared.clone(),
            deadline,
            slot: None,
        }
    }
}

/// Scans the deadlines for as long as the runtime lives: fires those due and sleeps to the
/// earliest remaining one (not sooner than a granule); a new deadline earlier than that wakes
/// it. Nothing armed, nothing runs.
async fn scan(s: Arc<Shared>) {
    let mut due: Vec<Waker> = Vec::new();
    loop {
        let changed = s.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let target = {
            let now = Instant::now();
            let mut st = s.lock();
            let mut earliest: Option<Instant> = None;
            let armed = st.armed;
            for slot in st.slots.iter_mut().take_while(|_| armed > 0) {
                let Some(d) = slot.deadline else { continue };
                if slot.fired {
                    continue;
                }
                if d <= now {
                    slot.fired = true;
                    due.extend(slot.waker.take());
                } else {
                    earliest = Some(earliest.map_or(d, |t| t.min(d)));
                }
            }
            st.target = earliest.map(|t| t.max(now + GRANULARITY));
            st.target
        };
        for w in due.drain(..) {
            w.wake();
        }
        match target {
            Some(t) => {
                tokio::select! {
                    () = tokio::time::sleep_until(t.into()) => {}
                    () = &mut changed => {}
                }
            }
            None => changed.await,
        }
    }
}

/// A deadline of the coarse timer; armed at its first pending poll, disarmed when dropped.
pub(crate) struct CoarseSleep {
    timer: Arc<Shared>,
    deadline: Instant,
    slot: Option<usize>,
}

impl Future for CoarseSleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut st = this.timer.lock();
        if let Some(i) = this.slot {
            let slot = &mut st.slots[i];
            if slot.fired {
                return Poll::Ready(());
            }
            match &slot.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => slot.waker = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        let i = match st.free.pop() {
            Some(i) => i,
            None => {
                st.slots.push(Slot::default());
                st.slots.len() - 1
            }
        };
        st.slots[i] = Slot {
            deadline: Some(this.deadline),
            fired: false,
            waker: Some(cx.waker().clone()),
        };
        st.armed += 1;
        this.slot = Some(i);
        let wake_scanner = st.target.is_none_or(|t| this.deadline < t);
        drop(st);
        if wake_scanner {
            this.timer.changed.notify_one();
        }
        Poll::Pending
    }
}

impl Drop for CoarseSleep {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            let mut st = self.timer.lock();
            st.slots[i] = Slot::default();
            st.free.push(i);
            st.armed -= 1;
        }
    }
}

/// hyper's timer (the server's header read timeout) on the coarse timer.
#[derive(Clone)]
pub(crate) struct HyperTimer(pub(crate) Coarse);

impl hyper::rt::Timer for HyperTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }
    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(self.0.sleep_until(deadline))
    }
}

impl hyper::rt::Sleep for CoarseSleep {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn deadlines_fire_in_order_and_dropped_ones_are_forgotten() {
        let t = Coarse::start();
        let now = Instant::now();
        let late = t.sleep_until(now + Duration::from_millis(120));
        let early = t.sleep_until(now + Duration::from_millis(30));
        {
            // Armed, then dropped: the scanner forgets it.
            let mut gone = std::pin::pin!(t.sleep_until(now + Duration::from_secs(3600)));
            let waker = futures_noop_waker();
            let mut cx = Context::from_waker(&waker);
            assert!(gone.as_mut().poll(&mut cx).is_pending());
        }
        early.await;
        assert!(Instant::now() >= now + Duration::from_millis(30));
        late.await;
        assert!(Instant::now() >= now + Duration::from_millis(120));
        // A deadline in the past is ready at the next scan.
        t.sleep_until(now).await;
        assert_eq!(t.shared.lock().armed, 0);
    }

    fn futures_noop_waker() -> Waker {
        Waker::noop().clone()
    }
}
