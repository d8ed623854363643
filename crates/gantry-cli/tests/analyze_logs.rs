//! `gantry analyze` and `gantry logs` against a hand-built state dir (SQLite store and log files), through the real binary.
//!
//! The binary-level tests are ignored until the commands are wired into main.rs; the store
//! query they rely on is tested directly here, the pure logic by unit tests in the modules.

use gantry_state::StateDir;
use gantry_state::store::{ServiceRecord, Store};
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

const STACK: &str = r#"
[settings]
state_dir = "state"

[services.db]
command = "sleep 100"

[services.cache]
command = "sleep 100"

[services.api]
command = "sleep 100"
depends_on = ["db", "cache"]

[services.web]
command = "sleep 100"
depends_on = ["api"]
"#;

/// (name, state, started_ms, ready_ms, attempts, error)
type Svc<'a> = (
    &'a str,
    &'a str,
    Option<u64>,
    Option<u64>,
    u32,
    Option<&'a str>,
);

fn tempdir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("gantry-analyze-logs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A stack dir with gantry.toml and an empty state store, created by the real `Store` (so
/// these tests follow the schema wherever it goes); returns (dir, store).
fn stack(name: &str) -> (PathBuf, Store) {
    let dir = tempdir(name);
    std::fs::write(dir.join("gantry.toml"), STACK).unwrap();
    let store = Store::open(StateDir::new(dir.join("state"))).unwrap();
    (dir, store)
}

/// Records a boot the way `gantry up` does: begun, then (with an outcome) decided with every
/// service's record.
fn add_boot(
    store: &mut Store,
    outcome: Option<&str>,
    duration_ms: u64,
    reason: Option<&str>,
    services: &[Svc<'_>],
) -> i64 {
    let id = store
        .begin_boot("2026-11-24T07:41:00.123Z", "gantry.toml")
        .unwrap();
    if let Some(outcome) = outcome {
        let records: Vec<ServiceRecord> = services
            .iter()
            .map(
                |&(name, state, started_ms, ready_ms, attempts, error)| ServiceRecord {
                    name: name.into(),
                    state: state.into(),
                    priority: "normal".into(),
                    started_ms,
                    ready_ms,
                    attempts,
                    error: error.map(str::to_string),
                },
            )
            .collect();
        store
            .finish_boot(
                id,
                outcome,
                Duration::from_millis(duration_ms),
                reason,
                &records,
            )
            .unwrap();
    }
    id
}

/// db 0→330, cache 0→50, api 330→930 (2 attempts), web 930→1240.
const BASE: [Svc<'static>; 4] = [
    ("db", "ready", Some(0), Some(330), 1, None),
    ("cache", "ready", Some(0), Some(50), 1, None),
    ("api", "ready", Some(330), Some(930), 2, None),
    ("web", "ready", Some(930), Some(1240), 1, None),
];

fn gantry(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gantry"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

// -------------------------------------------------------------------------------------------
// The store query (no binary needed)

#[test]
fn store_lists_decided_boots_newest_first() {
    let (dir, mut writer) = stack("store");
    add_boot(&mut writer, Some("go"), 1000, None, &BASE);
    add_boot(
        &mut writer,
        Some("no-go"),
        500,
        Some("api: exit code 1"),
        &BASE,
    );
    add_boot(&mut writer, None, 0, None, &[]); // still booting
    let store = Store::open_existing(dir.join("state")).unwrap();
    let boots = store.decided_boots(2).unwrap();
    assert_eq!(
        boots.iter().map(|b| b.id).collect::<Vec<_>>(),
        [2, 1],
        "undecided boot #3 is skipped"
    );
    assert_eq!(boots[0].outcome.as_deref(), Some("no-go"));
    assert_eq!(boots[0].reason.as_deref(), Some("api: exit code 1"));
    assert_eq!(store.decided_boots(1).unwrap().len(), 1);
    assert_eq!(store.boot_services(2).unwrap().len(), 4);
    // Close both connections, the writer last: it checkpoints the WAL and removes it, so the
    // file below is all there is.
    drop(store);
    drop(writer);
    assert!(!dir.join("state/state.db-wal").exists());
    // A file that is not a state store is an error, not an empty history.
    std::fs::write(dir.join("state/state.db"), b"not sqlite").unwrap();
    if let Some(store) = Store::open_existing(dir.join("state")) {
        assert!(store.decided_boots(1).is_err());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// -------------------------------------------------------------------------------------------
// gantry analyze

#[test]
fn analyze_text_shows_header_chain_and_times() {
    let (dir, mut writer) = stack("analyze-text");
    add_boot(&mut writer, Some("go"), 1240, None, &BASE);
    let out = gantry(&dir, &["analyze"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("boot #1 at 2026-11-24T07:41:00.123Z: GO in 1.24 s\n"),
        "{text}"
    );
    assert!(text.contains("\nweb @1.24 s +310 ms\n"), "{text}");
    assert!(
        text.contains("\n└─api @930 ms +600 ms (2 attempts)\n"),
        "{text}"
    );
    assert!(text.contains("\n  └─db @330 ms +330 ms\n"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("cache ")), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn analyze_blame_sorts_slowest_first() {
    let (dir, mut writer) = stack("analyze-blame");
    let mut services = BASE.to_vec();
    services[3] = ("web", "failed", Some(930), None, 3, Some("exit code 1"));
    add_boot(
        &mut writer,
        Some("no-go"),
        2000,
        Some("web: exit code 1"),
        &services,
    );
    let out = gantry(&dir, &["analyze", "blame"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().skip(2).collect();
    assert_eq!(
        lines,
        [
            "600 ms api (2 attempts)",
            "330 ms db",
            " 50 ms cache",
            "     - web FAILED after 3 attempts: exit code 1"
        ],
        "{text}"
    );
    assert!(text.starts_with("boot #1 at "), "{text}");
    assert!(
        text.lines().next().unwrap().contains("NO-GO in 2.00 s"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn analyze_json_is_machine_readable() {
    let (dir, mut writer) = stack("analyze-json");
    add_boot(&mut writer, Some("go"), 1240, None, &BASE);
    let out = gantry(&dir, &["analyze", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["boot"]["id"], 1);
    assert_eq!(v["boot"]["duration_ms"], 1240);
    let chain: Vec<&str> = v["critical_chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(chain, ["db", "api", "web"]);
    assert_eq!(v["services"].as_array().unwrap().len(), 4);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn analyze_svg_is_well_formed_xml() {
    let (dir, mut writer) = stack("analyze-svg");
    let mut services = BASE.to_vec();
    services.push(("a<&>\"b", "failed", Some(100), None, 3, Some("x < y & z")));
    add_boot(
        &mut writer,
        Some("degraded"),
        1240,
        Some("a<&>\"b: x < y"),
        &services,
    );
    let out = gantry(&dir, &["analyze", "--format", "svg"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let svg = stdout(&out);
    assert!(svg.contains("<svg"), "{svg}");
    let mut python = Command::new("python3")
        .args([
            "-c",
            "import xml.dom.minidom,sys; d = xml.dom.minidom.parse(sys.stdin); assert d.documentElement.tagName == 'svg'",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed to validate the SVG");
    python
        .stdin
        .take()
        .unwrap()
        .write_all(svg.as_bytes())
        .unwrap();
    let checked = python.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "not well-formed XML: {}\n{svg}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn analyze_compare_flags_regressions_and_exits_0() {
    let (dir, mut writer) = stack("analyze-compare");
    add_boot(&mut writer, Some("go"), 1240, None, &BASE);
    add_boot(&mut writer, None, 0, None, &[]); // an undecided boot in between is skipped
    // api 600 → 940 ms (+57%), web 310 → 430 ms (+39%), db 330 → 320 ms.
    add_boot(
        &mut writer,
        Some("go"),
        1700,
        None,
        &[
            ("db", "ready", Some(0), Some(320), 1, None),
            ("cache", "ready", Some(0), Some(50), 1, None),
            ("api", "ready", Some(330), Some(1270), 2, None),
            ("web", "ready", Some(1270), Some(1700), 1, None),
        ],
    );
    let out = gantry(&dir, &["analyze", "--compare"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("boot #3 "), "{text}");
    assert!(text.contains("compared with boot #1 "), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("! api") && l.ends_with("+340 ms (+57%)")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("  db") && l.ends_with("-10 ms (-3%)")),
        "{text}"
    );
    assert_eq!(
        text.lines().last().unwrap(),
        "2 regressions: api +340 ms (+57%), web +120 ms (+39%)",
        "{text}"
    );
    let out = gantry(&dir, &["analyze", "--compare", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["compare"]["previous"]["id"], 1);
    assert_eq!(
        v["compare"]["regressions"],
        serde_json::json!(["api", "web"])
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn analyze_explains_what_is_missing() {
    let dir = tempdir("analyze-missing");
    std::fs::write(dir.join("gantry.toml"), STACK).unwrap();
    let out = gantry(&dir, &["analyze"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("no boot recorded in state/state.db yet"),
        "{err}"
    );
    assert!(err.contains("hint: run `gantry up` first"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);

    let (dir, mut writer) = stack("analyze-one");
    add_boot(&mut writer, Some("go"), 1240, None, &BASE);
    let out = gantry(&dir, &["analyze", "--compare"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("nothing to compare with"),
        "{}",
        stderr(&out)
    );
    let out = gantry(&dir, &["analyze", "--compare", "--format", "svg"]);
    assert_eq!(out.status.code(), Some(2));

    let _ = std::fs::remove_dir_all(&dir);

    // The only boot is not decided yet.
    let (dir, mut writer) = stack("analyze-undecided");
    add_boot(&mut writer, None, 0, None, &[]);
    let out = gantry(&dir, &["analyze"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not decided yet"),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// -------------------------------------------------------------------------------------------
// gantry logs

fn rfc3339(t: SystemTime) -> String {
    gantry_state::time::rfc3339_utc(t)
}

/// state/logs with db.log and api.log, interleaved in time; the first two lines an hour old.
fn logs_stack(name: &str) -> PathBuf {
    let dir = tempdir(name);
    std::fs::write(dir.join("gantry.toml"), STACK).unwrap();
    let logs = dir.join("state/logs");
    std::fs::create_dir_all(&logs).unwrap();
    let now = SystemTime::now();
    let old = now - Duration::from_secs(3600);
    let ts = |base: SystemTime, ms: u64| rfc3339(base + Duration::from_millis(ms));
    std::fs::write(
        logs.join("db.log"),
        format!(
            "{} out db old\n{} out db listening\n{} err db slow query\n",
            ts(old, 0),
            ts(now, 0),
            ts(now, 300)
        ),
    )
    .unwrap();
    std::fs::write(
        logs.join("api.log"),
        format!(
            "{} out api old\n{} out api starting\n{} err api retrying\n",
            ts(old, 100),
            ts(now, 100),
            ts(now, 200)
        ),
    )
    .unwrap();
    dir
}

#[test]
fn logs_merge_by_time_with_prefixes() {
    let dir = logs_stack("logs-merge");
    let out = gantry(&dir, &["logs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "db    | db old\napi   | api old\ndb    | db listening\napi   | api starting\napi   | api retrying\ndb    | db slow query\n"
    );
    let out = gantry(
        &dir,
        &["logs", "db", "api", "--since", "5m", "--stream", "err"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "api | api retrying\ndb  | db slow query\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn logs_of_one_service_have_no_prefix() {
    let dir = logs_stack("logs-one");
    let out = gantry(&dir, &["logs", "api", "--since", "10m"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "api starting\napi retrying\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn logs_reject_unknown_names_and_bad_arguments() {
    let dir = logs_stack("logs-unknown");
    let out = gantry(&dir, &["logs", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("unknown service `nope`; known services: db, cache, api, web"),
        "{err}"
    );
    let out = gantry(&dir, &["logs", "--since", "5"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&dir);

    let dir = tempdir("logs-nodir");
    std::fs::write(dir.join("gantry.toml"), STACK).unwrap();
    let out = gantry(&dir, &["logs"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("no logs in state/logs yet"), "{err}");
    assert!(err.contains("hint: run `gantry up` first"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn logs_follow_prints_new_lines() {
    let dir = logs_stack("logs-follow");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .current_dir(&dir)
        .args(["logs", "--follow", "web", "db"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = |what: &str| {
        rx.recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("no line for {what}"))
    };
    assert_eq!(next("db old"), "db  | db old");
    assert_eq!(next("db listening"), "db  | db listening");
    assert_eq!(next("db slow"), "db  | db slow query");
    // web has no log file yet: it is followed once it appears.
    let started = Instant::now();
    let mut web = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("state/logs/web.log"))
        .unwrap();
    writeln!(web, "{} out web up", rfc3339(SystemTime::now())).unwrap();
    assert_eq!(next("web up"), "web | web up");
    let mut db = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("state/logs/db.log"))
        .unwrap();
    writeln!(db, "{} out db again", rfc3339(SystemTime::now())).unwrap();
    assert_eq!(next("db again"), "db  | db again");
    assert!(started.elapsed() < Duration::from_secs(5));
    child.kill().unwrap();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
