//! Template parameters: what a parameter sets (node and input), its type, default and bounds,
//! and how a user's value is checked and turned into the JSON the prompt needs.

use serde::Deserialize;
use serde_json::Value;

use super::convert::widget_spec_kind;
use super::error::WorkflowError;
use super::object_info::{InputSpec, ObjectInfo};

/// The kind of value a parameter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ParamKind {
    Int,
    Float,
    String,
    Boolean,
    Combo,
    /// An input image: the file name (as uploaded to the server) for a LoadImage-like node.
    Image,
}

impl ParamKind {
    /// The ComfyUI name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Int => "INT",
            Self::Float => "FLOAT",
            Self::String => "STRING",
            Self::Boolean => "BOOLEAN",
            Self::Combo => "COMBO",
            Self::Image => "IMAGE",
        }
    }

    fn from_comfy(kind: &str) -> Option<Self> {
        match kind {
            "INT" => Some(Self::Int),
            "FLOAT" => Some(Self::Float),
            "STRING" => Some(Self::String),
            "BOOLEAN" => Some(Self::Boolean),
            "COMBO" => Some(Self::Combo),
            _ => None,
        }
    }
}

/// Which node a parameter sets: by prompt id or by title (`_meta.title`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeRef {
    Id(String),
    Title(String),
}

/// One template parameter.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub node: NodeRef,
    pub input: String,
    /// Declared kind; when absent it comes from `/object_info`.
    pub kind: Option<ParamKind>,
    /// Default value; `"random"` for a seed means a fresh random seed per run.
    pub default: Option<Value>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub step: Option<f64>,
    pub choices: Option<Vec<Value>>,
    pub description: String,
    /// When not given (and without a default), its node is bypassed: inputs that took the
    /// node's outputs take its inputs of the same type instead, or are removed (an optional
    /// image's loader).
    pub optional: bool,
}

/// The word that asks for a random seed.
pub const RANDOM: &str = "random";

/// The effective rules for one parameter on one server: the template's own bounds narrowed
/// by the server's input spec.
#[derive(Debug, Clone)]
pub struct Rules {
    pub kind: ParamKind,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub step: Option<f64>,
    pub choices: Option<Vec<Value>>,
    pub seed_like: bool,
}

impl Param {
    /// Combines the declared bounds with the server's spec for `class.input`.
    pub fn rules(&self, class: &str, object_info: &ObjectInfo) -> Result<Rules, WorkflowError> {
        let spec: Option<InputSpec<'_>> = object_info
            .node(class)
            .and_then(|def| def.input(&self.input));
        let server_kind = spec
            .as_ref()
            .and_then(|s| ParamKind::from_comfy(widget_spec_kind(s)));
        let kind = match (self.kind, server_kind) {
            (Some(k), _) => k,
            (None, Some(k)) => k,
            (None, None) => {
                return Err(WorkflowError::Template {
                    name: self.name.clone(),
                    reason: format!(
                        "cannot tell the type of input `{}` of `{class}`; give `type` in the map",
                        self.input
                    ),
                });
            }
        };
        let narrow_min = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        };
        let narrow_max = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        let (server_min, server_max, server_step) = match &spec {
            Some(s) if matches!(kind, ParamKind::Int | ParamKind::Float) => {
                (s.number("min"), s.number("max"), s.number("step"))
            }
            _ => (None, None, None),
        };
        let choices = match (&self.choices, kind) {
            (Some(c), _) => Some(c.clone()),
            (None, ParamKind::Combo) => spec.as_ref().and_then(|s| s.choices().cloned()),
            _ => None,
        };
        let seed_like = kind == ParamKind::Int
            && (self.name == "seed"
                || self.input == "seed"
                || self.input == "noise_seed"
                || spec
                    .as_ref()
                    .is_some_and(|s| s.flag("control_after_generate")));
        Ok(Rules {
            kind,
            min: narrow_min(self.min, server_min),
            max: narrow_max(self.max, server_max),
            step: self.step.or(server_step),
            choices,
            seed_like,
        })
    }
}

