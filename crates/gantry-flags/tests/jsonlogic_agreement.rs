//! Differential test of the JSONLogic operators against flagd's own evaluator
//! (`openfeature-flagd-core` in `.venv-tests`, installed by scripts/setup): each rule is the
//! condition of `{"if": [rule, "yes", "no"]}` and both must pick the same variant.
//! Two known differences are left out, where gantry follows the JSONLogic spec (JavaScript) and
//! the Python library does not: `null == 0` (Python: true) and `cat` of `true` (Python: "True").

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use gantry_flags::FlagSet;
use serde_json::{Map, Value, json};

const FLAGD_EVAL: &str = r#"
import json, sys
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext
req = json.load(sys.stdin)
core = FlagdCore()
core.set_flags(req["flags"])
out = []
for key, ctx in req["cases"]:
    attrs = {k: v for k, v in ctx.items() if k != "targetingKey"}
    try:
        r = core.resolve_string_value(key, "none", EvaluationContext(targeting_key=ctx.get("targetingKey"), attributes=attrs))
        out.append(r.variant)
    except Exception as e:
        out.append("error")
json.dump(out, sys.stdout)
"#;

#[test]
fn operators_agree_with_flagd_core() {
    let ctx = json!({"targetingKey": "user-1", "n": 5, "s": "5", "email": "ann@example.com", "zero": 0,
        "empty": "", "list": [1, 2, 3], "user": {"plan": "pro", "seats": 12}, "version": "2.10.1",
        "t": true, "f": false, "none": null, "countries": ["de", "fr"]});
    let rules = [
        json!({"==": [{"var": "n"}, "5"]}),
        json!({"===": [{"var": "n"}, "5"]}),
        json!({"==": [{"var": "t"}, 1]}),
        json!({"==": [{"var": "zero"}, false]}),
        json!({"==": [{"var": "none"}, null]}),
        json!({"!=": [{"var": "s"}, 5]}),
        json!({"!==": [{"var": "s"}, 5]}),
        json!({"<": [{"var": "n"}, 10]}),
        json!({"<": [1, {"var": "n"}, 4]}),
        json!({"<=": [5, {"var": "n"}, 5]}),
        json!({">": ["10", {"var": "n"}]}),
        json!({">=": [{"var": "user.seats"}, 12]}),
        json!({"<": ["a", "b"]}),
        json!({"!": [{"var": "empty"}]}),
        json!({"!!": [{"var": "list"}]}),
        json!({"!!": [[]]}),
        json!({"!!": ["0"]}),
        json!({"and": [{"var": "t"}, {"var": "n"}]}),
        json!({"or": [{"var": "f"}, {"var": "zero"}]}),
        json!({"in": [{"var": "user.plan"}, ["free", "pro"]]}),
        json!({"in": ["example", {"var": "email"}]}),
        json!({"in": [2, {"var": "list"}]}),
        json!({"==": [{"cat": ["a", 1, "b"]}, "a1b"]}),
        json!({"==": [{"substr": [{"var": "email"}, -11]}, "example.com"]}),
        json!({"==": [{"substr": [{"var": "email"}, 0, 3]}, "ann"]}),
        json!({"==": [{"substr": [{"var": "email"}, 4, -4]}, "example"]}),
        json!({"in": [3, {"merge": [[1], [2, 3], 4]}]}),
        json!({"missing": ["n", "nope"]}),
        json!({"missing_some": [1, ["n", "nope"]]}),
        json!({"some": [{"var": "list"}, {">": [{"var": ""}, 2]}]}),
        json!({"all": [{"var": "list"}, {">": [{"var": ""}, 0]}]}),
        json!({"all": [[], true]}),
        json!({"none": [{"var": "list"}, {">": [{"var": ""}, 3]}]}),
        json!({"==": [{"reduce": [{"var": "list"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]}, 6]}),
        json!({"==": [{"map": [{"var": "list"}, {"*": [{"var": ""}, 2]}]}, [2, 4, 6]]}),
        json!({"in": [3, {"filter": [{"var": "list"}, {">=": [{"var": ""}, 2]}]}]}),
        json!({"==": [{"+": ["1", 2]}, 3]}),
        json!({"==": [{"-": [5]}, -5]}),
        json!({"==": [{"/": [7, 2]}, 3.5]}),
        json!({"==": [{"%": [7, 2]}, 1]}),
        json!({"==": [{"max": [1, 9, 4]}, 9]}),
        json!({"==": [{"min": [1, 9, 4]}, 1]}),
        json!({"==": [{"var": ["nope", 7]}, 7]}),
        json!({"==": [{"var": "list.1"}, 2]}),
        json!({"==": [{"var": "$flagd.flagKey"}, "f"]}),
        json!({">": [{"var": "$flagd.timestamp"}, 1_700_000_000]}),
        json!({"starts_with": [{"var": "email"}, "ann@"]}),
        json!({"ends_with": [{"var": "email"}, ".org"]}),
        json!({"starts_with": [{"var": "n"}, "5"]}),
        json!({"sem_ver": [{"var": "version"}, ">", "2.9.0"]}),
        json!({"sem_ver": [{"var": "version"}, "^", "2.0.0"]}),
        json!({"sem_ver": [{"var": "version"}, "~", "2.9.0"]}),
        json!({"sem_ver": ["v1.2", "=", "1.2.0"]}),
        json!({"sem_ver": ["1.0.0-alpha", "<", "1.0.0"]}),
        json!({"sem_ver": ["1.0.0-rc.2", "<", "1.0.0-rc.10"]}),
        json!({"if": [{"var": "f"}, false, {"var": "t"}]}),
        json!({"?:": [{"var": "zero"}, false, true]}),
    ];
    let mut flags = Map::new();
    let mut cases = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let key = if rule.to_string().contains("$flagd.flagKey") {
            "f".to_string()
        } else {
            format!("r{i}")
        };
        flags.insert(
            key.clone(),
            json!({"state": "ENABLED", "variants": {"yes": "Y", "no": "N"}, "defaultVariant": "no",
                   "targeting": {"if": [rule, "yes", "no"]}}),
        );
        cases.push(json!([key, ctx]));
    }
    let doc = json!({"flags": flags});
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-tests/bin/python");
    let mut child = Command::new(&python)
        .args(["-c", FLAGD_EVAL])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}: run scripts/setup", python.display()));
    let request = json!({"flags": doc, "cases": cases});
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.to_string().as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("output");
    assert!(
        out.status.success(),
        "flagd-core failed (run scripts/setup): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    let set = FlagSet::parse_flagd(&doc.to_string(), "flags.json").expect("valid");
    let mut disagree = Vec::new();
    let mut yes = 0;
    for (i, case) in cases.iter().enumerate() {
        let key = case[0].as_str().unwrap_or_default();
        let ours = match set.evaluate(key, &ctx) {
            Ok(e) => e.variant.map_or(Value::Null, Value::String),
            Err(_) => json!("error"),
        };
        if ours == json!("yes") {
            yes += 1;
        }
        if ours != theirs[i] {
            disagree.push(format!(
                "{}: gantry {ours}, flagd-core {}",
                rules[i], theirs[i]
            ));
        }
    }
    assert!(
        disagree.is_empty(),
        "disagreements:\n{}",
        disagree.join("\n")
    );
    assert!(
        yes > 10 && yes < rules.len() - 5,
        "both outcomes are exercised ({yes} yes)"
    );
}
