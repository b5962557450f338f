//! `comfy-fleet templates`: lists the templates of a folder and their parameters.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use super::CliError;
use crate::workflow::{NodeRef, ObjectInfo, Param, Template, TemplateSet};

/// Arguments of `comfy-fleet templates`.
#[derive(Debug, Clone, clap::Args)]
pub struct TemplatesArgs {
    /// The folder of templates (`<name>.json` plus an optional `<name>.toml` map).
    #[arg(long, value_name = "DIR", default_value = "workflows")]
    pub dir: PathBuf,
    /// A server's `/object_info` file: fills in types, bounds and choices from the server, and
    /// finds the parameters of templates that have no map.
    #[arg(long, value_name = "FILE")]
    pub object_info: Option<PathBuf>,
}

/// Runs the subcommand: prints every template with its parameters.
pub fn run(args: TemplatesArgs) -> Result<ExitCode, CliError> {
    let set = TemplateSet::load(&args.dir)?;
    let object_info = args
        .object_info
        .as_deref()
        .map(ObjectInfo::load)
        .transpose()?;
    let mut text = String::new();
    for template in set.iter() {
        describe(&mut text, template, object_info.as_ref())?;
    }
    if text.is_empty() {
        text = format!("no templates in {}\n", args.dir.display());
    }
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

fn describe(
    out: &mut String,
    t: &Template,
    object_info: Option<&ObjectInfo>,
) -> Result<(), CliError> {
    let _ = writeln!(out, "{}  ({})", t.name, t.path.display());
    if !t.description.is_empty() {
        let _ = writeln!(out, "  {}", t.description);
    }
    let (prompt, params): (
        Option<serde_json::Map<String, serde_json::Value>>,
        Vec<Param>,
    ) = match (&t.params, object_info) {
        (_, Some(oi)) => {
            let (prompt, params) = t.resolved_params(oi)?;
            (Some(prompt), params)
        }
        (Some(params), None) => (None, params.clone()),
        (None, None) => {
            let _ = writeln!(
                out,
                "  (no map: parameters are found from well-known nodes; pass --object-info to list them)\n"
            );
            return Ok(());
        }
    };
    for p in &params {
        let mut kind = p.kind.map(|k| k.as_str().to_owned()).unwrap_or_default();
        let (mut min, mut max, mut choices) = (p.min, p.max, p.choices.clone());
        if let (Some(oi), Some(prompt)) = (object_info, &prompt) {
            let class = class_of(prompt, &p.node);
            if let Ok(rules) = p.rules(&class, oi) {
                kind = rules.kind.as_str().to_owned();
                min = rules.min;
                max = rules.max;
                choices = rules.choices;
            }
        }
        let mut line = format!(
            "  {:<14} {:<8}",
            p.name,
            if kind.is_empty() { "?" } else { &kind }
        );
        if let Some(d) = &p.default {
            let _ = write!(
                line,
                " default={}",
                d.as_str().map_or_else(|| d.to_string(), str::to_owned)
            );
        }
        match (min, max) {
            (Some(a), Some(b)) => {
                let _ = write!(line, " range={}..={}", num(a), num(b));
            }
            (Some(a), None) => {
                let _ = write!(line, " min={}", num(a));
            }
            (None, Some(b)) => {
                let _ = write!(line, " max={}", num(b));
            }
            (None, None) => {}
        }
        if let Some(c) = choices.filter(|c| !c.is_empty()) {
            let shown: Vec<String> = c
                .iter()
                .take(8)
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect();
            let more = if c.len() > 8 {
                format!(", … {} more", c.len() - 8)
            } else {
                String::new()
            };
            let _ = write!(line, " choices=[{}{more}]", shown.join(", "));
        }
        if p.optional {
            line.push_str(" (optional)");
        }
        let _ = writeln!(out, "{line}");
        if !p.description.is_empty() {
            let _ = writeln!(out, "  {:<14} {}", "", p.description);
        }
    }
    for m in &t.models {
        let _ = writeln!(out, "  needs model: {}/{}", m.folder, m.file);
    }
    out.push('\n');
    Ok(())
}

fn class_of(prompt: &serde_json::Map<String, serde_json::Value>, node: &NodeRef) -> String {
    let entry = match node {
        NodeRef::Id(id) => prompt.get(id),
        NodeRef::Title(title) => prompt.values().find(|n| {
            n.get("_meta")
                .and_then(|m| m.get("title"))
                .and_then(|t| t.as_str())
                == Some(title)
        }),
    };
    entry
        .and_then(|n| n.get("class_type"))
        .and_then(|c| c.as_str())
        .unwrap_or("")
        .to_owned()
}

/// A bound as people write it: integral values without a fraction.
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e30 {
        format!("{}", v as i128)
    } else {
        v.to_string()
    }
}
