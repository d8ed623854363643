//! The audit log and tokens with roles against a real `gantry up`: every mutation recorded with who
//! and why before it takes effect, the read token reads but cannot act, named tokens say who, and no
//! token appears in any output.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use support::*;

fn sha256_hex(text: &str) -> String {
    // coreutils' sha256sum: the digest the tokens file wants, computed the way its docs say.
    let out = Command::new("sh")
        .args(["-c", "printf %s \"$T\" | sha256sum"])
        .env("T", text)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

const ALICE: &str = "alice-0123456789abcdef0123456789abcdef";

fn stack(port: u16) -> String {
    format!(
        r#"
[settings]
api_tokens = "tokens"

[flags.limit]
variants = {{ low = 10, high = 1000 }}
default = "low"

[services.web]
command = "FIXTURE --name web --http {port}"
readiness = {{ http = "http://127.0.0.1:{port}/health" }}
"#
    )
}

#[test]
fn every_mutation_is_audited_with_who_and_why_and_the_read_token_cannot_act() {
    let port = free_port();
    let mut up = up_with("audit", &stack(port), &[], |dir| {
        let path = dir.join("tokens");
        std::fs::write(
            &path,
            format!("# who may call\nalice operator {}\n", sha256_hex(ALICE)),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    });
    up.wait_boot(20);
    let addr = api_addr_in(&up.dir);
    let read_file = up.dir.join(".gantry/api.read-token");
    assert!(eventually(10, || read_file.exists()));
    assert_eq!(
        std::fs::metadata(&read_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let read_token = std::fs::read_to_string(&read_file)
        .unwrap()
        .trim()
        .to_string();
    let operator = std::fs::read_to_string(up.dir.join(".gantry/api.token"))
        .unwrap()
        .trim()
        .to_string();
    assert_ne!(read_token, operator);

    // The CLI with a reason.
    let (code, out) = gantry_in(&up.dir, &["restart", "web", "--reason", "stuck on a lock"]);
    assert_eq!(code, 0, "{out}");
    up.wait_count("web", "ready", 2, 20);

    // The read token reads (status) but cannot act: 403, and nothing is recorded for it.
    let (status, _) = http(&addr, "GET", "/api/v1/audit", Some(&read_token)).unwrap();
    assert_eq!(status, 200);
    let (status, body) = http(
        &addr,
        "POST",
        "/api/v1/services/web/stop",
        Some(&read_token),
    )
    .unwrap();
    assert_eq!(status, 403, "{body}");

    // A named token: its name is the actor, whatever the actor header claims.
    let bearer = format!("Bearer {ALICE}");
    let (status, body) = http_with(
        &addr,
        "POST",
        "/api/v1/services/web/stop",
        &[
            ("Authorization", &bearer),
            ("X-Gantry-Actor", "cli:mallory"),
            ("Content-Type", "application/json"),
        ],
        r#"{"reason": "maintenance window"}"#,
    )
    .unwrap();
    assert_eq!(status, 202, "{body}");
    up.wait_state("web", "stopped", 20);
    // A refused command is recorded with its refusal.
    let (code, out) = gantry_in(&up.dir, &["start", "nope"]);
    assert_ne!(code, 0, "{out}");

    let (code, out) = gantry_in(&up.dir, &["audit", "--json"]);
    assert_eq!(code, 0, "{out}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.len(), 3, "{out}");
    // Newest first.
    assert_eq!(rows[0]["action"], "service.start");
    assert_eq!(rows[0]["target"], "nope");
    assert!(
        rows[0]["result"]
            .as_str()
            .unwrap()
            .starts_with("refused: unknown service"),
        "{out}"
    );
    assert_eq!(rows[1]["actor"], "token:alice");
    assert_eq!(rows[1]["action"], "service.stop");
    assert_eq!(rows[1]["reason"], "maintenance window");
    assert!(
        rows[1]["result"].as_str().unwrap().starts_with("ok: "),
        "{out}"
    );
    assert!(
        rows[2]["actor"].as_str().unwrap().starts_with("cli:"),
        "{out}"
    );
    assert_eq!(rows[2]["action"], "service.restart");
    assert_eq!(rows[2]["target"], "web");
    assert_eq!(rows[2]["reason"], "stuck on a lock");

    // The text form, and a window that excludes nothing recent.
    let (code, text) = gantry_in(&up.dir, &["audit", "--since", "1h"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("service.restart web (was ready) — stuck on a lock"),
        "{text}"
    );

    // Before and after: a flag set (its old and new value), a kill switch (off -> on), a
    // disable (the service's state, then the switch), in the JSON and the text form.
    for args in [
        &["flag", "set", "limit", "1000", "--reason", "load test"][..],
        &["safe-mode", "on", "--reason", "incident 7"],
        &["start", "web", "--reason", "back"],
    ] {
        let (code, out) = gantry_in(&up.dir, args);
        assert_eq!(code, 0, "{args:?}: {out}");
    }
    up.wait_count("web", "ready", 3, 20);
    let (code, out2) = gantry_in(&up.dir, &["disable", "web", "--reason", "noisy"]);
    assert_eq!(code, 0, "{out2}");
    up.wait_state("web", "stopped", 20);
    let (code, out2) = gantry_in(&up.dir, &["safe-mode", "off", "--reason", "over"]);
    assert_eq!(code, 0, "{out2}");
    let (code, out2) = gantry_in(&up.dir, &["audit", "--json", "--limit", "5"]);
    assert_eq!(code, 0, "{out2}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out2).unwrap();
    let change = |r: &serde_json::Value| {
        (
            r["action"].as_str().unwrap_or("?").to_string(),
            r["before"].clone(),
            r["after"].clone(),
        )
    };
    let expected = [
        ("flag.unset", "on", "off"),
        ("service.disable", "ready", "disabled"),
    ];
    for (row, (action, before, after)) in rows.iter().zip(expected) {
        assert_eq!(
            change(row),
            (action.to_string(), before.into(), after.into()),
            "{out2}"
        );
    }
    assert_eq!(rows[2]["action"], "service.start", "{out2}");
    assert_eq!(rows[2]["before"], "stopped", "{out2}");
    assert_eq!(rows[2]["after"], serde_json::Value::Null, "{out2}");
    assert_eq!(
        change(&rows[3]),
        ("flag.set".into(), "off".into(), "on".into()),
        "the kill switch: {out2}"
    );
    assert_eq!(rows[3]["target"], "safe_mode");
    assert_eq!(
        change(&rows[4]),
        ("flag.set".into(), "10".into(), "1000".into()),
        "{out2}"
    );
    assert_eq!(rows[4]["reason"], "load test");
    let (code, text2) = gantry_in(&up.dir, &["audit"]);
    assert_eq!(code, 0, "{text2}");
    assert!(
        text2.contains("service.disable web (ready -> disabled) — noisy"),
        "{text2}"
    );
    assert!(
        text2.contains("flag.set safe_mode (off -> on) — incident 7"),
        "{text2}"
    );
    // The API's own rows carry the same.
    let (status, body) = http(&addr, "GET", "/api/v1/audit?limit=5", Some(&read_token)).unwrap();
    assert_eq!(status, 200, "{body}");
    let api: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(api["audit"][1]["before"], "ready", "{body}");
    assert_eq!(api["audit"][1]["after"], "disabled", "{body}");

    up.stop();
    // No token in any output: the audit, the CLI's, gantry's own event stream.
    for secret in [&operator, &read_token, &ALICE.to_string()] {
        assert!(!out.contains(secret.as_str()) && !text.contains(secret.as_str()));
        assert!(!out2.contains(secret.as_str()) && !text2.contains(secret.as_str()));
        assert!(!up.log().contains(secret.as_str()));
    }
}

#[test]
fn a_tokens_file_others_can_read_or_with_a_bad_line_stops_the_up_with_what_to_do() {
    let port = free_port();
    let mut up = up_with("audit-mode", &stack(port), &[], |dir| {
        let path = dir.join("tokens");
        std::fs::write(&path, format!("alice operator {}\n", sha256_hex(ALICE))).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    });
    assert_ne!(up.wait_exit(20), 0);
    let mut up = up_with("audit-line", &stack(port), &[], |dir| {
        let path = dir.join("tokens");
        // A token pasted where its digest belongs: refused, and never repeated.
        std::fs::write(&path, format!("alice operator {ALICE}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    });
    assert_ne!(up.wait_exit(20), 0);
    assert!(!up.log().contains(ALICE));
}
