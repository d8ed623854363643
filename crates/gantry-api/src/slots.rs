//! The API server's connection slots: a full server evicts the connection that has waited
//! longest without a request in progress, so idle or silent clients cannot lock newcomers out.
//!
//! A connection is *busy* from the moment its request reaches the router until the response
//! body has been sent (or dropped); otherwise it is *waiting* — for the first request head,
//! or for the next one on a keep-alive connection — since a time this registry records. When
//! every slot is taken, a newcomer takes the slot of the connection that has been waiting the
//! longest: an attacker that connects and sends nothing (or a slow head) is always older than a
//! client that just finished a request. Only when every connection is busy is the newcomer
//! closed at accept. Long-lived event streams are bounded separately ([`StreamSlots`]) so busy
//! connections cannot fill the server either.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

impl Track {
    /// Whether a request ever reached the router on this connection.
    pub(crate) fn has_spoken(&self) -> bool {
        self.served.load(Ordering::Relaxed) > 0 || self.busy.load(Ordering::Acquire) > 0
    }
}

/// What the registry knows of one connection.
#[derive(Debug)]
pub(crate) struct Track {
    /// Milliseconds since the registry's epoch at which the connection last began waiting.
    waiting_since: AtomicU64,
    /// Requests in progress (0 or 1 on HTTP/1.1).
    busy: AtomicU32,
    /// Requests seen, in progress or done.
    served: AtomicU32,
    /// Told when the connection is evicted.
    pub(crate) evict: Notify,
}

#[derive(Debug)]
struct Inner {
    next_id: u64,
    live: HashMap<u64, Arc<Track>>,
}

/// Every open connection of one server.
#[derive(Debug)]
pub(crate) struct Slots {
    epoch: Instant,
    max: usize,
    inner: Mutex<Inner>,
}

/// The slot of one connection; frees it when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    id: u64,
    slots: Arc<Slots>,
    pub(crate) track: Arc<Track>,
}

/// Why a newcomer got no slot.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct AllBusy;

impl Slots {
    pub(crate) fn new(max: usize) -> Arc<Slots> {
        Arc::new(Slots {
            epoch: Instant::now(),
            max: max.max(1),
            inner: Mutex::new(Inner {
                next_id: 0,
                live: HashMap::new(),
            }),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Connections holding a slot.
    pub(crate) fn open(&self) -> usize {
        self.lock().live.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere never leaves the map half-updated: every change is one call.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for a connection just accepted: a free one, else the one of the connection
    /// that has waited longest without a request in progress (which is told to close).
    pub(crate) fn admit(self: &Arc<Self>) -> Result<Slot, AllBusy> {
        let now = self.now_ms();
        let mut inner = self.lock();
        if inner.live.len() >= self.max {
            let victim = inner
                .live
                .iter()
                .filter(|(_, t)| t.busy.load(Ordering::Acquire) == 0)
                .min_by_key(|(id, t)| (t.waiting_since.load(Ordering::Relaxed), **id))
                .map(|(id, _)| *id)
                .ok_or(AllBusy)?;
            if let Some(track) = inner.live.remove(&victim) {
                track.evict.notify_one();
            }
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let track = Arc::new(Track {
            waiting_since: AtomicU64::new(now),
            busy: AtomicU32::new(0),
            served: AtomicU32::new(0),
            evict: Notify::new(),
        });
        inner.live.insert(id, track.clone());
        Ok(Slot {
            id,
            slots: self.clone(),
            track,
        })
    }

    /// Marks a request of `track` in progress until the returned guard is dropped.
    pub(crate) fn begin(self: &Arc<Self>, track: &Arc<Track>) -> Busy {
        track.busy.fetch_add(1, Ordering::AcqRel);
        track.served.fetch_add(1, Ordering::Relaxed);
        Busy {
            slots: self.clone(),
            track: track.clone(),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut inner = self.slots.lock();
        // An evicted connection's slot was already handed on.
        if inner
            .live
            .get(&self.id)
            .is_some_and(|t| Arc::ptr_eq(t, &self.track))
        {
            inner.live.remove(&self.id);
        }
    }
}

/// A request in progress; the connection waits again from when this is dropped.
#[derive(Debug)]
pub(crate) struct Busy {
    slots: Arc<Slots>,
    track: Arc<Track>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.track
            .waiting_since
            .store(self.slots.now_ms(), Ordering::Relaxed);
        self.track.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A hyper service that marks each request busy until its response body is done.
#[derive(Debug, Clone)]
pub(crate) struct Tracked<S> {
    pub(crate) inner: S,
    pub(crate) slots: Arc<Slots>,
    pub(crate) track: Arc<Track>,
}

impl<S, R, B> hyper::service::Service<R> for Tracked<S>
where
    S: hyper::service::Service<R, Response = hyper::Response<B>>,
    S::Future: Send + 'static,
{
    type Response = hyper::Response<TrackedBody<B>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn call(&self, request: R) -> Self::Future {
        let busy = self.slots.begin(&self.track);
        let fut = self.inner.call(request);
        Box::pin(async move {
            let response = fut.await?;
            Ok(response.map(|inner| TrackedBody { inner, _busy: busy }))
        })
    }
}

/// A response body that keeps its connection busy until it is sent or dropped.
#[derive(Debug)]
pub(crate) struct TrackedBody<B> {
    inner: B,
    _busy: Busy,
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The cap on long-lived responses (the event stream) of one server, so streams cannot
/// keep every connection busy: a request extension the handlers of such routes take a
/// permit from.
#[derive(Debug, Clone)]
pub struct StreamSlots(pub(crate) Arc<Semaphore>);

impl StreamSlots {
    pub(crate) fn new(max: usize) -> StreamSlots {
        StreamSlots(Arc::new(Semaphore::new(max.max(1))))
    }

    /// A permit held for the life of one stream, or `None` when all are taken.
    pub(crate) fn try_take(&self) -> Option<OwnedSemaphorePermit> {
        self.0.clone().try_acquire_owned().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_registry_evicts_the_longest_waiting_idle_connection() {
        let slots = Slots::new(3);
        let a = slots.admit().expect("a");
        let b = slots.admit().expect("b");
        let c = slots.admit().expect("c");
        // `a` is busy; `b` waited since before `c` (same millisecond: the lower id is older).
        let _busy = slots.begin(&a.track);
        let d = slots.admit().expect("d evicts b");
        assert_eq!(slots.open(), 3);
        // b was told; its late drop does not free d's or anyone else's slot.
        assert!(
            futures_util::FutureExt::now_or_never(b.track.evict.notified()).is_some(),
            "b was not told to close"
        );
        drop(b);
        assert_eq!(slots.open(), 3);
        let _e = slots.admit().expect("e evicts c");
        drop(c);
        assert_eq!(slots.open(), 3);
        drop(d);
        assert_eq!(slots.open(), 2);
    }

    #[test]
    fn when_every_connection_is_busy_the_newcomer_is_refused() {
        let slots = Slots::new(2);
        let a = slots.admit().expect("a");
        let b = slots.admit().expect("b");
        let _x = slots.begin(&a.track);
        let y = slots.begin(&b.track);
        assert_eq!(slots.admit().map(|_| ()), Err(AllBusy));
        // A finished request makes that connection evictable again.
        drop(y);
        assert!(slots.admit().is_ok());
    }
}
