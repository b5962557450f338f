//! Rebuilding a node's widgets the way ComfyUI's frontend does, from the node's `/object_info`
//! definition alone, and reading the node's saved `widgets_values` into them.
//!
//! What the frontend does, restated as the rules this module applies (widget types and their
//! behaviour are in [`super::widget_types`], the extensions' edits to definitions in
//! [`super::definition_patches`]):
//!
//! - **Order.** Widgets are created input by input: `required` in declaration order, then
//!   `optional`; `hidden` inputs never get one. Extensions first add inputs of their own to
//!   `required` (an `upload` button after a media combo, an audio player, a 3D preview).
//! - **Which inputs.** An input gets a widget when the frontend has a constructor for its type
//!   (or its `widgetType`) and it is not `forceInput`; every other input is a socket only.
//! - **Companions.** A constructor may add widgets right after its own: the "control after
//!   generate" combo after an INT that asks for one (or, without an explicit answer, one named
//!   `seed`/`noise_seed`) or a FLOAT that asks for one, the control combo and its filter text after
//!   a combo that asks, a remote combo's refresh toggle and button, a recorder's button.
//! - **Slots.** Loading hands the saved values out in order, one to every widget that persists
//!   (skipping the few that do not: image compare, resolution preview, audio player), until the
//!   values run out; widgets left over keep their initial value, surplus values are ignored.
//!   Trailing editor state (3D camera, preview text) therefore never shifts anything.
//! - **Prompt.** Every widget not marked as UI-only sends `name: value` (companions, upload
//!   buttons and players do not). A widget with no value at all is left out.
//! - **Dynamic combos.** Setting a dynamic combo's value inserts the chosen option's inputs
//!   (its `required`, then `optional`) right after it, named `<combo>.<input>`, and they take the
//!   next values; this nests. An unknown or empty choice inserts nothing.
//! - **Growing groups.** A growing input group creates its first `max(min, 1)` entries, named
//!   `<group>.<prefix or input><n>` (or `<group>.<names[n]>`); entries whose template input is a
//!   widget type get widgets.
//!
//! Differences from the frontend, by necessity: a `null` saved value keeps the widget's initial
//! value; values the browser produces at queue time (3D scene captures, webcam frames, audio
//! recordings) are passed on as saved; button values are not sent.

use serde_json::{Map, Value};

use super::custom_combo;
use super::definition_patches::widget_inputs;
use super::widget_types::{AUTOGROW, WidgetType, chosen_option, widget_kind};
use crate::workflow::object_info::{InputSpec, NodeDef, Section, inputs_of};

/// One widget value destined for the prompt.
#[derive(Debug, Clone)]
pub(crate) struct WidgetValue {
    pub name: String,
    pub value: Value,
    /// Whether the spec asks for the dynamic-prompt pass (`dynamicPrompts: true`).
    pub dynamic_prompts: bool,
}

/// Most entries a growing input group may create (the frontend's own default maximum).
const AUTOGROW_MAX: u64 = 100;

/// How deep dynamic combos and growing groups may nest before further levels are ignored.
const MAX_DEPTH: usize = 16;

/// Most widget values one node may produce: a hostile definition nesting growing groups and
/// dynamic combos must not exhaust memory.
const MAX_WIDGETS: usize = 10_000;

/// The prompt values of a node's widgets, from its definition and saved `widgets_values`
/// (a list by position; some custom nodes save an object keyed by widget name).
pub(crate) fn map_widget_values(def: &NodeDef<'_>, values: &Value) -> Vec<WidgetValue> {
    if def.class == custom_combo::CLASS {
        return custom_combo::widget_values(values);
    }
    let mut reader = match values {
        Value::Array(list) => SavedValues::Positional { list, next: 0 },
        Value::Object(map) => SavedValues::ByName(map),
        _ => SavedValues::Positional { list: &[], next: 0 },
    };
    let mut out = Vec::new();
    build(&widget_inputs(def), "", &mut reader, &mut out, 0);
    out
}

