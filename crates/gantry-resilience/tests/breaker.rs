//! The circuit breaker's state machine on a manual clock: every transition,
//! the half-open limits, window expiry, slow calls and manual control.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gantry_resilience::breaker::{Builder, Rejected, SlidingWindow, State, StateChange};
use gantry_resilience::{CallError, CircuitBreaker, ManualClock, Nanos, Outcome};

const WAIT: Duration = Duration::from_secs(10);
const MAX_HALF_OPEN: Duration = Duration::from_secs(30);

/// A breaker over the last 10 calls, tripping at 50 % after 4 calls, with 2
/// half-open trials; plus its clock and the events it emitted.
fn breaker(
    configure: impl FnOnce(Builder) -> Builder,
) -> (CircuitBreaker, ManualClock, Arc<Mutex<Vec<StateChange>>>) {
    let clock = ManualClock::new();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let builder = CircuitBreaker::builder()
        .sliding_window(SlidingWindow::Count { size: 10 })
        .minimum_number_of_calls(4)
        .failure_rate_threshold(0.5)
        .wait_in_open(WAIT)
        .permitted_calls_in_half_open(2)
        .max_wait_in_half_open(MAX_HALF_OPEN)
        .clock(clock.clone())
        .on_state_change(move |c| sink.lock().unwrap().push(c));
    (configure(builder).build().unwrap(), clock, events)
}

fn ok(b: &CircuitBreaker) -> Result<(), CallError<Rejected, ()>> {
    b.call_sync(|| Ok(()))
}

fn fail(b: &CircuitBreaker) -> Result<(), CallError<Rejected, ()>> {
    b.call_sync(|| Err(()))
}

fn transitions(events: &Mutex<Vec<StateChange>>) -> Vec<(State, State)> {
    events
        .lock()
        .unwrap()
        .iter()
        .map(|c| (c.from, c.to))
        .collect()
}

fn trip(b: &CircuitBreaker) {
    for _ in 0..4 {
        let _ = fail(b);
    }
    assert_eq!(b.state(), State::Open);
}

#[test]
fn stays_closed_below_the_minimum_number_of_calls() {
    let (b, _, events) = breaker(|b| b);
    for _ in 0..3 {
        assert_eq!(fail(&b), Err(CallError::Inner(())));
    }
    assert_eq!(b.state(), State::Closed);
    assert!(events.lock().unwrap().is_empty());
}

#[test]
fn stays_closed_below_the_failure_rate() {
    let (b, _, _) = breaker(|b| b);
    // ok ok ok fail fail, twice: never 50 % (at most 2 of 5), and 4 of 10 at the end.
    for i in 0..10 {
        let _ = if i % 5 >= 3 { fail(&b) } else { ok(&b) };
    }
    assert_eq!(b.state(), State::Closed);
    let s = b.snapshot();
    assert_eq!((s.window_calls, s.window_failures), (10, 4));
}

#[test]
fn closed_to_open_at_the_failure_rate_threshold() {
    let (b, clock, events) = breaker(|b| b);
    clock.advance(Duration::from_secs(1));
    let _ = ok(&b);
    let _ = ok(&b);
    let _ = fail(&b);
    assert_eq!(b.state(), State::Closed);
    let _ = fail(&b); // 2 of 4 = 50 %
    assert_eq!(b.state(), State::Open);
    let ev = events.lock().unwrap().clone();
    assert_eq!(ev.len(), 1);
    assert_eq!((ev[0].from, ev[0].to), (State::Closed, State::Open));
    assert_eq!(ev[0].at, Nanos::from_nanos(1_000_000_000));
    assert_eq!(ev[0].generation, 1);
}

#[test]
fn open_rejects_with_the_time_left() {
    let (b, clock, _) = breaker(|b| b);
    trip(&b);
    assert_eq!(
        ok(&b),
        Err(CallError::Rejected(Rejected::Open { retry_after: WAIT }))
    );
    clock.advance(Duration::from_secs(4));
    assert_eq!(
        ok(&b),
        Err(CallError::Rejected(Rejected::Open {
            retry_after: Duration::from_secs(6)
        }))
    );
    let s = b.snapshot();
    assert_eq!((s.rejected, s.calls), (2, 4));
    assert_eq!(b.next_deadline(), Some(Nanos::ZERO + WAIT));
}

