//! A job command's options → the template's parameters, checked against the template's bounds
//! (errors name the option and its range), and back: the options as embed fields on the job's
//! messages, which is what a re-roll reads after a restart of comfy-fleet.

use std::collections::BTreeMap;

use serde_json::Value;

use super::fleet_port::{ParamInfo, TemplateInfo};
use super::interaction::{Attachment, CommandCall, OptionValue};
use super::job_commands::{JobCommand, OptionDef, OptionKind, Target};
use super::message::{Embed, EmbedField};

/// Side of the square a ratio's size is measured against (about one megapixel).
const ASPECT_BASE_SIDE: f64 = 1024.0;

/// What a command asks the template for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobParams {
    pub params: BTreeMap<String, Value>,
    /// Image parameters and the attachments that fill them.
    pub images: Vec<(String, Attachment)>,
    /// The options as given (sizes resolved), to show on the job's messages.
    pub fields: Vec<EmbedField>,
}

/// An option the template cannot take, named, with what would be right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{option}` {message}")]
pub struct OptionError {
    pub option: String,
    pub message: String,
}

fn refuse(option: &str, message: impl Into<String>) -> OptionError {
    OptionError {
        option: option.to_string(),
        message: message.into(),
    }
}

/// Maps a command's options onto the template's parameters.
pub fn job_params(
    command: &JobCommand,
    template: &TemplateInfo,
    call: &CommandCall,
) -> Result<JobParams, OptionError> {
    let defs: Vec<&OptionDef> = command
        .options
        .iter()
        .filter(|d| d.target.present_in(template))
        .collect();
    for given in &call.options {
        if !defs.iter().any(|d| d.name == given.name) {
            return Err(refuse(
                &given.name,
                format!(
                    "is not an option of /{} with this server's `{}` template; the commands may be out of date, try again in a minute",
                    command.name, template.name
                ),
            ));
        }
    }
    if call.option("size").is_some() && call.option("aspect").is_some() {
        return Err(refuse(
            "aspect",
            "cannot be given with `size`; choose one of them",
        ));
    }
    if call.option("lora_strength").is_some() && call.option("lora").is_none() {
        return Err(refuse("lora_strength", "needs a `lora` to apply"));
    }
    let mut out = JobParams::default();
    for def in defs {
        let Some(value) = call.option(def.name) else {
            if def.required {
                return Err(refuse(def.name, "is required"));
            }
            continue;
        };
        apply(def, template, value, &mut out)?;
    }
    Ok(out)
}

