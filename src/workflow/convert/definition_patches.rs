//! The inputs the frontend builds a node's widgets from: the definition's `required` then
//! `optional` inputs, after the edits its bundled extensions make to the definition first (an
//! upload button after a media combo, an audio player and upload button on audio nodes, a 3D
//! preview on 3D preview and save nodes).

use std::sync::LazyLock;

use serde_json::{Value, json};

use crate::workflow::object_info::{InputSpec, NodeDef, Section};

/// Classes the frontend gives an audio player widget (`audioUI`). The frontend picks them by
/// class name, so this list does too.
const AUDIO_PLAYER_CLASSES: &[&str] = &[
    "LoadAudio",
    "SaveAudio",
    "PreviewAudio",
    "SaveAudioMP3",
    "SaveAudioOpus",
    "SaveAudioAdvanced",
];

/// Classes the frontend gives a 3D preview widget (`image`), by class name as the frontend does.
const PREVIEW_3D_CLASSES: &[&str] = &["Preview3D", "SaveGLB"];

/// Options that make a required combo a media picker with an upload button.
const MEDIA_UPLOAD_FLAGS: &[&str] = &["image_upload", "video_upload", "animated_image_upload"];

static IMAGE_UPLOAD: LazyLock<Value> = LazyLock::new(|| json!(["IMAGEUPLOAD", {}]));
static AUDIO_UPLOAD: LazyLock<Value> = LazyLock::new(|| json!(["AUDIOUPLOAD", {}]));
static AUDIO_PLAYER: LazyLock<Value> = LazyLock::new(|| json!(["AUDIO_UI", {}]));
static PREVIEW_3D: LazyLock<Value> = LazyLock::new(|| json!(["PREVIEW_3D", {}]));

/// The node's inputs in the order the frontend creates them, extensions' additions included.
///
/// The additions are assigned into the definition's `required` object as JavaScript does: a new
/// key goes last, an existing key keeps its place and takes the new spec.
pub(crate) fn widget_inputs<'a>(def: &NodeDef<'a>) -> Vec<InputSpec<'a>> {
    let (mut required, optional): (Vec<_>, Vec<_>) = def
        .inputs()
        .into_iter()
        .partition(|i| i.section == Section::Required);
    // In the frontend's registration order: the audio player, the uploads, the 3D preview.
    if AUDIO_PLAYER_CLASSES.contains(&def.class) {
        assign(&mut required, "audioUI", &AUDIO_PLAYER);
    }
    let audio_upload = required
        .iter()
        .any(|i| i.name == "audio" && i.option("audio_upload") == Some(&Value::Bool(true)));
    if audio_upload {
        assign(&mut required, "upload", &AUDIO_UPLOAD);
    } else if required.iter().any(is_media_upload_combo) {
        assign(&mut required, "upload", &IMAGE_UPLOAD);
    }
    if PREVIEW_3D_CLASSES.contains(&def.class) {
        assign(&mut required, "image", &PREVIEW_3D);
    }
    required.extend(optional);
    required
}

/// A combo (old list form or `COMBO`) whose options ask for an image or video upload button.
fn is_media_upload_combo(spec: &InputSpec<'_>) -> bool {
    let is_combo = spec
        .raw()
        .get(0)
        .is_some_and(|t| t.is_array() || t == "COMBO");
    is_combo
        && MEDIA_UPLOAD_FLAGS
            .iter()
            .any(|f| spec.option(f) == Some(&Value::Bool(true)))
}

fn assign<'a>(required: &mut Vec<InputSpec<'a>>, name: &'static str, spec: &'static Value) {
    match required.iter_mut().find(|i| i.name == name) {
        Some(existing) => *existing = InputSpec::new(existing.name, Section::Required, spec),
        None => required.push(InputSpec::new(name, Section::Required, spec)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::object_info::ObjectInfo;

    fn names(info: &ObjectInfo, class: &str) -> Vec<String> {
        let def = info.node(class).unwrap();
        widget_inputs(&def)
            .iter()
            .map(|i| format!("{}:{}", i.name, i.kind()))
            .collect()
    }

    #[test]
    fn extensions_add_their_widgets_after_the_required_inputs() {
        let info = ObjectInfo::from_value(json!({
            "Picker": {"input": {
                "required": {"file": ["COMBO", {"video_upload": true}], "n": ["INT", {}]},
                "optional": {"o": ["FLOAT", {}]}}},
            "Text": {"input": {"required": {"mask": ["STRING", {"image_upload": true}]}}},
            "LoadAudio": {"input": {"required": {"audio": ["COMBO", {"audio_upload": true}]}}},
            "SaveGLB": {"input": {"required": {"mesh": ["MESH", {}]}}},
            "Odd": {"input": {"required": {
                "upload": ["INT", {}], "pick": [["a"], {"image_upload": true}]}}}
        }))
        .unwrap();
        assert_eq!(
            names(&info, "Picker"),
            ["file:COMBO", "n:INT", "upload:IMAGEUPLOAD", "o:FLOAT"]
        );
        assert_eq!(
            names(&info, "Text"),
            ["mask:STRING"],
            "only combos get a button"
        );
        assert_eq!(
            names(&info, "LoadAudio"),
            ["audio:COMBO", "audioUI:AUDIO_UI", "upload:AUDIOUPLOAD"]
        );
        assert_eq!(names(&info, "SaveGLB"), ["mesh:MESH", "image:PREVIEW_3D"]);
        assert_eq!(
            names(&info, "Odd"),
            ["upload:IMAGEUPLOAD", "pick:COMBO"],
            "an existing key keeps its place"
        );
    }
}
