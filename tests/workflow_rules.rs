//! One small hand-made workflow per conversion rule, checked against the prompt ComfyUI's
//! frontend would produce, plus format detection and the errors users see.

use comfy_fleet::workflow::{Format, ObjectInfo, Workflow, WorkflowError};
use serde_json::{Value, json};

/// A small server: definitions written like ComfyUI's, in the order that matters.
fn server() -> ObjectInfo {
    ObjectInfo::from_value(json!({
        "Sampler": {"input": {"required": {
            "model": ["MODEL", {}],
            "seed": ["INT", {"default": 0, "min": 0, "max": 100}],
            "steps": ["INT", {"default": 20, "min": 1, "max": 100}],
            "sampler_name": [["euler", "heun"], {}],
            "positive": ["CONDITIONING", {}]
        }, "optional": {
            "denoise": ["FLOAT", {"default": 1.0}]
        }}, "output": ["LATENT"], "display_name": "Sampler Display"},
        "Picker": {"input": {"required": {
            "style": [["a", "b", "c"], {"control_after_generate": true}],
            "count": ["INT", {"default": 1, "control_after_generate": true}],
            "label": ["STRING", {"default": ""}]
        }}, "output": ["STRING"]},
        "Forced": {"input": {"required": {
            "value": ["INT", {"forceInput": true}],
            "text": ["STRING", {"default": "x"}]
        }}, "output": ["STRING"]},
        "Loader": {"input": {"required": {
            "image": [["a.png", "b.png"], {"image_upload": true}]
        }, "optional": {"strength": ["FLOAT", {"default": 0.5}]}}, "output": ["IMAGE", "MASK"]},
        "Model": {"input": {"required": {"name": [["m.safetensors"], {}]}}, "output": ["MODEL"]},
        "Encode": {"input": {"required": {
            "text": ["STRING", {"multiline": true, "dynamicPrompts": true}],
            "model": ["MODEL", {}]
        }}, "output": ["CONDITIONING"]},
        "Blur": {"input": {"required": {
            "image": ["IMAGE", {}],
            "mask": ["MASK", {}],
            "radius": ["INT", {"default": 1}]
        }}, "output": ["IMAGE"]},
        "Save": {"input": {"required": {"images": ["IMAGE", {}], "points": ["STRING", {}]}}, "output": [], "output_node": true}
    }))
    .unwrap()
}

fn node(id: i64, class: &str, inputs: Value, outputs: Value, values: Value) -> Value {
    json!({"id": id, "type": class, "mode": 0, "inputs": inputs, "outputs": outputs,
           "widgets_values": values, "properties": {}})
}

fn ui(nodes: Value, links: Value) -> Value {
    json!({"last_node_id": 100, "last_link_id": 100, "nodes": nodes, "links": links, "version": 0.4})
}

fn convert(doc: &Value) -> Result<Value, WorkflowError> {
    Workflow::from_value(doc.clone())?
        .to_api(&server())
        .map(|p| p.into_value())
}

fn inputs(prompt: &Value, id: &str) -> Value {
    prompt[id]["inputs"].clone()
}

#[test]
fn detects_ui_api_and_neither_with_a_reason() {
    let ui_doc = ui(json!([]), json!([]));
    assert_eq!(Workflow::from_value(ui_doc).unwrap().format(), Format::Ui);
    let api = json!({"1": {"class_type": "Model", "inputs": {"name": "m.safetensors"}}});
    assert_eq!(Workflow::from_value(api).unwrap().format(), Format::Api);
    let cases = [
        (
            json!({"nodes": []}),
            "looks like a UI workflow, but `links`",
        ),
        (
            json!({"1": {"class_type": "Model"}}),
            "looks like an API prompt, but node `1` lacks `inputs`",
        ),
        (json!([1, 2]), "JSON array"),
        (json!({"foo": 1}), "neither a UI workflow"),
        (json!({}), "empty object"),
        (
            json!({"prompt": {"1": {"class_type": "Model", "inputs": {}}}}),
            "POST /prompt request body",
        ),
    ];
    for (doc, want) in cases {
        let err = Workflow::from_value(doc.clone()).unwrap_err().to_string();
        assert!(err.contains(want), "{doc}: {err}");
    }
    let err = Workflow::parse(b"{not json").unwrap_err().to_string();
    assert!(err.contains("not valid JSON"), "{err}");
}

