//! Hot standby end to end: `gantry up` instances with the same file and `[cluster]` against the local PostgreSQL (127.0.0.1:5432, `scripts/stores`): one leads and boots, the others stand by; SIGKILL and SIGTERM hand over; a leader paused past its lease stops without writing; never two terms acting at once.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};
use support::*;

/// A database of the test's own, dropped again when the test ends (even when it fails).
struct TestDb(String);

impl std::ops::Deref for TestDb {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-qtAc",
            ])
            .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0))
            .output();
    }
}

fn database(name: &str) -> TestDb {
    let db = format!("gantry_e2e_cluster_{}_{name}", std::process::id());
    psql("postgres", &format!("DROP DATABASE IF EXISTS {db}"));
    psql("postgres", &format!("CREATE DATABASE {db}"));
    TestDb(db)
}

/// The stack every instance runs: one service, `marker` in its command line.
fn stack(db: &str, lease: Option<&str>, marker: &str) -> String {
    let lease = lease
        .map(|l| format!("lease = \"{l}\"\n"))
        .unwrap_or_default();
    format!(
        r#"
[cluster]
store = "postgres://postgres@127.0.0.1:5432/{db}"
{lease}
[services.app]
command = "FIXTURE --name {marker} --delay 50"
"#
    )
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn is_role(v: &serde_json::Value, role: &str) -> bool {
    v["event"] == "cluster" && v["role"] == role
}

fn signal(sig: &str, pid: u32) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// Host pids of the stack's services, from `gantry status --json` in `dir`.
fn service_pids(dir: &Path) -> Vec<u32> {
    let mut pids = Vec::new();
    assert!(
        eventually(10, || {
            let (code, out) = gantry_in(dir, &["status", "--json"]);
            let v: serde_json::Value = if code == 0 {
                serde_json::from_str(out.lines().next().unwrap_or("")).unwrap_or_default()
            } else {
                serde_json::Value::Null
            };
            pids = v["services"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s["pid"].as_u64().map(|p| p as u32))
                        .collect()
                })
                .unwrap_or_default();
            !pids.is_empty()
        }),
        "no service pid in `gantry status --json`"
    );
    pids
}

/// `gantry status --json` of the instance in `dir` (its first line, parsed).
fn status_json(dir: &Path) -> serde_json::Value {
    let (_, out) = gantry_in(dir, &["status", "--json"]);
    serde_json::from_str(&out).unwrap_or_default()
}

