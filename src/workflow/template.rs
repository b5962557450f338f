//! Templates: a workflow file in a directory plus an optional parameter map `<name>.toml`;
//! `prepare` turns user parameters into a ready API prompt.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::discover::{discover, ordered_ids};
use super::error::WorkflowError;
use super::format::Workflow;
use super::models::models_in;
use super::object_info::ObjectInfo;
use super::param::{NodeRef, Param, ParamKind};

/// All templates of a directory, by name.
#[derive(Debug, Clone)]
pub struct TemplateSet {
    templates: BTreeMap<String, Template>,
}

/// One template: a workflow and its parameters.
#[derive(Debug, Clone)]
pub struct Template {
    pub name: String,
    pub description: String,
    pub workflow: Workflow,
    /// Parameters from the map; `None` when the template has no map and its parameters are
    /// discovered from well-known nodes at preparation time.
    pub params: Option<Vec<Param>>,
    /// Model files the operator must install, as the map documents them.
    pub models: Vec<ModelNote>,
    pub path: PathBuf,
}

/// A model file a template needs, documented in its map.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelNote {
    pub file: String,
    /// The ComfyUI models folder (`checkpoints`, `loras`, `vae`, …).
    pub folder: String,
    /// Where `comfy-fleet models install` downloads it from.
    #[serde(default)]
    pub url: Option<String>,
    /// Its SHA-256 (hex), checked after a download when given.
    #[serde(default)]
    pub sha256: Option<String>,
}

/// A prompt ready for `POST /prompt`.
#[derive(Debug, Clone)]
pub struct PreparedPrompt {
    pub prompt: Value,
    /// The seed used, when the template has a `seed` parameter.
    pub seed: Option<u64>,
    /// (parameter, node id) of every input image set: the caller uploads the file and the
    /// prompt already names it.
    pub input_images: Vec<(String, String)>,
    /// Model files the prompt loads.
    pub models: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFile {
    #[serde(default)]
    description: String,
    #[serde(default)]
    workflow: Option<String>,
    #[serde(default, rename = "param")]
    params: Vec<MapParam>,
    #[serde(default, rename = "model")]
    models: Vec<ModelNote>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MapParam {
    name: String,
    #[serde(default)]
    node: Option<toml::Value>,
    #[serde(default)]
    title: Option<String>,
    input: String,
    #[serde(default, rename = "type")]
    kind: Option<ParamKind>,
    #[serde(default)]
    default: Option<toml::Value>,
    #[serde(default)]
    min: Option<f64>,
    #[serde(default)]
    max: Option<f64>,
    #[serde(default)]
    step: Option<f64>,
    #[serde(default)]
    choices: Option<Vec<toml::Value>>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    optional: bool,
}

fn toml_to_json(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
}

impl TemplateSet {
    /// Loads every `*.json` workflow of `dir` (with `<name>.toml` when present), and every map
    /// whose `workflow` names another file.
    pub fn load(dir: &Path) -> Result<Self, WorkflowError> {
        let io = |source| WorkflowError::Io {
            path: dir.to_owned(),
            source,
        };
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .map(|e| e.map(|e| e.path()).map_err(io))
            .collect::<Result<_, _>>()?;
        entries.sort();
        let mut templates = BTreeMap::new();
        let mut used_workflows: Vec<PathBuf> = Vec::new();
        for map_path in entries
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        {
            let template = Template::load_map(map_path)?;
            used_workflows.push(template.path.clone());
            templates.insert(template.name.clone(), template);
        }
        for wf in entries
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
        {
            if used_workflows.contains(wf) {
                continue;
            }
            let name = stem(wf)?;
            if templates.contains_key(&name) {
                continue;
            }
            templates.insert(
                name.clone(),
                Template {
                    name,
                    description: String::new(),
                    workflow: read_workflow(wf)?,
                    params: None,
                    models: Vec::new(),
                    path: wf.clone(),
                },
            );
        }
        Ok(Self { templates })
    }

    /// The template of that name.
    pub fn get(&self, name: &str) -> Result<&Template, WorkflowError> {
        self.templates
            .get(name)
            .ok_or_else(|| WorkflowError::NoSuchTemplate {
                name: name.to_owned(),
                available: self.names(),
            })
    }

    /// Template names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.templates.keys().cloned().collect()
    }

    /// All templates, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Template> {
        self.templates.values()
    }
}

fn stem(path: &Path) -> Result<String, WorkflowError> {
    path.file_stem()
        .and_then(|s| s.to_str())
        .map(str::to_owned)
        .ok_or_else(|| WorkflowError::Template {
            name: path.display().to_string(),
            reason: "the file name is not valid UTF-8".into(),
        })
}

fn read_workflow(path: &Path) -> Result<Workflow, WorkflowError> {
    let bytes = std::fs::read(path).map_err(|source| WorkflowError::Io {
        path: path.to_owned(),
        source,
    })?;
    Workflow::parse(&bytes).map_err(|e| WorkflowError::Template {
        name: path.display().to_string(),
        reason: e.to_string(),
    })
}

