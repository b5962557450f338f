//! Prompt validation at POST /prompt: ComfyUI 0.33.0's rules (the shared
//! [`comfy_fleet_actors::prompt_rules`], which comfy-fleet also checks jobs with) applied to this
//! server's catalog, with its live folder listings and its files.

pub use comfy_fleet_actors::prompt_rules::Verdict;
use comfy_fleet_actors::prompt_rules::{NodeClasses, ServerFiles};
use serde_json::{Map, Value};

use crate::catalog::{LiveDirs, catalog};
use crate::files::annotated_path_exists;

/// This server's answers to what the rules cannot know.
struct ThisServer<'a> {
    dirs: &'a LiveDirs<'a>,
}

impl ServerFiles for ThisServer<'_> {
    fn live_choices(&self, class: &str, input: &str) -> Option<Vec<Value>> {
        catalog()
            .live_input(class, input, self.dirs)
            .and_then(|spec| spec.combo_options())
    }

    fn image_exists(&self, name: &str) -> bool {
        annotated_path_exists(self.dirs.folders, name)
    }
}

/// Validates `prompt` (converting constant inputs in place, as ComfyUI does).
pub fn validate_prompt(
    prompt: &mut Map<String, Value>,
    partial_targets: Option<&[String]>,
    dirs: &LiveDirs<'_>,
) -> Verdict {
    comfy_fleet_actors::prompt_rules::validate_prompt(
        prompt,
        partial_targets,
        NodeClasses::new(catalog().classes()),
        &ThisServer { dirs },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::Folders;
    use serde_json::json;

    fn run(prompt: Value, folders: &Folders) -> Verdict {
        let mut map = prompt.as_object().cloned().unwrap();
        let dirs = LiveDirs { folders };
        validate_prompt(&mut map, None, &dirs)
    }

    fn load_and_save(name: &str) -> Value {
        json!({
            "10": {"class_type": "LoadImage", "inputs": {"image": name}},
            "11": {"class_type": "SaveImage", "inputs": {"images": ["10", 0], "filename_prefix": "x"}}
        })
    }

    #[test]
    fn load_image_is_checked_against_this_servers_folders() {
        let dir = tempfile::tempdir().unwrap();
        let folders = Folders::all_in(dir.path());
        let Verdict::Rejected { node_errors, .. } = run(load_and_save("cat.png"), &folders) else {
            panic!()
        };
        assert_eq!(
            node_errors["10"]["errors"][0]["details"],
            "image - Invalid image file: cat.png"
        );
        std::fs::write(dir.path().join("cat.png"), b"x").unwrap();
        assert!(matches!(
            run(load_and_save("cat.png"), &folders),
            Verdict::Accepted { .. }
        ));
    }

    #[test]
    fn the_catalogs_classes_are_the_ones_checked() {
        let dir = tempfile::tempdir().unwrap();
        let folders = Folders::all_in(dir.path());
        let prompt = json!({
            "1": {"class_type": "EmptyImage", "inputs": {"width": 0, "height": 64, "batch_size": 1, "color": 0}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}
        });
        let Verdict::Rejected { node_errors, .. } = run(prompt, &folders) else {
            panic!()
        };
        assert_eq!(
            node_errors["1"]["errors"][0]["message"],
            "Value 0 smaller than min of 1"
        );
    }
}
