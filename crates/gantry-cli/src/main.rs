//! The `gantry` binary: parses arguments, dispatches to a command, maps outcomes to exit codes.
//!
//! Exit codes (one place, here): 0 success / GO, 1 failure / NO-GO, 2 usage or config error.

mod analyze;
mod check;
mod client;
mod cluster_stage;
mod ctl;
mod export;
mod flags;
mod flags_check;
mod graph;
mod import;
mod incident;
mod init;
mod load;
mod logs;
mod migrate;
mod rollout;
mod runbook;
mod schema_stage;
mod up;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "gantry",
    version,
    about = "A resilient boot orchestrator and runtime guard",
    propagate_version = true
)]
pub struct Cli {
    /// The stack file.
    #[arg(
        short = 'f',
        long = "file",
        global = true,
        default_value = "gantry.toml"
    )]
    pub file: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

/// `gantry flag …`.
#[derive(Debug, Subcommand)]
pub enum FlagAction {
    /// Every flag, as `gantry flags` lists them.
    List {
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A flag's current value, variant and reason, and its override (who, why, until).
    Get {
        name: String,
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Override a flag's value (JSON when VALUE parses as JSON, a string otherwise); it survives
    /// restarts of gantry and, with --expires, reverts by itself.
    Set {
        name: String,
        value: String,
        /// Why: kept in the audit log with who asked (`gantry audit`).
        #[arg(long)]
        reason: Option<String>,
        /// Revert after this long: 90s, 30m, 2h, 1d.
        #[arg(long)]
        expires: Option<String>,
    },
    /// Remove a flag's override: it evaluates from its definition again.
    Unset {
        name: String,
        /// Why: kept in the audit log with who asked (`gantry audit`).
        #[arg(long)]
        reason: Option<String>,
    },
}

/// `gantry runbook …`.
#[derive(Debug, Subcommand)]
pub enum RunbookAction {
    /// The runbooks of the stack file.
    List {
        /// Print them (with the run under way and the last runs) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A runbook's steps and its last runs.
    Show { name: String },
    /// Run a runbook, step by step, and follow it to its end (exit 1 when a step fails).
    Run {
        name: String,
        /// Say what each step would do, and what it would find now; do nothing.
        #[arg(long)]
        dry_run: bool,
        /// Why: kept in the audit log with who asked (`gantry audit`).
        #[arg(long)]
        reason: Option<String>,
    },
    /// The run under way, else the last one.
    Status {
        #[arg(long)]
        json: bool,
    },
}

/// `on` or `off` for a kill switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

/// `gantry ingress …`.
#[derive(Debug, Subcommand)]
pub enum IngressAction {
    /// Routes, instances, the mode and the golden signals (the default).
    Status,
    /// Switch the traffic mode; takes effect for the next request, in-flight ones finish.
    Mode {
        /// normal, write_drain (writes get 503, reads pass), brownout (routes marked
        /// shed_in_brownout get 503), emergency (a maintenance page except health paths).
        #[arg(value_parser = ["normal", "write_drain", "brownout", "emergency"])]
        mode: String,
        /// In brownout, the share (0-100) of the other routes' requests shed too.
        #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100))]
        shed: Option<u8>,
        /// Why (kept with the event).
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum IncidentAction {
    /// Every incident, newest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One incident and its timeline: alerts, state changes, operator actions.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// A post-incident review draft in Markdown: summary, impact, detection, timeline, actions and who took them, follow-ups.
    Postmortem { id: i64 },
    /// Open an incident by hand (one that no alert opened); it is resolved by hand only.
    Open {
        /// P0, P1 or P2.
        #[arg(long, value_parser = ["P0", "P1", "P2"])]
        severity: String,
        #[arg(long)]
        title: String,
        /// Why: kept in the audit log with who asked (`gantry audit`).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Acknowledge an incident: someone is on it (on its timeline, with who).
    Ack {
        id: i64,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resolve an incident.
    Resolve {
        id: i64,
        #[arg(long)]
        reason: Option<String>,
    },
}

/// The output options every `gantry import` format shares.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The file to translate.
    pub source: PathBuf,
    /// Where to write the gantry.toml (default: the -f file, ./gantry.toml).
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Overwrite the output if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Subcommand, Debug)]
pub enum ImportWhat {
    /// A docker compose file: commands run on the host, images become `docker run --rm` commands; depends_on conditions, healthchecks (readiness probes), restart, environment, env_file, profiles, ports, stop settings, deploy.replicas.
    Compose(ImportArgs),
    /// A Procfile (foreman, honcho, Heroku): one service per `name: command` line; a `.env` next to it becomes `env_file`; PORT as foreman gives it.
    Procfile(ImportArgs),
    /// A process-compose file: commands, depends_on conditions, readiness/liveness probes, availability, ready_log_line, replicas, shutdown, disabled.
    ProcessCompose(ImportArgs),
}

#[derive(Subcommand, Debug)]
pub enum ExportWhat {
    /// Kubernetes manifests (YAML on stdout): Deployments, StatefulSets (a service with `data_dir`: its volume and a headless Service), Services, Jobs, init containers that wait for each dependency by its condition (started: its port; ready: its own readiness probe through `gantry probe --wait`; completed: its Job, through `kubectl wait` and a ServiceAccount that may only read it), probes, ConfigMaps, Secret references (never values), PriorityClasses; what does not translate is named on stderr.
    Kubernetes {
        /// Put every object in this namespace.
        #[arg(long)]
        namespace: Option<String>,
        /// A service's container image, NAME=IMAGE (repeat for each service).
        #[arg(long = "image-map", value_name = "NAME=IMAGE")]
        image_map: Vec<String>,
        /// The image of services --image-map does not name.
        #[arg(long)]
        image: Option<String>,
        /// An image with the gantry binary, for the init containers (`gantry wait`, `gantry probe`), store probes (`gantry probe`) and migrations.
        #[arg(long, default_value = "gantry:latest")]
        gantry_image: String,
        /// An image with kubectl, for the init containers that wait for a Job to complete (`kubectl wait`).
        #[arg(long, default_value = "registry.k8s.io/kubectl:v1.33.0")]
        kubectl_image: String,
    },
    /// Prometheus alerting rules (YAML) over gantry's /metrics: the default rules with this stack's critical services; rules over signals /metrics does not carry are named on stderr.
    PrometheusRules,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate the file: every problem at once, with file:line:column (exit 2 when invalid).
    Check {
        /// Print diagnostics as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the boot plan: start waves, layers and the critical path.
    Graph {
        #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
        format: GraphFormat,
    },
    /// Boot the stack: pre-checked, health-gated, in dependency order; supervise it until Ctrl-C (SIGHUP reloads the file, like `gantry reload`).
    Up {
        /// Run only the services of this profile (and what they need).
        #[arg(long)]
        profile: Option<String>,
        /// Run only these services (and what they need).
        #[arg(long, num_args = 1..)]
        only: Vec<String>,
        /// Leave these services out.
        #[arg(long, num_args = 1..)]
        except: Vec<String>,
        /// Print the event stream as JSON lines.
        #[arg(long)]
        json: bool,
        /// Run in the background; return once the boot is decided (0 GO or degraded, 1 NO-GO).
        #[arg(long, short = 'd')]
        detach: bool,
        /// Skip the pre-flight (secrets are still resolved; required ones still fail closed).
        #[arg(long)]
        skip_preflight: bool,
    },
    /// The GO/NO-GO pre-flight alone: config and secrets, rehearsal, stores, coverage (exit 1 on NO-GO).
    Preflight {
        #[arg(long)]
        json: bool,
    },
    /// Open missions: what failed, its output, what must pass, what to do next.
    Missions {
        #[arg(long)]
        json: bool,
        /// Include resolved missions.
        #[arg(long)]
        all: bool,
    },
    /// Show every service of the running instance: state, pid, readiness, restarts, uptime, last error.
    Status {
        #[arg(long)]
        json: bool,
        /// Keep refreshing as things change.
        #[arg(long, short = 'w')]
        watch: bool,
    },
    /// Start a stopped service (its dependencies must be up).
    Start {
        name: String,
        /// Why: kept in the audit log with who asked (`gantry audit`).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Stop a service and what hard-depends on it.
    Stop {
        name: String,
        /// Why: kept in the audit log with who asked (`gantry audit`).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Disable a service: stop it (and what hard-depends on it) and keep it stopped, also across
    /// restarts of gantry, until `gantry enable`; status shows who disabled it and why.
    Disable {
        name: String,
        /// Why (required): shown by `gantry status` and kept in the audit log with who asked.
        #[arg(long)]
        reason: String,
    },
    /// Enable a disabled service: start it with its dependencies, each through its readiness gate.
    Enable {
        name: String,
        /// Why: kept in the audit log with who asked (`gantry audit`).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Quarantine a service: freeze its process tree for inspection (cgroup freezer, else
    /// SIGSTOP), take it out of the ingress and out of probes and restarts until `gantry release`.
    Quarantine {
        name: String,
        /// Why (required): shown by `gantry status` and kept in the audit log with who asked.
        #[arg(long)]
        reason: String,
    },
    /// Release a quarantined service: thaw it; its probes resume and it rejoins the ingress once ready.
    Release {
        name: String,
        /// Why: kept in the audit log with who asked (`gantry audit`).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Restart a service; what hard-depends on it restarts after it is ready again.
    Restart {
        name: String,
        /// Why: kept in the audit log with who asked (`gantry audit`).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Feature flags: key, value, variant, reason, owner, expiry, overrides (who, why, until)
    /// and the unknown keys clients asked for.
    Flags {
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// One flag: `gantry flag get|set|unset NAME`; `gantry flag list` is `gantry flags`.
    Flag {
        #[command(subcommand)]
        action: FlagAction,
    },
    /// Runbooks (`[runbooks.NAME]`): `list`, `show NAME`, `run NAME [--dry-run] --reason TEXT`,
    /// `status`. Every step is audited as `runbook:NAME`.
    Runbook {
        #[command(subcommand)]
        action: RunbookAction,
    },
    /// The `write_drain` kill switch: writes through the ingress get 503, reads pass.
    Drain {
        state: OnOff,
        /// Why: kept in the audit log with who asked (`gantry audit`).
        #[arg(long)]
        reason: Option<String>,
    },
    /// The `brownout` kill switch: routes marked shed_in_brownout get 503.
    Brownout {
        state: OnOff,
        /// With `on`: the share (0-100) of the other routes' requests shed too (the
        /// `brownout_shed_percent` flag); `off` clears it.
        #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100))]
        shed: Option<u8>,
        /// Why: kept in the audit log with who asked (`gantry audit`).
        #[arg(long)]
        reason: Option<String>,
    },
    /// The `emergency` kill switch: the ingress answers a maintenance page (health paths pass).
    Emergency {
        state: OnOff,
        /// Why: kept in the audit log with who asked (`gantry audit`).
        #[arg(long)]
        reason: Option<String>,
    },
    /// The `safe_mode` flag, delivered to services (OFREP, flags.json) for them to act on.
    SafeMode {
        state: OnOff,
        /// Why: kept in the audit log with who asked (`gantry audit`).
        #[arg(long)]
        reason: Option<String>,
    },
    /// The ingress: its routes, instances, traffic mode and golden signals; `gantry ingress
    /// mode write_drain` switches the mode.
    Ingress {
        #[command(subcommand)]
        action: Option<IngressAction>,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A canary rollout of a replicated, routed service: one instance gets the new release
    /// (the service's definition in gantry.toml as edited, or the running one with `--set-env`,
    /// `--command`), takes growing shares of the traffic through the ingress, each
    /// step analysed (error ratio, p99, a minimum of requests), then every instance is replaced
    /// one at a time; a breach sends all traffic back at once. `gantry rollout status NAME`.
    #[command(args_conflicts_with_subcommands = true)]
    Rollout {
        #[command(subcommand)]
        action: Option<rollout::RolloutAction>,
        #[command(flatten)]
        start: Box<rollout::Start>,
    },
    /// Roll a running service back to an earlier recorded release (default: the previous
    /// stable one), one instance at a time through the rolling machinery, its secrets resolved
    /// afresh; recorded as a new release that restores it. Never runs a down-migration.
    Rollback {
        name: String,
        /// The release to go back to (`gantry releases NAME` lists them).
        #[arg(long)]
        to: Option<i64>,
        /// Why: kept in the audit log with who asked (`gantry audit`).
        #[arg(long)]
        reason: Option<String>,
    },
    /// The service's numbered releases (definition with secrets masked, status: running,
    /// canary, stable, rolled_back, superseded, unverified; `restores N` for a rollback),
    /// newest first.
    Releases {
        name: String,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Re-read a secret from its source in the running instance (the old value stays masked) and restart the services that use it, in dependency order.
    Rotate {
        name: String,
        /// Why: kept in the audit log with who asked (`gantry audit`).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Load the stack file again in the running instance and restart only the services whose definition changed, in dependency order (SIGHUP does the same); an invalid file changes nothing (exit 1).
    Reload {
        /// The stack file of the running instance (default: -f).
        file: Option<PathBuf>,
        /// Why: kept in the audit log with who asked (`gantry audit`).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Stop the running instance (reverse layer and dependency order) and wait until it is gone.
    Down {
        /// How long to wait for it to be gone.
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        timeout: std::time::Duration,
        /// Why: kept in the audit log with who asked (`gantry audit`).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Export the stack for other tools: `prometheus-rules` (gantry's alert rules over its /metrics, for Prometheus and Alertmanager).
    Export {
        #[command(subcommand)]
        what: ExportWhat,
    },
    /// Translate a docker compose file, a Procfile or a process-compose file into a gantry.toml; what does not carry over is printed and kept as comments at the top of the file.
    Import {
        #[command(subcommand)]
        what: ImportWhat,
    },
    /// Run one probe once, outside any stack: `gantry probe tcp 127.0.0.1:5432`, `gantry probe http http://…/health`, `gantry probe postgres postgres://…` (also mysql, redis, amqp, nats, sqlite). Exit 0 when it passes, 1 when it fails (for scripts and container healthchecks); with `--wait 300s`, probes every `--period` until it passes or the wait is over (the exported init containers).
    Probe {
        /// tcp, http, postgres, mysql, redis, amqp, nats or sqlite.
        kind: String,
        /// host:port for tcp, a URL otherwise.
        target: String,
        /// The time one attempt may take.
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        timeout: std::time::Duration,
        /// Keep probing until it passes, for at most this long (an init container's wait); without it, one attempt.
        #[arg(long, value_parser = parse_duration)]
        wait: Option<std::time::Duration>,
        /// With --wait: the time from one attempt's start to the next.
        #[arg(long, default_value = "1s", value_parser = parse_duration)]
        period: std::time::Duration,
    },
    /// Incidents, opened by P0/P1 alerts or by hand: `list`, `show ID` (the timeline), `postmortem ID` (a Markdown draft), `open --severity P1 --title ...`, `ack ID`, `resolve ID`.
    Incident {
        #[command(subcommand)]
        action: IncidentAction,
    },
    /// The audit log: every mutation through the API or the CLI, who, why and what came of it.
    Audit {
        /// Only what happened in this window: 90s, 30m, 1h, 2d.
        #[arg(long, value_parser = parse_duration)]
        since: Option<std::time::Duration>,
        /// At most this many rows (newest first).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Wait until the stack is ready, or until targets such as tcp://host:port or http://host/path answer.
    Wait {
        /// tcp://host:port or http(s)://... ; none = the running instance's /health/ready.
        targets: Vec<String>,
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        timeout: std::time::Duration,
    },
    /// Where the last boot spent its time: critical chain, per-service times, blame, comparison, SVG waterfall.
    Analyze {
        /// `blame`: every service, slowest to get ready first.
        #[arg(value_parser = ["blame"])]
        view: Option<String>,
        #[arg(long, value_enum, default_value_t = analyze::AnalyzeFormat::Text)]
        format: analyze::AnalyzeFormat,
        /// Compare with the previous decided boot; regressions are marked `!`.
        #[arg(long)]
        compare: bool,
    },
    /// Print services' recorded output, merged by time (works whether or not gantry runs).
    Logs {
        /// Services to show (default: all).
        names: Vec<String>,
        /// Keep printing new lines until Ctrl-C (`-F`: `-f` is the global --file).
        #[arg(short = 'F', long)]
        follow: bool,
        /// Only lines newer than this (`30s`, `5m`, `2h`).
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        /// Only this stream.
        #[arg(long, value_parser = ["out", "err"])]
        stream: Option<String>,
        /// Start each line with the time it was recorded (RFC 3339, UTC).
        #[arg(short = 't', long)]
        timestamps: bool,
    },
    /// Write a commented starter gantry.toml.
    Init {
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Apply, revert, check and repair the SQL migrations of a `kind = "migrate"` service.
    Migrate(migrate::MigrateArgs),
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum GraphFormat {
    Text,
    Dot,
    Mermaid,
    Json,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    gantry_spec::duration::parse_duration(s)
}

/// Writes to stdout; a closed pipe (`gantry graph | head`) ends the output quietly
/// instead of panicking.
pub fn emit(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if out
        .write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

/// What a command decided; mapped to the process exit code in `main`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Usage,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Up {
            profile,
            only,
            except,
            detach: true,
            ..
        } => {
            let mut args = Vec::new();
            if let Some(p) = profile {
                args.extend(["--profile".to_string(), p.clone()]);
            }
            for (flag, names) in [("--only", only), ("--except", except)] {
                if !names.is_empty() {
                    args.push(flag.to_string());
                    args.extend(names.iter().cloned());
                }
            }
            ctl::detach(&cli.file, &args)
        }
        Command::Analyze {
            view,
            format,
            compare,
        } => analyze::run(&cli.file, *format, *compare, view.is_some()),
        Command::Logs {
            names,
            follow,
            since,
            stream,
            timestamps,
        } => logs::run(
            &cli.file,
            names,
            logs::Show {
                follow: *follow,
                since: since.as_deref(),
                stream: stream.clone(),
                timestamps: *timestamps,
            },
        ),
        Command::Preflight { json } => up::preflight(&cli.file, *json),
        Command::Missions { json, all } => ctl::missions(&cli.file, *json, *all),
        Command::Migrate(args) => migrate::run(&cli.file, args.clone()),
        Command::Status { json, watch } => ctl::status(&cli.file, *json, *watch),
        Command::Start { name, reason } => {
            ctl::service_action(&cli.file, "start", name, reason.as_deref())
        }
        Command::Stop { name, reason } => {
            ctl::service_action(&cli.file, "stop", name, reason.as_deref())
        }
        Command::Restart { name, reason } => {
            ctl::service_action(&cli.file, "restart", name, reason.as_deref())
        }
        Command::Disable { name, reason } => {
            ctl::service_action(&cli.file, "disable", name, Some(reason.as_str()))
        }
        Command::Enable { name, reason } => {
            ctl::service_action(&cli.file, "enable", name, reason.as_deref())
        }
        Command::Quarantine { name, reason } => {
            ctl::service_action(&cli.file, "quarantine", name, Some(reason.as_str()))
        }
        Command::Release { name, reason } => {
            ctl::service_action(&cli.file, "release", name, reason.as_deref())
        }
        Command::Rotate { name, reason } => ctl::rotate(&cli.file, name, reason.as_deref()),
        Command::Releases { name, json } => rollout::releases(&cli.file, name, *json),
        Command::Rollback { name, to, reason } => {
            rollout::rollback(&cli.file, name, *to, reason.as_deref())
        }
        Command::Rollout { action, start } => match action {
            Some(a) => rollout::action(&cli.file, a),
            None => rollout::start(&cli.file, start),
        },
        Command::Incident { action } => match action {
            IncidentAction::List { json } => incident::list(&cli.file, *json),
            IncidentAction::Show { id, json } => incident::show(&cli.file, *id, *json),
            IncidentAction::Postmortem { id } => incident::postmortem(&cli.file, *id),
            IncidentAction::Open {
                severity,
                title,
                reason,
            } => incident::open(&cli.file, severity, title, reason.as_deref()),
            IncidentAction::Ack { id, reason } => {
                incident::act(&cli.file, *id, "ack", reason.as_deref())
            }
            IncidentAction::Resolve { id, reason } => {
                incident::act(&cli.file, *id, "resolve", reason.as_deref())
            }
        },
        Command::Export { what } => match what {
            ExportWhat::PrometheusRules => export::prometheus_rules(&cli.file),
            ExportWhat::Kubernetes {
                namespace,
                image_map,
                image,
                gantry_image,
                kubectl_image,
            } => export::kubernetes(
                &cli.file,
                namespace.clone(),
                image_map,
                image.clone(),
                gantry_image.clone(),
                kubectl_image.clone(),
            ),
        },
        Command::Import { what } => {
            let (format, args) = match what {
                ImportWhat::Compose(a) => (import::Format::Compose, a),
                ImportWhat::Procfile(a) => (import::Format::Procfile, a),
                ImportWhat::ProcessCompose(a) => (import::Format::ProcessCompose, a),
            };
            let output = args.output.as_ref().unwrap_or(&cli.file);
            import::run(format, &args.source, output, args.force)
        }
        Command::Audit { since, limit, json } => ctl::audit(&cli.file, *since, *limit, *json),
        Command::Flags { json } => flags::list(&cli.file, *json),
        Command::Flag { action } => match action {
            FlagAction::List { json } => flags::list(&cli.file, *json),
            FlagAction::Get { name, json } => flags::get(&cli.file, name, *json),
            FlagAction::Set {
                name,
                value,
                reason,
                expires,
            } => flags::set(
                &cli.file,
                name,
                value,
                reason.as_deref(),
                expires.as_deref(),
            ),
            FlagAction::Unset { name, reason } => flags::unset(&cli.file, name, reason.as_deref()),
        },
        Command::Drain { state, reason } => flags::switch(
            &cli.file,
            "write_drain",
            *state == OnOff::On,
            reason.as_deref(),
        ),
        Command::Runbook { action } => match action {
            RunbookAction::List { json } => runbook::list(&cli.file, *json),
            RunbookAction::Show { name } => runbook::show(&cli.file, name),
            RunbookAction::Run {
                name,
                dry_run,
                reason,
            } => runbook::run(&cli.file, name, *dry_run, reason.as_deref()),
            RunbookAction::Status { json } => runbook::status(&cli.file, *json),
        },
        Command::Brownout {
            state,
            shed,
            reason,
        } => flags::brownout(&cli.file, *state == OnOff::On, *shed, reason.as_deref()),
        Command::Emergency { state, reason } => flags::switch(
            &cli.file,
            "emergency",
            *state == OnOff::On,
            reason.as_deref(),
        ),
        Command::SafeMode { state, reason } => flags::switch(
            &cli.file,
            "safe_mode",
            *state == OnOff::On,
            reason.as_deref(),
        ),
        Command::Ingress { action, json } => match action {
            None | Some(IngressAction::Status) => ctl::ingress_status(&cli.file, *json),
            Some(IngressAction::Mode { mode, shed, reason }) => {
                ctl::ingress_mode(&cli.file, mode.as_str(), *shed, reason.as_deref())
            }
        },
        Command::Reload { file, reason } => {
            ctl::reload(file.as_deref().unwrap_or(&cli.file), reason.as_deref())
        }
        Command::Down { timeout, reason } => ctl::down(&cli.file, *timeout, reason.as_deref()),
        Command::Wait { targets, timeout } => ctl::wait(&cli.file, targets, *timeout),
        Command::Probe {
            kind,
            target,
            timeout,
            wait,
            period,
        } => export::probe(kind, target, *timeout, *wait, *period),
        Command::Up {
            profile,
            only,
            except,
            json,
            detach: false,
            skip_preflight,
        } => {
            let selection = gantry_plan::Selection {
                profile: profile.clone(),
                only: only.clone(),
                except: except.clone(),
            };
            up::run(&cli.file, selection, *json, *skip_preflight)
        }
        Command::Check { json } => check::run(&cli.file, *json),
        Command::Graph { format } => graph::run(&cli.file, *format),
        Command::Init { force } => init::run(&cli.file, *force),
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "gantry", &mut buf);
            emit(&String::from_utf8_lossy(&buf));
            Ok(Outcome::Success)
        }
    };
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Failure) => ExitCode::from(1),
        Ok(Outcome::Usage) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
