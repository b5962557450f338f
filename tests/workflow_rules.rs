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

// ---------------------------------------------------------------------------------------------
// Generalisation: node classes of a real server that no corpus workflow uses (checked against
// the corpus when these tests were written), each with the prompt the frontend's widget rules
// give for it, derived by hand from those rules.
// ---------------------------------------------------------------------------------------------

/// The `/object_info` captured from a real ComfyUI, as the fake server in this repository serves
/// it.
static CAPTURED: std::sync::LazyLock<ObjectInfo> = std::sync::LazyLock::new(|| {
    ObjectInfo::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fakes/comfyui/data/object_info.json"
    )))
    .unwrap()
});

fn convert_captured(doc: &Value) -> Value {
    Workflow::from_value(doc.clone())
        .unwrap()
        .to_api(&CAPTURED)
        .unwrap()
        .into_value()
}

/// A one-node workflow of `class` with these saved values; its inputs named in `linked` are fed
/// by a `Source` node (id 1) of the real server, one output each.
fn captured_single(class: &str, values: Value, linked: &[(&str, &str)]) -> Value {
    let inputs: Vec<Value> = linked
        .iter()
        .enumerate()
        .map(|(i, (name, kind))| json!({"name": name, "type": kind, "link": i + 1}))
        .collect();
    let links: Vec<Value> = linked
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| json!([i + 1, 1, 0, 2, i, kind]))
        .collect();
    ui(
        json!([
            node(
                1,
                "PrimitiveStringMultiline",
                json!([]),
                json!([{"type": "STRING"}]),
                json!(["source"])
            ),
            node(2, class, Value::Array(inputs), json!([]), values),
        ]),
        Value::Array(links),
    )
}

#[test]
fn dynamic_combo_inputs_of_the_chosen_option_follow_the_combo() {
    // `style` offers none / photo(photo) / art_style(art_style); COLORS stores a list.
    let values = |style: &str, sub: Option<&str>| {
        let mut v = vec![json!("a red fox"), json!("a snowy forest"), json!(style)];
        v.extend(sub.map(|s| json!(s)));
        v.extend([
            json!("moody"),
            json!("golden hour"),
            json!("photograph"),
            json!(["#112233", "#445566"]),
        ]);
        Value::Array(v)
    };
    let doc = captured_single(
        "BuildJsonPromptIdeogram",
        values("photo", Some("35mm, f/1.4")),
        &[("element", "ARRAY")],
    );
    assert_eq!(
        inputs(&convert_captured(&doc), "2"),
        json!({
            "element": ["1", 0],
            "high_level_description": "a red fox",
            "background": "a snowy forest",
            "style": "photo",
            "style.photo": "35mm, f/1.4",
            "aesthetics": "moody",
            "lighting": "golden hour",
            "medium": "photograph",
            "color_palette": {"__value__": ["#112233", "#445566"]}
        })
    );
    let doc = captured_single(
        "BuildJsonPromptIdeogram",
        values("none", None),
        &[("element", "ARRAY")],
    );
    let got = inputs(&convert_captured(&doc), "2");
    assert_eq!(got["style"], "none");
    assert_eq!(got["aesthetics"], "moody", "no sub-input, nothing shifts");
    assert!(got.get("style.photo").is_none() && got.get("style.art_style").is_none());
}

#[test]
fn dynamic_combo_options_carry_their_own_controls_and_growing_sockets() {
    // model = "seedream 5.0 pro": size_preset, width, height, images (growing IMAGE sockets),
    // prompt_optimization, seed (+ its control), watermark, thinking.
    let doc = captured_single(
        "ByteDanceSeedreamNodeV3",
        json!([
            "a lighthouse",
            "seedream 5.0 pro",
            "(2K) 2048x2048 (1:1)",
            2048,
            1728,
            "fast",
            7,
            "randomize",
            true,
            false
        ]),
        &[("model.images.image_1", "IMAGE")],
    );
    assert_eq!(
        inputs(&convert_captured(&doc), "2"),
        json!({
            "prompt": "a lighthouse",
            "model": "seedream 5.0 pro",
            "model.size_preset": "(2K) 2048x2048 (1:1)",
            "model.width": 2048,
            "model.height": 1728,
            "model.images.image_1": ["1", 0],
            "model.prompt_optimization": "fast",
            "model.seed": 7,
            "model.watermark": true,
            "model.thinking": false
        })
    );
}

