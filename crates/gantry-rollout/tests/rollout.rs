//! The rollout machine on virtual time: canary steps promoted, a breaching canary rolled back within
//! one interval, silence holds and never promotes, blue/green switch and switch-back, manual
//! commands, and a rollout saved mid-step and resumed.

use gantry_rollout::*;

const INTERVAL: u64 = 10_000;

fn plan(strategy: Strategy) -> Plan {
    Plan {
        strategy,
        interval_ms: INTERVAL,
        thresholds: Thresholds {
            max_error_ratio: 0.05,
            max_p99_ms: Some(500.0),
            min_requests: 100,
        },
        max_hold_ms: 30_000,
        on_max_hold: OnMaxHold::Pause,
    }
}

fn canary() -> Plan {
    plan(Strategy::Canary {
        steps: vec![1, 10, 50, 100],
    })
}

fn window(requests: u64, failures: u64) -> Window {
    Window {
        requests,
        failures,
        p99_ms: (requests > 0).then_some(20.0),
    }
}

fn weights(out: &[Output]) -> Vec<u8> {
    out.iter()
        .filter_map(|o| match o {
            Output::Weight(w) => Some(*w),
            _ => None,
        })
        .collect()
}

/// Feeds `window` at every deadline until the phase changes or `until` passes; returns the
/// outputs and the time reached.
fn run(r: &mut Rollout, mut now: u64, until: u64, window: Window) -> (Vec<Output>, u64) {
    let mut all = Vec::new();
    while let Some(at) = r.deadline() {
        if at > until {
            break;
        }
        now = now.max(at);
        let out = r.handle(now, Input::Analysis(window)).unwrap();
        let changed = out.iter().any(|o| matches!(o, Output::Phase(_)));
        all.extend(out);
        if changed {
            break;
        }
    }
    (all, now)
}

#[test]
fn a_healthy_canary_is_promoted_through_every_step() {
    let (mut r, out) = Rollout::start(canary());
    assert_eq!(out[0], Output::StartNew);
    assert_eq!(weights(&out), Vec::<u8>::new(), "no traffic before ready");
    // Analyses before ready change nothing.
    assert!(
        r.handle(0, Input::Analysis(window(0, 0)))
            .unwrap()
            .is_empty()
    );
    let out = r.handle(1_000, Input::Ready).unwrap();
    assert_eq!(weights(&out), [1]);
    let mut seen = vec![1];
    let mut now = 1_000;
    for _ in 0..10 {
        let (out, t) = run(&mut r, now, u64::MAX, window(500, 2));
        now = t;
        seen.extend(weights(&out));
        if out.contains(&Output::Promote) {
            break;
        }
    }
    assert_eq!(seen, [1, 10, 50, 100, 100]);
    assert_eq!(r.phase, Phase::Promoted);
    // Each step lasted its interval: 4 steps from t=1 s.
    assert_eq!(now, 1_000 + 4 * INTERVAL);
    assert!(r.handle(now, Input::Pause).is_err());
}

#[test]
fn a_canary_with_a_fifth_of_its_requests_failing_is_rolled_back_within_one_interval() {
    let (mut r, _) = Rollout::start(canary());
    r.handle(0, Input::Ready).unwrap();
    let (out, now) = run(&mut r, 0, u64::MAX, window(200, 40));
    assert!(now < INTERVAL, "rolled back at {now} ms");
    assert_eq!(weights(&out), [0], "traffic back to stable first");
    let Some(Output::Rollback {
        breach: Some(b), ..
    }) = out.iter().find(|o| matches!(o, Output::Rollback { .. }))
    else {
        panic!("{out:?}")
    };
    assert_eq!((b.requests, b.failures), (200, 40));
    assert!((b.observed - 0.2).abs() < 1e-9);
    assert!(matches!(r.phase, Phase::RolledBack { .. }));
}

#[test]
fn a_canary_without_traffic_holds_and_never_promotes() {
    let (mut r, _) = Rollout::start(canary());
    r.handle(0, Input::Ready).unwrap();
    let (out, now) = run(&mut r, 0, 10 * 60_000, window(3, 0));
    // It held at 1 % until max_hold after the interval, then paused (never a step further).
    assert!(weights(&out).is_empty(), "{out:?}");
    let Phase::Paused { step, percent, why } = &r.phase else {
        panic!("{:?}", r.phase)
    };
    assert_eq!((*step, *percent), (0, 1));
    assert!(why.contains("3 of the 100 requests"), "{why}");
    assert!(now >= INTERVAL + 30_000);
    assert!(matches!(
        r.last_verdict,
        Some(Verdict::NotVerified { requests: 3, .. })
    ));
    // Configured to roll back instead.
    let mut p = canary();
    p.on_max_hold = OnMaxHold::Rollback;
    let (mut r, _) = Rollout::start(p);
    r.handle(0, Input::Ready).unwrap();
    let (out, _) = run(&mut r, 0, 10 * 60_000, window(0, 0));
    assert_eq!(weights(&out), [0]);
    assert!(matches!(r.phase, Phase::RolledBack { breach: None, .. }));
}

