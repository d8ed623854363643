//! Decodes `[services.NAME]` and the keys it shares with `[defaults]`: restart policy, dependencies, migrate and data directory.

use super::{Decoder, Value, join, priority};
use crate::diag::Diagnostic;
use crate::keys;
use crate::model::*;
use crate::source::Span;
use std::time::Duration;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

impl Decoder<'_> {
    /// The keys `[defaults]` and a service share; `logs_base` is the rotation whose keys a
    /// `logs` table here leaves unchanged.
    pub(super) fn inheritable(
        &mut self,
        t: &DeTable<'_>,
        path: &str,
        logs_base: LogRotation,
    ) -> ServiceDefaults {
        let mut d = ServiceDefaults::default();
        if let Some(v) = t.get("logs") {
            d.logs = Some(self.logs(v, &join(path, "logs"), logs_base));
        }
        if let Some(v) = t.get("working_dir") {
            d.working_dir = self.string(v, &join(path, "working_dir")).map(|s| s.value);
        }
        if let Some(v) = t.get("env") {
            d.env = self.env_table(v, &join(path, "env"));
        }
        if let Some(v) = t.get("priority") {
            d.priority = self
                .enumeration(v, &join(path, "priority"), keys::PRIORITIES)
                .map(priority);
        }
        if let Some(v) = t.get("restart") {
            d.restart = self
                .enumeration(v, &join(path, "restart"), keys::RESTARTS)
                .map(|r| match r {
                    "always" => Restart::Always,
                    "on-failure" => Restart::OnFailure,
                    _ => Restart::Never,
                });
        }
        if let Some(v) = t.get("retry") {
            d.retry = self.retry(v, &join(path, "retry"));
        }
        if let Some(v) = t.get("start_limit") {
            d.start_limit = self.start_limit(v, &join(path, "start_limit"));
        }
        if let Some(v) = t.get("start_breaker") {
            d.start_breaker = self.start_breaker(v, &join(path, "start_breaker"));
        }
        if let Some(v) = t.get("start_timeout") {
            d.start_timeout = self.duration(v, &join(path, "start_timeout"));
        }
        if let Some(v) = t.get("stop_signal") {
            d.stop_signal = self
                .enumeration(v, &join(path, "stop_signal"), keys::SIGNALS)
                .map(str::to_string);
        }
        if let Some(v) = t.get("stop_timeout") {
            d.stop_timeout = self.duration(v, &join(path, "stop_timeout"));
        }
        if let Some(v) = t.get("healthy_after") {
            d.healthy_after = self.duration(v, &join(path, "healthy_after"));
        }
        if let Some(v) = t.get("start_grace") {
            d.start_grace = self.duration(v, &join(path, "start_grace"));
        }
        if let Some(v) = t.get("memory_max") {
            d.limits.memory_max = self.size(v, &join(path, "memory_max"), keys::MEMORY_MIN);
        }
        if let Some(v) = t.get("cpu_max") {
            d.limits.cpu_max = self.cpu(v, &join(path, "cpu_max"));
        }
        d
    }

    fn retry(&mut self, v: &Value<'_>, path: &str) -> Option<Retry> {
        let t = self.table(v, path)?;
        self.unknown_keys(t, keys::RETRY, path);
        let mut r = Retry::default();
        if let Some(x) = t.get("attempts") {
            r.attempts = self
                .int(x, &join(path, "attempts"), 1, 1000)
                .map_or(r.attempts, |n| n as u32);
        }
        if let Some(x) = t.get("backoff") {
            r.backoff = self
                .duration(x, &join(path, "backoff"))
                .unwrap_or(r.backoff);
        }
        if let Some(x) = t.get("max_backoff") {
            r.max_backoff = self
                .duration(x, &join(path, "max_backoff"))
                .unwrap_or(r.max_backoff);
        }
        if let Some(x) = t.get("jitter") {
            r.jitter = self.boolean(x, &join(path, "jitter")).unwrap_or(r.jitter);
        }
        if r.max_backoff < r.backoff {
            self.diags.push(
                Diagnostic::warning(
                    "out-of-range",
                    "max_backoff is smaller than backoff; every delay will be max_backoff",
                )
                .key(path.to_string())
                .at(v.span())
                .hint("raise max_backoff or lower backoff"),
            );
        }
        Some(r)
    }

    fn start_limit(&mut self, v: &Value<'_>, path: &str) -> Option<StartLimit> {
        let t = self.table(v, path)?;
        self.unknown_keys(t, keys::START_LIMIT, path);
        let mut s = StartLimit::default();
        if let Some(x) = t.get("burst") {
            s.burst = self
                .int(x, &join(path, "burst"), 1, 10000)
                .map_or(s.burst, |n| n as u32);
        }
        if let Some(x) = t.get("interval") {
            s.interval = self
                .duration(x, &join(path, "interval"))
                .unwrap_or(s.interval);
        }
        Some(s)
    }

    /// `{ failures = N, cooldown = "30s" }`; a missing key takes its default.
    /// A table with a bad value still decodes (with the default for that key),
    /// so a typo does not silently drop the breaker from the spec.
    fn start_breaker(&mut self, v: &Value<'_>, path: &str) -> Option<StartBreaker> {
        let t = self.table(v, path)?;
        self.unknown_keys(t, keys::START_BREAKER, path);
        let mut b = StartBreaker::default();
        if let Some(x) = t.get("failures") {
            b.failures = self
                .int(x, &join(path, "failures"), 1, 1000)
                .map_or(b.failures, |n| n as u32);
        }
        if let Some(x) = t.get("cooldown") {
            match self.duration(x, &join(path, "cooldown")) {
                Some(d) if d.0.is_zero() => self.error(
                    "out-of-range",
                    &join(path, "cooldown"),
                    x.span(),
                    "cooldown must be greater than zero",
                    "use at least 1ms, e.g. cooldown = \"30s\"; remove start_breaker for no breaker",
                ),
                Some(d) => b.cooldown = d,
                None => {}
            }
        }
        Some(b)
    }

    /// A breaker that needs at least as many failures as the retry policy allows
    /// attempts can never open: the service gives up first.
    fn check_breaker(&mut self, service: &Service, t: &DeTable<'_>, path: &str, fallback: Span) {
        let Some(b) = service.start_breaker else {
            return;
        };
        let attempts = service.retry.attempts;
        if b.failures < attempts {
            return;
        }
        let span = t.get("start_breaker").map_or(fallback, |x| x.span());
        self.diags.push(
            Diagnostic::warning(
                "out-of-range",
                format!(
                    "the start breaker never opens: it needs {} failed attempts, retry allows {attempts}",
                    b.failures
                ),
            )
            .key(join(path, "start_breaker"))
            .at(span)
            .hint(format!(
                "raise retry.attempts above {} (e.g. retry = {{ attempts = {} }}) or lower start_breaker.failures",
                b.failures,
                b.failures.saturating_add(2)
            )),
        );
    }

    fn depends_on(&mut self, v: &Value<'_>, path: &str) -> Vec<Dependency> {
        let mut out = Vec::new();
        match v.get_ref() {
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(name) = self.element(item, path, i) {
                        out.push(Dependency {
                            name,
                            condition: Condition::Ready,
                            required: true,
                        });
                    }
                }
            }
            DeValue::Table(t) => {
                for (key, value) in t.iter() {
                    let p = join(path, key.get_ref());
                    let name = Sp::new(key.get_ref().to_string(), key.span());
                    let (cond_value, required) = match value.get_ref() {
                        DeValue::String(_) => (Some(value), true),
                        DeValue::Table(long) => {
                            for (k, _) in long.iter() {
                                if !matches!(k.get_ref().as_ref(), "condition" | "required") {
                                    self.diags.push(
                                        Diagnostic::warning(
                                            "unknown-key",
                                            format!("unknown key `{}` (ignored)", k.get_ref()),
                                        )
                                        .key(join(&p, k.get_ref()))
                                        .at(k.span())
                                        .hint("a dependency takes `condition` and `required`"),
                                    );
                                }
                            }
                            let required = long
                                .get("required")
                                .and_then(|r| self.boolean(r, &join(&p, "required")))
                                .unwrap_or(true);
                            (long.get("condition"), required)
                        }
                        _ => {
                            self.wrong_type(&p, value, "a condition (\"ready\") or { condition = \"ready\", required = false }");
                            continue;
                        }
                    };
                    let condition = match cond_value {
                        Some(c) => match self.enumeration(c, &p, keys::CONDITIONS) {
                            Some("started") => Condition::Started,
                            Some("completed") => Condition::Completed,
                            Some(_) => Condition::Ready,
                            None => continue,
                        },
                        None => Condition::Ready,
                    };
                    out.push(Dependency {
                        name,
                        condition,
                        required,
                    });
                }
            }
            _ => self.wrong_type(path, v, "a list of service names or a table of conditions"),
        }
        out
    }

    /// The keys of a `kind = "migrate"` service; `database` is required.
    fn migrate(&mut self, t: &DeTable<'_>, path: &str, span: Span) -> Option<MigrateSpec> {
        let database_template = match t.get("database").map(|x| x.get_ref()) {
            Some(DeValue::String(s)) => s.to_string(),
            _ => String::new(),
        };
        let Some(database) = t
            .get("database")
            .and_then(|x| self.string(x, &join(path, "database")))
        else {
            if !t.contains_key("database") {
                self.error(
                    "missing-database",
                    path,
                    span,
                    "a migrate service needs a database",
                    "add database = \"postgres://127.0.0.1:5432/app\" (or mysql://, sqlite://path)",
                );
            }
            return None;
        };
        let scheme_ok = [
            "postgres://",
            "postgresql://",
            "mysql://",
            "mariadb://",
            "sqlite://",
        ]
        .iter()
        .any(|p| database.value.starts_with(p));
        if !scheme_ok && !database.value.is_empty() {
            self.error(
                "invalid-value",
                &join(path, "database"),
                database.span.clone(),
                "unsupported database URL",
                "use postgres://…, mysql://… or sqlite://path",
            );
        }
        let dir = t
            .get("dir")
            .and_then(|x| self.string(x, &join(path, "dir")))
            .map_or_else(|| "migrations".to_string(), |s| s.value);
        let create_database = t
            .get("create_database")
            .and_then(|x| self.boolean(x, &join(path, "create_database")))
            .unwrap_or(false);
        let on_drift = match t
            .get("on_drift")
            .and_then(|x| self.enumeration(x, &join(path, "on_drift"), &["fail", "warn"]))
        {
            Some("warn") => OnDrift::Warn,
            _ => OnDrift::Fail,
        };
        let lock_timeout = t
            .get("lock_timeout")
            .and_then(|x| self.duration(x, &join(path, "lock_timeout")))
            .unwrap_or(Dur(Duration::from_secs(60)));
        Some(MigrateSpec {
            database,
            database_template,
            dir,
            create_database,
            on_drift,
            lock_timeout,
        })
    }

    pub(super) fn service(
        &mut self,
        key: &Spanned<std::borrow::Cow<'_, str>>,
        v: &Value<'_>,
        defaults: &ServiceDefaults,
    ) -> Option<Service> {
        let path = join("services", key.get_ref());
        let named_ok = self.check_name(key, &path, "service");
        let t = self.table(v, &path)?;
        self.unknown_keys(t, keys::SERVICE, &path);
        self.instance_vars = t.contains_key("replicas");
        self.port_used = None;
        let p = |k: &str| join(&path, k);
        let kind = match t
            .get("kind")
            .and_then(|x| self.enumeration(x, &p("kind"), keys::KINDS))
        {
            Some("task") => Kind::Task,
            Some("external") => Kind::External,
            Some("migrate") => Kind::Migrate,
            _ => Kind::Process,
        };
        let command = t
            .get("command")
            .and_then(|x| self.command(x, &p("command")));
        match (&command, kind) {
            (None, Kind::Process | Kind::Task) if !t.contains_key("command") => {
                self.error("missing-command", &path, key.span(), format!("service `{}` has no command", key.get_ref()), "add command = \"...\", or kind = \"external\" for a service gantry only probes");
            }
            (Some(c), Kind::External | Kind::Migrate) => {
                self.diags.push(
                    Diagnostic::warning(
                        "ignored-key",
                        if kind == Kind::External {
                            "external services are not started; their command is ignored"
                        } else {
                            "migrate services run gantry's migrator; their command is ignored"
                        },
                    )
                    .key(p("command"))
                    .at(c.span.clone())
                    .hint("remove the command, or drop kind = \"external\""),
                );
            }
            _ => {}
        }
        let own = self.inheritable(t, &path, defaults.logs.unwrap_or(self.logs));
        let mut env = defaults.env.clone();
        for var in own.env {
            env.retain(|e| e.name.value != var.name.value);
            env.push(var);
        }
        let readiness = t
            .get("readiness")
            .and_then(|x| self.probe(x, &p("readiness")));
        let liveness = t
            .get("liveness")
            .and_then(|x| self.probe(x, &p("liveness")));
        let startup = t.get("startup").and_then(|x| self.probe(x, &p("startup")));
        let stop_signal_span = t.get("stop_signal").map_or(key.span(), |x| x.span());
        let ports = match t.get("ports") {
            Some(x) => match x.get_ref() {
                DeValue::Array(items) => items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| {
                        self.int(item, &format!("{}[{i}]", p("ports")), 1, 65535)
                    })
                    .map(|n| n as u16)
                    .collect(),
                _ => {
                    self.wrong_type(&p("ports"), x, "an array of port numbers");
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        let rollout = t
            .get("rollout")
            .and_then(|x| self.rollout(x, &p("rollout")));
        let service = Service {
            name: Sp::new(key.get_ref().to_string(), key.span()),
            rollout: rollout.map(Box::new),
            kind,
            command,
            working_dir: own.working_dir.or_else(|| defaults.working_dir.clone()),
            env,
            env_file: t
                .get("env_file")
                .map(|x| self.str_or_list(x, &p("env_file")))
                .unwrap_or_default(),
            depends_on: t
                .get("depends_on")
                .map(|x| self.depends_on(x, &p("depends_on")))
                .unwrap_or_default(),
            priority: own.priority.or(defaults.priority).unwrap_or_default(),
            readiness: readiness.map(Box::new),
            liveness: liveness.map(Box::new),
            startup: startup.map(Box::new),
            restart: own.restart.or(defaults.restart).unwrap_or_default(),
            retry: own.retry.or(defaults.retry).unwrap_or_default(),
            start_limit: own.start_limit.or(defaults.start_limit).unwrap_or_default(),
            start_breaker: own.start_breaker.or(defaults.start_breaker),
            start_timeout: own.start_timeout.or(defaults.start_timeout),
            stop_signal: Sp::new(
                own.stop_signal
                    .or_else(|| defaults.stop_signal.clone())
                    .unwrap_or_else(|| "SIGTERM".into()),
                stop_signal_span,
            ),
            stop_timeout: own
                .stop_timeout
                .or(defaults.stop_timeout)
                .unwrap_or(Dur(Duration::from_secs(10))),
            healthy_after: own
                .healthy_after
                .or(defaults.healthy_after)
                .unwrap_or(Dur(keys::HEALTHY_AFTER)),
            start_grace: own
                .start_grace
                .or(defaults.start_grace)
                .unwrap_or(Dur(keys::START_GRACE)),
            cleanup: t
                .get("cleanup")
                .and_then(|x| self.command(x, &p("cleanup")))
                .map(|c| c.value),
            layer: t.get("layer").and_then(|x| self.string(x, &p("layer"))),
            preflight: t
                .get("preflight")
                .and_then(|x| self.command(x, &p("preflight")))
                .map(|c| c.value),
            ports,
            data_dir: self.data_dir(t, &path, kind),
            data_size: self.data_size(t, &path),
            expected_start: t
                .get("expected_start")
                .and_then(|x| self.duration(x, &p("expected_start"))),
            remediate: t
                .get("remediate")
                .and_then(|x| self.command(x, &p("remediate")))
                .map(|c| c.value),
            migrate: if kind == Kind::Migrate {
                self.migrate(t, &path, key.span()).map(Box::new)
            } else {
                None
            },
            logs: own.logs.or(defaults.logs).unwrap_or(self.logs),
            limits: own.limits.or(defaults.limits),
            flags_restart: t
                .get("flags_restart")
                .map(|x| self.str_list(x, &p("flags_restart")))
                .unwrap_or_default(),
            upstream: t
                .get("upstream")
                .and_then(|x| self.upstream(x, &p("upstream"))),
            replicas: self.replicas(t, &path, kind).map(Box::new),
            instance: None,
        };
        self.instance_vars = false;
        if kind == Kind::External
            && let Some((name, x)) = ["memory_max", "cpu_max"]
                .iter()
                .find_map(|k| t.get(*k).map(|x| (*k, x)))
        {
            self.diags.push(
                Diagnostic::warning(
                    "ignored-key",
                    "external services are not started by gantry; their limits are ignored",
                )
                .key(p(name))
                .at(x.span())
                .hint("limit the external service where it runs, or remove the key"),
            );
        }
        self.check_breaker(&service, t, &path, key.span());
        named_ok.then_some(service)
    }
}

impl Decoder<'_> {
    /// `data_dir`: a non-empty path without `..`, for a process only.
    fn data_dir(&mut self, t: &DeTable<'_>, path: &str, kind: Kind) -> Option<Sp<String>> {
        let key = join(path, "data_dir");
        let v = t.get("data_dir")?;
        let dir = self.string(v, &key)?;
        let problem = if dir.value.trim().is_empty() {
            Some("the path is empty")
        } else if dir.value.contains('\0') {
            Some("the path holds a NUL byte")
        } else if dir.value.split('/').any(|part| part == "..") {
            Some("the path climbs out with `..`")
        } else {
            None
        };
        if let Some(problem) = problem {
            self.error(
                "invalid-value",
                &key,
                v.span(),
                format!("data_dir: {problem}"),
                "write the data directory's path, e.g. data_dir = \"/var/lib/postgresql/data\" or \"data/pg\"",
            );
            return None;
        }
        if kind != Kind::Process {
            let what = match kind {
                Kind::External => "an external service is not started by gantry",
                _ => "a one-shot keeps no data of its own",
            };
            self.error(
                "invalid-value",
                &key,
                v.span(),
                format!("data_dir applies to kind = \"process\" only: {what}"),
                "remove data_dir, or put it on the service that keeps the data",
            );
            return None;
        }
        Some(dir)
    }

    /// `data_size`: a size of at least `DATA_SIZE_MIN`; without `data_dir` it is ignored.
    fn data_size(&mut self, t: &DeTable<'_>, path: &str) -> Option<u64> {
        let key = join(path, "data_size");
        let v = t.get("data_size")?;
        let size = self.size(v, &key, keys::DATA_SIZE_MIN)?;
        if !t.contains_key("data_dir") {
            self.diags.push(
                Diagnostic::warning("ignored-key", "data_size without data_dir is ignored")
                    .key(key)
                    .at(v.span())
                    .hint("add data_dir = \"PATH\" (where the service keeps its data), or remove data_size"),
            );
            return None;
        }
        Some(size)
    }
}
