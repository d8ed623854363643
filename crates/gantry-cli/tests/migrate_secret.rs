//! A migrate service whose `database` is a secret: `gantry check`, `gantry up` (the child gets the URL the parent resolved) and the manual `gantry migrate` commands all work, an empty URL says so, and only the password is masked.

mod support;

use std::path::Path;
use std::process::Command;

use support::*;

/// `gantry -f DIR/gantry.toml ARGS` from another directory with exactly `env` added.
fn gantry_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(gantry())
        .arg("-f")
        .arg(dir.join("gantry.toml"))
        .args(args)
        .env_remove("APP_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .env_remove("GANTRY_MIGRATE_DATABASE")
        .envs(env.iter().copied())
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn migrations(dir: &Path) {
    let m = dir.join("migrations");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(
        m.join("0001_create_users.up.sql"),
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL);\n",
    )
    .unwrap();
    std::fs::write(m.join("0001_create_users.down.sql"), "DROP TABLE users;\n").unwrap();
}

/// A stack whose migrator's `database` is `database` and whose secret `DATABASE_URL`
/// comes from `APP_DATABASE_URL`.
fn stack(name: &str, database: &str) -> std::path::PathBuf {
    let dir = tempdir(name);
    migrations(&dir);
    std::fs::write(
        dir.join("gantry.toml"),
        format!(
            r#"
[settings]
api = "127.0.0.1:0"

[secrets.DATABASE_URL]
from_env = "APP_DATABASE_URL"
services = ["migrate"]

[services.migrate]
kind = "migrate"
database = "{database}"
create_database = true
"#
        ),
    )
    .unwrap();
    dir
}