#[test]
fn the_standby_boots_the_stack_after_the_leader_is_killed() {
    let db = database("kill");
    let marker = format!("clusterkill{}", std::process::id());
    let toml = stack(&db, None, &marker);
    let mut a = up("cluster-kill-a", &toml, &[]);
    let lead = a.wait_for("a leads", 20, |v| is_role(v, "leader"));
    assert_eq!(a.wait_boot(20)["outcome"], "go", "{}", a.log());
    let mut b = up("cluster-kill-b", &toml, &[]);
    let standby = b.wait_for("b stands by", 20, |v| is_role(v, "standby"));
    assert_eq!(standby["leader"], lead["name"], "{}", b.log());
    assert_eq!(standby["term"], lead["term"]);
    assert!(
        !b.events.iter().any(|v| v["event"] == "transition"),
        "a standby starts nothing: {}",
        b.log()
    );
    // The leader's status shows the election: leader, term, the standby.
    let b_name = standby["name"].as_str().unwrap().to_string();
    assert!(
        eventually(10, || {
            let s = status_json(&a.dir);
            s["cluster"]["role"] == "leader"
                && s["cluster"]["term"] == lead["term"]
                && s["cluster"]["standbys"]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|n| n == b_name.as_str()))
        }),
        "status: {}",
        status_json(&a.dir)
    );
    let (_, text) = gantry_in(&a.dir, &["status"]);
    assert!(
        text.contains("is leader") && text.contains(&b_name),
        "{text}"
    );
    let (code, metrics) = http(&api_addr_in(&a.dir), "GET", "/metrics", None).unwrap();
    assert_eq!(code, 200);
    assert!(metrics.contains("gantry_cluster_leader 1"), "{metrics}");
    assert!(
        metrics.contains(&format!("gantry_cluster_term {}", lead["term"])),
        "{metrics}"
    );
    let pids = service_pids(&a.dir);
    // A standby serves no API; its status says who leads, with which term.
    let (code, text) = gantry_in(&b.dir, &["status"]);
    let a_name = lead["name"].as_str().unwrap();
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!(
            "{b_name} is standby (leader {a_name}, term {}",
            lead["term"]
        )),
        "{text}"
    );
    let s = status_json(&b.dir);
    assert_eq!(s["cluster"]["role"], "standby", "{s}");
    // `gantry preflight` reads the election without taking part.
    let (code, text) = gantry_in(&b.dir, &["preflight"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!(
            "{a_name} leads cluster gantry (term {})",
            lead["term"]
        )),
        "{text}"
    );

    let killed_at = now_ms();
    let killed = Instant::now();
    signal("-KILL", a.child.id());
    a.wait_exit(10);
    let took = b.wait_for("b takes over", 20, |v| is_role(v, "leader"));
    let go = b.wait_boot(20);
    assert_eq!(go["outcome"], "go", "{}", b.log());
    let first_start = b.wait_state("app", "starting", 5);
    println!(
        "takeover after SIGKILL (lease 5s): leader after {} ms, first service starting after {} ms, GO after {} ms (test clock: GO seen {} ms after the kill)",
        took["ts_ms"].as_u64().unwrap() - killed_at,
        first_start["ts_ms"].as_u64().unwrap() - killed_at,
        go["ts_ms"].as_u64().unwrap() - killed_at,
        killed.elapsed().as_millis()
    );
    assert_eq!(
        took["term"].as_i64().unwrap(),
        lead["term"].as_i64().unwrap() + 1,
        "a new holder, a new term"
    );
    // Nothing the killed leader started outlives it.
    assert!(
        eventually(10, || pids
            .iter()
            .all(|p| !Path::new(&format!("/proc/{p}")).exists())),
        "the killed leader's services {pids:?} are still running"
    );
    assert_eq!(b.stop(), 0, "{}", b.log());
    assert!(eventually(10, || processes_with(&marker).is_empty()));
}

