//! The frontend's widget constructors, keyed by input type and options: which inputs get a widget,
//! which companion widgets come with it, whether each keeps a `widgets_values` slot and reaches
//! the prompt, and the value a fresh widget holds.

use serde_json::{Map, Value};

use crate::workflow::object_info::{InputSpec, truthy};

/// A widget constructor of the frontend (its core table, plus the ones its bundled extensions
/// register for their own input types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WidgetType {
    Int,
    Float,
    Boolean,
    String,
    Textarea,
    Markdown,
    Combo,
    /// A combo whose chosen option brings its own sub-inputs, named `<combo>.<sub>`.
    DynamicCombo,
    /// The upload button next to a media combo (`upload`, value `"image"`).
    ImageUpload,
    /// The image pair shown by a compare node: never stored, always sent as two empty names.
    ImageCompare,
    /// The live size preview of resolution pickers: neither stored nor sent.
    ResolutionPreview,
    /// Editors whose value is a plain or structured value, stored and sent as is.
    Color,
    Colors,
    BoundingBox,
    BoundingBoxes,
    Curve,
    Range,
    Painter,
    Compositor,
    Chart,
    Galleria,
    VideoEdit,
    /// The 3D preview the frontend adds to 3D preview and save nodes.
    Preview3d,
    /// The 3D viewport of 3D loaders (its value is a scene captured by the browser).
    Load3d,
    /// The webcam view (its value is a frame captured by the browser).
    Webcam,
    /// The audio player the frontend adds to audio nodes: neither stored nor sent.
    AudioUi,
    /// The upload button of audio loaders.
    AudioUpload,
    /// The recorder (its value is a recording uploaded by the browser) and its record button.
    AudioRecord,
    /// A type the frontend does not know, declared `socketless` by the server: a custom node's
    /// own widget, assumed to store and send one value.
    Custom,
}

/// Input type of the frontend's dynamic combo.
pub(crate) const DYNAMIC_COMBO: &str = "COMFY_DYNAMICCOMBO_V3";
/// Input type of the frontend's growing input groups.
pub(crate) const AUTOGROW: &str = "COMFY_AUTOGROW_V3";

/// Values the buttons of older 3D viewports stored before the viewport's own value.
const LEGACY_3D_BUTTONS: &[&str] = &["upload3dmodel", "uploadExtraResources", "clear"];

impl WidgetType {
    /// The constructor the frontend looks up for a type name.
    pub(crate) fn from_name(kind: &str) -> Option<Self> {
        Some(match kind {
            "INT" => Self::Int,
            "FLOAT" => Self::Float,
            "BOOLEAN" => Self::Boolean,
            "STRING" => Self::String,
            "TEXTAREA" => Self::Textarea,
            "MARKDOWN" => Self::Markdown,
            "COMBO" => Self::Combo,
            DYNAMIC_COMBO => Self::DynamicCombo,
            "IMAGEUPLOAD" => Self::ImageUpload,
            "IMAGECOMPARE" => Self::ImageCompare,
            "RESOLUTION_PREVIEW" => Self::ResolutionPreview,
            "COLOR" => Self::Color,
            "COLORS" => Self::Colors,
            "BOUNDING_BOX" => Self::BoundingBox,
            "BOUNDING_BOXES" => Self::BoundingBoxes,
            "CURVE" => Self::Curve,
            "RANGE" => Self::Range,
            "PAINTER" => Self::Painter,
            "COMPOSITOR" => Self::Compositor,
            "CHART" => Self::Chart,
            "GALLERIA" => Self::Galleria,
            "VIDEO_EDIT" => Self::VideoEdit,
            "PREVIEW_3D" => Self::Preview3d,
            "LOAD_3D" => Self::Load3d,
            "WEBCAM" => Self::Webcam,
            "AUDIO_UI" => Self::AudioUi,
            "AUDIOUPLOAD" => Self::AudioUpload,
            "AUDIO_RECORD" => Self::AudioRecord,
            _ => return None,
        })
    }

    /// The widget an input gets, if any: none for `forceInput` (a socket only), the constructor of
    /// its `widgetType` or type, or a custom widget for an unknown `socketless` type.
    pub(crate) fn of(spec: &InputSpec<'_>) -> Option<Self> {
        if spec.flag("forceInput") || spec.flag("defaultInput") {
            return None;
        }
        match Self::from_name(widget_kind(spec)) {
            Some(found) => Some(found),
            None if spec.flag("socketless") => Some(Self::Custom),
            None => None,
        }
    }

    /// Whether litegraph stores the widget's value in `widgets_values` (and so reads one back on
    /// load). Widgets marked not to persist take no slot.
    pub(crate) fn stored(self) -> bool {
        !matches!(
            self,
            Self::ImageCompare | Self::ResolutionPreview | Self::AudioUi
        )
    }

    /// Whether the widget's value goes into the prompt (buttons and previews do not).
    pub(crate) fn sent(self) -> bool {
        !matches!(
            self,
            Self::ImageUpload | Self::AudioUpload | Self::ResolutionPreview | Self::AudioUi
        )
    }

