//! Token bucket (GCRA) under a manual clock: burst, refill, retry-after,
//! multi-token requests and two threads on one bucket.

use std::time::Duration;

use gantry_resilience::rate_limit::RateLimited;
use gantry_resilience::{CallError, ManualClock, RateLimiter};

fn limiter(rate: u32, per: Duration, burst: u32) -> (RateLimiter, ManualClock) {
    let clock = ManualClock::new();
    let l = RateLimiter::builder()
        .rate(rate, per)
        .burst(burst)
        .clock(clock.clone())
        .build()
        .unwrap();
    (l, clock)
}

#[test]
fn a_full_bucket_allows_a_burst_then_refuses_with_the_wait() {
    let (l, _) = limiter(10, Duration::from_secs(1), 5);
    assert_eq!(l.available(), 5);
    for _ in 0..5 {
        l.try_acquire().unwrap();
    }
    assert_eq!(l.available(), 0);
    assert_eq!(
        l.try_acquire(),
        Err(RateLimited {
            retry_after: Duration::from_millis(100)
        })
    );
    let s = l.snapshot();
    assert_eq!(
        (s.permitted, s.rejected, s.available, s.burst),
        (5, 1, 0, 5)
    );
}

#[test]
fn tokens_refill_at_the_rate_up_to_the_burst() {
    let (l, clock) = limiter(10, Duration::from_secs(1), 5);
    for _ in 0..5 {
        l.try_acquire().unwrap();
    }
    clock.advance(Duration::from_millis(99));
    assert_eq!(l.available(), 0);
    assert_eq!(
        l.try_acquire().unwrap_err().retry_after,
        Duration::from_millis(1)
    );
    clock.advance(Duration::from_millis(1));
    assert_eq!(l.available(), 1);
    clock.advance(Duration::from_millis(250));
    assert_eq!(l.available(), 3);
    // A long quiet spell fills the bucket only up to the burst.
    clock.advance(Duration::from_secs(60));
    assert_eq!(l.available(), 5);
    for _ in 0..5 {
        l.try_acquire().unwrap();
    }
    assert!(l.try_acquire().is_err());
}

#[test]
fn steady_traffic_at_the_rate_is_never_refused() {
    let (l, clock) = limiter(100, Duration::from_secs(1), 1);
    for _ in 0..1000 {
        l.try_acquire().unwrap();
        clock.advance(Duration::from_millis(10));
    }
    assert_eq!(l.snapshot().rejected, 0);
}

#[test]
fn several_tokens_at_once_or_none() {
    let (l, clock) = limiter(4, Duration::from_secs(1), 4);
    l.try_acquire_n(3).unwrap();
    let err = l.try_acquire_n(3).unwrap_err();
    assert_eq!(err.retry_after, Duration::from_millis(500));
    assert_eq!(l.available(), 1, "a refused request takes nothing");
    clock.advance(err.retry_after);
    l.try_acquire_n(3).unwrap();
    // More than the burst can never pass; the wait says how far off it is.
    assert!(l.try_acquire_n(5).is_err());
}

#[test]
fn two_threads_share_the_bucket_exactly() {
    let (l, _) = limiter(1000, Duration::from_secs(1), 1000);
    let granted = std::sync::atomic::AtomicU32::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..1000 {
                    if l.try_acquire().is_ok() {
                        granted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    // Time is frozen: exactly the burst, however the threads interleave.
    assert_eq!(granted.into_inner(), 1000);
    assert_eq!(l.snapshot().rejected, 1000);
}

#[tokio::test]
async fn call_rejects_as_a_value() {
    let (l, _) = limiter(1, Duration::from_secs(1), 1);
    assert_eq!(l.call(|| async { Ok::<_, ()>(1) }).await, Ok(1));
    let r = l.call(|| async { Ok::<_, ()>(2) }).await;
    assert_eq!(
        r,
        Err(CallError::Rejected(RateLimited {
            retry_after: Duration::from_secs(1)
        }))
    );
}

#[test]
fn bad_settings_are_config_errors() {
    assert_eq!(
        RateLimiter::builder()
            .rate(0, Duration::from_secs(1))
            .build()
            .unwrap_err()
            .setting(),
        "rate"
    );
    assert_eq!(
        RateLimiter::builder()
            .rate(10, Duration::from_nanos(5))
            .build()
            .unwrap_err()
            .setting(),
        "rate"
    );
    assert_eq!(
        RateLimiter::builder()
            .burst(0)
            .build()
            .unwrap_err()
            .setting(),
        "burst"
    );
}
