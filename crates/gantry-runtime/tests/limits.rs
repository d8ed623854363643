//! The limiter against real processes: the rlimit fallback reaches the child, a limited child is in its cgroup from its first instruction, groups go when the service does, and the pre-flight's words for each mechanism.

use gantry_runtime::process::{SpawnSpec, spawn};
use gantry_runtime::reaper::Reaper;
use gantry_runtime::resource::{Enforcement, Limiter};
use gantry_spec::{Source, decode};
use std::time::{Duration, Instant};

fn plan(toml: &str) -> gantry_plan::Plan {
    let source = Source::new("gantry.toml", toml);
    let loaded = decode(&source, &|_| None);
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    let (plan, diags) = gantry_plan::build(&loaded.spec, &source, &gantry_plan::Timings::new());
    assert!(diags.is_empty(), "{diags:#?}");
    plan
}

const TWO: &str = r#"
[services.a]
command = "true"
memory_max = "64MiB"
cpu_max = "20%"

[services.b]
command = "true"
"#;

fn sh(script: &str) -> SpawnSpec {
    SpawnSpec {
        program: "sh".into(),
        args: vec!["-c".into(), script.into()],
        env: vec![("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into())].into(),
        ..Default::default()
    }
}

/// Everything `spec` prints to stdout, and its exit.
async fn output(spec: &SpawnSpec, reaper: &Reaper) -> (Vec<String>, bool) {
    let mut s = spawn(spec, reaper).expect("spawn");
    let mut lines = Vec::new();
    while let Ok(Ok(Some(l))) =
        tokio::time::timeout(Duration::from_secs(5), s.stdout.next_line()).await
    {
        lines.push(l);
    }
    let ok = tokio::time::timeout(Duration::from_secs(5), s.exit)
        .await
        .expect("the child exits")
        .expect("reaped")
        .success();
    (lines, ok)
}

fn runtime() -> tokio::runtime::Runtime {
    gantry_runtime::nsinit::subreaper_fallback().expect("become a child subreaper");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn limits() {
    // One test function: the reaper owns every child of this process.
    let rt = runtime();
    rt.block_on(async {
        let reaper = Reaper::start().expect("reaper");
        the_fallback_caps_the_address_space_and_says_what_it_cannot_do(&reaper).await;
        a_limited_child_runs_in_its_group_from_the_start_and_the_groups_go(&reaper).await;
    });
}

async fn the_fallback_caps_the_address_space_and_says_what_it_cannot_do(reaper: &Reaper) {
    let mut l = Limiter::without_cgroups(&plan(TWO));
    assert_eq!(
        l.enforcement(),
        (Some(Enforcement::Rlimit), Some(Enforcement::None))
    );
    let report = l.report();
    assert_eq!(report.len(), 1, "only the service with limits: {report:?}");
    let (service, enforced, message, hint) = &report[0];
    assert_eq!((service.as_str(), *enforced), ("a", false));
    assert!(
        message.contains("memory_max 64MiB only as RLIMIT_AS"),
        "{message}"
    );
    assert!(
        message
            .contains("cpu_max 0.2 CPU is not enforced: without cgroups nothing limits a CPU rate"),
        "{message}"
    );
    assert!(
        hint.as_deref()
            .is_some_and(|h| h.contains("run gantry as root")),
        "{hint:?}"
    );

    let mut spec = sh("ulimit -v");
    spec.confine = l.prepare(0).expect("prepare");
    assert!(spec.confine.is_some());
    let (lines, ok) = output(&spec, reaper).await;
    assert!(ok);
    assert_eq!(lines, ["65536"], "RLIMIT_AS in KiB");
    // A service without limits is spawned as before.
    assert_eq!(l.prepare(1).expect("prepare"), None);
    let (lines, _) = output(&sh("ulimit -v"), reaper).await;
    assert_eq!(lines, ["unlimited"]);
    assert_eq!(l.exited(0).oom_kill, None);
}

async fn a_limited_child_runs_in_its_group_from_the_start_and_the_groups_go(reaper: &Reaper) {
    let mut l = Limiter::detect(&plan(TWO));
    let (memory, cpu) = l.enforcement();
    if !matches!(memory, Some(Enforcement::CgroupV1 | Enforcement::CgroupV2)) {
        eprintln!(
            "skipped: no cgroup gantry can use here ({:?})",
            l.report().first().map(|r| r.3.clone())
        );
        return;
    }
    assert!(matches!(
        cpu,
        Some(Enforcement::CgroupV1 | Enforcement::CgroupV2)
    ));
    let mut spec = sh("cat /proc/self/cgroup");
    spec.confine = l.prepare(0).expect("prepare");
    let (lines, ok) = output(&spec, reaper).await;
    assert!(ok);
    // `cat` is the shell's child: it was born in the groups, as the shell itself was.
    let groups: Vec<&String> = lines.iter().filter(|l| l.ends_with("/a.service")).collect();
    assert!(!groups.is_empty(), "not in its groups: {lines:?}");
    let dirs: Vec<std::path::PathBuf> = groups
        .iter()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .flat_map(|p| {
            std::fs::read_dir("/sys/fs/cgroup")
                .into_iter()
                .flatten()
                .flatten()
                .map(move |m| m.path().join(p.trim_start_matches('/')))
                .chain(std::iter::once(
                    std::path::Path::new("/sys/fs/cgroup").join(p.trim_start_matches('/')),
                ))
        })
        .filter(|d| d.join("cgroup.procs").exists())
        .collect();
    assert!(!dirs.is_empty(), "{groups:?}");
    // The exit removes the service's groups; closing removes gantry's own.
    let ended = l.exited(0);
    assert_eq!(ended.oom_kill, None);
    assert!(!ended.removal_pending);
    for d in &dirs {
        assert!(!d.exists(), "{} is left", d.display());
    }
    l.close().await;
    for d in &dirs {
        let own = d.parent().unwrap();
        assert!(!own.exists(), "{} is left", own.display());
    }
}

/// What joining a group costs a spawn (the fork path, notes §B): run with
/// `cargo test -p gantry-runtime --test limits -- --ignored --nocapture`.
#[test]
#[ignore]
fn spawn_cost_report() {
    let rt = runtime();
    rt.block_on(async {
        let reaper = Reaper::start().expect("reaper");
        let mut l = Limiter::detect(&plan(TWO));
        let n = 200;
        for limited in [false, true] {
            let mut call = Vec::with_capacity(n);
            let mut prep = Vec::with_capacity(n);
            for _ in 0..n {
                let mut spec = SpawnSpec {
                    program: "/bin/true".into(),
                    ..Default::default()
                };
                let t = Instant::now();
                if limited {
                    spec.confine = l.prepare(0).expect("prepare");
                }
                prep.push(t.elapsed());
                let s = spawn(&spec, &reaper).expect("spawn");
                call.push(t.elapsed());
                let _ = s.exit.await;
                if limited {
                    l.exited(0);
                }
            }
            call.sort();
            prep.sort();
            eprintln!(
                "spawn_cost_report: /bin/true, n={n}, {}: groups made and opened + spawn median {:?} p90 {:?}, of which the groups median {:?} ({:?})",
                if limited { "limited" } else { "unlimited" },
                call[n / 2],
                call[n * 9 / 10],
                prep[n / 2],
                l.enforcement()
            );
        }
        l.close().await;
    });
}
