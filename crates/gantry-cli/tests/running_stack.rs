//! A second `gantry up` or a `gantry preflight` against a running stack: "already running", no port NO-GO about its own services, no missions; config warnings shown by up and preflight.

mod support;

use support::*;

#[test]
fn a_running_stack_is_named_and_gets_no_false_missions() {
    let port = free_port();
    let toml = format!(
        r#"
[services.web]
command = "FIXTURE --name web --http {port}"
readiness = {{ http = "http://127.0.0.1:{port}/health" }}
"#
    );
    let mut up = up("running-stack", &toml, &[]);
    let boot = up.wait_boot(30);
    assert_eq!(boot["outcome"], "go", "{}", up.log());
    let api = std::fs::read_to_string(up.dir.join(".gantry/api.addr")).unwrap();
    let api = api.trim();

    let (code, out) = gantry_in(&up.dir, &["up"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("already running: gantry pid ") && out.contains(&format!("API {api}")),
        "{out}"
    );
    assert!(!out.contains("in use"), "{out}");

    let (code, out) = gantry_in(&up.dir, &["preflight"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("already running"), "{out}");
    assert!(
        !out.contains(&format!("port {port} is already in use")),
        "{out}"
    );

    let (code, out) = gantry_in(&up.dir, &["missions"]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("port"), "no false missions: {out}");
    assert_eq!(up.stop(), 0);
}

#[test]
fn up_and_preflight_print_config_warnings() {
    let dir = tempdir("config-warnings");
    std::fs::write(
        dir.join("gantry.toml"),
        format!(
            r#"
[settings]
api = "127.0.0.1:0"

[services.job]
kind = "task"
command = "{} --name job --exit-after 0"
env = {{ GREETING = "${{GANTRY_TEST_SURELY_UNSET}}" }}
"#,
            fixture().display()
        ),
    )
    .unwrap();
    let (code, out) = gantry_in(&dir, &["preflight"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("`GANTRY_TEST_SURELY_UNSET` is not set"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
