//! Rules Discord applies to message bodies that `openapi.json` cannot express: at most 5 action
//! rows at the top of a message without `IS_COMPONENTS_V2`, unique `custom_id`s, buttons with a
//! `custom_id` or a `url` according to their style, no empty message, files within the upload
//! limit, and `attachments[].id` placeholders that name an uploaded `files[n]`.

use serde_json::Value;

use crate::discord_error::DiscordError;
use crate::form_errors::{FieldError, FormErrors};
use crate::request_body::UploadedFile;

/// Message flag IS_COMPONENTS_V2 (1 << 15).
pub const IS_COMPONENTS_V2: u64 = 1 << 15;

/// Checks components, as Discord does on every message create, edit and callback.
pub fn check_components(body: &Value) -> FormErrors {
    let mut errors = FormErrors::default();
    let Some(rows) = body.get("components").and_then(Value::as_array) else {
        return errors;
    };
    let flags = body.get("flags").and_then(Value::as_u64).unwrap_or(0);
    if flags & IS_COMPONENTS_V2 == 0 {
        if rows.len() > 5 {
            errors.push(
                &["components".into()],
                FieldError::new("BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length."),
            );
        }
        for (i, row) in rows.iter().enumerate() {
            if row.get("type").and_then(Value::as_u64) != Some(1) {
                errors.push(
                    &["components".into(), i.to_string(), "type".into()],
                    FieldError::new(
                        "UNION_TYPE_CHOICES",
                        "Value of field \"type\" must be one of (1,).",
                    ),
                );
            }
        }
    }
    let mut seen: Vec<String> = Vec::new();
    let mut path = vec!["components".to_string()];
    walk(rows, &mut path, &mut seen, &mut errors);
    errors
}

fn walk(items: &[Value], path: &mut Vec<String>, seen: &mut Vec<String>, errors: &mut FormErrors) {
    for (i, item) in items.iter().enumerate() {
        path.push(i.to_string());
        walk_item(item, path, seen, errors);
        path.pop();
    }
}

fn walk_item(
    item: &Value,
    path: &mut Vec<String>,
    seen: &mut Vec<String>,
    errors: &mut FormErrors,
) {
    if let Some(custom_id) = item.get("custom_id").and_then(Value::as_str) {
        if seen.iter().any(|s| s == custom_id) {
            path.push("custom_id".into());
            errors.push(
                path,
                FieldError::new(
                    "COMPONENT_CUSTOM_ID_DUPLICATED",
                    "Component custom id cannot be duplicated",
                ),
            );
            path.pop();
        } else {
            seen.push(custom_id.to_string());
        }
    }
    if item.get("type").and_then(Value::as_u64) == Some(2) {
        check_button(item, path, errors);
    }
    if let Some(children) = item.get("components").and_then(Value::as_array) {
        path.push("components".into());
        walk(children, path, seen, errors);
        path.pop();
    }
    if let Some(accessory) = item.get("accessory").filter(|a| a.is_object()) {
        path.push("accessory".into());
        walk_item(accessory, path, seen, errors);
        path.pop();
    }
}

/// Link buttons (style 5) carry a `url` and no `custom_id`; premium buttons (6) a `sku_id`;
/// the other styles a `custom_id` and no `url`.
fn check_button(button: &Value, path: &mut Vec<String>, errors: &mut FormErrors) {
    let style = button.get("style").and_then(Value::as_u64).unwrap_or(0);
    let has = |k: &str| button.get(k).is_some_and(|v| !v.is_null());
    let mut refuse = |field: &str, code: &str, message: &str| {
        path.push(field.into());
        errors.push(path, FieldError::new(code, message));
        path.pop();
    };
    match style {
        5 => {
            if !has("url") {
                refuse(
                    "url",
                    "BUTTON_COMPONENT_URL_REQUIRED",
                    "A link button needs a url.",
                );
            }
            if has("custom_id") {
                refuse(
                    "custom_id",
                    "BUTTON_COMPONENT_CUSTOM_ID_NOT_ALLOWED",
                    "A link button cannot have a custom id.",
                );
            }
        }
        6 => {
            if !has("sku_id") {
                refuse(
                    "sku_id",
                    "BUTTON_COMPONENT_SKU_ID_REQUIRED",
                    "A premium button needs a sku id.",
                );
            }
        }
        _ => {
            if !has("custom_id") {
                refuse(
                    "custom_id",
                    "BUTTON_COMPONENT_CUSTOM_ID_REQUIRED",
                    "A non-link button must have a custom id.",
                );
            }
            if has("url") {
                refuse(
                    "url",
                    "BUTTON_COMPONENT_URL_NOT_ALLOWED",
                    "A non-link button cannot have a url.",
                );
            }
        }
    }
}

