//! The job commands: which template each runs and how its options map onto the template's
//! parameters. An option exists only when its template has the parameter it sets, so a template
//! map decides what a command offers.

use super::fleet_port::{ModelKind, TemplateInfo};

/// One command that runs a template.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobCommand {
    pub name: &'static str,
    pub template: &'static str,
    /// Used when the template has no description.
    pub summary: &'static str,
    pub options: &'static [OptionDef],
}

/// One option of a job command.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptionDef {
    pub name: &'static str,
    pub target: Target,
    pub kind: OptionKind,
    pub required: bool,
    /// The model list that suggests values as the user types.
    pub autocomplete: Option<ModelKind>,
    pub description: &'static str,
    /// Longest text accepted (fits one embed field, so a re-roll can read it back).
    pub max_length: u16,
}

/// Discord's option types the bot uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OptionKind {
    #[default]
    Text,
    Integer,
    Number,
    Boolean,
    Attachment,
}

/// What an option sets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// One template parameter.
    Param(&'static str),
    /// Several parameters, set to the same value (a LoRA's model and CLIP strengths); the
    /// first must exist.
    Params(&'static [&'static str]),
    /// `width` and `height` from `WxH`.
    Size,
    /// `width` and `height` from an aspect ratio, at about one megapixel within the bounds.
    Aspect,
}

impl Target {
    /// Whether the template has what this option sets.
    pub fn present_in(&self, template: &TemplateInfo) -> bool {
        match self {
            Self::Param(p) => template.param(p).is_some(),
            Self::Params(ps) => ps.first().is_some_and(|p| template.param(p).is_some()),
            Self::Size | Self::Aspect => {
                template.param("width").is_some() && template.param("height").is_some()
            }
        }
    }

    /// The bounds of the (first) parameter it sets.
    pub fn bounds(&self, template: &TemplateInfo) -> (Option<f64>, Option<f64>) {
        let param = match self {
            Self::Param(p) => template.param(p),
            Self::Params(ps) => ps.first().and_then(|p| template.param(p)),
            Self::Size | Self::Aspect => None,
        };
        param.map_or((None, None), |p| (p.min, p.max))
    }
}

const fn opt(
    name: &'static str,
    target: Target,
    kind: OptionKind,
    description: &'static str,
) -> OptionDef {
    OptionDef {
        name,
        target,
        kind,
        required: false,
        autocomplete: None,
        description,
        max_length: 1000,
    }
}

const fn required(def: OptionDef) -> OptionDef {
    OptionDef {
        required: true,
        ..def
    }
}

const fn suggest(def: OptionDef, kind: ModelKind) -> OptionDef {
    OptionDef {
        autocomplete: Some(kind),
        ..def
    }
}

use OptionKind::{Attachment, Integer, Number, Text};

const SEED: OptionDef = opt(
    "seed",
    Target::Param("seed"),
    Integer,
    "Seed; leave empty for a new one each time",
);
const STEPS: OptionDef = opt("steps", Target::Param("steps"), Integer, "Sampling steps");

/// Every job command.
pub const JOB_COMMANDS: &[JobCommand] = &[
    JobCommand {
        name: "generate",
        template: "generate",
        summary: "Make an image from a prompt",
        options: &[
            required(opt("prompt", Target::Param("prompt"), Text, "What to draw")),
            opt("negative", Target::Param("negative"), Text, "What to avoid"),
            opt("size", Target::Size, Text, "Width x height in pixels"),
            opt(
                "aspect",
                Target::Aspect,
                Text,
                "Aspect ratio, at about one megapixel (instead of size)",
            ),
            STEPS,
            opt(
                "cfg",
                Target::Param("cfg"),
                Number,
                "How closely to follow the prompt (CFG scale)",
            ),
            SEED,
            opt(
                "batch",
                Target::Param("batch_size"),
                Integer,
                "Images in one run",
            ),
            suggest(
                opt(
                    "model",
                    Target::Param("checkpoint"),
                    Text,
                    "Checkpoint to draw with",
                ),
                ModelKind::Checkpoint,
            ),
            suggest(
                opt("lora", Target::Param("lora"), Text, "A LoRA to apply"),
                ModelKind::Lora,
            ),
            opt(
                "lora_strength",
                Target::Params(&["lora_strength", "lora_clip_strength"]),
                Number,
                "How strongly the LoRA applies",
            ),
        ],
    },
    JobCommand {
        name: "editflux",
        template: "editflux",
        summary: "Edit an image with an instruction (FLUX Kontext)",
        options: &[
            required(opt(
                "image",
                Target::Param("image"),
                Attachment,
                "The image to edit (PNG, JPEG or WebP)",
            )),
            required(opt(
                "instruction",
                Target::Param("prompt"),
                Text,
                "What to change, in plain words",
            )),
            STEPS,
            opt(
                "guidance",
                Target::Param("guidance"),
                Number,
                "How strongly to follow the instruction",
            ),
            SEED,
        ],
    },
    JobCommand {
        name: "editqwen",
        template: "editqwen",
        summary: "Edit with 1 to 3 images and an instruction (Qwen Image Edit)",
        options: &[
            required(opt(
                "image",
                Target::Param("image"),
                Attachment,
                "The main image (PNG, JPEG or WebP)",
            )),
            required(opt(
                "instruction",
                Target::Param("prompt"),
                Text,
                "What to change; call the images image 1, 2 and 3",
            )),
            opt(
                "image2",
                Target::Param("image2"),
                Attachment,
                "A second image",
            ),
            opt(
                "image3",
                Target::Param("image3"),
                Attachment,
                "A third image",
            ),
            STEPS,
            SEED,
        ],
    },
    JobCommand {
        name: "upscale",
        template: "upscale",
        summary: "Upscale an image 4x",
        options: &[
            required(opt(
                "image",
                Target::Param("image"),
                Attachment,
                "The image to upscale (PNG, JPEG or WebP)",
            )),
            suggest(
                opt("model", Target::Param("model"), Text, "Upscale model"),
                ModelKind::UpscaleModel,
            ),
        ],
    },
];

/// The job command of that name.
pub fn job_command(name: &str) -> Option<&'static JobCommand> {
    JOB_COMMANDS.iter().find(|c| c.name == name)
}

impl JobCommand {
    /// The option that sets template parameter `param` (`checkpoint` → `model`), so errors
    /// name what the user typed.
    pub fn option_for(&self, param: &str) -> Option<&'static str> {
        self.options
            .iter()
            .find(|o| match o.target {
                Target::Param(p) => p == param,
                Target::Params(ps) => ps.contains(&param),
                Target::Size | Target::Aspect => param == "width" || param == "height",
            })
            .map(|o| o.name)
    }
}
