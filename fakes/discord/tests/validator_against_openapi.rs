//! The validator against Discord's real `openapi.json` (the vendored copy): bodies Discord takes
//! pass, and the mistakes a bot makes fail with Discord's error code at the right field path.

use fake_discord::spec::{ApiSpec, BodyKind};
use serde_json::{Value, json};

const EDIT_ORIGINAL: &str = "/webhooks/{webhook_id}/{webhook_token}/messages/@original";
const CALLBACK: &str = "/interactions/{interaction_id}/{interaction_token}/callback";
const CREATE_MESSAGE: &str = "/channels/{channel_id}/messages";
const COMMANDS: &str = "/applications/{application_id}/commands";

fn refusals(method: &str, route: &str, body: Value) -> Vec<(String, String)> {
    let spec = ApiSpec::get();
    let schema = spec
        .request_schema(method, route, BodyKind::Json)
        .unwrap_or_else(|| panic!("{method} {route} has a request schema"));
    spec.validator().validate(schema, &body).flat()
}

fn row(buttons: Vec<Value>) -> Value {
    json!({"type": 1, "components": buttons})
}

fn button(custom_id: &str) -> Value {
    json!({"type": 2, "style": 1, "label": "Go", "custom_id": custom_id})
}

#[test]
fn a_valid_message_with_components_embeds_and_attachments_passes() {
    let body = json!({
        "content": "done",
        "embeds": [{"title": "Result", "description": "a lighthouse", "color": 3447003,
                    "image": {"url": "attachment://result.png"}}],
        "components": [row(vec![button("again"), json!({"type": 2, "style": 5, "label": "Docs", "url": "https://example.com"})])],
        "attachments": [{"id": "0", "filename": "result.png", "description": "the image"}],
        "allowed_mentions": {"parse": []},
        "flags": 64
    });
    assert_eq!(refusals("POST", CREATE_MESSAGE, body.clone()), vec![]);
    assert_eq!(refusals("PATCH", EDIT_ORIGINAL, body), vec![]);
}

#[test]
fn content_over_2000_characters_is_refused_at_content() {
    let body = json!({"content": "é".repeat(2001)});
    assert_eq!(
        refusals("PATCH", EDIT_ORIGINAL, body),
        vec![("content".to_string(), "BASE_TYPE_MAX_LENGTH".to_string())]
    );
    assert_eq!(
        refusals("PATCH", EDIT_ORIGINAL, json!({"content": "é".repeat(2000)})),
        vec![]
    );
}

#[test]
fn a_custom_id_over_100_characters_is_refused_at_its_path() {
    let body = json!({"components": [row(vec![button("ok"), button(&"x".repeat(101))])]});
    assert_eq!(
        refusals("PATCH", EDIT_ORIGINAL, body),
        vec![(
            "components.0.components.1.custom_id".to_string(),
            "BASE_TYPE_BAD_LENGTH".to_string()
        )]
    );
}

#[test]
fn six_buttons_in_a_row_are_refused() {
    let buttons = (0..6).map(|i| button(&format!("b{i}"))).collect();
    assert_eq!(
        refusals(
            "PATCH",
            EDIT_ORIGINAL,
            json!({"components": [row(buttons)]})
        ),
        vec![(
            "components.0.components".to_string(),
            "BASE_TYPE_BAD_LENGTH".to_string()
        )]
    );
}

#[test]
fn wrong_types_are_refused_with_discords_codes() {
    assert_eq!(
        refusals(
            "PATCH",
            EDIT_ORIGINAL,
            json!({"content": ["not", "a", "string"]})
        ),
        vec![("content".to_string(), "STRING_TYPE_CONVERT".to_string())]
    );
    assert_eq!(
        refusals("PATCH", EDIT_ORIGINAL, json!({"flags": "64"})),
        vec![("flags".to_string(), "NUMBER_TYPE_COERCE".to_string())]
    );
    assert_eq!(
        refusals("PATCH", EDIT_ORIGINAL, json!({"embeds": {"title": "x"}})),
        vec![("embeds".to_string(), "LIST_TYPE_CONVERT".to_string())]
    );
}

#[test]
fn callbacks_are_judged_by_their_type() {
    assert_eq!(refusals("POST", CALLBACK, json!({"type": 5})), vec![]);
    assert_eq!(
        refusals(
            "POST",
            CALLBACK,
            json!({"type": 4, "data": {"content": "x".repeat(2001)}})
        ),
        vec![(
            "data.content".to_string(),
            "BASE_TYPE_MAX_LENGTH".to_string()
        )]
    );
    assert_eq!(
        refusals(
            "POST",
            CALLBACK,
            json!({"type": 8, "data": {"choices": [{"name": "a", "value": "a"}]}})
        ),
        vec![]
    );
    assert_eq!(
        refusals("POST", CALLBACK, json!({"type": 8})),
        vec![("data".to_string(), "BASE_TYPE_REQUIRED".to_string())]
    );
    assert_eq!(
        refusals("POST", CALLBACK, json!({"type": 3})),
        vec![("type".to_string(), "UNION_TYPE_CHOICES".to_string())]
    );
}

#[test]
fn what_discord_accepts_beyond_the_description_passes() {
    // Attachment placeholders as integers (the reference's upload example; serenity).
    assert_eq!(
        refusals(
            "PATCH",
            EDIT_ORIGINAL,
            json!({"attachments": [{"id": 0, "filename": "result.png", "description": null}]})
        ),
        vec![]
    );
    // default_member_permissions as a string (the application-commands documentation; serenity).
    let command = json!([{"name": "generate", "description": "Make an image", "default_member_permissions": "2048",
        "options": [{"type": 3, "name": "prompt", "description": "What", "required": true, "choices": []}]}]);
    assert_eq!(refusals("PUT", COMMANDS, command), vec![]);
    assert_eq!(
        refusals(
            "PUT",
            COMMANDS,
            json!([{"name": "g", "description": "d", "default_member_permissions": "admin"}])
        ),
        vec![(
            "0.default_member_permissions".to_string(),
            "STRING_TYPE_REGEX".to_string()
        )]
    );
}

#[test]
fn command_options_are_checked_against_their_type() {
    let body = json!([{"name": "generate", "description": "d",
        "options": [{"type": 3, "name": "prompt", "description": "", "required": true}]}]);
    assert_eq!(
        refusals("PUT", COMMANDS, body),
        vec![(
            "0.options.0.description".to_string(),
            "BASE_TYPE_BAD_LENGTH".to_string()
        )]
    );
}