/// Discord refuses a new message with nothing to show (code 50006).
pub fn check_not_empty(body: &Value, files: &[UploadedFile]) -> Result<(), DiscordError> {
    let non_empty = |key: &str| match body.get(key) {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Null) | None => false,
        Some(_) => true,
    };
    if files.is_empty()
        && ![
            "content",
            "embeds",
            "components",
            "sticker_ids",
            "poll",
            "attachments",
        ]
        .iter()
        .any(|k| non_empty(k))
    {
        return Err(DiscordError::empty_message());
    }
    Ok(())
}

/// Every file must fit the upload limit (413, code 40005).
pub fn check_upload_sizes(files: &[UploadedFile], limit: u64) -> Result<(), DiscordError> {
    if files.iter().any(|f| f.data.len() as u64 > limit) {
        return Err(DiscordError::entity_too_large());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn button(custom_id: &str) -> Value {
        json!({"type": 2, "style": 1, "label": "x", "custom_id": custom_id})
    }

    #[test]
    fn six_action_rows_are_refused_without_components_v2() {
        let rows: Vec<Value> = (0..6)
            .map(|i| json!({"type": 1, "components": [button(&format!("b{i}"))]}))
            .collect();
        let errors = check_components(&json!({"components": rows}));
        assert_eq!(
            errors.flat(),
            vec![("components".to_string(), "BASE_TYPE_MAX_LENGTH".to_string())]
        );
        assert!(
            check_components(&json!({"components": rows, "flags": IS_COMPONENTS_V2})).is_empty()
        );
    }

    #[test]
    fn duplicate_custom_ids_and_bad_buttons_are_named() {
        let body = json!({"components": [
            {"type": 1, "components": [button("same"), button("same")]},
            {"type": 1, "components": [{"type": 2, "style": 5, "label": "docs"}, {"type": 2, "style": 1}]}
        ]});
        assert_eq!(
            check_components(&body).flat(),
            vec![
                (
                    "components.0.components.1.custom_id".to_string(),
                    "COMPONENT_CUSTOM_ID_DUPLICATED".to_string()
                ),
                (
                    "components.1.components.0.url".to_string(),
                    "BUTTON_COMPONENT_URL_REQUIRED".to_string()
                ),
                (
                    "components.1.components.1.custom_id".to_string(),
                    "BUTTON_COMPONENT_CUSTOM_ID_REQUIRED".to_string()
                ),
            ]
        );
    }

    #[test]
    fn empty_messages_and_big_files_are_refused() {
        assert_eq!(
            check_not_empty(&json!({"content": ""}), &[]).map_err(|e| e.code),
            Err(50006)
        );
        assert!(check_not_empty(&json!({"embeds": [{"title": "t"}]}), &[]).is_ok());
        let file = UploadedFile {
            field: "files[0]".into(),
            index: Some(0),
            filename: "a.bin".into(),
            content_type: None,
            data: bytes::Bytes::from(vec![0u8; 11]),
        };
        assert_eq!(
            check_upload_sizes(std::slice::from_ref(&file), 10)
                .map_err(|e| (e.status.as_u16(), e.code)),
            Err((413, 40005))
        );
        assert!(check_upload_sizes(&[file], 11).is_ok());
    }
}
