//! The tower `Service` that retries failed calls with backoff.

use std::task::{Context, Poll};

use tower_service::Service;

use super::{ResponseFuture, Retry, RetryClassify};
use crate::error::BoxError;

/// Retries a cloneable request on a cloneable service.
///
/// `call` moves the service instance that `poll_ready` readied into the
/// response future (leaving a fresh clone behind), so each retry can wait for
/// readiness again before calling — the pattern tower's own docs recommend
/// for services that call their inner service later.
///
/// ```
/// use gantry_resilience::retry::{RetryErrors, RetryService};
/// use gantry_resilience::Retry;
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use tower::{service_fn, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let calls = Arc::new(AtomicU32::new(0));
/// let seen = calls.clone();
/// let inner = service_fn(move |_: ()| {
///     let n = seen.fetch_add(1, Ordering::Relaxed);
///     async move { if n == 0 { Err::<u32, tower::BoxError>("reset".into()) } else { Ok(n) } }
/// });
/// let svc = RetryService::new(inner, Retry::builder().build()?, RetryErrors);
/// assert_eq!(svc.oneshot(()).await.unwrap(), 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RetryService<S, C> {
    inner: S,
    retry: Retry,
    classify: C,
}

impl<S, C> RetryService<S, C> {
    /// Wraps `inner`.
    pub fn new(inner: S, retry: Retry, classify: C) -> Self {
        RetryService {
            inner,
            retry,
            classify,
        }
    }

    /// The policy, e.g. for its [`snapshot`](Retry::snapshot).
    pub fn retry(&self) -> &Retry {
        &self.retry
    }
}

impl<S, C, Req> Service<Req> for RetryService<S, C>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    C: RetryClassify<S::Response, S::Error> + Clone,
    Req: Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let fresh = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, fresh);
        let future = ready.call(req.clone());
        ResponseFuture::new(
            future,
            ready,
            req,
            self.retry.begin(),
            self.classify.clone(),
        )
    }
}
