//! The application commands registered with the fake (global and per guild), kept as Discord
//! answers them. A bulk overwrite replaces the whole set; a command that keeps its name and type
//! keeps its id (Discord updates it in place) and every written command gets a new `version`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::form_errors::{FieldError, FormErrors};
use crate::snowflake::SnowflakeGenerator;

/// Where a set of commands is registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CommandScope {
    Global,
    Guild(u64),
}

/// All registered commands.
#[derive(Debug, Default)]
pub struct CommandRegistry {
    sets: BTreeMap<CommandScope, Vec<Value>>,
}

impl CommandRegistry {
    /// The commands of one scope, as Discord lists them.
    pub fn list(&self, scope: CommandScope) -> Vec<Value> {
        self.sets.get(&scope).cloned().unwrap_or_default()
    }

    /// Every scope's commands (global first, then guilds by id).
    pub fn all(&self) -> Vec<(CommandScope, Vec<Value>)> {
        self.sets.iter().map(|(s, c)| (*s, c.clone())).collect()
    }

    /// Replaces the commands of `scope` with `requested` (already schema-checked); refuses sets
    /// Discord refuses (duplicate names of one type, names that are not lowercase for slash
    /// commands, slash commands without a description) without changing anything.
    pub fn overwrite(
        &mut self,
        scope: CommandScope,
        requested: &[Value],
        application_id: u64,
        ids: &SnowflakeGenerator,
    ) -> Result<Vec<Value>, FormErrors> {
        let errors = check_set(requested);
        if !errors.is_empty() {
            return Err(errors);
        }
        let previous = self.sets.remove(&scope).unwrap_or_default();
        let stored: Vec<Value> = requested
            .iter()
            .map(|command| {
                let kind = command_type(command);
                let name = command.get("name").and_then(Value::as_str).unwrap_or("");
                let id = previous
                    .iter()
                    .find(|p| {
                        command_type(p) == kind
                            && p.get("name").and_then(Value::as_str) == Some(name)
                    })
                    .and_then(|p| p.get("id").cloned())
                    .unwrap_or_else(|| json!(ids.next_string()));
                stored_command(command, id, scope, application_id, ids)
            })
            .collect();
        self.sets.insert(scope, stored.clone());
        Ok(stored)
    }

    /// The command a user can invoke by `name` in `guild` (guild commands shadow global ones).
    pub fn find(&self, guild: Option<u64>, name: &str, kind: u64) -> Option<&Value> {
        let matches = |c: &&Value| {
            c.get("name").and_then(Value::as_str) == Some(name) && command_type(c) == kind
        };
        guild
            .and_then(|g| self.sets.get(&CommandScope::Guild(g)))
            .and_then(|set| set.iter().find(matches))
            .or_else(|| {
                self.sets
                    .get(&CommandScope::Global)
                    .and_then(|set| set.iter().find(matches))
            })
    }
}

fn command_type(command: &Value) -> u64 {
    command.get("type").and_then(Value::as_u64).unwrap_or(1)
}

fn check_set(requested: &[Value]) -> FormErrors {
    let mut errors = FormErrors::default();
    for (index, command) in requested.iter().enumerate() {
        let at = |field: &str| vec![index.to_string(), field.to_string()];
        let kind = command_type(command);
        let name = command.get("name").and_then(Value::as_str).unwrap_or("");
        let duplicate = requested[..index].iter().any(|other| {
            command_type(other) == kind && other.get("name").and_then(Value::as_str) == Some(name)
        });
        if duplicate {
            errors.push(
                &at("name"),
                FieldError::new(
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    format!("Application command names must be unique: {name}"),
                ),
            );
        }
        if kind == 1 {
            if !valid_slash_name(name) {
                errors.push(
                    &at("name"),
                    FieldError::new(
                        "APPLICATION_COMMAND_INVALID_NAME",
                        format!("Command name is invalid: {name}"),
                    ),
                );
            }
            let description = command
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("");
            if description.is_empty() {
                errors.push(&at("description"), FieldError::required());
            }
        }
    }
    errors
}

/// Slash command and option names: 1–32 lowercase letters, digits, `-`, `_` or `'`.
fn valid_slash_name(name: &str) -> bool {
    let len = name.chars().count();
    (1..=32).contains(&len)
        && name
            .chars()
            .all(|c| (c.is_alphanumeric() && !c.is_uppercase()) || matches!(c, '-' | '_' | '\''))
}

