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
