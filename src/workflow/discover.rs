//! Parameters found without a map: well-known nodes located by class and graph position
//! (sampler settings, prompt texts reached through the sampler's links, latent size, input
//! images, LoRAs).

use serde_json::Value;

use super::param::{NodeRef, Param, ParamKind};

/// Samplers and sampler-like nodes: (class, [(parameter, input)]).
const SAMPLER_INPUTS: &[(&str, &[(&str, &str)])] = &[
    (
        "KSampler",
        &[
            ("seed", "seed"),
            ("steps", "steps"),
            ("cfg", "cfg"),
            ("sampler_name", "sampler_name"),
            ("scheduler", "scheduler"),
            ("denoise", "denoise"),
        ],
    ),
    (
        "KSamplerAdvanced",
        &[
            ("seed", "noise_seed"),
            ("steps", "steps"),
            ("cfg", "cfg"),
            ("sampler_name", "sampler_name"),
            ("scheduler", "scheduler"),
        ],
    ),
    ("SamplerCustom", &[("seed", "noise_seed"), ("cfg", "cfg")]),
    ("RandomNoise", &[("seed", "noise_seed")]),
    ("KSamplerSelect", &[("sampler_name", "sampler_name")]),
    (
        "BasicScheduler",
        &[
            ("steps", "steps"),
            ("scheduler", "scheduler"),
            ("denoise", "denoise"),
        ],
    ),
    ("Flux2Scheduler", &[("steps", "steps")]),
    ("CFGGuider", &[("cfg", "cfg")]),
    ("FluxGuidance", &[("guidance", "guidance")]),
];

/// Empty-latent nodes whose size and batch become parameters.
const LATENT_INPUTS: &[(&str, &str)] = &[
    ("width", "width"),
    ("height", "height"),
    ("batch_size", "batch_size"),
];

/// Image loaders: the first becomes `image`, then `image2`, `image3`, …
const IMAGE_LOADERS: &[&str] = &["LoadImage", "LoadImageMask", "LoadImageOutput"];

/// LoRA loaders: (class, [(parameter suffix, input)]).
const LORA_INPUTS: &[(&str, &[(&str, &str)])] = &[
    (
        "LoraLoader",
        &[("lora", "lora_name"), ("lora_strength", "strength_model")],
    ),
    (
        "LoraLoaderModelOnly",
        &[("lora", "lora_name"), ("lora_strength", "strength_model")],
    ),
];

/// Text inputs of text-encoder nodes, in order of preference.
const TEXT_INPUTS: &[&str] = &["text", "prompt", "text_g", "text_l"];

/// How many links the search for prompt texts follows from a sampler.
const MAX_TEXT_SEARCH: usize = 64;

/// Prompt node ids in a stable order: numerically by each `:`-separated part.
pub(crate) fn ordered_ids(prompt: &serde_json::Map<String, Value>) -> Vec<&String> {
    let mut ids: Vec<&String> = prompt.keys().collect();
    ids.sort_by_key(|a| id_key(a));
    ids
}

fn id_key(id: &str) -> Vec<(u64, String)> {
    id.split(':')
        .map(|p| (p.parse::<u64>().unwrap_or(u64::MAX), p.to_owned()))
        .collect()
}

fn class_of<'p>(prompt: &'p serde_json::Map<String, Value>, id: &str) -> Option<&'p str> {
    prompt.get(id)?.get("class_type")?.as_str()
}

fn literal<'p>(
    prompt: &'p serde_json::Map<String, Value>,
    id: &str,
    input: &str,
) -> Option<&'p Value> {
    prompt
        .get(id)?
        .get("inputs")?
        .get(input)
        .filter(|v| !is_link(v))
}

fn is_link(v: &Value) -> bool {
    v.as_array()
        .is_some_and(|a| a.len() == 2 && a[0].is_string() && a[1].is_number())
}

fn param(name: &str, id: &str, input: &str, kind: Option<ParamKind>, description: String) -> Param {
    Param {
        name: name.to_owned(),
        node: NodeRef::Id(id.to_owned()),
        input: input.to_owned(),
        kind,
        default: None,
        min: None,
        max: None,
        step: None,
        choices: None,
        description,
        optional: false,
    }
}