#[test]
fn api_prompts_are_accepted_and_checked_for_unknown_classes() {
    let api = json!({"1": {"class_type": "Model", "inputs": {"name": "m.safetensors"}}});
    assert_eq!(convert(&api).unwrap(), api);
    let bad = json!({"7": {"class_type": "FancyCustomNode", "inputs": {}}});
    let err = convert(&bad).unwrap_err().to_string();
    assert!(
        err.contains("node 7") && err.contains("FancyCustomNode") && err.contains("custom node"),
        "{err}"
    );
}

#[test]
fn widget_values_follow_definition_order_and_skip_the_seed_control() {
    let doc = ui(
        json!([node(
            1,
            "Sampler",
            json!([]),
            json!([]),
            json!([42, "randomize", 30, "heun", 0.75])
        )]),
        json!([]),
    );
    let p = convert(&doc).unwrap();
    assert_eq!(
        inputs(&p, "1"),
        json!({"seed": 42, "steps": 30, "sampler_name": "heun", "denoise": 0.75})
    );
    assert_eq!(p["1"]["class_type"], "Sampler");
    assert_eq!(
        p["1"]["_meta"]["title"], "Sampler Display",
        "display name when no title"
    );
}

#[test]
fn combo_with_control_takes_two_extra_slots_and_int_with_control_one() {
    let doc = ui(
        json!([node(
            1,
            "Picker",
            json!([]),
            json!([]),
            json!(["b", "fixed", "", 3, "increment", "hi"])
        )]),
        json!([]),
    );
    assert_eq!(
        inputs(&convert(&doc).unwrap(), "1"),
        json!({"style": "b", "count": 3, "label": "hi"})
    );
}

#[test]
fn force_input_consumes_no_slot() {
    let doc = ui(
        json!([node(1, "Forced", json!([]), json!([]), json!(["hello"]))]),
        json!([]),
    );
    assert_eq!(
        inputs(&convert(&doc).unwrap(), "1"),
        json!({"text": "hello"})
    );
}

#[test]
fn upload_button_slot_sits_after_the_required_inputs() {
    let doc = ui(
        json!([node(
            1,
            "Loader",
            json!([]),
            json!([]),
            json!(["b.png", "image", 0.9])
        )]),
        json!([]),
    );
    assert_eq!(
        inputs(&convert(&doc).unwrap(), "1"),
        json!({"image": "b.png", "strength": 0.9})
    );
}

#[test]
fn surplus_values_are_ignored_and_missing_ones_take_defaults() {
    let doc = ui(
        json!([
            node(
                1,
                "Sampler",
                json!([]),
                json!([]),
                json!([1, "fixed", 2, "euler", 0.5, "extra", 9])
            ),
            node(2, "Sampler", json!([]), json!([]), json!([3, "fixed"])),
        ]),
        json!([]),
    );
    let p = convert(&doc).unwrap();
    assert_eq!(
        inputs(&p, "1"),
        json!({"seed": 1, "steps": 2, "sampler_name": "euler", "denoise": 0.5})
    );
    assert_eq!(
        inputs(&p, "2"),
        json!({"seed": 3, "steps": 20, "sampler_name": "euler", "denoise": 1.0})
    );
}