#[test]
fn check_does_not_warn_about_a_database_a_secret_delivers() {
    let dir = stack("mig-secret-check", "${DATABASE_URL}");
    let (code, out) = gantry_in(&dir, &["check"], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("not set"), "{out}");
    assert!(!out.contains("warning"), "{out}");
    // A variable no secret delivers is still unset and still warned about.
    let dir2 = stack("mig-secret-check-other", "${SOMETHING_ELSE}");
    let (code, out) = gantry_in(&dir2, &["check"], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("`SOMETHING_ELSE` is not set") && out.contains("warning"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(dir2);
}

#[test]
fn the_manual_commands_resolve_the_secret_from_its_source() {
    let dir = stack("mig-secret-manual", "${DATABASE_URL}");
    let url = format!("sqlite://{}/app.db", dir.display());
    let env = [("APP_DATABASE_URL", url.as_str())];
    let (code, out) = gantry_in(&dir, &["migrate", "up"], &env);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("applied version 1"), "{out}");
    let (code, out) = gantry_in(&dir, &["migrate", "status"], &env);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("create_users") && out.contains("app.db"),
        "{out}"
    );
    let (code, out) = gantry_in(&dir, &["migrate", "repair", "--schema"], &env);
    assert_eq!(code, 0, "{out}");
    // Without the source: the secret's own message, not an "unsupported URL".
    let (code, out) = gantry_in(&dir, &["migrate", "status"], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("DATABASE_URL") && out.contains("APP_DATABASE_URL"),
        "{out}"
    );
    assert!(!out.contains("unsupported database URL"), "{out}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_secret_from_a_command_or_a_file_works_by_hand_too() {
    let dir = tempdir("mig-secret-cmd");
    migrations(&dir);
    let url = format!("sqlite://{}/cmd.db", dir.display());
    std::fs::write(dir.join("db.url"), format!("{url}\n")).unwrap();
    std::fs::write(
        dir.join("gantry.toml"),
        format!(
            r#"
[secrets.DATABASE_URL]
from_command = ["echo", "{url}"]
services = ["migrate"]

[secrets.OTHER_URL]
from_file = "db.url"
services = ["other"]
env = "OTHER_DATABASE_URL"

[services.migrate]
kind = "migrate"
database = "${{DATABASE_URL}}"
create_database = true

[services.other]
kind = "migrate"
database = "${{OTHER_DATABASE_URL}}"
"#
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        dir.join("db.url"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let (code, out) = gantry_in(&dir, &["migrate", "--service", "migrate", "up"], &[]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = gantry_in(&dir, &["migrate", "--service", "other", "status"], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("cmd.db") && out.contains("create_users"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_empty_database_url_says_which_key_and_what_to_do() {
    let dir = stack("mig-secret-empty", "${NOT_SET_ANYWHERE}");
    let (code, out) = gantry_in(&dir, &["migrate", "status"], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("services.migrate.database is empty")
            && out.contains("NOT_SET_ANYWHERE")
            && out.contains("hint:"),
        "{out}"
    );
    assert!(!out.contains("unsupported database URL"), "{out}");
    // The pre-flight of `gantry up` says the same before anything starts.
    let (code, out) = gantry_in(&dir, &["preflight"], &[("APP_DATABASE_URL", "x")]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("services.migrate.database is empty"), "{out}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn gantry_up_hands_the_child_the_url_it_resolved() {
    // Both spellings work at `up`: the secret's name, and the source variable (which is
    // removed from every service's environment, so the child could not re-read it).
    for (name, database) in [
        ("mig-secret-up-name", "${DATABASE_URL}"),
        ("mig-secret-up-source", "${APP_DATABASE_URL}"),
    ] {
        let db_dir = tempdir(&format!("{name}-db"));
        let url = format!("sqlite://{}/up.db", db_dir.display());
        let toml = format!(
            r#"
[secrets.DATABASE_URL]
from_env = "APP_DATABASE_URL"
services = ["migrate"]

[services.migrate]
kind = "migrate"
database = "{database}"
create_database = true

[services.probe]
kind = "task"
command = ["sh", "-c", "test -z \"$GANTRY_MIGRATE_DATABASE\""]
depends_on = {{ migrate = "completed" }}
"#
        );
        let mut up = up_env(
            name,
            &toml,
            &[],
            &[("APP_DATABASE_URL", url.as_str())],
            migrations,
        );
        let boot = up.wait_boot(60);
        assert_eq!(boot["outcome"], "go", "{database}: {}", up.log());
        assert_eq!(
            up.states("probe").last().map(String::as_str),
            Some("completed")
        );
        assert!(db_dir.join("up.db").exists());
        assert_eq!(up.stop(), 0);
        let _ = std::fs::remove_dir_all(db_dir);
    }
}

#[test]
fn the_migrator_output_masks_only_the_password() {
    // The local server trusts 127.0.0.1, so any password is accepted (scripts/stores).
    let db = format!("gantry_mig_secret_{}", std::process::id());
    let url = format!("postgres://postgres:s3cretpw@127.0.0.1:5432/{db}");
    let toml = r#"
[secrets.DATABASE_URL]
from_env = "APP_DATABASE_URL"
services = ["migrate", "echo"]

[services.migrate]
kind = "migrate"
database = "${DATABASE_URL}"
create_database = true

[services.echo]
kind = "task"
command = ["sh", "-c", "echo url=$DATABASE_URL"]
"#;
    let mut up = up_env(
        "mig-secret-mask",
        toml,
        &[],
        &[("APP_DATABASE_URL", url.as_str())],
        migrations,
    );
    let boot = up.wait_boot(60);
    assert_eq!(boot["outcome"], "go", "{}", up.log());
    let shown = format!("postgres://postgres:***@127.0.0.1:5432/{db}");
    up.wait_for("the migrator's header", 10, |v| {
        v["event"] == "output"
            && v["service"] == "migrate"
            && v["line"].as_str().is_some_and(|l| l.contains(&shown))
    });
    // A service that prints the secret URL shows it with the password masked.
    let echoed = format!("url=postgres://postgres:[redacted]@127.0.0.1:5432/{db}");
    up.wait_for("the echoed URL", 10, |v| {
        v["event"] == "output" && v["service"] == "echo" && v["line"] == echoed.as_str()
    });
    assert!(!up.log().contains("s3cretpw"), "{}", up.log());
    assert!(!up.log().contains("migrate: [redacted]"), "{}", up.log());
    assert_eq!(up.stop(), 0);
    let _ = psql(
        "postgres",
        &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
    );
}
