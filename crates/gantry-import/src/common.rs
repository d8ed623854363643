//! What the three formats share: durations, names, `${VAR}` forms, environment lists, and the
//! final pass over the dependency graph (unknown dependencies, cycles, tasks).

use crate::Note;
use crate::emit::{Cmd, GantryFile};
use crate::yaml::{Node, Value};
use gantry_spec::duration::format_duration;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

/// A compose (Go) duration such as `1m30s`, `10s`, `500ms`, `1h` or `0`, as gantry writes it.
pub fn compose_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("an empty duration".into());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(n);
        let value: f64 = num
            .parse()
            .map_err(|_| format!("`{text}` is not a duration (expected e.g. `1m30s`)"))?;
        let u = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(u);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("`{text}` has no unit (expected e.g. `10s`)")),
            other => return Err(format!("unknown unit `{other}` in `{text}`")),
        };
        total += value * scale;
        rest = tail;
    }
    if !total.is_finite() || total > 1e9 {
        return Err(format!("`{text}` is too long"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// A whole number of seconds as a gantry duration.
pub fn seconds(n: u64) -> String {
    format_duration(Duration::from_secs(n.min(1_000_000_000)))
}

/// A duration as gantry writes it; sub-microsecond durations round up to `1us`.
pub fn fmt(d: Duration) -> String {
    if d > Duration::ZERO && d < Duration::from_micros(1) {
        return "1us".into();
    }
    // format_duration keeps two decimals for odd milliseconds; gantry reads them back.
    format_duration(d)
}

/// Gantry names for source names: invalid characters become `-`, a leading non-alphanumeric
/// gets an `s` in front, at most 63 characters, unique without regard to case.
pub fn assign_names(names: &[(String, usize)], notes: &mut Vec<Note>) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let mut taken: HashSet<String> = HashSet::new();
    // Valid names first, so that a renamed one never takes a valid one's name.
    let (valid, invalid): (Vec<_>, Vec<_>) =
        names.iter().partition(|(n, _)| gantry_spec::valid_name(n));
    for (name, line) in valid.into_iter().chain(invalid) {
        let mut base: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        if !base.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            base.insert(0, 's');
        }
        base.truncate(60);
        let mut candidate = base.clone();
        let mut i = 2;
        while taken.contains(&candidate.to_ascii_lowercase()) {
            candidate = format!("{base}-{i}");
            i += 1;
        }
        taken.insert(candidate.to_ascii_lowercase());
        if &candidate != name {
            notes.push(Note {
                line: Some(*line),
                service: Some(name.clone()),
                message: format!(
                    "renamed to `{candidate}`: gantry names start with a letter or digit, then letters, digits, `_`, `-` or `.` (at most 63), unique without regard to case"
                ),
            });
        }
        map.insert(name.clone(), candidate);
    }
    map
}

/// Interpolation as compose and process-compose write it, turned into gantry's: `${VAR}`,
/// `${VAR:-d}`, `${VAR:?msg}` and `$$` stay; `$VAR` becomes `${VAR}`; `${VAR-d}` and
/// `${VAR?msg}` become their `:` forms (empty now counts as unset); `${VAR:+x}` and anything
/// else gantry does not read is kept literally (`$${...}`) and reported.
pub fn interpolation(
    text: &str,
    what: &str,
    line: usize,
    svc: Option<&str>,
    notes: &mut Vec<Note>,
) -> String {
    interpolate_with(text, true, what, line, svc, notes)
}

/// Like [`interpolation`]; `bare` false keeps `$VAR` for the shell (process-compose commands).
pub fn interpolate_with(
    text: &str,
    bare: bool,
    what: &str,
    line: usize,
    svc: Option<&str>,
    notes: &mut Vec<Note>,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push_str("$$");
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                notes.push(note(
                    line,
                    svc,
                    format!("{what}: an unclosed `${{` is kept literally (`$${{`)"),
                ));
                out.push_str("$${");
                rest = body;
                continue;
            };
            let inner = &body[..end];
            let name_len = inner
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(inner.len());
            let (name, op) = inner.split_at(name_len);
            let kept = if name.is_empty() {
                None
            } else if op.is_empty() || op.starts_with(":-") || op.starts_with(":?") {
                Some(format!("${{{inner}}}"))
            } else if let Some(d) = op.strip_prefix('-') {
                notes.push(note(line, svc, format!("{what}: `${{{inner}}}` became `${{{name}:-{d}}}` (gantry also uses the default when the variable is set but empty)")));
                Some(format!("${{{name}:-{d}}}"))
            } else if let Some(m) = op.strip_prefix('?') {
                notes.push(note(line, svc, format!("{what}: `${{{inner}}}` became `${{{name}:?{m}}}` (gantry also refuses an empty value)")));
                Some(format!("${{{name}:?{m}}}"))
            } else {
                None
            };
            match kept {
                Some(k) => out.push_str(&k),
                None => {
                    notes.push(note(line, svc, format!("{what}: `${{{inner}}}` is not a form gantry interpolates (only ${{VAR}}, ${{VAR:-default}}, ${{VAR:?message}}); kept literally as `$${{{inner}}}`: edit it by hand")));
                    out.push_str(&format!("$${{{}}}", inner.replace('$', "$$")));
                }
            }
            rest = &body[end + 1..];
        } else {
            let n = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if !bare {
                out.push('$');
                rest = after;
            } else if n > 0 && !after.starts_with(|c: char| c.is_ascii_digit()) {
                out.push_str(&format!("${{{}}}", &after[..n]));
                rest = &after[n..];
            } else {
                out.push_str("$$");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Text meant for a shell, put where gantry interpolates: `$` doubled so the shell sees it.
pub fn shell_literal(text: &str) -> String {
    text.replace('$', "$$")
}

/// Words that are the shell's own (builtins and keywords): no program of that name runs them.
const SHELL_WORDS: &[&str] = &[
    "exec", "cd", "export", "source", ".", "set", "unset", "ulimit", "umask", "trap", "eval",
    "alias", "if", "for", "while", "until", "case", "{", "!",
];

/// Whether a command needs a shell to run as its author meant (pipes, variables, globs, `&&`,
/// redirections, a leading `VAR=value`, a `# comment`, a shell builtin such as `exec` first).
pub fn needs_shell(cmd: &str) -> bool {
    let first = cmd.split_whitespace().next();
    cmd.contains([
        '|', '&', ';', '<', '>', '(', ')', '$', '`', '*', '?', '[', '~', '\\', '\n',
    ]) || first.is_some_and(|w| w.contains('=') || SHELL_WORDS.contains(&w))
        || cmd.split_whitespace().any(|w| w.starts_with('#'))
        || !cmd_ok(&Cmd::Line(cmd.to_string()))
}

/// Whether gantry can run this command: it splits into words and the program is not empty.
pub fn cmd_ok(cmd: &Cmd) -> bool {
    let words = match cmd {
        Cmd::Line(l) => shlex::split(l),
        Cmd::Args(a) => Some(a.clone()),
    };
    words.is_some_and(|w| {
        w.first().is_some_and(|p| !p.trim().is_empty()) && w.iter().all(|w| !w.contains('\0'))
    })
}

/// A regular expression that matches `text` literally.
pub fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub fn note(line: usize, svc: Option<&str>, message: String) -> Note {
    Note {
        line: Some(line),
        service: svc.map(str::to_string),
        message,
    }
}

/// A scalar as a string for the environment (numbers and booleans as written).
pub fn scalar(node: &Node) -> Option<String> {
    match &node.value {
        Value::Scalar { text, .. } => Some(if node.is_null() {
            String::new()
        } else {
            text.clone()
        }),
        _ => None,
    }
}

/// `environment` as a mapping or a list of `KEY=VALUE` / `KEY`. A key without a value passes
/// the variable through from gantry's own environment (`${KEY}`).
/// The note of a variable passed through from the environment gantry runs in.
fn pass_through(key: &str, what: &str, line: usize, svc: Option<&str>) -> Note {
    note(
        line,
        svc,
        format!(
            "{what} {key}: passed through as `${{{key}}}`; set it where `gantry up` runs (unset, it is an empty string and `gantry check` warns, where compose leaves it out)"
        ),
    )
}

pub fn environment(
    node: &Node,
    what: &str,
    svc: Option<&str>,
    notes: &mut Vec<Note>,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |k: String, v: String, env: &mut Vec<(String, String)>| {
        if let Some(e) = env.iter_mut().find(|(ek, _)| *ek == k) {
            e.1 = v;
        } else {
            env.push((k, v));
        }
    };
    match &node.value {
        Value::Map(entries) => {
            for (k, v) in entries {
                let Some(key) = k.as_str().map(str::to_string) else {
                    continue;
                };
                if v.is_null() && !is_var_name(&key) {
                    notes.push(note(k.line, svc, format!("{what}: `{key}` without a value is not a variable name to pass through; left out")));
                } else if v.is_null() {
                    notes.push(pass_through(&key, what, k.line, svc));
                    set(key.clone(), format!("${{{key}}}"), &mut env);
                } else if let Some(val) = scalar(v) {
                    let val = interpolation(&val, &format!("{what} {key}"), v.line, svc, notes);
                    set(key, val, &mut env);
                } else {
                    notes.push(note(
                        v.line,
                        svc,
                        format!("{what} {key}: {} is not a value; left out", v.kind()),
                    ));
                }
            }
        }
        Value::Seq(items) => {
            for item in items {
                let Some(text) = scalar(item) else {
                    notes.push(note(
                        item.line,
                        svc,
                        format!("{what}: {} is not `KEY=VALUE`; left out", item.kind()),
                    ));
                    continue;
                };
                match text.split_once('=') {
                    Some((k, v)) => {
                        let v = interpolation(v, &format!("{what} {k}"), item.line, svc, notes);
                        set(k.to_string(), v, &mut env);
                    }
                    None if is_var_name(&text) => {
                        notes.push(pass_through(&text, what, item.line, svc));
                        set(text.clone(), format!("${{{text}}}"), &mut env)
                    }
                    None if !text.is_empty() => notes.push(note(item.line, svc, format!("{what}: `{text}` is neither `KEY=VALUE` nor a variable name to pass through; left out"))),
                    None => {}
                }
            }
        }
        _ if node.is_null() => {}
        _ => notes.push(note(
            node.line,
            svc,
            format!(
                "{what} is {}, expected a mapping or a list of KEY=VALUE; left out",
                node.kind()
            ),
        )),
    }
    // Keys gantry cannot take as variable names are reported.
    env.retain(|(k, _)| {
        let ok = !k.is_empty() && !k.contains(['\0', '=']);
        if !ok {
            notes.push(note(
                node.line,
                svc,
                format!("{what}: `{k}` is not a variable name; left out"),
            ));
        }
        ok
    });
    env
}

/// A relative path from the source file's directory, as the gantry.toml (written with `prefix`
/// in front of such paths) must name it; absolute paths stay.
pub fn rebase(prefix: &str, path: &str) -> String {
    if path.starts_with('/') {
        return path.to_string();
    }
    let rest = match path.strip_prefix("./") {
        Some("") => ".",
        Some(rest) => rest,
        None => path,
    };
    format!("{prefix}{rest}")
}

/// A name `${NAME}` can refer to.
fn is_var_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The last pass: dependencies on services that are not in the file are dropped, a
/// `completed` dependency makes its target a task, and each cycle loses the edge that closes it.
/// Every change is a note.
pub fn finish(file: &mut GantryFile, notes: &mut Vec<Note>) {
    // Every string gantry interpolates must read as gantry's `${...}`; one that does not (a `${`
    // from a key this import copies as written) is made literal.
    let fix = |text: &mut String, line: usize, svc: Option<&str>, notes: &mut Vec<Note>| {
        if gantry_spec::interp::interpolate(text, &|_| None).is_err() {
            notes.push(note(
                line,
                svc,
                format!("`{text}`: a `${{...}}` gantry does not read; kept literally (`$$`)"),
            ));
            *text = text.replace('$', "$$");
        }
    };
    for (_, v) in &mut file.env {
        fix(v, 1, None, notes);
    }
    for s in &mut file.services {
        let (line, src) = (s.line, s.source_name.clone());
        let src = Some(src.as_str());
        let mut texts: Vec<&mut String> = Vec::new();
        for c in [&mut s.command, &mut s.cleanup] {
            match c {
                Some(Cmd::Line(l)) => texts.push(l),
                Some(Cmd::Args(a)) => texts.extend(a.iter_mut()),
                None => {}
            }
        }
        texts.extend(s.working_dir.iter_mut());
        texts.extend(s.env_file.iter_mut());
        texts.extend(s.env.iter_mut().map(|(_, v)| v));
        for p in [&mut s.readiness, &mut s.liveness, &mut s.startup]
            .into_iter()
            .flatten()
        {
            match &mut p.exec {
                Some(Cmd::Line(l)) => texts.push(l),
                Some(Cmd::Args(a)) => texts.extend(a.iter_mut()),
                None => {}
            }
            texts.extend(p.http.iter_mut());
            texts.extend(p.log.iter_mut());
        }
        for t in texts {
            fix(t, line, src, notes);
        }
    }
    // A command gantry cannot run leaves its service out; a probe's, its probe.
    file.services.retain_mut(|s| {
        let src = s.source_name.clone();
        for (what, p) in [("readiness", &mut s.readiness), ("liveness", &mut s.liveness), ("startup", &mut s.startup)] {
            if p.as_ref().and_then(|p| p.exec.as_ref()).is_some_and(|c| !cmd_ok(c)) {
                notes.push(note(s.line, Some(&src), format!("the {what} probe's command is empty or does not split into words; probe left out")));
                *p = None;
            }
        }
        let ok = s.command.as_ref().is_some_and(cmd_ok);
        if !ok {
            notes.push(note(s.line, Some(&src), "its command is empty or does not split into words; left out".into()));
        }
        ok
    });
    let names: HashSet<String> = file.services.iter().map(|s| s.name.clone()).collect();
    let by_name: BTreeMap<String, String> = file
        .services
        .iter()
        .map(|s| (s.name.clone(), s.source_name.clone()))
        .collect();
    for s in &mut file.services {
        let src = s.source_name.clone();
        s.depends_on.retain(|d| {
            let known = names.contains(&d.name);
            if !known {
                notes.push(note(d.line, Some(&src), format!("depends on `{}`, which is not a service of the file (or was left out); dependency dropped", d.name)));
            } else if d.name == s.name {
                notes.push(note(d.line, Some(&src), "depends on itself; dependency dropped".into()));
            }
            known && d.name != s.name
        });
        let mut seen = HashSet::new();
        s.depends_on.retain(|d| seen.insert(d.name.clone()));
    }
    // Tasks: what others wait to complete.
    let completed: HashSet<String> = file
        .services
        .iter()
        .flat_map(|s| s.depends_on.iter())
        .filter(|d| d.condition == "completed")
        .map(|d| d.name.clone())
        .collect();
    for s in &mut file.services {
        if completed.contains(&s.name) && s.kind.is_none() {
            s.kind = Some("task");
            let src = s.source_name.clone();
            if let Some(r) = s.replicas.take() {
                notes.push(note(s.line, Some(&src), format!("runs to completion (a dependent waits for it to exit 0), so it is a `kind = \"task\"`, which runs once: replicas = {r} dropped")));
            }
            if let Some(r) = s.restart.take()
                && r != "never"
            {
                notes.push(note(s.line, Some(&src), format!("a dependent waits for it to complete, so it is a `kind = \"task\"`: restart = \"{r}\" dropped (a task's failed start is retried through `retry`)")));
            }
            for p in [&mut s.readiness, &mut s.liveness] {
                if p.take().is_some() {
                    notes.push(note(
                        s.line,
                        Some(&src),
                        "a task's success is its exit 0: its health check / probe was dropped"
                            .into(),
                    ));
                }
            }
        }
    }
    break_cycles(file, notes, &by_name);
}

fn break_cycles(file: &mut GantryFile, notes: &mut Vec<Note>, source: &BTreeMap<String, String>) {
    let index: HashMap<String, usize> = file
        .services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.clone(), i))
        .collect();
    // Iterative DFS (no recursion on input-sized graphs): 0 new, 1 on the path, 2 done.
    let n = file.services.len();
    let mut state = vec![0u8; n];
    for start in 0..n {
        if state[start] != 0 {
            continue;
        }
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        state[start] = 1;
        while let Some(&mut (node, ref mut next)) = path.last_mut() {
            if *next >= file.services[node].depends_on.len() {
                state[node] = 2;
                path.pop();
                continue;
            }
            let edge = *next;
            *next += 1;
            let target = index
                .get(&file.services[node].depends_on[edge].name)
                .copied()
                .unwrap_or(node);
            match state[target] {
                0 => {
                    state[target] = 1;
                    path.push((target, 0));
                }
                1 => {
                    let from = path.iter().position(|(p, _)| *p == target).unwrap_or(0);
                    let mut cycle: Vec<String> = path[from..]
                        .iter()
                        .map(|(p, _)| {
                            source
                                .get(&file.services[*p].name)
                                .cloned()
                                .unwrap_or_default()
                        })
                        .collect();
                    cycle.push(
                        source
                            .get(&file.services[target].name)
                            .cloned()
                            .unwrap_or_default(),
                    );
                    let dep = file.services[node].depends_on.remove(edge);
                    if let Some(top) = path.last_mut() {
                        top.1 -= 1;
                    }
                    let src = file.services[node].source_name.clone();
                    notes.push(note(dep.line, Some(&src), format!("dependency cycle {}: the dependency on `{}` was dropped so the stack can start; decide which service really waits for which", cycle.join(" -> "), dep.name)));
                }
                _ => {}
            }
        }
    }
}