impl Rules {
    /// Checks and converts a user's value (a JSON value, or a string from a command line).
    /// Returns the JSON to put in the prompt.
    pub fn coerce(&self, name: &str, raw: &Value) -> Result<Value, WorkflowError> {
        let bad = |reason: String| WorkflowError::InvalidValue {
            name: name.to_owned(),
            reason,
        };
        match self.kind {
            ParamKind::Int => {
                if self.seed_like && raw.as_str().is_some_and(|s| s.eq_ignore_ascii_case(RANDOM)) {
                    return Ok(Value::from(self.random_seed()));
                }
                let n = parse_int(raw).ok_or_else(|| {
                    bad(format!(
                        "expected a whole number{}, got {raw}",
                        self.range_text()
                    ))
                })?;
                self.check_range(n as f64, &bad)?;
                if let (Some(step), Some(min)) = (self.step, self.min)
                    && step > 1.0
                    && ((n as f64 - min) % step).abs() > 1e-9
                {
                    {
                        return Err(bad(format!(
                            "{n} is not on the step grid: must be {min} plus a multiple of {step}"
                        )));
                    }
                }
                Ok(int_value(n))
            }
            ParamKind::Float => {
                let f = parse_float(raw).ok_or_else(|| {
                    bad(format!("expected a number{}, got {raw}", self.range_text()))
                })?;
                self.check_range(f, &bad)?;
                Ok(serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .unwrap_or(Value::Null))
            }
            ParamKind::Boolean => match raw {
                Value::Bool(b) => Ok(Value::Bool(*b)),
                Value::String(s) => match s.to_ascii_lowercase().as_str() {
                    "true" | "yes" | "on" | "1" => Ok(Value::Bool(true)),
                    "false" | "no" | "off" | "0" => Ok(Value::Bool(false)),
                    _ => Err(bad(format!("expected true or false, got `{s}`"))),
                },
                other => Err(bad(format!("expected true or false, got {other}"))),
            },
            ParamKind::String => match raw {
                Value::String(s) => Ok(Value::String(s.clone())),
                Value::Number(n) => Ok(Value::String(n.to_string())),
                Value::Bool(b) => Ok(Value::String(b.to_string())),
                other => Err(bad(format!("expected text, got {other}"))),
            },
            ParamKind::Image => match raw {
                Value::String(s) if !s.trim().is_empty() => Ok(Value::String(s.clone())),
                other => Err(bad(format!("expected an image file name, got {other}"))),
            },
            ParamKind::Combo => {
                let choices = self.choices.as_deref().unwrap_or_default();
                let found = choices.iter().find(|c| {
                    *c == raw
                        || (c.as_str().is_some() && c.as_str() == raw.as_str())
                        || (c.as_f64().is_some()
                            && raw.as_str().and_then(|s| s.trim().parse::<f64>().ok())
                                == c.as_f64())
                });
                let bad = |reason: String| WorkflowError::NotAChoice {
                    name: name.to_owned(),
                    reason,
                };
                match found {
                    Some(choice) => Ok(choice.clone()),
                    None if choices.is_empty() => Err(bad(format!(
                        "the server offers no choices for this input (is the model/file \
                         installed?), so {raw} cannot be used"
                    ))),
                    None => Err(bad(format!(
                        "{raw} is not one of the allowed values: {}",
                        list_choices(choices)
                    ))),
                }
            }
        }
    }

    fn check_range(
        &self,
        v: f64,
        bad: &dyn Fn(String) -> WorkflowError,
    ) -> Result<(), WorkflowError> {
        if self.min.is_some_and(|m| v < m) || self.max.is_some_and(|m| v > m) {
            return Err(bad(format!("{v} is out of range{}", self.range_text())));
        }
        Ok(())
    }

    fn range_text(&self) -> String {
        match (self.min, self.max) {
            (Some(a), Some(b)) => format!(" (allowed: {} to {})", fmt_num(a), fmt_num(b)),
            (Some(a), None) => format!(" (allowed: at least {})", fmt_num(a)),
            (None, Some(b)) => format!(" (allowed: at most {})", fmt_num(b)),
            (None, None) => String::new(),
        }
    }

