//! Decodes `[cluster]`: the PostgreSQL store of the leader election, this instance's name, the
//! election's name and the lease's time to live.

use super::{Decoder, Value};
use crate::keys;
use crate::model::*;
use crate::url::redact_url;
use std::time::Duration;

/// The shortest lease: renewals every third of it must fit a round trip to the database.
const LEASE_MIN: Duration = Duration::from_secs(1);
/// The longest lease: a dead leader is replaced within it.
const LEASE_MAX: Duration = Duration::from_secs(3600);

impl Decoder<'_> {
    /// `[cluster]`; None when it is not a table or has no usable `store`.
    pub(super) fn cluster(&mut self, v: &Value<'_>) -> Option<Cluster> {
        let t = self.table(v, "cluster")?;
        self.unknown_keys(t, keys::CLUSTER, "cluster");
        let store = match t.get("store") {
            Some(x) => self.string(x, "cluster.store"),
            None => {
                self.error(
                    "missing-key",
                    "cluster",
                    v.span(),
                    "[cluster] needs `store`: the PostgreSQL database the instances elect their leader in",
                    "write store = \"postgres://user@host:5432/db\" (a ${VAR} keeps the password out of the file)",
                );
                None
            }
        };
        let store = store.filter(|s| {
            let lower = s.value.trim().to_ascii_lowercase();
            let ok = lower.starts_with("postgres://") || lower.starts_with("postgresql://");
            if !ok {
                self.error(
                    "invalid-value",
                    "cluster.store",
                    s.span.clone(),
                    format!(
                        "the cluster store must be a postgres:// URL, not `{}`",
                        redact_url(&s.value)
                    ),
                    "write store = \"postgres://user@host:5432/db\"; only PostgreSQL holds the lease",
                );
            }
            ok
        });
        let name = t
            .get("name")
            .and_then(|x| self.string(x, "cluster.name"))
            .filter(|n| self.cluster_word(n, "cluster.name"))
            .map(|n| n.value);
        let cluster = t
            .get("cluster")
            .and_then(|x| self.string(x, "cluster.cluster"))
            .filter(|n| self.cluster_word(n, "cluster.cluster"))
            .map(|n| n.value)
            .unwrap_or_else(|| "gantry".to_string());
        let lease = match t.get("lease") {
            Some(x) => self.duration(x, "cluster.lease").filter(|d| {
                let ok = (LEASE_MIN..=LEASE_MAX).contains(&d.0);
                if !ok {
                    self.error(
                        "out-of-range",
                        "cluster.lease",
                        x.span(),
                        "the lease must be between 1s and 1h",
                        "write lease = \"5s\" (the default): a dead leader is replaced within it",
                    );
                }
                ok
            }),
            None => None,
        }
        .unwrap_or(Dur(CLUSTER_LEASE));
        Some(Cluster {
            store: store?,
            name,
            cluster,
            lease,
        })
    }

    /// A name shown in the election: not empty, at most 200 bytes, no control characters.
    fn cluster_word(&mut self, n: &crate::model::Sp<String>, path: &str) -> bool {
        let ok = !n.value.trim().is_empty()
            && n.value.len() <= 200
            && !n.value.chars().any(char::is_control);
        if !ok {
            self.error(
                "invalid-value",
                path,
                n.span.clone(),
                "the name must be 1 to 200 characters without control characters",
                "write a short name such as \"web-1\"",
            );
        }
        ok
    }
}
