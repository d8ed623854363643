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
