//! Unit tests of the compose mapping: each key's translation and the notes it leaves.

use super::*;

fn run(yaml: &str) -> Imported {
    import(yaml, &Options::default()).unwrap()
}

/// The generated file decodes in gantry-spec without errors.
fn checks(imported: &Imported) -> String {
    let text = imported.to_toml("compose.yaml", "docker compose");
    let loaded = gantry_spec::decode(
        &gantry_spec::Source::new("gantry.toml", text.clone()),
        &|_| None,
    );
    let source = gantry_spec::Source::new("gantry.toml", text.clone());
    let (_, plan) = gantry_plan::build(&loaded.spec, &source, &Default::default());
    let errors: Vec<String> = loaded
        .diagnostics
        .iter()
        .chain(&plan)
        .filter(|d| d.is_error())
        .map(|d| format!("{d:?}"))
        .collect();
    assert!(errors.is_empty(), "{text}\n{errors:#?}");
    text
}

fn svc<'a>(i: &'a Imported, name: &str) -> &'a Service {
    i.file.services.iter().find(|s| s.name == name).unwrap()
}

#[test]
fn conditions_map_to_gantry_conditions() {
    let i = run(r#"
services:
  db: {command: "sleep 100", healthcheck: {test: "true"}}
  migrate: {command: "true"}
  cache: {command: "sleep 100"}
  api:
    command: sleep 100
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
      cache: {condition: service_started, required: false}
  worker:
    command: sleep 100
    depends_on: [db, cache]
"#);
    let api = svc(&i, "api");
    let conds: Vec<_> = api
        .depends_on
        .iter()
        .map(|d| (d.name.as_str(), d.condition, d.required))
        .collect();
    assert_eq!(
        conds,
        [
            ("db", "ready", true),
            ("migrate", "completed", true),
            ("cache", "started", false)
        ]
    );
    assert_eq!(svc(&i, "migrate").kind, Some("task"));
    // The short form means "started" in compose.
    assert!(
        svc(&i, "worker")
            .depends_on
            .iter()
            .all(|d| d.condition == "started")
    );
    let text = checks(&i);
    assert!(text.contains("depends_on = { db = \"ready\", migrate = \"completed\", cache = { condition = \"started\", required = false } }"), "{text}");
}

#[test]
fn restart_policies() {
    let i = run(r#"
services:
  a: {command: x, restart: "no"}
  b: {command: x, restart: always}
  c: {command: x, restart: on-failure}
  d: {command: x, restart: "on-failure:5"}
  e: {command: x, restart: unless-stopped}
  f: {command: x, restart: sometimes}
  g: {command: x, deploy: {restart_policy: {condition: on-failure, max_attempts: 2}}}
  h: {command: x, restart: "no", deploy: {restart_policy: {condition: on-failure, max_attempts: 3}}}
"#);
    let r: Vec<_> = i
        .file
        .services
        .iter()
        .map(|s| (s.restart, s.start_limit_burst))
        .collect();
    assert_eq!(
        r,
        [
            (None, None),
            (Some("always"), None),
            (Some("on-failure"), None),
            (Some("on-failure"), Some(5)),
            (Some("always"), None),
            (None, None),
            (Some("on-failure"), Some(2)),
            // deploy.restart_policy wins over `restart`, as in compose, and the note says so.
            (Some("on-failure"), Some(3)),
        ]
    );
    assert!(i.notes.iter().any(|n| {
        n.line == Some(10)
            && n.message
                .contains("restart: `no` is overridden by deploy.restart_policy (`on-failure:3`)")
    }));
    assert!(
        i.notes
            .iter()
            .any(|n| n.message.contains("sometimes") && n.line == Some(8))
    );
    checks(&i);
}

#[test]
fn healthcheck_forms() {
    let i = run(r#"
services:
  shell: {command: x, healthcheck: {test: ["CMD-SHELL", "pg_isready -U $$USER"], interval: 1m30s, timeout: 5s, retries: 7, start_period: 30s}}
  cmd: {command: x, healthcheck: {test: ["CMD", "curl", "-f", "http://localhost/"]}}
  str: {command: x, healthcheck: {test: "exit 0"}}
  none: {command: x, healthcheck: {test: ["NONE"]}}
  off: {command: x, healthcheck: {test: "true", disable: true}}
  boxed: {image: "redis:7", healthcheck: {test: ["CMD", "redis-cli", "ping"], interval: 2s}}
"#);
    let p = svc(&i, "shell").readiness.clone().unwrap();
    assert_eq!(
        p.exec,
        Some(Cmd::Args(vec![
            "sh".into(),
            "-c".into(),
            "pg_isready -U $$USER".into()
        ]))
    );
    assert_eq!(
        (
            p.period.as_deref(),
            p.timeout.as_deref(),
            p.failure_threshold
        ),
        (Some("90s"), Some("5s"), Some(7))
    );
    assert_eq!(svc(&i, "shell").start_timeout.as_deref(), Some("90s"));
    let p = svc(&i, "cmd").readiness.clone().unwrap();
    assert_eq!(
        p.exec,
        Some(Cmd::Args(vec![
            "curl".into(),
            "-f".into(),
            "http://localhost/".into()
        ]))
    );
    assert_eq!(
        (
            p.period.as_deref(),
            p.timeout.as_deref(),
            p.failure_threshold
        ),
        (Some("30s"), Some("30s"), Some(3))
    );
    assert!(svc(&i, "str").readiness.is_some());
    assert!(svc(&i, "none").readiness.is_none());
    assert!(svc(&i, "off").readiness.is_none());
    let p = svc(&i, "boxed").readiness.clone().unwrap();
    assert_eq!(
        p.exec,
        Some(Cmd::Args(
            ["docker", "exec", "boxed", "redis-cli", "ping"]
                .map(String::from)
                .to_vec()
        ))
    );
    checks(&i);
}

#[test]
fn environment_and_env_file_forms() {
    let i = run(r#"
services:
  a:
    command: x
    environment: {A: 1, B: null, C: "${HOME:-/root}"}
    env_file: .env
  b:
    command: x
    environment: ["A=1", "B", "C=${X-d}"]
    env_file: [a.env, {path: b.env, required: false}]
"#);
    assert_eq!(
        svc(&i, "a").env,
        [
            ("A".to_string(), "1".to_string()),
            ("B".into(), "${B}".into()),
            ("C".into(), "${HOME:-/root}".into())
        ]
    );
    assert_eq!(svc(&i, "a").env_file, [".env"]);
    assert_eq!(
        svc(&i, "b").env[2],
        ("C".to_string(), "${X:-d}".to_string())
    );
    assert_eq!(svc(&i, "b").env_file, ["a.env", "b.env"]);
    assert!(
        i.notes
            .iter()
            .any(|n| n.message.contains("required: false"))
    );
    assert!(i.notes.iter().any(|n| n.message.contains("${X-d}")));
}

#[test]
fn images_become_docker_run() {
    let i = run(r#"
services:
  db:
    image: postgres:16
    environment: {POSTGRES_PASSWORD: secret}
    ports: ["127.0.0.1:5432:5432", "9000-9001:9000-9001/udp"]
    volumes: ["pgdata:/var/lib/postgresql/data", {type: bind, source: ./init, target: /docker-entrypoint-initdb.d, read_only: true}]
    entrypoint: ["docker-entrypoint.sh", "-v"]
    command: postgres -c fsync=off
    stop_grace_period: 1m
    stop_signal: SIGINT
volumes: {pgdata: {}}
"#);
    let db = svc(&i, "db");
    let Some(Cmd::Args(args)) = &db.command else {
        panic!()
    };
    assert_eq!(
        args.join(" "),
        "docker run --rm --name db -p 127.0.0.1:5432:5432 -p 9000-9001:9000-9001/udp -e POSTGRES_PASSWORD \
-v pgdata:/var/lib/postgresql/data -v ./init:/docker-entrypoint-initdb.d:ro --stop-signal SIGINT \
--entrypoint docker-entrypoint.sh postgres:16 -v postgres -c fsync=off"
    );
    assert_eq!(db.ports, [5432]);
    assert_eq!(db.stop_timeout.as_deref(), Some("1m"));
    assert_eq!(db.stop_signal, Some("SIGINT"));
    assert!(
        i.notes
            .iter()
            .any(|n| n.message.contains("top-level `volumes`"))
    );
    checks(&i);
}

#[test]
fn profiles_replicas_names_and_unknowns() {
    let i = run(r#"
services:
  web_app: {command: x, ports: ["8080:80"]}
  "debug tool": {command: x, profiles: [debug]}
  worker: {command: x, deploy: {replicas: 3}, ports: ["9000"]}
  builder: {build: .}
  orphan: {command: x, depends_on: [ghost, builder]}
  a: {command: x, depends_on: [b]}
  b: {command: x, depends_on: [a]}
  w: {command: x, networks: [front], labels: {a: b}}
"#);
    assert_eq!(svc(&i, "web_app").ports, [8080]);
    assert_eq!(svc(&i, "debug-tool").source_name, "debug tool");
    assert_eq!(svc(&i, "worker").replicas, Some(3));
    assert!(svc(&i, "worker").ports.is_empty());
    assert!(i.file.services.iter().all(|s| s.name != "builder"));
    assert!(svc(&i, "orphan").depends_on.is_empty());
    assert_eq!(
        svc(&i, "a").depends_on.len() + svc(&i, "b").depends_on.len(),
        1
    );
    let msgs: Vec<&str> = i.notes.iter().map(|n| n.message.as_str()).collect();
    for want in [
        "renamed",
        "ghost",
        "cycle a -> b -> a",
        "`networks` not carried over",
        "`labels` not carried over",
        "gantry does not build",
    ] {
        assert!(msgs.iter().any(|m| m.contains(want)), "{want}: {msgs:#?}");
    }
    let debug = i.file.profiles.iter().find(|(p, _)| p == "debug").unwrap();
    assert!(
        debug.1.contains(&"debug-tool".to_string()) && debug.1.contains(&"web_app".to_string())
    );
    let default = i
        .file
        .profiles
        .iter()
        .find(|(p, _)| p == "default")
        .unwrap();
    assert!(!default.1.contains(&"debug-tool".to_string()));
    checks(&i);
}

#[test]
fn malformed_inputs_are_errors_or_notes_never_panics() {
    for bad in [
        "services: [a, b]",
        "- 1\n- 2",
        "services:\n  a: [1\n",
        "x: 1",
    ] {
        let e = import(bad, &Options::default()).unwrap_err();
        assert!(e.line >= 1 && !e.message.is_empty(), "{bad}: {e:?}");
    }
    // Wrong types inside a service are notes.
    let i = run(
        "services:\n  a: 5\n  b: {command: {x: 1}, ports: 5, environment: 7, depends_on: 3, healthcheck: [1], restart: [1]}\n  c: {command: x, healthcheck: {test: [\"CMD\"], interval: soon, retries: -1}}\n",
    );
    assert!(i.notes.len() >= 5, "{:#?}", i.notes);
    checks(&i);
}

#[test]
fn image_services_clean_up_their_container_and_share_networks_by_container() {
    let i = run(r#"
services:
  vpn: {image: "wg:1"}
  app: {image: "app:1", network_mode: "service:vpn", depends_on: [vpn], deploy: {replicas: 2}}
"#);
    let Some(Cmd::Args(cleanup)) = &svc(&i, "vpn").cleanup else {
        panic!()
    };
    assert_eq!(cleanup[2], "docker rm -f vpn >/dev/null 2>&1 || true");
    let Some(Cmd::Args(args)) = &svc(&i, "app").command else {
        panic!()
    };
    let joined = args.join(" ");
    assert!(
        joined.contains("--name app-${REPLICA}") && joined.contains("--network container:vpn"),
        "{joined}"
    );
    assert!(
        i.notes
            .iter()
            .any(|n| n.message.contains("network_mode service:vpn"))
    );
    checks(&i);
}

#[test]
fn limits_go_to_gantry_for_host_commands_and_to_docker_for_images() {
    let i = run(r#"
services:
  host: {command: x, deploy: {resources: {limits: {memory: 512M, cpus: "0.5"}, reservations: {memory: 1g}}}}
  old: {command: x, mem_limit: 1536k, cpus: 2}
  tiny: {command: x, mem_limit: 100k, cpus: 5000}
  boxed: {image: "a:1", mem_limit: 1g, cpus: 1.5}
  fraction: {command: x, deploy: {resources: {limits: {memory: 1.5g}}}}
  half: {command: x, mem_limit: 0.5m}
"#);
    // Docker reads a fraction (`1.5g`) too.
    assert_eq!(svc(&i, "fraction").memory_max.as_deref(), Some("1536MiB"));
    assert!(svc(&i, "half").memory_max.is_none());
    assert_eq!(
        (
            svc(&i, "host").memory_max.as_deref(),
            svc(&i, "host").cpu_max.as_deref()
        ),
        (Some("512MiB"), Some("0.5"))
    );
    assert_eq!(
        (
            svc(&i, "old").memory_max.as_deref(),
            svc(&i, "old").cpu_max.as_deref()
        ),
        (Some("1536KiB"), Some("2"))
    );
    assert_eq!(
        (
            svc(&i, "tiny").memory_max.as_deref(),
            svc(&i, "tiny").cpu_max.as_deref()
        ),
        (None, None)
    );
    let Some(Cmd::Args(args)) = &svc(&i, "boxed").command else {
        panic!()
    };
    assert!(
        args.join(" ").contains("--memory 1g --cpus 1.5 a:1"),
        "{args:?}"
    );
    assert!(svc(&i, "boxed").memory_max.is_none());
    assert!(
        i.notes
            .iter()
            .any(|n| n.message.contains("deploy.resources.reservations"))
    );
    assert_eq!(
        i.notes
            .iter()
            .filter(|n| n.service.as_deref() == Some("tiny"))
            .count(),
        2
    );
    checks(&i);
}

#[test]
fn extends_of_the_same_file() {
    let i = run(r#"
services:
  base: {command: "./app", environment: {A: "1"}, restart: always, stop_grace_period: 3s}
  web:
    extends: base
    environment: {B: "2"}
  worker:
    extends: {service: web}
    command: "./app work"
  far: {extends: {service: base, file: other.yaml}, command: x}
  lost: {extends: nobody, command: x}
  loop1: {extends: loop2, command: x}
  loop2: {extends: loop1, command: x}
"#);
    let web = svc(&i, "web");
    assert_eq!(web.command, Some(Cmd::Line("./app".into())));
    assert_eq!(web.env, [("B".to_string(), "2".to_string())]);
    assert_eq!(
        (web.restart, web.stop_timeout.as_deref()),
        (Some("always"), Some("3s"))
    );
    let worker = svc(&i, "worker");
    assert_eq!(worker.command, Some(Cmd::Line("./app work".into())));
    assert_eq!(worker.restart, Some("always"));
    let msgs: Vec<&str> = i.notes.iter().map(|n| n.message.as_str()).collect();
    for want in [
        "environment replaced",
        "another file",
        "not a service of the file",
        "in a loop",
    ] {
        assert!(msgs.iter().any(|m| m.contains(want)), "{want}: {msgs:#?}");
    }
    checks(&i);
}
