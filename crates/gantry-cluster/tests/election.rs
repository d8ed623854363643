//! The election against a real PostgreSQL on 127.0.0.1:5432 (`scripts/stores` starts it): acquire, renew, expiry, terms, a live lease refused, resign with NOTIFY, fencing, a lost lease.

use std::time::{Duration, Instant};

use gantry_cluster::{Command, Config, Db, Report, Waiting, campaign};

const DB: &str = "gantry_cluster_tests";

/// The tests' database (created once; every test uses a cluster name of its own).
async fn database() {
    let (client, conn) = tokio_postgres::connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres",
        tokio_postgres::NoTls,
    )
    .await
    .expect("PostgreSQL on 127.0.0.1:5432 (run scripts/stores)");
    tokio::spawn(conn);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&DB])
        .await
        .unwrap()
        .is_some();
    if !exists {
        // Another test binary may create it at the same moment.
        let _ = client.batch_execute(&format!("CREATE DATABASE {DB}")).await;
    }
}

fn cfg(cluster: &str, name: &str, ttl: Duration) -> Config {
    Config::new(
        &format!("postgres://postgres@127.0.0.1:5432/{DB}"),
        &format!("{cluster}-{}", std::process::id()),
        name,
        ttl,
    )
}

async fn connect(c: &Config) -> Db {
    database().await;
    Db::connect(c).await.unwrap()
}

