//! The tower `Layer` that puts a time limit on every call.

use tower_layer::Layer;

use super::{Timeout, TimeoutService};

/// Wraps services in a [`TimeoutService`] sharing one [`Timeout`] (its metrics).
///
/// ```
/// use gantry_resilience::timeout::TimeoutLayer;
/// use gantry_resilience::Timeout;
/// use std::time::Duration;
/// use tower::ServiceBuilder;
///
/// let svc = ServiceBuilder::new()
///     .layer(TimeoutLayer::new(Timeout::new(Duration::from_secs(2))))
///     .service_fn(|_req: ()| async { Ok::<_, tower::BoxError>(()) });
/// # let _ = svc;
/// ```
#[derive(Debug, Clone)]
pub struct TimeoutLayer {
    timeout: Timeout,
}

impl TimeoutLayer {
    /// A layer applying `timeout`.
    pub fn new(timeout: Timeout) -> Self {
        TimeoutLayer { timeout }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = TimeoutService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TimeoutService::new(inner, self.timeout.clone())
    }
}
