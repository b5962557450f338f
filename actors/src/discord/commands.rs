//! The slash commands the bot registers, as plain specs built from the templates: one command
//! per job template (`/generate`, `/editflux`, `/editqwen`, `/upscale`, with options from the
//! template's parameter map) and the bot's own (`/status`, `/help`, `/loras`, `/cancel`,
//! `/fleet`). The adapter turns the specs into Discord's command JSON.

use super::fleet_port::{ModelKind, TemplateInfo};
use super::job_commands::{JOB_COMMANDS, JobCommand, OptionKind, Target};

/// Discord's limit on a command's or option's description.
pub const MAX_DESCRIPTION: usize = 100;

/// One slash command (or one subcommand of `/fleet`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CommandSpec {
    pub name: String,
    pub description: String,
    pub options: Vec<OptionSpec>,
    /// Subcommands (`/fleet pause`…); a command has options or subcommands, not both.
    pub subcommands: Vec<CommandSpec>,
}

/// One option of a command.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OptionSpec {
    pub name: String,
    pub description: String,
    pub kind: OptionKind,
    pub required: bool,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub max_length: Option<u16>,
    /// Fixed choices (name, value); empty for free input.
    pub choices: Vec<(String, String)>,
    pub autocomplete: bool,
}

/// Preset sizes offered by `size`, kept when they fit the template's bounds.
pub const SIZES: &[&str] = &[
    "512x512",
    "768x768",
    "1024x1024",
    "896x1152",
    "1152x896",
    "832x1216",
    "1216x832",
    "768x1344",
    "1344x768",
];

/// Aspect ratios offered by `aspect`.
pub const ASPECTS: &[&str] = &[
    "1:1", "4:3", "3:4", "3:2", "2:3", "16:9", "9:16", "21:9", "9:21",
];

/// Every command the bot registers, for these templates (job commands whose template is
/// missing are left out).
pub fn command_specs(templates: &[TemplateInfo]) -> Vec<CommandSpec> {
    let mut specs: Vec<CommandSpec> = JOB_COMMANDS
        .iter()
        .filter_map(|command| {
            let template = templates.iter().find(|t| t.name == command.template)?;
            Some(job_command_spec(command, template))
        })
        .collect();
    specs.extend(own_commands());
    specs
}

/// The spec of a job command: its options in the order Discord wants (required ones first).
pub fn job_command_spec(command: &JobCommand, template: &TemplateInfo) -> CommandSpec {
    let mut options: Vec<OptionSpec> = command
        .options
        .iter()
        .filter(|def| def.target.present_in(template))
        .map(|def| {
            let bounds = def.target.bounds(template);
            OptionSpec {
                name: def.name.to_string(),
                description: clip(def.description),
                kind: def.kind,
                required: def.required,
                min: match def.target {
                    Target::Param("seed") => Some(0.0),
                    _ => bounds.0,
                },
                max: match def.target {
                    // Discord's integer options reach 2^53.
                    Target::Param("seed") => Some(9_007_199_254_740_991.0),
                    _ => bounds.1,
                },
                max_length: (def.kind == OptionKind::Text && def.autocomplete.is_none())
                    .then_some(def.max_length),
                choices: match def.target {
                    Target::Size => sizes_within(template)
                        .into_iter()
                        .map(|s| (s.to_string(), s.to_string()))
                        .collect(),
                    Target::Aspect => ASPECTS
                        .iter()
                        .map(|a| (a.to_string(), a.to_string()))
                        .collect(),
                    _ => Vec::new(),
                },
                autocomplete: def.autocomplete.is_some(),
            }
        })
        .filter(|o| !(o.kind == OptionKind::Text && o.choices.is_empty() && is_choice(o)))
        .collect();
    options.sort_by_key(|o| !o.required);
    let description = if template.description.is_empty() {
        command.summary.to_string()
    } else {
        template.description.clone()
    };
    CommandSpec {
        name: command.name.to_string(),
        description: clip(&description),
        options,
        subcommands: Vec::new(),
    }
}

/// `size` and `aspect` are choice options; without a choice that fits they are left out.
fn is_choice(option: &OptionSpec) -> bool {
    option.name == "size" || option.name == "aspect"
}

/// The preset sizes within the template's width and height bounds.
pub fn sizes_within(template: &TemplateInfo) -> Vec<&'static str> {
    let (Some(w), Some(h)) = (template.param("width"), template.param("height")) else {
        return Vec::new();
    };
    SIZES
        .iter()
        .copied()
        .filter(|s| {
            let Some((sw, sh)) = s.split_once('x') else {
                return false;
            };
            let (Ok(sw), Ok(sh)) = (sw.parse::<f64>(), sh.parse::<f64>()) else {
                return false;
            };
            let fits = |v: f64, p: &super::fleet_port::ParamInfo| {
                p.min.is_none_or(|m| v >= m) && p.max.is_none_or(|m| v <= m)
            };
            fits(sw, w) && fits(sh, h)
        })
        .collect()
}

fn clip(text: &str) -> String {
    super::message::clip(text, MAX_DESCRIPTION)
}

fn option(name: &str, description: &str, kind: OptionKind) -> OptionSpec {
    OptionSpec {
        name: name.to_string(),
        description: clip(description),
        kind,
        ..OptionSpec::default()
    }
}

