//! The spawn with a small descriptor table: what the child gets (descriptors, signals, its
//! group, its directory), failures reported, and the pipes' end-of-file after many spawns.

use super::*;

/// Lines of a script's stdout.
async fn stdout_of(script: &str) -> Vec<String> {
    let mut s = spawn(&sh(script), reaper()).expect("spawn");
    let lines = all_lines(&mut s.stdout).await;
    exit_of(s.exit).await;
    lines
}

#[test]
fn a_child_holds_only_its_stdio_whatever_gantry_holds() {
    // Descriptors this process holds: close-on-exec pipes, and two without the flag (which
    // posix_spawn would have let through).
    let mut held = Vec::new();
    for _ in 0..100 {
        held.push(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe"));
    }
    let plain = nix::unistd::pipe().expect("pipe without close-on-exec");
    run(async {
        let fds = stdout_of("ls /proc/$$/fd").await;
        assert_eq!(fds, ["0", "1", "2"], "the child's descriptors");
        // stdin is /dev/null, stdout and stderr are pipes.
        let links = stdout_of("readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2").await;
        assert_eq!(links[0], "/dev/null");
        assert!(
            links[1].starts_with("pipe:") && links[2].starts_with("pipe:"),
            "{links:?}"
        );
        assert_ne!(links[1], links[2], "stdout and stderr are separate pipes");
    });
    drop((held, plain));
}

#[test]
fn a_child_starts_with_no_signal_blocked_and_sigpipe_at_its_default() {
    run(async {
        let status = stdout_of("grep -E '^Sig(Blk|Ign):' /proc/self/status").await;
        let field = |name: &str| {
            let line = status.iter().find(|l| l.starts_with(name)).expect(name);
            u64::from_str_radix(line.split_whitespace().nth(1).expect("mask"), 16).expect("hex")
        };
        assert_eq!(field("SigBlk:"), 0, "{status:?}");
        let sigpipe = 1u64 << (nix::libc::SIGPIPE - 1);
        assert_eq!(
            field("SigIgn:") & sigpipe,
            0,
            "SIGPIPE ignored in the child: {status:?}"
        );
    });
}

#[test]
fn stderr_and_the_working_directory_reach_the_child() {
    let dir = temp_dir("spawn-table-cwd");
    run(async {
        let mut spec = sh("pwd; echo oops >&2");
        spec.cwd = Some(dir.clone());
        let mut s = spawn(&spec, reaper()).expect("spawn");
        let out = all_lines(&mut s.stdout).await;
        let err = all_lines(&mut s.stderr).await;
        assert_eq!(
            out,
            [dir.canonicalize().expect("dir").display().to_string()]
        );
        assert_eq!(err, ["oops"]);
        exit_of(s.exit).await;
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_exec_failure_is_reported_with_its_reason() {
    let dir = temp_dir("spawn-table-noexec");
    let bogus = dir.join("bogus");
    std::fs::write(&bogus, b"\x7fELF not really").expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bogus, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    run(async {
        let spec = SpawnSpec {
            program: bogus.display().to_string(),
            env: env(),
            ..Default::default()
        };
        let err = spawn(&spec, reaper()).unwrap_err();
        assert!(matches!(err, SpawnError::Spawn { .. }), "{err}");
        let text = format!("{err}: {:?}", std::error::Error::source(&err));
        assert!(text.contains("format"), "{text}");
        // The service after it starts as usual.
        assert_eq!(stdout_of("echo after").await, ["after"]);
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn many_spawns_from_several_threads_each_see_end_of_file() {
    run(async {
        let mut tasks = Vec::new();
        for i in 0..40 {
            tasks.push(tokio::task::spawn_blocking(move || {
                spawn(&sh(&format!("echo {i}")), reaper()).expect("spawn")
            }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            let mut s = t.await.expect("join");
            // End-of-file needs every write end closed: the slot's copy too.
            assert_eq!(all_lines(&mut s.stdout).await, [i.to_string()]);
            assert!(all_lines(&mut s.stderr).await.is_empty());
            assert_eq!(exit_of(s.exit).await, ExitStatus::exited(0));
        }
    });
}
