//! A JSON Schema (2020-12, as OpenAPI 3.1 uses it) validator for the keywords Discord's
//! `openapi.json` uses: `$ref` into the document, `type` (also lists, `null`), `enum`, `const`,
//! `properties`, `required`, `additionalProperties`, `min/maxProperties`, `items`,
//! `min/maxItems`, `uniqueItems`, `min/maxLength`, `pattern`, `minimum`/`maximum`, `format`
//! (`int32`, `int64`, `snowflake`, `uri`) and `allOf`/`anyOf`/`oneOf`.
//!
//! Refusals are reported the way Discord reports them (see `form_errors`): per field path, with
//! Discord's error codes. Unions are judged as Discord's discriminated unions are: a value passes
//! when any member accepts it, and when none does the member picked by the `type` discriminator
//! (or else the closest one) explains why.

use std::collections::HashMap;

use serde_json::Value;

use crate::form_errors::{FieldError, FormErrors, list_values};

/// Deeper nesting than this is refused rather than followed (no Discord body comes close).
const MAX_DEPTH: usize = 96;

/// Validates instances against schemas found in one OpenAPI document.
pub struct Validator<'a> {
    document: &'a Value,
    patterns: std::sync::Mutex<HashMap<String, Option<regex_lite::Regex>>>,
}

impl<'a> Validator<'a> {
    pub fn new(document: &'a Value) -> Self {
        Self {
            document,
            patterns: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Every refusal of `instance` under `schema` (empty when it is valid).
    pub fn validate(&self, schema: &Value, instance: &Value) -> FormErrors {
        let mut out = FormErrors::default();
        let mut path = Vec::new();
        self.check(schema, instance, &mut path, &mut out, 0);
        out
    }

    /// Follows a local `$ref` (`#/components/schemas/Name`).
    pub fn resolve(&self, reference: &str) -> Option<&'a Value> {
        let pointer = reference.strip_prefix('#')?;
        self.document.pointer(pointer)
    }

    fn check(
        &self,
        schema: &Value,
        instance: &Value,
        path: &mut Vec<String>,
        out: &mut FormErrors,
        depth: usize,
    ) {
        if depth > MAX_DEPTH {
            out.push(
                path,
                FieldError::new("BASE_TYPE_MAX_DEPTH", "Too deeply nested."),
            );
            return;
        }
        let Some(schema) = schema.as_object() else {
            // `true`/`false` schemas.
            if schema == &Value::Bool(false) {
                out.push(
                    path,
                    FieldError::new("UNKNOWN_FIELD", "This field is not allowed."),
                );
            }
            return;
        };
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            match self.resolve(reference) {
                Some(target) => self.check(target, instance, path, out, depth + 1),
                None => out.push(
                    path,
                    FieldError::new("SCHEMA_REF_UNKNOWN", format!("unknown $ref {reference}")),
                ),
            }
        }
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for member in all {
                self.check(member, instance, path, out, depth + 1);
            }
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(members) = schema.get(key).and_then(Value::as_array) {
                self.check_union(members, instance, path, out, depth + 1);
            }
        }
        if let Some(types) = schema.get("type")
            && !type_allows(types, instance)
        {
            out.push(path, type_error(schema, types, instance));
            return;
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.iter().any(|a| same_value(a, instance))
        {
            out.push(path, FieldError::choices(allowed));
        }
        if let Some(constant) = schema.get("const")
            && !same_value(constant, instance)
        {
            out.push(path, FieldError::choices(std::slice::from_ref(constant)));
        }
        match instance {
            Value::String(s) => self.check_string(schema, s, path, out),
            Value::Number(_) => check_number(schema, instance, path, out),
            Value::Array(items) => self.check_array(schema, items, path, out, depth),
            Value::Object(_) => self.check_object(schema, instance, path, out, depth),
            _ => {}
        }
    }

    fn check_string(
        &self,
        schema: &serde_json::Map<String, Value>,
        s: &str,
        path: &[String],
        out: &mut FormErrors,
    ) {
        let len = s.chars().count();
        if let Some(error) = FieldError::length(
            len,
            schema.get("minLength").and_then(Value::as_u64),
            schema.get("maxLength").and_then(Value::as_u64),
        ) {
            out.push(path, error);
        }
        let format = schema.get("format").and_then(Value::as_str);
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
            && !self.matches(pattern, s)
        {
            if format == Some("snowflake") {
                out.push(
                    path,
                    FieldError::new(
                        "NUMBER_TYPE_COERCE",
                        format!("Value \"{s}\" is not snowflake."),
                    ),
                );
            } else {
                out.push(
                    path,
                    FieldError::new(
                        "STRING_TYPE_REGEX",
                        "String value did not match validation regex.",
                    ),
                );
            }
        }
        if format == Some("uri") && !looks_like_uri(s) {
            out.push(
                path,
                FieldError::new("URL_TYPE_INVALID_URL", "Not a well formed URL."),
            );
        }
    }

