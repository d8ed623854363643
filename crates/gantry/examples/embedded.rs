//! An axum service that boots its config, a Postgres connection, a Redis client and a background worker with gantry's Boot API, serves the health endpoints, and calls an upstream over HTTP behind a circuit breaker and retries.
//!
//! ```sh
//! cargo run -p gantry --example embedded
//! curl -s localhost:3000/health/ready      # 503 while booting, 200 once GO / DEGRADED
//! curl -s localhost:3000/report            # the startup report (seeds' metrics shape)
//! curl -s -XPOST localhost:3000/admin/reinitialize/redis
//! curl -s localhost:3000/upstream          # breaker + retry around an outgoing call
//! ```
//!
//! Settings (environment): `DATABASE_URL` (default `host=127.0.0.1 user=postgres
//! dbname=postgres`), `REDIS_URL` (default `redis://127.0.0.1:6379`), `LISTEN` (default
//! `127.0.0.1:3000`), `UPSTREAM` (`host:port` of the HTTP upstream; default: this service's
//! own `/health/live`, so the example is self-contained), `EXIT_AFTER_BOOT=1` to shut down
//! right after the boot (used to smoke-test the example).
//!
//! Postgres is critical (no database, no service: NO-GO, and whatever was initialized is
//! cleaned up); Redis is `High` (the service runs DEGRADED without it); the worker needs the
//! database and uses Redis when it is there (a soft dependency).

use std::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::{get, post};
use gantry::{Boot, BoxError, Component, Priority};
use gantry_resilience::breaker::Rejected;
use gantry_resilience::retry::{Backoff, Jitter};
use gantry_resilience::{CallError, CircuitBreaker, Retry, TokioClock};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// A resource a component initializes and the handlers use. Replaced wholesale when the
/// component is reinitialized, so handlers clone the `Arc` and never hold the lock.
struct Slot<T>(Mutex<Option<Arc<T>>>);

impl<T> Slot<T> {
    fn new() -> Arc<Slot<T>> {
        Arc::new(Slot(Mutex::new(None)))
    }
    fn set(&self, value: T) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(value));
    }
    fn get(&self) -> Option<Arc<T>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    fn take(&self) -> Option<Arc<T>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

#[derive(Debug, Clone)]
struct Config {
    database_url: String,
    redis_url: String,
    listen: String,
    upstream: String,
}

/// A Postgres client and the task that drives its connection (aborted on cleanup).
struct Db {
    client: tokio_postgres::Client,
    connection: JoinHandle<()>,
}

/// The background worker: its task and the signal that stops it.
struct Worker {
    task: JoinHandle<()>,
    stop: tokio::sync::watch::Sender<bool>,
}

/// The outgoing HTTP client's resilience: a breaker shared by every call, retries around it.
struct Upstream {
    addr: String,
    breaker: CircuitBreaker,
    retry: Retry,
}

#[derive(Clone)]
struct App {
    boot: Boot,
    config: Arc<Slot<Config>>,
    db: Arc<Slot<Db>>,
    redis: Arc<Slot<redis::aio::MultiplexedConnection>>,
    upstream: Arc<Upstream>,
    jobs: Arc<AtomicU64>,
}

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_string())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let listen = env_or("LISTEN", "127.0.0.1:3000");
    let config: Arc<Slot<Config>> = Slot::new();
    let db: Arc<Slot<Db>> = Slot::new();
    let redis_conn: Arc<Slot<redis::aio::MultiplexedConnection>> = Slot::new();
    let worker: Arc<Slot<Worker>> = Slot::new();
    let jobs = Arc::new(AtomicU64::new(0));

    let boot = Boot::builder()
        .name("embedded-example")
        .allow_degraded(true)
        .component(config_component(config.clone()))
        .component(postgres_component(config.clone(), db.clone()))
        .component(redis_component(config.clone(), redis_conn.clone()))
        .component(worker_component(
            db.clone(),
            redis_conn.clone(),
            worker,
            jobs.clone(),
        ))
        .build()?;

    let upstream = Arc::new(Upstream {
        addr: env_or("UPSTREAM", &listen),
        // Opens when half of the last calls failed; tries again after 10 s. Tokio's clock, so
        // it follows `tokio::time::pause` in tests like the timers do.
        breaker: CircuitBreaker::builder()
            .clock(TokioClock::new())
            .wait_in_open(Duration::from_secs(10))
            .build()?,
        retry: Retry::builder()
            .max_attempts(3)
            .backoff(
                Backoff::exponential(Duration::from_millis(100), Duration::from_secs(2))
                    .jitter(Jitter::Full),
            )
            .build()?,
    });
    let app = App {
        boot: boot.clone(),
        config,
        db,
        redis: redis_conn,
        upstream,
        jobs,
    };
    let router = Router::new()
        .route("/", get(index))
        .route("/report", get(report))
        .route("/upstream", get(call_upstream))
        .route("/admin/reinitialize/{name}", post(reinitialize))
        .with_state(app)
        // The same /health/live, /health/ready, /health/startup and /health as `gantry up`.
        .merge(boot.health_router());

    // Serve first: orchestrators probe /health/startup while the components come up.
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(async move {
        let stopped = async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        };
        axum::serve(listener, router)
            .with_graceful_shutdown(stopped)
            .await
    });

    let report = boot.start().await;
    print!("{report}");
    let exit = if !report.success {
        // NO-GO: the boot already cleaned up everything it had initialized.
        1
    } else {
        if std::env::var("EXIT_AFTER_BOOT").is_err() {
            println!("up; Ctrl-C to stop");
            tokio::signal::ctrl_c().await?;
        }
        let shutdown = boot.shutdown().await;
        for c in &shutdown.cleanups {
            println!("cleanup {}: {}", c.name, c.error.as_deref().unwrap_or("ok"));
        }
        0
    };
    let _ = stop_tx.send(true);
    server.await??;
    std::process::exit(exit);
}

