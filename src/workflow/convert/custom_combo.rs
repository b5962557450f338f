//! The frontend's CustomCombo node: a combo whose choices are the node's own growing list of
//! `option<N>` text widgets, plus a hidden `index` widget that sends the position of the chosen
//! option. The frontend's extension recognises the node by its class name; so does this module.

use serde_json::Value;

use super::widgets::WidgetValue;
use crate::workflow::object_info::truthy;

/// The class the frontend's extension applies to.
pub(crate) const CLASS: &str = "CustomCombo";

/// The prompt values of a CustomCombo saved as `[choice, index, option1, option2, …]`.
///
/// On load the frontend starts with one empty option; giving the last option a non-empty value
/// adds a new empty one after it, and loading stops when the options run out (so values after
/// the first empty option are dropped, and a list that ends on a non-empty option gains an empty
/// one). The stored index is ignored: the widget computes it from the choice.
pub(crate) fn widget_values(values: &Value) -> Vec<WidgetValue> {
    let stored: Vec<Value> = match values {
        Value::Array(list) => list.clone(),
        Value::Object(map) => {
            let mut list = vec![
                map.get("choice").cloned().unwrap_or(Value::Null),
                Value::Null,
            ];
            list.extend((1..).map_while(|n| map.get(&format!("option{n}")).cloned()));
            list
        }
        _ => Vec::new(),
    };
    let choice = stored.first().filter(|v| !v.is_null()).cloned();
    let mut options = vec![Value::String(String::new())];
    for (k, value) in stored.iter().skip(2).enumerate() {
        if k >= options.len() {
            break;
        }
        options[k] = value.clone();
        if k + 1 == options.len() && truthy(value) {
            options.push(Value::String(String::new()));
        }
    }
    let index = choice
        .as_ref()
        .and_then(|c| options.iter().position(|o| o == c))
        .map_or(Value::from(-1), Value::from);
    let mut out = Vec::with_capacity(options.len() + 2);
    if let Some(choice) = choice {
        out.push(plain("choice".into(), choice));
    }
    out.push(plain("index".into(), index));
    for (n, option) in options.into_iter().enumerate() {
        out.push(plain(format!("option{}", n + 1), option));
    }
    out
}

fn plain(name: String, value: Value) -> WidgetValue {
    WidgetValue {
        name,
        value,
        dynamic_prompts: false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pairs(values: Value) -> Vec<(String, Value)> {
        widget_values(&values)
            .into_iter()
            .map(|w| (w.name, w.value))
            .collect()
    }

    #[test]
    fn options_grow_until_the_first_empty_one_and_the_index_is_computed() {
        assert_eq!(
            pairs(json!(["b", 7, "a", "b", ""])),
            [
                ("choice".into(), json!("b")),
                ("index".into(), json!(1)),
                ("option1".into(), json!("a")),
                ("option2".into(), json!("b")),
                ("option3".into(), json!("")),
            ]
        );
        assert_eq!(
            pairs(json!(["z", 0, "a", "", "ignored"])),
            [
                ("choice".into(), json!("z")),
                ("index".into(), json!(-1)),
                ("option1".into(), json!("a")),
                ("option2".into(), json!("")),
            ]
        );
        assert_eq!(
            pairs(json!(["a", 0, "a"])),
            [
                ("choice".into(), json!("a")),
                ("index".into(), json!(0)),
                ("option1".into(), json!("a")),
                ("option2".into(), json!("")),
            ],
            "a list ending on a value gains an empty option"
        );
        assert_eq!(
            pairs(json!(null)),
            [("index".into(), json!(-1)), ("option1".into(), json!(""))]
        );
    }
}
