//! The schema stage of `gantry preflight`: each migrate service's history and live schema verified against what was recorded (dirty rows, changed files, drift).

use gantry_runtime::env::{self, SecretValue};
use gantry_runtime::preflight::{Check, Severity, Status};
use gantry_runtime::redact::Redactor;
use gantry_spec::Spec;
use std::path::Path;
use std::time::Duration;

const STAGE: &str = "schema";

/// How long one migrate service's verification may take (connect, read the history,
/// read the live schema).
const VERIFY_TIMEOUT: Duration = Duration::from_secs(15);

/// The schema checks, one or more per migrate service. `secrets` are the values the
/// pre-flight resolved (a `database` URL may be built from them; they are masked in
/// every message).
pub async fn checks(spec: &Spec, base: &Path, secrets: &[SecretValue]) -> Vec<Check> {
    let redactor = Redactor::new(secrets.iter().map(|s| s.value.clone()));
    let mut out = Vec::new();
    for s in spec.services.iter().filter(|s| s.migrate.is_some()) {
        let name = s.name.value.as_str();
        let check = |severity, status, message: String, hint: Option<String>| Check {
            stage: STAGE,
            check: "migrations".into(),
            service: Some(name.to_string()),
            severity,
            status,
            message: redactor.redact_owned(message),
            hint,
        };
        let Some(m) = &s.migrate else { continue };
        let url = env::migrate_database(s, secrets, &|v| std::env::var(v).ok()).unwrap_or_default();
        if url.trim().is_empty() {
            // The rehearsal reports an empty database URL with what to do.
            continue;
        }
        let spec = gantry_spec::MigrateSpec {
            database: gantry_spec::Sp::new(url, m.database.span.clone()),
            ..gantry_spec::model::MigrateSpec::clone(m)
        };
        let verify_hint = format!("`gantry migrate verify --service {name}` shows every problem");
        let migrator = match gantry_migrate::Migrator::from_spec(&spec, base) {
            Ok(x) => x,
            Err(e) => {
                out.push(check(
                    Severity::Warning,
                    Status::Fail,
                    format!("cannot verify: {e}"),
                    Some(verify_hint),
                ));
                continue;
            }
        };
        match tokio::time::timeout(VERIFY_TIMEOUT, migrator.verify()).await {
            Ok(Ok(v)) => {
                for p in &v.problems {
                    let blocking = p.is_blocking(true);
                    out.push(check(
                        if blocking {
                            Severity::Critical
                        } else {
                            Severity::Warning
                        },
                        Status::Fail,
                        p.to_string(),
                        Some(verify_hint.clone()),
                    ));
                }
                if v.is_ok() {
                    let applied = v.status.rows.len() - v.status.pending();
                    let schema = if v.status.recorded.is_some() {
                        "the schema matches its recorded hash"
                    } else {
                        "no schema hash recorded yet"
                    };
                    out.push(check(
                        Severity::Critical,
                        Status::Pass,
                        format!(
                            "{applied} applied, {} pending, checksums match, {schema}",
                            v.status.pending()
                        ),
                        None,
                    ));
                }
            }
            // Not reachable yet (the database may be a service this stack starts): the
            // boot's migrate service verifies again before it applies anything.
            Ok(Err(e)) => out.push(check(
                Severity::Warning,
                Status::Fail,
                format!("cannot verify: {e}"),
                Some(verify_hint),
            )),
            Err(_) => out.push(check(
                Severity::Warning,
                Status::Fail,
                format!(
                    "cannot verify: no answer within {} s",
                    VERIFY_TIMEOUT.as_secs()
                ),
                Some(verify_hint),
            )),
        }
    }
    out
}