fn command(name: &str, description: &str, options: Vec<OptionSpec>) -> CommandSpec {
    CommandSpec {
        name: name.to_string(),
        description: clip(description),
        options,
        subcommands: Vec::new(),
    }
}

/// The bot's own commands.
fn own_commands() -> Vec<CommandSpec> {
    let instance = || OptionSpec {
        required: true,
        ..option(
            "instance",
            "The instance, as /status names it (e.g. gpu0)",
            OptionKind::Text,
        )
    };
    vec![
        command(
            "status",
            "Instances, the queue, and your jobs with their positions and ETAs",
            Vec::new(),
        ),
        command("help", "What the bot can do", Vec::new()),
        command(
            "loras",
            "Every LoRA the instances have, page by page",
            Vec::new(),
        ),
        command(
            "cancel",
            "Cancel one of your jobs (the most recent when none is named)",
            vec![OptionSpec {
                autocomplete: true,
                ..option("job", "The job to cancel", OptionKind::Text)
            }],
        ),
        CommandSpec {
            name: "fleet".into(),
            description:
                "Operators: pause or resume the queue, drain or restart an instance, metrics".into(),
            options: Vec::new(),
            subcommands: vec![
                command("pause", "Stop starting queued jobs", Vec::new()),
                command("resume", "Start queued jobs again", Vec::new()),
                command(
                    "drain",
                    "Let an instance finish its jobs and take no new ones",
                    vec![instance()],
                ),
                command("restart", "Restart an instance's ComfyUI", vec![instance()]),
                command("metrics", "The fleet's metrics line", Vec::new()),
            ],
        },
    ]
}

/// Which model list feeds an option's autocomplete, if any.
pub fn autocomplete_kind(command: &str, option: &str) -> Option<ModelKind> {
    JOB_COMMANDS
        .iter()
        .find(|c| c.name == command)?
        .options
        .iter()
        .find(|o| o.name == option)?
        .autocomplete
}

#[cfg(test)]
mod tests {
    use super::super::fleet_port::{ParamInfo, ParamType};
    use super::*;

    fn param(name: &str, kind: ParamType, min: Option<f64>, max: Option<f64>) -> ParamInfo {
        ParamInfo {
            name: name.into(),
            kind,
            min,
            max,
            ..ParamInfo::default()
        }
    }

    pub fn generate_template() -> TemplateInfo {
        TemplateInfo {
            name: "generate".into(),
            description: "Text to image".into(),
            params: vec![
                param("prompt", ParamType::Text, None, None),
                param("negative", ParamType::Text, None, None),
                param("seed", ParamType::Integer, None, None),
                param("steps", ParamType::Integer, Some(1.0), Some(60.0)),
                param("cfg", ParamType::Number, Some(1.0), Some(20.0)),
                param("width", ParamType::Integer, Some(512.0), Some(1536.0)),
                param("height", ParamType::Integer, Some(512.0), Some(1536.0)),
                param("batch_size", ParamType::Integer, Some(1.0), Some(4.0)),
                param("checkpoint", ParamType::Text, None, None),
            ],
        }
    }

    #[test]
    fn a_job_command_takes_its_options_and_bounds_from_the_template() {
        let specs = command_specs(&[generate_template()]);
        let generate = specs.iter().find(|c| c.name == "generate").unwrap();
        assert_eq!(generate.description, "Text to image");
        let names: Vec<&str> = generate.options.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names[0], "prompt", "required options come first");
        assert!(names.contains(&"size") && names.contains(&"aspect") && names.contains(&"model"));
        assert!(
            !names.contains(&"lora"),
            "the template has no `lora` parameter, so no option: {names:?}"
        );
        let steps = generate.options.iter().find(|o| o.name == "steps").unwrap();
        assert_eq!((steps.min, steps.max), (Some(1.0), Some(60.0)));
        let batch = generate.options.iter().find(|o| o.name == "batch").unwrap();
        assert_eq!(batch.max, Some(4.0));
        let size = generate.options.iter().find(|o| o.name == "size").unwrap();
        let offered: Vec<&str> = size.choices.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(offered.len(), SIZES.len(), "every preset fits 512..1536");
        let model = generate.options.iter().find(|o| o.name == "model").unwrap();
        assert!(model.autocomplete && model.max_length.is_none());
        let prompt = &generate.options[0];
        assert_eq!(prompt.max_length, Some(1000));
    }

    #[test]
    fn commands_without_their_template_are_left_out_and_the_own_ones_are_always_there() {
        let specs = command_specs(&[]);
        let names: Vec<&str> = specs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["status", "help", "loras", "cancel", "fleet"]);
        let fleet = specs.last().unwrap();
        assert_eq!(fleet.subcommands.len(), 5);
        for spec in &specs {
            assert!(spec.description.chars().count() <= MAX_DESCRIPTION);
        }
    }

    #[test]
    fn sizes_outside_the_bounds_are_not_offered() {
        let mut t = generate_template();
        t.params.retain(|p| p.name != "width");
        t.params.push(param(
            "width",
            ParamType::Integer,
            Some(512.0),
            Some(1024.0),
        ));
        let sizes = sizes_within(&t);
        assert!(sizes.contains(&"1024x1024"));
        assert!(!sizes.contains(&"1216x832"));
    }
}