fn config_component(config: Arc<Slot<Config>>) -> Component {
    Component::new("config")
        .priority(Priority::Critical)
        .retries(0)
        .init(move || {
            let config = config.clone();
            async move {
                let listen = env_or("LISTEN", "127.0.0.1:3000");
                config.set(Config {
                    database_url: env_or(
                        "DATABASE_URL",
                        "host=127.0.0.1 user=postgres dbname=postgres",
                    ),
                    redis_url: env_or("REDIS_URL", "redis://127.0.0.1:6379"),
                    upstream: env_or("UPSTREAM", &listen),
                    listen,
                });
                Ok(())
            }
        })
}

fn postgres_component(config: Arc<Slot<Config>>, db: Arc<Slot<Db>>) -> Component {
    let (init_db, ready_db, cleanup_db) = (db.clone(), db.clone(), db);
    Component::new("postgres")
        .priority(Priority::Critical)
        .depends_on(["config"])
        .timeout(Duration::from_secs(10))
        .retries(3)
        .backoff(Duration::from_millis(250), Duration::from_secs(4))
        .init(move || {
            let (config, db) = (config.clone(), init_db.clone());
            async move {
                let url = config
                    .get()
                    .ok_or("config is not loaded")?
                    .database_url
                    .clone();
                let (client, connection) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
                let connection = tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        eprintln!("postgres connection closed: {e}");
                    }
                });
                db.set(Db { client, connection });
                Ok(())
            }
        })
        // Connected is not ready: the server must answer a query.
        .readiness(move || {
            let db = ready_db.clone();
            async move {
                let db = db.get().ok_or("not connected")?;
                db.client.simple_query("SELECT 1").await?;
                Ok::<(), BoxError>(())
            }
        })
        .cleanup(move || {
            let db = cleanup_db.clone();
            async move {
                if let Some(db) = db.take() {
                    db.connection.abort();
                }
            }
        })
}

fn redis_component(
    config: Arc<Slot<Config>>,
    redis_conn: Arc<Slot<redis::aio::MultiplexedConnection>>,
) -> Component {
    let (init_conn, ready_conn, cleanup_conn) =
        (redis_conn.clone(), redis_conn.clone(), redis_conn);
    Component::new("redis")
        .priority(Priority::High)
        .depends_on(["config"])
        .timeout(Duration::from_secs(3))
        .retries(2)
        .backoff(Duration::from_millis(200), Duration::from_secs(2))
        .init(move || {
            let (config, conn) = (config.clone(), init_conn.clone());
            async move {
                let url = config
                    .get()
                    .ok_or("config is not loaded")?
                    .redis_url
                    .clone();
                let client = redis::Client::open(url)?;
                conn.set(client.get_multiplexed_async_connection().await?);
                Ok(())
            }
        })
        .readiness(move || {
            let conn = ready_conn.clone();
            async move {
                let mut conn = conn.get().ok_or("not connected")?.as_ref().clone();
                let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
                Ok::<bool, BoxError>(pong == "PONG")
            }
        })
        .cleanup(move || {
            let conn = cleanup_conn.clone();
            async move {
                conn.take();
            }
        })
}

