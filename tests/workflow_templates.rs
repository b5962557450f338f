//! Templates and parameter injection: the shipped templates load, the model-free `demo`
//! validates against the reference server, and bad values get errors that say what is allowed.

mod support;

use std::collections::BTreeMap;

use comfy_fleet::workflow::{ObjectInfo, TemplateSet, Workflow, WorkflowError};
use serde_json::{Value, json};
use support::fixtures::{captured, corpus};
use support::workflows_dir;

fn fixture() -> ObjectInfo {
    ObjectInfo::load(&captured("object_info.json")).unwrap()
}

/// The corpus server's `/object_info` (its loader lists name real files).
fn corpus_server() -> ObjectInfo {
    ObjectInfo::load(&corpus("object_info.json")).unwrap()
}

fn templates() -> TemplateSet {
    TemplateSet::load(&workflows_dir()).unwrap()
}

fn params(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

#[test]
fn shipped_templates_all_load_with_maps_and_descriptions() {
    let set = templates();
    assert_eq!(
        set.names(),
        ["demo", "editflux", "editqwen", "generate", "upscale"]
    );
    for t in set.iter() {
        assert!(!t.description.is_empty(), "{} has no description", t.name);
        let params = t
            .params
            .as_ref()
            .unwrap_or_else(|| panic!("{} has no map", t.name));
        assert!(!params.is_empty(), "{}", t.name);
        for p in params {
            assert!(
                !p.description.is_empty(),
                "{}.{} has no description",
                t.name,
                p.name
            );
        }
    }
}

#[test]
fn shipped_templates_convert_and_their_parameters_resolve_on_the_corpus_server() {
    let oi = corpus_server();
    for t in templates().iter() {
        let (prompt, params) = t.resolved_params(&oi).unwrap();
        for p in &params {
            let id = match &p.node {
                comfy_fleet::workflow::NodeRef::Id(id) => id.clone(),
                comfy_fleet::workflow::NodeRef::Title(title) => prompt
                    .iter()
                    .find(|(_, n)| n["_meta"]["title"] == *title)
                    .map(|(id, _)| id.clone())
                    .unwrap_or_else(|| panic!("{}.{}: no node titled {title}", t.name, p.name)),
            };
            let node = &prompt[&id];
            assert!(
                node["inputs"].get(&p.input).is_some(),
                "{}.{}: node {id} has no input {}",
                t.name,
                p.name,
                p.input
            );
            let class = node["class_type"].as_str().unwrap();
            p.rules(class, &oi).unwrap();
        }
        // Models that the prepared prompt loads (with the defaults: an optional LoRA is
        // bypassed) are documented in the map.
        let prepared_models = t.prepare(&BTreeMap::new(), &oi).unwrap().models;
        for m in prepared_models {
            assert!(
                t.models.iter().any(|n| n.file == m),
                "{}: model {m} is not documented in the map",
                t.name
            );
        }
    }
}

#[test]
fn demo_validates_every_parameter_against_the_reference_server() {
    let oi = fixture();
    let set = templates();
    let demo = set.get("demo").unwrap();
    let all = params(&[
        ("width", json!("640")),
        ("height", json!(480)),
        ("seed", json!("12345")),
        ("color", json!(16711680)),
        ("strength", json!("0.25")),
        ("blur", json!(5)),
    ]);
    let prepared = demo.prepare(&all, &oi).unwrap();
    let p = &prepared.prompt;
    assert_eq!(p["1"]["inputs"]["width"], 640);
    assert_eq!(p["1"]["inputs"]["height"], 480);
    assert_eq!(p["1"]["inputs"]["color"], 16711680);
    assert_eq!(p["2"]["inputs"]["seed"], 12345);
    assert_eq!(p["2"]["inputs"]["strength"], 0.25);
    assert_eq!(p["3"]["inputs"]["blur_radius"], 5);
    assert_eq!(prepared.seed, Some(12345));
    assert!(prepared.models.is_empty(), "the demo needs no model files");
    assert!(prepared.input_images.is_empty());
    // Every class the demo uses exists on the reference server.
    for node in p.as_object().unwrap().values() {
        assert!(oi.contains(node["class_type"].as_str().unwrap()));
    }
    // And the prompt re-parses as an API workflow valid for that server.
    let again = Workflow::parse(p.to_string().as_bytes()).unwrap();
    again.to_api(&oi).unwrap();
}

#[test]
fn random_seed_is_drawn_and_reported() {
    let oi = fixture();
    let set = templates();
    let demo = set.get("demo").unwrap();
    let a = demo.prepare(&BTreeMap::new(), &oi).unwrap();
    let b = demo
        .prepare(&params(&[("seed", json!("random"))]), &oi)
        .unwrap();
    let seed_a = a.seed.expect("default seed is random and reported");
    let seed_b = b.seed.expect("seed=random is reported");
    assert_eq!(a.prompt["2"]["inputs"]["seed"], seed_a);
    assert_eq!(b.prompt["2"]["inputs"]["seed"], seed_b);
    let c = demo.prepare(&BTreeMap::new(), &oi).unwrap();
    assert!(
        seed_a != seed_b || seed_b != c.seed.unwrap(),
        "three random draws in a row were identical"
    );
}

#[test]
fn out_of_bounds_value_names_the_parameter_and_the_range() {
    let oi = fixture();
    let set = templates();
    let demo = set.get("demo").unwrap();
    let err = demo
        .prepare(&params(&[("width", json!(99999))]), &oi)
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, WorkflowError::InvalidValue { .. }), "{msg}");
    assert!(
        msg.contains("`width`") && msg.contains("64 to 2048"),
        "{msg}"
    );
    let err = demo
        .prepare(&params(&[("blur", json!(0))]), &oi)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`blur`") && err.contains("1 to 31"),
        "server bounds apply: {err}"
    );
    let err = demo
        .prepare(&params(&[("strength", json!("lots"))]), &oi)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`strength`") && err.contains("expected a number"),
        "{err}"
    );
}

