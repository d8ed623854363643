//! Timeout under tokio's paused clock.

use std::time::Duration;

use gantry_resilience::timeout::Elapsed;
use gantry_resilience::{CallError, Timeout};
use tokio::time::{Instant, sleep};

#[tokio::test(start_paused = true)]
async fn cuts_a_slow_call_at_the_limit() {
    let t = Timeout::new(Duration::from_millis(300));
    let start = Instant::now();
    let r = t
        .call(|| async {
            sleep(Duration::from_secs(10)).await;
            Ok::<_, ()>(())
        })
        .await;
    assert_eq!(
        r,
        Err(CallError::Rejected(Elapsed::after(Duration::from_millis(
            300
        ))))
    );
    assert_eq!(start.elapsed(), Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn lets_a_call_finish_just_in_time() {
    let t = Timeout::new(Duration::from_millis(300));
    let r = t
        .call(|| async {
            sleep(Duration::from_millis(299)).await;
            Ok::<_, ()>(5)
        })
        .await;
    assert_eq!(r, Ok(5));
}

#[tokio::test(start_paused = true)]
async fn counts_every_outcome() {
    let t = Timeout::new(Duration::from_millis(10));
    let _ = t.call(|| async { Ok::<_, ()>(()) }).await;
    let _ = t.call(|| async { Err::<(), _>(()) }).await;
    let _ = t.call(std::future::pending::<Result<(), ()>>).await;
    let s = t.snapshot();
    assert_eq!((s.calls, s.successes, s.failures, s.timeouts), (3, 1, 1, 1));
}
