//! Decodes `[settings]` (with its `logs` and `retention` tables) and `[secrets.NAME]`.

use super::{Decoder, Value, join};
use crate::keys;
use crate::model::*;
use toml::Spanned;
use toml::de::DeTable;

impl Decoder<'_> {
    pub(super) fn settings(&mut self, t: &DeTable<'_>) -> Settings {
        self.unknown_keys(t, keys::SETTINGS, "settings");
        let mut s = Settings::default();
        if let Some(v) = t.get("state_dir")
            && let Some(x) = self.string(v, "settings.state_dir")
        {
            s.state_dir = x.value;
        }
        if let Some(v) = t.get("api")
            && let Some(x) = self.string(v, "settings.api")
        {
            let ok =
                x.value.starts_with("unix:") || x.value.parse::<std::net::SocketAddr>().is_ok();
            if ok {
                s.api = x.value;
            } else {
                self.error(
                    "invalid-value",
                    "settings.api",
                    v.span(),
                    format!("`{}` is not an address", x.value),
                    "write host:port such as \"127.0.0.1:7070\", or \"unix:/path/to/socket\"",
                );
            }
        }
        if let Some(v) = t.get("api_tokens")
            && let Some(x) = self.string(v, "settings.api_tokens")
        {
            s.api_tokens = Some(x.value);
        }
        if let Some(v) = t.get("shutdown_timeout")
            && let Some(d) = self.duration(v, "settings.shutdown_timeout")
        {
            s.shutdown_timeout = d;
        }
        if let Some(v) = t.get("allow_degraded")
            && let Some(b) = self.boolean(v, "settings.allow_degraded")
        {
            s.allow_degraded = b;
        }
        if let Some(v) = t.get("revalidate") {
            s.revalidate = self.duration(v, "settings.revalidate");
        }
        if let Some(v) = t.get("logs") {
            s.logs = self.logs(v, "settings.logs", LogRotation::default());
            self.logs = s.logs;
        }
        if let Some(v) = t.get("retention") {
            s.retention = self.retention(v, "settings.retention");
        }
        s
    }

    /// `{ max_size = "10MiB", keep = 3 }`; a missing or bad key keeps its value in `base`.
    pub(super) fn logs(&mut self, v: &Value<'_>, path: &str, base: LogRotation) -> LogRotation {
        let mut l = base;
        let Some(t) = self.table(v, path) else {
            return l;
        };
        self.unknown_keys(t, keys::LOGS, path);
        if let Some(x) = t.get("max_size") {
            l.max_size = self
                .size(x, &join(path, "max_size"), keys::LOG_MIN_SIZE)
                .unwrap_or(l.max_size);
        }
        if let Some(x) = t.get("keep") {
            l.keep = self
                .int(x, &join(path, "keep"), 0, 1000)
                .map_or(l.keep, |n| n as u32);
        }
        l
    }

    pub(super) fn secret(
        &mut self,
        key: &Spanned<std::borrow::Cow<'_, str>>,
        v: &Value<'_>,
    ) -> Option<Secret> {
        let path = join("secrets", key.get_ref());
        let t = self.table(v, &path)?;
        self.unknown_keys(t, keys::SECRET, &path);
        let mut sources = Vec::new();
        for (name, make) in [
            (
                "from_env",
                SecretSource::FromEnv as fn(String) -> SecretSource,
            ),
            ("from_file", SecretSource::FromFile),
        ] {
            if let Some(x) = t.get(name)
                && let Some(s) = self.string(x, &join(&path, name))
            {
                sources.push(Sp::new(make(s.value), x.span()));
            }
        }
        if let Some(x) = t.get("from_command")
            && let Some(c) = self.command(x, &join(&path, "from_command"))
        {
            sources.push(Sp::new(SecretSource::FromCommand(c.value), x.span()));
        }
        if sources.len() > 1 {
            self.error(
                "secret-source",
                &path,
                key.span(),
                "a secret needs exactly one source, found several",
                "keep one of from_env, from_file or from_command",
            );
        }
        if sources.is_empty()
            && !["from_env", "from_file", "from_command"]
                .iter()
                .any(|k| t.contains_key(*k))
        {
            self.error(
                "secret-source",
                &path,
                key.span(),
                "a secret needs a source",
                "add from_env = \"VAR\", from_file = \"path\" or from_command = \"cmd\"",
            );
        }
        let required = t
            .get("required")
            .and_then(|x| self.boolean(x, &join(&path, "required")))
            .unwrap_or(true);
        let services = t
            .get("services")
            .map(|x| self.str_list(x, &join(&path, "services")))
            .unwrap_or_default();
        let env = t
            .get("env")
            .and_then(|x| self.string(x, &join(&path, "env")))
            .map(|s| s.value);
        Some(Secret {
            name: Sp::new(key.get_ref().to_string(), key.span()),
            source: sources.into_iter().next(),
            required,
            services,
            env,
        })
    }

    /// `{ boots = 100, missions = "30d" }`; a missing or bad key keeps its default.
    fn retention(&mut self, v: &Value<'_>, path: &str) -> Retention {
        let mut r = Retention::default();
        let Some(t) = self.table(v, path) else {
            return r;
        };
        self.unknown_keys(t, keys::RETENTION, path);
        if let Some(x) = t.get("boots") {
            r.boots = self
                .int(x, &join(path, "boots"), 1, 1_000_000)
                .map_or(r.boots, |n| n as u64);
        }
        if let Some(x) = t.get("missions") {
            r.missions = self
                .duration(x, &join(path, "missions"))
                .unwrap_or(r.missions);
        }
        r
    }
}
