//! The driver's construction: every service's definition and environment (OFREP and flag
//! variables added), the engine with the switches kept from earlier runs, the API, the ingress,
//! flags, alerts and the cluster side, wired before the first spawn.

use super::*;

/// The file's spec as the driver keeps it: without the services the plan holds as they
/// are (each non-instance unit's definition is a clone of the file's), so every definition
/// is kept once, not twice (1.7 KB per service). [`Driver::file_service`] finds them.
pub(super) fn lean_spec(mut spec: Spec, plan: &Plan) -> Arc<Spec> {
    let in_plan: std::collections::HashSet<&str> = plan
        .units
        .iter()
        .filter(|u| u.service.instance.is_none())
        .map(|u| u.service.name.value.as_str())
        .collect();
    spec.services
        .retain(|s| !in_plan.contains(s.name.value.as_str()));
    spec.services.shrink_to_fit();
    Arc::new(spec)
}

impl Driver {
    /// The definition of service `name` as the running file gives it (for a service of
    /// this run, as the running plan holds it).
    pub(super) fn file_service(&self, name: &str) -> Option<&gantry_spec::Service> {
        self.spec
            .services
            .iter()
            .find(|s| s.name.value == name)
            .or_else(|| {
                self.plan
                    .units
                    .iter()
                    .map(|u| &u.service)
                    .find(|s| s.instance.is_none() && s.name.value == name)
            })
    }

