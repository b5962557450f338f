//! Where Discord accepts more than its own `openapi.json` describes. Each change is applied to the
//! loaded document before any body is validated, and each is listed in the crate's README.
//!
//! 1. Snowflakes: the schema says a snowflake is a string of digits, but Discord also takes a
//!    non-negative JSON integer (its reference documentation's upload example sends
//!    `"attachments": [{"id": 0, …}]`, and serenity sends attachment placeholders that way).
//! 2. `default_member_permissions` of application commands: the schema says integer, the
//!    application-commands documentation says a string bit set ("?string"), and Discord takes
//!    both (serenity sends a string).
//! 3. Field errors of a 50035 answer: the description's `InnerErrors._errors[].code` is an
//!    integer, but Discord sends strings such as `"BASE_TYPE_REQUIRED"` (reference: "Error
//!    Messages"). This one matters only for checking the fake's own answers.

use serde_json::{Value, json};

/// Applies every relaxation to the OpenAPI document.
pub fn apply(document: &mut Value) {
    snowflakes_accept_integers(document);
    permissions_accept_strings(document);
    field_error_codes_are_strings(document);
}

fn field_error_codes_are_strings(document: &mut Value) {
    if let Some(items) =
        document.pointer_mut("/components/schemas/InnerErrors/properties/_errors/items")
    {
        *items = json!({
            "type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "required": ["code", "message"]
        });
    }
}

fn snowflakes_accept_integers(document: &mut Value) {
    if let Some(snowflake) = document.pointer_mut("/components/schemas/SnowflakeType")
        && let Some(fields) = snowflake.as_object_mut()
    {
        // `pattern` constrains strings only and `minimum` numbers only.
        fields.insert("type".into(), json!(["string", "integer"]));
        fields.insert("minimum".into(), json!(0));
    }
}

fn permissions_accept_strings(document: &mut Value) {
    let Some(schemas) = document
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (name, schema) in schemas.iter_mut() {
        if !(name.starts_with("ApplicationCommand") && name.ends_with("Request")
            || name.ends_with("RequestPartial"))
        {
            continue;
        }
        if let Some(property) = schema.pointer_mut("/properties/default_member_permissions")
            && let Some(fields) = property.as_object_mut()
            && fields.get("type") == Some(&json!(["integer", "null"]))
        {
            fields.insert("type".into(), json!(["integer", "string", "null"]));
            fields.insert("pattern".into(), json!("^[0-9]+$"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relaxations_rewrite_their_schemas() {
        let mut doc = json!({"components": {"schemas": {
            "SnowflakeType": {"type": "string", "pattern": "^(0|[1-9][0-9]*)$"},
            "ApplicationCommandCreateRequest": {"properties": {
                "default_member_permissions": {"type": ["integer", "null"], "minimum": 0}}},
            "InnerErrors": {"properties": {"_errors": {"items": {"$ref": "#/components/schemas/Error"}}}}
        }}});
        apply(&mut doc);
        assert_eq!(
            doc.pointer("/components/schemas/SnowflakeType/type"),
            Some(&json!(["string", "integer"]))
        );
        assert_eq!(
            doc.pointer(
                "/components/schemas/ApplicationCommandCreateRequest/properties/default_member_permissions/type"
            ),
            Some(&json!(["integer", "string", "null"]))
        );
        assert_eq!(
            doc.pointer(
                "/components/schemas/InnerErrors/properties/_errors/items/properties/code/type"
            ),
            Some(&json!("string"))
        );
    }
}