#[test]
fn open_to_half_open_after_the_wait_then_closed_when_trials_pass() {
    let (b, clock, events) = breaker(|b| b);
    trip(&b);
    clock.advance(WAIT - Duration::from_nanos(1));
    assert!(ok(&b).is_err());
    clock.advance(Duration::from_nanos(1));
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(ok(&b), Ok(()));
    assert_eq!(b.state(), State::HalfOpen, "one of two trials done");
    assert_eq!(ok(&b), Ok(()));
    assert_eq!(b.state(), State::Closed);
    assert_eq!(
        transitions(&events),
        [
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Closed)
        ]
    );
    // The window starts empty after closing: the old failures are forgotten.
    let s = b.snapshot();
    assert_eq!((s.window_calls, s.window_failures), (0, 0));
    for _ in 0..3 {
        let _ = fail(&b);
    }
    assert_eq!(
        b.state(),
        State::Closed,
        "3 calls are below the minimum again"
    );
}

#[test]
fn half_open_admits_only_the_permitted_trials_at_once() {
    let (b, clock, _) = breaker(|b| b);
    trip(&b);
    clock.advance(WAIT);
    let first = b.try_acquire().unwrap();
    let second = b.try_acquire().unwrap();
    assert!(first.is_trial() && second.is_trial());
    assert_eq!(b.try_acquire().unwrap_err(), Rejected::HalfOpenFull);
    assert_eq!(b.try_acquire().unwrap_err(), Rejected::HalfOpenFull);
    first.success();
    // A finished trial does not free a slot: the period has 2 trials in total.
    assert_eq!(b.try_acquire().unwrap_err(), Rejected::HalfOpenFull);
    second.success();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.snapshot().rejected, 3);
}

#[test]
fn a_dropped_trial_hands_its_slot_back() {
    let (b, clock, _) = breaker(|b| b);
    trip(&b);
    clock.advance(WAIT);
    let first = b.try_acquire().unwrap();
    let second = b.try_acquire().unwrap();
    drop(first); // e.g. its future was cancelled
    let third = b.try_acquire().expect("the slot came back");
    second.success();
    third.record(Outcome::Success);
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.snapshot().ignored, 1);
}

#[test]
fn half_open_to_open_when_a_trial_fails() {
    let (b, clock, events) = breaker(|b| b);
    trip(&b);
    clock.advance(WAIT);
    // 1 failure of 2 permitted trials is already 50 %: open without waiting for the second.
    let other = b.try_acquire().unwrap();
    assert_eq!(fail(&b), Err(CallError::Inner(())));
    assert_eq!(b.state(), State::Open);
    other.success(); // late, ignored by the new period
    assert_eq!(b.state(), State::Open);
    assert_eq!(
        transitions(&events),
        [
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Open)
        ]
    );
    // A fresh full wait starts from the re-opening.
    assert_eq!(
        ok(&b),
        Err(CallError::Rejected(Rejected::Open { retry_after: WAIT }))
    );
}

#[test]
fn half_open_gives_up_after_the_longest_wait_and_late_trials_do_not_count() {
    let (b, clock, events) = breaker(|b| b);
    trip(&b);
    clock.advance(WAIT);
    let hung_1 = b.try_acquire().unwrap();
    let hung_2 = b.try_acquire().unwrap();
    clock.advance(MAX_HALF_OPEN - Duration::from_nanos(1));
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(b.next_deadline(), Some(Nanos::ZERO + WAIT + MAX_HALF_OPEN));
    clock.advance(Duration::from_nanos(1));
    // Not stuck: with both trials hanging, it opens again on its own.
    assert_eq!(b.state(), State::Open);
    clock.advance(WAIT);
    assert_eq!(b.state(), State::HalfOpen);
    // The hung trials finish now; they belong to the previous half-open period.
    hung_1.success();
    hung_2.success();
    assert_eq!(
        b.state(),
        State::HalfOpen,
        "stale trials must not close the breaker"
    );
    assert!(b.try_acquire().unwrap().is_trial());
    let last = transitions(&events);
    assert_eq!(
        last,
        [
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Open),
            (State::Open, State::HalfOpen)
        ]
    );
}