/// Polls `f` every 10 ms until it returns Some or `secs` pass.
async fn poll<T, F: std::future::Future<Output = Option<T>>>(
    secs: u64,
    mut f: impl FnMut() -> F,
) -> Option<T> {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        if let Some(v) = f().await {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

#[tokio::test]
async fn acquire_renew_and_a_live_lease_is_refused() {
    let a_cfg = cfg("live", "a", Duration::from_secs(30));
    let b_cfg = cfg("live", "b", Duration::from_secs(30));
    let (a, b) = (connect(&a_cfg).await, connect(&b_cfg).await);
    let term = a.acquire().await.unwrap().expect("a takes the free lease");
    assert_eq!(
        b.acquire().await.unwrap(),
        None,
        "b cannot take a live lease"
    );
    let seen = b.lease().await.unwrap().unwrap();
    assert_eq!((seen.holder.as_str(), seen.term), ("a", term));
    assert!(seen.remaining > Duration::from_secs(20), "{seen:?}");
    assert!(a.renew(term).await.unwrap());
    assert!(!b.renew(term).await.unwrap(), "b does not hold term {term}");
    assert!(
        !a.renew(term + 1).await.unwrap(),
        "a never held term {}",
        term + 1
    );
    // Leader-only writes: only the holder of the live term writes.
    assert!(a.record(term, "boot go").await.unwrap());
    assert!(!b.record(term, "boot go").await.unwrap());
    // Taking it again while ours (a restarted instance of the same name) is a new term.
    let again = a.acquire().await.unwrap().unwrap();
    assert_eq!(again, term + 1);
    assert!(
        !a.record(term, "stale").await.unwrap(),
        "the old term is fenced off"
    );
}

#[tokio::test]
async fn an_expired_lease_goes_to_the_next_contender_with_a_higher_term() {
    let ttl = Duration::from_millis(300);
    let (a_cfg, b_cfg) = (cfg("expiry", "a", ttl), cfg("expiry", "b", ttl));
    let (a, b) = (connect(&a_cfg).await, connect(&b_cfg).await);
    let term = a.acquire().await.unwrap().unwrap();
    let started = Instant::now();
    let taken = poll(5, || async { b.acquire().await.unwrap() })
        .await
        .expect("b takes the lease once it expired");
    println!(
        "expiry: b took the lease {} ms after a acquired it (ttl 300 ms)",
        started.elapsed().as_millis()
    );
    assert_eq!(taken, term + 1);
    assert!(
        !a.renew(term).await.unwrap(),
        "a's expired lease cannot be renewed"
    );
    assert!(
        !a.record(term, "late").await.unwrap(),
        "a's late write is fenced off"
    );
    assert!(b.record(taken, "takeover").await.unwrap());
}

#[tokio::test]
async fn resign_ends_the_lease_and_wakes_a_listening_standby() {
    let ttl = Duration::from_secs(30);
    let (a_cfg, b_cfg) = (cfg("resign", "a", ttl), cfg("resign", "b", ttl));
    let a = connect(&a_cfg).await;
    let mut b = connect(&b_cfg).await;
    b.listen().await.unwrap();
    let term = a.acquire().await.unwrap().unwrap();
    assert_eq!(b.acquire().await.unwrap(), None);
    let sent = Instant::now();
    assert!(a.resign(term).await.unwrap());
    tokio::time::timeout(Duration::from_secs(5), b.notified())
        .await
        .expect("b hears the resignation");
    println!(
        "resign: NOTIFY reached the standby {} µs after the resign was sent",
        sent.elapsed().as_micros()
    );
    assert_eq!(b.acquire().await.unwrap(), Some(term + 1));
    assert!(
        !a.resign(term).await.unwrap(),
        "resigning twice does nothing"
    );
    assert!(!a.record(term, "after resign").await.unwrap());
}

#[tokio::test]
async fn campaign_waits_as_standby_and_leads_after_a_resignation() {
    let ttl = Duration::from_secs(30);
    let (a_cfg, b_cfg) = (cfg("campaign", "a", ttl), cfg("campaign", "b", ttl));
    database().await;
    let a = campaign(&a_cfg, |_| {}).await.unwrap();
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let b = tokio::spawn(async move {
        campaign(&b_cfg, move |w| {
            let _ = seen_tx.send(w);
        })
        .await
    });
    let w = tokio::time::timeout(Duration::from_secs(5), seen_rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        w,
        Waiting::Standby {
            leader: "a".into(),
            term: a.term
        }
    );
    // The leader's task: the standby shows up, then a resignation hands over at once.
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (rep_tx, mut rep_rx) = tokio::sync::mpsc::unbounded_channel();
    let a_term = a.term;
    let a_task = tokio::spawn(a.run(rx, move |r| {
        let _ = rep_tx.send(r);
    }));
    tx.send(Command::Record("boot go".into())).unwrap();
    let sent = Instant::now();
    tx.send(Command::Resign).unwrap();
    let b = tokio::time::timeout(Duration::from_secs(5), b)
        .await
        .expect("b leads soon after the resignation")
        .unwrap()
        .unwrap();
    println!(
        "campaign: b led {} ms after a was told to resign",
        sent.elapsed().as_millis()
    );
    assert_eq!(b.term, a_term + 1);
    a_task.await.unwrap();
    let mut reports = Vec::new();
    while let Ok(r) = rep_rx.try_recv() {
        reports.push(r);
    }
    assert!(reports.contains(&Report::Resigned), "{reports:?}");
    // The fenced rows: a's takeover, boot and resign with its term, then b's takeover.
    let c = cfg("campaign", "x", ttl);
    let (client, conn) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port=5432 user=postgres dbname={DB}"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let rows = client
        .query(
            "SELECT term, holder, action FROM gantry_cluster_actions WHERE cluster = $1 ORDER BY seq",
            &[&c.cluster],
        )
        .await
        .unwrap();
    let rows: Vec<(i64, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        rows,
        vec![
            (a_term, "a".into(), "takeover".into()),
            (a_term, "a".into(), "boot go".into()),
            (a_term, "a".into(), "resign".into()),
            (a_term + 1, "b".into(), "takeover".into()),
        ]
    );
}

#[tokio::test]
async fn a_leader_whose_lease_is_taken_reports_it_lost_and_stops_writing() {
    let ttl = Duration::from_millis(900);
    let a_cfg = cfg("lost", "a", ttl);
    database().await;
    let a = campaign(&a_cfg, |_| {}).await.unwrap();
    let clock = a.clock.clone();
    assert!(clock.live());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (rep_tx, mut rep_rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(a.run(rx, move |r| {
        let _ = rep_tx.send(r);
    }));
    // Someone (an operator, a split brain) moves the lease: the next renewal finds out.
    let (client, conn) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port=5432 user=postgres dbname={DB}"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    client
        .execute(
            "UPDATE gantry_cluster_lease SET holder = 'z', term = term + 1 WHERE cluster = $1",
            &[&a_cfg.cluster],
        )
        .await
        .unwrap();
    let lost = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match rep_rx.recv().await {
                Some(Report::Lost(why)) => return why,
                Some(_) => {}
                None => panic!("the task ended without reporting"),
            }
        }
    })
    .await
    .expect("the lost lease is reported within the lease");
    println!("lost: {lost}");
    assert!(!clock.live());
    task.await.unwrap();
    drop(tx);
}

