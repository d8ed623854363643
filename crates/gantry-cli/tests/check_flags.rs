//! `gantry check` on feature flags: every problem of the `[flags.NAME]` tables with
//! gantry.toml:line, every problem of the flagd JSON file with the file and its JSON path,
//! errors failing the check and warnings not.

use std::path::PathBuf;
use std::process::Command;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Writes the files into a fresh directory and runs `gantry check` (with `args`) there.
fn check(name: &str, files: &[(&str, &str)], args: &[&str]) -> Run {
    let dir =
        std::env::temp_dir().join(format!("gantry-check-flags-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (file, text) in files {
        std::fs::write(dir.join(file), text).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .arg("check")
        .args(args)
        .current_dir(&dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(PathBuf::from(&dir));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The first line of each diagnostic (`error[flag]: gantry.toml:10:11: flags.x.default: ...`).
fn heads(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("error[") || l.starts_with("warning["))
        .collect()
}

const SERVICE: &str = "[services.api]\ncommand = \"sleep 100\"\n";

#[test]
fn every_toml_flag_problem_is_reported_at_its_line() {
    let toml = format!(
        r#"{SERVICE}
[flags.new-ui]
variants = {{ on = true, off = false }}
default = "maybe"

[flags.mixed]
variants = {{ a = "x", b = 2 }}
default = "a"

[flags.brownout]
variants = {{ on = "yes", off = "no" }}
default = "off"

[flags.old]
variants = {{ on = true, off = false }}
default = "off"
expires = "2020-01-31"

[flags.typed]
type = "string"
variants = {{ on = "yes", off = false }}
default = "on"

[flags.when]
variants = {{ on = true }}
default = "on"
expires = "2027-02-30"
"#
    );
    let run = check("toml", &[("gantry.toml", &toml)], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let heads = heads(&run.stderr);
    let expect = [
        "error[flag]: gantry.toml:6:11: flags.new-ui.default: ",
        "error[flag]: gantry.toml:9:27: flags.mixed.variants.b: ",
        "error[flag]: gantry.toml:12:8: flags.brownout: ",
        "warning[flag]: gantry.toml:19:11: flags.old.expires: flag `old` expired on 2020-01-31",
        "error[flag]: gantry.toml:23:32: flags.typed.variants.off: ",
        "error[invalid-value]: gantry.toml:29:11: flags.when.expires: ",
    ];
    for e in expect {
        assert!(
            heads.iter().any(|h| h.starts_with(e)),
            "missing {e:?} in:\n{}",
            run.stderr
        );
    }
    assert_eq!(heads.len(), expect.len(), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("gantry.toml: invalid: 5 errors, 1 warning"),
        "{}",
        run.stderr
    );
}

#[test]
fn every_flags_file_problem_is_reported_with_its_json_path() {
    let toml = format!("[settings]\nflags_file = \"flags.json\"\n\n{SERVICE}");
    let json = r#"{
  "$schema": "https://flagd.dev/schema/v0/flags.json",
  "flags": {
    "no-default": { "state": "ENABLED", "variants": {"a": 1, "b": 2}, "defaultVariant": "c" },
    "mixed": { "state": "ENABLED", "variants": {"a": "x", "b": true}, "defaultVariant": "a" },
    "unknown-op": {
      "state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
      "targeting": {"if": [{"frobnicate": [1]}, "on", "off"]}
    },
    "safe_mode": { "state": "ENABLED", "variants": {"on": 1, "off": 0}, "defaultVariant": "off" },
    "r": { "state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on",
           "targeting": {"if": [{"$ref": "nope"}, "on", null]} },
    "s": { "state": "ON", "variants": {"on": true}, "defaultVariant": "on" }
  }
}"#;
    let run = check("json", &[("gantry.toml", &toml), ("flags.json", json)], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let heads = heads(&run.stderr);
    for e in [
        "error[flag]: flags.json: flags.no-default.defaultVariant: ",
        "error[flag]: flags.json: flags.mixed.variants.b: ",
        "error[flag]: flags.json: flags.unknown-op.targeting.if[0].frobnicate: ",
        "error[flag]: flags.json: flags.safe_mode",
        "error[flag]: flags.json: flags.r.targeting.if[0].$ref: ",
        "error[flag]: flags.json: flags.s.state: ",
    ] {
        assert!(
            heads.iter().any(|h| h.starts_with(e)),
            "missing {e:?} in:\n{}",
            run.stderr
        );
    }
    // Problems the parser finds ($ref to a missing evaluator, a bad state) come with paths too.
    let json = r#"{"flags": {
      "r": { "state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on",
             "targeting": {"if": [{"$ref": "nope"}, "on", null]} },
      "s": { "state": "ON", "variants": {"on": true}, "defaultVariant": "on" }
    }}"#;
    let run = check(
        "json-parse",
        &[("gantry.toml", &toml), ("flags.json", json)],
        &["--json"],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    let out: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(out["valid"], false);
    let keys: Vec<&str> = out["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["file"] == "flags.json")
        .filter_map(|d| d["key"].as_str())
        .collect();
    assert!(keys.contains(&"flags.r.targeting.if[0].$ref"), "{keys:?}");
    assert!(keys.contains(&"flags.s.state"), "{keys:?}");
}

#[test]
fn a_missing_flags_file_fails_the_check() {
    let toml = format!("[settings]\nflags_file = \"nowhere.json\"\n\n{SERVICE}");
    let run = check("missing", &[("gantry.toml", &toml)], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("error[flag]: nowhere.json: $: cannot read the flags file"),
        "{}",
        run.stderr
    );
}

#[test]
fn valid_flags_pass_and_a_future_expiry_is_silent() {
    let toml = format!(
        r#"[settings]
flags_file = "flags.json"

{SERVICE}
[flags.new-ui]
description = "The new checkout page"
owner = "team-web"
type = "bool"
variants = {{ on = true, off = false }}
default = "off"
expires = "2999-12-31"
tags = ["checkout"]
"#
    );
    let json = r##"{
  "$evaluators": { "beta": { "in": [{"var": "email"}, ["a@x.io", "b@x.io"]] } },
  "flags": {
    "colour": {
      "state": "ENABLED", "variants": {"red": "#f00", "blue": "#00f"}, "defaultVariant": "red",
      "targeting": {"if": [{"$ref": "beta"}, "blue", {"fractional": [["red", 50], ["blue", 50]]}]}
    },
    "off": { "state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off" }
  }
}"##;
    let run = check(
        "valid",
        &[("gantry.toml", &toml), ("flags.json", json)],
        &[],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(heads(&run.stderr).is_empty(), "{}", run.stderr);
    assert!(run.stdout.contains("gantry.toml: ok"), "{}", run.stdout);
}

#[test]
fn warnings_alone_do_not_fail_the_check() {
    let toml = format!(
        r#"[settings]
flags_file = "flags.json"

{SERVICE}
[flags.old]
variants = {{ on = true, off = false }}
default = "off"
expires = "2020-01-31"
"#
    );
    // Written weights that do not sum to 100 are relative in flagd: a warning, not an error.
    let json = r#"{"flags": {"split": {
      "state": "ENABLED", "variants": {"a": "a", "b": "b"}, "defaultVariant": "a",
      "targeting": {"fractional": [["a", 30], ["b", 30]]}
    }}}"#;
    let run = check(
        "warnings",
        &[("gantry.toml", &toml), ("flags.json", json)],
        &[],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let heads = heads(&run.stderr);
    assert!(
        heads
            .iter()
            .any(|h| h.starts_with("warning[flag]: gantry.toml:10:11: flags.old.expires: ")),
        "{}",
        run.stderr
    );
    assert!(
        heads
            .iter()
            .any(|h| h.starts_with("warning[flag]: flags.json: flags.split.targeting")),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("(2 warnings)"), "{}", run.stdout);
}

#[test]
fn a_flags_restart_name_no_flag_defines_is_a_warning_with_a_suggestion() {
    let toml = r#"
[flags.color]
variants = { red = "red", blue = "blue" }
default = "red"

[services.a]
command = "sleep 60"
flags_restart = ["colour", "color", "safe_mode", "*"]
"#;
    let run = check("flags-restart", &[("gantry.toml", toml)], &[]);
    assert_eq!(run.code, 0, "a warning only: {}{}", run.stdout, run.stderr);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains("services.a.flags_restart: no flag `colour`"),
        "{all}"
    );
    assert!(all.contains("did you mean `color`?"), "{all}");
    assert!(!all.contains("no flag `color`"), "{all}");
    assert!(!all.contains("no flag `safe_mode`"), "{all}");
}
