//! Figures on demand: a reader of the services' figures (CPU, memory, probe counts and durations, output counts) asks the driver for a fresh snapshot when the published one is too old, instead of the driver rebuilding it and scanning `/proc` on timers while nobody looks.
//!
//! Two costs of an idle stack went with the number of services: a `/proc` sample reads every
//! process's `/proc/PID/stat` (about 27 ms at 1,000 services on a 2-vCPU machine), and a
//! snapshot rebuilt only because probe counts moved (about 0.7 ms at 1,000, every 4 s). A state
//! change is still published at once (health answers follow the gates); figures alone are
//! published when a reader ([`FigureFeed::fresh`]: `/api/v1/status`, a service's view,
//! `/metrics`) finds the snapshot older than [`FigureFeed::new`]'s `figures_max_age` or its
//! usage sample older than `usage_max_age`, and on the driver's timers only when something
//! else needs them (alert rules). The reader waits for the new snapshot (at most [`WAIT`]).
//! During the boot the driver answers without a usage sample ([`Snapshot::usage_deferred`]):
//! `up --detach` polls the status, and the scan would delay the boot.

use crate::model::Snapshot;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};

/// How long a reader waits for the driver's snapshot before it answers with the older one.
pub const WAIT: Duration = Duration::from_secs(2);

/// The link between the readers of figures and the driver that publishes them. The default
/// is inactive: readers never wait (an embedded boot, tests).
#[derive(Debug, Clone, Default)]
pub struct FigureFeed(Option<Arc<Shared>>);

#[derive(Debug)]
struct Shared {
    /// A reader wants a fresh snapshot.
    wanted: Notify,
    usage_max_age: Duration,
    figures_max_age: Duration,
}

fn older(at: Option<Instant>, than: Duration) -> bool {
    at.is_none_or(|t| t.elapsed() > than)
}

impl FigureFeed {
    /// An active feed: a snapshot older than `figures_max_age`, or whose CPU and memory
    /// sample is older than `usage_max_age`, is published again for a reader.
    pub fn new(usage_max_age: Duration, figures_max_age: Duration) -> FigureFeed {
        FigureFeed(Some(Arc::new(Shared {
            wanted: Notify::new(),
            usage_max_age,
            figures_max_age,
        })))
    }

    /// Whether a CPU and memory sample taken at `at` is too old to show (never for an
    /// inactive feed).
    pub fn usage_stale(&self, at: Option<Instant>) -> bool {
        self.0.as_ref().is_some_and(|s| older(at, s.usage_max_age))
    }

    /// The driver: resolves when a reader wants a fresh snapshot (never for an inactive
    /// feed). A request made while the driver was busy is not lost (`Notify` keeps one
    /// permit).
    pub async fn wanted(&self) {
        match &self.0 {
            Some(s) => s.wanted.notified().await,
            None => std::future::pending().await,
        }
    }

