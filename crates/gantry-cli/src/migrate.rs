//! `gantry migrate`: apply, revert, inspect, verify and repair the SQL migrations of a
//! `kind = "migrate"` service (the library is gantry-migrate; this is its command line).
//!
//! A migrate service in `gantry up` runs `gantry -f FILE migrate up --service NAME`.
//! Exit codes: 0 done / GO, 1 NO-GO or failure, 2 usage or configuration error.

use std::path::{Path, PathBuf};

use gantry_migrate::{Error, FileState, Migrator, Problem, Repair, Status};
use gantry_spec::{Kind, Service};

use crate::Outcome;

/// `gantry migrate [--service NAME] COMMAND`.
#[derive(clap::Args, Debug, Clone)]
pub struct MigrateArgs {
    /// The migrate service to act on (default: the only `kind = "migrate"` service in the file).
    #[arg(long, global = true, value_name = "NAME")]
    pub service: Option<String>,
    #[command(subcommand)]
    pub command: MigrateCommand,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum MigrateCommand {
    /// Apply the pending migrations, under a lock; NO-GO on a dirty row, a changed file or (on_drift = "fail") schema drift.
    Up,
    /// Revert the newest N applied migrations with their down files, newest first.
    Down {
        /// How many to revert.
        #[arg(default_value_t = 1)]
        n: usize,
    },
    /// Every version: applied_at, checksum (ok / changed / missing file / pending), dirty; and the schema hash.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Check the history and the schema: dirty rows, changed files, drift (exit 1 on a problem).
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Repair one version: remove its dirty row (it runs again on the next up), or record its changed file's checksum.
    Repair {
        /// The version to repair.
        #[arg(
            id = "repair_version",
            value_name = "VERSION",
            required_unless_present = "schema"
        )]
        version: Option<i64>,
        /// Instead: accept the live schema as the recorded schema hash (after drift).
        #[arg(long, conflicts_with = "repair_version")]
        schema: bool,
    },
    /// Write the next NNNN_name.up.sql / NNNN_name.down.sql pair in the migrations directory.
    New {
        /// What the migration does (`add users` → 0004_add_users).
        name: String,
    },
}

pub fn run(file: &Path, args: MigrateArgs) -> anyhow::Result<Outcome> {
    let checked = match crate::load::load_valid(file, "invalid; run `gantry check` for details") {
        Ok(c) => c,
        Err(outcome) => return Ok(outcome),
    };
    let service = match pick(&checked.spec.services, args.service.as_deref(), file) {
        Ok(s) => s,
        Err(msg) => {
            eprintln!("error: {msg}");
            return Ok(Outcome::Usage);
        }
    };
    let Some(spec) = &service.migrate else {
        eprintln!(
            "error: service {} has no migrate settings; run `gantry check`",
            service.name.value
        );
        return Ok(Outcome::Usage);
    };
    let base = base_dir(file);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let database = match runtime.block_on(database(&checked.spec, service, &base)) {
        Ok(url) => url,
        Err(outcome) => return Ok(outcome),
    };
    let spec = gantry_spec::MigrateSpec {
        database: gantry_spec::Sp::new(database, spec.database.span.clone()),
        ..gantry_spec::model::MigrateSpec::clone(spec)
    };
    let migrator = match Migrator::from_spec(&spec, &base) {
        Ok(m) => m,
        Err(e) => return Ok(fail(&e)),
    };
    let name = service.name.value.as_str();
    if let MigrateCommand::New { name: what } = &args.command {
        return Ok(match gantry_migrate::new_migration(migrator.dir(), what) {
            Ok(n) => {
                println!("created {}", n.up.display());
                println!("created {}", n.down.display());
                println!(
                    "write the change in the up file and its undo in the down file; \
                     `gantry migrate up --service {name}` applies it"
                );
                Outcome::Success
            }
            Err(e) => fail(&e),
        });
    }
    Ok(runtime.block_on(async {
        match args.command {
            MigrateCommand::Up => up(&migrator, name).await,
            MigrateCommand::Down { n } => down(&migrator, name, n).await,
            MigrateCommand::Status { json } => status(&migrator, json).await,
            MigrateCommand::Verify { json } => verify(&migrator, json).await,
            MigrateCommand::Repair { version, .. } => repair(&migrator, version).await,
            MigrateCommand::New { .. } => Outcome::Usage,
        }
    }))
}

