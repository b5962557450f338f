//! The prompt rules against a small `/object_info` shaped as ComfyUI 0.33.0 serves these classes.

use serde_json::{Value, json};

use super::*;

fn object_info() -> Value {
    json!({
        "EmptyImage": {
            "input": {"required": {
                "width": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}],
                "height": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}],
                "batch_size": ["INT", {"default": 1, "min": 1, "max": 4096}],
                "color": ["INT", {"default": 0, "min": 0, "max": 16777215, "step": 1}]
            }},
            "input_order": {"required": ["width", "height", "batch_size", "color"]},
            "output": ["IMAGE"], "output_node": false
        },
        "ImageInvert": {
            "input": {"required": {"image": ["IMAGE"]}},
            "output": ["IMAGE"], "output_node": false
        },
        "SaveImage": {
            "input": {"required": {"images": ["IMAGE", {}], "filename_prefix": ["STRING", {"default": "ComfyUI"}]}},
            "output": ["IMAGE"], "output_node": true
        },
        "LoadImage": {
            "input": {"required": {"image": [["operator.png"], {"image_upload": true}]}},
            "output": ["IMAGE", "MASK"], "output_node": false
        },
        "Sampler": {
            "input": {"required": {"sampler_name": [["euler", "heun"], {}]}},
            "output": ["IMAGE"], "output_node": false
        }
    })
}

/// A server with no live lists, where only `present` exists as an image file.
struct Files(&'static [&'static str]);

impl ServerFiles for Files {
    fn live_choices(&self, _class: &str, _input: &str) -> Option<Vec<Value>> {
        None
    }
    fn image_exists(&self, name: &str) -> bool {
        self.0.contains(&name)
    }
}

fn trivial(width: Value) -> Value {
    json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": width, "height": 64, "batch_size": 1, "color": 255}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}}
    })
}

fn validate(prompt: Value) -> Verdict {
    let info = object_info();
    let mut map = prompt.as_object().cloned().unwrap();
    validate_prompt(
        &mut map,
        None,
        NodeClasses::new(info.as_object().unwrap()),
        &Files(&[]),
    )
}

fn check(prompt: Value) -> Result<(), Refusal> {
    let info = object_info();
    check_prompt(
        prompt.as_object().unwrap(),
        NodeClasses::new(info.as_object().unwrap()),
        &Files(&["fleet/job/image.png"]),
    )
}

fn said(prompt: Value) -> String {
    check(prompt).unwrap_err().to_string()
}

#[test]
fn a_valid_prompt_is_accepted_with_its_output() {
    match validate(trivial(json!(64))) {
        Verdict::Accepted {
            outputs,
            node_errors,
        } => {
            assert_eq!(outputs, ["3"]);
            assert!(node_errors.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert!(
        check(trivial(json!("64"))).is_ok(),
        "a numeric string converts"
    );
}

#[test]
fn a_string_for_an_int_gets_pythons_message_filed_under_its_node() {
    let Verdict::Rejected { error, node_errors } = validate(trivial(json!("abc"))) else {
        panic!()
    };
    assert_eq!(error["type"], "prompt_outputs_failed_validation");
    assert_eq!(error["details"], "");
    let e = &node_errors["1"]["errors"][0];
    assert_eq!(e["type"], "invalid_input_type");
    assert_eq!(
        e["details"],
        "width, abc, invalid literal for int() with base 10: 'abc'"
    );
    assert_eq!(node_errors["1"]["dependent_outputs"], json!(["3"]));
    assert_eq!(
        said(trivial(json!("abc"))),
        "node 1 (EmptyImage), input `width`: Failed to convert an input value to a INT value: invalid literal for int() with base 10: 'abc'"
    );
}

#[test]
fn out_of_range_values_name_the_bound() {
    assert_eq!(
        said(trivial(json!(0))),
        "node 1 (EmptyImage), input `width`: Value 0 smaller than min of 1"
    );
    assert_eq!(
        said(trivial(json!(20000))),
        "node 1 (EmptyImage), input `width`: Value 20000 bigger than max of 16384"
    );
}

#[test]
fn a_dangling_link_is_filed_under_the_linking_node() {
    let mut p = trivial(json!(64));
    p["2"]["inputs"]["image"] = json!(["99", 0]);
    let Verdict::Rejected { node_errors, .. } = validate(p.clone()) else {
        panic!()
    };
    let e = &node_errors["2"]["errors"][0];
    assert_eq!(e["type"], "exception_during_inner_validation");
    assert_eq!(e["details"], "'99'");
    // ComfyUI names the input of the node downstream (SaveImage's `images`).
    assert_eq!(e["extra_info"]["input_name"], "images");
    assert_eq!(
        said(p),
        "node 2 (ImageInvert), input `image`: it is linked to node 99, which is not in the workflow"
    );
}

#[test]
fn a_link_to_a_missing_slot_or_of_the_wrong_type_is_refused() {
    let mut p = trivial(json!(64));
    p["2"]["inputs"]["image"] = json!(["1", 3]);
    assert_eq!(
        said(p),
        "node 2 (ImageInvert), input `image`: it is linked to output 3 of node 1 (EmptyImage), which has 1 output"
    );
    let p = json!({
        "1": {"class_type": "LoadImage", "inputs": {"image": "operator.png"}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 1]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}}
    });
    assert_eq!(
        said(p),
        "node 2 (ImageInvert), input `image`: Return type mismatch between linked nodes: it receives MASK where IMAGE is expected"
    );
}

#[test]
fn a_cycle_is_refused() {
    let p = json!({
        "1": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}}
    });
    assert_eq!(
        said(p),
        "node 2 (ImageInvert): Dependency cycle detected: 2 (ImageInvert) -> 1 (ImageInvert) -> 2 (ImageInvert); \
         node 1 (ImageInvert): Dependency cycle detected: 2 (ImageInvert) -> 1 (ImageInvert) -> 2 (ImageInvert)"
    );
}