#[test]
fn count_window_slides_over_the_last_n_calls() {
    let (b, _, _) = breaker(|b| b.minimum_number_of_calls(10).failure_rate_threshold(0.3));
    // 2 failures then 8 successes: 20 %.
    let _ = fail(&b);
    let _ = fail(&b);
    for _ in 0..8 {
        let _ = ok(&b);
    }
    assert_eq!(b.snapshot().window_failures, 2);
    // Two more successes push both failures out of the window.
    let _ = ok(&b);
    let _ = ok(&b);
    assert_eq!(b.snapshot().window_failures, 0);
    // Now 3 failures in the last 10 = 30 %.
    for _ in 0..3 {
        let _ = fail(&b);
    }
    assert_eq!(b.state(), State::Open);
}

#[test]
fn minimum_larger_than_the_count_window_is_capped_to_it() {
    let (b, _, _) = breaker(|b| {
        b.sliding_window(SlidingWindow::Count { size: 3 })
            .minimum_number_of_calls(100)
    });
    for _ in 0..3 {
        let _ = fail(&b);
    }
    assert_eq!(b.state(), State::Open);
}

#[test]
fn time_window_forgets_failures_older_than_its_length() {
    let window = SlidingWindow::Time {
        length: Duration::from_secs(10),
        buckets: 10,
    };
    let (b, clock, _) = breaker(|b| b.sliding_window(window));
    let _ = fail(&b);
    let _ = fail(&b);
    let _ = fail(&b);
    assert_eq!(b.snapshot().window_failures, 3);
    // 10 s later the bucket of t=0 has left the window.
    clock.advance(Duration::from_secs(10));
    assert_eq!(b.snapshot().window_calls, 0);
    let _ = fail(&b);
    assert_eq!(
        b.state(),
        State::Closed,
        "the three old failures no longer count"
    );
    let _ = ok(&b);
    let _ = ok(&b);
    let _ = fail(&b); // 2 of 4 within the window
    assert_eq!(b.state(), State::Open);
}

#[test]
fn time_window_slides_bucket_by_bucket() {
    let window = SlidingWindow::Time {
        length: Duration::from_secs(4),
        buckets: 4,
    };
    let (b, clock, _) = breaker(|b| {
        b.sliding_window(window)
            .minimum_number_of_calls(1)
            .failure_rate_threshold(1.0)
    });
    let _ = ok(&b); // t = 0
    clock.advance(Duration::from_secs(1));
    let _ = ok(&b); // t = 1
    clock.advance(Duration::from_secs(2));
    assert_eq!(b.snapshot().window_calls, 2); // t = 3: buckets 0..=3
    clock.advance(Duration::from_secs(1));
    assert_eq!(b.snapshot().window_calls, 1); // t = 4: bucket 0 gone
    clock.advance(Duration::from_secs(1));
    assert_eq!(b.snapshot().window_calls, 0);
}

#[test]
fn slow_calls_open_the_breaker_even_when_they_succeed() {
    let (b, clock, events) = breaker(|b| {
        b.slow_call_duration_threshold(Duration::from_millis(100))
            .slow_call_rate_threshold(0.5)
    });
    let slow = || {
        b.call_sync(|| {
            clock.advance(Duration::from_millis(100));
            Ok::<_, ()>(())
        })
    };
    let _ = ok(&b);
    let _ = ok(&b);
    assert!(slow().is_ok());
    assert_eq!(b.state(), State::Closed);
    assert!(slow().is_ok()); // 2 slow of 4
    assert_eq!(b.state(), State::Open);
    assert_eq!(transitions(&events), [(State::Closed, State::Open)]);
    let s = b.snapshot();
    assert_eq!((s.slow_calls, s.failures, s.successes), (2, 0, 4));
}

