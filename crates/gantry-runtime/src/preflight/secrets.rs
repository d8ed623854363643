//! The secrets stage of the pre-flight: each secret resolved from its source (environment, file, command, under a timeout), required ones fail closed, placeholders are warned about; values never reach a check's text.

use super::{Builder, Severity};
use crate::env::{SecretValue, global_env};
use crate::probe;
use crate::reaper::Reaper;
use gantry_spec::{Secret, SecretSource, Spec};
use std::path::Path;
use std::time::Duration;

/// Values that mean "nobody set this yet".
fn is_placeholder(v: &str) -> bool {
    let t = v.trim().to_ascii_lowercase();
    [
        "changeme",
        "change-me",
        "change_me",
        "todo",
        "fixme",
        "xxx",
        "secret",
        "password",
        "placeholder",
        "<secret>",
    ]
    .contains(&t.as_str())
}

fn describe(src: &SecretSource) -> String {
    match src {
        SecretSource::FromEnv(v) => format!("environment variable {v}"),
        SecretSource::FromFile(p) => format!("file {p}"),
        SecretSource::FromCommand(argv) => format!("command `{}`", argv.join(" ")),
    }
}

/// The most of a secret file gantry reads (a certificate chain fits many times over).
const SECRET_FILE_CAP: u64 = 1024 * 1024;

/// Resolves every secret `wanted` accepts; failures are checks, values are returned
/// for the services.
pub(super) async fn secrets(
    spec: &Spec,
    base: &Path,
    reaper: &Reaper,
    b: &mut Builder,
    wanted: &(dyn Fn(&Secret) -> bool + Sync),
) -> Vec<SecretValue> {
    let mut out = Vec::new();
    for s in spec.secrets.iter().filter(|s| wanted(s)) {
        let name = &s.name.value;
        let severity = if s.required {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let Some(src) = &s.source else { continue };
        let where_ = describe(&src.value);
        let value: Result<String, String> = match &src.value {
            SecretSource::FromEnv(var) => {
                std::env::var(var).map_err(|_| format!("not set (looked in {where_})"))
            }
            SecretSource::FromFile(p) => {
                let path = base.join(p);
                match gantry_state::bounded::read_capped_text(&path, SECRET_FILE_CAP) {
                    Ok(v) => {
                        use std::os::unix::fs::PermissionsExt as _;
                        if let Ok(meta) = std::fs::metadata(&path)
                            && meta.permissions().mode() & 0o077 != 0
                        {
                            b.push(
                                "config and secrets",
                                "secret file permissions",
                                None,
                                Severity::Warning,
                                false,
                                format!(
                                    "secret {name}: {} is readable by group or others (mode {:o})",
                                    path.display(),
                                    meta.permissions().mode() & 0o777
                                ),
                                Some(format!("chmod 600 {}", path.display())),
                            );
                        }
                        Ok(v.trim_end_matches(['\n', '\r']).to_string())
                    }
                    // The error names the path and the rule, never the content.
                    Err(e) => Err(e.to_string()),
                }
            }
            SecretSource::FromCommand(argv) => {
                let env = global_env(spec, base).unwrap_or_default();
                let (outcome, lines) = probe::capture(
                    argv.clone(),
                    env,
                    Some(base.to_path_buf()),
                    Duration::from_secs(10),
                    reaper,
                )
                .await;
                if outcome.ok {
                    match lines {
                        Some(lines) => Ok(lines.join("\n").trim_end().to_string()),
                        None => Err(format!(
                            "{where_} printed more than {} KiB, the most gantry reads of a secret",
                            probe::CAPTURE_CAP / 1024
                        )),
                    }
                } else {
                    // The command's own output may contain the secret: say only how it ended.
                    Err(format!(
                        "{where_} failed: {}",
                        outcome.message.split(':').next().unwrap_or("failed")
                    ))
                }
            }
        };
        match value {
            Ok(v) if v.is_empty() => b.push(
                "config and secrets",
                "secret",
                None,
                severity,
                false,
                format!("secret {name} is empty (from {where_})"),
                Some("set a value; required secrets fail closed".into()),
            ),
            Ok(v) => {
                if is_placeholder(&v) {
                    b.push(
                        "config and secrets",
                        "secret",
                        None,
                        Severity::Warning,
                        false,
                        format!("secret {name} looks like a placeholder (from {where_})"),
                        Some("replace it with the real value".into()),
                    );
                } else {
                    b.push(
                        "config and secrets",
                        "secret",
                        None,
                        severity,
                        true,
                        format!("secret {name} resolved from {where_}"),
                        None,
                    );
                }
                out.push(SecretValue {
                    name: name.clone(),
                    env: s.env.clone().unwrap_or_else(|| name.clone()),
                    value: v,
                    services: s.services.iter().map(|x| x.value.clone()).collect(),
                });
            }
            Err(e) => b.push(
                "config and secrets",
                "secret",
                None,
                severity,
                false,
                format!("secret {name}: {e}"),
                Some(match &src.value {
                    SecretSource::FromEnv(var) => format!(
                        "export {var}=... before `gantry up`, or use from_file / from_command"
                    ),
                    SecretSource::FromFile(p) => {
                        format!("create {p} (mode 600) or point from_file elsewhere")
                    }
                    SecretSource::FromCommand(_) => {
                        "run the command by hand to see why it fails".into()
                    }
                }),
            ),
        }
    }
    out
}
