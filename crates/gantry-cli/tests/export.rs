//! `gantry export prometheus-rules` on a stack file: YAML that Prometheus' own `promtool check rules`
//! accepts, naming the stack's critical services (instances of replicated ones included).

mod support;

use support::*;

#[test]
fn exported_prometheus_rules_pass_promtool_and_name_the_critical_services() {
    let dir = tempdir("export-rules");
    std::fs::write(
        dir.join("gantry.toml"),
        r#"
[services.db]
command = "sleep 60"
priority = "critical"

[services.api]
command = "sleep 60"
priority = "critical"
replicas = 2
replica_ports = "20100-20101"

[services.ui]
command = "sleep 60"
priority = "low"
"#,
    )
    .unwrap();
    let out = std::process::Command::new(gantry())
        .args(["export", "prometheus-rules"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout).unwrap();
    // The regex `db|api\.1|api\.2`, quoted for PromQL, then for YAML.
    assert!(
        yaml.contains(r#"service=~\"db|api\\\\.1|api\\\\.2\""#),
        "{yaml}"
    );
    assert!(
        !yaml.contains("ui"),
        "a low service is not critical: {yaml}"
    );
    // What /metrics cannot express is said, not dropped silently.
    assert!(String::from_utf8_lossy(&out.stderr).contains("disk_low: not exported"));
    let file = dir.join("rules.yml");
    std::fs::write(&file, &yaml).unwrap();
    let check = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("promtool runs (scripts/setup installs Debian's prometheus package)");
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}
