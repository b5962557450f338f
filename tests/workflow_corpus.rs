//! The conversion oracle: every UI workflow of the vendored corpus is converted natively and
//! compared with the prompt the real ComfyUI frontend produced for it.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;

use comfy_fleet::workflow::{ObjectInfo, Workflow};
use serde_json::Value;
use support::fixtures::corpus;

/// Cases known not to match yet, each with the reason. The test fails if one of these starts
/// passing (remove it from the list) or if a case not listed here fails.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

/// Compares two JSON values the way the corpus README asks: maps ignore key order, numbers
/// compare by value. Returns the path of the first difference.
fn diff(expected: &Value, actual: &Value, path: &str) -> Option<String> {
    match (expected, actual) {
        (Value::Number(a), Value::Number(b)) => {
            if a.as_f64() == b.as_f64() {
                None
            } else {
                Some(format!("{path}: expected {a}, got {b}"))
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            let ka: BTreeSet<&String> = a.keys().collect();
            let kb: BTreeSet<&String> = b.keys().collect();
            if ka != kb {
                let missing: Vec<_> = ka.difference(&kb).collect();
                let extra: Vec<_> = kb.difference(&ka).collect();
                return Some(format!(
                    "{path}: missing keys {missing:?}, unexpected keys {extra:?}"
                ));
            }
            a.iter()
                .find_map(|(k, v)| diff(v, &b[k], &format!("{path}/{k}")))
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return Some(format!("{path}: expected {expected}, got {actual}"));
            }
            a.iter()
                .zip(b)
                .enumerate()
                .find_map(|(i, (x, y))| diff(x, y, &format!("{path}/{i}")))
        }
        _ if expected == actual => None,
        _ => Some(format!(
            "{path}: expected {}, got {}",
            truncate(expected),
            truncate(actual)
        )),
    }
}

fn truncate(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 300 {
        format!("{}…", s.chars().take(300).collect::<String>())
    } else {
        s
    }
}

/// Compares prompts without `_meta`; returns (hard difference, soft `_meta` difference).
fn compare(expected: &Value, actual: &Value) -> (Option<String>, Option<String>) {
    let strip = |v: &Value| -> Value {
        let mut v = v.clone();
        if let Value::Object(map) = &mut v {
            for node in map.values_mut() {
                if let Value::Object(n) = node {
                    n.remove("_meta");
                }
            }
        }
        v
    };
    let hard = diff(&strip(expected), &strip(actual), "");
    let soft = expected.as_object().and_then(|map| {
        map.iter().find_map(|(id, node)| {
            let want = node.get("_meta");
            let got = actual.get(id).and_then(|n| n.get("_meta"));
            (want != got).then(|| format!("{id}/_meta: expected {want:?}, got {got:?}"))
        })
    });
    (hard, soft)
}

fn cases() -> Vec<(String, PathBuf)> {
    let dir = corpus("cases");
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus missing at {}: {e}", dir.display()))
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path
                .file_name()?
                .to_str()?
                .strip_suffix(".workflow.json")?
                .to_owned();
            Some((name, path))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn corpus_converts_exactly_like_the_frontend() {
    let object_info = ObjectInfo::load(&corpus("object_info.json")).unwrap();
    let cases = cases();
    assert_eq!(cases.len(), 456, "the corpus README promises 456 cases");
    let mut passed = 0;
    let mut meta_mismatches = 0;
    let mut unexpected_failures = Vec::new();
    let mut unexpected_passes = Vec::new();
    for (name, path) in &cases {
        let bytes = std::fs::read(path).unwrap();
        let expected: Value = serde_json::from_slice(
            &std::fs::read(path.with_file_name(format!("{name}.prompt.json"))).unwrap(),
        )
        .unwrap();
        let outcome = Workflow::parse(&bytes)
            .and_then(|w| w.to_api(&object_info))
            .map_err(|e| e.to_string())
            .and_then(|prompt| {
                let actual = prompt.into_value();
                let (hard, soft) = compare(&expected, &actual);
                if soft.is_some() {
                    meta_mismatches += 1;
                }
                hard.map_or(Ok(()), Err)
            });
        let known = KNOWN_DIFFERENCES.iter().any(|(n, _)| n == name);
        match (outcome, known) {
            (Ok(()), false) => passed += 1,
            (Ok(()), true) => unexpected_passes.push(name.clone()),
            (Err(_), true) => {}
            (Err(why), false) => unexpected_failures.push(format!("{name}: {why}")),
        }
    }
    println!(
        "corpus: {passed}/{} cases convert exactly ({} known differences); _meta differs in {meta_mismatches} cases (soft check)",
        cases.len(),
        KNOWN_DIFFERENCES.len()
    );
    assert!(
        unexpected_failures.is_empty(),
        "{} cases fail:\n{}",
        unexpected_failures.len(),
        unexpected_failures.join("\n")
    );
    assert!(
        unexpected_passes.is_empty(),
        "listed as known differences but now pass (remove them from the list): {unexpected_passes:?}"
    );
}