#[test]
fn combo_error_lists_the_choices() {
    let oi = corpus_server();
    let set = templates();
    let generate = set.get("generate").unwrap();
    let err = generate
        .prepare(&params(&[("sampler_name", json!("warp_drive"))]), &oi)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`sampler_name`"), "{err}");
    assert!(err.contains("euler") && err.contains("dpmpp_2m"), "{err}");
    let ok = generate
        .prepare(
            &params(&[
                ("sampler_name", json!("euler_ancestral")),
                ("prompt", json!("a cat")),
            ]),
            &oi,
        )
        .unwrap();
    assert_eq!(ok.prompt["3"]["inputs"]["sampler_name"], "euler_ancestral");
    assert_eq!(ok.prompt["6"]["inputs"]["text"], "a cat");
    assert_eq!(ok.models, ["sd_xl_base_1.0.safetensors"]);
}

#[test]
fn unknown_parameter_lists_the_valid_ones() {
    let set = templates();
    let err = set
        .get("demo")
        .unwrap()
        .prepare(&params(&[("colour", json!(1))]), &fixture())
        .unwrap_err()
        .to_string();
    assert!(err.contains("`colour`"), "{err}");
    for name in ["width", "height", "seed", "color", "strength", "blur"] {
        assert!(err.contains(name), "{err}");
    }
}

#[test]
fn unknown_template_lists_the_available_ones() {
    let err = templates().get("nope").unwrap_err().to_string();
    assert!(
        err.contains("nope") && err.contains("demo") && err.contains("editqwen"),
        "{err}"
    );
}