/// The saved values, handed out as the frontend's loader does.
enum SavedValues<'v> {
    Positional { list: &'v [Value], next: usize },
    ByName(&'v Map<String, Value>),
}

impl<'v> SavedValues<'v> {
    /// The value for the next persisting widget (`None` once the list is exhausted).
    fn take(&mut self, full_name: &str, short_name: &str) -> Option<&'v Value> {
        match self {
            Self::Positional { list, next } => {
                let value = list.get(*next);
                *next += 1;
                value
            }
            Self::ByName(map) => map.get(full_name).or_else(|| map.get(short_name)),
        }
    }

    /// Skips one slot (a companion widget's value).
    fn skip(&mut self) {
        if let Self::Positional { next, .. } = self {
            *next += 1;
        }
    }

    /// The value the next widget would take, without taking it.
    fn peek(&self) -> Option<&'v Value> {
        match self {
            Self::Positional { list, next } => list.get(*next),
            Self::ByName(_) => None,
        }
    }
}

/// Creates the widgets of `inputs` in order (names prefixed by `prefix`), loading their values
/// and collecting the ones the prompt receives.
fn build(
    inputs: &[InputSpec<'_>],
    prefix: &str,
    saved: &mut SavedValues<'_>,
    out: &mut Vec<WidgetValue>,
    depth: usize,
) {
    for spec in inputs {
        if out.len() >= MAX_WIDGETS {
            return;
        }
        let name = format!("{prefix}{}", spec.name);
        if widget_kind(spec) == AUTOGROW && !spec.flag("forceInput") {
            build_group(spec, &name, saved, out, depth);
            continue;
        }
        let Some(kind) = WidgetType::of(spec) else {
            continue;
        };
        let stored = if kind.stored() {
            // Older 3D viewports kept their buttons' values in front of their own.
            while saved.peek().is_some_and(|v| kind.is_legacy_button_value(v)) {
                saved.skip();
            }
            saved.take(&name, spec.name)
        } else {
            None
        };
        let value = stored
            .filter(|v| !v.is_null())
            .cloned()
            .or_else(|| kind.initial_value(spec));
        for _ in 0..kind.companions(spec, &name) {
            saved.skip();
        }
        let chosen = match (&value, kind) {
            (Some(v), WidgetType::DynamicCombo) if depth < MAX_DEPTH => chosen_option(spec, v),
            _ => None,
        };
        if kind.sent()
            && let Some(v) = value
        {
            out.push(widget_value(&name, v, spec));
        }
        // A dynamic combo's chosen option brings its inputs right after the combo.
        if let Some(option) = chosen {
            let sub = inputs_of(option.get("inputs"));
            build(&sub, &format!("{name}."), saved, out, depth + 1);
        }
    }
}

/// The widgets of a growing input group's initial entries.
fn build_group(
    spec: &InputSpec<'_>,
    group: &str,
    saved: &mut SavedValues<'_>,
    out: &mut Vec<WidgetValue>,
    depth: usize,
) {
    let Some(template) = spec.option("template").filter(|_| depth < MAX_DEPTH) else {
        return;
    };
    let entry_inputs = inputs_of(template.get("input"));
    if entry_inputs.iter().all(|i| WidgetType::of(i).is_none()) {
        return;
    }
    let names: Option<Vec<&str>> = template
        .get("names")
        .and_then(Value::as_array)
        .map(|n| n.iter().filter_map(Value::as_str).collect());
    let prefix = template.get("prefix").and_then(Value::as_str).unwrap_or("");
    let min = template.get("min").and_then(Value::as_u64).unwrap_or(1);
    let max = names.as_ref().map_or_else(
        || {
            template
                .get("max")
                .and_then(Value::as_u64)
                .unwrap_or(AUTOGROW_MAX)
        },
        |n| n.len() as u64,
    );
    let count = min.max(1).min(max).min(AUTOGROW_MAX);
    for ordinal in 0..count {
        let entries: Vec<(String, &InputSpec<'_>)> = entry_inputs
            .iter()
            .filter_map(|input| {
                let base = match &names {
                    Some(n) => (*n.get(usize::try_from(ordinal).ok()?)?).to_owned(),
                    None if entry_inputs.len() == 1 => format!("{prefix}{ordinal}"),
                    None => format!("{}{ordinal}", input.name),
                };
                Some((base, input))
            })
            .collect();
        for (base, input) in entries {
            let renamed = InputSpec::new(&base, Section::Required, input.raw());
            build(&[renamed], &format!("{group}."), saved, out, depth + 1);
        }
    }
}

fn widget_value(name: &str, value: Value, spec: &InputSpec<'_>) -> WidgetValue {
    WidgetValue {
        name: name.to_owned(),
        dynamic_prompts: value.is_string() && spec.flag("dynamicPrompts"),
        value,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::workflow::object_info::ObjectInfo;

    fn map(info: &Value, class: &str, values: Value) -> Vec<(String, Value)> {
        let info = ObjectInfo::from_value(info.clone()).unwrap();
        map_widget_values(&info.node(class).unwrap(), &values)
            .into_iter()
            .map(|w| (w.name, w.value))
            .collect()
    }

    #[test]
    fn nested_dynamic_combos_take_their_values_depth_first() {
        let info = json!({"N": {"input": {"required": {
            "mode": ["COMFY_DYNAMICCOMBO_V3", {"options": [
                {"key": "a", "inputs": {"required": {
                    "inner": ["COMFY_DYNAMICCOMBO_V3", {"options": [
                        {"key": "x", "inputs": {"required": {"n": ["INT", {}]}}}]}]},
                    "optional": {"f": ["FLOAT", {"default": 0.5}]}}},
                {"key": "b", "inputs": {"required": {}}}]}],
            "after": ["STRING", {}]}}}});
        assert_eq!(
            map(&info, "N", json!(["a", "x", 3, 0.25, "tail"])),
            [
                ("mode".into(), json!("a")),
                ("mode.inner".into(), json!("x")),
                ("mode.inner.n".into(), json!(3)),
                ("mode.f".into(), json!(0.25)),
                ("after".into(), json!("tail")),
            ]
        );
        assert_eq!(
            map(&info, "N", json!(["b", "tail"])),
            [("mode".into(), json!("b")), ("after".into(), json!("tail"))]
        );
    }

    #[test]
    fn growing_groups_of_widgets_create_their_minimum_entries() {
        let info = json!({"N": {"input": {"required": {
            "vals": ["COMFY_AUTOGROW_V3", {"template": {
                "input": {"required": {"v": ["INT", {"default": 1}]}}, "prefix": "v", "min": 2}}],
            "imgs": ["COMFY_AUTOGROW_V3", {"template": {
                "input": {"required": {"i": ["IMAGE", {}]}}, "prefix": "i"}}],
            "last": ["BOOLEAN", {}]}}}});
        assert_eq!(
            map(&info, "N", json!([5, 6, true])),
            [
                ("vals.v0".into(), json!(5)),
                ("vals.v1".into(), json!(6)),
                ("last".into(), json!(true)),
            ]
        );
    }

    #[test]
    fn hostile_nesting_is_bounded() {
        // A growing group of dynamic combos whose option holds another such group, ten deep:
        // 100^10 widgets if followed blindly.
        let mut spec = json!(["INT", {}]);
        for _ in 0..10 {
            spec = json!(["COMFY_AUTOGROW_V3", {"template": {"min": 100, "prefix": "g",
                "input": {"required": {"pick": ["COMFY_DYNAMICCOMBO_V3", {"options": [
                    {"key": "k", "inputs": {"required": {"inner": spec}}}]}]}}}}]);
        }
        let info = json!({"N": {"input": {"required": {"top": spec}}}});
        let got = map(&info, "N", json!([]));
        assert!(!got.is_empty() && got.len() <= MAX_WIDGETS, "{}", got.len());
    }

    #[test]
    fn dict_shaped_values_are_read_by_widget_name() {
        let info = json!({"N": {"input": {"required": {
            "seed": ["INT", {}], "name": ["STRING", {}]}}}});
        assert_eq!(
            map(&info, "N", json!({"name": "x", "seed": 4})),
            [("seed".into(), json!(4)), ("name".into(), json!("x"))]
        );
    }
}