    /// A random seed within the allowed range.
    pub fn random_seed(&self) -> u64 {
        use rand::Rng;
        let lo = self.min.unwrap_or(0.0).max(0.0) as u64;
        let hi = self.max.map_or(u64::MAX, |m| {
            if m >= u64::MAX as f64 {
                u64::MAX
            } else {
                m.max(0.0) as u64
            }
        });
        // Seeds beyond 2^53 do not survive JSON in JavaScript clients; stay below it.
        let hi = hi.min((1u64 << 53) - 1).max(lo);
        rand::rng().random_range(lo..=hi)
    }
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e18 {
        format!("{}", v as i128)
    } else {
        format!("{v}")
    }
}

fn list_choices(choices: &[Value]) -> String {
    const SHOWN: usize = 40;
    let mut names: Vec<String> = choices
        .iter()
        .take(SHOWN)
        .map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_owned))
        .collect();
    if choices.len() > SHOWN {
        names.push(format!("… ({} more)", choices.len() - SHOWN));
    }
    names.join(", ")
}

fn parse_int(raw: &Value) -> Option<i128> {
    match raw {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i128)),
        Value::String(s) => s.trim().parse::<i128>().ok(),
        _ => None,
    }
}

fn parse_float(raw: &Value) -> Option<f64> {
    match raw {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

fn int_value(n: i128) -> Value {
    if let Ok(i) = i64::try_from(n) {
        Value::from(i)
    } else if let Ok(u) = u64::try_from(n) {
        Value::from(u)
    } else {
        Value::Null
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(kind: ParamKind) -> Rules {
        Rules {
            kind,
            min: Some(0.0),
            max: Some(10.0),
            step: None,
            choices: Some(vec![json!("a"), json!("b")]),
            seed_like: false,
        }
    }

    #[test]
    fn booleans_accept_words_and_reject_others() {
        let r = rules(ParamKind::Boolean);
        assert_eq!(r.coerce("flag", &json!("yes")).unwrap(), json!(true));
        assert_eq!(r.coerce("flag", &json!("off")).unwrap(), json!(false));
        assert_eq!(r.coerce("flag", &json!(true)).unwrap(), json!(true));
        let err = r.coerce("flag", &json!("maybe")).unwrap_err().to_string();
        assert!(
            err.contains("`flag`") && err.contains("true or false"),
            "{err}"
        );
    }

    #[test]
    fn strings_from_a_command_line_become_numbers() {
        assert_eq!(
            rules(ParamKind::Int).coerce("n", &json!("7")).unwrap(),
            json!(7)
        );
        assert_eq!(
            rules(ParamKind::Float).coerce("x", &json!("2.5")).unwrap(),
            json!(2.5)
        );
        let err = rules(ParamKind::Int)
            .coerce("n", &json!("2.5"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("whole number") && err.contains("0 to 10"),
            "{err}"
        );
    }

    #[test]
    fn int_step_grid_is_enforced() {
        let mut r = rules(ParamKind::Int);
        r.step = Some(8.0);
        r.max = Some(100.0);
        assert_eq!(r.coerce("w", &json!(64)).unwrap(), json!(64));
        let err = r.coerce("w", &json!(65)).unwrap_err().to_string();
        assert!(err.contains("multiple of 8"), "{err}");
    }

    #[test]
    fn random_is_only_for_seeds() {
        let mut r = rules(ParamKind::Int);
        assert!(r.coerce("steps", &json!("random")).is_err());
        r.seed_like = true;
        let v = r.coerce("seed", &json!("random")).unwrap();
        assert!(v.as_u64().is_some_and(|s| s <= 10));
    }

    #[test]
    fn combo_without_choices_explains_the_missing_model() {
        let mut r = rules(ParamKind::Combo);
        r.choices = Some(Vec::new());
        let err = r
            .coerce("checkpoint", &json!("x.safetensors"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`checkpoint`") && err.contains("installed"),
            "{err}"
        );
    }
}
