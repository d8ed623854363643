//! `[cluster]` in the driver: the election after the pre-flight (a standby waits there), then the leader's renewal task, its leader-only writes, its status in the snapshot and its stop when the lease is lost.

use std::sync::Arc;
use std::time::Duration;

use gantry_api::model::ClusterView;
use gantry_cluster::{Command, Config, Db, Leadership, LeaseClock, Report, Waiting};
use gantry_spec::model::Cluster;
use tokio::sync::mpsc;

use super::{Driver, Msg, Signals};
use crate::output::{Output, OutputMode};
use gantry_state::StateDir;

/// The election's settings for this instance: the name defaults to host and state dir.
pub(super) fn config(cluster: &Cluster, state_dir: &std::path::Path) -> Config {
    let name = cluster.name.clone().unwrap_or_else(|| {
        let dir = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
        format!("{}:{}", gantry_cluster::hostname(), dir.display())
    });
    Config::new(
        &cluster.store.value,
        &cluster.cluster,
        &name,
        cluster.lease.0,
    )
}

/// How the wait before the boot ended.
pub(super) enum Elected {
    /// This instance leads: boot the stack.
    Lead(Box<Leadership>),
    /// A stop signal while standing by: nothing was started (exit 0).
    Stopped,
    /// The store could not be used at all (exit 1).
    Failed,
}

/// Runs the election after a GO pre-flight: returns at once when this instance takes the
/// lease, else stands by (saying who leads, with which term) until it does or a stop
/// signal comes.
pub(super) async fn elect(
    cfg: &Config,
    mode: OutputMode,
    signals: &mut Signals,
    state: &StateDir,
) -> Elected {
    let out = Output::new(mode, &[]);
    let file = state.cluster_standby();
    let say = |w: Waiting| match w {
        Waiting::Standby { leader, term } => {
            write_standby(&file, cfg, &leader, term);
            if mode == OutputMode::Json {
                out.json(serde_json::json!({
                    "event": "cluster", "role": "standby", "cluster": cfg.cluster,
                    "name": cfg.name, "leader": leader, "term": term,
                }));
            } else {
                out.gantry_line(&format!(
                    "standby: {leader} leads cluster {} (term {term}); {} waits to take over",
                    cfg.cluster, cfg.name
                ));
            }
        }
        Waiting::Trouble(what) => {
            if mode == OutputMode::Json {
                out.json(serde_json::json!({
                    "event": "cluster", "role": "trouble", "message": what,
                }));
            } else {
                out.gantry_line(&format!("cluster: {what}; retrying"));
            }
        }
    };
    let campaign = gantry_cluster::campaign(cfg, say);
    let result = tokio::select! {
        r = campaign => Some(r),
        _ = signals.int.recv() => None,
        _ = signals.term.recv() => None,
    };
    let _ = std::fs::remove_file(state.cluster_standby());
    let Some(result) = result else {
        // Off the leader's list of standbys at once (else it ages out in two leases).
        if let Ok(Ok(db)) = tokio::time::timeout(Duration::from_secs(1), Db::open(cfg)).await {
            let _ = db.leave().await;
        }
        out.gantry_line("standby: stopped; nothing was started");
        return Elected::Stopped;
    };
    match result {
        Ok(l) => {
            if mode == OutputMode::Json {
                out.json(serde_json::json!({
                    "event": "cluster", "role": "leader", "cluster": cfg.cluster,
                    "name": cfg.name, "term": l.term,
                }));
            } else {
                out.gantry_line(&format!(
                    "leader: {} leads cluster {} (term {}); booting the stack",
                    cfg.name, cfg.cluster, l.term
                ));
            }
            Elected::Lead(Box::new(l))
        }
        Err(e) => {
            eprintln!("NO-GO: {e}");
            Elected::Failed
        }
    }
}

/// The standby's view for `gantry status` (a private file in the state dir).
fn write_standby(file: &std::path::Path, cfg: &Config, leader: &str, term: i64) {
    let v = serde_json::json!({
        "cluster": { "cluster": cfg.cluster, "name": cfg.name, "role": "standby",
                     "leader": leader, "term": term, "standbys": [] },
    });
    if let Ok(mut f) = gantry_state::secure::open_private(file, false) {
        let _ = std::io::Write::write_all(&mut f, v.to_string().as_bytes());
    }
}

/// The leader's side in the driver.
pub(super) struct ClusterSide {
    pub view: ClusterView,
    clock: Arc<LeaseClock>,
    commands: mpsc::UnboundedSender<Command>,
    task: tokio::task::JoinHandle<()>,
    /// Why the lease was lost (the stack is being stopped; gantry exits 1).
    pub lost: Option<String>,
    resigned: bool,
}

