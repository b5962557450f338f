//! The converter never panics or hangs: arbitrary JSON, and real corpus workflows with random
//! damage (dropped keys, wrong types, dangling links, reroute loops, self-containing subgraphs).

mod support;

use std::sync::LazyLock;

use comfy_fleet::workflow::{ObjectInfo, Workflow};
use proptest::prelude::*;
use serde_json::{Value, json};
use support::fixtures::corpus;

static OBJECT_INFO: LazyLock<ObjectInfo> =
    LazyLock::new(|| ObjectInfo::load(&corpus("object_info.json")).unwrap());

/// A spread of corpus cases: subgraphs, bypass, reroutes, primitives, plain ones.
static SAMPLES: LazyLock<Vec<Value>> = LazyLock::new(|| {
    let dir = corpus("cases");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".workflow.json"))
        .collect();
    names.sort();
    names
        .iter()
        .step_by(9)
        .map(|n| serde_json::from_slice(&std::fs::read(dir.join(n)).unwrap()).unwrap())
        .collect()
});

fn convert(doc: Value) {
    // Errors are fine; panics and hangs are not.
    if let Ok(w) = Workflow::from_value(doc) {
        let _ = w.to_api(&OBJECT_INFO);
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[a-zA-Z0-9:>/ _-]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("Reroute"),
            Just("KSampler"),
            Just("PrimitiveNode"),
            Just("-10"),
            Just("-20")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("nodes".to_owned()),
                        Just("links".to_owned()),
                        Just("id".to_owned()),
                        Just("type".to_owned()),
                        Just("inputs".to_owned()),
                        Just("outputs".to_owned()),
                        Just("link".to_owned()),
                        Just("widgets_values".to_owned()),
                        Just("mode".to_owned()),
                        Just("definitions".to_owned()),
                        Just("subgraphs".to_owned()),
                        Just("class_type".to_owned()),
                        "[a-z]{1,6}",
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Every (container, key) path in a document, up to a limit.
fn paths(v: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    if out.len() > 4000 {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                prefix.push(k.clone());
                out.push(prefix.clone());
                paths(c, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                prefix.push(i.to_string());
                out.push(prefix.clone());
                paths(c, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn parent_mut<'a>(root: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut cur = root;
    for key in &path[..path.len().saturating_sub(1)] {
        cur = match cur {
            Value::Object(m) => m.get_mut(key)?,
            Value::Array(a) => a.get_mut(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

#[derive(Debug, Clone)]
enum Damage {
    Drop,
    Replace(Value),
    DanglingLink(i64),
    SelfLink,
    SelfContainingSubgraph,
}

fn arb_damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        3 => Just(Damage::Drop),
        3 => prop_oneof![
            Just(json!(null)), Just(json!("x")), Just(json!(-10)), Just(json!(1e300)),
            Just(json!([])), Just(json!({})), Just(json!([1, 2, 3, 4, 5, 6])), Just(json!(-20)),
        ].prop_map(Damage::Replace),
        1 => (0i64..100000).prop_map(Damage::DanglingLink),
        1 => Just(Damage::SelfLink),
        1 => Just(Damage::SelfContainingSubgraph),
    ]
}

fn apply(doc: &mut Value, damage: &Damage, pick: usize) {
    match damage {
        Damage::Drop | Damage::Replace(_) => {
            let mut all = Vec::new();
            paths(doc, &mut Vec::new(), &mut all);
            if all.is_empty() {
                return;
            }
            let path = all[pick % all.len()].clone();
            let Some(last) = path.last().cloned() else {
                return;
            };
            if let Some(parent) = parent_mut(doc, &path) {
                match (parent, damage) {
                    (Value::Object(m), Damage::Drop) => {
                        m.shift_remove(&last);
                    }
                    (Value::Array(a), Damage::Drop) => {
                        if let Ok(i) = last.parse::<usize>()
                            && i < a.len()
                        {
                            a.remove(i);
                        }
                    }
                    (Value::Object(m), Damage::Replace(v)) => {
                        m.insert(last, v.clone());
                    }
                    (Value::Array(a), Damage::Replace(v)) => {
                        if let Some(slot) = last.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                            *slot = v.clone();
                        }
                    }
                    _ => {}
                }
            }
        }
        Damage::DanglingLink(id) => {
            if let Some(nodes) = doc.get_mut("nodes").and_then(Value::as_array_mut) {
                let n = nodes.len().max(1);
                if let Some(input) = nodes
                    .get_mut(pick % n)
                    .and_then(|node| node.get_mut("inputs"))
                    .and_then(Value::as_array_mut)
                    .and_then(|i| i.first_mut())
                    .and_then(Value::as_object_mut)
                {
                    // An earlier damage may have turned the input into something else.
                    input.insert("link".into(), json!(id));
                }
            }
        }
        Damage::SelfLink => {
            // Every link now points from its target back into itself: loops everywhere.
            if let Some(links) = doc.get_mut("links").and_then(Value::as_array_mut) {
                for l in links.iter_mut() {
                    if let Some(a) = l.as_array_mut()
                        && a.len() >= 5
                    {
                        a[1] = a[3].clone();
                    }
                }
            }
        }
        Damage::SelfContainingSubgraph => {
            if let Some(defs) = doc
                .get_mut("definitions")
                .and_then(|d| d.get_mut("subgraphs"))
                .and_then(Value::as_array_mut)
            {
                for def in defs.iter_mut() {
                    let id = def["id"].clone();
                    if let Some(nodes) = def.get_mut("nodes").and_then(Value::as_array_mut) {
                        nodes.push(json!({"id": 999_999, "type": id, "mode": 0, "inputs": [], "outputs": []}));
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics(doc in arb_json()) {
        convert(doc.clone());
        convert(json!({"nodes": [doc.clone()], "links": [doc.clone()]}));
        convert(json!({"nodes": [], "links": [], "definitions": {"subgraphs": [doc]}}));
    }

    #[test]
    fn damaged_corpus_workflows_never_panic(
        case in 0usize..1000,
        damages in prop::collection::vec((arb_damage(), any::<usize>()), 1..5),
    ) {
        let mut doc = SAMPLES[case % SAMPLES.len()].clone();
        for (damage, pick) in &damages {
            apply(&mut doc, damage, *pick);
        }
        convert(doc);
    }
}
