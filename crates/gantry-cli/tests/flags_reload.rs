//! Hot reload of the flags file against a real `gantry up`: 100 rapid rewrites (atomic renames and
//! in-place writes) with an invalid file among them while a client polls OFREP bulk evaluation
//! (never a half-written or invalid set, the last version served at the end, the invalid one a
//! mission the next valid one resolves); a Kubernetes ConfigMap-style `..data` symlink swap; a
//! deleted file (the last set kept, a mission opened).

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::*;

/// How many flags each version of the file has.
const FLAGS: usize = 20;
/// The generation the invalid file carries (it must never be served).
const INVALID: u64 = 999_999;

/// A complete flags file whose every flag evaluates to `generation`.
fn version(generation: u64) -> String {
    let flags: Vec<String> = (0..FLAGS)
        .map(|i| {
            format!(
                r#"    "f{i:02}": {{ "state": "ENABLED", "variants": {{ "g": {generation}, "other": -1 }}, "defaultVariant": "g" }}"#
            )
        })
        .collect();
    format!("{{\n  \"flags\": {{\n{}\n  }}\n}}\n", flags.join(",\n"))
}

/// Like [`version`], but invalid: one flag's default names a variant it does not have.
fn invalid() -> String {
    version(INVALID).replacen(
        r#""defaultVariant": "g""#,
        r#""defaultVariant": "missing""#,
        1,
    )
}

fn stack(port: u16, flags_file: &str) -> String {
    format!(
        r#"
[settings]
flags_file = "{flags_file}"

[flags.from_toml]
variants = {{ on = true, off = false }}
default = "on"

[services.web]
command = "FIXTURE --name web --http {port}"
readiness = {{ http = "http://127.0.0.1:{port}/health" }}
"#
    )
}

fn read_token(dir: &Path) -> String {
    let file = dir.join(".gantry/api.read-token");
    assert!(eventually(10, || file.exists()));
    std::fs::read_to_string(file).unwrap().trim().to_string()
}

/// One bulk evaluation: the generation every `fNN` flag has, or what is wrong with the answer.
fn served(addr: &str, token: &str) -> Result<u64, String> {
    let auth = format!("Bearer {token}");
    let (status, body) = http_with(
        addr,
        "POST",
        "/ofrep/v1/evaluate/flags",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        r#"{"context": {"targetingKey": "u"}}"#,
    )
    .ok_or("no answer")?;
    if status != 200 {
        return Err(format!("status {status}: {body}"));
    }
    let v: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| format!("not JSON ({e}): {body}"))?;
    let flags = v["flags"].as_array().ok_or(format!("no flags: {body}"))?;
    if !flags
        .iter()
        .any(|f| f["key"] == "from_toml" && f["value"] == true)
    {
        return Err(format!("gantry.toml's flag is missing: {body}"));
    }
    let gens: Vec<Option<u64>> = (0..FLAGS)
        .map(|i| {
            let key = format!("f{i:02}");
            flags
                .iter()
                .find(|f| f["key"] == key.as_str())
                .and_then(|f| f["value"].as_u64())
        })
        .collect();
    match gens.first().copied().flatten() {
        Some(g) if gens.iter().all(|x| *x == Some(g)) => Ok(g),
        _ => Err(format!("an incomplete or mixed set: {gens:?}")),
    }
}

/// The ETag of a bulk evaluation (empty context).
fn etag(addr: &str, token: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "POST /ofrep/v1/evaluate/flags HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    buf.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("etag")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no ETag: {buf}"))
}