impl ClusterSide {
    /// Starts the renewal task; its reports come back as [`Msg::Cluster`].
    pub(super) fn start(
        cfg: &Config,
        leadership: Leadership,
        tx: mpsc::UnboundedSender<Msg>,
    ) -> ClusterSide {
        let (commands, rx) = mpsc::unbounded_channel();
        let clock = leadership.clock.clone();
        let view = ClusterView {
            cluster: cfg.cluster.clone(),
            name: cfg.name.clone(),
            role: "leader".into(),
            leader: cfg.name.clone(),
            term: leadership.term,
            standbys: Vec::new(),
        };
        let task = tokio::spawn(leadership.run(rx, move |r| {
            let _ = tx.send(Msg::Cluster(r));
        }));
        ClusterSide {
            view,
            clock,
            commands,
            task,
            lost: None,
            resigned: false,
        }
    }

    /// A leader-only write (fenced by the term in the store).
    pub(super) fn record(&self, action: &str) {
        let _ = self.commands.send(Command::Record(action.to_string()));
    }

    /// True while this instance may act as the leader (its own clock).
    pub(super) fn live(&self) -> bool {
        self.clock.live()
    }
}

impl Driver {
    /// The lease, checked at every turn of the loop: a leader whose lease ran out (a pause
    /// past it, a store it could not reach) stops the stack before it does anything else.
    pub(super) fn check_lease(&mut self) {
        let Some(c) = &mut self.cluster else { return };
        if c.lost.is_some() || c.resigned || c.live() {
            return;
        }
        let why = format!(
            "the lease of term {} ran out before it was renewed",
            c.view.term
        );
        self.cluster_lost(why);
    }

    /// When the loop must look at the lease next (while it leads).
    pub(super) fn lease_deadline(&self) -> Option<tokio::time::Instant> {
        let c = self.cluster.as_ref()?;
        (c.lost.is_none() && !c.resigned)
            .then(|| tokio::time::Instant::from_std(c.clock.deadline()))
    }

    pub(super) fn cluster_report(&mut self, r: Report) {
        match r {
            Report::Standbys(list) => {
                if let Some(c) = &mut self.cluster {
                    c.view.standbys = list;
                    self.host.mark_dirty();
                }
            }
            Report::Trouble(what) => {
                self.out
                    .gantry_line(&format!("cluster: {what}; retrying while the lease lasts"));
                self.event(serde_json::json!({
                    "event": "cluster", "role": "trouble", "message": what,
                }));
            }
            Report::Lost(why) => self.cluster_lost(why),
            Report::Resigned => {}
        }
    }

    fn cluster_lost(&mut self, why: String) {
        let Some(c) = &mut self.cluster else { return };
        if c.lost.is_some() {
            return;
        }
        c.clock.end();
        c.view.role = "stepping-down".into();
        c.lost = Some(why.clone());
        // Nothing to resign: the lease is not this instance's any more.
        c.resigned = true;
        let term = c.view.term;
        self.host.mark_dirty();
        self.out.gantry_line(&format!(
            "cluster: no longer the leader: {why}; stopping the stack (a standby takes over)"
        ));
        self.event(serde_json::json!({
            "event": "cluster", "role": "lost", "term": term, "reason": why,
        }));
        if self.interrupts == 0 {
            self.interrupt("lease lost");
        }
    }

    /// Resigns at once (a stop signal or `gantry down`): the standbys are woken.
    pub(super) fn cluster_resign(&mut self) {
        if let Some(c) = &mut self.cluster
            && !c.resigned
        {
            c.resigned = true;
            c.view.role = "stepping-down".into();
            let _ = c.commands.send(Command::Resign);
            let term = c.view.term;
            self.host.mark_dirty();
            self.event(serde_json::json!({ "event": "cluster", "role": "resigned", "term": term }));
        }
    }

    /// At the end of the run: the resignation is sent and waited for (bounded), so the
    /// standbys hear of it before gantry exits. 1 when the lease was lost.
    pub(super) async fn cluster_finish(&mut self) -> Option<i32> {
        self.cluster_resign();
        let c = self.cluster.as_mut()?;
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut c.task).await;
        c.lost.is_some().then_some(1)
    }

    /// A boot event as a leader-only write.
    pub(super) fn cluster_record(&self, action: &str) {
        if let Some(c) = &self.cluster
            && c.lost.is_none()
            && !c.resigned
        {
            c.record(action);
        }
    }
}