    /// A reader: the current snapshot, after asking for (and waiting up to [`WAIT`] for) a
    /// new one when its figures are too old.
    pub async fn fresh(&self, snapshot: &watch::Receiver<Arc<Snapshot>>) -> Arc<Snapshot> {
        let snap = snapshot.borrow().clone();
        let Some(s) = &self.0 else { return snap };
        // Usage as recent as allowed, or not sampled for now (during the boot).
        let usage_ok = |n: &Snapshot| n.usage_deferred || !older(n.usage_sampled, s.usage_max_age);
        if !older(snap.published_at, s.figures_max_age) && usage_ok(&snap) {
            return snap;
        }
        let before = snap.published_at;
        let mut rx = snapshot.clone();
        s.wanted.notify_one();
        // The driver's answer: published after the request, with a usage sample recent
        // enough, or deferred (an unrelated state change published in between is not it).
        let answer = rx.wait_for(|n| n.published_at != before && usage_ok(n));
        match tokio::time::timeout(WAIT, answer).await {
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
    use std::time::SystemTime;

    fn snap(published: Option<Instant>, sampled: Option<Instant>) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            file: String::new(),
            started_at: SystemTime::UNIX_EPOCH,
            boot: BootPhase::Booting,
            shutting_down: false,
            services: Vec::new(),
            graph: JsonText::default(),
            drift_problems: 0,
            cluster: None,
            published_at: published,
            usage_sampled: sampled,
            usage_deferred: false,
        })
    }

    const USAGE: Duration = Duration::from_secs(20);
    const FIGURES: Duration = Duration::from_secs(4);

    #[tokio::test]
    async fn an_inactive_feed_answers_at_once() {
        let (_tx, rx) = watch::channel(snap(None, None));
        let feed = FigureFeed::default();
        assert!(!feed.usage_stale(None));
        let got = tokio::time::timeout(Duration::from_millis(100), feed.fresh(&rx))
            .await
            .expect("no wait");
        assert_eq!(got.usage_sampled, None);
    }

    #[tokio::test]
    async fn a_stale_usage_sample_is_asked_for_and_waited_for_and_a_fresh_one_is_not() {
        let now = Instant::now();
        let old = now - Duration::from_secs(30);
        let (tx, rx) = watch::channel(snap(Some(now), Some(old)));
        let feed = FigureFeed::new(USAGE, FIGURES);
        assert!(feed.usage_stale(Some(old)));
        let driver = feed.clone();
        let task = tokio::spawn(async move {
            driver.wanted().await;
            // A state change published first, with the old sample: not the answer.
            tx.send_replace(snap(Some(Instant::now()), Some(old)));
            let new = Instant::now();
            tx.send_replace(snap(Some(new), Some(new)));
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
            .expect("fresh figures are not waited for");
        assert_eq!(again.usage_sampled, Some(new));
        let asked = tokio::time::timeout(Duration::from_millis(50), feed.wanted()).await;
        assert!(asked.is_err(), "nothing was asked for");
    }

    #[tokio::test]
    async fn an_old_snapshot_is_published_again_for_the_reader() {
        let now = Instant::now();
        let old = now - Duration::from_secs(5);
        let (tx, rx) = watch::channel(snap(Some(old), Some(now)));
        let feed = FigureFeed::new(USAGE, FIGURES);
        let driver = feed.clone();
        let task = tokio::spawn(async move {
            driver.wanted().await;
            let new = Instant::now();
            tx.send_replace(snap(Some(new), Some(now)));
            (tx, new)
        });
        let got = feed.fresh(&rx).await;
        let (_tx, new) = task.await.unwrap();
        assert_eq!(got.published_at, Some(new));
    }

    #[tokio::test]
    async fn during_the_boot_no_usage_sample_is_waited_for() {
        let deferred = |published| {
            let mut n = (*snap(published, None)).clone();
            n.usage_deferred = true;
            Arc::new(n)
        };
        let (tx, rx) = watch::channel(deferred(Some(Instant::now())));
        let feed = FigureFeed::new(USAGE, FIGURES);
        let got = tokio::time::timeout(Duration::from_millis(100), feed.fresh(&rx))
            .await
            .expect("fresh figures and a deferred sample: no wait");
        assert!(got.usage_deferred);
        let asked = tokio::time::timeout(Duration::from_millis(50), feed.wanted()).await;
        assert!(asked.is_err(), "nothing was asked for");
        // Old figures are asked for; the answer without a sample is taken.
        tx.send_replace(deferred(Some(Instant::now() - Duration::from_secs(10))));
        let driver = feed.clone();
        let task = tokio::spawn(async move {
            driver.wanted().await;
            let new = Instant::now();
            tx.send_replace(deferred(Some(new)));
            (tx, new)
        });
        let got = tokio::time::timeout(Duration::from_secs(1), feed.fresh(&rx))
            .await
            .expect("the driver's answer is taken without a usage sample");
        let (_tx, new) = task.await.unwrap();
        assert_eq!(got.published_at, Some(new));
    }
}
