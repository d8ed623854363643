//! Proves the hot paths allocate nothing, with a counting global allocator
//! that counts only on the thread under test (tests run in parallel).

// The one place this crate needs unsafe: implementing `GlobalAlloc` is an
// unsafe trait, and the allocator must forward raw pointers to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use gantry_resilience::breaker::{SlidingWindow, State};
use gantry_resilience::retry::{Decision, Retryable};
use gantry_resilience::{
    CircuitBreaker, CoarseClock, ManualClock, RateLimiter, Retry, SystemClock,
};

struct Counting;

thread_local! {
    // Per thread, because tests run in parallel. Const-initialised and
    // without a destructor, so touching them from inside the allocator can
    // never itself allocate or recurse.
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    if TRACKING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every method forwards its arguments unchanged to `System`, which
// upholds the `GlobalAlloc` contract; counting touches no allocator state.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's obligations for `layout` pass through unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: `ptr` came from this allocator (i.e. from `System`) with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator (i.e. from `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    TRACKING.with(|t| t.set(true));
    f();
    TRACKING.with(|t| t.set(false));
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn the_counter_counts() {
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8; 16]))) >= 1);
}

#[test]
fn closed_count_window_calls_allocate_nothing() {
    let b = CircuitBreaker::builder()
        .sliding_window(SlidingWindow::Count { size: 100 })
        .failure_rate_threshold(0.5)
        .build()
        .unwrap();
    let n = allocations(|| {
        for i in 0..100_000u32 {
            let r = b.call_sync(|| if i % 10 == 0 { Err(i) } else { Ok(i) });
            std::hint::black_box(r).ok();
        }
    });
    assert_eq!(n, 0);
    let n = allocations(|| {
        std::hint::black_box(b.snapshot());
    });
    assert_eq!(n, 0, "snapshot");
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn time_window_and_slow_call_tracking_allocate_nothing() {
    for clock in [0, 1] {
        let builder = CircuitBreaker::builder()
            .sliding_window(SlidingWindow::Time {
                length: Duration::from_secs(10),
                buckets: 10,
            })
            .slow_call_duration_threshold(Duration::from_secs(1));
        let b = if clock == 0 {
            builder.clock(SystemClock)
        } else {
            builder.clock(CoarseClock::new())
        }
        .build()
        .unwrap();
        let n = allocations(|| {
            for i in 0..100_000u32 {
                let r = b.call_sync(|| if i % 10 == 0 { Err(i) } else { Ok(i) });
                std::hint::black_box(r).ok();
            }
        });
        assert_eq!(n, 0);
    }
}

#[test]
fn a_full_trip_and_recovery_allocates_nothing() {
    let clock = ManualClock::new();
    let b = CircuitBreaker::builder()
        .sliding_window(SlidingWindow::Count { size: 10 })
        .minimum_number_of_calls(10)
        .permitted_calls_in_half_open(2)
        .wait_in_open(Duration::from_secs(1))
        .clock(clock.clone())
        .on_state_change(|c| {
            std::hint::black_box(c);
        })
        .build()
        .unwrap();
    let n = allocations(|| {
        for _ in 0..10 {
            let _ = b.call_sync(|| Err::<(), _>(()));
        }
        assert!(b.call_sync(|| Ok::<_, ()>(())).is_err(), "open");
        clock.advance(Duration::from_secs(1));
        for _ in 0..2 {
            assert!(b.call_sync(|| Ok::<_, ()>(())).is_ok());
        }
        assert_eq!(b.state(), State::Closed);
    });
    assert_eq!(n, 0);
}

#[test]
fn the_async_call_allocates_nothing() {
    let b = CircuitBreaker::builder().build().unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    let n = allocations(|| {
        for i in 0..1000u32 {
            let fut = pin!(b.call(|| async move { Ok::<_, ()>(i) }));
            assert!(matches!(fut.poll(&mut cx), Poll::Ready(Ok(_))));
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn rate_limiter_and_retry_decisions_allocate_nothing() {
    let limiter = RateLimiter::builder()
        .rate(1000, Duration::from_secs(1))
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let retry = Retry::builder().max_attempts(5).build().unwrap();
    let n = allocations(|| {
        for _ in 0..2000 {
            let _ = std::hint::black_box(limiter.try_acquire());
        }
        for _ in 0..1000 {
            let mut state = retry.begin();
            while let Decision::Retry(d) = state.on_error(Retryable::Yes) {
                std::hint::black_box(d);
            }
        }
    });
    assert_eq!(n, 0);
}