#[test]
fn a_missing_required_input_and_a_value_off_the_list_are_named() {
    let mut p = trivial(json!(64));
    p["1"]["inputs"].as_object_mut().unwrap().remove("height");
    assert_eq!(
        said(p),
        "node 1 (EmptyImage), input `height`: Required input is missing"
    );
    let p = json!({
        "1": {"class_type": "Sampler", "inputs": {"sampler_name": "eular"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}
    });
    let refusal = check(p).unwrap_err();
    assert!(refusal.only_missing_choices());
    assert_eq!(
        refusal.to_string(),
        "node 1 (Sampler), input `sampler_name`: Value not in list: 'eular' not in ['euler', 'heun']"
    );
}

#[test]
fn load_image_checks_the_file_not_the_list() {
    let p = |name: &str| {
        json!({
            "1": {"class_type": "LoadImage", "inputs": {"image": name}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}
        })
    };
    assert!(check(p("fleet/job/image.png")).is_ok());
    assert_eq!(
        said(p("missing.png")),
        "node 1 (LoadImage), input `image`: Custom validation failed for node: Invalid image file: missing.png"
    );
}

#[test]
fn unknown_classes_and_prompts_without_outputs_are_refused_as_a_whole() {
    let p = json!({"5": {"class_type": "NoSuchNode", "inputs": {}}});
    assert_eq!(
        said(p),
        "node 5: Node 'NoSuchNode' not found. The custom node may not be installed."
    );
    let p = json!({"1": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}}});
    assert_eq!(
        said(p),
        "the workflow: Prompt has no outputs: add an output node (SaveImage, PreviewImage…) for the workflow to produce anything"
    );
}

#[test]
fn a_partly_valid_prompt_is_accepted_by_comfyui_but_refused_by_the_check() {
    let mut p = trivial(json!(64));
    p["4"] =
        json!({"class_type": "SaveImage", "inputs": {"images": ["9", 0], "filename_prefix": "y"}});
    match validate(p.clone()) {
        Verdict::Accepted {
            outputs,
            node_errors,
        } => {
            assert_eq!(outputs, ["3"]);
            assert!(node_errors.contains_key("4"));
        }
        other => panic!("{other:?}"),
    }
    assert!(said(p).starts_with("node 4 (SaveImage), input `images`"));
}

#[test]
fn a_node_that_is_not_an_object_crashes_comfyui_and_is_refused() {
    assert!(matches!(validate(json!({"1": 5})), Verdict::Crash));
    assert_eq!(
        said(json!({"1": 5})),
        "node 1: a node must be a JSON object with `class_type` and `inputs`"
    );
}

#[test]
fn extra_data_must_be_an_object() {
    assert!(check_extra_data(&json!({"a": 1})).is_ok());
    assert!(check_extra_data(&Value::Null).is_ok(), "none at all");
    assert_eq!(
        check_extra_data(&json!([1])).unwrap_err(),
        "`extra_data` must be a JSON object (it is an array); send {} or leave it out"
    );
}
