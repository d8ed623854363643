//! The tower `Layer` that puts a bulkhead in front of a service.

use tower_layer::Layer;

use super::{Bulkhead, BulkheadService};

/// Wraps services in a [`BulkheadService`]; every service it wraps shares
/// the one limit.
///
/// ```
/// use gantry_resilience::bulkhead::BulkheadLayer;
/// use gantry_resilience::Bulkhead;
/// use tower::ServiceBuilder;
///
/// let svc = ServiceBuilder::new()
///     .layer(BulkheadLayer::new(Bulkhead::builder().max_concurrent(8).max_waiting(16).build()?))
///     .service_fn(|_req: ()| async { Ok::<_, tower::BoxError>(()) });
/// # let _ = svc;
/// # Ok::<(), gantry_resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct BulkheadLayer {
    bulkhead: Bulkhead,
}

impl BulkheadLayer {
    /// A layer applying `bulkhead`.
    pub fn new(bulkhead: Bulkhead) -> Self {
        BulkheadLayer { bulkhead }
    }
}

impl<S> Layer<S> for BulkheadLayer {
    type Service = BulkheadService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BulkheadService::new(inner, self.bulkhead.clone())
    }
}
