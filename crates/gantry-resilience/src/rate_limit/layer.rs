//! The tower `Layer` that rate-limits a service.

use tower_layer::Layer;

use super::{RateLimitService, RateLimiter};

/// Wraps services in a [`RateLimitService`]; every service it wraps draws
/// from the one bucket.
///
/// ```
/// use gantry_resilience::rate_limit::RateLimitLayer;
/// use gantry_resilience::RateLimiter;
/// use std::time::Duration;
/// use tower::ServiceBuilder;
///
/// let limiter = RateLimiter::builder().rate(50, Duration::from_secs(1)).build()?;
/// let svc = ServiceBuilder::new()
///     .layer(RateLimitLayer::new(limiter))
///     .service_fn(|_req: ()| async { Ok::<_, tower::BoxError>(()) });
/// # let _ = svc;
/// # Ok::<(), gantry_resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    limiter: RateLimiter,
}

impl RateLimitLayer {
    /// A layer drawing from `limiter`.
    pub fn new(limiter: RateLimiter) -> Self {
        RateLimitLayer { limiter }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService::new(inner, self.limiter.clone())
    }
}
