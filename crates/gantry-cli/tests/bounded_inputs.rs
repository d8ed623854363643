//! Inputs a careless user or a hostile neighbour can name: special files, endless commands, secrets cut by the line split, and SIGTERM while the pre-flight runs.

mod support;

use std::process::{Command, Stdio};
use support::*;

/// A `gantry up` in `dir` (its gantry.toml written already) whose output is collected.
struct Run {
    child: std::process::Child,
    text: std::sync::Arc<std::sync::Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Run {
    fn start(dir: &std::path::Path) -> Run {
        let mut child = Command::new(gantry())
            .arg("up")
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        // Read on threads so a full pipe cannot stall gantry.
        let out: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().unwrap());
        let err: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().unwrap());
        let mut readers = Vec::new();
        for mut pipe in [out, err] {
            let text = text.clone();
            readers.push(std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    text.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }));
        }
        Run {
            child,
            text,
            readers,
        }
    }

    fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// The exit code, once gantry ended within `secs`; `None` if it did not.
    fn exit_within(&mut self, secs: u64) -> Option<i32> {
        let mut code = None;
        eventually(secs, || {
            code = self
                .child
                .try_wait()
                .unwrap()
                .map(|s| s.code().unwrap_or(-1));
            code.is_some()
        });
        // Whatever the pipes still hold: read until they close.
        if code.is_some() {
            eventually(5, || self.readers.iter().all(|r| r.is_finished()));
        }
        code
    }

    fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status();
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last `n` bytes of `s`, for assertion messages.
fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Runs `gantry up` until it exits by itself (a NO-GO), at most `secs`.
fn up_until_exit(dir: &std::path::Path, secs: u64) -> (i32, String) {
    let mut run = Run::start(dir);
    let code = run.exit_within(secs);
    let text = run.text();
    let Some(code) = code else {
        panic!(
            "gantry up did not end within {secs} s:\n{}",
            tail(&text, 3000)
        );
    };
    (code, text)
}

fn write_stack(dir: &std::path::Path, body: &str) {
    std::fs::write(
        dir.join("gantry.toml"),
        format!("{body}\n[settings]\napi = \"127.0.0.1:0\"\n"),
    )
    .unwrap();
}

#[test]
fn special_files_named_as_env_or_secret_files_are_no_go_at_once() {
    let dir = tempdir("special-files");
    let made = Command::new("mkfifo")
        .arg(dir.join("fifo"))
        .status()
        .unwrap();
    assert!(made.success());
    // A FIFO nobody writes would block the read forever; /dev/zero never ends.
    for (what, body, expect) in [
        (
            "global env_file /dev/zero",
            "env_file = [\"/dev/zero\"]\n[services.a]\ncommand = \"true\"\n",
            "/dev/zero is a character device, not a regular file",
        ),
        (
            "service env_file FIFO",
            "[services.a]\ncommand = \"true\"\nenv_file = [\"fifo\"]\n",
            "fifo is a FIFO, not a regular file",
        ),
        (
            "secret from_file FIFO",
            "[secrets.TOKEN]\nfrom_file = \"fifo\"\nservices = [\"a\"]\n[services.a]\ncommand = \"true\"\n",
            "fifo is a FIFO, not a regular file",
        ),
    ] {
        write_stack(&dir, body);
        let (code, text) = up_until_exit(&dir, 30);
        assert_eq!(code, 1, "{what}: {}", tail(&text, 3000));
        assert!(text.contains("NO-GO"), "{what}: {}", tail(&text, 3000));
        assert!(text.contains(expect), "{what}: {}", tail(&text, 3000));
    }
    // Over the cap: said with the cap.
    let big = dir.join("big.env");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(5 * 1024 * 1024).unwrap();
    write_stack(
        &dir,
        "[services.a]\ncommand = \"true\"\nenv_file = [\"big.env\"]\n",
    );
    let (code, text) = up_until_exit(&dir, 30);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("big.env is larger than 4 MiB, the most gantry reads"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sigterm_during_the_preflight_stops_gantry_and_starts_nothing() {
    let dir = tempdir("sigterm-preflight");
    let marker = format!("29.{}", std::process::id());
    write_stack(
        &dir,
        &format!("[services.a]\ncommand = \"sleep 1\"\npreflight = [\"sleep\", \"{marker}\"]\n"),
    );
    let mut run = Run::start(&dir);
    assert!(
        eventually(20, || !processes_with(&marker).is_empty()),
        "the preflight command did not start: {}",
        run.text()
    );
    run.signal("-TERM");
    let code = run.exit_within(10);
    let err = run.text();
    assert!(
        code.is_some(),
        "SIGTERM during the pre-flight was not honoured: {err}"
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("SIGTERM before the boot: stopped; nothing was started"),
        "{err}"
    );
    // The pre-flight's own command went with it (the namespace is gone).
    assert!(eventually(10, || processes_with(&marker).is_empty()));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_secret_cut_by_the_long_line_split_is_masked_on_both_sides() {
    let dir = tempdir("split-secret");
    let secret = format!("split-s3cret-{}-tail", std::process::id());
    std::fs::write(dir.join("token"), format!("{secret}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir.join("token"), std::fs::Permissions::from_mode(0o600)).unwrap();
    // 65,530 characters, then the secret: the 64 KiB split falls inside it.
    write_stack(
        &dir,
        r#"
[secrets.TOKEN]
from_file = "token"
services = ["long"]

[services.long]
kind = "task"
command = ["sh", "-c", 'head -c 65530 /dev/zero | tr "\0" a; printf "%s-end\n" "$TOKEN"']
"#,
    );
    let mut run = Run::start(&dir);
    let log_file = dir.join(".gantry/logs/long.log");
    let logged = eventually(60, || {
        std::fs::read_to_string(&log_file).is_ok_and(|l| l.contains("-end"))
            && run.text().contains("-end")
    });
    run.signal("-INT");
    assert!(run.exit_within(20).is_some(), "gantry did not stop");
    let text = run.text();
    assert!(
        logged,
        "the long line was not logged: {}",
        tail(&text, 2000)
    );
    let log = std::fs::read_to_string(&log_file).unwrap();
    let half = secret.len() / 2;
    for shown in [text.as_str(), log.as_str()] {
        assert!(
            !shown.contains(&secret[..half]),
            "the head of the secret leaked: {}",
            tail(shown, 500)
        );
        assert!(
            !shown.contains(&secret[half..]),
            "the tail of the secret leaked"
        );
    }
    assert!(log.contains("[redacted]-end"), "the line is logged, masked");
    let _ = std::fs::remove_dir_all(dir);
}
