//! `gantry migrate` end to end with the real binary: five `migrate up` processes at once on
//! one PostgreSQL database, `gantry up` with a migrate service gating an API, and the
//! command line (output, exit codes, service selection, no password shown). PostgreSQL
//! (127.0.0.1:5432, user postgres, trust) and MariaDB (127.0.0.1:3306, root) must be up:
//! run scripts/stores. SQLite needs nothing.

mod support;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use support::*;

/// Fails the test (never skips it) when a server is down.
fn require(name: &str, port: u16) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    if TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_err() {
        panic!(
            "{name} is not answering on 127.0.0.1:{port}; run scripts/stores to start the \
             store servers the migration tests need"
        );
    }
}

fn unique() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "gantry_mig_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A PostgreSQL database name, dropped (if it exists) when this is dropped.
struct PgDb(String);

impl PgDb {
    fn new() -> PgDb {
        require("PostgreSQL", 5432);
        PgDb(unique())
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.0)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"])
            .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0))
            .stderr(Stdio::null())
            .status();
    }
}

/// A stack directory: gantry.toml and migrations/, removed when dropped.
struct Stack {
    dir: PathBuf,
}

impl Stack {
    fn new(toml: &str) -> Stack {
        let dir = std::env::temp_dir().join(format!("{}-stack", unique()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("migrations")).unwrap();
        std::fs::write(dir.join("gantry.toml"), toml).unwrap();
        Stack { dir }
    }

    fn file(&self) -> PathBuf {
        self.dir.join("gantry.toml")
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.join("migrations").join(name), text).unwrap();
    }

    /// `gantry -f gantry.toml migrate ARGS` (run from another directory, so relative paths
    /// must come from the file's directory).
    fn migrate(&self, args: &[&str]) -> Run {
        let out = Command::new(gantry())
            .arg("-f")
            .arg(self.file())
            .arg("migrate")
            .args(args)
            .current_dir(std::env::temp_dir())
            .output()
            .unwrap();
        Run::from(out)
    }
}

