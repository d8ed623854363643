//! A service with `replicas = N` becomes N units `NAME.1` … `NAME.N`: names, ports, environment, probes, upstreams, the dependencies of its dependents, and selection by the service's name.

use gantry_plan::{Plan, Selection, build, select};
use gantry_spec::{Condition, ProbeKind, Source, Spec, decode};

fn plan(text: &str) -> (Spec, Plan) {
    let source = Source::new("gantry.toml", text);
    let loaded = decode(&source, &|_| None);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let (plan, diags) = build(&loaded.spec, &source, &Default::default());
    assert!(
        !diags.iter().any(|d| d.is_error()),
        "{:?}",
        diags.iter().map(|d| d.render(&source)).collect::<Vec<_>>()
    );
    (loaded.spec, plan)
}

const STACK: &str = r#"
[services.db]
command = "db"
readiness = { tcp = "127.0.0.1:5432" }

[services.api]
command = ["api", "--port", "${PORT}", "--id", "${REPLICA}"]
replicas = 3
replica_ports = "9100-9199"
depends_on = ["db"]
env = { URL = "http://127.0.0.1:${PORT}", MODE = "fast" }
readiness = { http = "http://127.0.0.1:${PORT}/health" }
liveness = { tcp = "127.0.0.1:${PORT}" }

[services.web]
command = "web"
depends_on = { api = "ready" }

[services.worker]
command = "worker ${REPLICA}"
replicas = 2
upstream = "unix-less:1"
"#;

fn names(plan: &Plan, units: &[usize]) -> Vec<String> {
    units
        .iter()
        .map(|&i| plan.units[i].name().to_string())
        .collect()
}

fn env<'a>(plan: &'a Plan, unit: &str, var: &str) -> Option<&'a str> {
    let u = &plan.units[plan.index(unit).unwrap()];
    u.service
        .env
        .iter()
        .find(|e| e.name.value == var)
        .map(|e| e.value.value.as_str())
}

