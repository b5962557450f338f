//! How ComfyUI judges one input value: Python's `int()`/`float()`/`str()`/`bool()` of a constant
//! by its declared type, and whether a linked output type fits an input type.

use serde_json::{Value, json};

use super::node_classes::InputRule;
use super::pyfmt;

/// ComfyUI's `validate_node_input` (not strict): equal types, a wildcard, or overlapping
/// comma-separated unions.
pub fn types_compatible(received: &str, rule: &InputRule) -> bool {
    let input = match &rule.kind {
        Value::String(s) => s.as_str(),
        Value::Array(_) => return received == "COMBO" || received == "*",
        _ => return true,
    };
    if received == input || received == "*" || input == "*" {
        return true;
    }
    let r: Vec<&str> = received.split(',').map(str::trim).collect();
    let i: Vec<&str> = input.split(',').map(str::trim).collect();
    if r.len() > 1 || i.len() > 1 {
        return r.iter().any(|t| i.contains(t));
    }
    false
}

/// The constant as ComfyUI converts it for its declared type, or Python's exception message.
pub fn convert(rule: &InputRule, val: &Value) -> Result<Value, String> {
    match rule.type_name() {
        Some("INT") => to_int(val),
        Some("FLOAT") => to_float(val),
        Some("STRING") => Ok(Value::String(pyfmt::str_of(val))),
        Some("BOOLEAN") => Ok(Value::Bool(truthy(val))),
        _ => Ok(val.clone()),
    }
}

fn to_int(val: &Value) -> Result<Value, String> {
    match val {
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(val.clone()),
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.is_nan() {
                Err("cannot convert float NaN to integer".into())
            } else if f.is_infinite() {
                Err("cannot convert float infinity to integer".into())
            } else {
                Ok(json!(f.trunc() as i64))
            }
        }
        Value::Bool(b) => Ok(json!(i64::from(*b))),
        Value::String(s) => {
            let t = s.trim().replace('_', "");
            if let Ok(i) = t.parse::<i64>() {
                Ok(json!(i))
            } else if let Ok(u) = t.parse::<u64>() {
                Ok(json!(u))
            } else {
                Err(format!(
                    "invalid literal for int() with base 10: {}",
                    pyfmt::repr_str(s)
                ))
            }
        }
        other => Err(format!(
            "int() argument must be a string, a bytes-like object or a real number, not '{}'",
            pyfmt::type_name(other)
        )),
    }
}

fn to_float(val: &Value) -> Result<Value, String> {
    match val {
        Value::Number(n) => Ok(json!(n.as_f64().unwrap_or(0.0))),
        Value::Bool(b) => Ok(json!(if *b { 1.0 } else { 0.0 })),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            // JSON cannot carry the results, so the real server fails on them later.
            "inf" | "infinity" | "+inf" | "-inf" | "nan" => Err(format!(
                "could not convert string to float: {}",
                pyfmt::repr_str(s)
            )),
            t => t
                .parse::<f64>()
                .map(|f| json!(f))
                .map_err(|_| format!("could not convert string to float: {}", pyfmt::repr_str(s))),
        },
        other => Err(format!(
            "float() argument must be a string or a real number, not '{}'",
            pyfmt::type_name(other)
        )),
    }
}

/// Python's truthiness of a JSON value.
pub fn truthy(val: &Value) -> bool {
    match val {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt_rules::node_classes::InputSection;
    use serde_json::Map;

    fn rule(kind: Value) -> InputRule {
        InputRule {
            name: "x".into(),
            section: InputSection::Required,
            kind,
            options: Map::new(),
        }
    }

    #[test]
    fn values_convert_as_python_does() {
        let int = rule(json!("INT"));
        assert_eq!(convert(&int, &json!("1_000")), Ok(json!(1000)));
        assert_eq!(convert(&int, &json!(2.9)), Ok(json!(2)));
        assert_eq!(convert(&int, &json!(true)), Ok(json!(1)));
        assert_eq!(
            convert(&int, &json!("abc")),
            Err("invalid literal for int() with base 10: 'abc'".into())
        );
        assert_eq!(
            convert(&int, &json!([1])),
            Err(
                "int() argument must be a string, a bytes-like object or a real number, not 'list'"
                    .into()
            )
        );
        let float = rule(json!("FLOAT"));
        assert_eq!(convert(&float, &json!("0.5")), Ok(json!(0.5)));
        assert!(convert(&float, &json!("nan")).is_err());
        assert_eq!(convert(&rule(json!("STRING")), &json!(3)), Ok(json!("3")));
        assert_eq!(
            convert(&rule(json!("BOOLEAN")), &json!("")),
            Ok(json!(false))
        );
    }

    #[test]
    fn link_types_match_exactly_by_wildcard_or_by_union() {
        assert!(types_compatible("IMAGE", &rule(json!("IMAGE"))));
        assert!(!types_compatible("MASK", &rule(json!("IMAGE"))));
        assert!(types_compatible("*", &rule(json!("IMAGE"))));
        assert!(types_compatible("IMAGE", &rule(json!("*"))));
        assert!(types_compatible("IMAGE,MASK", &rule(json!("MASK"))));
        assert!(types_compatible("COMBO", &rule(json!(["a"]))));
        assert!(!types_compatible("INT", &rule(json!(["a"]))));
    }
}
