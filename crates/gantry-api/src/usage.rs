//! Per-service CPU and memory on demand: a reader of them asks the driver for a fresh `/proc` sample when the published one is too old, instead of the driver scanning `/proc` on a timer while nobody looks.
//!
//! A sample reads every process's `/proc/PID/stat` (about 27 ms at 1,000 services on a 2-vCPU
//! machine): on a timer, that was the largest part of an idle stack's CPU. The driver takes
//! one when a reader of the figures (`/api/v1/status`, a service's view, `/metrics`) finds the
//! published sample ([`Snapshot::usage_sampled`]) older than [`UsageFeed::max_age`], and on
//! its own only when something else needs the figures (an alert rule on `service_rss_bytes`).
//! The reader waits for the snapshot with the new sample (at most [`WAIT`]), so the figures it
//! shows are never older than `max_age`.

use crate::model::Snapshot;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// How long a reader waits for the driver's sample before it answers with the older one.
pub const WAIT: Duration = Duration::from_secs(2);

/// The link between the readers of usage figures and the driver that samples them. The
/// default is inactive: readers never wait (an embedded boot, tests).
#[derive(Debug, Clone, Default)]
pub struct UsageFeed(Option<Arc<Shared>>);

#[derive(Debug)]
struct Shared {
    /// A reader wants a sample.
    wanted: Notify,
    max_age: Duration,
}

impl UsageFeed {
    /// An active feed: figures older than `max_age` are sampled again for a reader.
    pub fn new(max_age: Duration) -> UsageFeed {
        UsageFeed(Some(Arc::new(Shared {
            wanted: Notify::new(),
            max_age,
        })))
    }

    /// How old the figures a reader is shown may be (`None`: inactive).
    pub fn max_age(&self) -> Option<Duration> {
        self.0.as_ref().map(|s| s.max_age)
    }

    /// The driver: resolves when a reader wants a sample (never for an inactive feed). A
    /// request made while the driver was busy is not lost (`Notify` keeps one permit).
    pub async fn wanted(&self) {
        match &self.0 {
            Some(s) => s.wanted.notified().await,
            None => std::future::pending().await,
        }
    }

    /// A reader: the current snapshot, after asking for (and waiting up to [`WAIT`] for) a
    /// new sample when the published one is older than `max_age`.
    pub async fn fresh(&self, snapshot: &watch::Receiver<Arc<Snapshot>>) -> Arc<Snapshot> {
        let snap = snapshot.borrow().clone();
        let Some(s) = &self.0 else { return snap };
        if snap.usage_sampled.is_some_and(|t| t.elapsed() <= s.max_age) {
            return snap;
        }
        let before = snap.usage_sampled;
        let mut rx = snapshot.clone();
        s.wanted.notify_one();
        match tokio::time::timeout(WAIT, rx.wait_for(|n| n.usage_sampled != before)).await {
            Ok(Ok(newer)) => newer.clone(),
            // The driver is gone or busy for longer: what there is.
            _ => snapshot.borrow().clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BootPhase, JsonText};
    use std::time::{Instant, SystemTime};

    fn snap(sampled: Option<Instant>) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            file: String::new(),
            started_at: SystemTime::UNIX_EPOCH,
            boot: BootPhase::Booting,
            shutting_down: false,
            services: Vec::new(),
            graph: JsonText::default(),
            drift_problems: 0,
            cluster: None,
            usage_sampled: sampled,
        })
    }

    #[tokio::test]
    async fn an_inactive_feed_answers_at_once() {
        let (_tx, rx) = watch::channel(snap(None));
        let feed = UsageFeed::default();
        assert_eq!(feed.max_age(), None);
        let got = tokio::time::timeout(Duration::from_millis(100), feed.fresh(&rx))
            .await
            .expect("no wait");
        assert_eq!(got.usage_sampled, None);
    }

    #[tokio::test]
    async fn a_stale_sample_is_asked_for_and_waited_for_and_a_fresh_one_is_not() {
        let old = Instant::now() - Duration::from_secs(30);
        let (tx, rx) = watch::channel(snap(Some(old)));
        let feed = UsageFeed::new(Duration::from_secs(20));
        let driver = feed.clone();
        let task = tokio::spawn(async move {
            driver.wanted().await;
            // An unrelated publication first: the reader keeps waiting for the sample.
            tx.send_replace(snap(Some(old)));
            let new = Instant::now();
            tx.send_replace(snap(Some(new)));
            (tx, new)
        });
        let got = feed.fresh(&rx).await;
        let (_tx, new) = task.await.unwrap();
        assert_eq!(
            got.usage_sampled,
            Some(new),
            "the reader got the new sample"
        );

        let again = tokio::time::timeout(Duration::from_millis(100), feed.fresh(&rx))
            .await
            .expect("a fresh sample is not waited for");
        assert_eq!(again.usage_sampled, Some(new));
        let asked = tokio::time::timeout(Duration::from_millis(50), feed.wanted()).await;
        assert!(asked.is_err(), "no sample was asked for");
    }
}