#[test]
fn calls_just_under_the_slow_threshold_are_not_slow() {
    let (b, clock, _) = breaker(|b| {
        b.slow_call_duration_threshold(Duration::from_millis(100))
            .slow_call_rate_threshold(0.5)
    });
    for _ in 0..10 {
        let _ = b.call_sync(|| {
            clock.advance(Duration::from_millis(99));
            Ok::<_, ()>(())
        });
    }
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.snapshot().slow_calls, 0);
}

#[test]
fn slow_trials_reopen_a_half_open_breaker() {
    let (b, clock, _) = breaker(|b| {
        b.slow_call_duration_threshold(Duration::from_millis(100))
            .slow_call_rate_threshold(0.5)
    });
    trip(&b);
    clock.advance(WAIT);
    let r = b.call_sync(|| {
        clock.advance(Duration::from_secs(1));
        Ok::<_, ()>(())
    });
    assert!(r.is_ok());
    assert_eq!(b.state(), State::Open);
}

#[test]
fn slow_calls_in_a_time_window() {
    let window = SlidingWindow::Time {
        length: Duration::from_secs(60),
        buckets: 6,
    };
    let (b, clock, _) = breaker(|b| {
        b.sliding_window(window)
            .slow_call_duration_threshold(Duration::from_secs(1))
            .slow_call_rate_threshold(0.75)
    });
    for _ in 0..3 {
        let _ = b.call_sync(|| {
            clock.advance(Duration::from_secs(2));
            Ok::<_, ()>(())
        });
    }
    let _ = ok(&b);
    assert_eq!(b.state(), State::Open, "3 of 4 calls were slow");
}

#[test]
fn ignored_outcomes_do_not_count() {
    let (b, _, _) = breaker(|b| b);
    for _ in 0..10 {
        b.try_acquire().unwrap().record(Outcome::Ignore);
    }
    let s = b.snapshot();
    assert_eq!((s.calls, s.ignored, s.window_calls), (0, 10, 0));
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn forced_open_rejects_until_forced_closed() {
    let (b, clock, events) = breaker(|b| b);
    b.force_open();
    b.force_open(); // no second event
    assert_eq!(ok(&b), Err(CallError::Rejected(Rejected::ForcedOpen)));
    clock.advance(Duration::from_secs(3600));
    assert_eq!(
        b.state(),
        State::ForcedOpen,
        "no timer takes it out of forced open"
    );
    assert_eq!(b.next_deadline(), None);
    b.force_close();
    assert_eq!(ok(&b), Ok(()));
    assert_eq!(
        transitions(&events),
        [
            (State::Closed, State::ForcedOpen),
            (State::ForcedOpen, State::Closed)
        ]
    );
}

#[test]
fn force_close_ends_an_open_period_with_an_empty_window() {
    let (b, _, _) = breaker(|b| b);
    trip(&b);
    b.force_close();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.snapshot().window_failures, 0);
    assert_eq!(ok(&b), Ok(()));
}

#[test]
fn disabled_lets_everything_through_and_still_counts() {
    let (b, _, events) = breaker(|b| b);
    b.disable();
    for _ in 0..100 {
        assert_eq!(fail(&b), Err(CallError::Inner(())));
    }
    assert_eq!(b.state(), State::Disabled);
    let s = b.snapshot();
    assert_eq!((s.calls, s.failures, s.window_calls), (100, 100, 0));
    b.force_close();
    assert_eq!(
        transitions(&events),
        [
            (State::Closed, State::Disabled),
            (State::Disabled, State::Closed)
        ]
    );
}