/// The service's database URL: the one `gantry up` resolved and handed its child in
/// `GANTRY_MIGRATE_DATABASE`, else `database` interpolated with the secrets delivered to
/// the service (resolved from their sources, as the pre-flight does) and this environment.
/// An empty URL or a secret that cannot be resolved is an error saying which and what to do.
async fn database(
    spec: &gantry_spec::Spec,
    service: &Service,
    base: &Path,
) -> Result<String, Outcome> {
    use gantry_runtime::env;
    let handed = std::env::var(env::MIGRATE_DATABASE_VAR).ok();
    let url = match handed {
        Some(url) => url,
        None => {
            let template = service
                .migrate
                .as_ref()
                .map_or("", |m| m.database_template.as_str());
            let delivered: Vec<&str> =
                gantry_spec::decode::secret_vars_for(spec, &service.name.value).collect();
            let referenced = |name: &str| {
                template.contains(&format!("${{{name}}}"))
                    || template.contains(&format!("${{{name}:-"))
            };
            let wanted = |s: &gantry_spec::Secret| {
                let var = s.env.as_deref().unwrap_or(&s.name.value);
                delivered.contains(&var) && referenced(var)
            };
            let secrets = if spec.secrets.iter().any(&wanted) {
                let reaper = gantry_runtime::reaper::Reaper::start().map_err(|e| {
                    eprintln!("error: cannot start the reaper to resolve secrets: {e}");
                    Outcome::Failure
                })?;
                let (report, values) =
                    gantry_runtime::preflight::resolve_secrets_where(spec, base, &reaper, &wanted)
                        .await;
                if !report.go() {
                    eprint!("{}", report.render());
                    eprintln!(
                        "error: the database URL of {} needs these secrets; fix them and run again",
                        service.name.value
                    );
                    return Err(Outcome::Failure);
                }
                values
            } else {
                Vec::new()
            };
            env::migrate_database(service, &secrets, &|name| std::env::var(name).ok())
                .unwrap_or_default()
        }
    };
    if url.trim().is_empty() {
        let p = env::database_problem(service);
        eprintln!("error: {}\n  hint: {}", p.message, p.hint);
        return Err(Outcome::Usage);
    }
    Ok(url)
}

/// The stack file's directory, absolute: relative `dir` and `sqlite://` paths start there.
fn base_dir(file: &Path) -> PathBuf {
    let dir = crate::load::base_dir(file);
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// The service named by `--service`, or the only migrate service.
fn pick<'a>(
    services: &'a [Service],
    name: Option<&str>,
    file: &Path,
) -> Result<&'a Service, String> {
    let migrate: Vec<&Service> = services
        .iter()
        .filter(|s| s.kind == Kind::Migrate)
        .collect();
    let names = migrate
        .iter()
        .map(|s| s.name.value.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let listed = if names.is_empty() {
        "there is none".to_string()
    } else {
        format!("migrate services: {names}")
    };
    match name {
        Some(n) => match services.iter().find(|s| s.name.value == n) {
            Some(s) if s.kind == Kind::Migrate => Ok(s),
            Some(_) => Err(format!(
                "service {n:?} in {} is not kind = \"migrate\" ({listed})",
                file.display()
            )),
            None => Err(format!("no service {n:?} in {} ({listed})", file.display())),
        },
        None => match migrate.as_slice() {
            [one] => Ok(one),
            [] => Err(format!(
                "no kind = \"migrate\" service in {}; add one:\n  [services.migrate]\n  \
                 kind = \"migrate\"\n  database = \"postgres://127.0.0.1:5432/app\"",
                file.display()
            )),
            _ => Err(format!(
                "{} has several migrate services ({names}); choose one with --service NAME",
                file.display()
            )),
        },
    }
}

/// Prints an error and answers its exit code.
fn fail(e: &Error) -> Outcome {
    fail_as(e, "NO-GO")
}

/// [`fail`] with another word than NO-GO for commands that only read.
fn fail_as(e: &Error, word: &str) -> Outcome {
    match e {
        Error::NoGo(_) => eprintln!("{e}"),
        _ if e.is_usage() => eprintln!("error: {e}"),
        _ => eprintln!("{word}: {e}"),
    }
    if e.is_usage() {
        Outcome::Usage
    } else {
        Outcome::Failure
    }
}

fn header(m: &Migrator, service: &str) {
    println!(
        "migrate {service}: {} with the migrations in {}",
        m.database(),
        m.dir().display()
    );
}

fn warn(p: &Problem) {
    eprintln!("warning: {p}");
}

fn ms(d: std::time::Duration) -> String {
    format!("{}ms", d.as_millis())
}

