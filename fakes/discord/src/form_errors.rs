//! The `errors` tree of Discord's "Invalid Form Body" answer (code 50035): every refused field
//! is reached by its path of keys and array indices and carries `_errors: [{code, message}]`,
//! as the "Error Messages" section of Discord's reference documentation shows.

use serde_json::{Map, Value};

/// One refusal of one field: Discord's string error code and its human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_string(),
            message: message.into(),
        }
    }

    /// A required field is missing (or null where null is not allowed).
    pub fn required() -> Self {
        Self::new("BASE_TYPE_REQUIRED", "This field is required")
    }

    /// A string or list length outside `min..=max` (either bound optional).
    pub fn length(len: usize, min: Option<u64>, max: Option<u64>) -> Option<Self> {
        let too_short = min.is_some_and(|m| (len as u64) < m);
        let too_long = max.is_some_and(|m| (len as u64) > m);
        if !too_short && !too_long {
            return None;
        }
        Some(match (min, max) {
            (Some(lo), Some(hi)) if lo > 0 => Self::new(
                "BASE_TYPE_BAD_LENGTH",
                format!("Must be between {lo} and {hi} in length."),
            ),
            (_, Some(hi)) if too_long => Self::new(
                "BASE_TYPE_MAX_LENGTH",
                format!("Must be {hi} or fewer in length."),
            ),
            (Some(lo), _) => Self::new(
                "BASE_TYPE_MIN_LENGTH",
                format!("Must be {lo} or more in length."),
            ),
            _ => Self::new("BASE_TYPE_BAD_LENGTH", "Bad length."),
        })
    }

    /// A value outside an enumeration, worded like the documentation's example:
    /// `Value must be one of (0, 1, 2).` (strings in single quotes).
    pub fn choices(allowed: &[Value]) -> Self {
        Self::new(
            "BASE_TYPE_CHOICES",
            format!("Value must be one of ({}).", list_values(allowed)),
        )
    }
}

/// Formats values as Discord lists them in error messages (a Python tuple): numbers bare,
/// strings single-quoted, a lone value followed by a comma.
pub fn list_values(values: &[Value]) -> String {
    let shown: Vec<String> = values
        .iter()
        .map(|v| match v {
            Value::String(s) => format!("'{s}'"),
            other => other.to_string(),
        })
        .collect();
    match shown.as_slice() {
        [one] => format!("{one},"),
        _ => shown.join(", "),
    }
}

/// Every field refusal of one request body, in the order found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormErrors {
    entries: Vec<(Vec<String>, FieldError)>,
}

impl FormErrors {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Records `error` at `path` (keys and array indices, outermost first; empty = the body).
    pub fn push(&mut self, path: &[String], error: FieldError) {
        self.entries.push((path.to_vec(), error));
    }

    /// Appends every refusal of `other`.
    pub fn extend(&mut self, other: FormErrors) {
        self.entries.extend(other.entries);
    }

    /// The refusals as `(dotted path, code)` pairs, handy in assertions and logs.
    pub fn flat(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .map(|(p, e)| (p.join("."), e.code.clone()))
            .collect()
    }

    /// The nested `errors` object of Discord's 50035 answer.
    pub fn to_tree(&self) -> Value {
        let mut root = Map::new();
        'entries: for (path, error) in &self.entries {
            let mut node = &mut root;
            for key in path {
                // Only a field literally named `_errors` could meet a list here.
                let Some(child) = node
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()))
                    .as_object_mut()
                else {
                    continue 'entries;
                };
                node = child;
            }
            let list = node
                .entry("_errors".to_string())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(items) = list {
                items.push(serde_json::json!({"code": error.code, "message": error.message}));
            }
        }
        Value::Object(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tree_nests_paths_and_collects_errors_per_field() {
        let mut errors = FormErrors::default();
        errors.push(
            &["activities".into(), "0".into(), "type".into()],
            FieldError::choices(&[json!(0), json!(1)]),
        );
        errors.push(&["access_token".into()], FieldError::required());
        errors.push(&[], FieldError::new("X", "whole body"));
        assert_eq!(
            errors.to_tree(),
            json!({
                "activities": {"0": {"type": {"_errors": [
                    {"code": "BASE_TYPE_CHOICES", "message": "Value must be one of (0, 1)."}]}}},
                "access_token": {"_errors": [{"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}]},
                "_errors": [{"code": "X", "message": "whole body"}]
            })
        );
    }

    #[test]
    fn length_wording_follows_the_bounds() {
        assert_eq!(FieldError::length(5, Some(1), Some(10)), None);
        assert_eq!(
            FieldError::length(2001, None, Some(2000)).map(|e| e.message),
            Some("Must be 2000 or fewer in length.".into())
        );
        assert_eq!(
            FieldError::length(101, Some(1), Some(100)).map(|e| e.code),
            Some("BASE_TYPE_BAD_LENGTH".into())
        );
        assert_eq!(
            FieldError::length(0, Some(1), None).map(|e| e.code),
            Some("BASE_TYPE_MIN_LENGTH".into())
        );
    }

    #[test]
    fn choices_quote_strings_like_the_docs() {
        assert_eq!(
            FieldError::choices(&[json!("desktop"), json!("ios")]).message,
            "Value must be one of ('desktop', 'ios')."
        );
        assert_eq!(
            FieldError::choices(&[json!(1)]).message,
            "Value must be one of (1,)."
        );
    }
}