fn apply(
    def: &OptionDef,
    template: &TemplateInfo,
    value: &OptionValue,
    out: &mut JobParams,
) -> Result<(), OptionError> {
    let name = def.name;
    let field = |value: &str| EmbedField::new(name, value, def.kind != OptionKind::Text);
    match (def.kind, value) {
        (OptionKind::Attachment, OptionValue::Attachment(a)) => {
            let Target::Param(param) = def.target else {
                return Err(refuse(name, "is not an image parameter"));
            };
            out.images.push((param.to_string(), a.clone()));
            out.fields.push(EmbedField::new(
                name,
                &format!("[{}]({})", a.filename.replace(['[', ']'], ""), a.url),
                true,
            ));
        }
        (OptionKind::Text, OptionValue::Text(text)) => {
            let text = text.trim();
            if text.is_empty() {
                return Err(refuse(name, "is empty"));
            }
            if text.chars().count() > usize::from(def.max_length) {
                return Err(refuse(
                    name,
                    format!(
                        "is {} characters long; at most {} are accepted",
                        text.chars().count(),
                        def.max_length
                    ),
                ));
            }
            match def.target {
                Target::Size => {
                    let (w, h) = parse_size(name, text, template)?;
                    set_size(out, w, h);
                    out.fields
                        .push(EmbedField::new("size", &format!("{w}x{h}"), true));
                }
                Target::Aspect => {
                    let (w, h) = aspect_size(name, text, template)?;
                    set_size(out, w, h);
                    out.fields
                        .push(EmbedField::new("size", &format!("{w}x{h}"), true));
                }
                _ => {
                    set(out, &def.target, Value::String(text.to_string()));
                    out.fields.push(field(text));
                }
            }
        }
        (OptionKind::Integer, OptionValue::Integer(_) | OptionValue::Number(_)) => {
            let n = match value {
                OptionValue::Integer(i) => *i,
                OptionValue::Number(x) if x.fract() == 0.0 => *x as i64,
                _ => return Err(refuse(name, "must be a whole number")),
            };
            within(name, n as f64, def.target.bounds(template))?;
            set(out, &def.target, Value::from(n));
            out.fields.push(field(&n.to_string()));
        }
        (OptionKind::Number, OptionValue::Number(_) | OptionValue::Integer(_)) => {
            let x = match value {
                OptionValue::Integer(i) => *i as f64,
                OptionValue::Number(x) => *x,
                _ => 0.0,
            };
            if !x.is_finite() {
                return Err(refuse(name, "must be a number"));
            }
            within(name, x, def.target.bounds(template))?;
            set(out, &def.target, Value::from(x));
            out.fields.push(field(&x.to_string()));
        }
        (OptionKind::Boolean, OptionValue::Boolean(b)) => {
            set(out, &def.target, Value::Bool(*b));
            out.fields.push(field(&b.to_string()));
        }
        (kind, _) => {
            return Err(refuse(name, format!("must be {}", kind_words(kind))));
        }
    }
    Ok(())
}

fn kind_words(kind: OptionKind) -> &'static str {
    match kind {
        OptionKind::Text => "text",
        OptionKind::Integer => "a whole number",
        OptionKind::Number => "a number",
        OptionKind::Boolean => "true or false",
        OptionKind::Attachment => "an attached image",
    }
}

fn set(out: &mut JobParams, target: &Target, value: Value) {
    match target {
        Target::Param(p) => {
            out.params.insert(p.to_string(), value);
        }
        Target::Params(ps) => {
            for p in *ps {
                out.params.insert(p.to_string(), value.clone());
            }
        }
        Target::Size | Target::Aspect => {}
    }
}

fn set_size(out: &mut JobParams, width: u32, height: u32) {
    out.params.insert("width".into(), Value::from(width));
    out.params.insert("height".into(), Value::from(height));
}

fn within(
    name: &str,
    value: f64,
    (min, max): (Option<f64>, Option<f64>),
) -> Result<(), OptionError> {
    let shown = |x: f64| x.to_string();
    let range = match (min, max) {
        (Some(lo), Some(hi)) => format!("between {} and {}", shown(lo), shown(hi)),
        (Some(lo), None) => format!("at least {}", shown(lo)),
        (None, Some(hi)) => format!("at most {}", shown(hi)),
        (None, None) => return Ok(()),
    };
    if min.is_some_and(|lo| value < lo) || max.is_some_and(|hi| value > hi) {
        return Err(refuse(
            name,
            format!("must be {range} (you gave {})", shown(value)),
        ));
    }
    Ok(())
}

fn side_bounds(template: &TemplateInfo, param: &str) -> (f64, f64) {
    let p: Option<&ParamInfo> = template.param(param);
    (
        p.and_then(|p| p.min).unwrap_or(64.0),
        p.and_then(|p| p.max).unwrap_or(8192.0),
    )
}

