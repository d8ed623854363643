//! The response future of [`RateLimitService`](super::RateLimitService).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::RateLimited;
use crate::error::BoxError;

pin_project! {
    /// The inner response, or a boxed [`RateLimited`] at once.
    ///
    /// ```
    /// use gantry_resilience::rate_limit::RateLimitService;
    /// use gantry_resilience::RateLimiter;
    /// use tower::{service_fn, Service, ServiceExt};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tower::BoxError> {
    /// let inner = service_fn(|x: u8| async move { Ok::<_, tower::BoxError>(x) });
    /// let mut svc = RateLimitService::new(inner, RateLimiter::builder().build()?);
    /// assert_eq!(svc.ready().await?.call(5).await.unwrap(), 5);
    /// # Ok(()) }
    /// ```
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Option<F>,
        rejected: Option<RateLimited>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn called(inner: F) -> Self {
        ResponseFuture {
            inner: Some(inner),
            rejected: None,
        }
    }

    pub(crate) fn rejected(limited: RateLimited) -> Self {
        ResponseFuture {
            inner: None,
            rejected: Some(limited),
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.inner.as_pin_mut() {
            Some(inner) => inner.poll(cx).map(|r| r.map_err(Into::into)),
            None => {
                let limited = this.rejected.unwrap_or(RateLimited {
                    retry_after: std::time::Duration::ZERO,
                });
                Poll::Ready(Err(Box::new(limited)))
            }
        }
    }
}
