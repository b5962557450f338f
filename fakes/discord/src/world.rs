//! Everything one fake Discord knows (commands, interactions, messages, files, the gateway, the
//! request log, rate limits) behind one lock, plus a change counter every mutation bumps so
//! tests can wait for "something happened" instead of polling.

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::cdn::CdnStore;
use crate::commands::CommandRegistry;
use crate::config::FakeConfig;
use crate::gateway_sessions::SessionRegistry;
use crate::interactions::InteractionStore;
use crate::messages::MessageStore;
use crate::rate_limits::RateLimiter;
use crate::request_log::RequestLog;
use crate::snowflake::SnowflakeGenerator;

/// The state of one fake.
#[derive(Debug)]
pub struct World {
    pub config: FakeConfig,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    pub started: Instant,
    pub ids: SnowflakeGenerator,
    pub commands: CommandRegistry,
    pub interactions: InteractionStore,
    pub messages: MessageStore,
    pub cdn: CdnStore,
    pub channels: BTreeSet<u64>,
    pub requests: RequestLog,
    pub rate_limits: RateLimiter,
    pub gateway: SessionRegistry,
}

impl World {
    pub fn new(config: FakeConfig, base_url: String) -> Self {
        let started = Instant::now();
        Self {
            base_url,
            started,
            ids: SnowflakeGenerator::new(),
            commands: CommandRegistry::default(),
            interactions: InteractionStore::default(),
            messages: MessageStore::default(),
            cdn: CdnStore::default(),
            channels: config.channel_ids.iter().copied().collect(),
            requests: RequestLog::default(),
            rate_limits: RateLimiter::new(
                config.rate_limit_per_bucket,
                config.rate_limit_window,
                config.enforce_rate_limits,
                started,
            ),
            gateway: SessionRegistry::new(started),
            config,
        }
    }

    /// Milliseconds since the fake started.
    pub fn ms(&self, at: Instant) -> u64 {
        at.duration_since(self.started).as_millis() as u64
    }

    /// The gateway URL handed out by `GET /gateway` (serenity appends `?v=10`).
    pub fn gateway_url(&self) -> String {
        format!("{}/gateway", self.base_url.replacen("http://", "ws://", 1))
    }

    /// READY's `resume_gateway_url`.
    pub fn resume_gateway_url(&self) -> String {
        format!(
            "{}/gateway/resume",
            self.base_url.replacen("http://", "ws://", 1)
        )
    }
}

/// The world shared by every request handler and websocket task.
#[derive(Debug)]
pub struct Shared {
    world: Mutex<World>,
    changes: watch::Sender<u64>,
}

impl Shared {
    pub fn new(world: World) -> Self {
        Self {
            world: Mutex::new(world),
            changes: watch::channel(0).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, World> {
        // A panic while holding the lock leaves consistent-enough state for a test double.
        self.world
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `change` on the world and tells waiters something changed.
    pub fn change<R>(&self, change: impl FnOnce(&mut World) -> R) -> R {
        let result = change(&mut self.lock());
        self.changes.send_modify(|v| *v += 1);
        result
    }

    /// Reads the world.
    pub fn read<R>(&self, read: impl FnOnce(&World) -> R) -> R {
        read(&self.lock())
    }

    pub fn version(&self) -> u64 {
        *self.changes.borrow()
    }

    /// Waits until the change counter passes `after` or `timeout` elapses; returns the counter.
    pub async fn wait_change(&self, after: u64, timeout: Duration) -> u64 {
        let mut receiver = self.changes.subscribe();
        let _ = tokio::time::timeout(timeout, receiver.wait_for(|v| *v > after)).await;
        self.version()
    }
}
