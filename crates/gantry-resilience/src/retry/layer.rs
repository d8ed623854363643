//! The tower `Layer` that retries a service's failed calls.

use tower_layer::Layer;

use super::{Retry, RetryErrors, RetryService};

/// Wraps services in a [`RetryService`] sharing one [`Retry`] (its metrics and budget).
///
/// ```
/// use gantry_resilience::retry::{RetryLayer, Retryable};
/// use gantry_resilience::Retry;
/// use tower::ServiceBuilder;
///
/// let retry = Retry::builder().max_attempts(3).build()?;
/// let svc = ServiceBuilder::new()
///     .layer(RetryLayer::new(retry).classify(|r: &Result<u16, tower::BoxError>| match r {
///         Ok(503) => Retryable::Yes,
///         Ok(_) => Retryable::No,
///         Err(_) => Retryable::Yes,
///     }))
///     .service_fn(|_req: ()| async { Ok::<u16, tower::BoxError>(200) });
/// # let _ = svc;
/// # Ok::<(), gantry_resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RetryLayer<C = RetryErrors> {
    retry: Retry,
    classify: C,
}

impl RetryLayer {
    /// Retries every error, honouring [`RetryAfter`](super::RetryAfter) hints.
    pub fn new(retry: Retry) -> Self {
        RetryLayer {
            retry,
            classify: RetryErrors,
        }
    }
}

impl<C> RetryLayer<C> {
    /// Decides per result whether to retry (see [`RetryClassify`](super::RetryClassify)).
    pub fn classify<C2>(self, classify: C2) -> RetryLayer<C2> {
        RetryLayer {
            retry: self.retry,
            classify,
        }
    }
}

impl<S, C: Clone> Layer<S> for RetryLayer<C> {
    type Service = RetryService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryService::new(inner, self.retry.clone(), self.classify.clone())
    }
}