#[test]
fn the_callback_may_call_back_into_the_breaker() {
    let clock = ManualClock::new();
    let slot: Arc<Mutex<Option<CircuitBreaker>>> = Arc::default();
    let inside = Arc::clone(&slot);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen_in = Arc::clone(&seen);
    let b = CircuitBreaker::builder()
        .clock(clock)
        .on_state_change(move |c| {
            // Reading the state from the callback must not deadlock.
            if let Some(b) = inside.lock().unwrap().as_ref() {
                seen_in.lock().unwrap().push((c.to, b.state()));
            }
        })
        .build()
        .unwrap();
    *slot.lock().unwrap() = Some(b.clone());
    b.force_open();
    assert_eq!(
        *seen.lock().unwrap(),
        [(State::ForcedOpen, State::ForcedOpen)]
    );
    slot.lock().unwrap().take();
}

#[test]
fn generations_order_events() {
    let (b, clock, events) = breaker(|b| b);
    trip(&b);
    clock.advance(WAIT);
    let _ = ok(&b);
    let _ = ok(&b);
    let gens: Vec<u32> = events
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.generation)
        .collect();
    assert_eq!(gens, [1, 2, 3]);
    assert_eq!(b.snapshot().transitions, 3);
}

#[test]
fn snapshot_counts_add_up() {
    let (b, clock, _) = breaker(|b| b);
    let _ = ok(&b);
    let _ = fail(&b);
    let _ = ok(&b);
    b.try_acquire().unwrap().record(Outcome::Ignore);
    let _ = ok(&b);
    let _ = fail(&b); // 2 of 5
    let _ = ok(&b);
    let _ = fail(&b); // 3 of 7
    assert_eq!(b.state(), State::Closed);
    let _ = fail(&b); // 4 of 8 -> open
    let _ = ok(&b); // rejected
    clock.advance(Duration::from_secs(1));
    let s = b.snapshot();
    assert_eq!(s.state, State::Open);
    assert_eq!(
        (s.calls, s.successes, s.failures, s.ignored, s.rejected),
        (8, 4, 4, 1, 1)
    );
    assert_eq!(s.window_failure_rate(), 0.5);
    assert_eq!(s.window_slow_call_rate(), 0.0);
}