impl Template {
    /// Loads a map file and the workflow it names (default: `<name>.json` beside it).
    pub fn load_map(map_path: &Path) -> Result<Self, WorkflowError> {
        let name = stem(map_path)?;
        let text = std::fs::read_to_string(map_path).map_err(|source| WorkflowError::Io {
            path: map_path.to_owned(),
            source,
        })?;
        let bad = |reason: String| WorkflowError::Template {
            name: name.clone(),
            reason,
        };
        let map: MapFile =
            toml::from_str(&text).map_err(|e| bad(format!("{}: {e}", map_path.display())))?;
        let dir = map_path.parent().unwrap_or(Path::new("."));
        let wf_path = dir.join(map.workflow.unwrap_or_else(|| format!("{name}.json")));
        let workflow = read_workflow(&wf_path)?;
        let mut params = Vec::new();
        for p in map.params {
            let node = match (p.node, p.title) {
                (Some(id), None) => NodeRef::Id(match id {
                    toml::Value::String(s) => s,
                    toml::Value::Integer(i) => i.to_string(),
                    other => {
                        return Err(bad(format!(
                            "parameter `{}`: `node` must be an id, got {other}",
                            p.name
                        )));
                    }
                }),
                (None, Some(title)) => NodeRef::Title(title),
                _ => {
                    return Err(bad(format!(
                        "parameter `{}` needs exactly one of `node` (an id) or `title`",
                        p.name
                    )));
                }
            };
            if params.iter().any(|q: &Param| q.name == p.name) {
                return Err(bad(format!("parameter `{}` is defined twice", p.name)));
            }
            params.push(Param {
                name: p.name,
                node,
                input: p.input,
                kind: p.kind,
                default: p.default.map(toml_to_json),
                min: p.min,
                max: p.max,
                step: p.step,
                choices: p.choices.map(|c| c.into_iter().map(toml_to_json).collect()),
                description: p.description,
                optional: p.optional,
            });
        }
        Ok(Self {
            name,
            description: map.description,
            workflow,
            params: Some(params),
            models: map.models,
            path: wf_path,
        })
    }

    /// The parameters of this template on a server: the map's, or the discovered ones.
    pub fn resolved_params(
        &self,
        object_info: &ObjectInfo,
    ) -> Result<(Map<String, Value>, Vec<Param>), WorkflowError> {
        let prompt = self.workflow.to_api(object_info)?.0;
        let params = match &self.params {
            Some(p) => p.clone(),
            None => discover(&prompt),
        };
        Ok((prompt, params))
    }