impl Stack {
    /// `gantry -f gantry.toml preflight`.
    fn preflight(&self) -> Run {
        let out = Command::new(gantry())
            .arg("-f")
            .arg(self.file())
            .arg("preflight")
            .current_dir(std::env::temp_dir())
            .output()
            .unwrap();
        Run::from(out)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    #[track_caller]
    fn expect(&self, code: i32, contains: &[&str]) {
        assert_eq!(self.code, code, "exit code; output:\n{}", self.all());
        for c in contains {
            assert!(self.all().contains(c), "expected {c:?} in:\n{}", self.all());
        }
    }
}

/// Three migrations; `events` has no key, so a migration that ran twice shows twice. 0001
/// sleeps while it holds the lock, so the other migrators really wait for it.
fn write_standard(dir: &Path, sleep: &str) {
    let m = dir.join("migrations");
    std::fs::create_dir_all(&m).unwrap();
    let files = [
        (
            "0001_create_users.up.sql",
            format!(
                "CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL);\n\
                 CREATE TABLE events (id INTEGER NOT NULL, note VARCHAR(100) NOT NULL);\n\
                 {sleep}INSERT INTO events (id, note) VALUES (1, 'created users');\n"
            ),
        ),
        (
            "0001_create_users.down.sql",
            "DROP TABLE users;\nDROP TABLE events;\n".into(),
        ),
        (
            "0002_add_email.up.sql",
            "ALTER TABLE users ADD COLUMN email VARCHAR(200);\n\
             INSERT INTO events (id, note) VALUES (2, 'added email');\n"
                .into(),
        ),
        (
            "0002_add_email.down.sql",
            "ALTER TABLE users DROP COLUMN email;\nDELETE FROM events WHERE id = 2;\n".into(),
        ),
        (
            "0003_seed.up.sql",
            "INSERT INTO users (id, name) VALUES (1, 'ada');\n\
             INSERT INTO events (id, note) VALUES (3, 'seeded');\n"
                .into(),
        ),
    ];
    for (name, text) in files {
        std::fs::write(m.join(name), text).unwrap();
    }
}

#[test]
fn five_migrate_up_processes_at_once_apply_each_migration_exactly_once() {
    let db = PgDb::new();
    let stack = Stack::new(&format!(
        "[services.migrate]\nkind = \"migrate\"\ndatabase = \"{}\"\ncreate_database = true\n",
        db.url()
    ));
    write_standard(&stack.dir, "SELECT pg_sleep(0.5);\n");
    let children: Vec<_> = (0..5)
        .map(|_| {
            Command::new(gantry())
                .arg("-f")
                .arg(stack.file())
                .args(["migrate", "up", "--service", "migrate"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let runs: Vec<Run> = children
        .into_iter()
        .map(|c| Run::from(c.wait_with_output().unwrap()))
        .collect();
    for r in &runs {
        r.expect(0, &["GO:"]);
    }
    let applied: usize = runs
        .iter()
        .map(|r| r.stdout.matches("applied version").count())
        .sum();
    assert_eq!(applied, 3, "each migration applied by exactly one process");
    assert_eq!(
        psql(
            &db.0,
            "SELECT count(*) FROM gantry_schema_migrations WHERE success"
        ),
        "3"
    );
    assert_eq!(
        psql(
            &db.0,
            "SELECT string_agg(id::text, ',' ORDER BY id) FROM events"
        ),
        "1,2,3",
        "no migration ran twice"
    );
}

#[test]
fn gantry_up_runs_the_migrate_service_before_the_api() {
    let db = PgDb::new();
    let port = free_port();
    let toml = format!(
        r#"
[services.migrate]
kind = "migrate"
database = "{url}"
create_database = true

[services.api]
command = "FIXTURE --name api --http {port}"
depends_on = {{ migrate = "completed" }}
readiness = {{ http = "http://127.0.0.1:{port}/health" }}
"#,
        url = db.url()
    );
    let mut up = up_with("migrate-gate", &toml, &[], |dir| write_standard(dir, ""));
    let boot = up.wait_boot(60);
    assert_eq!(boot["outcome"], "go", "{}", up.log());
    assert!(up.index("api", "starting") > up.index("migrate", "completed"));
    assert_eq!(
        psql(
            &db.0,
            "SELECT count(*) FROM gantry_schema_migrations WHERE success"
        ),
        "3"
    );
    assert_eq!(psql(&db.0, "SELECT count(*) FROM events"), "3");
    // The migrator's output is the service's output.
    up.wait_for("the migrator's GO line", 10, |v| {
        v["event"] == "output"
            && v["service"] == "migrate"
            && v["line"]
                .as_str()
                .is_some_and(|l| l.starts_with("GO: 3 applied"))
    });
    assert_eq!(up.stop(), 0);
}

#[test]
fn a_failing_migrate_service_is_no_go_and_the_api_never_starts() {
    let db = PgDb::new();
    let toml = format!(
        r#"
[services.migrate]
kind = "migrate"
database = "{url}"
create_database = true
priority = "critical"

[services.api]
command = "FIXTURE --name api"
depends_on = {{ migrate = "completed" }}
"#,
        url = db.url()
    );
    let mut up = up_with("migrate-fail", &toml, &[], |dir| {
        write_standard(dir, "");
        std::fs::write(
            dir.join("migrations/0004_broken.up.sql"),
            "CREATE TABLE half (x int);\nSELEC oops;\n",
        )
        .unwrap();
    });
    let boot = up.wait_boot(60);
    assert_eq!(boot["outcome"], "no-go", "{}", up.log());
    assert!(
        !up.states("api").contains(&"starting".to_string()),
        "{}",
        up.log()
    );
    let code = up.wait_exit(30);
    assert_eq!(code, 1);
    assert_eq!(
        psql(
            &db.0,
            "SELECT version || ':' || success FROM gantry_schema_migrations WHERE version = 4"
        ),
        "4:false"
    );
}

#[test]
fn command_line_on_sqlite() {
    let stack = Stack::new(
        "[services.migrate]\nkind = \"migrate\"\ndatabase = \"sqlite://data/app.db\"\n\
         create_database = true\n",
    );
    // new: the next pair, in the file's directory whatever the current directory.
    stack.migrate(&["new", "create users"]).expect(
        0,
        &["0001_create_users.up.sql", "0001_create_users.down.sql"],
    );
    stack.write(
        "0001_create_users.up.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n",
    );
    stack.write("0001_create_users.down.sql", "DROP TABLE users;\n");
    stack.write(
        "0002_add_email.up.sql",
        "ALTER TABLE users ADD COLUMN email TEXT;\n",
    );

    // status before the database exists: an error saying what to do.
    stack.migrate(&["status"]).expect(1, &["does not exist"]);

    let up = stack.migrate(&["up"]);
    up.expect(
        0,
        &[
            "created the database",
            "applied version 1 (create_users)",
            "0001_create_users.up.sql",
            "applied version 2 (add_email)",
            "GO: 2 applied, 0 already applied",
            "write/read ok",
        ],
    );
    assert!(stack.dir.join("data/app.db").exists());
    stack
        .migrate(&["up"])
        .expect(0, &["GO: up to date, 2 already applied"]);

    let status = stack.migrate(&["status"]);
    status.expect(
        0,
        &[
            "VERSION",
            "APPLIED_AT",
            "CHECKSUM",
            "create_users",
            "2 applied, 0 pending",
        ],
    );
    assert!(
        status.stdout.contains("matches the live schema"),
        "{}",
        status.stdout
    );
    let json = stack.migrate(&["status", "--json"]);
    json.expect(0, &[]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["migrations"][1]["checksum"], "ok");
    stack.migrate(&["verify"]).expect(0, &["ok: 2 applied"]);

    // A changed file: up is NO-GO naming it, verify exits 1, repair re-records it.
    stack.write(
        "0002_add_email.up.sql",
        "-- the email column\nALTER TABLE users ADD COLUMN email TEXT;\n",
    );
    let file = stack.dir.join("migrations/0002_add_email.up.sql");
    stack.migrate(&["up"]).expect(
        1,
        &[
            "NO-GO",
            &file.display().to_string(),
            "changed after it was applied",
            "gantry migrate repair 2",
        ],
    );
    stack.migrate(&["status"]).expect(0, &["changed"]);
    stack
        .migrate(&["verify"])
        .expect(1, &["problem:", "NO-GO: 1 problem"]);
    stack
        .migrate(&["repair", "2"])
        .expect(0, &["repaired version 2", "did not run again"]);
    stack
        .migrate(&["repair", "2"])
        .expect(0, &["nothing to repair for version 2"]);
    stack
        .migrate(&["repair", "9"])
        .expect(2, &["version 9 is not in the history"]);
    stack.migrate(&["repair"]).expect(2, &["VERSION"]);

    // Drift: a column added by hand is named; repair --schema accepts it.
    let conn = rusqlite::Connection::open(stack.dir.join("data/app.db")).unwrap();
    conn.execute_batch("ALTER TABLE users ADD COLUMN nickname TEXT")
        .unwrap();
    drop(conn);
    stack.migrate(&["up"]).expect(
        1,
        &[
            "NO-GO",
            "+ column users.nickname TEXT NULL",
            "repair --schema",
        ],
    );
    stack
        .migrate(&["verify"])
        .expect(1, &["+ column users.nickname"]);
    // `gantry preflight` has a schema stage: the drift is NO-GO there too.
    stack.preflight().expect(
        1,
        &[
            "schema\n",
            "✗ migrate: migrations:",
            "+ column users.nickname",
            "gantry migrate verify --service migrate",
            "pre-flight: NO-GO",
        ],
    );
    stack
        .migrate(&["repair", "--schema"])
        .expect(0, &["recorded the live schema", "+ column users.nickname"]);
    stack.migrate(&["verify"]).expect(0, &["ok"]);
    stack.preflight().expect(
        0,
        &["✓ migrate: migrations: 2 applied, 0 pending, checksums match, the schema matches its recorded hash"],
    );

    // A failing migration: dirty until repaired.
    stack.write(
        "0003_broken.up.sql",
        "CREATE TABLE t (x int);\nSELEC oops;\n",
    );
    stack.migrate(&["up"]).expect(
        1,
        &[
            "version 3",
            "0003_broken.up.sql failed",
            "line 2",
            "rolled back",
            "gantry migrate repair 3",
        ],
    );
    stack.migrate(&["up"]).expect(
        1,
        &[
            "failed earlier and is marked dirty",
            "gantry migrate repair 3",
        ],
    );
    stack.migrate(&["status"]).expect(0, &["DIRTY"]);
    stack.write("0003_broken.up.sql", "CREATE TABLE t (x int);\n");
    stack
        .migrate(&["repair", "3"])
        .expect(0, &["removed its dirty row"]);
    stack.migrate(&["up"]).expect(
        0,
        &["applied version 3", "GO: 1 applied, 2 already applied"],
    );

    // down: version 3 has no down file.
    stack.migrate(&["down"]).expect(
        1,
        &[
            "version 3 (broken) has no down file",
            "0003_broken.down.sql",
        ],
    );
    stack.write("0003_broken.down.sql", "DROP TABLE t;\n");
    stack.write(
        "0002_add_email.down.sql",
        "ALTER TABLE users DROP COLUMN email;\n",
    );
    stack.migrate(&["down", "2"]).expect(
        0,
        &["reverted version 3", "reverted version 2", "2 reverted"],
    );
    stack
        .migrate(&["status"])
        .expect(0, &["1 applied, 2 pending"]);
}

#[test]
fn service_selection_and_usage_errors_exit_2() {
    let two = Stack::new(
        "[services.a]\nkind = \"migrate\"\ndatabase = \"sqlite://a.db\"\n\n\
         [services.b]\nkind = \"migrate\"\ndatabase = \"sqlite://b.db\"\n\n\
         [services.web]\ncommand = \"true\"\n",
    );
    two.migrate(&["status"])
        .expect(2, &["several migrate services (a, b)", "--service NAME"]);
    two.migrate(&["status", "--service", "web"])
        .expect(2, &["not kind = \"migrate\"", "migrate services: a, b"]);
    two.migrate(&["status", "--service", "nope"])
        .expect(2, &["no service \"nope\""]);
    // --service before the subcommand works too.
    two.migrate(&["--service", "b", "new", "x"])
        .expect(0, &["0001_x.up.sql"]);

    let none = Stack::new("[services.web]\ncommand = \"true\"\n");
    none.migrate(&["up"])
        .expect(2, &["no kind = \"migrate\" service", "[services.migrate]"]);

    let bad = Stack::new("[services.m]\nkind = \"migrate\"\ndatabase = \"sqlite://x.db\"\n");
    bad.write("0001_ok.up.sql", "");
    bad.write("oops.sql", "");
    bad.migrate(&["up"])
        .expect(2, &["oops.sql: not a migration file name"]);

    let invalid = Stack::new("[services.m]\nkind = \"migrate\"\n");
    invalid.migrate(&["up"]).expect(2, &["invalid"]);
}

#[test]
fn the_password_is_never_printed() {
    const PW: &str = "Sup3rSecretPw";
    let db = PgDb::new();
    // Trust auth accepts and ignores the password.
    let url = format!("postgres://postgres:{PW}@127.0.0.1:5432/{}", db.0);
    let stack = Stack::new(&format!(
        "[services.migrate]\nkind = \"migrate\"\ndatabase = \"{url}\"\n"
    ));
    write_standard(&stack.dir, "");
    let missing = stack.migrate(&["up"]);
    missing.expect(
        1,
        &["does not exist", "postgres:***@", "create_database = true"],
    );
    assert!(!missing.all().contains(PW), "{}", missing.all());
    psql("postgres", &format!("CREATE DATABASE {}", db.0));
    for args in [&["up"][..], &["status"], &["verify"]] {
        let r = stack.migrate(args);
        r.expect(0, &["postgres:***@"]);
        assert!(!r.all().contains(PW), "{}", r.all());
    }

    // MariaDB refuses the password (root has none): the message still hides it.
    require("MariaDB", 3306);
    let my = Stack::new(&format!(
        "[services.migrate]\nkind = \"migrate\"\ndatabase = \"mysql://root:{PW}@127.0.0.1:3306/{}\"\n",
        unique()
    ));
    let r = my.migrate(&["up"]);
    r.expect(1, &["authentication failed", "root:***@"]);
    assert!(!r.all().contains(PW), "{}", r.all());
}

#[test]
fn mysql_through_the_command_line() {
    require("MariaDB", 3306);
    let name = unique();
    let stack = Stack::new(&format!(
        "[services.migrate]\nkind = \"migrate\"\ndatabase = \"mysql://root@127.0.0.1:3306/{name}\"\n\
         create_database = true\n"
    ));
    write_standard(&stack.dir, "");
    let up = stack.migrate(&["up"]);
    let status = stack.migrate(&["status"]);
    let down = stack.migrate(&["down", "3"]);
    let _ = Command::new("mysql")
        .args(["-h", "127.0.0.1", "-uroot", "-e"])
        .arg(format!("DROP DATABASE IF EXISTS {name}"))
        .status();
    up.expect(0, &["created the database", "GO: 3 applied"]);
    status.expect(0, &["3 applied, 0 pending", "matches the live schema"]);
    down.expect(1, &["version 3 (seed) has no down file"]);
}

/// A release rolled out from the edited gantry.toml runs the migrate service it depends on
/// first (the new migration applied once), and only then restarts the canary; promoted, every
/// instance runs it.
#[test]
fn a_rollout_from_the_file_runs_its_migrations_before_the_canary() {
    let db = PgDb::new();
    let ing = free_port();
    let base = free_pair();
    let toml = format!(
        r#"
[ingress]
listen = "127.0.0.1:{ing}"

[[ingress.routes]]
path = "/"
service = "api"

[services.migrate]
kind = "migrate"
database = "{url}"
create_database = true

[services.api]
command = "FIXTURE --name api-${{REPLICA}} --http ${{PORT}}"
env = {{ VERSION = "1" }}
replicas = 2
replica_ports = "{base}-{}"
depends_on = {{ migrate = "completed" }}
readiness = {{ http = "http://127.0.0.1:${{PORT}}/health", period = "100ms" }}
"#,
        base + 1,
        url = db.url()
    );
    let mut up = up_with("migrate-rollout", &toml, &[], |dir| write_standard(dir, ""));
    assert_eq!(up.wait_boot(60)["outcome"], "go", "{}", up.log());
    let dir = up.dir.clone();
    // Release 2: a new migration and a new version in the file.
    std::fs::write(
        dir.join("migrations/0004_add_age.up.sql"),
        "ALTER TABLE users ADD COLUMN age INTEGER;\nINSERT INTO events (id, note) VALUES (4, 'added age');\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("migrations/0004_add_age.down.sql"),
        "ALTER TABLE users DROP COLUMN age;\nDELETE FROM events WHERE id = 4;\n",
    )
    .unwrap();
    let file = dir.join("gantry.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("VERSION = \"1\"", "VERSION = \"2\"")).unwrap();
    // Traffic for the analysis, until the test ends.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let traffic = std::thread::spawn(move || {
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = http_with(&format!("127.0.0.1:{ing}"), "GET", "/app", &[], "");
        }
    });
    let (code, out) = gantry_in(
        &dir,
        &[
            "rollout",
            "api",
            "--steps",
            "100",
            "--interval",
            "300ms",
            "--min-requests",
            "1",
            "--reason",
            "release 2 with a migration",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("first migrate completes"), "{out}");
    let done = up.wait_for("the rollout's end", 60, |v| {
        v["event"] == "rollout" && v["phase"] == "done"
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = traffic.join();
    assert_eq!(done["outcome"], "promoted", "{}", up.log());
    // The migration ran once, before the canary restarted.
    assert_eq!(psql(&db.0, "SELECT count(*) FROM events WHERE id = 4"), "1");
    let nth = |service: &str, to: &str, n: usize| {
        up.events
            .iter()
            .enumerate()
            .filter(|(_, v)| v["event"] == "transition" && v["service"] == service && v["to"] == to)
            .nth(n)
            .map(|(i, _)| i)
    };
    let second_migrate = nth("migrate", "completed", 1).expect("migrate completed again");
    let canary_restart = nth("api.2", "starting", 1).expect("the canary restarted");
    assert!(second_migrate < canary_restart, "{}", up.log());
    assert_eq!(up.stop(), 0);
}
