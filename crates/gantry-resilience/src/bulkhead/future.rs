//! The response future of [`BulkheadService`](super::BulkheadService): wait
//! in the queue if needed, then call, holding the slot until the response.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tower_service::Service;

use super::{Bulkhead, BulkheadPermit, Rejected};
use crate::error::BoxError;

type Acquire = Pin<Box<dyn Future<Output = Result<BulkheadPermit, Rejected>> + Send>>;

pin_project! {
    #[project = StateProj]
    enum State<S, Req, F> {
        // Boxed because tokio's semaphore future cannot be named; only the
        // queued (slow) path pays for the allocation.
        Queued { acquire: Acquire, service: Option<S>, request: Option<Req> },
        Calling { #[pin] future: F, permit: Option<BulkheadPermit> },
        Rejected { rejected: Rejected },
    }
}

pin_project! {
    /// The inner response, or a boxed [`Rejected`].
    ///
    /// ```
    /// use gantry_resilience::bulkhead::BulkheadService;
    /// use gantry_resilience::Bulkhead;
    /// use tower::{service_fn, Service, ServiceExt};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tower::BoxError> {
    /// let inner = service_fn(|x: u8| async move { Ok::<_, tower::BoxError>(x) });
    /// let mut svc = BulkheadService::new(inner, Bulkhead::builder().build()?);
    /// assert_eq!(svc.ready().await?.call(4).await.unwrap(), 4);
    /// # Ok(()) }
    /// ```
    pub struct ResponseFuture<S, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S, Req, S::Future>,
        bulkhead: Bulkhead,
    }
}

impl<S: Service<Req>, Req> fmt::Debug for ResponseFuture<S, Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Queued { .. } => "queued",
            State::Calling { .. } => "calling",
            State::Rejected { .. } => "rejected",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl<S: Service<Req>, Req> ResponseFuture<S, Req> {
    pub(crate) fn called(future: S::Future, permit: BulkheadPermit, bulkhead: Bulkhead) -> Self {
        ResponseFuture {
            state: State::Calling {
                future,
                permit: Some(permit),
            },
            bulkhead,
        }
    }

    pub(crate) fn rejected(rejected: Rejected, bulkhead: Bulkhead) -> Self {
        ResponseFuture {
            state: State::Rejected { rejected },
            bulkhead,
        }
    }

    pub(crate) fn queued(service: S, request: Req, bulkhead: Bulkhead) -> Self {
        let acquire: Acquire = Box::pin(bulkhead.clone().acquire_owned());
        ResponseFuture {
            state: State::Queued {
                acquire,
                service: Some(service),
                request: Some(request),
            },
            bulkhead,
        }
    }
}

impl<S, Req> Future for ResponseFuture<S, Req>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Queued {
                    acquire,
                    service,
                    request,
                } => {
                    let permit = match ready!(acquire.as_mut().poll(cx)) {
                        Ok(p) => p,
                        Err(rejected) => return Poll::Ready(Err(Box::new(rejected))),
                    };
                    let (Some(mut service), Some(request)) = (service.take(), request.take())
                    else {
                        // Only reachable by polling after completion.
                        return Poll::Ready(Err(Box::new(Rejected::Full { max_concurrent: 0 })));
                    };
                    // This instance was readied by `poll_ready` before `call` moved it here.
                    let future = service.call(request);
                    this.state.set(State::Calling {
                        future,
                        permit: Some(permit),
                    });
                }
                StateProj::Calling { future, permit } => {
                    let result = ready!(future.poll(cx));
                    permit.take();
                    this.bulkhead.count(result.is_ok());
                    return Poll::Ready(result.map_err(Into::into));
                }
                StateProj::Rejected { rejected } => return Poll::Ready(Err(Box::new(*rejected))),
            }
        }
    }
}