/// `WxH` (also `W×H`, `W*H`, `W X H`) within the template's bounds, in multiples of 8.
fn parse_size(name: &str, text: &str, template: &TemplateInfo) -> Result<(u32, u32), OptionError> {
    let lowered = text.to_lowercase().replace(['×', '*'], "x");
    let parsed = lowered
        .split_once('x')
        .and_then(|(w, h)| Some((w.trim().parse::<u32>().ok()?, h.trim().parse::<u32>().ok()?)));
    let (w_lo, w_hi) = side_bounds(template, "width");
    let (h_lo, h_hi) = side_bounds(template, "height");
    let Some((w, h)) = parsed else {
        return Err(refuse(
            name,
            format!(
                "`{text}` is not a size; write width x height, e.g. 1024x1024 (width {w_lo}–{w_hi}, height {h_lo}–{h_hi})"
            ),
        ));
    };
    if f64::from(w) < w_lo || f64::from(w) > w_hi || f64::from(h) < h_lo || f64::from(h) > h_hi {
        return Err(refuse(
            name,
            format!(
                "{w}x{h} is outside the template's bounds: width {w_lo}–{w_hi}, height {h_lo}–{h_hi}"
            ),
        ));
    }
    if w % 8 != 0 || h % 8 != 0 {
        return Err(refuse(
            name,
            format!(
                "{w}x{h}: width and height must be multiples of 8, e.g. {}x{}",
                w / 8 * 8,
                h / 8 * 8
            ),
        ));
    }
    Ok((w, h))
}

/// An aspect ratio at about one megapixel, in multiples of 64 (8 at the bounds), within the
/// template's bounds.
fn aspect_size(name: &str, text: &str, template: &TemplateInfo) -> Result<(u32, u32), OptionError> {
    let ratio = text
        .split_once(':')
        .and_then(|(a, b)| Some((a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?)))
        .filter(|(a, b)| *a > 0.0 && *b > 0.0 && (a / b) <= 8.0 && (b / a) <= 8.0)
        .map(|(a, b)| a / b);
    let Some(ratio) = ratio else {
        return Err(refuse(
            name,
            format!("`{text}` is not an aspect ratio; write it like 16:9"),
        ));
    };
    let (w_lo, w_hi) = side_bounds(template, "width");
    let (h_lo, h_hi) = side_bounds(template, "height");
    let area = ASPECT_BASE_SIDE * ASPECT_BASE_SIDE;
    let fit = |v: f64, lo: f64, hi: f64| {
        let v = ((v / 64.0).round() * 64.0).clamp(lo, hi);
        // Inside the bounds, on a multiple of 8.
        let v = (v / 8.0).floor() * 8.0;
        if v < lo { (lo / 8.0).ceil() * 8.0 } else { v }
    };
    let w = fit((area * ratio).sqrt(), w_lo, w_hi);
    let h = fit((area / ratio).sqrt(), h_lo, h_hi);
    Ok((w as u32, h as u32))
}

/// The command call a job's fields describe (the re-roll button reads it from the result
/// message); with `new_seed`, the seed is left out so a new one is drawn.
pub fn call_from_fields(
    command: &JobCommand,
    template: &TemplateInfo,
    embed: &Embed,
    new_seed: bool,
) -> Result<CommandCall, OptionError> {
    let mut call = CommandCall::new(command.name);
    for field in &embed.fields {
        let Some(def) = command
            .options
            .iter()
            .find(|d| d.name == field.name && d.target.present_in(template))
        else {
            continue;
        };
        if new_seed && def.name == "seed" {
            continue;
        }
        let text = field.value.trim();
        let bad = || {
            refuse(
                def.name,
                format!(
                    "`{text}` on the message cannot be read back; run /{} again",
                    command.name
                ),
            )
        };
        let value = match def.kind {
            OptionKind::Text => OptionValue::Text(text.to_string()),
            OptionKind::Integer => OptionValue::Integer(text.parse().map_err(|_| bad())?),
            OptionKind::Number => OptionValue::Number(text.parse().map_err(|_| bad())?),
            OptionKind::Boolean => OptionValue::Boolean(text.parse().map_err(|_| bad())?),
            OptionKind::Attachment => {
                let (name, url) = markdown_link(text).ok_or_else(bad)?;
                let mut attachment = Attachment::from_url(url);
                attachment.filename = name.to_string();
                OptionValue::Attachment(attachment)
            }
        };
        call = call.with(def.name, value);
    }
    Ok(call)
}

