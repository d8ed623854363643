//! Measures `FlagSet::evaluate_all` (100 flags with targeting) and `evaluate` (one fractional
//! flag) on this machine: `cargo run --release -p gantry-flags --example eval_bench`.

use std::time::Instant;

use gantry_flags::FlagSet;
use serde_json::{Map, Value, json};

fn main() {
    let mut flags = Map::new();
    for i in 0..100 {
        let targeting = match i % 4 {
            0 => json!({}),
            1 => json!({"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]}),
            2 => json!({"fractional": [["on", 30], ["off", 70]]}),
            _ => json!({"if": [{"and": [{"in": [{"var": "country"}, ["de", "fr", "nl"]]},
                {"sem_ver": [{"var": "version"}, ">=", "2.1.0"]}]}, "on", null]}),
        };
        flags.insert(
            format!("flag-{i}"),
            json!({"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off", "targeting": targeting}),
        );
    }
    let doc = json!({"flags": flags}).to_string();
    let set = FlagSet::parse_flagd(&doc, "bench.json").expect("valid");
    let mut bulk = Vec::new();
    let mut single = Vec::new();
    for i in 0..5000 {
        let ctx: Value = json!({"targetingKey": format!("user-{i}"), "email": format!("u{i}@example.com"),
            "country": "de", "version": "2.3.1"});
        let t = Instant::now();
        let all = set.evaluate_all(&ctx);
        bulk.push(t.elapsed().as_nanos());
        assert_eq!(all.len(), 104);
        let t = Instant::now();
        let one = set.evaluate("flag-2", &ctx);
        single.push(t.elapsed().as_nanos());
        assert!(one.is_ok());
    }
    for (name, mut v) in [("bulk (104 flags)", bulk), ("single fractional", single)] {
        v.sort_unstable();
        let p = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)] as f64 / 1000.0;
        println!(
            "{name}: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
            p(0.5),
            p(0.99),
            p(1.0)
        );
    }
}
