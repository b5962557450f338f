//! The `custom_id` of the bot's buttons: a versioned, self-contained action (Discord sends it
//! back on a click, even after comfy-fleet restarted). `cf1:<action>:<argument>`, at most 100
//! characters. Anything else is refused with a message saying what to do.

use uuid::Uuid;

use crate::ids::JobId;

use super::message::MAX_CUSTOM_ID;

/// Marks the bot's buttons, with the format's version.
pub const PREFIX: &str = "cf1";

/// What a button does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ButtonAction {
    /// Cancel this job (progress messages).
    Cancel(JobId),
    /// Run the same template again with the message's fields and a new seed.
    Reroll { template: String },
    /// Upscale the message's attachment number `image` (0-based).
    Upscale { image: usize },
    /// Show page `page` (0-based) of `/loras`.
    LoraPage { page: usize },
}

/// Why a `custom_id` was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomIdError {
    #[error("this button does not belong to comfy-fleet")]
    Foreign,
    #[error(
        "this button comes from another version of comfy-fleet and no longer works; run the command again"
    )]
    OtherVersion,
    #[error("this button is damaged ({0}); run the command again")]
    Malformed(String),
}

impl ButtonAction {
    /// The `custom_id` for this action. Template names that could not round-trip (too long, or
    /// holding `:`) are refused.
    pub fn encode(&self) -> Result<String, CustomIdError> {
        let id = match self {
            Self::Cancel(job) => format!("{PREFIX}:cancel:{job}"),
            Self::Reroll { template } => {
                if template.is_empty() || template.contains(':') {
                    return Err(CustomIdError::Malformed(format!(
                        "template name `{template}` cannot go into a button"
                    )));
                }
                format!("{PREFIX}:reroll:{template}")
            }
            Self::Upscale { image } => format!("{PREFIX}:upscale:{image}"),
            Self::LoraPage { page } => format!("{PREFIX}:loras:{page}"),
        };
        if id.len() > MAX_CUSTOM_ID {
            return Err(CustomIdError::Malformed(format!(
                "{} characters, more than Discord's {MAX_CUSTOM_ID}",
                id.len()
            )));
        }
        Ok(id)
    }

    /// Reads a `custom_id` Discord sent back.
    pub fn decode(custom_id: &str) -> Result<Self, CustomIdError> {
        let mut parts = custom_id.splitn(3, ':');
        let (prefix, action, argument) = (parts.next(), parts.next(), parts.next());
        match prefix {
            Some(PREFIX) => {}
            Some(p)
                if p.starts_with("cf")
                    && p[2..].chars().all(|c| c.is_ascii_digit())
                    && p.len() > 2 =>
            {
                return Err(CustomIdError::OtherVersion);
            }
            _ => return Err(CustomIdError::Foreign),
        }
        let (Some(action), Some(argument)) = (action, argument) else {
            return Err(CustomIdError::Malformed("no action".into()));
        };
        let number = |what: &str| {
            argument.parse::<usize>().map_err(|_| {
                CustomIdError::Malformed(format!("{what} `{argument}` is not a number"))
            })
        };
        match action {
            "cancel" => Uuid::parse_str(argument)
                .map(|u| Self::Cancel(JobId(u)))
                .map_err(|_| CustomIdError::Malformed(format!("`{argument}` is not a job id"))),
            "reroll" if !argument.is_empty() => Ok(Self::Reroll {
                template: argument.to_string(),
            }),
            "upscale" => Ok(Self::Upscale {
                image: number("image")?,
            }),
            "loras" => Ok(Self::LoraPage {
                page: number("page")?,
            }),
            other => Err(CustomIdError::Malformed(format!(
                "unknown action `{other}`"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_round_trips_within_100_characters() {
        let actions = [
            ButtonAction::Cancel(JobId::new()),
            ButtonAction::Reroll {
                template: "generate".into(),
            },
            ButtonAction::Upscale { image: 3 },
            ButtonAction::LoraPage { page: 12 },
        ];
        for action in actions {
            let id = action.encode().unwrap();
            assert!(id.len() <= MAX_CUSTOM_ID, "{id}");
            assert!(id.starts_with("cf1:"), "{id}");
            assert_eq!(ButtonAction::decode(&id).unwrap(), action);
        }
    }

    #[test]
    fn foreign_old_and_malformed_ids_are_refused_with_a_reason() {
        assert_eq!(ButtonAction::decode("again"), Err(CustomIdError::Foreign));
        assert_eq!(
            ButtonAction::decode("other-bot:cancel:1"),
            Err(CustomIdError::Foreign)
        );
        assert_eq!(
            ButtonAction::decode("cf0:cancel:x"),
            Err(CustomIdError::OtherVersion)
        );
        for bad in [
            "cf1:cancel:not-a-uuid",
            "cf1:upscale:x",
            "cf1:explode:1",
            "cf1:reroll:",
            "cf1",
        ] {
            let err = ButtonAction::decode(bad).unwrap_err();
            assert!(matches!(err, CustomIdError::Malformed(_)), "{bad}: {err:?}");
            assert!(err.to_string().contains("run the command again"), "{err}");
        }
    }

    #[test]
    fn template_names_that_cannot_round_trip_are_refused() {
        let long = ButtonAction::Reroll {
            template: "x".repeat(100),
        };
        assert!(long.encode().is_err());
        let colon = ButtonAction::Reroll {
            template: "a:b".into(),
        };
        assert!(colon.encode().is_err());
    }
}
