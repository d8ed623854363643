//! Tests of `gantry graph`: waves, layers, critical path, and that dot output renders with Graphviz.

use std::process::Command;

const STACK: &str = r#"
[layers]
order = ["stores", "apps", "edge"]

[services.db]
command = "db"
priority = "critical"
layer = "stores"
readiness = { tcp = "127.0.0.1:5432" }
expected_start = "2s"

[services.cache]
command = "cache"
layer = "stores"
readiness = { tcp = "127.0.0.1:6379" }
expected_start = "300ms"

[services.migrate]
kind = "task"
command = "migrate"
layer = "stores"
depends_on = ["db"]
expected_start = "1s"

[services.api]
command = "api"
layer = "apps"
depends_on = { migrate = "completed", cache = "ready", metrics = { condition = "started", required = false } }
readiness = { http = "http://127.0.0.1:8000/health" }
expected_start = "500ms"

[services.metrics]
command = "metrics"
layer = "apps"

[services.ui]
command = "ui"
layer = "edge"
depends_on = ["api"]
"#;

fn graph(format: &str) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!("gantry-graph-{}-{format}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("gantry.toml"), STACK).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["graph", "--format", format])
        .current_dir(&dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn text_shows_waves_layers_and_the_critical_path() {
    let (code, out) = graph("text");
    assert_eq!(code, 0);
    insta::assert_snapshot!("graph_text", out);
}

#[test]
fn mermaid_and_json() {
    let (code, out) = graph("mermaid");
    assert_eq!(code, 0);
    insta::assert_snapshot!("graph_mermaid", out);
    let (code, out) = graph("json");
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["critical_path"],
        serde_json::json!(["db", "migrate", "metrics", "api", "ui"])
    );
    assert_eq!(v["critical_ms"], serde_json::json!(3500));
}

#[test]
fn dot_renders_with_graphviz() {
    let (code, out) = graph("dot");
    assert_eq!(code, 0);
    insta::assert_snapshot!("graph_dot", out.clone());
    // scripts/test installs Graphviz; the rendering itself is the assertion.
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("Graphviz `dot` must be installed (scripts/test installs it)");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(out.as_bytes())
        .unwrap();
    let svg = child.wait_with_output().unwrap();
    assert!(svg.status.success());
    assert!(String::from_utf8_lossy(&svg.stdout).contains("<svg"));
}
