//! Following the model library: when its files change (through the API, `comfy-fleet models`,
//! or by hand), the catalog's node definitions are fetched again (so parameter checks see the new
//! choices) and the scheduler forgets removed files (so affinity never counts a model that is no
//! longer there). Checked on every model listing or change, and by submissions at most every
//! [`SUBMIT_LOOK_INTERVAL`]: a look reads every folder of the library and stats every file, too
//! much for each job of a library with hundreds of LoRAs. A job naming a model its node
//! definitions lack looks at once, so a file put in the library by hand can be used right away.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use comfy_fleet_actors::messages::ModelsRemoved;

use crate::fleet::FleetHandle;
use crate::models::Fingerprint;

/// The least time between two looks at the library made for submissions.
pub const SUBMIT_LOOK_INTERVAL: Duration = Duration::from_secs(1);

/// What the fleet saw when it last looked at the library.
#[derive(Debug, Default)]
struct LastLook {
    content: Option<Fingerprint>,
    at: Option<Instant>,
}

/// The library's content when the fleet last looked, and when that was.
#[derive(Debug, Clone, Default)]
pub struct ModelWatch(Arc<Mutex<LastLook>>);

impl ModelWatch {
    /// Starts from what the library holds now.
    pub fn new(now: Fingerprint) -> Self {
        Self(Arc::new(Mutex::new(LastLook {
            content: Some(now),
            at: Some(Instant::now()),
        })))
    }

    /// Whether the last look is older than [`SUBMIT_LOOK_INTERVAL`] (or there was none).
    pub fn look_due(&self) -> bool {
        self.0.lock().map_or(true, |last| {
            last.at
                .is_none_or(|at| at.elapsed() >= SUBMIT_LOOK_INTERVAL)
        })
    }
}

impl FleetHandle {
    /// Looks at the library; when it changed since the last look, refreshes the catalog and
    /// tells the scheduler which files are gone or were replaced. Blocking (it reads the library's folders).
    /// Returns whether it changed.
    pub fn notice_model_changes(&self) -> bool {
        let now = self.library.fingerprint();
        let Ok(mut last) = self.model_watch.0.lock() else {
            return false;
        };
        last.at = Some(Instant::now());
        if last.content.as_ref() == Some(&now) {
            return false;
        }
        let removed: Vec<String> = last
            .content
            .as_ref()
            .map(|before| before.gone_or_changed_in(&now))
            .unwrap_or_default();
        last.content = Some(now);
        drop(last);
        tracing::info!(removed = ?removed, "the model library changed; node definitions will be fetched again");
        self.catalog.mark_stale();
        if !removed.is_empty() {
            self.scheduler.do_send(ModelsRemoved { names: removed });
        }
        true
    }
}
