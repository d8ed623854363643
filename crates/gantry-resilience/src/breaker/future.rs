//! The response future of [`CircuitBreakerService`](super::CircuitBreakerService):
//! records the outcome when the inner future finishes.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::{OwnedPermit, Rejected};
use crate::error::BoxError;
use crate::outcome::Classify;

pin_project! {
    /// Resolves to the inner response, or to a boxed [`Rejected`] at once.
    ///
    /// Dropped before it finishes, it records nothing: the permit counts as
    /// ignored and a half-open trial slot goes back.
    ///
    /// ```
    /// use gantry_resilience::breaker::{CircuitBreakerService, ResponseFuture};
    /// use gantry_resilience::{CircuitBreaker, ErrorIsFailure};
    /// use tower::{service_fn, Service, ServiceExt};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tower::BoxError> {
    /// let inner = service_fn(|x: u8| async move { Ok::<_, tower::BoxError>(x) });
    /// let mut svc = CircuitBreakerService::new(inner, CircuitBreaker::builder().build()?, ErrorIsFailure);
    /// let fut = svc.ready().await?.call(7);
    /// assert_eq!(fut.await.unwrap(), 7);
    /// # Ok(()) }
    /// ```
    #[derive(Debug)]
    pub struct ResponseFuture<F, C> {
        #[pin]
        inner: Option<F>,
        permit: Option<OwnedPermit>,
        rejected: Option<Rejected>,
        classify: C,
    }
}

impl<F, C> ResponseFuture<F, C> {
    pub(crate) fn called(inner: F, permit: OwnedPermit, classify: C) -> Self {
        ResponseFuture {
            inner: Some(inner),
            permit: Some(permit),
            rejected: None,
            classify,
        }
    }

    pub(crate) fn rejected(rejected: Rejected, classify: C) -> Self {
        ResponseFuture {
            inner: None,
            permit: None,
            rejected: Some(rejected),
            classify,
        }
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    C: Classify<T, E>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let inner = match (this.inner.as_pin_mut(), *this.rejected) {
            (Some(inner), _) => inner,
            (None, rejected) => {
                return Poll::Ready(Err(Box::new(rejected.unwrap_or(Rejected::ForcedOpen))));
            }
        };
        let result = ready!(inner.poll(cx));
        if let Some(permit) = this.permit.take() {
            permit.record(this.classify.classify(&result));
        }
        Poll::Ready(result.map_err(Into::into))
    }
}