fn stored_command(
    request: &Value,
    id: Value,
    scope: CommandScope,
    application_id: u64,
    ids: &SnowflakeGenerator,
) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), id);
    out.insert("application_id".into(), json!(application_id.to_string()));
    out.insert("version".into(), json!(ids.next_string()));
    let permissions = match request.get("default_member_permissions") {
        Some(Value::Number(n)) => json!(n.to_string()),
        Some(Value::String(s)) => json!(s),
        _ => Value::Null,
    };
    out.insert("default_member_permissions".into(), permissions);
    out.insert("type".into(), json!(command_type(request)));
    out.insert(
        "name".into(),
        request.get("name").cloned().unwrap_or(json!("")),
    );
    out.insert(
        "description".into(),
        request
            .get("description")
            .filter(|d| d.is_string())
            .cloned()
            .unwrap_or(json!("")),
    );
    if let CommandScope::Guild(guild) = scope {
        out.insert("guild_id".into(), json!(guild.to_string()));
    } else {
        out.insert(
            "dm_permission".into(),
            request
                .get("dm_permission")
                .filter(|v| v.is_boolean())
                .cloned()
                .unwrap_or(json!(true)),
        );
    }
    let contexts = request
        .get("contexts")
        .filter(|v| v.is_array())
        .cloned()
        .unwrap_or(Value::Null);
    out.insert("contexts".into(), contexts);
    out.insert(
        "integration_types".into(),
        request
            .get("integration_types")
            .filter(|v| v.is_array())
            .cloned()
            .unwrap_or(json!([0])),
    );
    if let Some(options) = request.get("options").and_then(Value::as_array) {
        out.insert(
            "options".into(),
            Value::Array(options.iter().map(stored_option).collect()),
        );
    }
    out.insert(
        "nsfw".into(),
        request
            .get("nsfw")
            .filter(|v| v.is_boolean())
            .cloned()
            .unwrap_or(json!(false)),
    );
    for key in ["name_localizations", "description_localizations"] {
        if let Some(value) = request.get(key).filter(|v| v.is_object()) {
            out.insert(key.into(), value.clone());
        }
    }
    Value::Object(out)
}

/// An option as Discord answers it: nulls dropped, `required` only when true, nested options
/// (subcommands) stored the same way.
fn stored_option(option: &Value) -> Value {
    let Some(fields) = option.as_object() else {
        return option.clone();
    };
    let mut out = Map::new();
    for (key, value) in fields {
        match (key.as_str(), value) {
            (_, Value::Null) => {}
            ("required", Value::Bool(false)) => {}
            ("options", Value::Array(items)) => {
                out.insert(
                    key.clone(),
                    Value::Array(items.iter().map(stored_option).collect()),
                );
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overwrite_keeps_ids_of_commands_that_stay() {
        let ids = SnowflakeGenerator::new();
        let mut registry = CommandRegistry::default();
        let first = registry
            .overwrite(
                CommandScope::Global,
                &[
                    json!({"name": "generate", "description": "make"}),
                    json!({"name": "status", "description": "s"}),
                ],
                7,
                &ids,
            )
            .expect("valid set");
        let second = registry
            .overwrite(
                CommandScope::Global,
                &[json!({"name": "generate", "description": "again"})],
                7,
                &ids,
            )
            .expect("valid set");
        assert_eq!(second.len(), 1);
        assert_eq!(first[0]["id"], second[0]["id"]);
        assert_ne!(first[0]["version"], second[0]["version"]);
        assert_eq!(second[0]["description"], "again");
        assert_eq!(second[0]["application_id"], "7");
        assert!(registry.find(Some(1), "status", 1).is_none());
        assert!(registry.find(Some(1), "generate", 1).is_some());
    }

    #[test]
    fn guild_commands_shadow_global_ones() {
        let ids = SnowflakeGenerator::new();
        let mut registry = CommandRegistry::default();
        let body = [json!({"name": "generate", "description": "d"})];
        let global = registry
            .overwrite(CommandScope::Global, &body, 7, &ids)
            .expect("ok");
        let guild = registry
            .overwrite(CommandScope::Guild(5), &body, 7, &ids)
            .expect("ok");
        assert_eq!(
            registry.find(Some(5), "generate", 1).map(|c| &c["id"]),
            Some(&guild[0]["id"])
        );
        assert_eq!(
            registry.find(Some(6), "generate", 1).map(|c| &c["id"]),
            Some(&global[0]["id"])
        );
        assert_eq!(guild[0]["guild_id"], "5");
    }

    #[test]
    fn discord_refuses_bad_sets_whole() {
        let ids = SnowflakeGenerator::new();
        let mut registry = CommandRegistry::default();
        let refused = registry
            .overwrite(
                CommandScope::Global,
                &[
                    json!({"name": "Generate", "description": "d"}),
                    json!({"name": "x", "description": "d"}),
                    json!({"name": "x", "description": ""}),
                ],
                7,
                &ids,
            )
            .expect_err("three problems");
        assert_eq!(
            refused.flat(),
            vec![
                (
                    "0.name".to_string(),
                    "APPLICATION_COMMAND_INVALID_NAME".to_string()
                ),
                (
                    "2.name".to_string(),
                    "APPLICATION_COMMANDS_DUPLICATE_NAME".to_string()
                ),
                (
                    "2.description".to_string(),
                    "BASE_TYPE_REQUIRED".to_string()
                ),
            ]
        );
        assert!(registry.list(CommandScope::Global).is_empty());
    }

    #[test]
    fn options_drop_nulls_and_false_required() {
        let option = stored_option(
            &json!({"type": 3, "name": "p", "description": "d", "required": false, "choices": null}),
        );
        assert_eq!(option, json!({"type": 3, "name": "p", "description": "d"}));
    }
}
