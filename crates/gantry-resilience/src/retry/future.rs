//! The response future of [`RetryService`](super::RetryService): call, wait,
//! get ready, call again.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;

use super::{Decision, RetryClassify, RetryState, Retryable};
use crate::error::BoxError;

pin_project! {
    #[project = PhaseProj]
    #[derive(Debug)]
    enum Phase<F> {
        Calling { #[pin] future: F },
        Waiting { #[pin] sleep: Sleep },
        Readying,
    }
}

pin_project! {
    /// Resolves to the first response not worth retrying, or to the last
    /// result when the policy gives up.
    ///
    /// ```
    /// use gantry_resilience::retry::{ResponseFuture, RetryErrors, RetryService};
    /// use gantry_resilience::Retry;
    /// use tower::{service_fn, Service, ServiceExt};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower::BoxError> {
    /// let inner = service_fn(|x: u8| async move { Ok::<_, tower::BoxError>(x) });
    /// let mut svc = RetryService::new(inner, Retry::builder().build()?, RetryErrors);
    /// let fut = svc.ready().await?.call(3);
    /// assert_eq!(fut.await.unwrap(), 3);
    /// # Ok(()) }
    /// ```
    #[derive(Debug)]
    pub struct ResponseFuture<S, Req, C>
    where
        S: Service<Req>,
    {
        #[pin]
        phase: Phase<S::Future>,
        service: S,
        request: Req,
        state: Option<RetryState>,
        classify: C,
    }
}

impl<S, Req, C> ResponseFuture<S, Req, C>
where
    S: Service<Req>,
{
    pub(crate) fn new(
        future: S::Future,
        service: S,
        request: Req,
        state: RetryState,
        classify: C,
    ) -> Self {
        ResponseFuture {
            phase: Phase::Calling { future },
            service,
            request,
            state: Some(state),
            classify,
        }
    }
}

impl<S, Req, C> Future for ResponseFuture<S, Req, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: RetryClassify<S::Response, S::Error>,
    Req: Clone,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.phase.as_mut().project() {
                PhaseProj::Calling { future } => {
                    let result = ready!(future.poll(cx));
                    let hint = this.classify.classify(&result);
                    let Some(state) = this.state.as_mut() else {
                        return Poll::Ready(result.map_err(Into::into));
                    };
                    if hint == Retryable::No && result.is_ok() {
                        if let Some(state) = this.state.take() {
                            state.on_success();
                        }
                        return Poll::Ready(result.map_err(Into::into));
                    }
                    match state.on_error(hint) {
                        Decision::Retry(delay) => {
                            this.phase.set(Phase::Waiting {
                                sleep: tokio::time::sleep(delay),
                            });
                        }
                        Decision::GiveUp(_) => {
                            this.state.take();
                            return Poll::Ready(result.map_err(Into::into));
                        }
                    }
                }
                PhaseProj::Waiting { sleep } => {
                    ready!(sleep.poll(cx));
                    this.phase.set(Phase::Readying);
                }
                PhaseProj::Readying => {
                    if let Err(e) = ready!(this.service.poll_ready(cx)) {
                        return Poll::Ready(Err(e.into()));
                    }
                    let future = this.service.call(this.request.clone());
                    this.phase.set(Phase::Calling { future });
                }
            }
        }
    }
}
