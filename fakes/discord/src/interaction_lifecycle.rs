//! The rules of time an interaction lives by: one initial response (callback) within the
//! acknowledgement window (3 s), a second one refused, and a token the webhook routes accept for
//! 15 minutes, unless the window passed unanswered (the token is then invalidated).

use std::time::{Duration, Instant};

/// Interaction types (receiving-and-responding: "Interaction Type").
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InteractionKind {
    ApplicationCommand,
    MessageComponent,
    Autocomplete,
    ModalSubmit,
}

impl InteractionKind {
    pub fn type_number(self) -> u8 {
        match self {
            Self::ApplicationCommand => 2,
            Self::MessageComponent => 3,
            Self::Autocomplete => 4,
            Self::ModalSubmit => 5,
        }
    }

    /// Callback types that may answer this kind of interaction: UPDATE_MESSAGE (7) and
    /// DEFERRED_UPDATE_MESSAGE (6) only for components (and modals opened from one),
    /// APPLICATION_COMMAND_AUTOCOMPLETE_RESULT (8) only for autocomplete, MODAL (9) not for
    /// modal submits.
    pub fn accepts_callback(self, callback_type: u8) -> bool {
        match self {
            Self::ApplicationCommand => matches!(callback_type, 4 | 5 | 9),
            Self::MessageComponent => matches!(callback_type, 4..=7 | 9),
            Self::Autocomplete => callback_type == 8,
            Self::ModalSubmit => matches!(callback_type, 4..=7),
        }
    }
}

/// Why a callback is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackRefusal {
    /// The window passed (or the token was revoked): 404, code 10062.
    UnknownInteraction,
    /// A callback was already accepted: 400, code 40060.
    AlreadyAcknowledged,
    /// This callback type cannot answer this kind of interaction: 400, code 50035.
    TypeNotAllowed,
}

/// The acknowledgement an interaction received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acknowledgement {
    pub callback_type: u8,
    pub at: Instant,
}

/// The clock-bound state of one interaction.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    kind: InteractionKind,
    created: Instant,
    ack_window: Duration,
    token_lifetime: Duration,
    acknowledged: Option<Acknowledgement>,
    revoked: bool,
}

impl Lifecycle {
    pub fn new(
        kind: InteractionKind,
        created: Instant,
        ack_window: Duration,
        token_lifetime: Duration,
    ) -> Self {
        Self {
            kind,
            created,
            ack_window,
            token_lifetime,
            acknowledged: None,
            revoked: false,
        }
    }

    pub fn kind(&self) -> InteractionKind {
        self.kind
    }

    pub fn created(&self) -> Instant {
        self.created
    }

    pub fn acknowledgement(&self) -> Option<Acknowledgement> {
        self.acknowledged
    }

    /// Accepts or refuses an initial response of `callback_type` at `now`.
    pub fn acknowledge(&mut self, callback_type: u8, now: Instant) -> Result<(), CallbackRefusal> {
        if self.acknowledged.is_some() {
            return Err(CallbackRefusal::AlreadyAcknowledged);
        }
        if self.revoked || now.duration_since(self.created) > self.ack_window {
            return Err(CallbackRefusal::UnknownInteraction);
        }
        if !self.kind.accepts_callback(callback_type) {
            return Err(CallbackRefusal::TypeNotAllowed);
        }
        self.acknowledged = Some(Acknowledgement {
            callback_type,
            at: now,
        });
        Ok(())
    }

    /// Whether the interaction's token still opens the webhook routes at `now`.
    pub fn token_valid(&self, now: Instant) -> bool {
        let age = now.duration_since(self.created);
        !self.revoked
            && age <= self.token_lifetime
            && (self.acknowledged.is_some() || age <= self.ack_window)
    }

    /// Ends the token's life now (tests use it instead of waiting 15 minutes).
    pub fn revoke(&mut self) {
        self.revoked = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh(kind: InteractionKind) -> (Lifecycle, Instant) {
        let t0 = Instant::now();
        (
            Lifecycle::new(kind, t0, Duration::from_secs(3), Duration::from_secs(900)),
            t0,
        )
    }

    #[test]
    fn one_acknowledgement_inside_the_window() {
        let (mut life, t0) = fresh(InteractionKind::ApplicationCommand);
        assert_eq!(life.acknowledge(5, t0 + Duration::from_secs(2)), Ok(()));
        assert_eq!(
            life.acknowledge(4, t0 + Duration::from_secs(2)),
            Err(CallbackRefusal::AlreadyAcknowledged)
        );
        assert_eq!(life.acknowledgement().map(|a| a.callback_type), Some(5));
    }

    #[test]
    fn a_late_acknowledgement_is_an_unknown_interaction_and_kills_the_token() {
        let (mut life, t0) = fresh(InteractionKind::ApplicationCommand);
        let late = t0 + Duration::from_millis(3001);
        assert_eq!(
            life.acknowledge(5, late),
            Err(CallbackRefusal::UnknownInteraction)
        );
        assert!(!life.token_valid(late));
        assert!(life.token_valid(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn the_token_lives_fifteen_minutes_after_an_acknowledgement() {
        let (mut life, t0) = fresh(InteractionKind::MessageComponent);
        assert_eq!(life.acknowledge(6, t0), Ok(()));
        assert!(life.token_valid(t0 + Duration::from_secs(899)));
        assert!(!life.token_valid(t0 + Duration::from_secs(901)));
        life.revoke();
        assert!(!life.token_valid(t0));
    }

    #[test]
    fn callback_types_match_the_interaction_kind() {
        let (mut command, t0) = fresh(InteractionKind::ApplicationCommand);
        assert_eq!(
            command.acknowledge(7, t0),
            Err(CallbackRefusal::TypeNotAllowed)
        );
        assert_eq!(
            command.acknowledge(8, t0),
            Err(CallbackRefusal::TypeNotAllowed)
        );
        assert_eq!(command.acknowledge(4, t0), Ok(()));
        let (mut auto, t0) = fresh(InteractionKind::Autocomplete);
        assert_eq!(
            auto.acknowledge(4, t0),
            Err(CallbackRefusal::TypeNotAllowed)
        );
        assert_eq!(auto.acknowledge(8, t0), Ok(()));
        assert!(InteractionKind::MessageComponent.accepts_callback(7));
        assert!(!InteractionKind::ModalSubmit.accepts_callback(9));
    }
}