fn worker_component(
    db: Arc<Slot<Db>>,
    redis_conn: Arc<Slot<redis::aio::MultiplexedConnection>>,
    worker: Arc<Slot<Worker>>,
    jobs: Arc<AtomicU64>,
) -> Component {
    let cleanup_worker = worker.clone();
    Component::new("worker")
        .priority(Priority::Medium)
        .depends_on(["postgres"])
        // Redis speeds the worker up but it runs without it.
        .depends_on_soft(["redis"])
        .init(move || {
            let (db, redis_conn, worker, jobs) =
                (db.clone(), redis_conn.clone(), worker.clone(), jobs.clone());
            async move {
                let (stop, mut stopped) = tokio::sync::watch::channel(false);
                let task = tokio::spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_secs(5));
                    loop {
                        tokio::select! {
                            _ = stopped.changed() => break,
                            _ = tick.tick() => {}
                        }
                        // One unit of work: a query, and a counter in Redis when it is there.
                        if let Some(db) = db.get()
                            && db.client.simple_query("SELECT now()").await.is_ok()
                        {
                            jobs.fetch_add(1, Ordering::Relaxed);
                        }
                        if let Some(conn) = redis_conn.get() {
                            let mut conn = conn.as_ref().clone();
                            let _: Result<i64, _> = redis::cmd("INCR")
                                .arg("gantry:example:jobs")
                                .query_async(&mut conn)
                                .await;
                        }
                    }
                });
                worker.set(Worker { task, stop });
                Ok(())
            }
        })
        .cleanup_timeout(Duration::from_secs(5))
        .cleanup(move || {
            let worker = cleanup_worker.clone();
            async move {
                if let Some(w) = worker.take() {
                    let _ = w.stop.send(true);
                    // Let the current job finish; the cleanup timeout bounds the wait.
                    if let Ok(w) = Arc::try_unwrap(w) {
                        w.task.await?;
                    }
                }
                Ok::<(), BoxError>(())
            }
        })
}

async fn index(State(app): State<App>) -> impl IntoResponse {
    let status = app.boot.status();
    let components: Vec<_> = status
        .components
        .iter()
        .map(|c| {
            serde_json::json!({
                "name": c.name,
                "state": c.state.to_string(),
                "restarts": c.restarts,
                "last_error": c.last_error,
            })
        })
        .collect();
    let config = app
        .config
        .get()
        .map(|c| serde_json::json!({ "listen": c.listen, "upstream": c.upstream }));
    Json(serde_json::json!({
        "ready": status.is_ready(),
        "outcome": status.outcome.as_ref().map(|o| o.label()),
        "components": components,
        "config": config,
        "db_connected": app.db.get().is_some(),
        "redis_connected": app.redis.get().is_some(),
        "jobs_done": app.jobs.load(Ordering::Relaxed),
    }))
}

async fn report(State(app): State<App>) -> impl IntoResponse {
    Json(app.boot.start().await)
}

async fn reinitialize(State(app): State<App>, Path(name): Path<String>) -> impl IntoResponse {
    match app.boot.reinitialize(&name).await {
        Ok(report) => (
            StatusCode::OK,
            Json(serde_json::to_value(report).unwrap_or_default()),
        ),
        Err(e) => (
            StatusCode::CONFLICT,
            Json(serde_json::json!({ "error": e.to_string() })),
        ),
    }
}

/// GET the upstream's `/health/live` through retry → breaker → HTTP: transient failures are
/// retried with jittered backoff; a failing upstream opens the breaker, and then calls are
/// refused at once (and not retried into the open breaker before its `retry_after`).
async fn call_upstream(State(app): State<App>) -> impl IntoResponse {
    let up = app.upstream.clone();
    let result: Result<u16, CallError<Rejected, String>> = up
        .retry
        .call(|| {
            let up = up.clone();
            async move { up.breaker.call(|| http_get(&up.addr, "/health/live")).await }
        })
        .await;
    match result {
        Ok(status) => (
            StatusCode::OK,
            format!("upstream {} answered {status}\n", app.upstream.addr),
        ),
        Err(CallError::Rejected(r)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("upstream breaker open: {r}\n"),
        ),
        Err(CallError::Inner(e)) => (StatusCode::BAD_GATEWAY, format!("upstream failed: {e}\n")),
    }
}

/// One HTTP/1.1 GET on a fresh connection; a 5xx is an error (it should open the breaker).
async fn http_get(addr: &str, path: &str) -> Result<u16, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, addr)
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(Duration::from_secs(2), sender.send_request(request))
        .await
        .map_err(|_| "timed out after 2s".to_string())?
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    if status >= 500 {
        return Err(format!("{addr} answered {status}"));
    }
    Ok(status)
}