    fn matches(&self, pattern: &str, s: &str) -> bool {
        let mut cache = match self.patterns.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let regex = cache
            .entry(pattern.to_string())
            .or_insert_with(|| regex_lite::Regex::new(pattern).ok());
        // A pattern the engine cannot compile accepts everything rather than refusing bodies.
        regex.as_ref().is_none_or(|r| r.is_match(s))
    }

    fn check_array(
        &self,
        schema: &serde_json::Map<String, Value>,
        items: &[Value],
        path: &mut Vec<String>,
        out: &mut FormErrors,
        depth: usize,
    ) {
        if let Some(error) = FieldError::length(
            items.len(),
            schema.get("minItems").and_then(Value::as_u64),
            schema.get("maxItems").and_then(Value::as_u64),
        ) {
            out.push(path, error);
        }
        if schema.get("uniqueItems") == Some(&Value::Bool(true)) {
            let duplicated = items
                .iter()
                .enumerate()
                .any(|(i, a)| items[..i].iter().any(|b| same_value(a, b)));
            if duplicated {
                out.push(
                    path,
                    FieldError::new("BASE_TYPE_DUPLICATES", "Duplicate values are not allowed."),
                );
            }
        }
        if let Some(item_schema) = schema.get("items") {
            for (index, item) in items.iter().enumerate() {
                path.push(index.to_string());
                self.check(item_schema, item, path, out, depth + 1);
                path.pop();
            }
        }
    }

    fn check_object(
        &self,
        schema: &serde_json::Map<String, Value>,
        instance: &Value,
        path: &mut Vec<String>,
        out: &mut FormErrors,
        depth: usize,
    ) {
        let Some(fields) = instance.as_object() else {
            return;
        };
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !fields.contains_key(name) {
                    path.push(name.to_string());
                    out.push(path, FieldError::required());
                    path.pop();
                }
            }
        }
        if let Some(error) = FieldError::length(
            fields.len(),
            schema.get("minProperties").and_then(Value::as_u64),
            schema.get("maxProperties").and_then(Value::as_u64),
        ) {
            out.push(path, error);
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        for (name, value) in fields {
            path.push(name.clone());
            match properties.and_then(|p| p.get(name)) {
                Some(property) => self.check(property, value, path, out, depth + 1),
                None => {
                    if let Some(additional) = additional {
                        self.check(additional, value, path, out, depth + 1);
                    }
                }
            }
            path.pop();
        }
    }

    fn check_union(
        &self,
        members: &[Value],
        instance: &Value,
        path: &mut Vec<String>,
        out: &mut FormErrors,
        depth: usize,
    ) {
        let mut results = Vec::with_capacity(members.len());
        for member in members {
            let mut errors = FormErrors::default();
            self.check(member, instance, path, &mut errors, depth + 1);
            if errors.is_empty() {
                return;
            }
            results.push(errors);
        }
        // An enumeration written as `oneOf: [{const: a}, {const: b}, …]`.
        let constants: Vec<Value> = members
            .iter()
            .filter_map(|m| m.get("const").cloned())
            .collect();
        if constants.len() == members.len() {
            out.push(path, FieldError::choices(&constants));
            return;
        }
        // A non-null value refused by `oneOf: [{type: null}, X]` is explained by X.
        let candidates: Vec<usize> = (0..members.len())
            .filter(|&i| instance.is_null() || !is_null_schema(&members[i]))
            .collect();
        if let Some(discriminant) = instance.get("type") {
            let tags: Vec<Option<Vec<Value>>> = candidates
                .iter()
                .map(|&i| self.discriminator_values(&members[i], 0))
                .collect();
            if !tags.is_empty() && tags.iter().all(Option::is_some) {
                let matching = candidates
                    .iter()
                    .zip(&tags)
                    .find(|(_, t)| {
                        t.as_ref()
                            .is_some_and(|t| t.iter().any(|v| same_value(v, discriminant)))
                    })
                    .map(|(&i, _)| i);
                match matching {
                    Some(i) => out.extend(results.swap_remove(i)),
                    None => {
                        let mut all: Vec<Value> = tags.into_iter().flatten().flatten().collect();
                        all.sort_by_key(|v| v.as_i64().unwrap_or(i64::MAX));
                        all.dedup();
                        path.push("type".to_string());
                        out.push(
                            path,
                            FieldError::new(
                                "UNION_TYPE_CHOICES",
                                format!(
                                    "Value of field \"type\" must be one of ({}).",
                                    list_values(&all)
                                ),
                            ),
                        );
                        path.pop();
                    }
                }
                return;
            }
        }
        let best = candidates
            .into_iter()
            .min_by_key(|&i| results[i].len())
            .unwrap_or(0);
        if best < results.len() {
            out.extend(results.swap_remove(best));
        }
    }

    /// The values a union member accepts in its `type` property, when it constrains them.
    fn discriminator_values(&self, schema: &Value, depth: usize) -> Option<Vec<Value>> {
        if depth > 8 {
            return None;
        }
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            return self.discriminator_values(self.resolve(reference)?, depth + 1);
        }
        let tag = schema.get("properties")?.get("type")?;
        if let Some(values) = tag.get("enum").and_then(Value::as_array) {
            return Some(values.clone());
        }
        tag.get("const").map(|c| vec![c.clone()])
    }
}

