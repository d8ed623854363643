//! `gantry import compose|procfile|process-compose` on the sample files of
//! crates/gantry-import/tests/data (run as the real binary): each result passes `gantry check`,
//! carries the keys it should, refuses to overwrite, fails with a location on malformed input,
//! and an imported compose file of host commands boots GO in dependency order.

mod support;

use std::path::{Path, PathBuf};
use support::*;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../gantry-import/tests/data")
        .join(name)
}

/// Copies a sample directory (dotfiles included) into a fresh temp dir of its own (`test` names
/// the test, so tests on the same sample never share one).
fn copy_sample(name: &str, test: &str) -> PathBuf {
    let dir = tempdir(&format!("import-{test}-{name}"));
    for entry in std::fs::read_dir(data(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    dir
}

/// Imports `file` of sample `name` in its own directory; `gantry check` must accept the result.
/// Returns the generated text and what `gantry import` printed.
fn import_and_check(format: &str, name: &str, file: &str) -> (String, String) {
    let dir = copy_sample(name, "check");
    let (code, out) = gantry_in(&dir, &["import", format, file]);
    assert_eq!(code, 0, "{name}: {out}");
    assert!(!out.contains("panicked"), "{out}");
    let (code, check) = gantry_in(&dir, &["check"]);
    assert_eq!(code, 0, "{name}: gantry check failed:\n{check}");
    assert!(!check.contains("error["), "{check}");
    let text = std::fs::read_to_string(dir.join("gantry.toml")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (text, out)
}

#[test]
fn compose_webapp_stack() {
    let (text, out) = import_and_check("compose", "compose-webapp", "compose.yaml");
    insta::assert_snapshot!("import_compose_webapp", text);
    // The report is on stderr too, with lines.
    assert!(
        out.contains("compose.yaml:71: api: restart: on-failure:5 became"),
        "{out}"
    );
    assert!(out.contains("api: `labels` not carried over"), "{out}");
}

#[test]
fn compose_large_stack_with_profiles() {
    let (text, out) = import_and_check("compose", "compose-large", "compose.yaml");
    assert!(out.contains("imported 41 services"), "{out}");
    for profile in ["default", "search", "monitoring", "debug", "e2e"] {
        assert!(text.contains(&format!("[profiles.{profile}]")), "{profile}");
    }
    // Merge keys carried the shared settings into every service that used them.
    assert_eq!(
        text.matches("OTEL_EXPORTER_OTLP_ENDPOINT = ").count(),
        15,
        "{text}"
    );
    assert!(text.contains("[services.orders-migrate]\nkind = \"task\""));
    assert!(text.contains("depends_on = { orders-migrate = \"completed\", redis = \"ready\", rabbitmq = \"ready\" }"), "{text}");
    assert!(text.contains("replicas = 2"));
    // A compose profile is compose's default set plus the profile's services.
    let monitoring = text.split("[profiles.monitoring]\n").nth(1).unwrap_or("");
    let monitoring = monitoring.lines().next().unwrap_or("");
    for name in ["\"grafana\"", "\"postgres\"", "\"gateway\""] {
        assert!(monitoring.contains(name), "{monitoring}");
    }
    assert!(!monitoring.contains("\"mailhog\""), "{monitoring}");
}

/// Imports a large sample and runs `gantry check` on the result with `env` set (the variables the
/// file passes through): no error, no warning. Returns the file, the report and the check's output.
fn import_large(format: &str, name: &str, file: &str, env: &[(&str, &str)]) -> (String, String) {
    let dir = copy_sample(name, "large");
    let (code, out) = gantry_in(&dir, &["import", format, file]);
    assert_eq!(code, 0, "{name}: {out}");
    assert!(!out.contains("panicked"), "{out}");
    let check = std::process::Command::new(gantry())
        .arg("check")
        .envs(env.iter().copied())
        .current_dir(&dir)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(
        check.status.code(),
        Some(0),
        "{name}: gantry check:\n{said}"
    );
    assert!(
        !said.contains("error[") && !said.contains("warning["),
        "{name}: gantry check is not clean:\n{said}"
    );
    let text = std::fs::read_to_string(dir.join("gantry.toml")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (text, out)
}

/// The text of `[services.NAME]` up to the next table.
fn section<'a>(text: &'a str, name: &str) -> &'a str {
    let head = format!("[services.{name}]\n");
    let start = text
        .find(&head)
        .unwrap_or_else(|| panic!("no {head} in:\n{text}"));
    let body = &text[start + head.len()..];
    &body[..body.find("\n[").unwrap_or(body.len())]
}

#[test]
fn compose_platform_of_60_services_imports_checks_clean_and_reports_what_did_not_carry_over() {
    let (text, out) = import_large(
        "compose",
        "compose-platform",
        "compose.yaml",
        &[
            ("SMTP_RELAY_HOST", "relay.example"),
            ("SMTP_RELAY_PASSWORD", "x"),
        ],
    );
    // Every service but the build-only one.
    assert!(out.contains("imported 59 services"), "{out}");
    assert!(
        out.contains("compose.yaml:733: theme-builder: has `build` but no `image` or `command`"),
        "{out}"
    );
    // What did not carry over is named, with its line: builds, volumes, networks, the
    // top-level docker objects, deploy keys beyond limits, container-only options.
    for want in [
        "compose.yaml:374: relay: build: gantry does not build images",
        "compose.yaml:708: docs: build: ignored; the command runs on the host",
        "compose.yaml:714: docs: volumes: the command runs on the host, nothing is mounted",
        "web: `networks` not carried over",
        "compose.yaml:738: top-level `networks` not carried over",
        "compose.yaml:749: top-level `volumes` not carried over",
        "compose.yaml:767: top-level `secrets` not carried over",
        "compose.yaml:771: top-level `configs` not carried over",
        "kafka: deploy.resources.reservations not carried over",
        "web: deploy.resources.limits.pids not carried over",
        "web: deploy.update_config not carried over",
        "pgbouncer: healthcheck.start_interval not carried over",
        "redis: `ulimits` not carried over",
        "postgres: `shm_size` not carried over",
        "backup: `secrets` not carried over",
        "web: `logging` not carried over",
        "web: `labels` not carried over",
        "node-exporter: `pid` not carried over",
        "smtp: expose: only meaningful between containers",
        "lumen-migrate: restart: `no` is overridden by deploy.restart_policy (`on-failure:3`)",
        "environment SMTP_RELAY_PASSWORD: passed through as `${SMTP_RELAY_PASSWORD}`",
        "web: env_file lumen.local.env: `required: false` has no gantry equivalent",
        "worker: deploy.replicas: 3 became `replicas = 3`",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    // Anchors and merge keys (single and list form) reached every consumer.
    assert_eq!(
        text.matches("OTEL_EXPORTER_OTLP_ENDPOINT = \"http://otel-collector:4317\"")
            .count(),
        22,
        "{text}"
    );
    assert_eq!(
        text.matches("stop_signal = \"SIGINT\"").count(),
        16,
        "{text}"
    );
    // The three conditions, `required: false`, and a healthcheck with all four timings.
    assert!(
        section(&text, "web").contains(
            "depends_on = { pgbouncer = \"ready\", redis = \"ready\", kafka = \"ready\", lumen-migrate = \"completed\" }"
        ),
        "{text}"
    );
    assert!(
        section(&text, "grafana")
            .contains(r#"depends_on = { prometheus = "ready", loki = "started" }"#),
        "{text}"
    );
    assert!(
        section(&text, "lumen-bootstrap")
            .contains(r#"minio-setup = { condition = "completed", required = false }"#),
        "{text}"
    );
    let web = section(&text, "web");
    assert!(
        web.contains(r#"period = "15s", timeout = "5s", failure_threshold = 5 }"#),
        "{web}"
    );
    assert!(web.contains(r#"start_timeout = "150s""#), "{web}");
    // Tasks: what others wait to complete.
    for task in ["lumen-migrate", "query-migrate", "minio-setup"] {
        assert!(
            section(&text, task).starts_with("kind = \"task\""),
            "{task}: {text}"
        );
    }
    // Limits go to docker for image services, to gantry for host commands.
    assert!(section(&text, "kafka").contains(r#""--memory", "3g", "--cpus", "2""#));
    let docs = section(&text, "docs");
    assert!(
        docs.contains(r#"memory_max = "1536MiB""#) && docs.contains("cpu_max = 0.25"),
        "{docs}"
    );
    assert!(section(&text, "docs-linkcheck").contains(r#"memory_max = "300MiB""#));
    // Profiles: compose's default set, and each profile on top of it.
    for profile in ["default", "search", "monitoring", "tools", "backup", "docs"] {
        assert!(text.contains(&format!("[profiles.{profile}]")), "{profile}");
    }
}

#[test]
fn process_compose_platform_of_36_processes_imports_checks_clean() {
    let (text, out) = import_large(
        "process-compose",
        "pc-platform",
        "process-compose.yaml",
        &[],
    );
    assert!(out.contains("imported 36 services"), "{out}");
    // `vars` templates filled in, the process's own over the file's.
    let pg = section(&text, "postgres");
    assert!(pg.contains("-p 5544 -k /tmp") && !pg.contains("{{"), "{pg}");
    let collector = section(&text, "collector");
    assert!(collector.contains("--listen 127.0.0.1:7300"), "{collector}");
    assert!(
        collector.contains("http://127.0.0.1:7300/healthz"),
        "{collector}"
    );
    assert!(!text.contains("{{"), "{text}");
    // Anchors: probe timings and restart settings merged into each process.
    assert_eq!(
        text.matches(
            "initial_delay = \"2s\", period = \"3s\", timeout = \"2s\", failure_threshold = 10"
        )
        .count(),
        9,
        "{text}"
    );
    assert!(section(&text, "enricher").contains("replicas = 3"));
    assert!(
        section(&text, "seed").starts_with("kind = \"task\""),
        "{text}"
    );
    assert!(
        section(&text, "dedup").contains(r#"depends_on = ["redis", "enricher"]"#),
        "{text}"
    );
    for want in [
        "postgres: `is_daemon` not carried over",
        "postgres: shutdown.command: gantry stops a service with its signal",
        "redpanda: readiness_probe: timeout_seconds 10 is longer than period_seconds 2",
        "schema-registry-sync: depends_on topics: process_completed (any exit)",
        "console: `is_tty` not carried over",
        "top-level `log_configuration` not carried over",
        "buckets: availability.exit_on_end not carried over",
        "collector: availability.backoff_seconds not carried over",
        "dlq-replayer: disabled: process-compose does not start it",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    // Extension fields only hold anchors: nothing to report about them.
    assert!(
        !out.contains("x-always") && !out.contains("x-http-probe"),
        "{out}"
    );
    let default = text.split("[profiles.default]\n").nth(1).unwrap_or("");
    assert!(
        !default.contains("\"docs\"") && default.contains("\"gateway\""),
        "{default}"
    );
}

#[test]
fn procfile_platform_of_21_processes_imports_checks_clean() {
    let (text, out) = import_large("procfile", "procfile-platform", "Procfile", &[]);
    assert!(out.contains("imported 21 services"), "{out}");
    assert!(text.contains("env_file = [\".env\"]"));
    assert!(section(&text, "release").starts_with("kind = \"task\""));
    assert!(
        out.contains("Procfile:5: release: Heroku's `release` process runs once"),
        "{out}"
    );
    // A shell builtin first, or a comment, runs through the shell as foreman would.
    assert!(section(&text, "tunnel").contains(
        r#"command = ["sh", "-c", "exec cloudflared tunnel --url http://127.0.0.1:5100 --no-autoupdate"]"#
    ), "{text}");
    assert!(
        section(&text, "metrics")
            .contains(r#"["sh", "-c", "python -m prometheus_client.exposition 9109 # scraped"#),
        "{text}"
    );
    // $PORT and ${VAR:-default} stay the shell's; plain commands are split without one.
    assert!(
        section(&text, "web").contains("--bind 0.0.0.0:$$PORT --workers $${WEB_CONCURRENCY:-3}"),
        "{text}"
    );
    assert!(
        section(&text, "redis")
            .contains(r#"command = "redis-server --port 6382 --save \"\" --appendonly no""#),
        "{text}"
    );
    assert!(
        out.contains("Procfile:6: web: uses $PORT: set to 5100"),
        "{out}"
    );
    assert!(
        out.contains("foreman stops every process when one exits"),
        "{out}"
    );
}

#[test]
fn compose_edge_cases_are_reported() {
    let (text, out) = import_and_check("compose", "compose-edge", "compose.yaml");
    for want in [
        "compose.yaml:6: _internal: renamed to `s_internal`",
        "compose.yaml:16: builder: has `build` but no `image`",
        "dependency cycle ping -> pong -> ping",
        "depends on `ghost`, which is not a service",
        "`${GREETING:+hello}` is not a form gantry interpolates",
        "compose.yaml:29: odd: ports is a scalar",
        "compose.yaml:30: odd: restart is a list",
        "stop_signal `SIGWINCH`",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
        assert!(
            text.contains(want),
            "missing {want:?} in the file's comments"
        );
    }
    assert!(
        text.contains("GREETING = \"$${GREETING:+hello}\""),
        "{text}"
    );
    assert!(text.contains("\"${WEB_ADDR:-0.0.0.0:8080}\""), "{text}");
}

#[test]
fn process_compose_stack() {
    let (text, out) = import_and_check("process-compose", "pc-stack", "process-compose.yaml");
    assert!(text.contains("readiness = { http = \"http://127.0.0.1:8000/health/ready\", initial_delay = \"2s\", period = \"5s\", timeout = \"2s\", failure_threshold = 3 }"), "{text}");
    assert!(text.contains("readiness = { log = \"ready in\" }"));
    assert!(text.contains("depends_on = { migrate = \"completed\" }"));
    assert!(text.contains("working_dir = \"backend\""), "{text}");
    assert!(text.contains("[profiles.default]"));
    assert!(
        out.contains("process-compose.yaml:88: frontend: restart: exit_on_failure"),
        "{out}"
    );
    let (text, _) = import_and_check("process-compose", "pc-small", "process-compose.yml");
    assert!(
        text.contains("depends_on = { server = \"started\" }"),
        "{text}"
    );
    assert!(text.contains("Everything in it carried over."));
}

#[test]
fn process_compose_large_stack() {
    let (text, out) = import_and_check("process-compose", "pc-large", "process-compose.yaml");
    assert!(out.contains("imported 30 services"), "{out}");
    assert_eq!(
        text.matches("kind = \"task\"").count(),
        8,
        "one migration per service"
    );
    assert_eq!(text.matches("replicas = 2").count(), 4);
    assert!(text.contains("readiness = { http = \"http://127.0.0.1:8223/healthz\", period = \"1s\", timeout = \"1s\", failure_threshold = 3 }"), "{text}");
    assert!(text.contains("readiness = { log = \"Local:\" }"));
    let default = text.split("[profiles.default]\n").nth(1).unwrap_or("");
    assert!(
        !default.contains("storybook")
            && !default.contains("tunnel")
            && default.contains("gateway"),
        "{default}"
    );
}

#[test]
fn procfile_large_dev_file() {
    let (text, out) = import_and_check("procfile", "procfile-large", "Procfile.dev");
    assert!(out.contains("imported 17 services"), "{out}");
    assert!(text.contains("env_file = [\".env\"]"));
    assert!(text.contains("command = [\"sh\", \"-c\", \"cd docs && bundle exec jekyll serve --port $$PORT --livereload\"]"), "{text}");
    assert!(
        text.contains(
            "command = [\"sh\", \"-c\", \"bundle exec puma -C config/puma_api.rb -p $${PORT}\"]"
        ),
        "{text}"
    );
    assert!(
        text.contains("command = \"bundle exec sidekiq -q default -q mailers\""),
        "{text}"
    );
}

#[test]
fn procfiles_with_and_without_dotenv() {
    let (text, out) = import_and_check("procfile", "procfile-rails", "Procfile");
    assert!(text.starts_with("# Imported from Procfile (Procfile)"));
    assert!(text.contains("env_file = [\".env\"]"), "{text}");
    assert!(
        text.contains(
            "command = [\"sh\", \"-c\", \"bundle exec puma -C config/puma.rb -p $$PORT\"]"
        ),
        "{text}"
    );
    assert!(text.contains("PORT = \"5100\""));
    assert!(
        out.contains("Procfile:2: web: uses $PORT: set to 5000"),
        "{out}"
    );
    let (text, out) = import_and_check("procfile", "procfile-node", "Procfile");
    assert!(!text.contains("env_file"));
    assert!(
        out.contains("Procfile:6: `this line is not a process`"),
        "{out}"
    );
    assert!(out.contains("Procfile:8: api: a second process"), "{out}");
}

#[test]
fn refuses_to_overwrite_without_force_and_writes_elsewhere() {
    let dir = copy_sample("pc-small", "overwrite");
    std::fs::write(dir.join("gantry.toml"), "# mine\n").unwrap();
    let (code, out) = gantry_in(&dir, &["import", "process-compose", "process-compose.yml"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("gantry.toml already exists") && out.contains("--force"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("gantry.toml")).unwrap(),
        "# mine\n"
    );
    let (code, out) = gantry_in(
        &dir,
        &[
            "import",
            "process-compose",
            "process-compose.yml",
            "--force",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        std::fs::read_to_string(dir.join("gantry.toml"))
            .unwrap()
            .contains("[services.server]")
    );
    // Into another directory: relative paths of the source are rebased onto it.
    let other = dir.join("out");
    std::fs::create_dir_all(&other).unwrap();
    let (code, out) = gantry_in(
        &dir,
        &[
            "import",
            "process-compose",
            "process-compose.yml",
            "-o",
            "out/stack.toml",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = gantry_in(&dir, &["-f", "out/stack.toml", "check"]);
    assert_eq!(code, 0, "{out}");
    // -f names the output as it names the file of every other command.
    let (code, out) = gantry_in(
        &dir,
        &[
            "-f",
            "other.toml",
            "import",
            "process-compose",
            "process-compose.yml",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(dir.join("other.toml").is_file());
    // The source itself is never the output.
    let (code, out) = gantry_in(
        &dir,
        &[
            "import",
            "process-compose",
            "process-compose.yml",
            "-o",
            "process-compose.yml",
            "--force",
        ],
    );
    assert_eq!(code, 2, "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn malformed_inputs_fail_with_a_location_never_a_panic() {
    let dir = tempdir("import-malformed");
    let deep_flow = format!("services: {}\n", "[".repeat(50_000));
    let mut deep_block = String::from("services:\n");
    for i in 1..300 {
        deep_block.push_str(&"  ".repeat(i));
        deep_block.push_str("k:\n");
    }
    let mut huge = String::from("services:\n");
    while huge.len() < 10 * 1024 * 1024 {
        huge.push_str("  svc: {command: \"sleep 1\", environment: {A: \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}\n");
    }
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "bad-yaml",
            "services:\n  a: {command: [x\n  b: 1\n".into(),
            "bad-yaml.yaml:",
        ),
        ("tabs", "services:\n\ta: 1\n".into(), "tabs.yaml:"),
        ("list", "services: [a, b]\n".into(), "list.yaml:1:"),
        ("scalar", "just text\n".into(), "scalar.yaml:1:"),
        ("deep-flow", deep_flow, "deep-flow.yaml:1:"),
        ("deep-block", deep_block, "deep-block.yaml:"),
        ("huge", huge, "huge.yaml"),
        ("alias", "a: &a [1]\nservices: *b\n".into(), "alias.yaml:2:"),
    ];
    for (name, text, want) in cases {
        let file = format!("{name}.yaml");
        std::fs::write(dir.join(&file), text).unwrap();
        for format in ["compose", "process-compose"] {
            let (code, out) = gantry_in(&dir, &["import", format, &file, "-o", "out.toml"]);
            assert_eq!(code, 2, "{name} ({format}): {out}");
            assert!(
                out.contains(want) && out.contains("hint:"),
                "{name} ({format}): {out}"
            );
            assert!(!out.contains("panicked"), "{out}");
            assert!(!dir.join("out.toml").exists());
        }
    }
    // Not text at all, and a missing file.
    std::fs::write(dir.join("binary"), [0xff, 0xfe, 0x00, 0x01]).unwrap();
    let (code, out) = gantry_in(&dir, &["import", "procfile", "binary"]);
    assert_eq!(code, 2, "{out}");
    let (code, out) = gantry_in(&dir, &["import", "procfile", "nope"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("nope") && out.contains("hint:"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn imported_compose_of_host_commands_boots_go_in_dependency_order() {
    let dir = copy_sample("compose-hostcmds", "e2e");
    let (code, out) = gantry_in(&dir, &["import", "compose", "compose.yaml"]);
    assert_eq!(code, 0, "{out}");
    let text = std::fs::read_to_string(dir.join("gantry.toml")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(text.contains("kind = \"task\""), "{text}");
    let mut up = up("import-e2e", &text, &[]);
    let boot = up.wait_boot(30);
    assert_eq!(boot["outcome"], "go", "{}\n{text}", up.log());
    // store ready (its CMD-SHELL healthcheck) -> seed completed -> app started and ready.
    assert!(
        up.index("seed", "starting") > up.index("store", "ready"),
        "{}",
        up.log()
    );
    assert!(
        up.index("app", "starting") > up.index("seed", "completed"),
        "{}",
        up.log()
    );
    assert!(up.index("app", "ready") > up.index("app", "starting"));
    assert_eq!(up.stop(), 0);
}

#[test]
fn imported_process_compose_boots_go_on_its_log_line_and_conditions() {
    let dir = tempdir("import-pc-e2e");
    std::fs::write(
        dir.join("process-compose.yaml"),
        r#"# A stack whose readiness is a log line, a one-shot migration and a probed API.
processes:
  db:
    command: "sleep 0.2; echo 'db: up and ready (pid 1)'; exec sleep 300"
    ready_log_line: "up and ready (pid"
  migrate:
    command: "touch migrated"
    depends_on:
      db: {condition: process_log_ready}
  api:
    command: "sleep 300"
    depends_on:
      migrate: {condition: process_completed_successfully}
    readiness_probe:
      exec: {command: "test -f migrated"}
      period_seconds: 1
"#,
    )
    .unwrap();
    let (code, out) = gantry_in(&dir, &["import", "process-compose", "process-compose.yaml"]);
    assert_eq!(code, 0, "{out}");
    let text = std::fs::read_to_string(dir.join("gantry.toml")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let mut up = up("import-pc-e2e", &text, &[]);
    let boot = up.wait_boot(30);
    assert_eq!(boot["outcome"], "go", "{}\n{text}", up.log());
    assert!(
        up.index("migrate", "starting") > up.index("db", "ready"),
        "{}",
        up.log()
    );
    assert!(
        up.index("api", "starting") > up.index("migrate", "completed"),
        "{}",
        up.log()
    );
    assert!(up.index("api", "ready") > up.index("api", "starting"));
    assert_eq!(up.stop(), 0);
}