async fn up(m: &Migrator, service: &str) -> Outcome {
    header(m, service);
    let r = match m.up().await {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    if r.created_database {
        println!("created the database {}", m.database());
    }
    for w in &r.warnings {
        warn(w);
    }
    for a in &r.applied {
        println!(
            "applied version {} ({}) in {}: {}",
            a.version,
            a.name,
            ms(a.duration),
            a.file.display()
        );
    }
    let what = if r.applied.is_empty() {
        format!("up to date, {} already applied", r.already_applied)
    } else {
        format!(
            "{} applied, {} already applied",
            r.applied.len(),
            r.already_applied
        )
    };
    println!(
        "GO: {what}; schema hash {} recorded and read back (write/read ok)",
        short(&r.schema_hash)
    );
    Outcome::Success
}

async fn down(m: &Migrator, service: &str, n: usize) -> Outcome {
    header(m, service);
    let r = match m.down(n).await {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    for w in &r.warnings {
        warn(w);
    }
    for a in &r.reverted {
        println!(
            "reverted version {} ({}) in {}: {}",
            a.version,
            a.name,
            ms(a.duration),
            a.file.display()
        );
    }
    if r.reverted.is_empty() {
        println!("nothing to revert: no migration is applied");
    } else {
        println!(
            "done: {} reverted; schema hash {} recorded",
            r.reverted.len(),
            short(&r.schema_hash)
        );
    }
    Outcome::Success
}

async fn status(m: &Migrator, json: bool) -> Outcome {
    let s = match m.status().await {
        Ok(s) => s,
        Err(e) => return fail_as(&e, "error"),
    };
    if json {
        println!("{}", s.to_json());
        return Outcome::Success;
    }
    print_status(&s);
    Outcome::Success
}

fn print_status(s: &Status) {
    println!("database  {}", s.database);
    println!("dir       {}", s.dir.display());
    let mut table = vec![[
        "VERSION".to_string(),
        "NAME".into(),
        "APPLIED_AT".into(),
        "DURATION".into(),
        "CHECKSUM".into(),
        "DIRTY".into(),
    ]];
    for r in &s.rows {
        let pending = r.state == FileState::Pending;
        table.push([
            r.label
                .split_once('_')
                .map_or_else(|| r.version.to_string(), |(v, _)| v.to_string()),
            r.name.clone(),
            r.applied_at.clone().unwrap_or_else(|| "-".into()),
            r.duration_ms
                .map_or_else(|| "-".into(), |d| format!("{d}ms")),
            r.state.as_str().into(),
            if pending {
                "-".into()
            } else if r.dirty {
                "DIRTY".into()
            } else {
                "no".into()
            },
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            table
                .iter()
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in &table {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    let applied = s.rows.len() - s.pending();
    println!("{applied} applied, {} pending", s.pending());
    match (&s.recorded, &s.drift) {
        (None, _) => println!(
            "schema: no schema hash recorded yet (`gantry migrate up` records it); live {}",
            short(&s.live_hash)
        ),
        (Some((hash, at)), None) => println!(
            "schema: hash {} recorded {at} matches the live schema",
            short(hash)
        ),
        (Some(_), Some(d)) => println!("schema: DRIFT: {d}"),
    }
    for r in &s.rows {
        if r.dirty {
            println!(
                "version {} is dirty: fix it, then `gantry migrate repair {}`",
                r.version, r.version
            );
        } else if r.state == FileState::Changed {
            println!(
                "version {}: {} changed since it was applied (`gantry migrate verify` says more)",
                r.version,
                r.file
                    .as_ref()
                    .map_or_else(String::new, |f| f.display().to_string())
            );
        }
    }
}

async fn verify(m: &Migrator, json: bool) -> Outcome {
    let v = match m.verify().await {
        Ok(v) => v,
        Err(e) => return fail(&e),
    };
    let ok = v.is_ok();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "ok": ok,
                "problems": v.problems.iter().filter(|p| p.is_blocking(true)).map(|p| p.to_string()).collect::<Vec<_>>(),
                "warnings": v.problems.iter().filter(|p| !p.is_blocking(true)).map(|p| p.to_string()).collect::<Vec<_>>(),
                "status": v.status.to_json(),
            })
        );
    } else {
        println!(
            "verify {} with the migrations in {}",
            v.status.database,
            v.status.dir.display()
        );
        for p in &v.problems {
            if p.is_blocking(true) {
                eprintln!("problem: {p}");
            } else {
                warn(p);
            }
        }
        let applied = v.status.rows.len() - v.status.pending();
        if ok {
            let schema = if v.status.recorded.is_some() {
                "the schema matches its recorded hash"
            } else {
                "no schema hash recorded yet"
            };
            println!(
                "ok: {applied} applied, {} pending, checksums match, no dirty migration, {schema}",
                v.status.pending()
            );
        } else {
            let n = v.problems.iter().filter(|p| p.is_blocking(true)).count();
            eprintln!(
                "NO-GO: {n} problem{} (see above)",
                if n == 1 { "" } else { "s" }
            );
        }
    }
    if ok {
        Outcome::Success
    } else {
        Outcome::Failure
    }
}

async fn repair(m: &Migrator, version: Option<i64>) -> Outcome {
    let r = match version {
        Some(v) => m.repair(v).await,
        None => m.repair_schema().await,
    };
    match r {
        Ok(Repair::ClearedDirty { version, name }) => println!(
            "repaired version {version} ({name}): removed its dirty row; the next \
             `gantry migrate up` runs it again"
        ),
        Ok(Repair::Rechecksummed {
            version,
            name,
            file,
            old,
            new,
        }) => println!(
            "repaired version {version} ({name}): recorded the checksum of {} (was {}, now {}); \
             the migration did not run again",
            file.display(),
            short(&old),
            short(&new)
        ),
        Ok(Repair::NothingToRepair { version, reason }) => {
            println!("nothing to repair for version {version}: {reason}")
        }
        Ok(Repair::SchemaRecorded { hash, accepted }) => {
            println!(
                "recorded the live schema of {} as schema hash {}",
                m.database(),
                short(&hash)
            );
            if let Some(d) = accepted {
                println!("accepted changes:");
                for l in d.diff_lines() {
                    println!("    {l}");
                }
            }
        }
        Err(e) => return fail(&e),
    }
    Outcome::Success
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}
