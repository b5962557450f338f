//! The catalog: the templates and the node definitions (`/object_info`) jobs are checked against.
//!
//! Node definitions come from a ready instance, fetched once and kept; every instance of a fleet
//! runs the same ComfyUI, so one copy serves all.

use std::sync::{Arc, RwLock};

use comfy_fleet_actors::messages::{GetSchedulerSnapshot, InstancePhase};

use crate::comfy::{ClientConfig, ComfyClient};
use crate::fleet::FleetHandle;
use crate::fleet::submit::SubmitFailure;
use crate::workflow::{ObjectInfo, TemplateSet};

/// Templates and node definitions.
pub struct Catalog {
    pub templates: TemplateSet,
    object_info: RwLock<Option<Arc<ObjectInfo>>>,
}

impl Catalog {
    pub fn new(templates: TemplateSet) -> Self {
        Self {
            templates,
            object_info: RwLock::new(None),
        }
    }

    /// Forgets the node definitions, so the next job fetches them again (after the model
    /// library changed, their loader choice lists did too).
    pub fn invalidate(&self) {
        if let Ok(mut guard) = self.object_info.write() {
            *guard = None;
        }
    }

    /// The node definitions, fetched from a ready instance the first time.
    pub async fn object_info(&self, fleet: &FleetHandle) -> Result<Arc<ObjectInfo>, SubmitFailure> {
        if let Ok(guard) = self.object_info.read()
            && let Some(info) = guard.as_ref()
        {
            return Ok(Arc::clone(info));
        }
        let snapshot = fleet
            .scheduler
            .send(GetSchedulerSnapshot)
            .await
            .map_err(|e| SubmitFailure::Internal(e.to_string()))?;
        let urls: Vec<String> = snapshot
            .instances
            .iter()
            .filter(|i| i.phase == InstancePhase::Ready)
            .filter_map(|i| i.url.clone())
            .collect();
        if urls.is_empty() {
            let phases: Vec<String> = snapshot
                .instances
                .iter()
                .map(|i| format!("{} {:?}", i.id, i.phase))
                .collect();
            return Err(SubmitFailure::NotReady(if phases.is_empty() {
                "no instances".into()
            } else {
                phases.join(", ").to_lowercase()
            }));
        }
        let mut last_error = String::new();
        for url in urls {
            let fetched = async {
                let client = ComfyClient::new(&url, ClientConfig::default())?;
                client.object_info().await
            }
            .await;
            match fetched {
                Ok(info) => {
                    if let Ok(mut guard) = self.object_info.write() {
                        *guard = Some(Arc::clone(&info));
                    }
                    return Ok(info);
                }
                Err(e) => last_error = e.to_string(),
            }
        }
        Err(SubmitFailure::NotReady(last_error))
    }
}
