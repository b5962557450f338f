//! The Discord bot's logic, free of Discord libraries: what reaches the bot
//! ([`interaction`]) and what it sends ([`message`]), the two ports it works through ([`chat`]
//! to Discord, [`fleet_port`] to the fleet), the policies (who may do what, the commands and
//! their options → template parameters, the button codec, `/loras` pages, the delivery state
//! machine and its edit throttle, the texts), and the [`session::DiscordSession`] actor that
//! carries them out. The serenity adapter lives in `comfy-fleet`'s `src/discord/`.

pub mod access;
pub mod chat;
pub mod commands;
pub mod custom_id;
pub mod delivery;
pub mod fleet_port;
pub mod interaction;
pub mod job_commands;
pub mod job_options;
pub mod lora_pages;
pub mod message;
pub mod session;
pub mod settings;
pub mod texts;
pub mod throttle;

pub use chat::{Chat, ChatError};
pub use fleet_port::FleetPort;
pub use session::DiscordSession;
pub use settings::SessionSettings;