    pub(super) fn new(
        cfg: UpConfig,
        reaper: Arc<Reaper>,
        mut envs: crate::preflight::ServiceEnvs,
        lock: InstanceLock,
        limiter: crate::resource::Limiter,
        leadership: Option<(gantry_cluster::Config, gantry_cluster::Leadership)>,
    ) -> Result<Driver, String> {
        let state_dir = StateDir::new(cfg.base_dir.join(&cfg.spec.settings.state_dir));
        // Log files open at a service's first output line; the directory exists from the
        // start so that `gantry logs` can tell "no output yet" from "never booted".
        let _ = std::fs::create_dir_all(state_dir.logs_dir());
        let mut svcs = Vec::with_capacity(cfg.plan.units.len());
        // Built only when the pre-flight did not build some service's environment.
        let mut global_env = None;
        for (i, u) in cfg.plan.units.iter().enumerate() {
            let env = match envs.take(i) {
                Some(env) => Ok(env),
                None => {
                    let global = global_env
                        .get_or_insert_with(|| crate::env::global_env(&cfg.spec, &cfg.base_dir));
                    match global {
                        Ok(g) => {
                            crate::env::service_env(g, &u.service, &cfg.base_dir, &cfg.secrets)
                        }
                        Err(e) => Err(e.clone()),
                    }
                }
            };
            svcs.push(svc::make_svc(
                u,
                env,
                &cfg.base_dir,
                state_dir.root(),
                &cfg.file,
            )?);
        }
        let units = cfg.plan.unit_configs();
        let mut engine = Engine::new(
            units,
            EngineOptions {
                allow_degraded: cfg.spec.settings.allow_degraded,
                seed: cfg.seed,
            },
        )
        .map_err(|e| format!("invalid plan: {e}"))?;
        let names: Vec<&str> = cfg.plan.units.iter().map(|u| u.name()).collect();
        let out = Output::new(cfg.output, &names);
        // One read-only look at the store for what an earlier run left that this boot
        // needs before its first spawn (disabled services, flag overrides): an SQLite open
        // of a WAL database costs milliseconds, so it is opened once, not once per reader.
        let stored = gantry_state::store::Store::open_existing(state_dir.root());
        let (switches, switch_lines) = switches::load(stored.as_ref(), &cfg.plan, &mut engine);
        for line in &switch_lines {
            out.gantry_line(line);
        }
        // The state store is opened once the first services are spawned: its file
        // creation and fsyncs are not on the boot's critical path.
        let (store, boot_id): (Option<Store>, Option<i64>) = (None, None);
        let pending_store = Some((
            state_dir.root().to_path_buf(),
            cfg.file.clone(),
            std::time::SystemTime::now(),
        ));
        let (tx, rx) = mpsc::unbounded_channel();
        let tx_cluster = tx.clone();
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let hub = output::Hub::start(out_tx)
            .map_err(|e| format!("cannot read the services' output (epoll): {e}"))?;
        let mut api = api::start_api(&cfg, &state_dir)?;
        // Bound before the first spawn, closed until the boot is GO (every route answers
        // 503 saying what it waits for); a port in use stops the boot here.
        let ingress = ingress::IngressSide::start(
            &cfg.spec,
            &cfg.plan,
            &cfg.base_dir,
            &state_dir.logs_dir(),
        )?;
        if let (Some(ing), Some((state, _))) = (&ingress, &mut api.state) {
            state.ingress = Some(ing.control());
        }
        let (flags, flags_rx) =
            flags::FlagsSide::start(&cfg.spec, &cfg.base_dir, state_dir.root(), stored.as_ref())?;
        drop(stored);
        let ofrep_env = api
            .state
            .as_ref()
            .map(|(state, _)| flags::ofrep_env(&api.service_addr(), &state.read_token))
            .unwrap_or_default();
        if cfg.spec.settings.api.starts_with("unix:")
            && (!cfg.spec.flags.defs.is_empty() || cfg.spec.flags.file.is_some())
        {
            out.gantry_line(flags::UNIX_API_NOTE);
        }
        let flag_env = flags.env();
        let flag_vars: Vec<(String, String)> = flag_env.values().cloned().collect();
        // Into the shared base (see `Env::add_shared`): the same for every service.
        for extra in [&ofrep_env, &flag_vars] {
            crate::envset::Env::add_shared(
                svcs.iter_mut()
                    .filter_map(|svc| svc.spawn.as_mut().ok())
                    .map(|spawn| &mut spawn.env),
                extra,
            );
        }
        // The read token services get is masked in their output like a secret.
        let mut masked: Vec<String> = cfg.secrets.iter().map(|x| x.value.clone()).collect();
        masked.extend(
            ofrep_env
                .iter()
                .filter(|(k, _)| k == "GANTRY_OFREP_TOKEN")
                .map(|(_, v)| v.clone()),
        );
        let redactor = Redactor::new(masked.iter());
        if let Some((state, _)) = &mut api.state {
            state.flags = flags_rx;
        }
        let n = cfg.plan.units.len();
        let alerts = alerts::AlertSide::new(&cfg.spec);
        let alert_feed = alert_feed::Feed::new(&cfg.spec, &cfg.base_dir);
        let shutdown_timeout = cfg.spec.settings.shutdown_timeout.0;
        Ok(Driver {
            // The file's spec itself, not a copy of its thousand definitions.
            spec: lean_spec(cfg.spec, &cfg.plan),
            base_dir: cfg.base_dir.clone(),
            redactor,
            masked,
            secrets: cfg.secrets.clone(),
            stale_secrets: Default::default(),
            api,
            procstat: crate::procstat::ProcStat::new(),
            usage: vec![None; n],
            usage_sampled: None,
            busy_logs: Vec::new(),
            drift: 0,
            pending_store,
            published_at: Instant::now(),
            publish_cost: Duration::ZERO,
            remediated: vec![false; n],
            trimmed: false,
            boot_missions: Default::default(),
            spawns_left: 0,
            pool_spawns: 0,
            listen: ListenWatch::new(),
            host: Host::new(engine),
            svcs,
            out,
            reaper,
            tx,
            rx,
            answered: Default::default(),
            hub,
            out_rx,
            store,
            alerts,
            boot_id,
            shutdown_timeout,
            plan: cfg.plan,
            interrupts: 0,
            kill_at: None,
            fd_warned: None,
            lock,
            state_dir: state_dir.root().to_path_buf(),
            pruning: false,
            limiter,
            ingress,
            rolling: None,
            rollout: None,
            greens: Vec::new(),
            reloader: cfg.reload,
            reload_waiters: None,
            reload_audits: Vec::new(),
            switches,
            flags,
            ofrep_env,
            flag_env,
            taken_on: Vec::new(),
            alert_feed,
            runbooks: runbook::Runbooks::default(),
            incidents: incidents::Incidents::default(),
            cluster: leadership.map(|(c, l)| cluster::ClusterSide::start(&c, l, tx_cluster)),
        })
    }
}