    /// How many companion widgets follow the widget. Each keeps a slot in `widgets_values` and
    /// none reaches the prompt: the "control after generate" combo of numbers and combos, the
    /// combo's filter text, a remote combo's auto-refresh toggle and refresh button, the
    /// recorder's button. `name` is the widget's full name (`<combo>.<sub>` inside a dynamic
    /// combo), which is what the seed rule looks at.
    pub(crate) fn companions(self, spec: &InputSpec<'_>, name: &str) -> usize {
        let control = spec.option("control_after_generate");
        match self {
            // An explicit value (even `false`) decides; without one, seeds get a control.
            Self::Int => match control.filter(|v| !v.is_null()) {
                Some(v) => usize::from(truthy(v)),
                None => usize::from(matches!(name, "seed" | "noise_seed")),
            },
            Self::Float => usize::from(control.is_some_and(truthy)),
            Self::Combo => {
                let remote = spec.option("remote").filter(|r| truthy(r));
                let refresh = remote
                    .and_then(|r| r.get("refresh_button"))
                    .is_some_and(truthy);
                let remote_slots = usize::from(remote.is_some()) + usize::from(refresh);
                // The filter text exists only for a real combo (not the multi-select list).
                let control_slots = if control.is_some_and(truthy) {
                    if is_multi_select(spec) { 1 } else { 2 }
                } else {
                    0
                };
                remote_slots + control_slots
            }
            Self::AudioRecord => 1,
            _ => 0,
        }
    }

    /// Whether a stored value is one of the buttons older 3D viewports kept in front of their own
    /// value (skipped so that width and height stay in place).
    pub(crate) fn is_legacy_button_value(self, value: &Value) -> bool {
        self == Self::Load3d
            && value
                .as_str()
                .is_some_and(|s| LEGACY_3D_BUTTONS.contains(&s))
    }

    /// The value a freshly created widget holds; `None` when the frontend leaves it undefined
    /// (the key is then missing from the prompt).
    pub(crate) fn initial_value(self, spec: &InputSpec<'_>) -> Option<Value> {
        let declared = spec.default_value().filter(|v| !v.is_null()).cloned();
        match self {
            Self::Int | Self::Float => declared.or_else(|| Some(Value::from(0))),
            Self::Boolean => declared.or(Some(Value::Bool(false))),
            Self::String
            | Self::Textarea
            | Self::Markdown
            | Self::Preview3d
            | Self::Load3d
            | Self::Webcam
            | Self::AudioRecord
            | Self::Custom => declared.or_else(|| Some(Value::String(String::new()))),
            Self::Combo if is_multi_select(spec) => Some(Value::Array(Vec::new())),
            Self::Combo => combo_initial(spec, declared),
            Self::DynamicCombo => dynamic_options(spec)
                .first()
                .and_then(|o| o.get("key"))
                .cloned(),
            Self::ImageCompare => Some(Value::Array(vec![
                Value::String(String::new()),
                Value::String(String::new()),
            ])),
            Self::BoundingBoxes | Self::Galleria => declared
                .or_else(|| spec.option("images").cloned())
                .or_else(|| Some(Value::Array(Vec::new()))),
            Self::Chart => declared
                .or_else(|| spec.option("data").filter(|d| truthy(d)).cloned())
                .or_else(|| Some(Value::Object(Map::new()))),
            Self::VideoEdit => declared.or_else(|| Some(video_edit_initial(spec))),
            Self::ImageUpload => Some(Value::String("image".into())),
            Self::AudioUpload => Some(Value::String(String::new())),
            Self::ResolutionPreview | Self::AudioUi => None,
            Self::Color
            | Self::Colors
            | Self::BoundingBox
            | Self::Curve
            | Self::Range
            | Self::Painter
            | Self::Compositor => declared,
        }
    }
}

/// The widget type name of an input: `widgetType` when the spec names one (multi-type inputs such
/// as `FLOAT,INT`), else its type (`COMBO` for a list of choices).
pub(crate) fn widget_kind<'a>(spec: &InputSpec<'a>) -> &'a str {
    spec.option("widgetType")
        .and_then(Value::as_str)
        .unwrap_or_else(|| spec.kind())
}

/// Whether a type name (as a subgraph definition declares its inputs) is one the frontend builds
/// a widget for.
pub(crate) fn is_widget_type_name(kind: &str) -> bool {
    WidgetType::from_name(kind).is_some()
}

/// A combo that lets the user pick several values (a list widget, not a litegraph combo).
fn is_multi_select(spec: &InputSpec<'_>) -> bool {
    spec.flag("multi_select") || spec.flag("multiselect")
}

/// A combo starts on its declared default when that is truthy, else on its first choice; a remote
/// combo with no choices yet shows a loading text.
fn combo_initial(spec: &InputSpec<'_>, declared: Option<Value>) -> Option<Value> {
    if let Some(d) = declared.filter(truthy) {
        return Some(d);
    }
    if let Some(first) = spec.choices().and_then(|c| c.first()) {
        return Some(first.clone());
    }
    spec.option("remote")
        .filter(|r| truthy(r))
        .map(|_| Value::String("Loading...".into()))
}