#[test]
fn a_seed_after_a_dynamic_combo_keeps_its_control_slot() {
    // `inputs` = "2" brings text1/voice1/text2/voice2 (voices are sockets); `seed` has no
    // explicit control option, so its name gives it one.
    let doc = captured_single(
        "ElevenLabsTextToDialogue",
        json!([
            0.5,
            "auto",
            "eleven_v3",
            "2",
            "Hello there.",
            "Hi!",
            "en",
            7,
            "fixed",
            "opus_48000_192"
        ]),
        &[
            ("inputs.voice1", "ELEVENLABS_VOICE"),
            ("inputs.voice2", "ELEVENLABS_VOICE"),
        ],
    );
    assert_eq!(
        inputs(&convert_captured(&doc), "2"),
        json!({
            "stability": 0.5,
            "apply_text_normalization": "auto",
            "model": "eleven_v3",
            "inputs": "2",
            "inputs.text1": "Hello there.",
            "inputs.voice1": ["1", 0],
            "inputs.text2": "Hi!",
            "inputs.voice2": ["1", 0],
            "language_code": "en",
            "seed": 7,
            "output_format": "opus_48000_192"
        })
    );
}

#[test]
fn growing_input_groups_are_sockets_named_by_the_group() {
    let doc = captured_single(
        "StringFormat",
        json!(["{a} meets {b}"]),
        &[("values.a", "*"), ("values.b", "*")],
    );
    assert_eq!(
        inputs(&convert_captured(&doc), "2"),
        json!({"f_string": "{a} meets {b}", "values.a": ["1", 0], "values.b": ["1", 0]})
    );
}

#[test]
fn viewport_state_before_dimensions_does_not_shift_them() {
    // Current frontends store the 3D viewport's value in its own slot; older ones stored the
    // viewport's three buttons in front of it. Both keep width and height in place.
    let capture = json!({"image": "threed/scene.png [temp]", "camera_info": {"zoom": 1}});
    for values in [
        json!(["3d/chair.glb", capture, 512, 768]),
        json!([
            "3d/chair.glb",
            "upload3dmodel",
            "uploadExtraResources",
            "clear",
            capture,
            512,
            768
        ]),
    ] {
        let doc = captured_single("Load3D", values.clone(), &[]);
        assert_eq!(
            inputs(&convert_captured(&doc), "2"),
            json!({"model_file": "3d/chair.glb", "image": capture, "width": 512, "height": 768}),
            "{values}"
        );
    }
}

#[test]
fn trailing_editor_state_is_ignored() {
    // Save3DAdvanced / Preview3DAdvanced: viewport state, then dimensions, then whatever camera
    // and model state the editor appended.
    let camera = json!({"position": [1, 2, 3], "target": [0, 0, 0], "zoom": 1.5});
    let doc = captured_single(
        "Save3DAdvanced",
        json!(["3d/out", {"state": 1}, 640, 480, camera, "perspective", 75]),
        &[("model_3d", "FILE_3D")],
    );
    assert_eq!(
        inputs(&convert_captured(&doc), "2"),
        json!({
            "model_3d": ["1", 0],
            "filename_prefix": "3d/out",
            "viewport_state": {"state": 1},
            "width": 640,
            "height": 480
        })
    );
    let doc = captured_single(
        "Preview3DAdvanced",
        json!(["", 800, 600, camera, [camera]]),
        &[("model_3d", "FILE_3D"), ("camera_info", "LOAD3D_CAMERA")],
    );
    assert_eq!(
        inputs(&convert_captured(&doc), "2"),
        json!({
            "model_3d": ["1", 0],
            "camera_info": ["1", 0],
            "viewport_state": "",
            "width": 800,
            "height": 600
        })
    );
    // Preview3D gets the frontend's own `image` preview after `model_file`; camera state after
    // it is ignored.
    let doc = captured_single(
        "Preview3D",
        json!(["", "", camera, "orthographic"]),
        &[("model_file", "STRING")],
    );
    assert_eq!(
        inputs(&convert_captured(&doc), "2"),
        json!({"model_file": ["1", 0], "image": ""})
    );
}

#[test]
fn webcam_values_around_the_capture_keep_their_places() {
    let doc = captured_single(
        "WebcamCapture",
        json!(["", 640, 480, false, "capture"]),
        &[],
    );
    assert_eq!(
        inputs(&convert_captured(&doc), "2"),
        json!({"image": "", "width": 640, "height": 480, "capture_on_queue": false})
    );
}

