//! Every interaction the fake dispatched, with what the bot did about it: its lifecycle
//! (acknowledgement, token), the messages it made (original response, followups) and the
//! autocomplete choices or modal it answered with. Found by id (callback route) or by token
//! (webhook routes).

use std::collections::HashMap;
use std::time::Instant;

use serde_json::Value;

use crate::interaction_lifecycle::Lifecycle;

/// One dispatched interaction.
#[derive(Debug, Clone)]
pub struct InteractionRecord {
    pub id: u64,
    pub token: String,
    pub lifecycle: Lifecycle,
    pub payload: Value,
    pub channel_id: u64,
    pub guild_id: Option<u64>,
    pub attachment_size_limit: u64,
    /// The message a component interaction was triggered from.
    pub source_message_id: Option<u64>,
    /// The message `@original` refers to (the response, or the source message after an update).
    pub original_message_id: Option<u64>,
    /// A deferred response (type 5) whose placeholder no edit has filled yet.
    pub awaiting_deferred_edit: bool,
    pub followup_ids: Vec<u64>,
    pub autocomplete_choices: Option<Value>,
    pub modal: Option<Value>,
    pub created_ms: u64,
}

/// All interactions.
#[derive(Debug, Default)]
pub struct InteractionStore {
    by_id: HashMap<u64, InteractionRecord>,
    by_token: HashMap<String, u64>,
}

impl InteractionStore {
    pub fn insert(&mut self, record: InteractionRecord) {
        self.by_token.insert(record.token.clone(), record.id);
        self.by_id.insert(record.id, record);
    }

    pub fn get(&self, id: u64) -> Option<&InteractionRecord> {
        self.by_id.get(&id)
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut InteractionRecord> {
        self.by_id.get_mut(&id)
    }

    pub fn id_for_token(&self, token: &str) -> Option<u64> {
        self.by_token.get(token).copied()
    }

    /// The interaction a webhook token belongs to, if the token still opens the webhook routes.
    pub fn by_valid_token(&self, token: &str, now: Instant) -> Option<&InteractionRecord> {
        self.id_for_token(token)
            .and_then(|id| self.by_id.get(&id))
            .filter(|r| r.lifecycle.token_valid(now))
    }
}
