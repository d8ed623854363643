//! Every tower layer against tower-test's mock service, timers under tokio's
//! paused clock.

use std::time::Duration;

use gantry_resilience::breaker::{CircuitBreakerLayer, Rejected as BreakerRejected, State};
use gantry_resilience::bulkhead::{BulkheadLayer, Rejected as BulkheadRejected};
use gantry_resilience::rate_limit::{RateLimitLayer, RateLimited};
use gantry_resilience::retry::{Backoff, Jitter, RetryLayer, Retryable};
use gantry_resilience::timeout::{Elapsed, TimeoutLayer};
use gantry_resilience::{
    Bulkhead, CircuitBreaker, ManualClock, Outcome, RateLimiter, Retry, Timeout, TokioClock,
};
use tokio_test::{assert_pending, assert_ready_ok};
use tower::BoxError;
use tower_test::{assert_request_eq, mock};

#[tokio::test]
async fn breaker_layer_trips_on_errors_and_then_rejects_without_calling() {
    let breaker = CircuitBreaker::builder()
        .minimum_number_of_calls(2)
        .failure_rate_threshold(1.0)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let (mut svc, mut handle) =
        mock::spawn_layer::<&str, &str, _>(CircuitBreakerLayer::new(breaker.clone()));

    for _ in 0..2 {
        assert_ready_ok!(svc.poll_ready());
        let response = svc.call("ping");
        assert_request_eq!(handle, "ping").send_error("down");
        assert_eq!(response.await.unwrap_err().to_string(), "down");
    }
    assert_eq!(breaker.state(), State::Open);

    assert_ready_ok!(svc.poll_ready());
    let err = svc.call("ping").await.unwrap_err();
    assert!(matches!(
        err.downcast_ref::<BreakerRejected>(),
        Some(BreakerRejected::Open { .. })
    ));
    // The rejected request never reached the inner service.
    assert_pending!(tokio_test::task::spawn(handle.next_request()).poll());
}

#[tokio::test]
async fn breaker_layer_classifies_responses() {
    let breaker = CircuitBreaker::builder()
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let layer =
        CircuitBreakerLayer::new(breaker.clone()).classify(|r: &Result<u16, BoxError>| match r {
            Ok(s) if *s >= 500 => Outcome::Failure,
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Ignore,
        });
    let (mut svc, mut handle) = mock::spawn_layer::<(), u16, _>(layer);
    for status in [200, 503, 404] {
        assert_ready_ok!(svc.poll_ready());
        let response = svc.call(());
        assert_request_eq!(handle, ()).send_response(status);
        assert_eq!(response.await.unwrap(), status);
    }
    assert_ready_ok!(svc.poll_ready());
    let response = svc.call(());
    assert_request_eq!(handle, ()).send_error("client went away");
    assert!(response.await.is_err());
    let s = breaker.snapshot();
    assert_eq!((s.successes, s.failures, s.ignored), (2, 1, 1));
}

#[tokio::test]
async fn a_dropped_breaker_response_future_counts_as_ignored() {
    let breaker = CircuitBreaker::builder()
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let (mut svc, _handle) =
        mock::spawn_layer::<(), (), _>(CircuitBreakerLayer::new(breaker.clone()));
    assert_ready_ok!(svc.poll_ready());
    drop(svc.call(()));
    assert_eq!(breaker.snapshot().ignored, 1);
}

