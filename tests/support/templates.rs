//! Templates the integration tests write into a temporary `workflows/` folder.

use std::path::Path;

use serde_json::json;

/// Writes a model-free template that takes one image: load it, blur it, save it.
pub fn blur_template(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("blur.json"),
        json!({
            "1": {"class_type": "LoadImage", "inputs": {"image": "input.png"}, "_meta": {"title": "Input Image"}},
            "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 1, "sigma": 1.0}, "_meta": {"title": "Blur"}},
            "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "blur"}, "_meta": {"title": "Save"}}
        })
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("blur.toml"),
        r#"description = "Blur one image (no model needed)"
workflow = "blur.json"

[[param]]
name = "image"
title = "Input Image"
input = "image"
type = "IMAGE"
description = "The image to blur"
"#,
    )
    .unwrap();
}
