//! Closed-state overhead of our circuit breaker against `failsafe` and
//! `recloser`, in one run: count window, then time windows and slow-call
//! tracking, then two threads hammering one shared breaker.
//!
//! Every call succeeds, so every breaker stays closed: this measures what a
//! healthy service pays per call. Run:
//! `cargo bench -p gantry-resilience --bench breaker -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use failsafe::CircuitBreaker as _;
use gantry_resilience::breaker::SlidingWindow;
use gantry_resilience::{CircuitBreaker, Clock, CoarseClock, SystemClock};

/// The call being protected: as cheap as possible, so the breaker is what is measured.
#[inline(always)]
fn work(i: u64) -> Result<u64, ()> {
    Ok(black_box(i))
}

fn gantry(window: SlidingWindow, slow: bool, clock: impl Clock) -> CircuitBreaker {
    let b = CircuitBreaker::builder()
        .sliding_window(window)
        .failure_rate_threshold(0.5)
        .clock(clock);
    let b = if slow {
        b.slow_call_duration_threshold(Duration::from_secs(1))
    } else {
        b
    };
    b.build().expect("valid settings")
}

const COUNT: SlidingWindow = SlidingWindow::Count { size: 100 };
const TIME: SlidingWindow = SlidingWindow::Time {
    length: Duration::from_secs(10),
    buckets: 10,
};

fn failsafe_consecutive() -> impl failsafe::CircuitBreaker + Clone + Send + Sync {
    let backoff = failsafe::backoff::constant(Duration::from_secs(10));
    failsafe::Config::new()
        .failure_policy(failsafe::failure_policy::consecutive_failures(5, backoff))
        .build()
}

fn failsafe_time_window() -> impl failsafe::CircuitBreaker + Clone + Send + Sync {
    let backoff = failsafe::backoff::constant(Duration::from_secs(10));
    let policy = failsafe::failure_policy::success_rate_over_time_window(
        0.5,
        10,
        Duration::from_secs(10),
        backoff,
    );
    failsafe::Config::new().failure_policy(policy).build()
}

fn recloser() -> recloser::Recloser {
    recloser::Recloser::custom()
        .error_rate(0.5)
        .closed_len(100)
        .half_open_len(10)
        .open_wait(Duration::from_secs(10))
        .build()
}

fn single_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("closed_count_window");
    g.bench_function("baseline_no_breaker", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            black_box(work(i))
        })
    });
    let ours = gantry(COUNT, false, SystemClock);
    g.bench_function("gantry_count100", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            black_box(ours.call_sync(|| work(i)).is_ok())
        })
    });
    let fs = failsafe_consecutive();
    g.bench_function("failsafe_consecutive5", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            black_box(fs.call(|| work(i)).is_ok())
        })
    });
    let rc = recloser();
    g.bench_function("recloser_ring100", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            black_box(rc.call(|| work(i)).is_ok())
        })
    });
    g.finish();

    let mut g = c.benchmark_group("closed_time_or_slow");
    let cases: [(&str, CircuitBreaker); 6] = [
        ("gantry_time10s_system", gantry(TIME, false, SystemClock)),
        (
            "gantry_time10s_coarse",
            gantry(TIME, false, CoarseClock::new()),
        ),
        (
            "gantry_count100_slow_system",
            gantry(COUNT, true, SystemClock),
        ),
        (
            "gantry_count100_slow_coarse",
            gantry(COUNT, true, CoarseClock::new()),
        ),
        (
            "gantry_time10s_slow_system",
            gantry(TIME, true, SystemClock),
        ),
        (
            "gantry_time10s_slow_coarse",
            gantry(TIME, true, CoarseClock::new()),
        ),
    ];
    for (name, ours) in &cases {
        g.bench_function(*name, |b| {
            let mut i = 0u64;
            b.iter(|| {
                i += 1;
                black_box(ours.call_sync(|| work(i)).is_ok())
            })
        });
    }
    let fs = failsafe_time_window();
    g.bench_function("failsafe_success_rate_10s", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            black_box(fs.call(|| work(i)).is_ok())
        })
    });
    // recloser has no time window or slow-call tracking: its ring, for reference.
    let rc = recloser();
    g.bench_function("recloser_ring100", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            black_box(rc.call(|| work(i)).is_ok())
        })
    });
    g.finish();
}

/// Runs `call` `iters` times on each of two threads started together;
/// returns the slower thread's time, so criterion's figure is the wall time
/// per call *per thread* (two calls complete in that time).
fn two_threads(iters: u64, call: impl Fn(u64) + Sync) -> Duration {
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..iters {
                        call(i);
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .max()
            .unwrap_or_default()
    })
}

fn shared_by_two_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("closed_two_threads_one_breaker");
    let ours = gantry(COUNT, false, SystemClock);
    g.bench_function("gantry_count100", |b| {
        b.iter_custom(|iters| two_threads(iters, |i| drop(black_box(ours.call_sync(|| work(i))))))
    });
    let ours_time = gantry(TIME, true, CoarseClock::new());
    g.bench_function("gantry_time10s_slow_coarse", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |i| drop(black_box(ours_time.call_sync(|| work(i)))))
        })
    });
    let fs = failsafe_consecutive();
    g.bench_function("failsafe_consecutive5", |b| {
        b.iter_custom(|iters| two_threads(iters, |i| drop(black_box(fs.call(|| work(i))))))
    });
    let fs_time = failsafe_time_window();
    g.bench_function("failsafe_success_rate_10s", |b| {
        b.iter_custom(|iters| two_threads(iters, |i| drop(black_box(fs_time.call(|| work(i))))))
    });
    let rc = recloser();
    g.bench_function("recloser_ring100", |b| {
        b.iter_custom(|iters| two_threads(iters, |i| drop(black_box(rc.call(|| work(i))))))
    });
    g.finish();
}

criterion_group!(benches, single_thread, shared_by_two_threads);
criterion_main!(benches);