#[test]
fn optional_images_are_removed_when_not_given() {
    let oi = corpus_server();
    let set = templates();
    let edit = set.get("editqwen").unwrap();
    let one = edit
        .prepare(
            &params(&[
                ("image", json!("cat.png")),
                ("prompt", json!("make it blue")),
            ]),
            &oi,
        )
        .unwrap();
    let p = one.prompt.as_object().unwrap();
    assert_eq!(one.input_images, [("image".to_owned(), "1".to_owned())]);
    assert!(!p.contains_key("2") && !p.contains_key("3"));
    assert!(p["11"]["inputs"].get("image2").is_none());
    assert_eq!(p["1"]["inputs"]["image"], "cat.png");
    let three = edit
        .prepare(
            &params(&[
                ("image", json!("a.png")),
                ("image2", json!("b.png")),
                ("image3", json!("c.png")),
            ]),
            &oi,
        )
        .unwrap();
    assert_eq!(three.input_images.len(), 3);
    assert_eq!(three.prompt["11"]["inputs"]["image3"], json!(["3", 0]));
}

#[test]
fn template_without_map_discovers_well_known_parameters() {
    // A template without a map: parameters found from well-known nodes.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("plain.json"),
        std::fs::read(workflows_dir().join("generate.json")).unwrap(),
    )
    .unwrap();
    let set = TemplateSet::load(dir.path()).unwrap();
    let plain = set.get("plain").unwrap();
    assert!(plain.params.is_none());
    let oi = corpus_server();
    let (_, found) = plain.resolved_params(&oi).unwrap();
    let names: Vec<&str> = found.iter().map(|p| p.name.as_str()).collect();
    for want in [
        "seed",
        "steps",
        "cfg",
        "sampler_name",
        "scheduler",
        "denoise",
        "positive",
        "negative",
        "width",
        "height",
        "batch_size",
    ] {
        assert!(names.contains(&want), "{want} not discovered in {names:?}");
    }
    let prepared = plain
        .prepare(
            &params(&[
                ("positive", json!("red fox")),
                ("negative", json!("blur")),
                ("seed", json!(7)),
            ]),
            &oi,
        )
        .unwrap();
    assert_eq!(prepared.prompt["6"]["inputs"]["text"], "red fox");
    assert_eq!(prepared.prompt["7"]["inputs"]["text"], "blur");
    assert_eq!(prepared.seed, Some(7));
}

/// The corpus server with these LoRA files installed.
fn server_with_loras(files: &[&str]) -> ObjectInfo {
    let path = corpus("object_info.json");
    let mut info: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    info["LoraLoader"]["input"]["required"]["lora_name"][0] = json!(files);
    ObjectInfo::from_value(info).unwrap()
}

#[test]
fn an_optional_lora_is_applied_when_named_and_bypassed_otherwise() {
    let oi = server_with_loras(&["film.safetensors"]);
    let set = templates();
    let generate = set.get("generate").unwrap();
    let with = generate
        .prepare(
            &params(&[
                ("prompt", json!("a cat")),
                ("lora", json!("film.safetensors")),
                ("lora_strength", json!(0.7)),
                ("lora_clip_strength", json!(0.7)),
            ]),
            &oi,
        )
        .unwrap();
    let p = &with.prompt;
    assert_eq!(p["11"]["class_type"], "LoraLoader");
    assert_eq!(p["11"]["inputs"]["lora_name"], "film.safetensors");
    assert_eq!(p["11"]["inputs"]["strength_model"], 0.7);
    assert_eq!(p["3"]["inputs"]["model"], json!(["11", 0]));
    assert_eq!(p["6"]["inputs"]["clip"], json!(["11", 1]));
    assert!(with.models.contains(&"film.safetensors".to_string()));

    let without = generate
        .prepare(&params(&[("prompt", json!("a cat"))]), &oi)
        .unwrap();
    let p = &without.prompt;
    assert!(p.get("11").is_none(), "the LoRA node is bypassed");
    // Its consumers take what it took: MODEL and CLIP straight from the checkpoint.
    assert_eq!(p["3"]["inputs"]["model"], json!(["4", 0]));
    assert_eq!(p["6"]["inputs"]["clip"], json!(["4", 1]));
    assert_eq!(p["7"]["inputs"]["clip"], json!(["4", 1]));
    assert_eq!(without.models, ["sd_xl_base_1.0.safetensors"]);

    let err = generate
        .prepare(&params(&[("lora", json!("missing.safetensors"))]), &oi)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`lora`") && err.contains("film.safetensors"),
        "{err}"
    );
}
