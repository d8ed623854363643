//! Feature flags against a real `gantry up`: the Python OpenFeature SDK with the OFREP provider
//! (installed by scripts/setup into `.venv-tests`) evaluates bool, string, number and object flags,
//! sees an override take effect and gets the default with FLAG_NOT_FOUND for an unknown key; the
//! bulk endpoint's ETag; overrides through the CLI survive a restart of gantry; an expiring override
//! reverts by itself and the audit log has the `flag.expire` row; no token in any output.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

const FLAGS_JSON: &str = r#"{
  "flags": {
    "new-ui": { "state": "ENABLED", "variants": { "on": true, "off": false }, "defaultVariant": "off" },
    "limit": { "state": "ENABLED", "variants": { "low": 10, "high": 1000 }, "defaultVariant": "low" },
    "layout": { "state": "ENABLED", "variants": { "a": { "cols": 2 }, "b": { "cols": 3 } }, "defaultVariant": "a",
      "targeting": { "if": [ { "==": [ { "var": "plan" }, "pro" ] }, "b" ] } }
  }
}
"#;

fn stack(port: u16) -> String {
    format!(
        r#"
[settings]
flags_file = "flags.json"

[flags.greeting]
description = "What the home page says"
owner = "team-web"
variants = {{ hello = "hello", hi = "hi" }}
default = "hello"

[services.web]
command = "FIXTURE --name web --http {port}"
readiness = {{ http = "http://127.0.0.1:{port}/health" }}
"#
    )
}

fn python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-tests/bin/python");
    assert!(
        root.exists(),
        "{} is missing: run scripts/setup (it installs openfeature-sdk and openfeature-provider-ofrep)",
        root.display()
    );
    root
}

/// Evaluates with the Python SDK; prints one JSON line of results.
const PY: &str = r#"
import json, os, sys
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.contrib.provider.ofrep import OFREPProvider
token = os.environ["OFREP_TOKEN"]
api.set_provider(OFREPProvider(os.environ["OFREP_URL"], headers_factory=lambda: {"Authorization": "Bearer " + token}))
c = api.get_client()
ctx = EvaluationContext(targeting_key="user-1", attributes={"plan": "pro"})
out = {}
d = c.get_boolean_details("new-ui", True, ctx); out["bool"] = [d.value, d.variant, str(d.reason)]
d = c.get_string_details("greeting", "x", ctx); out["string"] = [d.value, d.variant, str(d.reason)]
d = c.get_integer_details("limit", 0, ctx); out["number"] = [d.value, d.variant, str(d.reason)]
d = c.get_object_details("layout", {}, ctx); out["object"] = [d.value, d.variant, str(d.reason)]
d = c.get_boolean_details("no-such-flag", True, ctx); out["unknown"] = [d.value, str(d.error_code), str(d.reason)]
print(json.dumps(out))
"#;