/// `[name](url)` → (name, url).
fn markdown_link(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix('[')?;
    let (name, rest) = rest.split_once("](")?;
    let url = rest.strip_suffix(')')?;
    Some((name, url))
}

#[cfg(test)]
mod tests {
    use super::super::fleet_port::{ParamInfo, ParamType};
    use super::super::job_commands::job_command;
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

    fn generate() -> TemplateInfo {
        TemplateInfo {
            name: "generate".into(),
            description: String::new(),
            params: vec![
                param("prompt", ParamType::Text, None, None),
                param("seed", ParamType::Integer, None, None),
                param("steps", ParamType::Integer, Some(1.0), Some(60.0)),
                param("cfg", ParamType::Number, Some(1.0), Some(20.0)),
                param("width", ParamType::Integer, Some(512.0), Some(1536.0)),
                param("height", ParamType::Integer, Some(512.0), Some(1536.0)),
                param("lora", ParamType::Text, None, None),
                param("lora_strength", ParamType::Number, Some(-2.0), Some(2.0)),
                param(
                    "lora_clip_strength",
                    ParamType::Number,
                    Some(-2.0),
                    Some(2.0),
                ),
            ],
        }
    }

    fn cmd() -> &'static JobCommand {
        job_command("generate").unwrap()
    }

    fn text(v: &str) -> OptionValue {
        OptionValue::Text(v.into())
    }

    #[test]
    fn options_become_parameters_and_fields() {
        let call = CommandCall::new("generate")
            .with("prompt", text("a lighthouse"))
            .with("steps", OptionValue::Integer(20))
            .with("cfg", OptionValue::Number(6.5))
            .with("size", text("1216x832"))
            .with("lora", text("film.safetensors"))
            .with("lora_strength", OptionValue::Number(0.8));
        let p = job_params(cmd(), &generate(), &call).unwrap();
        assert_eq!(p.params["prompt"], "a lighthouse");
        assert_eq!(p.params["steps"], 20);
        assert_eq!(p.params["cfg"], 6.5);
        assert_eq!(
            (p.params["width"].clone(), p.params["height"].clone()),
            (1216.into(), 832.into())
        );
        assert_eq!(p.params["lora_strength"], 0.8);
        assert_eq!(
            p.params["lora_clip_strength"], 0.8,
            "both LoRA strengths follow the option"
        );
        let names: Vec<&str> = p.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["prompt", "size", "steps", "cfg", "lora", "lora_strength"]
        );
    }

    #[test]
    fn out_of_range_values_name_the_option_and_its_range() {
        let call = CommandCall::new("generate")
            .with("prompt", text("x"))
            .with("steps", OptionValue::Integer(80));
        let err = job_params(cmd(), &generate(), &call).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`steps` must be between 1 and 60 (you gave 80)"
        );
        let call = CommandCall::new("generate")
            .with("prompt", text("x"))
            .with("size", text("2048x512"));
        let err = job_params(cmd(), &generate(), &call)
            .unwrap_err()
            .to_string();
        assert!(err.contains("width 512–1536"), "{err}");
        let call = CommandCall::new("generate")
            .with("prompt", text("x"))
            .with("size", text("1000x1001"));
        let err = job_params(cmd(), &generate(), &call)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("multiples of 8") && err.contains("1000x1000"),
            "{err}"
        );
    }

    #[test]
    fn missing_conflicting_and_unknown_options_are_refused() {
        let err = job_params(cmd(), &generate(), &CommandCall::new("generate")).unwrap_err();
        assert_eq!(err.option, "prompt");
        let call = CommandCall::new("generate")
            .with("prompt", text("x"))
            .with("size", text("1024x1024"))
            .with("aspect", text("16:9"));
        assert_eq!(
            job_params(cmd(), &generate(), &call).unwrap_err().option,
            "aspect"
        );
        let call = CommandCall::new("generate")
            .with("prompt", text("x"))
            .with("lora_strength", OptionValue::Number(1.0));
        assert_eq!(
            job_params(cmd(), &generate(), &call).unwrap_err().option,
            "lora_strength"
        );
        let call = CommandCall::new("generate")
            .with("prompt", text("x"))
            .with("batch", OptionValue::Integer(2));
        let err = job_params(cmd(), &generate(), &call).unwrap_err();
        assert!(
            err.message.contains("out of date"),
            "the template has no batch_size: {err}"
        );
    }

    #[test]
    fn an_aspect_ratio_gives_about_a_megapixel_within_bounds() {
        for (aspect, expected) in [
            ("1:1", (1024, 1024)),
            ("16:9", (1344, 768)),
            ("9:16", (768, 1344)),
            ("21:9", (1536, 640)),
        ] {
            let call = CommandCall::new("generate")
                .with("prompt", text("x"))
                .with("aspect", text(aspect));
            let p = job_params(cmd(), &generate(), &call).unwrap();
            let got = (
                p.params["width"].as_u64().unwrap(),
                p.params["height"].as_u64().unwrap(),
            );
            assert_eq!(got, expected, "{aspect}");
            assert_eq!(p.fields[1].value, format!("{}x{}", expected.0, expected.1));
        }
        let call = CommandCall::new("generate")
            .with("prompt", text("x"))
            .with("aspect", text("wide"));
        assert_eq!(
            job_params(cmd(), &generate(), &call).unwrap_err().option,
            "aspect"
        );
    }

    #[test]
    fn fields_read_back_into_the_same_call_with_a_new_seed() {
        let call = CommandCall::new("generate")
            .with("prompt", text("a lighthouse at dawn"))
            .with("size", text("832x1216"))
            .with("cfg", OptionValue::Number(7.0))
            .with("seed", OptionValue::Integer(42));
        let first = job_params(cmd(), &generate(), &call).unwrap();
        let embed = Embed {
            fields: first.fields.clone(),
            ..Embed::default()
        };
        let again = call_from_fields(cmd(), &generate(), &embed, true).unwrap();
        assert!(again.option("seed").is_none());
        let second = job_params(cmd(), &generate(), &again).unwrap();
        let mut expected = first.params.clone();
        expected.remove("seed");
        assert_eq!(second.params, expected);
        let same = call_from_fields(cmd(), &generate(), &embed, false).unwrap();
        assert_eq!(
            job_params(cmd(), &generate(), &same).unwrap().params,
            first.params
        );
    }

    #[test]
    fn image_fields_keep_the_attachment_url() {
        let edit = job_command("editflux").unwrap();
        let template = TemplateInfo {
            name: "editflux".into(),
            description: String::new(),
            params: vec![
                param("image", ParamType::Image, None, None),
                param("prompt", ParamType::Text, None, None),
            ],
        };
        let photo = Attachment {
            filename: "cat.png".into(),
            url: "https://cdn.discordapp.com/attachments/1/2/cat.png?ex=1".into(),
            size: 10,
            content_type: Some("image/png".into()),
        };
        let call = CommandCall::new("editflux")
            .with("image", OptionValue::Attachment(photo.clone()))
            .with("instruction", text("make it blue"));
        let p = job_params(edit, &template, &call).unwrap();
        assert_eq!(p.images, vec![("image".to_string(), photo.clone())]);
        let again = call_from_fields(
            edit,
            &template,
            &Embed {
                fields: p.fields,
                ..Embed::default()
            },
            true,
        )
        .unwrap();
        let Some(OptionValue::Attachment(back)) = again.option("image") else {
            panic!("{again:?}");
        };
        assert_eq!(
            (back.filename.as_str(), back.url.as_str()),
            ("cat.png", photo.url.as_str())
        );
    }
}
