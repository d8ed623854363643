//! The tower `Service` that takes a token per call.

use std::task::{Context, Poll};

use tower_service::Service;

use super::{RateLimiter, ResponseFuture};
use crate::error::BoxError;

/// Takes a token in `call` and answers an empty bucket with an immediate
/// `Err(Box<`[`RateLimited`](super::RateLimited)`>)` carrying the wait —
/// unlike `tower::limit::RateLimit`, which parks the caller in `poll_ready`.
///
/// ```
/// use gantry_resilience::rate_limit::{RateLimitService, RateLimited};
/// use gantry_resilience::{ManualClock, RateLimiter};
/// use std::time::Duration;
/// use tower::{service_fn, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let limiter = RateLimiter::builder().rate(1, Duration::from_secs(1)).clock(ManualClock::new()).build()?;
/// let svc = RateLimitService::new(service_fn(|x: u8| async move { Ok::<_, tower::BoxError>(x) }), limiter);
/// assert_eq!(svc.clone().oneshot(1).await.unwrap(), 1);
/// let err = svc.oneshot(2).await.unwrap_err();
/// assert_eq!(err.downcast_ref::<RateLimited>().unwrap().retry_after, Duration::from_secs(1));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RateLimitService<S> {
    inner: S,
    limiter: RateLimiter,
}

impl<S> RateLimitService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, limiter: RateLimiter) -> Self {
        RateLimitService { inner, limiter }
    }

    /// The limiter, e.g. for its [`snapshot`](RateLimiter::snapshot).
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }
}

impl<S, Req> Service<Req> for RateLimitService<S>
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
        match self.limiter.try_acquire() {
            Ok(()) => ResponseFuture::called(self.inner.call(req)),
            Err(limited) => ResponseFuture::rejected(limited),
        }
    }
}
