//! The tower `Layer` that puts a [`CircuitBreaker`] in front of a service.

use tower_layer::Layer;

use super::{CircuitBreaker, CircuitBreakerService};
use crate::outcome::ErrorIsFailure;

/// Wraps services in a [`CircuitBreakerService`]; every service it wraps
/// shares the one breaker.
///
/// ```
/// use gantry_resilience::breaker::CircuitBreakerLayer;
/// use gantry_resilience::{CircuitBreaker, Outcome};
/// use tower::ServiceBuilder;
///
/// let breaker = CircuitBreaker::builder().build()?;
/// let svc = ServiceBuilder::new()
///     .layer(CircuitBreakerLayer::new(breaker).classify(|r: &Result<u16, tower::BoxError>| match r {
///         Ok(status) if *status >= 500 => Outcome::Failure,
///         Ok(_) => Outcome::Success,
///         Err(_) => Outcome::Failure,
///     }))
///     .service_fn(|_req: ()| async { Ok::<u16, tower::BoxError>(200) });
/// # let _ = svc;
/// # Ok::<(), gantry_resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct CircuitBreakerLayer<C = ErrorIsFailure> {
    breaker: CircuitBreaker,
    classify: C,
}

impl CircuitBreakerLayer {
    /// A layer where `Ok` responses are successes and errors failures.
    pub fn new(breaker: CircuitBreaker) -> Self {
        CircuitBreakerLayer {
            breaker,
            classify: ErrorIsFailure,
        }
    }
}

impl<C> CircuitBreakerLayer<C> {
    /// Decides per response what counts as a failure (see [`Classify`](crate::Classify)).
    pub fn classify<C2>(self, classify: C2) -> CircuitBreakerLayer<C2> {
        CircuitBreakerLayer {
            breaker: self.breaker,
            classify,
        }
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService::new(inner, self.breaker.clone(), self.classify.clone())
    }
}
