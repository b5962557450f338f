//! Per-job isolation of input files. A job's uploads go to its own folder,
//! `input/fleet/<job id>/`, deleted when the job ends; and a job may name only the files it
//! uploaded itself and the operator's own input files (those the server lists), never another
//! job's upload nor, through ComfyUI's annotated names (`x.png [output]`), an output or a
//! temporary file.

use std::collections::BTreeSet;

use comfy_fleet_actors::JobId;
use comfy_fleet_actors::prompt_rules::{
    FileInput, NodeClasses, Problem, annotated_folder, file_inputs, pyfmt,
};
use serde_json::{Map, Value};

/// The folder of an instance's `input/` where every job's uploads go, one sub-folder each.
pub const UPLOADS_FOLDER: &str = "fleet";

/// The sub-folder of `input/` that holds `job`'s uploads.
pub fn job_folder(job: JobId) -> String {
    format!("{UPLOADS_FOLDER}/{job}")
}

/// What a job may name in its file inputs.
#[derive(Debug, Clone, Default)]
pub struct OwnFiles {
    /// Names (`fleet/<job>/<file>`) of the files this job uploads.
    names: BTreeSet<String>,
}

impl OwnFiles {
    /// Records a file this job uploads as `subfolder/name`.
    pub fn add(&mut self, subfolder: &str, name: &str) {
        self.names.insert(format!("{subfolder}/{name}"));
    }

    fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }
}

/// Points the file inputs that name one of the job's own uploads by its plain name (a workflow
/// sent with `run --input photo.png` names `photo.png`) at the upload in the job's folder.
pub fn point_at_uploads(
    prompt: &mut Map<String, Value>,
    classes: NodeClasses<'_>,
    job: JobId,
    plain_names: &[String],
) {
    if plain_names.is_empty() {
        return;
    }
    let folder = job_folder(job);
    for found in file_inputs(prompt, classes) {
        let Some(name) = found.value.as_str() else {
            continue;
        };
        if plain_names.iter().any(|n| n == name)
            && let Some(slot) = prompt
                .get_mut(&found.node)
                .and_then(|n| n.get_mut("inputs"))
                .and_then(|i| i.get_mut(&found.input))
        {
            *slot = Value::String(format!("{folder}/{name}"));
        }
    }
}

/// Checks every file input of `prompt`: each must name one of `own` files, or one the server
/// offers for that input (the operator's files), and never an annotated name. Returns one
/// problem per file input that breaks the rule.
pub fn check_file_inputs(
    prompt: &Map<String, Value>,
    classes: NodeClasses<'_>,
    own: &OwnFiles,
) -> Vec<Problem> {
    file_inputs(prompt, classes)
        .into_iter()
        .filter_map(|found| {
            allowed(&found, own).err().map(|reason| Problem {
                node: Some(found.node),
                class: Some(found.class),
                input: Some(found.input),
                kind: FOREIGN_FILE.into(),
                reason,
            })
        })
        .collect()
}

/// The kind of [`Problem`] a file input the job may not read is.
pub const FOREIGN_FILE: &str = "forbidden_file";

fn allowed(found: &FileInput, own: &OwnFiles) -> Result<(), String> {
    let name = pyfmt::str_of(&found.value);
    if let Some(folder) = annotated_folder(&name) {
        return Err(format!(
            "`{name}` names a file in ComfyUI's {folder} folder; a job may read only the files \
             it uploads and the server's own input files: send the image with the job instead"
        ));
    }
    if own.contains(&name) {
        return Ok(());
    }
    let offered =
        found.default.as_ref() == Some(&found.value) || found.choices.contains(&found.value);
    if offered && !name.starts_with(&format!("{UPLOADS_FOLDER}/")) {
        return Ok(());
    }
    Err(format!(
        "`{name}` is neither a file this job uploads nor one of the server's own input files; \
         send the image with the job (a multipart part named after its parameter)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn classes_doc() -> Value {
        json!({
            "LoadImage": {"input": {"required": {"image": [["operator.png", "fleet/x/leak.png"], {"image_upload": true}]}}},
            "Painter": {"input": {"required": {"mask": ["STRING", {"image_upload": true, "default": ""}]}}},
            "SaveImage": {"input": {"required": {"images": ["IMAGE"]}}, "output_node": true}
        })
    }

    fn check(value: Value, own: &OwnFiles) -> Result<(), Problem> {
        let doc = classes_doc();
        let prompt = json!({"1": {"class_type": "LoadImage", "inputs": {"image": value}}});
        match check_file_inputs(
            prompt.as_object().unwrap(),
            NodeClasses::new(doc.as_object().unwrap()),
            own,
        )
        .pop()
        {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    #[test]
    fn own_uploads_and_the_operators_files_pass() {
        let job = JobId::new();
        let mut own = OwnFiles::default();
        own.add(&job_folder(job), "image.png");
        assert!(check(json!(format!("fleet/{job}/image.png")), &own).is_ok());
        assert!(check(json!("operator.png"), &own).is_ok());
        let doc = classes_doc();
        let painter = json!({"1": {"class_type": "Painter", "inputs": {"mask": ""}}});
        assert!(
            check_file_inputs(
                painter.as_object().unwrap(),
                NodeClasses::new(doc.as_object().unwrap()),
                &own
            )
            .is_empty(),
            "the declared default is the server's own"
        );
    }

    #[test]
    fn another_jobs_upload_outputs_and_temp_files_are_refused() {
        let own = OwnFiles::default();
        let other = JobId::new();
        let err = check(json!(format!("fleet/{other}/image.png")), &own).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "node 1 (LoadImage), input `image`: `fleet/{other}/image.png` is neither a file this job uploads nor one of the server's own input files; send the image with the job (a multipart part named after its parameter)"
            )
        );
        let err = check(json!("ComfyUI_00001_.png [output]"), &own).unwrap_err();
        assert!(
            err.reason.starts_with(
                "`ComfyUI_00001_.png [output]` names a file in ComfyUI's output folder"
            ),
            "{err}"
        );
        assert!(check(json!("x.png [temp]"), &own).is_err());
        assert!(check(json!("operator.png [input]"), &own).is_err());
        assert!(
            check(json!("fleet/x/leak.png"), &own).is_err(),
            "an upload the server happens to list"
        );
        assert!(check(json!("../secret.png"), &own).is_err());
        assert!(check(json!(5), &own).is_err());
    }

    #[test]
    fn plain_names_of_uploads_are_pointed_at_the_jobs_folder() {
        let doc = classes_doc();
        let job = JobId::new();
        let mut prompt = json!({
            "1": {"class_type": "LoadImage", "inputs": {"image": "photo.png"}},
            "2": {"class_type": "LoadImage", "inputs": {"image": "operator.png"}}
        })
        .as_object()
        .cloned()
        .unwrap();
        point_at_uploads(
            &mut prompt,
            NodeClasses::new(doc.as_object().unwrap()),
            job,
            &["photo.png".to_string()],
        );
        assert_eq!(
            prompt["1"]["inputs"]["image"],
            json!(format!("fleet/{job}/photo.png"))
        );
        assert_eq!(prompt["2"]["inputs"]["image"], json!("operator.png"));
    }
}
