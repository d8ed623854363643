//! The ingress as a standalone proxy for benchmarks: one listener, one route `/` to one
//! upstream instance, open at once. Usage: `proxy LISTEN UPSTREAM [default|current|threads:N|multi:N]`.
//! Prints its RSS before and after starting the ingress (kB) on stderr, then serves until
//! stdin closes.

use gantry_ingress::{IngressConfig, Instance, ListenerConfig, RouteConfig, RuntimeFlavor};
use std::io::Read;

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:18080".into());
    let upstream = args.next().unwrap_or_else(|| "127.0.0.1:18000".into());
    let flavor = match args.next().as_deref() {
        Some("current") => RuntimeFlavor::CurrentThread,
        Some("default") => IngressConfig::default().runtime,
        Some(s) if s.starts_with("threads:") => RuntimeFlavor::Threads {
            threads: s[8..].parse().unwrap_or(2),
        },
        Some(s) if s.starts_with("multi:") => RuntimeFlavor::MultiThread {
            workers: s[6..].parse().unwrap_or(2),
        },
        _ => RuntimeFlavor::MultiThread { workers: 2 },
    };
    let (Ok(listen), Ok(upstream)) = (listen.parse(), upstream.parse()) else {
        eprintln!("usage: proxy LISTEN_ADDR UPSTREAM_ADDR [default|current|threads:N|multi:N]");
        std::process::exit(2);
    };
    let before = rss_kb();
    let cfg = IngressConfig {
        listeners: vec![ListenerConfig { listen, tls: None }],
        routes: vec![RouteConfig::new("bench", "/", "up")],
        runtime: flavor,
        ..IngressConfig::default()
    };
    let h = match gantry_ingress::start(cfg) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    h.set_instances(
        "up",
        vec![Instance {
            id: "up#1".into(),
            addr: upstream,
            ready: true,
        }],
    );
    h.set_open(true);
    eprintln!(
        "rss_before_kb={before} rss_started_kb={} flavor={flavor:?}",
        rss_kb()
    );
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    h.shutdown();
}