/// The options of a dynamic combo: `[{key, inputs}, …]`.
pub(crate) fn dynamic_options<'a>(spec: &InputSpec<'a>) -> &'a [Value] {
    spec.option("options")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The option of a dynamic combo that a value selects. The frontend looks the value up as an
/// object key, so a number selects the option whose key is its text.
pub(crate) fn chosen_option<'a>(spec: &InputSpec<'a>, value: &Value) -> Option<&'a Value> {
    let key = match value {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    dynamic_options(spec)
        .iter()
        .find(|o| o.get("key").and_then(Value::as_str) == Some(key.as_str()))
}

/// The empty edit of a video editor: a trim and a crop unless `features` names fewer.
fn video_edit_initial(spec: &InputSpec<'_>) -> Value {
    let features: Vec<&str> = spec
        .option("features")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_else(|| vec!["trim", "crop"]);
    let mut out = Map::new();
    if features.contains(&"trim") {
        out.insert(
            "trim".into(),
            serde_json::json!({"start_time": 0, "duration": 0}),
        );
    }
    if features.contains(&"crop") {
        out.insert(
            "crop".into(),
            serde_json::json!({"x": 0, "y": 0, "width": 0, "height": 0}),
        );
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::workflow::object_info::Section;

    fn spec(raw: &Value) -> InputSpec<'_> {
        InputSpec::new("x", Section::Required, raw)
    }

    #[test]
    fn force_input_and_unknown_types_get_no_widget() {
        assert_eq!(
            WidgetType::of(&spec(&json!(["INT", {"forceInput": true}]))),
            None
        );
        assert_eq!(WidgetType::of(&spec(&json!(["MODEL", {}]))), None);
        assert_eq!(
            WidgetType::of(&spec(&json!(["FANCY", {"socketless": true}]))),
            Some(WidgetType::Custom)
        );
        assert_eq!(
            WidgetType::of(&spec(&json!(["FLOAT,INT", {"widgetType": "FLOAT"}]))),
            Some(WidgetType::Float)
        );
        assert_eq!(
            WidgetType::of(&spec(&json!([["a", "b"], {}]))),
            Some(WidgetType::Combo)
        );
    }

    #[test]
    fn control_widgets_follow_the_frontend_conditions() {
        let seed = json!(["INT", {}]);
        assert_eq!(WidgetType::Int.companions(&spec(&seed), "seed"), 1);
        assert_eq!(WidgetType::Int.companions(&spec(&seed), "model.seed"), 0);
        let off = json!(["INT", {"control_after_generate": false}]);
        assert_eq!(WidgetType::Int.companions(&spec(&off), "seed"), 0);
        let named = json!(["INT", {"control_after_generate": "fixed"}]);
        assert_eq!(WidgetType::Int.companions(&spec(&named), "value"), 1);
        let float = json!(["FLOAT", {"control_after_generate": true}]);
        assert_eq!(WidgetType::Float.companions(&spec(&float), "x"), 1);
        let combo = json!([["a"], {"control_after_generate": true}]);
        assert_eq!(WidgetType::Combo.companions(&spec(&combo), "x"), 2);
        let multi = json!(["COMBO", {"multi_select": true, "control_after_generate": true}]);
        assert_eq!(WidgetType::Combo.companions(&spec(&multi), "x"), 1);
        let remote = json!(["COMBO", {"remote": {"route": "/r", "refresh_button": true}}]);
        assert_eq!(WidgetType::Combo.companions(&spec(&remote), "x"), 2);
    }

    #[test]
    fn fresh_values_match_the_constructors() {
        let combo = json!([["a", "b"], {"default": ""}]);
        assert_eq!(
            WidgetType::Combo.initial_value(&spec(&combo)),
            Some(json!("a"))
        );
        let empty = json!(["COMBO", {"options": []}]);
        assert_eq!(WidgetType::Combo.initial_value(&spec(&empty)), None);
        let int = json!(["INT", {"min": 5}]);
        assert_eq!(WidgetType::Int.initial_value(&spec(&int)), Some(json!(0)));
        let dynamic = json!([DYNAMIC_COMBO, {"options": [{"key": "k", "inputs": {}}]}]);
        assert_eq!(
            WidgetType::DynamicCombo.initial_value(&spec(&dynamic)),
            Some(json!("k"))
        );
        let video = json!(["VIDEO_EDIT", {"features": ["trim"]}]);
        assert_eq!(
            WidgetType::VideoEdit.initial_value(&spec(&video)),
            Some(json!({"trim": {"start_time": 0, "duration": 0}}))
        );
    }

    #[test]
    fn dynamic_options_are_found_by_key_text() {
        let raw = json!([DYNAMIC_COMBO, {"options": [{"key": "2", "inputs": {}}]}]);
        let s = spec(&raw);
        assert!(chosen_option(&s, &json!(2)).is_some());
        assert!(chosen_option(&s, &json!("2")).is_some());
        assert!(chosen_option(&s, &json!("")).is_none());
        assert!(chosen_option(&s, &json!(null)).is_none());
    }
}
