//! Snowflake ids as Discord makes them: milliseconds since the Discord epoch (2015-01-01) in the
//! top 42 bits, then worker, process and a 12-bit increment. Ids from one generator strictly
//! increase, so they sort by creation like Discord's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds from the Unix epoch to the Discord epoch.
pub const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// Makes unique, increasing snowflakes.
#[derive(Debug, Default)]
pub struct SnowflakeGenerator {
    last: AtomicU64,
}

impl SnowflakeGenerator {
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh id, from the wall clock, never equal to or below the previous one.
    pub fn next(&self) -> u64 {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(DISCORD_EPOCH_MS);
        let from_clock = (now_ms.saturating_sub(DISCORD_EPOCH_MS) << 22) | (1 << 17) | (1 << 12);
        let mut previous = self.last.load(Ordering::Relaxed);
        loop {
            let candidate = from_clock.max(previous + 1);
            match self.last.compare_exchange(
                previous,
                candidate,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return candidate,
                Err(actual) => previous = actual,
            }
        }
    }

    /// A fresh id as the string Discord's JSON carries.
    pub fn next_string(&self) -> String {
        self.next().to_string()
    }
}

/// The Unix time (ms) a snowflake was made at.
pub fn created_at_ms(id: u64) -> u64 {
    (id >> 22) + DISCORD_EPOCH_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_carry_their_creation_time() {
        let generator = SnowflakeGenerator::new();
        let a = generator.next();
        let b = generator.next();
        assert!(b > a);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let made = created_at_ms(a);
        assert!(made <= now_ms && made > DISCORD_EPOCH_MS);
    }
}
