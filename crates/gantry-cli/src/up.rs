//! `gantry up`: become the namespace init (orphan-proofing), check the file, select services, run the driver.

use crate::Outcome;
use gantry_plan::Selection;
use gantry_runtime::driver::{UpConfig, up};
use gantry_runtime::nsinit::{self, NsMode};
use gantry_runtime::output::OutputMode;
use std::io::IsTerminal as _;
use std::path::Path;

pub fn run(
    file: &Path,
    selection: Selection,
    json: bool,
    skip_preflight: bool,
) -> anyhow::Result<Outcome> {
    // Must happen while the process is still single-threaded: from here on, this
    // process is PID 1 of its own PID namespace (or a subreaper when that is not
    // permitted), so nothing it starts can outlive it, even after SIGKILL. It comes
    // first so that the stub parent left behind has touched as little memory as possible.
    let ns = nsinit::become_namespace_init();
    if let NsMode::Unavailable(reason) = &ns {
        let _ = nsinit::subreaper_fallback();
        eprintln!(
            "warning: no PID namespace ({reason}); services may outlive gantry if it is killed with SIGKILL"
        );
    }
    // Before the first thread: a thread started earlier would get a malloc arena of its
    // own (4 MB resident at 1,000 services, 0.8 MB of it in use).
    gantry_runtime::trim::single_malloc_arena();
    // Descriptors: gantry's soft limit up to the hard limit (API clients, probes, pipes
    // and logs all take one), and the descriptor table grown now, while this process has
    // one thread: grown later, with the guard thread below sharing it, the kernel waits for
    // an RCU grace period (9 ms measured, most of a 50-service boot's overhead). The size
    // is a bound from the file's length (a service takes at least ~64 bytes and ~4
    // descriptors), at least 1,024; a stack that needs more (replicas) grows it below.
    gantry_runtime::limits::raise_fd_limit();
    let file_len = std::fs::metadata(file).map_or(0, |m| m.len());
    gantry_runtime::process::pregrow_fd_table(
        i32::try_from((64 + file_len / 16).clamp(1024, 65_536)).unwrap_or(1024),
    );
    // As PID 1 gantry ignores signals it has no handler for: from here until the event
    // loop's handlers take over, a thread answers them (loading a large file takes time).
    let guard = gantry_runtime::interrupt::PhaseGuard::start();
    let checked = match crate::load::load_valid(file, "invalid; nothing was started") {
        Ok(c) => c,
        Err(outcome) => return Ok(outcome),
    };
    // Warnings (an unset variable that became "") are shown here too, not only by `check`.
    checked.print_diagnostics();
    let state_dir = crate::load::base_dir(file).join(&checked.spec.settings.state_dir);
    if let Some(running) = gantry_runtime::instance::running(&state_dir) {
        eprintln!(
            "error: {running}, for {}; nothing was started\n  hint: `gantry status` shows it, \
             `gantry down` stops it",
            file.display()
        );
        return Ok(Outcome::Failure);
    }
    // `gantry reload` and SIGHUP load the file again the same way: same path, same selection.
    let reload = {
        let (file, selection) = (file.to_path_buf(), selection.clone());
        gantry_runtime::driver::Reloader(std::sync::Arc::new(move |taken_on: &[String]| {
            crate::load::reload(&file, &selection.widened(taken_on))
        }))
    };
    let plan = match gantry_plan::select(checked.plan, &checked.spec, &selection) {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "error: {e}\n  hint: `gantry graph` lists the services; profiles are [profiles.NAME] tables"
            );
            return Ok(Outcome::Usage);
        }
    };
    let output = if json {
        OutputMode::Json
    } else if std::io::stdout().is_terminal() {
        OutputMode::Tty
    } else {
        OutputMode::Plain
    };
    let base_dir = crate::load::base_dir(file).to_path_buf();
    let cfg = UpConfig {
        spec: checked.spec,
        plan,
        file: checked.source.path.clone(),
        base_dir,
        output,
        seed: std::process::id() as u64 ^ 0x9e37_79b9_7f4a_7c15,
        preflight: !skip_preflight,
        secrets: Vec::new(),
        guard,
        reload: Some(reload),
    };
    // The file's text and its diagnostics were printed: not kept while the stack runs.
    drop(checked.source);
    drop(checked.diagnostics);
    // About four fds per service (pipes, notify socket, log file, probe sockets): beyond
    // the 1,024 grown above only for stacks of more than 240 services.
    gantry_runtime::process::pregrow_fd_table(64 + 4 * cfg.plan.units.len() as i32);
    // One event loop owns all I/O (ARCHITECTURE.md): a single-threaded runtime keeps
    // wake-ups on one core, one malloc arena and no cross-thread hand-offs.
    // Spawns (posix_spawn blocks until exec) and other blocking work use a small pool
    // whose threads leave soon after the boot.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .thread_keep_alive(std::time::Duration::from_secs(1))
        .build()?;
    let code = runtime.block_on(up(cfg));
    Ok(match code {
        0 => Outcome::Success,
        2 => Outcome::Usage,
        _ => Outcome::Failure,
    })
}

/// `gantry preflight`: the GO/NO-GO checks alone; nothing is started.
pub fn preflight(file: &Path, json: bool) -> anyhow::Result<Outcome> {
    let checked = match crate::load::load_valid(file, "invalid: NO-GO") {
        Ok(c) => c,
        Err(outcome) => return Ok(outcome),
    };
    checked.print_diagnostics();
    let base_dir = crate::load::base_dir(file).to_path_buf();
    // Against a running stack its own services hold their ports: those checks (and the
    // per-service preflight commands, a boot-time rehearsal) are left out, as when the
    // running instance revalidates itself.
    let running =
        gantry_runtime::instance::running(&base_dir.join(&checked.spec.settings.state_dir));
    if let Some(r) = &running {
        eprintln!("{r}; the ports of its services are held by this stack and not checked");
    }
    // Spawns (posix_spawn blocks until exec) and other blocking work use a small pool
    // whose threads leave soon after the boot.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .thread_keep_alive(std::time::Duration::from_secs(1))
        .build()?;
    let report = runtime.block_on(async {
        let reaper = gantry_runtime::reaper::Reaper::start()
            .map_err(|e| anyhow::anyhow!("cannot start the reaper: {e}"))?;
        let (mut report, secrets) = gantry_runtime::preflight::run_with(
            &checked.spec,
            &checked.plan,
            &base_dir,
            &reaper,
            running.is_some(),
        )
        .await;
        // Migrate services: their history and live schema against what was recorded.
        report
            .checks
            .extend(crate::schema_stage::checks(&checked.spec, &base_dir, &secrets).await);
        // `[cluster]`: the store reached, and who leads now.
        report
            .checks
            .extend(crate::cluster_stage::checks(&checked.spec).await);
        anyhow::Ok(report)
    })?;
    if json {
        crate::emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&report.to_json())?
        ));
    } else {
        crate::emit(&report.render());
    }
    Ok(if report.go() {
        Outcome::Success
    } else {
        Outcome::Failure
    })
}
