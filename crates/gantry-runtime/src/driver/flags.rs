//! The driver's side of feature flags: the definitions (gantry.toml + the flags file) loaded at
//! start, the runtime overrides kept in the state store (set, unset, expiring by themselves on a
//! deadline of the event loop, audited), the effective set published to the API's watch channel
//! and to `state_dir/flags.json`, and the kill switches driving the ingress mode.

use super::Driver;
use gantry_api::model::{ApiCommand, Caller, FlagOverride, FlagsView};
use gantry_flags::{FlagSet, Override, SHED_PERCENT};
use gantry_spec::Spec;
use gantry_state::audit::AuditEntry;
use gantry_state::flag_overrides::StoredOverride;
use gantry_state::store::Store;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio::time::Instant;

/// Flags as the driver holds them.
pub(super) struct FlagsSide {
    /// The definitions, without overrides.
    base: FlagSet,
    /// gantry.toml's `[flags.NAME]` tables (kept to merge each reload of the file over).
    toml: FlagSet,
    /// `[settings] flags_file`, watched for changes (flags_watch.rs).
    file: Option<FlagsFile>,
    /// The overrides in force (from the store at start, then set / unset / expired).
    overrides: Vec<StoredOverride>,
    tx: watch::Sender<Arc<FlagsView>>,
    source: Option<String>,
    /// Where the evaluated values go for services that only read files.
    json_file: PathBuf,
    /// The ingress mode (and brownout's shed share) the kill switches asked for last.
    mode: Option<(&'static str, Option<u8>)>,
    /// Every flag's value without evaluation context, as last published.
    values: serde_json::Map<String, serde_json::Value>,
}

/// The flags file: where it is, and what was last read from it.
pub(super) struct FlagsFile {
    /// Resolved against the stack file's directory.
    path: PathBuf,
    /// As written in gantry.toml (named in problems).
    origin: String,
    /// Hash of the content loaded at start (the watcher's first "last seen").
    hash: u64,
    /// When the set served now was read (RFC 3339).
    loaded_at: String,
    /// Since when the file is invalid, while it is.
    invalid_since: Option<String>,
    /// A "flags: file" mission may be open (one from an earlier run, or opened here).
    mission_open: bool,
}

/// The mission of an invalid flags file (one at a time, no service).
pub(super) const FILE_MISSION: &str = "flags: file";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn show(problems: &[gantry_flags::FlagProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n  ")
}

/// The definitions of `spec`: `[flags.NAME]` tables, and `[settings] flags_file` read and parsed
/// (with the hash of its content), the file winning for the same key when merged.
pub(super) fn load_definitions(
    spec: &Spec,
    base_dir: &Path,
) -> Result<(FlagSet, Option<(FlagSet, FlagsFile)>), String> {
    let defs = spec
        .flags
        .defs
        .iter()
        .map(|d| d.to_flag("gantry.toml"))
        .collect();
    let toml = FlagSet::from_defs(defs).map_err(|p| format!("flags:\n  {}", show(&p)))?;
    let Some(file) = &spec.flags.file else {
        return Ok((toml, None));
    };
    let path = base_dir.join(&file.value);
    let text = gantry_state::bounded::read_capped_text(&path, super::flags_watch::FLAGS_FILE_CAP)
        .map_err(|e| {
        format!(
            "settings.flags_file: {e}\n  hint: create it (flagd's JSON format) or remove the key"
        )
    })?;
    let parsed = FlagSet::parse_flagd(&text, &file.value)
        .map_err(|p| format!("{}:\n  {}", path.display(), show(&p)))?;
    Ok((
        toml,
        Some((
            parsed,
            FlagsFile {
                hash: super::flags_watch::content_hash(text.as_bytes()),
                path,
                origin: file.value.clone(),
                loaded_at: gantry_time::rfc3339_utc(SystemTime::now()),
                invalid_since: None,
                mission_open: true,
            },
        )),
    ))
}

/// How many flags a file defines (the built-in kill switches every set carries left out).
fn defined_in(set: &FlagSet) -> usize {
    set.keys()
        .filter(|k| set.get(k).is_some_and(|f| f.origin != "built-in"))
        .count()
}

impl FlagsSide {
    /// The definitions and the stored overrides; the receiver goes to the API.
    pub(super) fn start(
        spec: &Spec,
        base_dir: &Path,
        state_dir: &Path,
        stored: Option<&Store>,
    ) -> Result<(FlagsSide, watch::Receiver<Arc<FlagsView>>), String> {
        let (toml, file) = load_definitions(spec, base_dir)?;
        let (base, file) = match file {
            Some((parsed, file)) => (FlagSet::merged(&toml, &parsed), Some(file)),
            None => (toml.clone(), None),
        };
        let overrides = match stored {
            Some(store) => store.flag_overrides().unwrap_or_default(),
            None => Vec::new(),
        };
        let (tx, rx) = watch::channel(Arc::new(FlagsView::default()));
        let mut side = FlagsSide {
            base,
            toml,
            file,
            overrides,
            tx,
            source: None,
            json_file: state_dir.join("flags.json"),
            mode: None,
            values: serde_json::Map::new(),
        };
        side.describe_source();
        side.publish();
        Ok((side, rx))
    }

    /// `source` as `gantry flags` shows it: where the definitions come from, when the file was
    /// read, and whether it is invalid now (the last valid set still served).
    fn describe_source(&mut self) {
        self.source = Some(match &self.file {
            None => "gantry.toml".to_string(),
            Some(f) => match &f.invalid_since {
                None => format!("gantry.toml + {} (read {})", f.origin, f.loaded_at),
                Some(since) => format!(
                    "gantry.toml + {} (read {}; the file is invalid since {}, see `gantry missions`)",
                    f.origin, f.loaded_at, since
                ),
            },
        });
    }

    /// Starts watching the flags file (a task; reads come back as `Msg::FlagsFile`).
    pub(super) fn watch(
        &self,
        tx: tokio::sync::mpsc::UnboundedSender<super::Msg>,
    ) -> Result<(), String> {
        let Some(f) = &self.file else { return Ok(()) };
        super::flags_watch::start(f.path.clone(), f.origin.clone(), f.hash, tx)
    }

    fn effective(&self) -> FlagSet {
        let list: Vec<Override> = self
            .overrides
            .iter()
            .filter_map(|o| {
                Some(Override {
                    key: o.key.clone(),
                    value: serde_json::from_str(&o.value).ok()?,
                })
            })
            .collect();
        self.base.with_overrides(&list)
    }

    /// Publishes the effective set to the API and writes `flags.json` (temp file + rename).
    fn publish(&mut self) {
        let set = self.effective();
        let empty = serde_json::Value::Object(serde_json::Map::new());
        let mut values = serde_json::Map::new();
        for key in set.keys() {
            if let Ok(e) = set.evaluate(key, &empty) {
                values.insert(key.to_string(), e.value.unwrap_or(serde_json::Value::Null));
            }
        }
        let overrides = self
            .overrides
            .iter()
            .map(|o| FlagOverride {
                key: o.key.clone(),
                value: serde_json::from_str(&o.value).unwrap_or(serde_json::Value::Null),
                reason: o.reason.clone(),
                actor: o.actor.clone(),
                set_at: o.set_at.clone(),
                expires_at: o.expires_at.clone(),
            })
            .collect();
        self.tx.send_replace(Arc::new(FlagsView {
            set,
            overrides,
            source: self.source.clone(),
        }));
        let text = serde_json::to_string_pretty(&values).unwrap_or_default();
        let tmp = self.json_file.with_extension("json.tmp");
        if std::fs::write(&tmp, text + "\n").is_ok() {
            let _ = std::fs::rename(&tmp, &self.json_file);
        }
        self.values = values;
    }

    /// A flag's value without evaluation context, as last published.
    pub(super) fn value(&self, key: &str) -> Option<serde_json::Value> {
        self.values.get(key).cloned()
    }

    /// A flag's value from its definition alone (what an unset or an expiry reverts to).
    pub(super) fn base_value(&self, key: &str) -> Option<serde_json::Value> {
        self.base
            .evaluate(key, &serde_json::Value::Null)
            .ok()
            .and_then(|e| e.value)
    }

    /// The ingress mode the kill switches call for now, as the audit log shows it.
    pub(super) fn mode_text(&self) -> String {
        match self.mode.unwrap_or_else(|| self.wanted_mode()) {
            (mode, Some(p)) if p > 0 => format!("{mode} (shed {p}%)"),
            (mode, _) => mode.to_string(),
        }
    }

    /// `GANTRY_FLAG_<NAME>` of every flag with a value, as last published.
    pub(super) fn env(&self) -> super::flag_env::FlagEnv {
        super::flag_env::flag_env(&self.values)
    }

    /// The ingress mode the kill switches call for (emergency > write_drain > brownout >
    /// normal) and, in brownout, the share of the other routes' requests shed.
    fn wanted_mode(&self) -> (&'static str, Option<u8>) {
        let set = self.tx.borrow().set.clone();
        let value = |key: &str| {
            set.evaluate(key, &serde_json::Value::Null)
                .ok()
                .and_then(|e| e.value)
        };
        let on = |key: &str| value(key).and_then(|v| v.as_bool()).unwrap_or(false);
        if on("emergency") {
            ("emergency", None)
        } else if on("write_drain") {
            ("write_drain", None)
        } else if on("brownout") {
            let shed = value(SHED_PERCENT)
                .and_then(|v| v.as_f64())
                .map_or(0, |p| p.clamp(0.0, 100.0).round() as u8);
            ("brownout", Some(shed))
        } else {
            ("normal", None)
        }
    }

    /// When the next override expires.
    pub(super) fn deadline(&self) -> Option<Instant> {
        let next = self
            .overrides
            .iter()
            .filter_map(|o| o.expires_at_ms)
            .min()?;
        let wait = u64::try_from(next.saturating_sub(now_ms())).unwrap_or(0);
        Some(Instant::now() + Duration::from_millis(wait))
    }
}

impl Driver {
    /// Switches the ingress to the kill switches' mode when it changed (or at start when a
    /// switch is on).
    pub(super) fn apply_kill_switches(&mut self) {
        let wanted = self.flags.wanted_mode();
        let unchanged = self.flags.mode == Some(wanted)
            || (self.flags.mode.is_none() && wanted == ("normal", None));
        self.flags.mode = Some(wanted);
        if unchanged {
            return;
        }
        let (mode, shed) = wanted;
        if let Some(ing) = &self.ingress {
            match ing.control().set_mode(mode, shed) {
                Ok(applied) => {
                    let share = shed
                        .filter(|p| *p > 0)
                        .map(|p| format!(", shedding {p}% of the other routes"))
                        .unwrap_or_default();
                    self.out
                        .gantry_line(&format!("ingress: mode {applied}{share} (kill switch)"));
                    self.event(serde_json::json!({
                        "event": "ingress_mode",
                        "mode": applied,
                        "shed_percent": shed,
                        "source": "flags",
                    }));
                }
                Err(e) => self
                    .out
                    .gantry_line(&format!("ingress: cannot switch to {mode}: {e}")),
            }
        }
    }

    /// Stores and applies an override of `key` (type-checked); the time it reverts, if any.
    fn put_override(
        &mut self,
        key: &str,
        value: &serde_json::Value,
        expires: Option<Duration>,
        caller: &Caller,
        reason: Option<&str>,
    ) -> Result<Option<SystemTime>, String> {
        self.flags.base.check_override(key, value)?;
        let now = SystemTime::now();
        let until = expires.map(|d| now + d);
        let stored = StoredOverride {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.map(str::to_string),
            actor: caller.actor.clone(),
            set_at: gantry_time::rfc3339_utc(now),
            expires_at_ms: until.map(|t| {
                t.duration_since(UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            }),
            expires_at: until.map(gantry_time::rfc3339_utc),
        };
        if let Some(store) = &self.store {
            store.put_flag_override(&stored)?;
        }
        self.flags.overrides.retain(|o| o.key != key);
        self.flags.overrides.push(stored);
        Ok(until)
    }

    /// Removes the override of `key`; whether there was one.
    fn drop_override(&mut self, key: &str) -> Result<bool, String> {
        if let Some(store) = &self.store {
            store.delete_flag_override(key)?;
        }
        let before = self.flags.overrides.len();
        self.flags.overrides.retain(|o| o.key != key);
        Ok(before != self.flags.overrides.len())
    }

    /// A read of the flags file whose content differs from the last one (flags_watch.rs): a
    /// valid one replaces the file's definitions (gantry.toml's stay, overrides stay), an invalid
    /// or unreadable one keeps the last valid set served and opens a mission.
    pub(super) fn flags_file_read(&mut self, read: super::flags_watch::FileRead) {
        if self.flags.file.is_none() {
            return;
        }
        let shown = read.path.display().to_string();
        let now = gantry_time::rfc3339_utc(SystemTime::now());
        match read.outcome {
            Ok(parsed) => {
                let count = defined_in(&parsed);
                self.flags.base = FlagSet::merged(&self.flags.toml, &parsed);
                let mut resolve = false;
                if let Some(f) = &mut self.flags.file {
                    f.loaded_at = now;
                    f.invalid_since = None;
                    resolve = std::mem::take(&mut f.mission_open);
                }
                self.flags.describe_source();
                // Overrides stay stored; one whose flag went away or changed type is not applied.
                let idle: Vec<String> = self
                    .flags
                    .overrides
                    .iter()
                    .filter_map(|o| {
                        let value = serde_json::from_str(&o.value).ok()?;
                        let why = self.flags.base.check_override(&o.key, &value).err()?;
                        Some(format!("`{}` ({why})", o.key))
                    })
                    .collect();
                self.flags.publish();
                let noun = if count == 1 { "flag" } else { "flags" };
                self.out
                    .gantry_line(&format!("flags: reloaded {shown} ({count} {noun})"));
                if !idle.is_empty() {
                    self.out.gantry_line(&format!(
                        "flags: override(s) kept in the store but not applied: {}; `gantry flag unset KEY` removes one",
                        idle.join("; ")
                    ));
                }
                self.event(serde_json::json!({
                    "event": "flags_reloaded",
                    "file": shown,
                    "flags": count,
                    "revision": format!("{:016x}", self.flags.base.revision()),
                    "idle_overrides": idle.len(),
                }));
                if resolve {
                    self.open_pending_store();
                    if let Some(store) = &self.store {
                        store.resolve_missions(FILE_MISSION, None);
                    }
                }
                self.deliver_flag_env();
                self.apply_kill_switches();
            }
            Err(problem) => {
                let mut loaded_at = String::new();
                if let Some(f) = &mut self.flags.file {
                    f.invalid_since.get_or_insert(now);
                    f.mission_open = true;
                    loaded_at.clone_from(&f.loaded_at);
                }
                self.flags.describe_source();
                self.flags.publish();
                self.out.gantry_line(&format!(
                    "flags: {problem}\n  still serving the last valid set (read {loaded_at}); fix the file and gantry reloads it by itself"
                ));
                self.event(serde_json::json!({
                    "event": "flags_invalid",
                    "file": shown,
                    "error": problem,
                }));
                self.open_pending_store();
                self.open_mission(&gantry_state::missions::NewMission {
                    service: None,
                    layer: None,
                    check: FILE_MISSION.to_string(),
                    error: problem,
                    output: Vec::new(),
                    fix_criteria: "the flags file parses and validates".to_string(),
                    next_step: format!(
                        "fix {shown} (`gantry check` lists every problem); gantry reloads it by itself and serves the last valid set meanwhile"
                    ),
                });
            }
        }
    }

    /// Once the boot is decided: a "flags: file" mission an earlier run left open is resolved,
    /// the file having loaded fine at this start.
    pub(super) fn flags_settled(&mut self) {
        let Some(f) = &mut self.flags.file else {
            return;
        };
        if f.invalid_since.is_some() || !std::mem::take(&mut f.mission_open) {
            return;
        }
        if let Some(store) = &self.store {
            store.resolve_missions(FILE_MISSION, None);
        }
    }

    /// `SetFlag` / `UnsetFlag` / `IngressMode` from the API (already recorded in the audit log).
    pub(super) fn flag_command(
        &mut self,
        cmd: ApiCommand,
        caller: &Caller,
        reason: Option<&str>,
    ) -> Result<String, String> {
        self.open_pending_store();
        let message = match cmd {
            ApiCommand::SetFlag {
                key,
                value,
                expires,
            } => {
                let until = self.put_override(&key, &value, expires, caller, reason)?;
                let until = until
                    .map(|t| format!(" until {}", gantry_time::rfc3339_utc(t)))
                    .unwrap_or_default();
                format!("flag `{key}` overridden to {value}{until}")
            }
            ApiCommand::UnsetFlag { key } => {
                if self.flags.base.get(&key).is_none() {
                    return Err(format!("unknown flag `{key}`"));
                }
                if self.drop_override(&key)? {
                    format!("flag `{key}` override removed")
                } else {
                    format!("flag `{key}` had no override")
                }
            }
            ApiCommand::IngressMode { mode, shed_percent } => {
                self.ingress_mode_command(&mode, shed_percent, caller, reason)?
            }
            _ => return Err("not a flag command".to_string()),
        };
        self.out.gantry_line(&format!(
            "flags: {message} by {}{}",
            caller.actor,
            reason.map(|r| format!(": {r}")).unwrap_or_default()
        ));
        self.flags_changed();
        Ok(message)
    }

    /// `POST /api/v1/ingress/mode`: the kill switches set so that their mode is `mode` — one
    /// source of truth, the flags. A switch whose definition already gives the wanted value
    /// loses its override; the others get one.
    fn ingress_mode_command(
        &mut self,
        mode: &str,
        shed_percent: Option<u8>,
        caller: &Caller,
        reason: Option<&str>,
    ) -> Result<String, String> {
        if !matches!(mode, "normal" | "write_drain" | "brownout" | "emergency") {
            return Err(format!(
                "unknown mode `{mode}`: modes are normal, write_drain, brownout, emergency"
            ));
        }
        if self.ingress.is_none() {
            return Err("this stack has no ingress".to_string());
        }
        let mut wanted: Vec<(&str, serde_json::Value)> = ["emergency", "write_drain", "brownout"]
            .into_iter()
            .map(|k| (k, serde_json::Value::Bool(k == mode)))
            .collect();
        if mode == "brownout" {
            wanted.push((
                SHED_PERCENT,
                serde_json::Value::from(shed_percent.unwrap_or(0).min(100)),
            ));
        }
        let empty = serde_json::Value::Null;
        let mut switches = Vec::new();
        for (key, value) in wanted {
            let base = self
                .flags
                .base
                .evaluate(key, &empty)
                .ok()
                .and_then(|e| e.value);
            if base.as_ref() == Some(&value) {
                self.drop_override(key)?;
            } else {
                self.put_override(key, &value, None, caller, reason)?;
            }
            switches.push(format!("{key} {value}"));
        }
        Ok(format!(
            "ingress mode {mode} (kill switches: {})",
            switches.join(", ")
        ))
    }

    /// The effective flags changed: published (API, `flags.json`), delivered to the services'
    /// environment (restarting those that asked for it), the kill switches applied.
    pub(super) fn flags_changed(&mut self) {
        self.flags.publish();
        self.deliver_flag_env();
        self.apply_kill_switches();
    }

    /// Reverts the overrides whose time is up, each recorded in the audit log (`flag.expire`).
    pub(super) fn expire_flags(&mut self) {
        let now = now_ms();
        let due: Vec<StoredOverride> = self
            .flags
            .overrides
            .iter()
            .filter(|o| o.expires_at_ms.is_some_and(|t| t <= now))
            .cloned()
            .collect();
        if due.is_empty() {
            return;
        }
        for o in &due {
            let id = self.audit_begin(&AuditEntry {
                actor: "gantry".to_string(),
                action: "flag.expire".to_string(),
                target: Some(o.key.clone()),
                reason: Some(format!(
                    "the override set by {} expired at {}",
                    o.actor,
                    o.expires_at.clone().unwrap_or_default()
                )),
                before: serde_json::from_str(&o.value)
                    .ok()
                    .map(|v| super::audit::flag_text(&o.key, &v)),
                after: self
                    .flags
                    .base_value(&o.key)
                    .map(|v| super::audit::flag_text(&o.key, &v)),
            });
            let result = match &self.store {
                Some(store) => store.delete_flag_override(&o.key),
                None => Ok(()),
            };
            let answer = result.map(|()| format!("flag `{}` override expired", o.key));
            if let Some(id) = id {
                self.audit_end(id, &answer);
            }
            self.out
                .gantry_line(&format!("flags: the override of `{}` expired", o.key));
        }
        self.flags
            .overrides
            .retain(|o| !due.iter().any(|d| d.key == o.key));
        self.flags_changed();
    }
}

/// Where services find OFREP: the API's base URL and the read-only token. Only for a TCP
/// address (`api` is the one bound when the file says port 0, api.rs): a unix socket is not an
/// HTTP URL an OpenFeature SDK can use ([`UNIX_API_NOTE`]).
pub(super) fn ofrep_env(api: &str, read_token: &str) -> Vec<(String, String)> {
    let Ok(addr) = api.parse::<std::net::SocketAddr>() else {
        return Vec::new();
    };
    if addr.port() == 0 || read_token.is_empty() {
        return Vec::new();
    }
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    vec![
        (
            "GANTRY_OFREP_URL".to_string(),
            format!("http://{host}:{}", addr.port()),
        ),
        ("GANTRY_OFREP_TOKEN".to_string(), read_token.to_string()),
    ]
}

/// Said once at `gantry up` (and by `gantry check`) when the stack has flags and its API listens
/// on a unix socket.
pub const UNIX_API_NOTE: &str = "note: the API listens on a unix socket, so services get no GANTRY_OFREP_URL (OpenFeature's OFREP providers speak HTTP over TCP); they read their flags from state_dir/flags.json or GANTRY_FLAG_<NAME>, or set [settings] api to a TCP address (127.0.0.1:0 picks a free port) for OFREP";

/// Adds `extra` to a service's environment unless the service sets the variable itself.
pub(super) fn add_env(env: &mut crate::envset::Env, extra: &[(String, String)]) {
    for (k, v) in extra {
        if !env.contains(k) {
            env.set(k, v.clone());
        }
    }
}
