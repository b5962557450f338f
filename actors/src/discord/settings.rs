//! The session's settings, converted from `[discord]` in config.toml at start-up.

use std::time::Duration;

use super::access::AccessRules;

/// How the session behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSettings {
    /// Least time between two progress edits of one message.
    pub progress_interval: Duration,
    /// When progress moves from the interaction's messages to a channel message.
    pub token_handover: Duration,
    /// Show preview images while a job samples.
    pub previews: bool,
    pub access: AccessRules,
    /// Register commands in these guilds; empty = globally.
    pub guilds: Vec<String>,
    /// Largest attachment downloaded for a job (`limits.max_image_mb`).
    pub max_image_bytes: u64,
    /// LoRA names per `/loras` page.
    pub lora_page_size: usize,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            progress_interval: Duration::from_millis(1500),
            token_handover: Duration::from_secs(14 * 60),
            previews: true,
            access: AccessRules::default(),
            guilds: Vec::new(),
            max_image_bytes: 25 * 1024 * 1024,
            lora_page_size: 20,
        }
    }
}
