//! The model files the instances have, by kind, for autocomplete and `/loras`: the union of
//! every ready instance's `GET /models/{folder}`, kept for a minute so typing stays fast.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use comfy_fleet_actors::discord::fleet_port::{JobError, ModelKind};

use crate::comfy::{ClientConfig, ComfyClient};
use crate::fleet::FleetHandle;

/// How long a list is used before it is asked again.
const FRESH_FOR: Duration = Duration::from_secs(60);
/// Longest wait for one instance's list (autocomplete answers within Discord's 3 seconds).
const ASK_TIMEOUT: Duration = Duration::from_millis(1500);

/// Cached lists.
#[derive(Default)]
pub struct ModelLists {
    lists: RefCell<HashMap<ModelKind, (Vec<String>, Instant)>>,
}

impl ModelLists {
    /// The names of `kind`, sorted.
    pub async fn get(&self, fleet: &FleetHandle, kind: ModelKind) -> Result<Vec<String>, JobError> {
        let cached = self.lists.borrow().get(&kind).cloned();
        if let Some((names, at)) = &cached
            && at.elapsed() < FRESH_FOR
        {
            return Ok(names.clone());
        }
        let urls: Vec<String> = fleet
            .phases
            .snapshot()
            .values()
            .filter(|v| v.phase.accepts_jobs())
            .filter_map(|v| v.url.clone())
            .collect();
        let mut names = BTreeSet::new();
        let mut answered = false;
        let mut last_error = String::from("no instance is ready");
        for url in urls {
            let asked = async {
                let client = ComfyClient::new(&url, ClientConfig::default())?;
                client.models(kind.folder()).await
            };
            match tokio::time::timeout(ASK_TIMEOUT, asked).await {
                Ok(Ok(list)) => {
                    answered = true;
                    names.extend(list);
                }
                Ok(Err(e)) => last_error = e.to_string(),
                Err(_) => last_error = format!("{url} did not answer in time"),
            }
        }
        if !answered {
            return match cached {
                Some((names, _)) => Ok(names),
                None => Err(JobError::Unavailable(last_error)),
            };
        }
        let names: Vec<String> = names.into_iter().collect();
        self.lists
            .borrow_mut()
            .insert(kind, (names.clone(), Instant::now()));
        Ok(names)
    }
}
