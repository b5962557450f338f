//! A realistic large template for the memory bench: a 60-node SDXL text-to-image workflow in
//! the API format (base and refiner checkpoints, six LoRAs, clip skip, conditioning for both
//! stages, a hires-fix pass and a post-processing chain, titled nodes as the UI exports them),
//! with its parameter map, and the model files the fake needs to accept it.
//!
//! Made up for the bench from ComfyUI's core node classes; every class is in the captured
//! `/object_info`.

use std::path::Path;

use serde_json::{Map, Value, json};

/// The template's name.
pub const SDXL_TEMPLATE: &str = "sdxl60";

/// A positive prompt of the length people write for SDXL.
pub fn prompt_text(n: u64) -> String {
    format!(
        "a weathered lighthouse on a basalt cliff at dawn, variation {n}, long exposure sea \
         spray, volumetric god rays through low clouds, cinematic composition, rule of thirds, \
         ultra detailed textures, photorealistic, 35mm film grain, kodak portra 400, golden hour \
         rim light, shot on a medium format camera, sharp focus, high dynamic range, award \
         winning landscape photograph"
    )
}

const NEGATIVE: &str = "blurry, lowres, jpeg artifacts, watermark, signature, text, cropped, \
    worst quality, low quality, deformed, oversaturated, overexposed, cartoon, painting, \
    illustration, 3d render, plastic skin, extra limbs, bad anatomy";

fn node(map: &mut Map<String, Value>, id: u32, class: &str, title: &str, inputs: Value) {
    map.insert(
        id.to_string(),
        json!({"inputs": inputs, "class_type": class, "_meta": {"title": title}}),
    );
}

/// The 60-node API prompt.
pub fn sdxl_prompt() -> Value {
    let mut p = Map::new();
    node(
        &mut p,
        1,
        "CheckpointLoaderSimple",
        "Load Base Checkpoint",
        json!({"ckpt_name": "sd_xl_base_1.0.safetensors"}),
    );
    node(
        &mut p,
        2,
        "CheckpointLoaderSimple",
        "Load Refiner Checkpoint",
        json!({"ckpt_name": "sd_xl_refiner_1.0.safetensors"}),
    );
    // Six LoRAs on the base model and clip, chained.
    let (mut model, mut clip) = (json!(["1", 0]), json!(["1", 1]));
    for i in 0..6u32 {
        let id = 3 + i;
        node(
            &mut p,
            id,
            "LoraLoader",
            &format!("LoRA {}", i + 1),
            json!({
                "model": model, "clip": clip,
                "lora_name": format!("detail_tweaker_{i}.safetensors"),
                "strength_model": 0.6, "strength_clip": 0.6,
            }),
        );
        model = json!([id.to_string(), 0]);
        clip = json!([id.to_string(), 1]);
    }
    node(
        &mut p,
        9,
        "CLIPSetLastLayer",
        "Clip Skip",
        json!({"clip": clip, "stop_at_clip_layer": -2}),
    );
    node(
        &mut p,
        10,
        "ModelSamplingDiscrete",
        "Sampling",
        json!({"model": model, "sampling": "eps", "zsnr": false}),
    );
    node(
        &mut p,
        11,
        "CLIPTextEncode",
        "Positive Prompt",
        json!({"text": prompt_text(0), "clip": ["9", 0]}),
    );
    node(
        &mut p,
        12,
        "CLIPTextEncode",
        "Negative Prompt",
        json!({"text": NEGATIVE, "clip": ["9", 0]}),
    );
    node(
        &mut p,
        13,
        "CLIPTextEncode",
        "Style Prompt",
        json!({"text": "moody, atmospheric, fine art photography", "clip": ["9", 0]}),
    );
    node(
        &mut p,
        14,
        "ConditioningCombine",
        "Positive + Style",
        json!({"conditioning_1": ["11", 0], "conditioning_2": ["13", 0]}),
    );
    node(
        &mut p,
        15,
        "ConditioningSetTimestepRange",
        "Style Early Steps",
        json!({"conditioning": ["14", 0], "start": 0.0, "end": 0.8}),
    );
    node(
        &mut p,
        16,
        "CLIPTextEncode",
        "Refiner Positive",
        json!({"text": prompt_text(0), "clip": ["2", 1]}),
    );
    node(
        &mut p,
        17,
        "CLIPTextEncode",
        "Refiner Negative",
        json!({"text": NEGATIVE, "clip": ["2", 1]}),
    );
    node(
        &mut p,
        18,
        "EmptyLatentImage",
        "Canvas",
        json!({"width": 1024, "height": 1024, "batch_size": 1}),
    );
    node(
        &mut p,
        19,
        "KSamplerAdvanced",
        "Base Sampler",
        json!({
            "model": ["10", 0], "add_noise": "enable", "noise_seed": 42, "steps": 30, "cfg": 7.0,
            "sampler_name": "dpmpp_2m", "scheduler": "karras", "positive": ["15", 0],
            "negative": ["12", 0], "latent_image": ["18", 0], "start_at_step": 0,
            "end_at_step": 24, "return_with_leftover_noise": "enable",
        }),
    );
    node(
        &mut p,
        20,
        "KSamplerAdvanced",
        "Refiner Sampler",
        json!({
            "model": ["2", 0], "add_noise": "disable", "noise_seed": 42, "steps": 30, "cfg": 7.0,
            "sampler_name": "dpmpp_2m", "scheduler": "karras", "positive": ["16", 0],
            "negative": ["17", 0], "latent_image": ["19", 0], "start_at_step": 24,
            "end_at_step": 10000, "return_with_leftover_noise": "disable",
        }),
    );
    node(
        &mut p,
        21,
        "LatentUpscaleBy",
        "Hires Upscale",
        json!({"samples": ["20", 0], "upscale_method": "nearest-exact", "scale_by": 1.5}),
    );
    node(
        &mut p,
        22,
        "KSampler",
        "Hires Fix",
        json!({
            "model": ["10", 0], "seed": 42, "steps": 12, "cfg": 6.0, "sampler_name": "euler",
            "scheduler": "normal", "positive": ["15", 0], "negative": ["12", 0],
            "latent_image": ["21", 0], "denoise": 0.45,
        }),
    );
    node(
        &mut p,
        23,
        "VAEDecode",
        "Decode",
        json!({"samples": ["22", 0], "vae": ["1", 2]}),
    );
    node(
        &mut p,
        24,
        "SaveImage",
        "Save Raw",
        json!({"images": ["23", 0], "filename_prefix": "sdxl/raw"}),
    );
    // A post-processing chain: sharpen, blur, scale, quantize… in turn, previews on the way.
    let mut image = json!(["23", 0]);
    let steps = [
        ("ImageSharpen", "Sharpen"),
        ("ImageBlur", "Soften"),
        ("ImageScaleBy", "Downscale"),
        ("ImageSharpen", "Sharpen Again"),
    ];
    let mut id = 25u32;
    while id < 59 {
        let (class, title) = steps[(id as usize) % steps.len()];
        let round = (id - 25) / 4 + 1;
        let inputs = match class {
            "ImageSharpen" => {
                json!({"image": image, "sharpen_radius": 1, "sigma": 0.8, "alpha": 0.4})
            }
            "ImageBlur" => json!({"image": image, "blur_radius": 1, "sigma": 0.5}),
            _ => json!({"image": image, "upscale_method": "lanczos", "scale_by": 0.95}),
        };
        node(&mut p, id, class, &format!("{title} {round}"), inputs);
        image = json!([id.to_string(), 0]);
        id += 1;
        if id.is_multiple_of(8) && id < 59 {
            node(
                &mut p,
                id,
                "PreviewImage",
                &format!("Preview {round}"),
                json!({"images": image}),
            );
            id += 1;
        }
    }
    node(
        &mut p,
        59,
        "ImageQuantize",
        "Palette",
        json!({"image": image, "colors": 256, "dither": "none"}),
    );
    node(
        &mut p,
        60,
        "SaveImage",
        "Save Final",
        json!({"images": ["59", 0], "filename_prefix": "sdxl/final"}),
    );
    Value::Object(p)
}

