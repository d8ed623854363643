//! The tower `Service` that cuts calls at a time limit.

use std::task::{Context, Poll};

use tower_service::Service;

use super::{ResponseFuture, Timeout};
use crate::error::BoxError;

/// Starts the clock in `call` (waiting for readiness is not the callee's
/// slowness) and fails with a boxed [`Elapsed`](super::Elapsed) at the limit.
/// Like tower's own timeout, `call` must run inside a tokio runtime with
/// timers enabled, because it arms the timer there.
///
/// ```
/// use gantry_resilience::timeout::{Elapsed, TimeoutService};
/// use gantry_resilience::Timeout;
/// use std::time::Duration;
/// use tower::{service_fn, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let inner = service_fn(|_: ()| async {
///     tokio::time::sleep(Duration::from_secs(5)).await;
///     Ok::<_, tower::BoxError>(())
/// });
/// let svc = TimeoutService::new(inner, Timeout::new(Duration::from_secs(1)));
/// let err = svc.oneshot(()).await.unwrap_err();
/// assert!(err.downcast_ref::<Elapsed>().is_some());
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TimeoutService<S> {
    inner: S,
    timeout: Timeout,
}

impl<S> TimeoutService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, timeout: Timeout) -> Self {
        TimeoutService { inner, timeout }
    }

    /// The timeout, e.g. for its [`snapshot`](Timeout::snapshot).
    pub fn timeout(&self) -> &Timeout {
        &self.timeout
    }
}

impl<S, Req> Service<Req> for TimeoutService<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        ResponseFuture::new(self.inner.call(req), self.timeout.clone())
    }
}
