//! Bulkhead: concurrency limit, bounded FIFO queue, queue wait limit,
//! rejections as values.

use std::time::Duration;

use gantry_resilience::bulkhead::Rejected;
use gantry_resilience::{Bulkhead, CallError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

fn bulkhead(concurrent: u32, waiting: u32, wait: Option<Duration>) -> Bulkhead {
    let b = Bulkhead::builder()
        .max_concurrent(concurrent)
        .max_waiting(waiting);
    match wait {
        Some(w) => b.max_wait(w),
        None => b,
    }
    .build()
    .unwrap()
}

/// A call holding its slot.
type Held = JoinHandle<Result<u8, CallError<Rejected, ()>>>;

/// Starts a call that holds its slot until `release` fires.
fn hold(b: &Bulkhead) -> (oneshot::Sender<()>, Held) {
    let (tx, rx) = oneshot::channel::<()>();
    let b = b.clone();
    let task = tokio::spawn(async move {
        b.call(|| async move {
            let _ = rx.await;
            Ok(1)
        })
        .await
    });
    (tx, task)
}

/// Lets spawned tasks run until they block.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn rejects_at_once_without_a_queue() {
    let b = bulkhead(2, 0, None);
    let (r1, t1) = hold(&b);
    let (r2, t2) = hold(&b);
    settle().await;
    assert_eq!(b.snapshot().in_flight, 2);
    let r = b.call(|| async { Ok::<_, ()>(0) }).await;
    assert_eq!(
        r,
        Err(CallError::Rejected(Rejected::Full { max_concurrent: 2 }))
    );
    r1.send(()).unwrap();
    r2.send(()).unwrap();
    assert_eq!(t1.await.unwrap(), Ok(1));
    assert_eq!(t2.await.unwrap(), Ok(1));
    let s = b.snapshot();
    assert_eq!(
        (s.permitted, s.successes, s.rejected_full, s.in_flight),
        (2, 2, 1, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn queues_up_to_the_limit_and_serves_in_order() {
    let b = bulkhead(1, 2, None);
    let (release, holder) = hold(&b);
    settle().await;
    // Two callers fit in the queue...
    let (q1_release, q1) = hold(&b);
    settle().await;
    let (q2_release, q2) = hold(&b);
    settle().await;
    assert_eq!(b.snapshot().waiting, 2);
    // ...a third does not.
    assert!(matches!(b.try_acquire(), Err(Rejected::Full { .. })));
    assert!(matches!(b.acquire().await, Err(Rejected::Full { .. })));

    release.send(()).unwrap();
    holder.await.unwrap().unwrap();
    settle().await;
    let s = b.snapshot();
    assert_eq!(
        (s.in_flight, s.waiting),
        (1, 1),
        "the first queued caller got the slot"
    );
    // FIFO: q1 holds the slot; q2 is still waiting, so releasing q2 first changes nothing.
    q2_release.send(()).unwrap();
    settle().await;
    assert_eq!(b.snapshot().waiting, 1);
    q1_release.send(()).unwrap();
    assert_eq!(q1.await.unwrap(), Ok(1));
    assert_eq!(q2.await.unwrap(), Ok(1));
    assert_eq!(b.snapshot().rejected_full, 2);
}

#[tokio::test(start_paused = true)]
async fn a_queued_caller_gives_up_after_max_wait() {
    let b = bulkhead(1, 5, Some(Duration::from_millis(200)));
    let (release, holder) = hold(&b);
    settle().await;
    let start = tokio::time::Instant::now();
    let r = b.acquire().await;
    assert_eq!(
        r.unwrap_err(),
        Rejected::WaitTimedOut {
            waited: Duration::from_millis(200)
        }
    );
    assert_eq!(start.elapsed(), Duration::from_millis(200));
    let s = b.snapshot();
    assert_eq!((s.rejected_wait, s.waiting), (1, 0));
    release.send(()).unwrap();
    holder.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_waiter_leaves_the_queue() {
    let b = bulkhead(1, 1, None);
    let (release, holder) = hold(&b);
    settle().await;
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move { b.acquire().await.map(drop) })
    };
    settle().await;
    assert_eq!(b.snapshot().waiting, 1);
    waiter.abort();
    let _ = waiter.await;
    assert_eq!(b.snapshot().waiting, 0);
    // The queue place is free again.
    let again = {
        let b = b.clone();
        tokio::spawn(async move { b.acquire().await.map(drop) })
    };
    settle().await;
    assert_eq!(b.snapshot().waiting, 1);
    release.send(()).unwrap();
    holder.await.unwrap().unwrap();
    again.await.unwrap().unwrap();
}

#[tokio::test]
async fn failures_are_counted() {
    let b = bulkhead(1, 0, None);
    assert_eq!(
        b.call(|| async { Err::<(), _>("no") }).await,
        Err(CallError::Inner("no"))
    );
    assert_eq!(b.snapshot().failures, 1);
}

#[test]
fn zero_slots_is_a_config_error() {
    assert_eq!(
        Bulkhead::builder()
            .max_concurrent(0)
            .build()
            .unwrap_err()
            .setting(),
        "max_concurrent"
    );
}
