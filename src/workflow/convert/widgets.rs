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
    "COMPOSITOR",
];

/// Widget types whose value is never sent to the backend.
const UI_ONLY_TYPES: &[&str] = &["MARKDOWN"];

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
    spec.flag("socketless") || WIDGET_TYPES.contains(&widget_kind(spec))
}

/// The widget type of an input: `widgetType` when the spec names one (multi-type inputs such
/// as `FLOAT,INT`), else its type.
pub(crate) fn widget_kind<'a>(spec: &InputSpec<'a>) -> &'a str {
    spec.option("widgetType")
        .and_then(Value::as_str)
        .unwrap_or_else(|| spec.kind())
}

/// Widgets that frontend extensions append after the definition's own widgets, by class.
const EXTENSION_WIDGETS: &[(&str, &[&str])] = &[("Preview3D", &["image"]), ("SaveGLB", &["image"])];

/// Maps positional widget values onto the node definition's widget names.
pub(crate) fn map_widget_values(def: &NodeDef<'_>, values: &Value) -> Vec<WidgetValue> {
    let mut out = Vec::new();
    if def.class == "CustomCombo" {
        return custom_combo(values);
    }
    match values {
        Value::Object(by_name) => {
            // Dict-shaped values (VideoHelperSuite and others): keyed by widget name.
            walk_inputs(
                &def.inputs(),
                "",
                &Lookup::ByName(by_name),
                &mut 0,
                &mut out,
            );
        }
        Value::Array(list) => {
            let inputs = def.inputs();
            let mut cursor = 0;
            walk_top(&inputs, list, &mut cursor, &mut out);
        }
        _ => walk_top(&def.inputs(), &[], &mut 0, &mut out),
    }
    if let Some((_, extra)) = EXTENSION_WIDGETS.iter().find(|(c, _)| *c == def.class) {
        let mut cursor = out.len();
        if let Value::Array(list) = values {
            // The extension widgets sit after the definition's own slots.
            cursor = slot_count(def, list).min(list.len());
        }
        for name in *extra {
            let value = match values {
                Value::Array(list) => list.get(cursor).cloned(),
                Value::Object(map) => map.get(*name).cloned(),
                _ => None,
            };
            cursor += 1;
            out.push(WidgetValue {
                name: (*name).to_owned(),
                value: value
                    .filter(|v| !v.is_null())
                    .unwrap_or_else(|| Value::String(String::new())),
                dynamic_prompts: false,
            });
        }
    }
    out
}

/// How many `widgets_values` slots the definition's own widgets occupy.
fn slot_count(def: &NodeDef<'_>, list: &[Value]) -> usize {
    let mut cursor = 0;
    let mut scratch = Vec::new();
    walk_top(&def.inputs(), list, &mut cursor, &mut scratch);
    cursor
}

/// The frontend's CustomCombo: `[choice, index, option1, option2, …]`, all sent.
fn custom_combo(values: &Value) -> Vec<WidgetValue> {
    let list = values.as_array().map(Vec::as_slice).unwrap_or_default();
    let mut out = Vec::new();
    for (i, value) in list.iter().enumerate() {
        let name = match i {
            0 => "choice".to_owned(),
            1 => "index".to_owned(),
            n => format!("option{}", n - 1),
        };
        out.push(WidgetValue {
            name,
            value: value.clone(),
            dynamic_prompts: false,
        });
    }
    if out.is_empty() {
        out.push(WidgetValue {
            name: "choice".into(),
            value: Value::String(String::new()),
            dynamic_prompts: false,
        });
    }
    out
}

enum Lookup<'v> {
    ByPosition(&'v [Value]),
    ByName(&'v Map<String, Value>),
}

fn walk_top(
    inputs: &[InputSpec<'_>],
    list: &[Value],
    cursor: &mut usize,
    out: &mut Vec<WidgetValue>,
) {
    let (required, optional): (Vec<_>, Vec<_>) =
        inputs.iter().partition(|i| i.section == Section::Required);
    let lookup = Lookup::ByPosition(list);
    walk_inputs(&required, "", &lookup, cursor, out);
    if required
        .iter()
        .any(|i| UPLOAD_FLAGS.iter().any(|f| i.flag(f)))
    {
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
        let kind = widget_kind(spec);
        if kind == "INT"
            && (name == "seed"
                || name == "noise_seed"
                || spec.option("control_after_generate").is_some_and(truthy))
        {
            *cursor += 1;
        } else if (kind == "COMBO" || kind == DYNAMIC_COMBO)
            && spec.option("control_after_generate").is_some_and(truthy)
        {
            *cursor += 2;
        }
        let selected = value.clone();
        // The compare widget always sends an empty pair, whatever the preview shows.
        let value = if kind == "IMAGECOMPARE" {
            Value::Array(vec![
                Value::String(String::new()),
                Value::String(String::new()),
            ])
        } else {
            value
        };
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
                .and_then(|opts| opts.iter().find(|o| o.get("key") == Some(&selected)));
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
    match widget_kind(spec) {
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