/// The "flags: file" missions (every status).
fn file_missions(dir: &Path) -> Vec<serde_json::Value> {
    let (code, out) = gantry_in(dir, &["missions", "--json", "--all"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    v["missions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m["check"] == "flags: file")
        .collect()
}

fn open_file_mission(dir: &Path) -> bool {
    file_missions(dir).iter().any(|m| m["status"] == "open")
}

/// Writes `text` to `path` through a temp file renamed over it.
fn write_renamed(path: &Path, text: &str) {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn rapid_rewrites_never_serve_a_partial_or_invalid_set() {
    let port = free_port();
    let mut up = up_with("flags-reload", &stack(port, "flags.json"), &[], |dir| {
        std::fs::write(dir.join("flags.json"), version(0)).unwrap();
    });
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    let addr = api_addr_in(&up.dir);
    let token = read_token(&up.dir);
    assert_eq!(served(&addr, &token), Ok(0));

    // A client polls bulk evaluation all along; every answer must be one whole version.
    let stop = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(AtomicUsize::new(0));
    let poller = {
        let (stop, answers, addr, token) =
            (stop.clone(), answers.clone(), addr.clone(), token.clone());
        std::thread::spawn(move || -> Result<Vec<u64>, String> {
            let until = Instant::now() + Duration::from_secs(120);
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                let g = served(&addr, &token)?;
                if g == INVALID {
                    return Err("the invalid file was served".to_string());
                }
                if seen.last() != Some(&g) {
                    seen.push(g);
                }
                answers.fetch_add(1, Ordering::Relaxed);
            }
            Ok(seen)
        })
    };

    let path = up.dir.join("flags.json");
    for generation in 1..=100u64 {
        if generation % 2 == 1 {
            write_renamed(&path, &version(generation));
        } else {
            std::fs::write(&path, version(generation)).unwrap();
        }
        if generation == 50 {
            // The invalid file stays until gantry has said so: a mission, the last set served.
            write_renamed(&path, &invalid());
            assert!(
                eventually(10, || open_file_mission(&up.dir)),
                "the invalid file opened no mission; events:\n{}",
                up.log()
            );
            // The last valid version gantry read (50, or an earlier one if it read none since).
            let kept = served(&addr, &token);
            assert!(
                matches!(kept, Ok(g) if g <= 50),
                "the last valid set is served: {kept:?}"
            );
        }
    }
    assert!(
        eventually(10, || served(&addr, &token) == Ok(100)),
        "the last version is not served: {:?}",
        served(&addr, &token)
    );
    stop.store(true, Ordering::Relaxed);
    let seen = poller.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
    assert!(answers.load(Ordering::Relaxed) > 0);
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "versions were served in order: {seen:?}"
    );

    // The next valid version resolved the mission; the reloads were said and streamed.
    assert!(
        eventually(10, || {
            let m = file_missions(&up.dir);
            !m.is_empty() && m.iter().all(|m| m["status"] == "resolved")
        }),
        "{:?}",
        file_missions(&up.dir)
    );
    // Only the invalid file was declared invalid: no in-place write caught half-way was.
    assert_eq!(
        file_missions(&up.dir).len(),
        1,
        "{:?}",
        file_missions(&up.dir)
    );
    let bad = up.wait_for("flags_invalid", 10, |v| v["event"] == "flags_invalid");
    assert!(
        bad["error"].as_str().unwrap().contains("missing"),
        "the problem is named: {bad}"
    );
    up.wait_for("a reload of the last version", 10, |v| {
        v["event"] == "flags_reloaded" && v["flags"] == FLAGS
    });
    let invalid_events = up
        .events
        .iter()
        .filter(|v| v["event"] == "flags_invalid")
        .count();
    assert_eq!(invalid_events, 1, "{}", up.log());
    let (code, list) = gantry_in(&up.dir, &["flags"]);
    assert_eq!(code, 0, "{list}");
    assert!(list.contains("flags.json (read "), "{list}");
    eprintln!(
        "{} bulk answers, {} versions served: {seen:?}",
        answers.load(Ordering::Relaxed),
        seen.len()
    );
    assert_eq!(up.stop(), 0);
}

#[test]
fn a_configmap_symlink_swap_is_picked_up() {
    let port = free_port();
    let mut up = up_with(
        "flags-configmap",
        &stack(port, "cm/flags.json"),
        &[],
        |dir| {
            let cm = dir.join("cm");
            std::fs::create_dir_all(cm.join("..2026_01_01")).unwrap();
            std::fs::write(cm.join("..2026_01_01/flags.json"), version(1)).unwrap();
            std::os::unix::fs::symlink("..2026_01_01", cm.join("..data")).unwrap();
            std::os::unix::fs::symlink("..data/flags.json", cm.join("flags.json")).unwrap();
        },
    );
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    let addr = api_addr_in(&up.dir);
    let token = read_token(&up.dir);
    assert_eq!(served(&addr, &token), Ok(1));
    let before = etag(&addr, &token);

    // What the kubelet does: a new timestamped directory, `..data_tmp` pointing at it renamed
    // over `..data`, the old directory removed.
    let cm = up.dir.join("cm");
    std::fs::create_dir_all(cm.join("..2026_01_02")).unwrap();
    std::fs::write(cm.join("..2026_01_02/flags.json"), version(2)).unwrap();
    std::os::unix::fs::symlink("..2026_01_02", cm.join("..data_tmp")).unwrap();
    std::fs::rename(cm.join("..data_tmp"), cm.join("..data")).unwrap();
    std::fs::remove_dir_all(cm.join("..2026_01_01")).unwrap();
    assert!(
        eventually(10, || served(&addr, &token) == Ok(2)),
        "the swap was not picked up: {:?}; events:\n{}",
        served(&addr, &token),
        up.log()
    );
    up.wait_for("flags_reloaded", 10, |v| v["event"] == "flags_reloaded");
    assert_ne!(etag(&addr, &token), before, "a reload changes the ETag");
    assert!(!open_file_mission(&up.dir));
    assert_eq!(up.stop(), 0);
}

#[test]
fn a_deleted_file_keeps_the_last_set_and_opens_a_mission() {
    let port = free_port();
    let mut up = up_with("flags-deleted", &stack(port, "flags.json"), &[], |dir| {
        std::fs::write(dir.join("flags.json"), version(7)).unwrap();
    });
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    let addr = api_addr_in(&up.dir);
    let token = read_token(&up.dir);
    assert_eq!(served(&addr, &token), Ok(7));

    std::fs::remove_file(up.dir.join("flags.json")).unwrap();
    assert!(
        eventually(10, || open_file_mission(&up.dir)),
        "no mission for the deleted file; events:\n{}",
        up.log()
    );
    assert_eq!(served(&addr, &token), Ok(7), "never the defaults");
    let gone = up.wait_for("flags_invalid", 10, |v| v["event"] == "flags_invalid");
    assert!(
        gone["error"].as_str().unwrap().contains("flags.json"),
        "{gone}"
    );
    let (_, list) = gantry_in(&up.dir, &["flags"]);
    assert!(list.contains("invalid since"), "{list}");

    // Put back: served, and the mission resolved.
    write_renamed(&up.dir.join("flags.json"), &version(8));
    assert!(eventually(10, || served(&addr, &token) == Ok(8)));
    assert!(eventually(10, || !open_file_mission(&up.dir)));

    // An override whose flag changed type in the file stays stored, is not applied, and is said.
    let (code, out) = gantry_in(&up.dir, &["flag", "set", "f05", "5", "--reason", "test"]);
    assert_eq!(code, 0, "{out}");
    let retyped = version(9).replace(
        r#""f05": { "state": "ENABLED", "variants": { "g": 9, "other": -1 }"#,
        r#""f05": { "state": "ENABLED", "variants": { "g": "nine", "other": "x" }"#,
    );
    assert_ne!(retyped, version(9));
    write_renamed(&up.dir.join("flags.json"), &retyped);
    up.wait_for("a reload with an override not applied", 10, |v| {
        v["event"] == "flags_reloaded" && v["idle_overrides"] == 1
    });
    let auth = format!("Bearer {token}");
    let (status, body) = http_with(
        &addr,
        "POST",
        "/ofrep/v1/evaluate/flags/f05",
        &[("Authorization", &auth)],
        "",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["value"], "nine",
        "the file's value, not the override: {v}"
    );
    let (_, got) = gantry_in(&up.dir, &["flags", "--json"]);
    assert!(
        got.contains("\"f05\"") && got.contains("test"),
        "the override is kept: {got}"
    );
    assert_eq!(up.stop(), 0);
}
