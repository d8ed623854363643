//! `gantry up` with `replicas = 2`: each instance runs on its own port with its own PORT and REPLICA, and a dependent waits for both.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use support::*;

/// The body of `GET /health` on 127.0.0.1:port.
fn health(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn two_replicas_come_up_on_their_own_ports() {
    let base = free_pair();
    let last = base + 1;
    let toml = format!(
        r#"
[services.api]
command = "FIXTURE --name api-${{REPLICA}} --http ${{PORT}} --print-env PORT --print-env REPLICA"
replicas = 2
replica_ports = "{base}-{last}"
readiness = {{ http = "http://127.0.0.1:${{PORT}}/health" }}

[services.web]
command = "FIXTURE --name web"
depends_on = ["api"]
"#
    );
    let mut up = up("replicas", &toml, &[]);
    let boot = up.wait_boot(20);
    assert_eq!(boot["outcome"], "go", "{}", up.log());
    // Both instances are units of their own, ready before their dependent starts.
    for (name, port, replica) in [("api.1", base, 1), ("api.2", last, 2)] {
        assert!(
            up.states(name).contains(&"ready".to_string()),
            "{}",
            up.log()
        );
        assert!(
            up.index("web", "starting") > up.index(name, "ready"),
            "{}",
            up.log()
        );
        let printed = |line: String| {
            up.events.iter().any(|v| {
                v["event"] == "output" && v["service"] == name && v["line"] == line.as_str()
            })
        };
        assert!(printed(format!("PORT={port}")), "{}", up.log());
        assert!(printed(format!("REPLICA={replica}")), "{}", up.log());
        assert!(health(port).contains("200 OK"), "instance {name} on {port}");
    }
    assert!(
        up.states("api").is_empty(),
        "no unit is named after the group"
    );
    assert_eq!(up.stop(), 0);
}
