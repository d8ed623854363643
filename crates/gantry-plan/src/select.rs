//! Narrows a plan to a profile, `--only` or `--except`, keeping what the chosen services need.

use crate::{Plan, PlanDep, PlanUnit};
use gantry_spec::Spec;

/// What the user asked to run.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub profile: Option<String>,
    pub only: Vec<String>,
    pub except: Vec<String>,
}

impl Selection {
    /// This selection with `names` taken on too (services enabled while the stack runs): no
    /// longer excepted, and added to `--only` when the selection names what it runs (a
    /// selection of everything already has them).
    pub fn widened(&self, names: &[String]) -> Selection {
        let mut sel = self.clone();
        sel.except.retain(|e| !names.contains(e));
        if sel.profile.is_some() || !sel.only.is_empty() {
            for n in names {
                if !sel.only.contains(n) {
                    sel.only.push(n.clone());
                }
            }
        }
        sel
    }
}

/// Returns the sub-plan for `sel`, or an error message naming what is unknown.
/// Hard dependencies of selected services always come along; soft dependencies
/// that were not selected are dropped (they only order the start).
pub fn select(plan: Plan, spec: &Spec, sel: &Selection) -> Result<Plan, String> {
    // Everything (the usual `up`): the plan as it is, not a copy of every definition.
    if sel.profile.is_none() && sel.only.is_empty() && sel.except.is_empty() {
        return Ok(plan);
    }
    let plan = &plan;
    let n = plan.units.len();
    // A replicated service's name stands for all its instances; `api.2` for one.
    let lookup = |name: &str| {
        plan.units_of(name)
            .ok_or_else(|| format!("unknown service `{name}`"))
    };
    let mut chosen = vec![sel.profile.is_none() && sel.only.is_empty(); n];
    if let Some(p) = &sel.profile {
        let profile = spec
            .profiles
            .iter()
            .find(|x| x.name.value == *p)
            .ok_or_else(|| {
                let names: Vec<&str> = spec
                    .profiles
                    .iter()
                    .map(|x| x.name.value.as_str())
                    .collect();
                format!(
                    "unknown profile `{p}` (profiles in the file: {})",
                    if names.is_empty() {
                        "none".into()
                    } else {
                        names.join(", ")
                    }
                )
            })?;
        for s in &profile.services {
            for i in lookup(&s.value)? {
                chosen[i] = true;
            }
        }
        for (i, u) in plan.units.iter().enumerate() {
            if profile.priorities.contains(&u.service.priority) {
                chosen[i] = true;
            }
        }
    }
    for name in &sel.only {
        for i in lookup(name)? {
            chosen[i] = true;
        }
    }
    // Pull in hard dependencies, transitively.
    let mut stack: Vec<usize> = (0..n).filter(|&i| chosen[i]).collect();
    while let Some(u) = stack.pop() {
        for d in &plan.units[u].deps {
            if d.required && !chosen[d.unit] {
                chosen[d.unit] = true;
                stack.push(d.unit);
            }
        }
    }
    for name in &sel.except {
        for i in lookup(name)? {
            chosen[i] = false;
        }
    }
    // Excluding something others hard-need would make them wait forever.
    for (i, u) in plan.units.iter().enumerate() {
        if !chosen[i] {
            continue;
        }
        if let Some(d) = u.deps.iter().find(|d| d.required && !chosen[d.unit]) {
            return Err(format!(
                "`{}` needs `{}`, which is excluded",
                u.name(),
                plan.units[d.unit].name()
            ));
        }
    }
    let mut remap = vec![usize::MAX; n];
    // Exactly as many as are chosen: a unit holds a whole definition (~800 bytes), and a
    // vector grown by doubling left up to half of that unused at 1,000 services.
    let mut units: Vec<PlanUnit> = Vec::with_capacity(chosen.iter().filter(|&&c| c).count());
    for i in 0..n {
        if chosen[i] {
            remap[i] = units.len();
            units.push(plan.units[i].clone());
        }
    }
    for u in &mut units {
        u.deps = u
            .deps
            .iter()
            .filter(|d| remap[d.unit] != usize::MAX)
            .map(|d| PlanDep {
                unit: remap[d.unit],
                ..*d
            })
            .collect();
        u.dependents = u
            .dependents
            .iter()
            .filter(|&&d| remap[d] != usize::MAX)
            .map(|&d| remap[d])
            .collect();
    }
    let critical_path = plan
        .critical_path
        .iter()
        .filter(|&&u| remap[u] != usize::MAX)
        .map(|&u| remap[u])
        .collect();
    let waves = plan
        .waves
        .iter()
        .map(|w| {
            w.iter()
                .filter(|&&u| remap[u] != usize::MAX)
                .map(|&u| remap[u])
                .collect::<Vec<_>>()
        })
        .filter(|w: &Vec<usize>| !w.is_empty())
        .collect();
    let replica_groups = plan
        .replica_groups
        .iter()
        .map(|g| crate::ReplicaGroup {
            service: g.service.clone(),
            units: g
                .units
                .iter()
                .filter(|&&u| remap[u] != usize::MAX)
                .map(|&u| remap[u])
                .collect(),
        })
        .filter(|g| !g.units.is_empty())
        .collect();
    Ok(Plan {
        units,
        layers: plan.layers.clone(),
        waves,
        critical_path,
        critical_time: plan.critical_time,
        timed: plan.timed,
        replica_groups,
    })
}