/// Finds the well-known parameters of an API prompt.
pub fn discover(prompt: &serde_json::Map<String, Value>) -> Vec<Param> {
    let mut params: Vec<Param> = Vec::new();
    let ids = ordered_ids(prompt);
    let push = |p: Param, params: &mut Vec<Param>| {
        if !params.iter().any(|q| q.name == p.name) {
            params.push(p);
        }
    };
    // Sampler settings: the first node of each kind that holds the value literally.
    for (class, inputs) in SAMPLER_INPUTS {
        for id in ids.iter().filter(|id| class_of(prompt, id) == Some(*class)) {
            for (name, input) in *inputs {
                if literal(prompt, id, input).is_some() {
                    let desc = format!("`{input}` of {class} node {id}");
                    push(param(name, id, input, None, desc), &mut params);
                }
            }
        }
    }
    // Prompt texts, following the sampler's (or guider's) conditioning links.
    for id in &ids {
        let class = class_of(prompt, id).unwrap_or("");
        if !matches!(
            class,
            "KSampler" | "KSamplerAdvanced" | "SamplerCustom" | "CFGGuider"
        ) {
            continue;
        }
        for (name, input) in [("positive", "positive"), ("negative", "negative")] {
            if let Some((text_id, text_input)) = find_text(prompt, id, input) {
                let desc = format!("{name} prompt (`{text_input}` of node {text_id})");
                push(
                    param(name, &text_id, &text_input, Some(ParamKind::String), desc),
                    &mut params,
                );
            }
        }
    }
    // Latent size.
    for id in &ids {
        let class = class_of(prompt, id).unwrap_or("");
        if !(class.starts_with("Empty") && class.contains("Latent")) {
            continue;
        }
        for (name, input) in LATENT_INPUTS {
            if literal(prompt, id, input).is_some() {
                push(
                    param(
                        name,
                        id,
                        input,
                        None,
                        format!("`{input}` of {class} node {id}"),
                    ),
                    &mut params,
                );
            }
        }
    }
    // Input images, in id order.
    let mut n = 0;
    for id in &ids {
        let class = class_of(prompt, id).unwrap_or("");
        if IMAGE_LOADERS.contains(&class) && literal(prompt, id, "image").is_some() {
            n += 1;
            let name = if n == 1 {
                "image".to_owned()
            } else {
                format!("image{n}")
            };
            let desc = format!("input image {n} ({class} node {id})");
            push(
                param(&name, id, "image", Some(ParamKind::Image), desc),
                &mut params,
            );
        }
    }
    // LoRAs.
    let mut n = 0;
    for id in &ids {
        let class = class_of(prompt, id).unwrap_or("");
        let Some((_, inputs)) = LORA_INPUTS.iter().find(|(c, _)| *c == class) else {
            continue;
        };
        n += 1;
        for (base, input) in *inputs {
            if literal(prompt, id, input).is_some() {
                let name = if n == 1 {
                    (*base).to_owned()
                } else {
                    format!("{base}{n}")
                };
                push(
                    param(
                        &name,
                        id,
                        input,
                        None,
                        format!("`{input}` of {class} node {id}"),
                    ),
                    &mut params,
                );
            }
        }
    }
    params
}

/// Follows links backwards from `id.input` (breadth first, bounded) to the first node with a
/// literal text input.
fn find_text(
    prompt: &serde_json::Map<String, Value>,
    id: &str,
    input: &str,
) -> Option<(String, String)> {
    let start = prompt.get(id)?.get("inputs")?.get(input)?;
    let mut queue: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let mut seen: Vec<String> = Vec::new();
    if let Some(src) = start
        .as_array()
        .and_then(|a| a.first())
        .and_then(Value::as_str)
    {
        queue.push_back(src.to_owned());
    }
    while let Some(node) = queue.pop_front() {
        if seen.contains(&node) || seen.len() >= MAX_TEXT_SEARCH {
            continue;
        }
        seen.push(node.clone());
        for text in TEXT_INPUTS {
            if literal(prompt, &node, text).is_some_and(Value::is_string) {
                return Some((node, (*text).to_owned()));
            }
        }
        if let Some(inputs) = prompt
            .get(&node)
            .and_then(|n| n.get("inputs"))
            .and_then(Value::as_object)
        {
            for v in inputs.values().filter(|v| is_link(v)) {
                if let Some(src) = v.get(0).and_then(Value::as_str) {
                    queue.push_back(src.to_owned());
                }
            }
        }
    }
    None
}
