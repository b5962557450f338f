//! Following the model library: when its files change (through the API, `comfy-fleet models`,
//! or by hand), the catalog's node definitions are fetched again (so parameter checks see the new
//! choices) and the scheduler forgets removed files (so affinity never counts a model that is no
//! longer there). Checked on every submission and every model listing or change.

use std::sync::{Arc, Mutex};

use comfy_fleet_actors::messages::ModelsRemoved;

use crate::fleet::FleetHandle;
use crate::models::Fingerprint;

/// The library's content when the fleet last looked.
#[derive(Debug, Clone, Default)]
pub struct ModelWatch(Arc<Mutex<Option<Fingerprint>>>);

impl ModelWatch {
    /// Starts from what the library holds now.
    pub fn new(now: Fingerprint) -> Self {
        Self(Arc::new(Mutex::new(Some(now))))
    }
}

impl FleetHandle {
    /// Looks at the library; when it changed since the last look, refreshes the catalog and
    /// tells the scheduler which files are gone or were replaced. Blocking (it reads the library's folders).
    pub fn notice_model_changes(&self) {
        let now = self.library.fingerprint();
        let Ok(mut last) = self.model_watch.0.lock() else {
            return;
        };
        if last.as_ref() == Some(&now) {
            return;
        }
        let removed: Vec<String> = last
            .as_ref()
            .map(|before| before.gone_or_changed_in(&now))
            .unwrap_or_default();
        *last = Some(now);
        drop(last);
        tracing::info!(removed = ?removed, "the model library changed; node definitions will be fetched again");
        self.catalog.mark_stale();
        if !removed.is_empty() {
            self.scheduler.do_send(ModelsRemoved { names: removed });
        }
    }
}