fn sdk(url: &str, token: &str) -> serde_json::Value {
    let out = Command::new(python())
        .args(["-c", PY])
        .env("OFREP_URL", url)
        .env("OFREP_TOKEN", token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON line")
}

fn read_token(dir: &Path) -> String {
    let file = dir.join(".gantry/api.read-token");
    assert!(eventually(10, || file.exists()));
    std::fs::read_to_string(file).unwrap().trim().to_string()
}

#[test]
fn python_openfeature_sdk_evaluates_overrides_and_unknown_keys() {
    let port = free_port();
    let mut up = up_with("flags-python", &stack(port), &[], |dir| {
        std::fs::write(dir.join("flags.json"), FLAGS_JSON).unwrap();
    });
    up.wait_boot(20);
    let addr = api_addr_in(&up.dir);
    let token = read_token(&up.dir);
    let operator = std::fs::read_to_string(up.dir.join(".gantry/api.token"))
        .unwrap()
        .trim()
        .to_string();
    let url = format!("http://{addr}");

    let first = sdk(&url, &token);
    assert_eq!(first["bool"][0], false, "{first}");
    assert_eq!(first["bool"][1], "off");
    assert_eq!(first["string"][0], "hello");
    assert_eq!(first["number"][0], 10);
    assert_eq!(first["object"][0], serde_json::json!({ "cols": 3 }));
    assert!(
        first["object"][2]
            .as_str()
            .unwrap()
            .contains("TARGETING_MATCH"),
        "{first}"
    );
    assert_eq!(first["unknown"][0], true, "the code default: {first}");
    assert!(
        first["unknown"][1]
            .as_str()
            .unwrap()
            .contains("FLAG_NOT_FOUND"),
        "{first}"
    );

    // Overrides through the CLI take effect for the SDK.
    let (code, out) = gantry_in(
        &up.dir,
        &["flag", "set", "new-ui", "true", "--reason", "launch"],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = gantry_in(
        &up.dir,
        &["flag", "set", "greeting", "howdy", "--reason", "copy test"],
    );
    assert_eq!(code, 0, "{out}");
    let second = sdk(&url, &token);
    assert_eq!(second["bool"][0], true, "{second}");
    assert_eq!(second["bool"][1], "override");
    assert_eq!(second["string"][0], "howdy");

    // A wrong-typed value and an unknown key are refused with what to do.
    let (code, out) = gantry_in(&up.dir, &["flag", "set", "limit", "lots", "--reason", "x"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("number"), "{out}");
    let (code, out) = gantry_in(&up.dir, &["flag", "set", "ghost", "1", "--reason", "x"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("no flag `ghost`"), "{out}");

    // The unknown key is counted (once per SDK run) in /metrics and `gantry flags`.
    let (status, metrics) = http(&addr, "GET", "/metrics", None).unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains(r#"gantry_flags_unknown_total{flag="no-such-flag"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"gantry_flag_evaluations_total{flag="new-ui",variant="override",reason="STATIC"}"#
        ),
        "{metrics}"
    );
    let (code, list) = gantry_in(&up.dir, &["flags"]);
    assert_eq!(code, 0, "{list}");
    assert!(list.contains("new-ui") && list.contains("launch"), "{list}");
    assert!(list.contains("no-such-flag: 2"), "{list}");

    // Bulk: an ETag over the set and the context; If-None-Match → 304; a change → a new ETag.
    let auth = format!("Bearer {token}");
    let body = r#"{"context": {"targetingKey": "u"}}"#;
    let bulk = |extra: &[(&str, &str)]| {
        let mut headers = vec![("Authorization", auth.as_str())];
        headers.extend_from_slice(extra);
        raw(&addr, "/ofrep/v1/evaluate/flags", &headers, body)
    };
    let (status, head, text) = bulk(&[]);
    assert_eq!(status, 200, "{text}");
    let etag = header(&head, "etag").expect("an ETag");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v["flags"].as_array().unwrap().len() >= 8, "{v}");
    let (status, _, _) = bulk(&[("If-None-Match", etag.as_str())]);
    assert_eq!(status, 304);
    let (code, out) = gantry_in(&up.dir, &["flag", "unset", "greeting", "--reason", "done"]);
    assert_eq!(code, 0, "{out}");
    let (status, head, _) = bulk(&[("If-None-Match", etag.as_str())]);
    assert_eq!(status, 200);
    assert_ne!(header(&head, "etag").unwrap(), etag);

    // OFREP needs a token: none is a 401.
    let (status, _) =
        http_with(&addr, "POST", "/ofrep/v1/evaluate/flags/new-ui", &[], body).unwrap();
    assert_eq!(status, 401);
    let (status, conf) = http(&addr, "GET", "/ofrep/v1/configuration", Some(&token)).unwrap();
    assert_eq!(status, 200, "{conf}");

    // flags.json holds the evaluated values.
    let file = up.dir.join(".gantry/flags.json");
    let values: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert_eq!(values["new-ui"], true, "{values}");
    assert_eq!(values["greeting"], "hello", "{values}");

    // The override survives a restart of gantry.
    assert_eq!(up.stop(), 0);
    let log = up.log();
    for secret in [&token, &operator] {
        assert!(!log.contains(secret.as_str()), "a token in gantry's output");
        assert!(!list.contains(secret.as_str()));
    }
    let mut again = up_again(&up.dir);
    again.wait_boot(20);
    let token = read_token(&again.dir);
    let third = sdk(&format!("http://{}", api_addr_in(&again.dir)), &token);
    assert_eq!(third["bool"][0], true, "the override survived: {third}");
    assert_eq!(
        third["string"][0], "hello",
        "the unset stayed unset: {third}"
    );
    assert_eq!(again.stop(), 0);
}

#[test]
fn an_expiring_override_reverts_by_itself_and_is_audited() {
    let port = free_port();
    let mut up = up_with("flags-expire", &stack(port), &[], |dir| {
        std::fs::write(dir.join("flags.json"), FLAGS_JSON).unwrap();
    });
    up.wait_boot(20);
    let (code, out) = gantry_in(
        &up.dir,
        &[
            "flag",
            "set",
            "limit",
            "1000",
            "--reason",
            "load test",
            "--expires",
            "2s",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let (_, got) = gantry_in(&up.dir, &["flag", "get", "limit"]);
    assert!(got.contains("limit = 1000"), "{got}");
    assert!(
        eventually(15, || gantry_in(&up.dir, &["flag", "get", "limit"])
            .1
            .contains("limit = 10 ")),
        "the override did not revert"
    );
    let (code, audit) = gantry_in(&up.dir, &["audit", "--json"]);
    assert_eq!(code, 0, "{audit}");
    let rows: serde_json::Value = serde_json::from_str(&audit).unwrap();
    let rows = rows
        .as_array()
        .cloned()
        .unwrap_or_else(|| rows["audit"].as_array().cloned().unwrap_or_default());
    assert!(
        rows.iter().any(|r| r["action"] == "flag.expire"
            && r["actor"] == "gantry"
            && r["target"] == "limit"),
        "{audit}"
    );
    assert!(
        rows.iter()
            .any(|r| r["action"] == "flag.set" && r["reason"] == "load test"),
        "{audit}"
    );
    assert_eq!(up.stop(), 0);
}

/// `gantry up` again in an existing stack directory (its gantry.toml and state kept).
fn up_again(dir: &Path) -> Up {
    let toml = std::fs::read_to_string(dir.join("gantry.toml")).unwrap();
    let keep = dir.to_path_buf();
    let name = format!("{}-again", dir.file_name().unwrap().to_string_lossy());
    up_with(
        &name,
        &toml.replace("api = \"127.0.0.1:0\"\n", ""),
        &[],
        move |new| {
            std::fs::copy(keep.join("flags.json"), new.join("flags.json")).unwrap();
            copy_dir(&keep.join(".gantry"), &new.join(".gantry"));
        },
    )
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            copy_dir(&path, &to.join(&name));
        } else if name.to_string_lossy().starts_with("state.db") {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

/// A POST returning the status, the head and the body.
fn raw(addr: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let status = buf.split_whitespace().nth(1).unwrap().parse().unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    (status, head.to_string(), body.to_string())
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// A request through the ingress (status 0 when nothing answers).
fn through(port: u16, method: &str) -> (u16, String) {
    http_with(&format!("127.0.0.1:{port}"), method, "/health", &[], "")
        .unwrap_or((0, String::new()))
}

#[test]
fn kill_switches_drive_the_ingress() {
    let (api, ing) = (free_port(), free_port());
    let toml = format!(
        r#"
[ingress]
listen = "127.0.0.1:{ing}"

[[ingress.routes]]
path = "/"
service = "api"

[services.api]
command = "FIXTURE --name api --http {api}"
upstream = "127.0.0.1:{api}"
readiness = {{ http = "http://127.0.0.1:{api}/health" }}
"#
    );
    let mut up = up("flags-switches", &toml, &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    assert!(eventually(10, || through(ing, "GET").0 == 200));
    let post_normal = through(ing, "POST").0;
    assert_ne!(post_normal, 503);

    let (code, out) = gantry_in(&up.dir, &["drain", "on", "--reason", "db migration"]);
    assert_eq!(code, 0, "{out}");
    assert!(eventually(5, || through(ing, "POST").0 == 503));
    assert_eq!(through(ing, "GET").0, 200, "reads pass a drain");

    let (code, out) = gantry_in(&up.dir, &["emergency", "on", "--reason", "outage"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        eventually(5, || through(ing, "GET").0 == 503),
        "emergency wins over drain"
    );

    for switch in ["emergency", "drain"] {
        let (code, out) = gantry_in(&up.dir, &[switch, "off", "--reason", "over"]);
        assert_eq!(code, 0, "{out}");
    }
    assert!(
        eventually(5, || through(ing, "POST").0 == post_normal),
        "back to normal"
    );
    assert_eq!(through(ing, "GET").0, 200);
    assert_eq!(up.stop(), 0);
}

/// A service finds OFREP through its own environment: the Python SDK inside a service, with
/// nothing but `GANTRY_OFREP_URL` and `GANTRY_OFREP_TOKEN`, evaluates a flag; the token it printed
/// is masked in gantry's output.
#[test]
fn a_service_finds_ofrep_through_its_environment() {
    let api = free_port();
    let dir = tempdir("flags-env");
    let script = r#"
import json, os, sys, time
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
url, token = os.environ["GANTRY_OFREP_URL"], os.environ["GANTRY_OFREP_TOKEN"]
print("token=" + token, flush=True)
api.set_provider(OFREPProvider(url, headers_factory=lambda: {"Authorization": "Bearer " + token}))
c = api.get_client()
deadline = time.time() + 15
while True:
    d = c.get_string_details("greeting", "unreachable")
    if d.value != "unreachable" or time.time() > deadline:
        break
    time.sleep(0.1)
open("seen.json", "w").write(json.dumps([url, d.value, str(d.reason)]))
"#;
    std::fs::write(dir.join("sdk.py"), script).unwrap();
    std::fs::write(
        dir.join("gantry.toml"),
        format!(
            r#"
[settings]
api = "127.0.0.1:{api}"

[flags.greeting]
variants = {{ hello = "hello", hi = "hi" }}
default = "hi"

[services.reader]
kind = "task"
command = "{} sdk.py"
"#,
            python().display()
        ),
    )
    .unwrap();
    let out = Command::new(gantry())
        .args(["up", "--json"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let seen = dir.join("seen.json");
    let ok = eventually(30, || {
        seen.exists() && std::fs::read_to_string(&seen).is_ok_and(|s| s.ends_with(']'))
    });
    let _ = Command::new("kill")
        .args(["-INT", &out.id().to_string()])
        .status();
    let output = out.wait_with_output().unwrap();
    assert!(ok, "the service never evaluated the flag");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&seen).unwrap()).unwrap();
    assert_eq!(v[0], format!("http://127.0.0.1:{api}"));
    assert_eq!(v[1], "hi", "{v}");
    let token = std::fs::read_to_string(dir.join(".gantry/api.read-token")).unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains("token="), "{printed}");
    assert!(
        !printed.contains(token.trim()),
        "the read token leaked into gantry's output"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