#[test]
fn upload_and_refresh_companions_take_slots_but_are_not_sent() {
    // A remote combo gets an auto-refresh toggle and a refresh button, and its image_upload
    // flag an upload button after all required inputs.
    let doc = captured_single(
        "LoadImageOutput",
        json!(["ComfyUI_00001_.png [output]", false, "refresh", "image"]),
        &[],
    );
    assert_eq!(
        inputs(&convert_captured(&doc), "2"),
        json!({"image": "ComfyUI_00001_.png [output]"})
    );
    // The upload button follows `channel`, not `image`.
    let doc = captured_single("LoadImageMask", json!(["mask.png", "red", "image"]), &[]);
    assert_eq!(
        inputs(&convert_captured(&doc), "2"),
        json!({"image": "mask.png", "channel": "red"})
    );
}

#[test]
fn structured_editor_values_are_sent_as_stored() {
    let boxes =
        json!([{"x": 10, "y": 20, "width": 100, "height": 50, "metadata": {"palette": ["#fff"]}}]);
    let doc = captured_single(
        "CreateBoundingBoxes",
        json!([1024, 768, boxes, []]),
        &[("bboxes", "BOUNDING_BOX")],
    );
    assert_eq!(
        inputs(&convert_captured(&doc), "2"),
        json!({
            "width": 1024,
            "height": 768,
            "editor_state": {"__value__": boxes},
            "bboxes": ["1", 0],
            "last_incoming": {"__value__": []}
        })
    );
    let doc = captured_single(
        "TextOverlay",
        json!(["Hello", 7.5, "#ff0000", "bottom", "center", false]),
        &[("images", "IMAGE")],
    );
    assert_eq!(
        inputs(&convert_captured(&doc), "2"),
        json!({
            "images": ["1", 0],
            "text": "Hello",
            "font_size": 7.5,
            "color": "#ff0000",
            "position": "bottom",
            "align": "center",
            "outline": false
        })
    );
    // A forceInput bounding box is a socket only: the values start with the sizes.
    let doc = captured_single(
        "CropByBBoxes",
        json!([768, 640, 16, "pad"]),
        &[("image", "IMAGE"), ("bboxes", "BOUNDING_BOX")],
    );
    assert_eq!(
        inputs(&convert_captured(&doc), "2"),
        json!({
            "image": ["1", 0],
            "bboxes": ["1", 0],
            "output_width": 768,
            "output_height": 640,
            "padding": 16,
            "keep_aspect": "pad"
        })
    );
}

#[test]
fn widget_type_rules_hold_for_any_class() {
    // Class-wide rules on types and options, on definitions written for this test.
    let info = ObjectInfo::from_value(json!({
        "Rules": {"input": {"required": {
            "compare": ["IMAGECOMPARE", {"socketless": true}],
            "notes": ["MARKDOWN", {"default": "# hi"}],
            "seed": ["INT", {"default": 3, "control_after_generate": false}],
            "amount": ["FLOAT", {"default": 1.0, "control_after_generate": true}],
            "pick": ["COMBO", {"options": ["x", "y"], "remote": {"route": "/r"}}],
            "gadget": ["FANCY_EDITOR", {"socketless": true}],
            "tail": ["STRING", {}]
        }}, "output": []}
    }))
    .unwrap();
    let doc = ui(
        json!([node(
            1,
            "Rules",
            json!([]),
            json!([]),
            // notes, seed (no control), amount + control, pick + refresh toggle, gadget, tail
            json!(["# notes", 9, 2.5, "fixed", "y", false, {"k": 1}, "end"])
        )]),
        json!([]),
    );
    let p = Workflow::from_value(doc).unwrap().to_api(&info).unwrap();
    assert_eq!(
        p.into_value()["1"]["inputs"],
        json!({
            "compare": {"__value__": ["", ""]},
            "notes": "# notes",
            "seed": 9,
            "amount": 2.5,
            "pick": "y",
            "gadget": {"k": 1},
            "tail": "end"
        })
    );
}

#[test]
fn custom_combo_rebuilds_its_option_list_and_index() {
    let info = ObjectInfo::from_value(json!({
        "CustomCombo": {"input": {"required": {"choice": ["COMBO", {"options": []}]}},
                        "output": ["COMBO", "INT"]}
    }))
    .unwrap();
    let doc = ui(
        json!([node(
            1,
            "CustomCombo",
            json!([]),
            json!([]),
            json!(["beta", 0, "alpha", "beta"])
        )]),
        json!([]),
    );
    let p = Workflow::from_value(doc).unwrap().to_api(&info).unwrap();
    assert_eq!(
        p.into_value()["1"]["inputs"],
        json!({"choice": "beta", "index": 1, "option1": "alpha", "option2": "beta", "option3": ""})
    );
}