#[test]
fn blue_green_switches_at_once_and_switches_back_on_a_breach() {
    let (mut r, _) = Rollout::start(plan(Strategy::BlueGreen));
    let out = r.handle(0, Input::Ready).unwrap();
    assert_eq!(weights(&out), [100], "one atomic switch");
    let slow = Window {
        requests: 1_000,
        failures: 0,
        p99_ms: Some(900.0),
    };
    let (out, _) = run(&mut r, 0, u64::MAX, slow);
    assert_eq!(weights(&out), [0], "switched back");
    let Phase::RolledBack {
        breach: Some(b), ..
    } = &r.phase
    else {
        panic!()
    };
    assert_eq!(b.signal, "p99_ms");
    // A healthy green is promoted after the post-switch interval.
    let (mut r, _) = Rollout::start(plan(Strategy::BlueGreen));
    r.handle(0, Input::Ready).unwrap();
    let (out, now) = run(&mut r, 0, u64::MAX, window(1_000, 1));
    assert!(out.contains(&Output::Promote));
    assert_eq!(now, INTERVAL);
}

#[test]
fn operators_promote_pause_resume_and_abort_and_wrong_commands_are_refused() {
    let (mut r, _) = Rollout::start(canary());
    assert!(
        r.handle(0, Input::Promote)
            .unwrap_err()
            .contains("not ready")
    );
    assert!(r.handle(0, Input::Resume).is_err());
    r.handle(0, Input::Ready).unwrap();
    r.handle(100, Input::Pause).unwrap();
    assert!(r.handle(200, Input::Pause).is_err());
    // Paused: a passing window does not advance it.
    let out = r.handle(50_000, Input::Analysis(window(1_000, 0))).unwrap();
    assert!(out.is_empty());
    // Resume starts the step's window over.
    let out = r.handle(60_000, Input::Resume).unwrap();
    assert_eq!(weights(&out), [1]);
    assert!(matches!(
        r.phase,
        Phase::Step {
            since_ms: 60_000,
            ..
        }
    ));
    let out = r.handle(61_000, Input::Promote).unwrap();
    assert!(out.contains(&Output::Promote));
    let (mut r, _) = Rollout::start(canary());
    r.handle(0, Input::Ready).unwrap();
    let out = r
        .handle(5, Input::Abort("aborted by cli:bob".into()))
        .unwrap();
    assert_eq!(weights(&out), [0]);
    assert!(r.handle(6, Input::Resume).unwrap_err().contains("finished"));
    // A new release that dies rolls back.
    let (mut r, _) = Rollout::start(canary());
    let out = r.handle(0, Input::Failed("exit status 1".into())).unwrap();
    assert!(matches!(&out[1], Output::Rollback { why, .. } if why.contains("exit status 1")));
}

#[test]
fn a_rollout_saved_mid_step_resumes_that_step_with_a_fresh_window() {
    let (mut r, _) = Rollout::start(canary());
    r.handle(0, Input::Ready).unwrap();
    run(&mut r, 0, INTERVAL, window(500, 0));
    assert!(matches!(r.phase, Phase::Step { index: 1, .. }));
    let saved = serde_json::to_string(&r).unwrap();
    // gantry is killed; the next one loads the state.
    let loaded: Rollout = serde_json::from_str(&saved).unwrap();
    let (mut r, out, why) = loaded.resume();
    assert_eq!(out[0], Output::Weight(0), "no split without analysis");
    assert!(out.contains(&Output::StartNew));
    assert!(why.contains("step 2 (10 %)"), "{why}");
    assert_eq!(r.deadline(), None, "nothing analysed until ready");
    let out = r.handle(500_000, Input::Ready).unwrap();
    assert_eq!(weights(&out), [10]);
    assert!(matches!(
        r.phase,
        Phase::Step {
            index: 1,
            since_ms: 500_000,
            ..
        }
    ));
    // A finished rollout resumes to nothing.
    let done: Rollout = serde_json::from_str(
        &serde_json::to_string(&{
            let (mut d, _) = Rollout::start(canary());
            d.handle(0, Input::Abort("x".into())).unwrap();
            d
        })
        .unwrap(),
    )
    .unwrap();
    let (_, out, _) = done.resume();
    assert!(out.is_empty());
}

#[test]
fn a_plan_is_checked() {
    assert!(canary().check().is_empty());
    let mut p = canary();
    p.strategy = Strategy::Canary {
        steps: vec![10, 5, 0, 101],
    };
    p.interval_ms = 0;
    p.thresholds.max_error_ratio = 2.0;
    assert_eq!(p.check().len(), 4, "{:?}", p.check());
}
