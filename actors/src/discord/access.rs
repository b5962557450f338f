//! Who may use the bot where: allowed guilds and channels, and the operator roles `/fleet`
//! needs.

use super::interaction::Interaction;

/// The rules, from `[discord]` in config.toml (ids as strings, as Discord sends them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessRules {
    /// Empty: any guild, and direct messages.
    pub allowed_guilds: Vec<String>,
    /// Empty: any channel.
    pub allowed_channels: Vec<String>,
    pub operator_roles: Vec<String>,
}

/// Why an interaction is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Guild,
    DirectMessage,
    Channel,
    NotOperator,
}

impl AccessRules {
    /// Whether the bot answers here at all.
    pub fn check(&self, interaction: &Interaction) -> Result<(), Refusal> {
        if !self.allowed_guilds.is_empty() {
            match &interaction.guild {
                None => return Err(Refusal::DirectMessage),
                Some(g) if !self.allowed_guilds.contains(g) => return Err(Refusal::Guild),
                Some(_) => {}
            }
        }
        if !self.allowed_channels.is_empty()
            && !interaction
                .channel
                .as_ref()
                .is_some_and(|c| self.allowed_channels.contains(c))
        {
            return Err(Refusal::Channel);
        }
        Ok(())
    }

    /// Whether the user has one of the operator roles.
    pub fn is_operator(&self, interaction: &Interaction) -> bool {
        interaction.guild.is_some()
            && interaction
                .user
                .roles
                .iter()
                .any(|r| self.operator_roles.contains(r))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::super::interaction::{ChatUser, CommandCall, InteractionKind, InteractionToken};
    use super::*;

    fn at(guild: Option<&str>, channel: &str, roles: &[&str]) -> Interaction {
        Interaction {
            token: InteractionToken {
                id: "1".into(),
                token: "t".into(),
                application_id: "2".into(),
            },
            received: Instant::now(),
            user: ChatUser::discord("7", "ann", roles.iter().map(|r| r.to_string()).collect()),
            guild: guild.map(str::to_string),
            channel: Some(channel.to_string()),
            upload_limit: 1 << 20,
            kind: InteractionKind::Command(CommandCall::new("help")),
        }
    }

    #[test]
    fn empty_lists_allow_everything_and_lists_restrict() {
        let open = AccessRules::default();
        assert_eq!(open.check(&at(None, "5", &[])), Ok(()));
        let rules = AccessRules {
            allowed_guilds: vec!["10".into()],
            allowed_channels: vec!["20".into()],
            operator_roles: vec!["99".into()],
        };
        assert_eq!(rules.check(&at(Some("10"), "20", &[])), Ok(()));
        assert_eq!(rules.check(&at(Some("11"), "20", &[])), Err(Refusal::Guild));
        assert_eq!(
            rules.check(&at(None, "20", &[])),
            Err(Refusal::DirectMessage)
        );
        assert_eq!(
            rules.check(&at(Some("10"), "21", &[])),
            Err(Refusal::Channel)
        );
        assert!(rules.is_operator(&at(Some("10"), "20", &["5", "99"])));
        assert!(!rules.is_operator(&at(Some("10"), "20", &["5"])));
    }
}
