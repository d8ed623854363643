//! `gantry export prometheus-rules|kubernetes` (what cannot be translated is named on stderr, never
//! dropped silently) and `gantry probe`, the one-shot probe the exported manifests use.

use crate::Outcome;
use std::path::Path;

pub fn prometheus_rules(file: &Path) -> anyhow::Result<Outcome> {
    let checked = match crate::load::load_valid(file, "invalid; run `gantry check` for details") {
        Ok(c) => c,
        Err(outcome) => return Ok(outcome),
    };
    // The units as they run: a replicated critical service is its instances.
    let critical: Vec<String> = checked
        .plan
        .units
        .iter()
        .filter(|u| u.service.priority == gantry_spec::Priority::Critical)
        .map(|u| u.name().to_string())
        .collect();
    let (yaml, warnings) = gantry_alerts::prometheus_rules(
        &gantry_runtime::alert_rules::rules_of(&checked.spec),
        &gantry_alerts::PromContext {
            critical_services: critical,
        },
    );
    for w in warnings {
        eprintln!("warning: {w}");
    }
    crate::emit(&yaml);
    Ok(Outcome::Success)
}

/// `gantry export kubernetes`.
pub fn kubernetes(
    file: &Path,
    namespace: Option<String>,
    image_map: &[String],
    image: Option<String>,
    gantry_image: String,
    kubectl_image: String,
) -> anyhow::Result<Outcome> {
    let checked = match crate::load::load_valid(file, "invalid; run `gantry check` for details") {
        Ok(c) => c,
        Err(outcome) => return Ok(outcome),
    };
    let mut images = std::collections::BTreeMap::new();
    for m in image_map {
        let Some((name, img)) = m
            .split_once('=')
            .filter(|(n, i)| !n.is_empty() && !i.is_empty())
        else {
            eprintln!("error: --image-map {m}: expected NAME=IMAGE");
            return Ok(Outcome::Usage);
        };
        if !checked.spec.services.iter().any(|s| s.name.value == name) {
            eprintln!("error: --image-map {m}: no service `{name}` in the file");
            return Ok(Outcome::Usage);
        }
        images.insert(name.to_string(), img.to_string());
    }
    let export = gantry_export::kubernetes(
        &checked.spec,
        &gantry_export::Options {
            namespace,
            images,
            default_image: image,
            gantry_image,
            kubectl_image,
        },
    );
    for w in &export.warnings {
        eprintln!("warning: {w}");
    }
    crate::emit(&gantry_export::to_yaml(&export.manifests));
    Ok(Outcome::Success)
}

/// `gantry probe KIND TARGET`: one probe, its message, exit 0 or 1; with `--wait`, probes every
/// `period` until one passes or the wait is over (the exported init containers' wait).
pub fn probe(
    kind: &str,
    target: &str,
    timeout: std::time::Duration,
    wait: Option<std::time::Duration>,
    period: std::time::Duration,
) -> anyhow::Result<Outcome> {
    use gantry_spec::{ProbeKind, StoreProbe, TlsOptions};
    use std::time::{Duration, Instant};
    let store = || StoreProbe {
        url: target.to_string(),
        rw: false,
        queues: Vec::new(),
        require_dlq: false,
        streams: Vec::new(),
        tls: TlsOptions::default(),
    };
    let probe = match kind {
        "tcp" => ProbeKind::Tcp(target.to_string()),
        "http" | "https" => ProbeKind::Http {
            url: target.to_string(),
            expect_status: None,
            expect_body: None,
            tls: TlsOptions::default(),
        },
        "postgres" => ProbeKind::Postgres(store()),
        "mysql" => ProbeKind::Mysql(store()),
        "redis" => ProbeKind::Redis(store()),
        "amqp" => ProbeKind::Amqp(store()),
        "nats" => ProbeKind::Nats(store()),
        "sqlite" => ProbeKind::Sqlite(store()),
        other => {
            eprintln!(
                "error: unknown probe kind `{other}`\n  hint: tcp, http, postgres, mysql, redis, amqp, nats or sqlite"
            );
            return Ok(Outcome::Usage);
        }
    };
    if wait.is_some() && period.is_zero() {
        eprintln!(
            "error: --period 0s would probe without a pause\n  hint: pass --period 1s (or more)"
        );
        return Ok(Outcome::Usage);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = rt.block_on(async {
        let reaper = gantry_runtime::reaper::Reaper::start()
            .map_err(|e| anyhow::anyhow!("cannot start the reaper: {e}"))?;
        let base = std::env::current_dir()?;
        let Some(wait) = wait else {
            return Ok::<_, anyhow::Error>(
                gantry_runtime::probe::run(
                    &probe,
                    Default::default(),
                    None,
                    timeout,
                    &reaper,
                    &base,
                )
                .await,
            );
        };
        let until = Instant::now() + wait;
        let mut said = String::new();
        loop {
            let started = Instant::now();
            let left = until.saturating_duration_since(started);
            let outcome = gantry_runtime::probe::run(
                &probe,
                Default::default(),
                None,
                timeout.min(left.max(Duration::from_millis(1))),
                &reaper,
                &base,
            )
            .await;
            let next = started + period;
            if outcome.ok || next >= until {
                return Ok(outcome);
            }
            // Said once per distinct reason, not once per attempt.
            if outcome.message != said {
                eprintln!("waiting: {}", outcome.message);
                said = outcome.message;
            }
            tokio::time::sleep_until(next.into()).await;
        }
    })?;
    // The message may quote the target: a password in a URL is masked by the probe itself.
    if outcome.ok {
        println!("ok: {}", outcome.message);
        Ok(Outcome::Success)
    } else {
        match wait {
            Some(w) => eprintln!("fail: not passed within {w:?}: {}", outcome.message),
            None => eprintln!("fail: {}", outcome.message),
        }
        Ok(Outcome::Failure)
    }
}