#[test]
fn links_override_widget_values_of_the_same_name_and_resolve_through_reroutes() {
    let doc = ui(
        json!([
            node(
                1,
                "Model",
                json!([]),
                json!([{"type": "MODEL"}]),
                json!(["m.safetensors"])
            ),
            node(
                2,
                "Reroute",
                json!([{"name": "", "type": "*", "link": 1}]),
                json!([{"type": "*"}]),
                Value::Null
            ),
            node(
                3,
                "Reroute",
                json!([{"name": "", "type": "*", "link": 2}]),
                json!([{"type": "*"}]),
                Value::Null
            ),
            node(
                4,
                "Forced",
                json!([]),
                json!([{"type": "STRING"}]),
                json!(["s"])
            ),
            node(
                5,
                "Sampler",
                json!([{"name": "model", "type": "MODEL", "link": 3},
                       {"name": "steps", "type": "INT", "widget": {"name": "steps"}, "link": 4}]),
                json!([]),
                json!([1, "fixed", 2, "euler", 1])
            ),
        ]),
        json!([
            [1, 1, 0, 2, 0, "MODEL"],
            [2, 2, 0, 3, 0, "*"],
            [3, 3, 0, 5, 0, "MODEL"],
            [4, 4, 0, 5, 1, "INT"]
        ]),
    );
    let p = convert(&doc).unwrap();
    assert_eq!(
        p.as_object().unwrap().len(),
        3,
        "reroutes are not emitted: {p}"
    );
    assert_eq!(inputs(&p, "5")["model"], json!(["1", 0]));
    assert_eq!(
        inputs(&p, "5")["steps"],
        json!(["4", 0]),
        "the link wins over the widget value"
    );
}

#[test]
fn primitive_node_values_are_pushed_into_targets_and_notes_are_dropped() {
    let doc = ui(
        json!([
            node(
                1,
                "PrimitiveNode",
                json!([]),
                json!([{"type": "INT", "links": [1]}]),
                json!([77, "fixed"])
            ),
            node(
                2,
                "Sampler",
                json!([{"name": "seed", "type": "INT", "widget": {"name": "seed"}, "link": 1}]),
                json!([]),
                json!([1, "fixed", 2, "euler", 1])
            ),
            node(3, "Note", json!([]), json!([]), json!(["remember"])),
            node(4, "MarkdownNote", json!([]), json!([]), json!(["# hi"])),
        ]),
        json!([[1, 1, 0, 2, 0, "INT"]]),
    );
    let p = convert(&doc).unwrap();
    assert_eq!(p.as_object().unwrap().keys().collect::<Vec<_>>(), ["2"]);
    assert_eq!(inputs(&p, "2")["seed"], 77);
}

#[test]
fn muted_nodes_are_dropped_and_inputs_fall_back_to_their_widget() {
    let mut muted = node(
        1,
        "Forced",
        json!([]),
        json!([{"type": "STRING"}]),
        json!(["s"]),
    );
    muted["mode"] = json!(2);
    let doc = ui(
        json!([
            muted,
            node(
                2,
                "Model",
                json!([]),
                json!([{"type": "MODEL"}]),
                json!(["m.safetensors"])
            ),
            node(
                3,
                "Encode",
                json!([{"name": "model", "type": "MODEL", "link": 2},
                       {"name": "text", "type": "STRING", "widget": {"name": "text"}, "link": 1}]),
                json!([]),
                json!(["widget text"])
            ),
            node(
                4,
                "Save",
                json!([{"name": "images", "type": "IMAGE", "link": 3}]),
                json!([]),
                json!(["p"])
            ),
        ]),
        json!([
            [1, 1, 0, 3, 1, "STRING"],
            [2, 2, 0, 3, 0, "MODEL"],
            [3, 1, 0, 4, 0, "STRING"]
        ]),
    );
    let p = convert(&doc).unwrap();
    assert!(p.get("1").is_none());
    assert_eq!(
        inputs(&p, "3")["text"],
        "widget text",
        "widget input falls back to its value"
    );
    assert_eq!(
        inputs(&p, "4"),
        json!({"points": "p"}),
        "a socket-only input is left out"
    );
}

