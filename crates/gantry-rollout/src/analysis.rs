//! The analysis of one window of the canary's own traffic against the thresholds: not verified
//! (too few requests: holds, never passes), pass, or a breach with the numbers that breached.

use serde::{Deserialize, Serialize};

/// What the canary's traffic must stay within.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// The highest share of failed requests (5xx and upstream errors), 0.0-1.0.
    pub max_error_ratio: f64,
    /// The highest p99 latency in milliseconds, when set.
    pub max_p99_ms: Option<f64>,
    /// Fewer requests than this in a window is "not verified".
    pub min_requests: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_error_ratio: 0.01,
            max_p99_ms: None,
            min_requests: 50,
        }
    }
}

/// The canary's traffic over a window (the ingress's tally of the canary instances alone).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Window {
    pub requests: u64,
    pub failures: u64,
    /// None when there were no requests.
    pub p99_ms: Option<f64>,
}

impl Window {
    pub fn error_ratio(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.failures as f64 / self.requests as f64
        }
    }
}

/// Which signal breached, what it was and what it may be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breach {
    /// `error_ratio` or `p99_ms`.
    pub signal: String,
    pub observed: f64,
    pub threshold: f64,
    pub requests: u64,
    pub failures: u64,
}

impl std::fmt::Display for Breach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.signal.as_str() {
            "error_ratio" => write!(
                f,
                "error ratio {:.1} % > {:.1} % ({} of {} requests failed)",
                self.observed * 100.0,
                self.threshold * 100.0,
                self.failures,
                self.requests
            ),
            _ => write!(
                f,
                "p99 {:.1} ms > {:.1} ms over {} requests",
                self.observed, self.threshold, self.requests
            ),
        }
    }
}

/// The verdict on a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Verdict {
    /// Too few requests to judge: the step holds; it never passes on silence.
    NotVerified {
        requests: u64,
        needed: u64,
    },
    Pass,
    Breach(Breach),
}

/// Judges a window. A breach needs no minimum volume when it is already certain: more failures
/// than the allowed ratio of `min_requests` breaches even on a short window (ten 5xx out of ten
/// requests is not "not verified").
pub fn analyze(window: &Window, t: &Thresholds) -> Verdict {
    let allowed = (t.max_error_ratio * t.min_requests.max(1) as f64).floor() as u64;
    let certain = window.failures > allowed;
    if window.requests >= t.min_requests || certain {
        let ratio = window.error_ratio();
        if ratio > t.max_error_ratio {
            return Verdict::Breach(Breach {
                signal: "error_ratio".into(),
                observed: ratio,
                threshold: t.max_error_ratio,
                requests: window.requests,
                failures: window.failures,
            });
        }
    }
    if window.requests < t.min_requests {
        return Verdict::NotVerified {
            requests: window.requests,
            needed: t.min_requests,
        };
    }
    if let (Some(max), Some(p99)) = (t.max_p99_ms, window.p99_ms)
        && p99 > max
    {
        return Verdict::Breach(Breach {
            signal: "p99_ms".into(),
            observed: p99,
            threshold: max,
            requests: window.requests,
            failures: window.failures,
        });
    }
    Verdict::Pass
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(requests: u64, failures: u64, p99: Option<f64>) -> Window {
        Window {
            requests,
            failures,
            p99_ms: p99,
        }
    }

    #[test]
    fn silence_never_passes_and_certain_failure_needs_no_volume() {
        let t = Thresholds {
            max_error_ratio: 0.05,
            max_p99_ms: Some(200.0),
            min_requests: 100,
        };
        assert_eq!(
            analyze(&w(0, 0, None), &t),
            Verdict::NotVerified {
                requests: 0,
                needed: 100
            }
        );
        assert!(matches!(
            analyze(&w(99, 0, Some(1.0)), &t),
            Verdict::NotVerified { .. }
        ));
        assert_eq!(analyze(&w(100, 5, Some(150.0)), &t), Verdict::Pass);
        // 6 failures: more than 5 % of the 100 needed, so certain even on 10 requests.
        let Verdict::Breach(b) = analyze(&w(10, 6, None), &t) else {
            panic!("a certain breach")
        };
        assert_eq!(b.signal, "error_ratio");
        assert_eq!(
            b.to_string(),
            "error ratio 60.0 % > 5.0 % (6 of 10 requests failed)"
        );
        let Verdict::Breach(b) = analyze(&w(1000, 0, Some(250.0)), &t) else {
            panic!("p99")
        };
        assert_eq!(b.signal, "p99_ms");
        // Latency alone is not judged on too few requests.
        assert!(matches!(
            analyze(&w(3, 0, Some(900.0)), &t),
            Verdict::NotVerified { .. }
        ));
    }
}
