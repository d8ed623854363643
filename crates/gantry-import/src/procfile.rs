//! Procfiles (foreman, honcho, Heroku): `name: command` lines become services; a `.env` next to
//! the Procfile becomes `env_file`; each process gets the `PORT` foreman would give it.

use crate::common::{assign_names, needs_shell, note, shell_literal};
use crate::emit::{Cmd, GantryFile, Service};
use crate::{ImportError, Imported, Note, Options};

/// foreman's first port; each process type gets the next hundred.
const BASE_PORT: u32 = 5000;

/// Translates a Procfile. `Err` only for a file too large to be one.
pub fn import(text: &str, opts: &Options) -> Result<Imported, ImportError> {
    if text.len() > crate::yaml::MAX_BYTES {
        return Err(ImportError {
            line: 1,
            col: 1,
            message: format!(
                "the file is {} bytes; a Procfile is a few lines",
                text.len()
            ),
            hint: "is this the right file?".into(),
        });
    }
    let mut notes: Vec<Note> = Vec::new();
    let mut entries: Vec<(String, String, usize)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let parsed = trimmed.split_once(':').and_then(|(name, cmd)| {
            let name = name.trim();
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            (ok && !cmd.trim().is_empty()).then(|| (name.to_string(), cmd.trim().to_string()))
        });
        match parsed {
            Some((name, cmd)) => {
                if entries.iter().any(|(n, _, _)| *n == name) {
                    notes.push(note(
                        line,
                        Some(&name),
                        "a second process of this name; left out (the first one is kept)".into(),
                    ));
                } else {
                    entries.push((name, cmd, line));
                }
            }
            None => notes.push(note(
                line,
                None,
                format!("`{}` is not `name: command`; left out", cut(trimmed)),
            )),
        }
    }
    let names = assign_names(
        &entries
            .iter()
            .map(|(n, _, l)| (n.clone(), *l))
            .collect::<Vec<_>>(),
        &mut notes,
    );
    let mut file = GantryFile::default();
    if opts.dotenv {
        file.env_file
            .push(crate::common::rebase(&opts.path_prefix, ".env"));
    }
    for (index, (src, cmd, line)) in entries.iter().enumerate() {
        let port = BASE_PORT + 100 * index as u32;
        let command = if needs_shell(cmd) {
            // foreman runs each line through a shell; `$` stays the shell's.
            Cmd::Args(vec!["sh".into(), "-c".into(), shell_literal(cmd)])
        } else {
            Cmd::Line(cmd.clone())
        };
        let mut s = Service {
            name: names.get(src).cloned().unwrap_or_else(|| src.clone()),
            source_name: src.clone(),
            line: *line,
            command: Some(command),
            ..Service::default()
        };
        if port <= u32::from(u16::MAX) {
            s.env.push(("PORT".into(), port.to_string()));
            if cmd.contains("PORT") {
                notes.push(note(*line, Some(src), format!("uses $PORT: set to {port} in its env, as foreman gives process type number {} (5000 + 100 each); `ports = [{port}]` lets the pre-flight check it is free", index + 1)));
                s.ports.push(port as u16);
            }
        }
        if src == "release" {
            s.kind = Some("task");
            notes.push(note(*line, Some(src), "Heroku's `release` process runs once before a deploy: a `kind = \"task\"` here, started with the others (add it to the others' `depends_on` with \"completed\" to run it first)".into()));
        }
        file.services.push(s);
    }
    if !file.services.is_empty() {
        notes.push(Note {
            line: None,
            service: None,
            message: "foreman stops every process when one exits; gantry keeps the others running (set `restart = \"on-failure\"` to bring a process back, `priority = \"critical\"` for one whose failure is a NO-GO); a Procfile has no dependencies, so all start at once".into(),
        });
    }
    crate::sort_notes(&mut notes);
    Ok(Imported { file, notes })
}

fn cut(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_ports_shell_and_dotenv() {
        let text = "# web and worker\nweb: bundle exec puma -p $PORT\n\nworker:   bundle exec sidekiq\nnot a process\nclock: ruby clock.rb | tee ${LOG:-clock.log}\nweb: again\nrelease: ./migrate\n";
        let i = import(
            text,
            &Options {
                dotenv: true,
                ..Options::default()
            },
        )
        .unwrap();
        let names: Vec<_> = i.file.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["web", "worker", "clock", "release"]);
        let web = &i.file.services[0];
        assert_eq!(
            web.command,
            Some(Cmd::Args(vec![
                "sh".into(),
                "-c".into(),
                "bundle exec puma -p $$PORT".into()
            ]))
        );
        assert_eq!(web.env, [("PORT".to_string(), "5000".to_string())]);
        assert_eq!(web.ports, [5000]);
        assert_eq!(
            i.file.services[1].command,
            Some(Cmd::Line("bundle exec sidekiq".into()))
        );
        assert_eq!(i.file.services[1].env[0].1, "5100");
        assert_eq!(
            i.file.services[2].command,
            Some(Cmd::Args(vec![
                "sh".into(),
                "-c".into(),
                "ruby clock.rb | tee $${LOG:-clock.log}".into()
            ]))
        );
        assert_eq!(i.file.services[3].kind, Some("task"));
        assert_eq!(i.file.env_file, [".env"]);
        let lines: Vec<_> = i.notes.iter().filter_map(|n| n.line).collect();
        assert!(
            lines.contains(&5) && lines.contains(&7) && lines.contains(&2),
            "{:#?}",
            i.notes
        );
        let text = i.to_toml("Procfile", "Procfile");
        assert!(text.contains("env_file = [\".env\"]"));
    }

    #[test]
    fn odd_input_never_panics() {
        for text in [
            "",
            ":",
            "a:",
            ":b",
            "\u{0}: x",
            "ünï: x",
            &"x: y\n".repeat(10_000),
        ] {
            let _ = import(text, &Options::default()).unwrap();
        }
        assert!(import(&"x".repeat(crate::yaml::MAX_BYTES + 1), &Options::default()).is_err());
    }
}