#[test]
fn bypassed_nodes_pass_a_matching_input_through() {
    let mut blur = node(
        3,
        "Blur",
        json!([{"name": "mask", "type": "MASK", "link": 2}, {"name": "image", "type": "IMAGE", "link": 1}]),
        json!([{"type": "IMAGE"}]),
        json!([4]),
    );
    blur["mode"] = json!(4);
    let doc = ui(
        json!([
            node(
                1,
                "Loader",
                json!([]),
                json!([{"type": "IMAGE"}, {"type": "MASK"}]),
                json!(["a.png", "image"])
            ),
            blur,
            node(
                4,
                "Save",
                json!([{"name": "images", "type": "IMAGE", "link": 3}]),
                json!([]),
                json!(["p"])
            ),
        ]),
        json!([
            [1, 1, 0, 3, 1, "IMAGE"],
            [2, 1, 1, 3, 0, "MASK"],
            [3, 3, 0, 4, 0, "IMAGE"]
        ]),
    );
    let p = convert(&doc).unwrap();
    assert!(p.get("3").is_none());
    assert_eq!(
        inputs(&p, "4")["images"],
        json!(["1", 0]),
        "the IMAGE input, not the MASK at slot 0"
    );
}

fn subgraph_doc(instance_values: Value, proxy: Option<Value>) -> Value {
    let mut instance = node(
        5,
        "sub-uuid",
        json!([{"name": "model", "type": "MODEL", "link": 1},
               {"name": "text", "type": "STRING", "widget": {"name": "text"}, "link": null}]),
        json!([{"type": "CONDITIONING", "links": [2]}]),
        instance_values,
    );
    if let Some(proxy) = proxy {
        instance["properties"] = json!({"proxyWidgets": proxy});
    }
    json!({
        "last_node_id": 10, "last_link_id": 10, "version": 0.4,
        "nodes": [
            node(1, "Model", json!([]), json!([{"type": "MODEL"}]), json!(["m.safetensors"])),
            instance,
            node(6, "Sampler",
                json!([{"name": "positive", "type": "CONDITIONING", "link": 2}]),
                json!([]), json!([1, "fixed", 2, "euler", 1])),
        ],
        "links": [[1, 1, 0, 5, 0, "MODEL"], [2, 5, 0, 6, 0, "CONDITIONING"]],
        "definitions": {"subgraphs": [{
            "id": "sub-uuid", "name": "Encode block",
            "inputs": [{"id": "a", "name": "model", "type": "MODEL"}, {"id": "b", "name": "text", "type": "STRING"}],
            "outputs": [{"id": "c", "name": "CONDITIONING", "type": "CONDITIONING"}],
            "inputNode": {"id": -10}, "outputNode": {"id": -20},
            "nodes": [
                // Id 1 clashes with the root's node 1: renumbered after last_node_id.
                node(1, "Encode",
                    json!([{"name": "model", "type": "MODEL", "link": 11},
                           {"name": "text", "type": "STRING", "widget": {"name": "text"}, "link": 12}]),
                    json!([{"type": "CONDITIONING"}]), json!(["inner text"]))
            ],
            "links": [
                {"id": 11, "origin_id": -10, "origin_slot": 0, "target_id": 1, "target_slot": 0, "type": "MODEL"},
                {"id": 12, "origin_id": -10, "origin_slot": 1, "target_id": 1, "target_slot": 1, "type": "STRING"},
                {"id": 13, "origin_id": 1, "origin_slot": 0, "target_id": -20, "target_slot": 0, "type": "CONDITIONING"}
            ]
        }]}
    })
}

#[test]
fn subgraphs_are_flattened_with_path_ids_and_deduplicated_inner_ids() {
    let p = convert(&subgraph_doc(json!(["instance text"]), None)).unwrap();
    let keys: Vec<&String> = p.as_object().unwrap().keys().collect();
    assert!(
        keys.contains(&&"5:11".to_owned()),
        "inner id 1 clashes, becomes 11: {keys:?}"
    );
    assert_eq!(
        inputs(&p, "5:11")["model"],
        json!(["1", 0]),
        "input matched by name, resolved outside"
    );
    assert_eq!(
        inputs(&p, "5:11")["text"],
        "instance text",
        "promoted widget value of the instance"
    );
    assert_eq!(
        inputs(&p, "6")["positive"],
        json!(["5:11", 0]),
        "output resolved through -20"
    );
}