#[test]
fn instances_are_named_and_numbered_with_their_own_ports() {
    let (_, p) = plan(STACK);
    let all: Vec<&str> = p.units.iter().map(|u| u.name()).collect();
    assert_eq!(
        all,
        [
            "db", "api.1", "api.2", "api.3", "web", "worker.1", "worker.2"
        ]
    );
    assert_eq!(p.index("api"), None);
    let api = p.replica_group("api").expect("group");
    assert_eq!(names(&p, &api.units), ["api.1", "api.2", "api.3"]);
    assert_eq!(
        names(&p, &p.units_of("api").unwrap()),
        ["api.1", "api.2", "api.3"]
    );
    assert_eq!(names(&p, &p.units_of("api.2").unwrap()), ["api.2"]);
    assert_eq!(p.units_of("nope"), None);

    let u2 = &p.units[p.index("api.2").unwrap()];
    assert_eq!(
        u2.service.command.as_ref().unwrap().value,
        ["api", "--port", "9101", "--id", "2"]
    );
    let inst = u2.service.instance.as_ref().unwrap();
    assert_eq!(
        (inst.service.as_str(), inst.replica, inst.port),
        ("api", 2, Some(9101))
    );
    assert_eq!(u2.service.base_name(), "api");
    assert_eq!(u2.service.ports, [9101]);
    assert_eq!(env(&p, "api.2", "PORT"), Some("9101"));
    assert_eq!(env(&p, "api.2", "REPLICA"), Some("2"));
    assert_eq!(env(&p, "api.2", "URL"), Some("http://127.0.0.1:9101"));
    assert_eq!(env(&p, "api.2", "MODE"), Some("fast"));
    match &u2.service.readiness.as_ref().unwrap().kind {
        ProbeKind::Http { url, .. } => assert_eq!(url, "http://127.0.0.1:9101/health"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        u2.service.liveness.as_ref().unwrap().kind,
        ProbeKind::Tcp("127.0.0.1:9101".into())
    );
    // Without `upstream`, an instance with a port is reached on loopback at that port.
    assert_eq!(
        p.upstreams("api"),
        [
            ("api.1", Some("127.0.0.1:9100")),
            ("api.2", Some("127.0.0.1:9101")),
            ("api.3", Some("127.0.0.1:9102"))
        ]
    );
    // Without replica_ports: REPLICA only, the upstream as written.
    assert_eq!(env(&p, "worker.2", "PORT"), None);
    assert_eq!(env(&p, "worker.2", "REPLICA"), Some("2"));
    assert_eq!(
        p.units[p.index("worker.2").unwrap()]
            .service
            .command
            .as_ref()
            .unwrap()
            .value,
        ["worker", "2"]
    );
    assert_eq!(p.upstreams("web"), [("web", None)]);
}

#[test]
fn dependents_wait_for_every_instance() {
    let (_, p) = plan(STACK);
    let web = &p.units[p.index("web").unwrap()];
    let deps: Vec<(String, Condition)> = web
        .deps
        .iter()
        .map(|d| (p.units[d.unit].name().to_string(), d.condition))
        .collect();
    assert_eq!(
        deps,
        [
            ("api.1".to_string(), Condition::Ready),
            ("api.2".to_string(), Condition::Ready),
            ("api.3".to_string(), Condition::Ready)
        ]
    );
    // Each instance has the service's own dependencies, and they all start in one wave.
    for name in ["api.1", "api.2", "api.3"] {
        let u = &p.units[p.index(name).unwrap()];
        assert_eq!(
            names(&p, &u.deps.iter().map(|d| d.unit).collect::<Vec<_>>()),
            ["db"]
        );
        assert_eq!(u.wave, 1);
        assert!(u.dependents.contains(&p.index("web").unwrap()));
    }
    assert_eq!(web.wave, 2);
    // The engine sees one unit per instance.
    let configs = p.unit_configs();
    assert!(configs.iter().any(|c| c.name == "api.3"));
}

#[test]
fn selection_by_service_name_takes_every_instance() {
    let (spec, p) = plan(STACK);
    let only = |names: &[&str]| Selection {
        only: names.iter().map(|s| s.to_string()).collect(),
        ..Selection::default()
    };
    // Everything: the plan as it is (every unit, the same order and groups).
    let s = select(p.clone(), &spec, &Selection::default()).unwrap();
    assert_eq!(
        names(&s, &(0..s.units.len()).collect::<Vec<_>>()),
        names(&p, &(0..p.units.len()).collect::<Vec<_>>())
    );
    assert_eq!(s.waves, p.waves);
    assert_eq!(
        names(&s, &s.replica_group("api").unwrap().units),
        ["api.1", "api.2", "api.3"]
    );
    let s = select(p.clone(), &spec, &only(&["web"])).unwrap();
    let all: Vec<&str> = s.units.iter().map(|u| u.name()).collect();
    assert_eq!(all, ["db", "api.1", "api.2", "api.3", "web"]);
    assert_eq!(
        names(&s, &s.replica_group("api").unwrap().units),
        ["api.1", "api.2", "api.3"]
    );
    assert!(s.replica_group("worker").is_none());
    let s = select(p.clone(), &spec, &only(&["api.2"])).unwrap();
    let all: Vec<&str> = s.units.iter().map(|u| u.name()).collect();
    assert_eq!(all, ["db", "api.2"]);
    let err = select(
        p,
        &spec,
        &Selection {
            except: vec!["api".into()],
            ..Selection::default()
        },
    )
    .unwrap_err();
    assert!(err.contains("`web` needs `api.1`"), "{err}");
}

#[test]
fn the_port_allocation_is_deterministic() {
    let (_, a) = plan(STACK);
    let (_, b) = plan(STACK);
    let ports =
        |p: &Plan| -> Vec<Vec<u16>> { p.units.iter().map(|u| u.service.ports.clone()).collect() };
    assert_eq!(ports(&a), ports(&b));
}

#[test]
fn the_text_graph_counts_services_and_lists_instances() {
    let (_, p) = plan(STACK);
    let text = gantry_plan::render_text(&p);
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("4 services (7 units with instances)"),
        "{text}"
    );
    assert!(text.contains("api.1, api.2, api.3"), "{text}");
}

#[test]
fn a_dependent_waits_for_every_instance_but_is_not_bounced_by_one() {
    let (_, plan) = plan(STACK);
    let configs = plan.unit_configs();
    let web = &configs[plan.index("web").unwrap()];
    let api: Vec<usize> = ["api.1", "api.2", "api.3"]
        .iter()
        .map(|n| plan.index(n).unwrap())
        .collect();
    // Every instance gates the dependent's start ...
    let deps: Vec<usize> = web.deps.iter().map(|d| d.unit.0).collect();
    assert_eq!(deps, api);
    // ... as a soft dependency, so a rolling restart of one instance leaves it running,
    assert!(web.deps.iter().all(|d| !d.required));
    // while the plan keeps the dependency hard for selection (`--only web` takes api).
    let u = &plan.units[plan.index("web").unwrap()];
    assert!(u.deps.iter().all(|d| d.required && d.instance));
    // An unreplicated dependency stays hard.
    let api1 = &configs[api[0]];
    assert!(api1.deps.iter().all(|d| d.required));
}