#[test]
fn the_success_that_reaches_the_minimum_can_open_it() {
    // As in resilience4j: 3 failures, then the 4th call (a success) makes 75 % of 4.
    let (b, _, _) = breaker(|b| b);
    for _ in 0..3 {
        let _ = fail(&b);
    }
    assert_eq!(b.state(), State::Closed);
    let _ = ok(&b);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn the_success_that_reaches_the_minimum_in_a_time_window_can_open_it() {
    let window = SlidingWindow::Time {
        length: Duration::from_secs(10),
        buckets: 10,
    };
    let (b, _, _) = breaker(|b| b.sliding_window(window));
    for _ in 0..3 {
        let _ = fail(&b);
    }
    let _ = ok(&b);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn half_open_snapshot_shows_the_trials() {
    let (b, clock, _) = breaker(|b| b.permitted_calls_in_half_open(3));
    trip(&b);
    clock.advance(WAIT);
    let _ = ok(&b);
    let s = b.snapshot();
    assert_eq!(
        (s.state, s.window_calls, s.window_failures),
        (State::HalfOpen, 1, 0)
    );
}

#[test]
fn bad_settings_are_config_errors() {
    let cases: Vec<(Builder, &str)> = vec![
        (
            CircuitBreaker::builder().failure_rate_threshold(0.0),
            "failure_rate_threshold",
        ),
        (
            CircuitBreaker::builder().failure_rate_threshold(f64::NAN),
            "failure_rate_threshold",
        ),
        (
            CircuitBreaker::builder().slow_call_rate_threshold(1.01),
            "slow_call_rate_threshold",
        ),
        (
            CircuitBreaker::builder().minimum_number_of_calls(0),
            "minimum_number_of_calls",
        ),
        (
            CircuitBreaker::builder().sliding_window(SlidingWindow::Count { size: 0 }),
            "sliding_window",
        ),
        (
            CircuitBreaker::builder().sliding_window(SlidingWindow::Time {
                length: Duration::from_secs(1),
                buckets: 0,
            }),
            "sliding_window",
        ),
        (
            CircuitBreaker::builder().permitted_calls_in_half_open(0),
            "permitted_calls_in_half_open",
        ),
        (
            CircuitBreaker::builder().permitted_calls_in_half_open(4096),
            "permitted_calls_in_half_open",
        ),
        (
            CircuitBreaker::builder().max_wait_in_half_open(Duration::ZERO),
            "max_wait_in_half_open",
        ),
    ];
    for (builder, setting) in cases {
        assert_eq!(builder.build().unwrap_err().setting(), setting);
    }
}

#[test]
fn zero_wait_in_open_goes_half_open_on_the_next_call() {
    let (b, _, _) = breaker(|b| b.wait_in_open(Duration::ZERO));
    for _ in 0..4 {
        let _ = fail(&b);
    }
    assert_eq!(ok(&b), Ok(()));
    assert_eq!(ok(&b), Ok(()));
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn two_threads_on_one_breaker_count_every_call() {
    let (b, _, _) = breaker(|b| {
        b.sliding_window(SlidingWindow::Count { size: 1000 })
            .minimum_number_of_calls(1000)
    });
    std::thread::scope(|s| {
        for t in 0..2 {
            let b = &b;
            s.spawn(move || {
                for i in 0..50_000u32 {
                    // 1 in 10 fails: far below the 50 % threshold.
                    let _ = if (i + t) % 10 == 0 { fail(b) } else { ok(b) };
                }
            });
        }
    });
    let s = b.snapshot();
    assert_eq!(s.state, State::Closed);
    assert_eq!(s.calls, 100_000);
    assert_eq!(s.failures, 10_000);
    assert_eq!(s.window_calls, 1000);
    // The bitmap holds the last 1000 outcomes; with interleaving it is about 10 %.
    assert!(
        (50..=150).contains(&s.window_failures),
        "{}",
        s.window_failures
    );
}

#[test]
fn two_threads_trip_it_exactly_once() {
    let (b, _, events) = breaker(|b| {
        b.sliding_window(SlidingWindow::Count { size: 100 })
            .minimum_number_of_calls(100)
    });
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..10_000 {
                    let _ = fail(&b);
                }
            });
        }
    });
    assert_eq!(b.state(), State::Open);
    assert_eq!(transitions(&events), [(State::Closed, State::Open)]);
}

#[tokio::test]
async fn async_call_and_fallback() {
    let (b, _, _) = breaker(|b| b);
    assert_eq!(b.call(|| async { Ok::<_, ()>(1) }).await, Ok(1));
    trip(&b);
    let cached = b.call_with_fallback(
        || async { Ok::<_, ()>(2) },
        |r| {
            assert!(matches!(r, Rejected::Open { .. }));
            Ok(0)
        },
    );
    assert_eq!(cached.await, Ok(0));
}

#[tokio::test]
async fn a_cancelled_async_trial_hands_its_slot_back() {
    let (b, clock, _) = breaker(|b| b.permitted_calls_in_half_open(1));
    trip(&b);
    clock.advance(WAIT);
    let pending = b.call(std::future::pending::<Result<(), ()>>);
    // Poll once so it takes the trial permit, then drop it.
    let mut pending = Box::pin(pending);
    assert!(futures_poll_once(pending.as_mut()).await.is_none());
    assert_eq!(b.try_acquire().unwrap_err(), Rejected::HalfOpenFull);
    drop(pending);
    assert!(
        b.try_acquire().is_ok(),
        "the cancelled trial's slot came back"
    );
}

async fn futures_poll_once<F: std::future::Future + ?Sized>(
    f: std::pin::Pin<&mut F>,
) -> Option<F::Output> {
    let mut f = Some(f);
    std::future::poll_fn(move |cx| {
        let out = f.take().map(|f| f.poll(cx));
        std::task::Poll::Ready(match out {
            Some(std::task::Poll::Ready(v)) => Some(v),
            _ => None,
        })
    })
    .await
}
