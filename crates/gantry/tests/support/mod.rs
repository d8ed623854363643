//! Shared test helpers: a timeline recorder on tokio's (pausable) clock and components that log into it.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gantry::{BoxError, Component};
use tokio::time::Instant;

/// What happened, in order, with the virtual time it happened at.
#[derive(Clone)]
pub struct Timeline {
    epoch: Instant,
    entries: Arc<Mutex<Vec<(String, Duration)>>>,
}

impl Timeline {
    pub fn new() -> Timeline {
        Timeline {
            epoch: Instant::now(),
            entries: Arc::new(Mutex::new(Vec::new())),
        }
    }

    pub fn log(&self, what: impl Into<String>) {
        let at = self.epoch.elapsed();
        self.entries.lock().unwrap().push((what.into(), at));
    }

    /// Every entry's text, in order.
    pub fn events(&self) -> Vec<String> {
        self.entries
            .lock()
            .unwrap()
            .iter()
            .map(|(e, _)| e.clone())
            .collect()
    }

    /// Entries starting with `prefix`, in order, without the prefix.
    pub fn with_prefix(&self, prefix: &str) -> Vec<String> {
        self.events()
            .iter()
            .filter_map(|e| e.strip_prefix(prefix).map(str::to_string))
            .collect()
    }

    /// When `what` was first logged.
    pub fn at(&self, what: &str) -> Duration {
        self.entries
            .lock()
            .unwrap()
            .iter()
            .find(|(e, _)| e == what)
            .map(|(_, at)| *at)
            .unwrap_or_else(|| panic!("{what} never happened: {:?}", self.events()))
    }

    /// Position of `what` in the timeline.
    pub fn index(&self, what: &str) -> usize {
        self.events()
            .iter()
            .position(|e| e == what)
            .unwrap_or_else(|| panic!("{what} never happened: {:?}", self.events()))
    }

    pub fn count(&self, what: &str) -> usize {
        self.events().iter().filter(|e| *e == what).count()
    }
}

/// A component whose init logs `start:NAME`, sleeps `work`, logs `end:NAME`; its cleanup logs
/// `cleanup:NAME`. No retries, no jitter unless the test says otherwise.
pub fn timed(t: &Timeline, name: &str, work: Duration) -> Component {
    let (ti, tc) = (t.clone(), t.clone());
    let (ni, nc) = (name.to_string(), name.to_string());
    Component::new(name)
        .retries(0)
        .jitter(false)
        .init(move || {
            let (t, n) = (ti.clone(), ni.clone());
            async move {
                t.log(format!("start:{n}"));
                tokio::time::sleep(work).await;
                t.log(format!("end:{n}"));
                Ok(())
            }
        })
        .cleanup(move || {
            let (t, n) = (tc.clone(), nc.clone());
            async move {
                t.log(format!("cleanup:{n}"));
            }
        })
}

/// A component whose init fails with `error` after `work` (logging `start:`/`fail:`).
pub fn failing(t: &Timeline, name: &str, work: Duration, error: &'static str) -> Component {
    let (ti, tc) = (t.clone(), t.clone());
    let (ni, nc) = (name.to_string(), name.to_string());
    Component::new(name)
        .retries(0)
        .jitter(false)
        .init(move || {
            let (t, n) = (ti.clone(), ni.clone());
            async move {
                t.log(format!("start:{n}"));
                tokio::time::sleep(work).await;
                t.log(format!("fail:{n}"));
                Err::<(), BoxError>(error.into())
            }
        })
        .cleanup(move || {
            let (t, n) = (tc.clone(), nc.clone());
            async move {
                t.log(format!("cleanup:{n}"));
            }
        })
}

pub const MS: Duration = Duration::from_millis(1);

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
