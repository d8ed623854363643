//! The tower `Service` that asks a [`CircuitBreaker`] before every call.

use std::task::{Context, Poll};

use tower_service::Service;

use super::{CircuitBreaker, ResponseFuture};
use crate::error::BoxError;
use crate::outcome::Classify;

/// Asks the breaker in `call` (not in `poll_ready`, which tower does not
/// promise is followed by a `call`) and records the classified outcome when
/// the response future finishes. A rejection is an immediate
/// `Err(Box<`[`Rejected`](super::Rejected)`>)`; `poll_ready` only waits on
/// the inner service, so a caller is never parked behind an open breaker.
///
/// ```
/// use gantry_resilience::breaker::{CircuitBreakerService, Rejected};
/// use gantry_resilience::{CircuitBreaker, ErrorIsFailure};
/// use tower::{service_fn, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let breaker = CircuitBreaker::builder().build()?;
/// let inner = service_fn(|x: u32| async move { Ok::<_, tower::BoxError>(x * 2) });
/// let svc = CircuitBreakerService::new(inner, breaker.clone(), ErrorIsFailure);
/// assert_eq!(svc.clone().oneshot(21).await.unwrap(), 42);
///
/// breaker.force_open();
/// let err = svc.oneshot(1).await.unwrap_err();
/// assert_eq!(err.downcast_ref::<Rejected>(), Some(&Rejected::ForcedOpen));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CircuitBreakerService<S, C> {
    inner: S,
    breaker: CircuitBreaker,
    classify: C,
}

impl<S, C> CircuitBreakerService<S, C> {
    /// Wraps `inner`.
    pub fn new(inner: S, breaker: CircuitBreaker, classify: C) -> Self {
        CircuitBreakerService {
            inner,
            breaker,
            classify,
        }
    }

    /// The breaker, e.g. for its [`snapshot`](CircuitBreaker::snapshot).
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// The wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, C, Req> Service<Req> for CircuitBreakerService<S, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match self.breaker.try_acquire_owned() {
            Ok(permit) => {
                ResponseFuture::called(self.inner.call(req), permit, self.classify.clone())
            }
            Err(rejected) => ResponseFuture::rejected(rejected, self.classify.clone()),
        }
    }
}