#[test]
fn sigterm_of_the_leader_hands_over_at_once() {
    let db = database("term");
    let marker = format!("clusterterm{}", std::process::id());
    let toml = stack(&db, None, &marker);
    let mut a = up("cluster-term-a", &toml, &[]);
    let lead = a.wait_for("a leads", 20, |v| is_role(v, "leader"));
    assert_eq!(a.wait_boot(20)["outcome"], "go", "{}", a.log());
    let mut b = up("cluster-term-b", &toml, &[]);
    b.wait_for("b stands by", 20, |v| is_role(v, "standby"));

    let sent_at = now_ms();
    signal("-TERM", a.child.id());
    let took = b.wait_for("b takes over", 10, |v| is_role(v, "leader"));
    let go = b.wait_boot(20);
    assert_eq!(go["outcome"], "go", "{}", b.log());
    println!(
        "handover on SIGTERM: leader after {} ms, GO after {} ms",
        took["ts_ms"].as_u64().unwrap() - sent_at,
        go["ts_ms"].as_u64().unwrap() - sent_at
    );
    assert_eq!(a.wait_exit(20), 0, "{}", a.log());
    assert!(
        a.events.iter().any(|v| is_role(v, "resigned")),
        "{}",
        a.log()
    );
    assert_eq!(
        took["term"].as_i64().unwrap(),
        lead["term"].as_i64().unwrap() + 1
    );
    // The fenced rows: a's term ends with its resignation before b's takeover.
    // The leader's task writes `boot go` after the event is out: poll for it.
    let t = lead["term"].as_i64().unwrap();
    let want = format!(
        "{t} takeover\n{t} boot go\n{t} resign\n{} takeover\n{} boot go",
        t + 1,
        t + 1
    );
    let mut rows = String::new();
    eventually(10, || {
        rows = psql(
            &db,
            "SELECT term || ' ' || action FROM gantry_cluster_actions ORDER BY seq",
        );
        rows == want
    });
    assert_eq!(rows, want);
    // `up --detach` of a standby returns once it stands by; `gantry down` stops it.
    let d = tempdir("cluster-term-d");
    std::fs::write(
        d.join("gantry.toml"),
        format!("[settings]\napi = \"127.0.0.1:0\"\n{toml}")
            .replace("FIXTURE", fixture().to_str().unwrap()),
    )
    .unwrap();
    let (code, text) = gantry_in(&d, &["up", "--detach"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("stands by in the background"), "{text}");
    assert!(text.contains("is standby (leader "), "{text}");
    let (code, text) = gantry_in(&d, &["down"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("stopped (was standing by)"), "{text}");
    let _ = std::fs::remove_dir_all(&d);
    // A standby that is told to stop leaves at once, starting nothing.
    let mut c = up("cluster-term-c", &toml, &[]);
    c.wait_for("c stands by", 20, |v| is_role(v, "standby"));
    assert_eq!(c.stop(), 0, "{}", c.log());
    assert!(!c.events.iter().any(|v| v["event"] == "transition"));
    assert_eq!(b.stop(), 0, "{}", b.log());
    assert!(eventually(10, || processes_with(&marker).is_empty()));
}

/// Waits until one of `ups` reports leading with `term`: its index and the event.
fn next_leader(ups: &mut [Up], term: i64, secs: u64) -> (usize, serde_json::Value) {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        for (i, u) in ups.iter_mut().enumerate() {
            let step = Instant::now() + Duration::from_millis(10);
            if let Some(v) = u.poll_for(step, |v| is_role(v, "leader") && v["term"] == term) {
                return (i, v);
            }
        }
    }
    let logs: Vec<String> = ups.iter().map(Up::log).collect();
    panic!(
        "no instance led term {term}; events:\n{}",
        logs.join("\n---\n")
    );
}

#[test]
fn never_two_leaders_through_kills_and_pauses() {
    let rounds: usize = std::env::var("GANTRY_CLUSTER_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20);
    let db = database("fence");
    let marker = format!("clusterfence{}", std::process::id());
    let toml = stack(&db, Some("1s"), &marker);
    let mut ups: Vec<Up> = (0..3)
        .map(|i| up(&format!("cluster-fence-{i}"), &toml, &[]))
        .collect();
    let (mut leader, mut lead) = next_leader(&mut ups, 1, 30);
    let mut takeovers = Vec::new();
    let mut paused_rounds = 0;
    for round in 0..rounds {
        let term = lead["term"].as_i64().unwrap();
        let name = lead["name"].as_str().unwrap().to_string();
        assert_eq!(ups[leader].wait_boot(20)["outcome"], "go");
        let pause = round % 2 == 1;
        let t0 = now_ms();
        if pause {
            // SIGSTOP the loop past its lease; a standby takes over; SIGCONT.
            let pid = ups[leader].loop_pid();
            signal("-STOP", pid);
            let (next, ev) = next_leader(&mut ups, term + 1, 20);
            signal("-CONT", pid);
            let old = &mut ups[leader];
            let lost = old.wait_for("the paused leader stops", 20, |v| is_role(v, "lost"));
            assert_eq!(lost["term"], term);
            assert_eq!(old.wait_exit(20), 1, "a leader that lost its lease exits 1");
            // It wrote nothing after the new leader's takeover.
            let late = psql(
                &db,
                &format!(
                    "SELECT count(*) FROM gantry_cluster_actions a WHERE holder = '{name}' AND term = {term} \
                     AND seq > (SELECT seq FROM gantry_cluster_actions WHERE term = {} AND action = 'takeover')",
                    term + 1
                ),
            );
            assert_eq!(late, "0", "the paused leader wrote after it woke up");
            paused_rounds += 1;
            takeovers.push(("pause", ev["ts_ms"].as_u64().unwrap().saturating_sub(t0)));
            (leader, lead) = (next, ev);
        } else {
            signal("-KILL", ups[leader].child.id());
            let (next, ev) = next_leader(&mut ups, term + 1, 20);
            takeovers.push(("kill", ev["ts_ms"].as_u64().unwrap().saturating_sub(t0)));
            let old = leader;
            (leader, lead) = (next, ev);
            ups[old].wait_exit(20);
        }
        // The old instance comes back as a standby (its dir and state dir kept).
        let old = (0..3)
            .find(|&i| i != leader && ups[i].child.try_wait().unwrap().is_some())
            .expect("the old leader exited");
        let back = ups.remove(old).restart(20);
        ups.insert(old, back);
        ups[old].wait_for("the old leader stands by", 20, |v| is_role(v, "standby"));
    }
    // The fencing rows: one takeover per term (a unique index), one holder per term, and
    // terms never interleave in the order the rows were written.
    let terms = psql(
        &db,
        "SELECT count(DISTINCT term) FROM gantry_cluster_actions",
    );
    assert_eq!(terms, (rounds + 1).to_string());
    let takeover_rows = psql(
        &db,
        "SELECT count(*) FROM gantry_cluster_actions WHERE action = 'takeover'",
    );
    assert_eq!(takeover_rows, terms);
    let shared = psql(
        &db,
        "SELECT count(*) FROM (SELECT term FROM gantry_cluster_actions GROUP BY term \
         HAVING count(DISTINCT holder) > 1) x",
    );
    assert_eq!(shared, "0", "a term with two holders");
    let interleaved = psql(
        &db,
        "SELECT count(*) FROM (SELECT term, lag(term) OVER (ORDER BY seq) AS prev \
         FROM gantry_cluster_actions) x WHERE term < prev",
    );
    assert_eq!(interleaved, "0", "an older term acted after a newer one");
    let dup = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", &db, "-qtAc"])
        .arg("INSERT INTO gantry_cluster_actions (cluster, term, holder, action) SELECT cluster, term, 'x', 'takeover' FROM gantry_cluster_actions LIMIT 1")
        .output()
        .unwrap();
    assert!(
        !dup.status.success(),
        "a second takeover of a term is refused"
    );
    let kills: Vec<u64> = takeovers
        .iter()
        .filter(|t| t.0 == "kill")
        .map(|t| t.1)
        .collect();
    let pauses: Vec<u64> = takeovers
        .iter()
        .filter(|t| t.0 == "pause")
        .map(|t| t.1)
        .collect();
    println!(
        "never two leaders: {rounds} rounds ({paused_rounds} pauses), lease 1s; takeover ms after SIGKILL: {kills:?}; after SIGSTOP: {pauses:?}"
    );
    for mut u in ups {
        u.stop();
    }
    assert!(
        eventually(10, || processes_with(&marker).is_empty()),
        "left behind: {:?}",
        processes_with(&marker)
    );
}

#[test]
fn an_unreachable_store_is_a_no_go_that_never_shows_the_password() {
    let port = free_port();
    let toml = format!(
        r#"
[cluster]
store = "postgres://app:hunter2secret@127.0.0.1:{port}/db"
lease = "1s"

[services.app]
command = "FIXTURE --name clusternostore --delay 50"
"#
    );
    let dir = tempdir("cluster-nostore");
    std::fs::write(
        dir.join("gantry.toml"),
        toml.replace("FIXTURE", fixture().to_str().unwrap()),
    )
    .unwrap();
    let (code, out) = gantry_in(&dir, &["up"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("cannot reach the cluster store"), "{out}");
    assert!(out.contains("app:***@127.0.0.1"), "{out}");
    assert!(out.contains("hint:"), "{out}");
    assert!(!out.contains("hunter2secret"), "{out}");
    assert!(!out.contains("fixture clusternostore started"), "{out}");
    let (code, out) = gantry_in(&dir, &["preflight"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✗ cluster store: cannot reach"), "{out}");
    assert!(!out.contains("hunter2secret"), "{out}");
    let _ = std::fs::remove_dir_all(dir);
}
