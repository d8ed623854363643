//! The response future of [`TimeoutService`](super::TimeoutService).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::time::Sleep;

use super::{Elapsed, Timeout};
use crate::error::BoxError;

pin_project! {
    /// The inner response, or a boxed [`Elapsed`] once the limit passes.
    ///
    /// ```
    /// use gantry_resilience::timeout::TimeoutService;
    /// use gantry_resilience::Timeout;
    /// use std::time::Duration;
    /// use tower::{service_fn, Service, ServiceExt};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower::BoxError> {
    /// let inner = service_fn(|x: u8| async move { Ok::<_, tower::BoxError>(x) });
    /// let mut svc = TimeoutService::new(inner, Timeout::new(Duration::from_secs(1)));
    /// assert_eq!(svc.ready().await?.call(9).await?, 9);
    /// # Ok(()) }
    /// ```
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        response: F,
        #[pin]
        sleep: Sleep,
        timeout: Timeout,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(response: F, timeout: Timeout) -> Self {
        timeout.metrics.calls.fetch_add(1, Ordering::Relaxed);
        ResponseFuture {
            response,
            sleep: tokio::time::sleep(timeout.duration),
            timeout,
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
        // The response first: one that is ready exactly at the limit still counts.
        if let Poll::Ready(result) = this.response.poll(cx) {
            this.timeout
                .count(result.as_ref().map(|_| ()).map_err(|_| false));
            return Poll::Ready(result.map_err(Into::into));
        }
        match this.sleep.poll(cx) {
            Poll::Ready(()) => {
                this.timeout.count(Err(true));
                Poll::Ready(Err(Box::new(Elapsed::after(this.timeout.duration))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