    /// Builds the API prompt with `values` applied. Values may be JSON values or strings (as
    /// typed on a command line); `seed = "random"` draws a seed.
    pub fn prepare(
        &self,
        values: &BTreeMap<String, Value>,
        object_info: &ObjectInfo,
    ) -> Result<PreparedPrompt, WorkflowError> {
        let (mut prompt, params) = self.resolved_params(object_info)?;
        for name in values.keys() {
            if !params.iter().any(|p| &p.name == name) {
                return Err(WorkflowError::UnknownParameter {
                    name: name.clone(),
                    valid: params.iter().map(|p| p.name.clone()).collect(),
                });
            }
        }
        let mut seed = None;
        let mut input_images = Vec::new();
        let mut removed: Vec<String> = Vec::new();
        for param in &params {
            let id = self.node_id(&prompt, param)?;
            let class = prompt
                .get(&id)
                .and_then(|n| n.get("class_type"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let rules = param.rules(&class, object_info)?;
            let raw = values.get(&param.name).or(param.default.as_ref());
            let Some(raw) = raw else {
                if param.optional && !removed.contains(&id) {
                    removed.push(id.clone());
                }
                continue;
            };
            let value = rules.coerce(&param.name, raw)?;
            if param.name == "seed" || (rules.seed_like && seed.is_none()) {
                seed = value.as_u64().or(seed);
            }
            if rules.kind == ParamKind::Image {
                input_images.push((param.name.clone(), id.clone()));
            }
            if let Some(inputs) = prompt
                .get_mut(&id)
                .and_then(|n| n.get_mut("inputs"))
                .and_then(Value::as_object_mut)
            {
                inputs.insert(param.input.clone(), value);
            }
        }
        for id in &removed {
            bypass_node(&mut prompt, id, object_info);
        }
        let prompt = Value::Object(prompt);
        let models = models_in(&prompt);
        Ok(PreparedPrompt {
            prompt,
            seed,
            input_images,
            models,
        })
    }

    fn node_id(&self, prompt: &Map<String, Value>, param: &Param) -> Result<String, WorkflowError> {
        let found = match &param.node {
            NodeRef::Id(id) => prompt.contains_key(id).then(|| id.clone()),
            NodeRef::Title(title) => ordered_ids(prompt)
                .into_iter()
                .find(|id| {
                    prompt[id.as_str()]
                        .get("_meta")
                        .and_then(|m| m.get("title"))
                        .and_then(Value::as_str)
                        == Some(title)
                })
                .cloned(),
        };
        let id = found.ok_or_else(|| WorkflowError::Template {
            name: self.name.clone(),
            reason: format!(
                "parameter `{}` refers to node {:?}, which the workflow does not have",
                param.name, param.node
            ),
        })?;
        let has_input = prompt[&id]
            .get("inputs")
            .and_then(Value::as_object)
            .is_some_and(|i| i.contains_key(&param.input));
        let class = prompt[&id]
            .get("class_type")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !has_input && class.is_empty() {
            return Err(WorkflowError::Template {
                name: self.name.clone(),
                reason: format!("parameter `{}`: node {id} has no class_type", param.name),
            });
        }
        Ok(id)
    }
}

/// Removes a node the way ComfyUI's "bypass" mode leaves it out: an input that took the
/// node's output number `k` takes instead the node's own input of the same type (a LoRA loader's
/// MODEL and CLIP pass straight through); an input with nothing of that type to take (an
/// optional image's loader has no inputs) is removed.
fn bypass_node(prompt: &mut Map<String, Value>, id: &str, object_info: &ObjectInfo) {
    let Some(node) = prompt.shift_remove(id) else {
        return;
    };
    let class = node.get("class_type").and_then(Value::as_str).unwrap_or("");
    let def = object_info.node(class);
    let output_types: Vec<String> = def
        .as_ref()
        .map(|d| d.output_types().into_iter().map(str::to_owned).collect())
        .unwrap_or_default();
    // The node's linked inputs with their declared types, in order.
    let linked: Vec<(String, Value)> = node
        .get("inputs")
        .and_then(Value::as_object)
        .map(|inputs| {
            inputs
                .iter()
                .filter(|(_, v)| is_link(v))
                .filter_map(|(name, v)| {
                    let kind = def.as_ref()?.input(name)?.kind().to_owned();
                    Some((kind, v.clone()))
                })
                .collect()
        })
        .unwrap_or_default();
    let through = |slot: usize| -> Option<Value> {
        let kind = output_types.get(slot)?;
        linked
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, link)| link.clone())
    };
    for other in prompt.values_mut() {
        if let Some(inputs) = other.get_mut("inputs").and_then(Value::as_object_mut) {
            let mut gone = Vec::new();
            for (name, value) in inputs.iter_mut() {
                if !is_link(value) || value.get(0).and_then(Value::as_str) != Some(id) {
                    continue;
                }
                let slot = value.get(1).and_then(Value::as_u64).unwrap_or(0) as usize;
                match through(slot) {
                    Some(link) => *value = link,
                    None => gone.push(name.clone()),
                }
            }
            for name in gone {
                inputs.shift_remove(&name);
            }
        }
    }
}

/// Whether an input value is a link `[node_id, slot]`.
fn is_link(value: &Value) -> bool {
    value
        .as_array()
        .is_some_and(|a| a.len() == 2 && a[0].is_string() && a[1].is_u64())
}

/// Parses `name=value` assignments (as given to `--set`) into the map [`Template::prepare`]
/// takes. Values stay strings; `prepare` converts them by the parameter's type.
pub fn parse_assignments(items: &[String]) -> Result<BTreeMap<String, Value>, WorkflowError> {
    let mut out = BTreeMap::new();
    for item in items {
        let (name, value) = parse_assignment(item)?;
        if out
            .insert(name.to_owned(), Value::String(value.to_owned()))
            .is_some()
        {
            return Err(WorkflowError::InvalidValue {
                name: name.to_owned(),
                reason: "given more than once".into(),
            });
        }
    }
    Ok(out)
}

/// Splits one `name=value` assignment at its first `=`; the name is trimmed and must not be
/// empty, the value is kept as written.
pub fn parse_assignment(item: &str) -> Result<(&str, &str), WorkflowError> {
    let Some((name, value)) = item.split_once('=') else {
        return Err(WorkflowError::InvalidValue {
            name: item.to_owned(),
            reason: "expected NAME=VALUE, e.g. seed=42".into(),
        });
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(WorkflowError::InvalidValue {
            name: item.to_owned(),
            reason: "the parameter name before `=` is empty".into(),
        });
    }
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_split_at_the_first_equals_sign() {
        let got = parse_assignments(&["prompt=a=b".into(), "seed=random".into()]).unwrap();
        assert_eq!(got["prompt"], "a=b");
        assert_eq!(got["seed"], "random");
        assert!(parse_assignments(&["novalue".into()]).is_err());
        assert!(parse_assignments(&["=x".into()]).is_err());
        assert!(parse_assignments(&["a=1".into(), "a=2".into()]).is_err());
    }
}
