//! The cluster stage of `gantry preflight`: the `[cluster]` store reached (nothing created there), and who leads the election now.

use gantry_cluster::{Config, Db};
use gantry_runtime::preflight::{Check, Severity, Status};
use gantry_spec::Spec;

/// One check when the file has `[cluster]`: critical when the store cannot be read.
pub async fn checks(spec: &Spec) -> Vec<Check> {
    let Some(c) = &spec.cluster else {
        return Vec::new();
    };
    let cfg = Config::new(&c.store.value, &c.cluster, "preflight", c.lease.0);
    let check = |status, message: String, hint: Option<String>| Check {
        stage: "cluster",
        check: "cluster store".into(),
        service: None,
        severity: Severity::Critical,
        status,
        message,
        hint,
    };
    let seen = match Db::open(&cfg).await {
        Ok(db) => db.lease().await,
        Err(e) => Err(e),
    };
    let message = match seen {
        Err(e) => return vec![check(Status::Fail, e.what, Some(e.hint))],
        Ok(Some(s)) if !s.remaining.is_zero() => format!(
            "{}: {} leads cluster {} (term {}); this instance would stand by",
            cfg.shown(),
            s.holder,
            cfg.cluster,
            s.term
        ),
        Ok(Some(s)) => format!(
            "{}: nobody leads cluster {} (term {} ended); this instance would lead",
            cfg.shown(),
            cfg.cluster,
            s.term
        ),
        Ok(None) => format!(
            "{}: no election for cluster {} yet; this instance would lead",
            cfg.shown(),
            cfg.cluster
        ),
    };
    vec![check(Status::Pass, message, None)]
}
