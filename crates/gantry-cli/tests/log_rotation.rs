//! `[settings] logs = { max_size, keep }` in a real `gantry up`: a service log rotates at `max_size` and only `keep` rotated files are left.

mod support;

use std::path::Path;
use support::*;

/// The service's log files that exist, by suffix: "" for the live file, "1", "2", ….
fn log_files(logs: &Path, service: &str) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = std::fs::read_dir(logs)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    let suffix = name.strip_prefix(&format!("{service}.log"))?;
                    let suffix = suffix.strip_prefix('.').unwrap_or(suffix).to_string();
                    Some((
                        suffix,
                        std::fs::read_to_string(e.path()).unwrap_or_default(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l.ends_with(&format!(" {line}")))
}

#[test]
fn a_service_log_rotates_at_max_size_and_only_keep_old_files_are_left() {
    let mut up = up(
        "log-rotation",
        r#"
[settings]
logs = { max_size = "4KiB", keep = 2 }

[services.chatty]
command = "FIXTURE --name chatty --stdout-lines 2000"
"#,
        &[],
    );
    let logs = up.dir.join(".gantry/logs");
    // About 80 KiB of lines: twenty rotations at 4 KiB.
    let mut files = Vec::new();
    assert!(
        eventually(30, || {
            files = log_files(&logs, "chatty");
            files.iter().any(|(_, text)| has_line(text, "line 2000"))
        }),
        "the last line never reached the log; files: {:?}\nevents:\n{}",
        files.iter().map(|(s, t)| (s, t.len())).collect::<Vec<_>>(),
        up.log()
    );
    let suffixes: Vec<&str> = files.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(suffixes, ["", "1", "2"], "chatty.log, .1 and .2 only");
    for (suffix, text) in &files[1..] {
        // Rotated once it reached 4 KiB: at most one line over.
        assert!(
            (4096..4096 + 100).contains(&text.len()),
            "chatty.log.{suffix} holds {} bytes",
            text.len()
        );
    }
    // The newest lines are kept, the oldest went with the deleted files.
    let all: String = files.iter().map(|(_, t)| t.as_str()).collect();
    assert!(!has_line(&all, "line 1"), "the first line was kept");
    assert!(
        !has_line(&all, "line 1000"),
        "a line from the middle was kept"
    );
    assert_eq!(up.stop(), 0);
}

/// What `gantry logs NAME` prints (stdout), run in the stack's directory.
fn gantry_logs(dir: &Path, service: &str) -> String {
    let out = std::process::Command::new(gantry())
        .args(["logs", service])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn fifty_megabytes_of_output_leave_at_most_max_size_times_keep_plus_one_on_disk() {
    // 50 MiB in lines of 1000 digits; the service's own rotation (1 MiB, 2 kept) wins over
    // [settings], which would keep far more.
    let mut up = up(
        "log-flood",
        r#"
[settings]
logs = { max_size = "64MiB", keep = 9 }

[services.flood]
kind = "task"
command = ["sh", "-c", "yes \"$(printf '%01000d' 7)\" | head -c 52428800; echo; echo flood-done"]
logs = { max_size = "1MiB", keep = 2 }
"#,
        &[],
    );
    up.wait_state("flood", "completed", 120);
    // Its exit came after its last line (exits follow their output); gantry writes out its
    // logs when it stops.
    assert_eq!(up.stop(), 0);
    let logs = up.dir.join(".gantry/logs");
    let files = log_files(&logs, "flood");
    let suffixes: Vec<&str> = files.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(suffixes, ["", "1", "2"], "flood.log, .1 and .2 only");
    let total: usize = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len() as usize)
        .sum();
    // Three files of 1 MiB, each at most one line (about 1 KiB with its prefix) over.
    assert!(
        total <= 3 * (1 << 20) + 3 * 1100,
        "the log dir holds {total} bytes"
    );
    for (suffix, text) in &files[1..] {
        assert!(
            ((1 << 20)..(1 << 20) + 1100).contains(&text.len()),
            "flood.log.{suffix} holds {} bytes",
            text.len()
        );
    }

    // `gantry logs` reads across the rotated files, oldest first, then the live one.
    let printed = gantry_logs(&up.dir, "flood");
    let expected: Vec<&str> = ["2", "1", ""]
        .iter()
        .flat_map(|suffix| {
            let text = &files.iter().find(|(s, _)| s == suffix).unwrap().1;
            // Each stored line is "TIMESTAMP out TEXT": `gantry logs` prints TEXT.
            text.lines()
                .map(|l| l.splitn(3, ' ').nth(2).unwrap_or(""))
                .collect::<Vec<_>>()
        })
        .collect();
    let printed: Vec<&str> = printed.lines().collect();
    assert_eq!(printed.len(), expected.len(), "lines printed");
    assert!(printed == expected, "gantry logs differs from the files");
    // The end of the output, unless gantry had to drop it (it says so, in the log too).
    let last = printed.last().copied().unwrap_or_default();
    assert!(
        last == "flood-done"
            || last.contains("line(s) dropped: flood wrote faster than gantry could log"),
        "{last}"
    );
}