fn is_null_schema(schema: &Value) -> bool {
    schema.get("type") == Some(&Value::String("null".into()))
}

fn type_allows(types: &Value, instance: &Value) -> bool {
    match types {
        Value::String(t) => type_matches(t, instance),
        Value::Array(list) => list
            .iter()
            .filter_map(Value::as_str)
            .any(|t| type_matches(t, instance)),
        _ => true,
    }
}

fn type_matches(name: &str, instance: &Value) -> bool {
    match name {
        "null" => instance.is_null(),
        "boolean" => instance.is_boolean(),
        "string" => instance.is_string(),
        "array" => instance.is_array(),
        "object" => instance.is_object(),
        "number" => instance.is_number(),
        "integer" => is_integer(instance),
        _ => true,
    }
}

fn is_integer(instance: &Value) -> bool {
    match instance {
        Value::Number(n) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

/// The refusal Discord gives for a value of the wrong JSON type.
fn type_error(
    schema: &serde_json::Map<String, Value>,
    types: &Value,
    instance: &Value,
) -> FieldError {
    if instance.is_null() {
        return FieldError::required();
    }
    let wanted: Vec<&str> = match types {
        Value::String(t) => vec![t.as_str()],
        Value::Array(list) => list
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect(),
        _ => Vec::new(),
    };
    let shown = match instance {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match wanted.first().copied().unwrap_or("") {
        "integer" => {
            let what = if schema.get("format").and_then(Value::as_str) == Some("snowflake") {
                "snowflake"
            } else {
                "int"
            };
            FieldError::new(
                "NUMBER_TYPE_COERCE",
                format!("Value \"{shown}\" is not {what}."),
            )
        }
        "number" => FieldError::new(
            "NUMBER_TYPE_COERCE",
            format!("Value \"{shown}\" is not float."),
        ),
        "string" => FieldError::new(
            "STRING_TYPE_CONVERT",
            format!("Could not interpret \"{shown}\" as string."),
        ),
        "boolean" => FieldError::new(
            "BOOLEAN_TYPE_CONVERT",
            format!("Could not interpret \"{shown}\" as boolean."),
        ),
        "array" => FieldError::new(
            "LIST_TYPE_CONVERT",
            "Only iterables may be used in a ListType",
        ),
        "object" if schema.contains_key("properties") => FieldError::new(
            "MODEL_TYPE_CONVERT",
            "Only dictionaries may be used in a ModelType",
        ),
        "object" => FieldError::new(
            "DICT_TYPE_CONVERT",
            "Only dictionaries may be used in a DictType",
        ),
        _ => FieldError::new("BASE_TYPE_INVALID", "Invalid value."),
    }
}

fn check_number(
    schema: &serde_json::Map<String, Value>,
    instance: &Value,
    path: &[String],
    out: &mut FormErrors,
) {
    let Some(value) = instance.as_f64() else {
        return;
    };
    let (format_min, format_max) = match schema.get("format").and_then(Value::as_str) {
        Some("int32") => (Some(f64::from(i32::MIN)), Some(f64::from(i32::MAX))),
        _ => (None, None),
    };
    let minimum = schema.get("minimum").and_then(Value::as_f64).or(format_min);
    let maximum = schema.get("maximum").and_then(Value::as_f64).or(format_max);
    let kind = if is_integer(instance) { "int" } else { "float" };
    if let Some(min) = minimum
        && value < min
    {
        out.push(
            path,
            FieldError::new(
                "NUMBER_TYPE_MIN",
                format!(
                    "{kind} value should be greater than or equal to {}.",
                    show_bound(min)
                ),
            ),
        );
    }
    if let Some(max) = maximum
        && value > max
    {
        out.push(
            path,
            FieldError::new(
                "NUMBER_TYPE_MAX",
                format!(
                    "{kind} value should be less than or equal to {}.",
                    show_bound(max)
                ),
            ),
        );
    }
}

fn show_bound(bound: f64) -> String {
    if bound.fract() == 0.0 && bound.abs() < 1e18 {
        format!("{}", bound as i64)
    } else {
        format!("{bound}")
    }
}

/// Equality as JSON Schema defines it: numbers compare by value (`1` equals `1.0`).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        _ => a == b,
    }
}

/// `scheme:rest` with an RFC 3986 scheme and no whitespace.
fn looks_like_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !s.chars().any(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({"components": {"schemas": {
            "Snowflake": {"type": "string", "pattern": "^(0|[1-9][0-9]*)$", "format": "snowflake"},
            "Button": {"type": "object", "properties": {
                "type": {"type": "integer", "enum": [2]},
                "custom_id": {"type": ["string", "null"], "minLength": 1, "maxLength": 100}
            }, "required": ["type"]},
            "Select": {"type": "object", "properties": {
                "type": {"type": "integer", "enum": [3]},
                "options": {"type": "array", "maxItems": 25}
            }, "required": ["type", "options"]},
            "Body": {"type": "object", "properties": {
                "content": {"type": ["string", "null"], "maxLength": 2000},
                "id": {"$ref": "#/components/schemas/Snowflake"},
                "parts": {"type": ["array", "null"], "maxItems": 2, "items": {"oneOf": [
                    {"$ref": "#/components/schemas/Button"},
                    {"$ref": "#/components/schemas/Select"}]}},
                "flags": {"type": "integer", "format": "int32", "minimum": 0},
                "reply": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Button"}]}
            }}
        }}})
    }

    fn check(instance: Value) -> Vec<(String, String)> {
        let d = doc();
        let v = Validator::new(&d);
        v.validate(&json!({"$ref": "#/components/schemas/Body"}), &instance)
            .flat()
    }

    #[test]
    fn valid_bodies_pass() {
        assert!(
            check(json!({"content": "hi", "id": "123", "parts": [{"type": 2, "custom_id": "a"}]}))
                .is_empty()
        );
        assert!(check(json!({"content": null, "reply": null, "parts": null})).is_empty());
        assert!(check(json!({"flags": 64.0})).is_empty());
    }

    #[test]
    fn each_keyword_refuses_with_its_path() {
        assert_eq!(
            check(json!({"content": "x".repeat(2001)})),
            vec![("content".into(), "BASE_TYPE_MAX_LENGTH".into())]
        );
        assert_eq!(
            check(json!({"id": "01"})),
            vec![("id".into(), "NUMBER_TYPE_COERCE".into())]
        );
        assert_eq!(
            check(json!({"flags": "sixty"})),
            vec![("flags".into(), "NUMBER_TYPE_COERCE".into())]
        );
        assert_eq!(
            check(json!({"flags": -1})),
            vec![("flags".into(), "NUMBER_TYPE_MIN".into())]
        );
        assert_eq!(
            check(json!({"parts": [{"type": 2}, {"type": 2}, {"type": 2}]})),
            vec![("parts".into(), "BASE_TYPE_MAX_LENGTH".into())]
        );
    }

    #[test]
    fn unions_report_the_member_the_discriminator_names() {
        assert_eq!(
            check(json!({"parts": [{"type": 2, "custom_id": "y".repeat(101)}]})),
            vec![("parts.0.custom_id".into(), "BASE_TYPE_BAD_LENGTH".into())]
        );
        assert_eq!(
            check(json!({"parts": [{"type": 3}]})),
            vec![("parts.0.options".into(), "BASE_TYPE_REQUIRED".into())]
        );
        assert_eq!(
            check(json!({"parts": [{"type": 9}]})),
            vec![("parts.0.type".into(), "UNION_TYPE_CHOICES".into())]
        );
        assert_eq!(
            check(json!({"reply": {"custom_id": ""}})),
            vec![
                ("reply.type".into(), "BASE_TYPE_REQUIRED".into()),
                ("reply.custom_id".into(), "BASE_TYPE_BAD_LENGTH".into())
            ]
        );
    }

    #[test]
    fn wrong_container_types_are_named() {
        assert_eq!(
            check(json!({"parts": {"type": 2}})),
            vec![("parts".into(), "LIST_TYPE_CONVERT".into())]
        );
        assert_eq!(
            check(json!([1])),
            vec![("".into(), "MODEL_TYPE_CONVERT".into())]
        );
    }

    #[test]
    fn uris_need_a_scheme() {
        assert!(looks_like_uri("https://example.com/a.png"));
        assert!(looks_like_uri("attachment://a.png"));
        assert!(!looks_like_uri("example.com"));
        assert!(!looks_like_uri("https://exa mple.com"));
    }
}
