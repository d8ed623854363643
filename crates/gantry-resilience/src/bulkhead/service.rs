//! The tower `Service` that runs calls inside a bulkhead.

use std::task::{Context, Poll};

use tower_service::Service;

use super::{Bulkhead, ResponseFuture};
use crate::error::BoxError;

/// Takes a bulkhead slot in `call`, not in `poll_ready`, so that "full" is a
/// prompt, typed rejection (`Err(Box<`[`Rejected`](super::Rejected)`>)`)
/// rather than back-pressure that parks the caller — the difference from
/// `tower::limit::ConcurrencyLimit`.
///
/// With a free slot the inner service is called at once; with a queue, the
/// instance `poll_ready` readied moves into the response future (a clone
/// stays behind) and is called when a slot frees up.
///
/// ```
/// use gantry_resilience::bulkhead::{BulkheadService, Rejected};
/// use gantry_resilience::Bulkhead;
/// use tower::{service_fn, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let bulkhead = Bulkhead::builder().max_concurrent(1).build()?;
/// let svc = BulkheadService::new(service_fn(|x: u8| async move { Ok::<_, tower::BoxError>(x) }), bulkhead.clone());
/// let _busy = bulkhead.try_acquire().unwrap();
/// let err = svc.oneshot(1).await.unwrap_err();
/// assert!(matches!(err.downcast_ref::<Rejected>(), Some(Rejected::Full { .. })));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct BulkheadService<S> {
    inner: S,
    bulkhead: Bulkhead,
}

impl<S> BulkheadService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, bulkhead: Bulkhead) -> Self {
        BulkheadService { inner, bulkhead }
    }

    /// The bulkhead, e.g. for its [`snapshot`](Bulkhead::snapshot).
    pub fn bulkhead(&self) -> &Bulkhead {
        &self.bulkhead
    }
}

impl<S, Req> Service<Req> for BulkheadService<S>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let bulkhead = self.bulkhead.clone();
        if let Some(permit) = bulkhead.try_permit() {
            return ResponseFuture::called(self.inner.call(req), permit, bulkhead);
        }
        if !bulkhead.can_queue() {
            let rejected = bulkhead.reject_full();
            return ResponseFuture::rejected(rejected, bulkhead);
        }
        let fresh = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, fresh);
        ResponseFuture::queued(ready, req, bulkhead)
    }
}
