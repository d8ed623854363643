//! A stack without TLS probes never loads the system root certificates: plain http, postgres, redis and nats probes and the pre-flight of such a stack leave them unloaded (a test binary of its own, so no other test loads them first).

use std::time::Duration;

use gantry_runtime::tls::system_roots_loaded;
use gantry_spec::{ProbeKind, StoreProbe, TlsOptions};

#[tokio::test]
async fn plain_probes_and_their_preflight_do_not_load_the_system_roots() {
    let t = Duration::from_millis(300);
    let base = std::path::Path::new("/");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("http://127.0.0.1:{port}/health");
    let o = gantry_runtime::probe::http(&url, None, None, &TlsOptions::default(), base, t).await;
    assert!(!o.ok);
    for kind in [
        ProbeKind::Postgres(StoreProbe {
            url: format!("postgres://u@127.0.0.1:{port}/db?sslmode=prefer"),
            ..StoreProbe::default()
        }),
        ProbeKind::Redis(StoreProbe {
            url: format!("redis://127.0.0.1:{port}"),
            ..StoreProbe::default()
        }),
        ProbeKind::Nats(StoreProbe {
            url: format!("nats://127.0.0.1:{port}"),
            ..StoreProbe::default()
        }),
    ] {
        assert!(gantry_runtime::tls::endpoint(&kind).is_none(), "{kind:?}");
        let o = gantry_runtime::stores::check(&kind, t, base).await;
        assert!(!o.ok, "{}", o.message);
    }
    assert!(
        !system_roots_loaded(),
        "a plain probe loaded the system root certificates"
    );
    // Only a probe that verifies against them loads them.
    let https = format!("https://127.0.0.1:{port}/health");
    let _ = gantry_runtime::probe::http(&https, None, None, &TlsOptions::default(), base, t).await;
    assert!(system_roots_loaded());
}
