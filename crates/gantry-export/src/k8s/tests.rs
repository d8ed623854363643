//! Unit tests of the Kubernetes translation's helpers: quantities and store URL targets.

use super::probes::store_target;
use super::waits::retarget;
use super::*;

#[test]
fn sizes_become_the_largest_binary_quantity_that_divides_them() {
    assert_eq!(quantity(1 << 30), "1Gi");
    assert_eq!(quantity(20 << 30), "20Gi");
    assert_eq!(quantity(1536 << 20), "1536Mi");
    assert_eq!(quantity(2 << 40), "2Ti");
    assert_eq!(quantity((1 << 20) + 1), "1048577");
}

#[test]
fn store_urls_name_their_host_and_port_and_move_to_the_service() {
    let pg = |url: &str| {
        ProbeKind::Postgres(gantry_spec::StoreProbe {
            url: url.into(),
            rw: false,
            queues: Vec::new(),
            require_dlq: false,
            streams: Vec::new(),
            tls: Default::default(),
        })
    };
    assert_eq!(
        store_target(&pg("postgres://u:p@127.0.0.1:5433/app")),
        Some(("127.0.0.1".into(), 5433))
    );
    assert_eq!(
        store_target(&pg("postgres://db.internal/app?sslmode=require")),
        Some(("db.internal".into(), 5432))
    );
    assert_eq!(store_target(&pg("postgres:///app")), None);
    assert_eq!(
        retarget("postgres://u:p@127.0.0.1:5433/app?x=1", "db-main"),
        "postgres://u:p@db-main:5433/app?x=1"
    );
    assert_eq!(retarget("redis://localhost/0", "cache"), "redis://cache/0");
    assert_eq!(
        retarget("redis://redis.internal:6379/0", "cache"),
        "redis://redis.internal:6379/0"
    );
}