#[tokio::test]
async fn the_password_never_shows_in_an_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = Config::new(
        &format!("postgres://app:hunter2secret@127.0.0.1:{port}/db"),
        "pw",
        "a",
        Duration::from_secs(1),
    );
    let e = match Db::connect(&c).await {
        Ok(_) => panic!("nothing listens on {port}"),
        Err(e) => e.to_string(),
    };
    assert!(!e.contains("hunter2secret"), "{e}");
    assert!(e.contains("app:***@127.0.0.1"), "{e}");
    assert!(e.contains("hint:"), "{e}");
    assert!(!format!("{c:?}").contains("hunter2secret"));
    // A wrong password is refused by the server (trust auth may accept it: either way, masked).
    let c = Config::new(
        &format!("postgres://nosuchuser:hunter2secret@127.0.0.1:5432/{DB}"),
        "pw",
        "a",
        Duration::from_secs(1),
    );
    if let Err(e) = Db::connect(&c).await {
        assert!(!e.to_string().contains("hunter2secret"), "{e}");
    }
}

/// A TCP relay to the local PostgreSQL that can be cut: the store becomes unreachable (every
/// relayed connection closed, new ones refused) without touching the server.
struct Relay {
    port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Relay {
    fn start() -> Relay {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (c, k) = (cut.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if c.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let Ok(server) = std::net::TcpStream::connect("127.0.0.1:5432") else {
                    continue;
                };
                let mut list = k.lock().unwrap();
                list.push(client.try_clone().unwrap());
                list.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Relay { port, cut, conns }
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for s in self.conns.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[tokio::test]
async fn a_leader_that_cannot_reach_the_store_stops_when_its_lease_ends() {
    database().await;
    let relay = Relay::start();
    let ttl = Duration::from_millis(1200);
    let a_cfg = Config::new(
        &format!("postgres://postgres@127.0.0.1:{}/{DB}", relay.port),
        &format!("unreachable-{}", std::process::id()),
        "a",
        ttl,
    );
    let a = campaign(&a_cfg, |_| {}).await.unwrap();
    let clock = a.clock.clone();
    let (_tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (rep_tx, mut rep_rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(a.run(rx, move |r| {
        let _ = rep_tx.send(r);
    }));
    relay.cut();
    let cut_at = Instant::now();
    let lost = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match rep_rx.recv().await {
                Some(Report::Lost(why)) => return why,
                Some(_) => {}
                None => panic!("the task ended without reporting"),
            }
        }
    })
    .await
    .expect("the lost lease is reported");
    println!(
        "unreachable store: lost reported {} ms after the cut (lease {} ms): {lost}",
        cut_at.elapsed().as_millis(),
        ttl.as_millis()
    );
    assert!(!clock.live());
    assert!(
        Instant::now() >= clock.deadline(),
        "not before its own deadline"
    );
    task.await.unwrap();
    // Meanwhile the database's lease ran out too: another instance takes the next term.
    let b = connect(&Config::new(
        &format!("postgres://postgres@127.0.0.1:5432/{DB}"),
        &a_cfg.cluster,
        "b",
        ttl,
    ))
    .await;
    let term = poll(5, || async { b.acquire().await.unwrap() }).await;
    assert!(term.is_some());
}
