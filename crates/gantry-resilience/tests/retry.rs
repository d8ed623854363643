//! Retry loops under tokio's paused clock, the retry budget, and the
//! server's retry-after hint.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use gantry_resilience::retry::{
    Backoff, Decision, GiveUp, Jitter, RetryAfter, RetryBudget, Retryable,
};
use gantry_resilience::{ManualClock, Retry};
use tokio::time::Instant;

#[derive(Debug, PartialEq)]
enum E {
    Transient,
    Fatal,
    Throttled(Duration),
}

impl RetryAfter for E {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            E::Throttled(d) => Some(*d),
            _ => None,
        }
    }
}

fn fixed(ms: u64, attempts: u32) -> Retry {
    // No jitter, so the waits are exact.
    Retry::builder()
        .max_attempts(attempts)
        .backoff(
            Backoff::exponential(Duration::from_millis(ms), Duration::from_secs(60))
                .jitter(Jitter::None),
        )
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn retries_with_exponential_delays_until_success() {
    let retry = fixed(100, 5);
    let tries = AtomicU32::new(0);
    let start = Instant::now();
    let r = retry
        .call(|| async {
            if tries.fetch_add(1, Ordering::Relaxed) < 3 {
                Err(E::Transient)
            } else {
                Ok(7)
            }
        })
        .await;
    assert_eq!(r, Ok(7));
    // 100 + 200 + 400 ms of backoff, no real time spent.
    assert_eq!(start.elapsed(), Duration::from_millis(700));
    let s = retry.snapshot();
    assert_eq!(
        (s.calls, s.retries, s.successes, s.successes_after_retry),
        (1, 3, 1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_max_attempts_with_the_last_error() {
    let retry = fixed(10, 3);
    let tries = AtomicU32::new(0);
    let r: Result<(), E> = retry
        .call(|| async {
            tries.fetch_add(1, Ordering::Relaxed);
            Err(E::Transient)
        })
        .await;
    assert_eq!(r, Err(E::Transient));
    assert_eq!(tries.load(Ordering::Relaxed), 3);
    assert_eq!(retry.snapshot().attempts_exhausted, 1);
}

#[tokio::test(start_paused = true)]
async fn the_predicate_stops_non_retryable_errors() {
    let retry = fixed(10, 5);
    let tries = AtomicU32::new(0);
    let r: Result<(), E> = retry
        .call_if(
            || async {
                let n = tries.fetch_add(1, Ordering::Relaxed);
                Err(if n == 0 { E::Transient } else { E::Fatal })
            },
            |e| *e != E::Fatal,
        )
        .await;
    assert_eq!(r, Err(E::Fatal));
    assert_eq!(tries.load(Ordering::Relaxed), 2);
    let s = retry.snapshot();
    assert_eq!((s.retries, s.not_retryable), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn honours_the_servers_retry_after() {
    let retry = fixed(10, 3);
    let tries = AtomicU32::new(0);
    let start = Instant::now();
    let r = retry
        .call(|| async {
            if tries.fetch_add(1, Ordering::Relaxed) == 0 {
                Err(E::Throttled(Duration::from_secs(3)))
            } else {
                Ok(())
            }
        })
        .await;
    assert_eq!(r, Ok(()));
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(3),
        "the hint replaces the 10 ms backoff"
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_longer_than_allowed_gives_up_at_once() {
    let retry = Retry::builder()
        .max_retry_after(Duration::from_secs(1))
        .build()
        .unwrap();
    let start = Instant::now();
    let r: Result<(), E> = retry
        .call(|| async { Err(E::Throttled(Duration::from_secs(120))) })
        .await;
    assert_eq!(r, Err(E::Throttled(Duration::from_secs(120))));
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(retry.snapshot().retry_after_too_long, 1);
}

#[test]
fn the_budget_runs_out_and_refills_as_the_window_slides() {
    let clock = ManualClock::new();
    // No floor; each call earns half a retry over a 10 s window.
    let budget = RetryBudget::builder()
        .ttl(Duration::from_secs(10))
        .min_retries_per_sec(0)
        .retry_ratio(0.5)
        .clock(clock.clone())
        .build()
        .unwrap();
    let retry = Retry::builder()
        .max_attempts(10)
        .budget(budget.clone())
        .build()
        .unwrap();

    // Two calls earn one retry.
    let mut a = retry.begin();
    let mut b = retry.begin();
    assert!(matches!(a.on_error(Retryable::Yes), Decision::Retry(_)));
    assert_eq!(
        b.on_error(Retryable::Yes),
        Decision::GiveUp(GiveUp::BudgetExhausted)
    );
    assert_eq!(retry.snapshot().budget_exhausted, 1);
    assert_eq!(budget.snapshot().balance, 0);

    // Two more calls earn another.
    let mut c = retry.begin();
    let _d = retry.begin();
    assert!(matches!(c.on_error(Retryable::Yes), Decision::Retry(_)));

    // After the window has passed, deposits and withdrawals are forgotten.
    clock.advance(Duration::from_secs(10));
    let s = budget.snapshot();
    assert_eq!((s.calls, s.retries, s.balance), (0, 0, 0));
    let mut e = retry.begin();
    let _f = retry.begin();
    assert!(matches!(e.on_error(Retryable::Yes), Decision::Retry(_)));
    assert_eq!(budget.snapshot().exhausted, 1);
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_budget_ends_the_loop_early() {
    let budget = RetryBudget::builder()
        .min_retries_per_sec(0)
        .retry_ratio(0.0)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let retry = Retry::builder()
        .max_attempts(5)
        .budget(budget)
        .build()
        .unwrap();
    let tries = AtomicU32::new(0);
    let r: Result<(), E> = retry
        .call(|| async {
            tries.fetch_add(1, Ordering::Relaxed);
            Err(E::Transient)
        })
        .await;
    assert!(r.is_err());
    assert_eq!(
        tries.load(Ordering::Relaxed),
        1,
        "a zero budget allows no retry at all"
    );
    assert_eq!(retry.snapshot().budget_exhausted, 1);
}

#[test]
fn giving_up_for_another_reason_spends_no_budget() {
    let budget = RetryBudget::builder()
        .min_retries_per_sec(1)
        .ttl(Duration::from_secs(1))
        .retry_ratio(0.0)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let retry = Retry::builder()
        .max_attempts(1)
        .budget(budget.clone())
        .build()
        .unwrap();
    let mut s = retry.begin();
    assert_eq!(
        s.on_error(Retryable::Yes),
        Decision::GiveUp(GiveUp::AttemptsExhausted)
    );
    assert_eq!(budget.snapshot().retries, 0);
    let mut s = retry.begin();
    assert_eq!(
        s.on_error(Retryable::No),
        Decision::GiveUp(GiveUp::NotRetryable)
    );
    assert_eq!(budget.snapshot().balance, 1);
}

#[test]
fn same_seed_same_delays() {
    let make = || Retry::builder().max_attempts(10).seed(99).build().unwrap();
    let delays = |r: &Retry| {
        let mut s = r.begin();
        (0..5)
            .map(|_| match s.on_error(Retryable::Yes) {
                Decision::Retry(d) => d,
                Decision::GiveUp(g) => panic!("{g}"),
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(delays(&make()), delays(&make()));
}

#[test]
fn zero_attempts_is_a_config_error() {
    assert_eq!(
        Retry::builder()
            .max_attempts(0)
            .build()
            .unwrap_err()
            .setting(),
        "max_attempts"
    );
    let bad = Backoff::exponential(Duration::from_secs(2), Duration::from_secs(1));
    assert_eq!(
        Retry::builder().backoff(bad).build().unwrap_err().setting(),
        "backoff"
    );
    assert_eq!(
        RetryBudget::builder()
            .retry_ratio(-1.0)
            .build()
            .unwrap_err()
            .setting(),
        "retry_ratio"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_around_a_breaker_waits_for_its_retry_after() {
    use gantry_resilience::CircuitBreaker;
    use gantry_resilience::TokioClock;

    let breaker = CircuitBreaker::builder()
        .clock(TokioClock::new())
        .minimum_number_of_calls(1)
        .wait_in_open(Duration::from_secs(5))
        .permitted_calls_in_half_open(1)
        .build()
        .unwrap();
    let _ = breaker.call_sync(|| Err::<(), _>(()));
    let retry = Retry::builder().max_attempts(2).build().unwrap();
    let start = Instant::now();
    let r = retry
        .call(|| breaker.call(|| async { Ok::<_, ()>("recovered") }))
        .await;
    assert_eq!(r.unwrap(), "recovered");
    // The breaker's rejection said "retry after 5 s", and the retry waited exactly that.
    assert_eq!(start.elapsed(), Duration::from_secs(5));
}