fn fixed_retry(attempts: u32, delay: Duration) -> Retry {
    Retry::builder()
        .max_attempts(attempts)
        .backoff(Backoff::exponential(delay, delay).jitter(Jitter::None))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn retry_layer_retries_errors_after_the_backoff() {
    let retry = fixed_retry(3, Duration::from_millis(100));
    let (mut svc, mut handle) = mock::spawn_layer::<&str, &str, _>(RetryLayer::new(retry.clone()));
    assert_ready_ok!(svc.poll_ready());
    let start = tokio::time::Instant::now();
    let response = tokio::spawn(svc.call("get"));

    assert_request_eq!(handle, "get").send_error("reset");
    assert_request_eq!(handle, "get").send_error("reset");
    assert_request_eq!(handle, "get").send_response("body");
    assert_eq!(response.await.unwrap().unwrap(), "body");
    assert_eq!(start.elapsed(), Duration::from_millis(200));
    let s = retry.snapshot();
    assert_eq!((s.retries, s.successes_after_retry), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn retry_layer_gives_up_with_the_last_error() {
    let retry = fixed_retry(2, Duration::from_millis(1));
    let (mut svc, mut handle) = mock::spawn_layer::<(), (), _>(RetryLayer::new(retry.clone()));
    assert_ready_ok!(svc.poll_ready());
    let response = tokio::spawn(svc.call(()));
    assert_request_eq!(handle, ()).send_error("first");
    assert_request_eq!(handle, ()).send_error("second");
    assert_eq!(response.await.unwrap().unwrap_err().to_string(), "second");
    assert_eq!(retry.snapshot().attempts_exhausted, 1);
}

#[tokio::test(start_paused = true)]
async fn retry_layer_retries_responses_the_classifier_marks() {
    let retry = fixed_retry(3, Duration::from_millis(10));
    let layer = RetryLayer::new(retry).classify(|r: &Result<u16, BoxError>| match r {
        Ok(503) => Retryable::After(Duration::from_secs(2)),
        Ok(_) => Retryable::No,
        Err(_) => Retryable::Yes,
    });
    let (mut svc, mut handle) = mock::spawn_layer::<(), u16, _>(layer);
    assert_ready_ok!(svc.poll_ready());
    let start = tokio::time::Instant::now();
    let response = tokio::spawn(svc.call(()));
    assert_request_eq!(handle, ()).send_response(503);
    assert_request_eq!(handle, ()).send_response(200);
    assert_eq!(response.await.unwrap().unwrap(), 200);
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(2),
        "the server's hint, not the 10 ms backoff"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_over_a_rate_limit_waits_for_its_retry_after() {
    // Retry outside, rate limiter inside: the boxed RateLimited carries the wait.
    let limiter = RateLimiter::builder()
        .rate(1, Duration::from_secs(4))
        .clock(TokioClock::new())
        .build()
        .unwrap();
    let retry = fixed_retry(2, Duration::from_millis(1));
    let svc = tower::ServiceBuilder::new()
        .layer(RetryLayer::new(retry))
        .layer(RateLimitLayer::new(limiter))
        .service_fn(|x: u8| async move { Ok::<_, BoxError>(x) });
    use tower::ServiceExt;
    assert_eq!(svc.clone().oneshot(1).await.unwrap(), 1);
    let start = tokio::time::Instant::now();
    assert_eq!(svc.oneshot(2).await.unwrap(), 2);
    assert_eq!(start.elapsed(), Duration::from_secs(4));
}

#[tokio::test(start_paused = true)]
async fn timeout_layer_cuts_a_hung_call() {
    let timeout = Timeout::new(Duration::from_secs(1));
    let (mut svc, mut handle) = mock::spawn_layer::<(), (), _>(TimeoutLayer::new(timeout.clone()));
    assert_ready_ok!(svc.poll_ready());
    let start = tokio::time::Instant::now();
    let response = svc.call(());
    let _pending = assert_request_eq!(handle, ()); // never answered
    let err = response.await.unwrap_err();
    assert_eq!(
        err.downcast_ref::<Elapsed>(),
        Some(&Elapsed::after(Duration::from_secs(1)))
    );
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(timeout.snapshot().timeouts, 1);
}

#[tokio::test(start_paused = true)]
async fn timeout_layer_passes_a_timely_response() {
    let timeout = Timeout::new(Duration::from_secs(1));
    let (mut svc, mut handle) = mock::spawn_layer::<(), u8, _>(TimeoutLayer::new(timeout.clone()));
    assert_ready_ok!(svc.poll_ready());
    let response = svc.call(());
    assert_request_eq!(handle, ()).send_response(8);
    assert_eq!(response.await.unwrap(), 8);
    assert_eq!(timeout.snapshot().successes, 1);
}

#[tokio::test(start_paused = true)]
async fn bulkhead_layer_runs_queues_and_rejects() {
    let bulkhead = Bulkhead::builder()
        .max_concurrent(1)
        .max_waiting(1)
        .build()
        .unwrap();
    let (mut svc, mut handle) =
        mock::spawn_layer::<u8, u8, _>(BulkheadLayer::new(bulkhead.clone()));

    assert_ready_ok!(svc.poll_ready());
    let first = tokio::spawn(svc.call(1));
    let first_req = assert_request_eq!(handle, 1);

    assert_ready_ok!(svc.poll_ready());
    let second = tokio::spawn(svc.call(2));
    tokio::task::yield_now().await;
    assert_eq!(bulkhead.snapshot().waiting, 1);

    assert_ready_ok!(svc.poll_ready());
    let err = svc.call(3).await.unwrap_err();
    assert!(matches!(
        err.downcast_ref::<BulkheadRejected>(),
        Some(BulkheadRejected::Full { .. })
    ));

    // The queued request reaches the inner service only when the first is done.
    first_req.send_response(10);
    assert_eq!(first.await.unwrap().unwrap(), 10);
    assert_request_eq!(handle, 2).send_response(20);
    assert_eq!(second.await.unwrap().unwrap(), 20);
    let s = bulkhead.snapshot();
    assert_eq!(
        (s.permitted, s.successes, s.rejected_full, s.in_flight),
        (2, 2, 1, 0)
    );
}

#[tokio::test]
async fn rate_limit_layer_rejects_with_the_wait() {
    let limiter = RateLimiter::builder()
        .rate(2, Duration::from_secs(1))
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let (mut svc, mut handle) =
        mock::spawn_layer::<(), (), _>(RateLimitLayer::new(limiter.clone()));
    for _ in 0..2 {
        assert_ready_ok!(svc.poll_ready());
        let response = svc.call(());
        assert_request_eq!(handle, ()).send_response(());
        response.await.unwrap();
    }
    assert_ready_ok!(svc.poll_ready());
    let err = svc.call(()).await.unwrap_err();
    assert_eq!(
        err.downcast_ref::<RateLimited>(),
        Some(&RateLimited {
            retry_after: Duration::from_millis(500)
        })
    );
    assert_eq!(limiter.snapshot().rejected, 1);
}
