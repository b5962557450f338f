//! Reading JSON that refuses an object naming a key twice. `serde_json` keeps the last value of
//! a repeated key without a word, so an API prompt with two nodes `"5"` would silently lose one;
//! every workflow that reaches comfy-fleet is read through here instead.

use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses `bytes` as JSON, refusing repeated keys ("duplicate key `5` … at line 3 column 8").
pub fn from_slice(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// For `#[serde(deserialize_with)]` on an optional JSON field: `null` or absent is `None`.
pub fn optional<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    match StrictValue.deserialize(deserializer)? {
        Value::Null => Ok(None),
        value => Ok(Some(value)),
    }
}

/// A JSON value whose objects name each key once.
struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            out.push(item);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate key `{key}` (an object names it twice; with node ids, one node would be lost)"
                )));
            }
            let value = map.next_value_seed(StrictValue)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_is_refused_with_its_name_and_place() {
        let text = br#"{"5": {"class_type": "A", "inputs": {}},
  "5": {"class_type": "B", "inputs": {}}}"#;
        let err = from_slice(text).unwrap_err().to_string();
        assert!(err.starts_with("duplicate key `5`"), "{err}");
        assert!(err.contains("line 2"), "{err}");
        // Nested objects too.
        assert!(from_slice(br#"{"a": {"x": 1, "x": 2}}"#).is_err());
    }

    #[test]
    fn everything_else_reads_as_serde_json_reads_it() {
        let text = br#"{"a": [1, -2, 3.5, "s", null, true, {"b": {}}], "c": 18446744073709551615}"#;
        assert_eq!(
            from_slice(text).unwrap(),
            serde_json::from_slice::<Value>(text).unwrap()
        );
        assert!(from_slice(b"{} x").is_err(), "trailing characters");
    }

    #[test]
    fn an_optional_field_reads_null_as_absent() {
        #[derive(serde::Deserialize)]
        struct Body {
            #[serde(default, deserialize_with = "optional")]
            w: Option<Value>,
        }
        let body: Body = serde_json::from_str(r#"{"w": null}"#).unwrap();
        assert!(body.w.is_none());
        let err = serde_json::from_str::<Body>(r#"{"w": {"1": 1, "1": 2}}"#)
            .err()
            .unwrap();
        assert!(err.to_string().contains("duplicate key `1`"), "{err}");
    }
}
