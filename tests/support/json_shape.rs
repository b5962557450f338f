//! Comparing JSON by shape: the same keys and value types, recursively, while ids, timestamps,
//! paths and counts may differ. The contract tests hold `fake-comfyui` to the captures with it,
//! and the real-ComfyUI tier holds it to a live ComfyUI.

use serde_json::Value;

fn is_uuid(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}

pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Differences in shape between `expected` (a capture) and `actual` (the fake).
pub fn shape_diff(expected: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let uuid_keyed = !e.is_empty() && e.keys().all(|k| is_uuid(k));
            if uuid_keyed {
                if e.len() != a.len() {
                    out.push(format!(
                        "{path}: {} entries expected, got {}",
                        e.len(),
                        a.len()
                    ));
                }
                for ((_, ev), (ak, av)) in e.iter().zip(a.iter()) {
                    shape_diff(ev, av, &format!("{path}.{ak}"), out);
                }
                return;
            }
            for k in e.keys() {
                if !a.contains_key(k) {
                    out.push(format!("{path}: missing key {k:?}"));
                }
            }
            for k in a.keys() {
                if !e.contains_key(k) {
                    out.push(format!("{path}: unexpected key {k:?}"));
                }
            }
            for (k, ev) in e {
                if let Some(av) = a.get(k) {
                    shape_diff(ev, av, &format!("{path}.{k}"), out);
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() == a.len() {
                for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                    shape_diff(ev, av, &format!("{path}[{i}]"), out);
                }
            } else if e.is_empty() || a.is_empty() {
                out.push(format!(
                    "{path}: {} items expected, got {}",
                    e.len(),
                    a.len()
                ));
            } else {
                for (i, av) in a.iter().enumerate() {
                    shape_diff(&e[0], av, &format!("{path}[{i}]"), out);
                }
            }
        }
        (e, a) => {
            if kind(e) != kind(a) {
                out.push(format!(
                    "{path}: {} expected, got {} ({a})",
                    kind(e),
                    kind(a)
                ));
            }
        }
    }
}

#[track_caller]
pub fn assert_shape(expected: &Value, actual: &Value, what: &str) {
    let mut diffs = Vec::new();
    shape_diff(expected, actual, "$", &mut diffs);
    assert!(
        diffs.is_empty(),
        "{what}: shape differs from the reference:\n  {}\nactual: {actual}",
        diffs.join("\n  ")
    );
}