#[test]
fn promoted_widgets_with_proxy_widgets_use_the_inner_value_when_the_instance_has_none() {
    let p = convert(&subgraph_doc(json!([]), Some(json!([["-1", "text"]])))).unwrap();
    assert_eq!(inputs(&p, "5:11")["text"], "inner text");
    let p = convert(&subgraph_doc(
        json!(["from instance"]),
        Some(json!([["-1", "text"]])),
    ))
    .unwrap();
    assert_eq!(inputs(&p, "5:11")["text"], "from instance");
}

#[test]
fn muted_subgraph_instances_contribute_nothing() {
    let mut doc = subgraph_doc(json!([]), None);
    doc["nodes"][1]["mode"] = json!(2);
    let p = convert(&doc).unwrap();
    assert!(p.as_object().unwrap().keys().all(|k| !k.starts_with("5:")));
    assert!(inputs(&p, "6").get("positive").is_none());
}

#[test]
fn dynamic_prompts_are_resolved_on_text_widgets() {
    let doc = ui(
        json!([node(
            1,
            "Encode",
            json!([]),
            json!([]),
            json!(["a {single} cat /* hidden */ \\{kept\\} // gone\nnext"])
        )]),
        json!([]),
    );
    assert_eq!(
        inputs(&convert(&doc).unwrap(), "1")["text"],
        "a single cat  {kept} \nnext"
    );
}

#[test]
fn array_literals_are_wrapped_and_titles_kept() {
    let mut save = node(1, "Save", json!([]), json!([]), json!([[1, 2, 3]]));
    save["title"] = json!("My Output");
    let p = convert(&ui(json!([save]), json!([]))).unwrap();
    assert_eq!(inputs(&p, "1")["points"], json!({"__value__": [1, 2, 3]}));
    assert_eq!(p["1"]["_meta"]["title"], "My Output");
}

#[test]
fn group_nodes_and_unknown_types_are_rejected_naming_the_node() {
    let doc = ui(
        json!([node(
            9,
            "workflow>My Group",
            json!([]),
            json!([]),
            json!([])
        )]),
        json!([]),
    );
    let err = convert(&doc).unwrap_err().to_string();
    assert!(
        err.contains("node 9") && err.contains("workflow>My Group") && err.contains("subgraph"),
        "{err}"
    );
    let doc = ui(
        json!([node(3, "SuperUpscaler+", json!([]), json!([]), json!([]))]),
        json!([]),
    );
    let err = convert(&doc).unwrap_err().to_string();
    assert!(
        err.contains("node 3") && err.contains("SuperUpscaler+") && err.contains("custom node"),
        "{err}"
    );
}

#[test]
fn reroute_loops_and_self_containing_subgraphs_are_errors_not_hangs() {
    let doc = ui(
        json!([
            node(
                1,
                "Reroute",
                json!([{"name": "", "type": "*", "link": 2}]),
                json!([{"type": "*"}]),
                Value::Null
            ),
            node(
                2,
                "Reroute",
                json!([{"name": "", "type": "*", "link": 1}]),
                json!([{"type": "*"}]),
                Value::Null
            ),
            node(
                3,
                "Save",
                json!([{"name": "images", "type": "IMAGE", "link": 3}]),
                json!([]),
                json!(["p"])
            ),
        ]),
        json!([
            [1, 1, 0, 2, 0, "*"],
            [2, 2, 0, 1, 0, "*"],
            [3, 2, 0, 3, 0, "IMAGE"]
        ]),
    );
    assert!(matches!(convert(&doc), Err(WorkflowError::Cycle(_))));
    let mut doc = subgraph_doc(json!([]), None);
    doc["definitions"]["subgraphs"][0]["nodes"]
        .as_array_mut()
        .unwrap()
        .push(node(2, "sub-uuid", json!([]), json!([]), json!([])));
    assert!(matches!(convert(&doc), Err(WorkflowError::Cycle(_))));
}
