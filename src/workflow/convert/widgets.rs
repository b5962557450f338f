//! Rebuilding a node's widget list from its definition and mapping the positional
//! `widgets_values` of a UI workflow onto input names.

use serde_json::{Map, Value};

use crate::workflow::object_info::{InputSpec, NodeDef, Section, inputs_of, truthy};

/// Input types for which the frontend creates a widget (and so a slot in `widgets_values`).
const WIDGET_TYPES: &[&str] = &[
    "INT",
    "FLOAT",
    "BOOLEAN",
    "STRING",
    "COMBO",
    "MARKDOWN",
    "COLOR",
    "CURVE",
    "RANGE",
    "BOUNDING_BOX",
    "IMAGECOMPARE",
    "TEXTAREA",
    "PAINTER",
    "COMFY_DYNAMICCOMBO_V3",
];

/// Widget types whose value is never sent to the backend.
const UI_ONLY_TYPES: &[&str] = &["IMAGECOMPARE", "MARKDOWN"];

const DYNAMIC_COMBO: &str = "COMFY_DYNAMICCOMBO_V3";

/// Options that put a media upload button after the required inputs.
const UPLOAD_FLAGS: &[&str] = &[
    "image_upload",
    "video_upload",
    "animated_image_upload",
    "audio_upload",
    "file_upload",
];

/// One widget value destined for the prompt.
#[derive(Debug, Clone)]
pub(crate) struct WidgetValue {
    pub name: String,
    pub value: Value,
    /// Whether the spec asks for the dynamic-prompt pass (`dynamicPrompts: true`).
    pub dynamic_prompts: bool,
}

/// Whether an input of this spec gets a widget (rather than being a link-only socket).
pub(crate) fn is_widget(spec: &InputSpec<'_>) -> bool {
    if spec.flag("forceInput") || spec.flag("defaultInput") {
        return false;
    }
    WIDGET_TYPES.contains(&spec.kind())
}

/// Maps positional widget values onto the node definition's widget names.
pub(crate) fn map_widget_values(def: &NodeDef<'_>, values: &Value) -> Vec<WidgetValue> {
    let mut out = Vec::new();
    match values {
        Value::Object(by_name) => {
            // Dict-shaped values (VideoHelperSuite and others): keyed by widget name.
                    walk_inputs(&def.inputs(), "", &Lookup::ByName(by_name), &mut 0, &mut out);
        }
        Value::Array(list) => {
            let inputs = def.inputs();
            let mut cursor = 0;
            walk_top(&inputs, list, &mut cursor, &mut out);
        }
        _ => walk_top(&def.inputs(), &[], &mut 0, &mut out),
    }
    out
}

enum Lookup<'v> {
    ByPosition(&'v [Value]),
    ByName(&'v Map<String, Value>),
}

fn walk_top(inputs: &[InputSpec<'_>], list: &[Value], cursor: &mut usize, out: &mut Vec<WidgetValue>) {
    let (required, optional): (Vec<_>, Vec<_>) =
        inputs.iter().partition(|i| i.section == Section::Required);
    let lookup = Lookup::ByPosition(list);
    walk_inputs(&required, "", &lookup, cursor, out);
    if required.iter().any(|i| UPLOAD_FLAGS.iter().any(|f| i.flag(f))) {
        *cursor += 1;
    }
    walk_inputs(&optional, "", &lookup, cursor, out);
}

fn walk_inputs(
    inputs: &[InputSpec<'_>],
    prefix: &str,
    lookup: &Lookup<'_>,
    cursor: &mut usize,
    out: &mut Vec<WidgetValue>,
) {
    for spec in inputs {
        if !is_widget(spec) {
            continue;
        }
        let name = format!("{prefix}{}", spec.name);
        let stored = match lookup {
            Lookup::ByPosition(list) => list.get(*cursor).cloned(),
            Lookup::ByName(map) => map.get(spec.name).cloned(),
        };
        *cursor += 1;
        let value = match stored {
            Some(v) if !v.is_null() => v,
            _ => default_for(spec),
        };
        let kind = spec.kind();
        if kind == "INT"
            && (spec.name == "seed"
                || spec.name == "noise_seed"
                || spec.option("control_after_generate").is_some_and(truthy))
        {
            *cursor += 1;
        } else if (kind == "COMBO" || kind == DYNAMIC_COMBO)
            && spec.option("control_after_generate").is_some_and(truthy)
        {
            *cursor += 2;
        }
        let selected = value.clone();
        if !UI_ONLY_TYPES.contains(&kind) {
            out.push(WidgetValue {
                name: name.clone(),
                value,
                dynamic_prompts: kind == "STRING" && spec.flag("dynamicPrompts"),
            });
        }
        if kind == DYNAMIC_COMBO {
            let chosen = spec
                .option("options")
                .and_then(Value::as_array)
                .and_then(|opts| {
                    opts.iter().find(|o| {
                        o.get("key") == Some(&selected)
                    })
                });
            if let Some(option) = chosen {
                let sub = inputs_of(option.get("inputs"));
                walk_inputs(&sub, &format!("{name}."), lookup, cursor, out);
            }
        }
    }
}

/// The value a freshly created widget holds.
fn default_for(spec: &InputSpec<'_>) -> Value {
    if let Some(d) = spec.default_value() {
        return d.clone();
    }
    match spec.kind() {
        "INT" | "FLOAT" => spec
            .option("min")
            .cloned()
            .unwrap_or_else(|| Value::from(0)),
        "BOOLEAN" => Value::Bool(false),
        "STRING" | "MARKDOWN" | "TEXTAREA" => Value::String(String::new()),
        "COMBO" => spec
            .choices()
            .and_then(|c| c.first().cloned())
            .unwrap_or(Value::Null),
        DYNAMIC_COMBO => spec
            .option("options")
            .and_then(Value::as_array)
            .and_then(|o| o.first())
            .and_then(|o| o.get("key"))
            .cloned()
            .unwrap_or(Value::Null),
        _ => Value::Null,
    }
}