/// Profile names made valid (reported when changed).
pub fn profile_name(name: &str, line: usize, notes: &mut Vec<Note>) -> String {
    let map = assign_names(&[(name.to_string(), line)], &mut Vec::new());
    let new = map.get(name).cloned().unwrap_or_else(|| "profile".into());
    if new != name {
        notes.push(note(
            line,
            None,
            format!("profile `{name}` renamed to `{new}`"),
        ));
    }
    new
}

/// Keeps a list of names, each once, in order.
pub fn dedup(items: &mut Vec<String>) {
    let mut seen = HashSet::new();
    items.retain(|s| seen.insert(s.clone()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let d = |s| compose_duration(s).map(fmt);
        assert_eq!(d("1m30s"), Ok("90s".into()));
        assert_eq!(d("10s"), Ok("10s".into()));
        assert_eq!(d("1h"), Ok("1h".into()));
        assert_eq!(d("1h30m"), Ok("90m".into()));
        assert_eq!(d("500ms"), Ok("500ms".into()));
        assert_eq!(d("1.5s"), Ok("1.50s".into()));
        assert_eq!(d("0"), Ok("0ms".into()));
        assert!(d("10").is_err());
        assert!(d("ten seconds").is_err());
        assert!(d("").is_err());
        // What gantry writes, gantry reads.
        for s in ["90s", "1.50s", "500ms", "2h", "0ms", "1us"] {
            assert!(gantry_spec::duration::parse_duration(s).is_ok(), "{s}");
        }
        assert_eq!(seconds(90), "90s");
        assert_eq!(seconds(120), "2m");
    }

    #[test]
    fn commands_that_need_a_shell() {
        for cmd in [
            "a | b",
            "A=1 run",
            "exec cloudflared tunnel",
            "cd docs && make",
            ". venv/bin/activate",
            "serve 9109 # a comment",
            "run $PORT",
        ] {
            assert!(needs_shell(cmd), "{cmd}");
        }
        for cmd in [
            "redis-server --port 6382",
            "env A=1 celery worker",
            "stripe listen --events 'a,b'",
            "executor --run",
            "tag a#b",
        ] {
            assert!(!needs_shell(cmd), "{cmd}");
        }
    }

    #[test]
    fn names() {
        let mut notes = Vec::new();
        let names = [
            ("api".to_string(), 1),
            ("_private".to_string(), 2),
            ("web app".to_string(), 3),
            ("API".to_string(), 4),
            ("x".repeat(80), 5),
        ];
        let map = assign_names(&names, &mut notes);
        assert_eq!(map["api"], "api");
        assert_eq!(map["_private"], "s_private");
        assert_eq!(map["web app"], "web-app");
        assert_eq!(map["API"], "API-2");
        assert_eq!(map[&"x".repeat(80)].len(), 60);
        assert_eq!(notes.len(), 4);
        assert!(map.values().all(|n| gantry_spec::valid_name(n)));
    }

    #[test]
    fn interpolation_forms() {
        let mut notes = Vec::new();
        let mut i = |s: &str| interpolation(s, "x", 1, None, &mut notes);
        assert_eq!(
            i("${A} ${B:-d} ${C:?must} $$ $D x$"),
            "${A} ${B:-d} ${C:?must} $$ ${D} x$$"
        );
        assert_eq!(i("${A-d}"), "${A:-d}");
        assert_eq!(i("${A?m}"), "${A:?m}");
        assert_eq!(i("${A:+x}"), "$${A:+x}");
        assert_eq!(i("${"), "$${");
        assert_eq!(notes.len(), 4);
    }

    #[test]
    fn environment_forms() {
        let mut notes = Vec::new();
        let map = crate::yaml::parse("A: 1\nB: ~\nC: \"x y\"\nD: true\n").unwrap();
        assert_eq!(
            environment(&map, "environment", None, &mut notes),
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "${B}".into()),
                ("C".into(), "x y".into()),
                ("D".into(), "true".into())
            ]
        );
        let list = crate::yaml::parse("[A=1, B, 'C=a=b', A=2]").unwrap();
        assert_eq!(
            environment(&list, "environment", None, &mut notes),
            vec![
                ("A".into(), "2".into()),
                ("B".into(), "${B}".into()),
                ("C".into(), "a=b".into())
            ]
        );
        // A variable passed through is said, in both forms.
        assert_eq!(notes.len(), 2);
        assert!(
            notes.iter().all(|n| n
                .message
                .starts_with("environment B: passed through as `${B}`")),
            "{notes:?}"
        );
        notes.clear();
        let bad = crate::yaml::parse("5").unwrap();
        assert!(environment(&bad, "environment", None, &mut notes).is_empty());
        assert_eq!(notes.len(), 1);
    }
}