/// Writes the template (`sdxl60.json` and its map: seed and prompt) into `workflows`, and the
/// model files it loads into `<base>/models/` (empty files: the fake lists, never reads them).
pub fn write_sdxl_template(workflows: &Path, base: &Path) {
    std::fs::create_dir_all(workflows).expect("the workflows folder");
    std::fs::write(
        workflows.join(format!("{SDXL_TEMPLATE}.json")),
        serde_json::to_string_pretty(&sdxl_prompt()).expect("JSON"),
    )
    .expect("the workflow");
    std::fs::write(
        workflows.join(format!("{SDXL_TEMPLATE}.toml")),
        "description = \"SDXL base + refiner, six LoRAs, hires fix, post-processing (60 nodes)\"\n\
         workflow = \"sdxl60.json\"\n\n\
         [[param]]\nname = \"seed\"\nnode = 19\ninput = \"noise_seed\"\ntype = \"INT\"\n\
         default = \"random\"\ndescription = \"Base sampler seed\"\n\n\
         [[param]]\nname = \"prompt\"\nnode = 11\ninput = \"text\"\ntype = \"STRING\"\n\
         description = \"What to draw\"\n",
    )
    .expect("the map");
    let checkpoints = base.join("models/checkpoints");
    let loras = base.join("models/loras");
    std::fs::create_dir_all(&checkpoints).expect("models/checkpoints");
    std::fs::create_dir_all(&loras).expect("models/loras");
    for name in [
        "sd_xl_base_1.0.safetensors",
        "sd_xl_refiner_1.0.safetensors",
    ] {
        std::fs::write(checkpoints.join(name), b"").expect("a checkpoint");
    }
    for i in 0..6 {
        std::fs::write(loras.join(format!("detail_tweaker_{i}.safetensors")), b"").expect("a LoRA");
    }
}
