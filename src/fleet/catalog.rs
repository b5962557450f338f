//! The catalog: the templates and the node definitions (`/object_info`) jobs are checked against.
//!
//! Jobs never fetch node definitions themselves. Each instance's readiness check loads its
//! server's `/object_info` and offers it here ([`Catalog::offer`]), so the document is in hand
//! as soon as an instance takes jobs. One copy is kept per server identity: every launched
//! instance runs the same ComfyUI with the same model folders and shares one; each attached
//! server is its own. An offer identical to the kept copy is not parsed again; a different one
//! (a restart after a change) replaces it. Jobs are checked against the launched instances'
//! document, else the first attached server's.
//!
//! When no document is in hand, or a model changed ([`Catalog::mark_stale`], or a job names a
//! list value the document lacks: a model installed since), one request fetches it from a ready
//! instance while the others wait for its answer (single flight). A miss refetches at most every
//! `workflows.object_info_refresh`, so mistyped model names cannot keep an instance busy serving
//! `/object_info`.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use comfy_fleet_actors::InstanceId;
use comfy_fleet_actors::messages::{GetSchedulerSnapshot, InstancePhase};

use crate::comfy::{ClientConfig, ComfyClient};
use crate::fleet::FleetHandle;
use crate::fleet::submit::SubmitFailure;
use crate::workflow::{ObjectInfo, TemplateSet, WorkflowError};

/// Which servers share one set of node definitions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServerIdentity {
    /// The instances comfy-fleet launches: one ComfyUI, one configuration.
    Launched,
    /// An attached server, by URL.
    Attached(String),
}

/// One kept document.
struct Kept {
    info: Arc<ObjectInfo>,
    /// Hash and length of the JSON it was parsed from, to recognise an identical offer.
    fingerprint: (u64, usize),
    /// When it was loaded from its server (offered or fetched).
    loaded_at: Instant,
}

fn fingerprint(json: &[u8]) -> (u64, usize) {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    json.hash(&mut hasher);
    (hasher.finish(), json.len())
}

/// Templates and node definitions.
pub struct Catalog {
    pub templates: TemplateSet,
    /// Each instance's identity (instances not listed count as launched ones).
    identities: HashMap<InstanceId, ServerIdentity>,
    documents: RwLock<BTreeMap<ServerIdentity, Kept>>,
    /// Set when a model changed: the next job fetches the document afresh.
    stale: AtomicBool,
    /// Held by the one request fetching the document; the others wait on it.
    fetching: tokio::sync::Mutex<()>,
    /// Least time between two refetches caused by a job naming a value the document lacks.
    miss_refresh: Duration,
}

impl Catalog {
    /// A catalog for instances of the given identities; a job naming a value the document
    /// lacks refetches it at most every `miss_refresh`.
    pub fn new(
        templates: TemplateSet,
        identities: HashMap<InstanceId, ServerIdentity>,
        miss_refresh: Duration,
    ) -> Self {
        Self {
            templates,
            identities,
            documents: RwLock::new(BTreeMap::new()),
            stale: AtomicBool::new(false),
            fetching: tokio::sync::Mutex::new(()),
            miss_refresh,
        }
    }

    /// The identity of an instance.
    pub fn identity_of(&self, instance: &InstanceId) -> ServerIdentity {
        self.identities
            .get(instance)
            .cloned()
            .unwrap_or(ServerIdentity::Launched)
    }

    /// A readiness check loaded this `/object_info` JSON from an instance of `identity`: keep
    /// it (parsed once; an identical offer is recognised and not parsed again). Returns how
    /// many node classes it lists.
    pub fn offer(&self, identity: ServerIdentity, json: &[u8]) -> Result<usize, WorkflowError> {
        let print = fingerprint(json);
        if let Ok(mut documents) = self.documents.write()
            && let Some(kept) = documents.get_mut(&identity)
            && kept.fingerprint == print
        {
            kept.loaded_at = Instant::now();
            return Ok(kept.info.len());
        }
        let info = Arc::new(ObjectInfo::from_bytes(json)?);
        let classes = info.len();
        self.keep(identity, info, print);
        Ok(classes)
    }

    fn keep(&self, identity: ServerIdentity, info: Arc<ObjectInfo>, fingerprint: (u64, usize)) {
        if let Ok(mut documents) = self.documents.write() {
            documents.insert(
                identity,
                Kept {
                    info,
                    fingerprint,
                    loaded_at: Instant::now(),
                },
            );
        }
    }

    /// A model was installed or removed: the next job fetches the document afresh.
    pub fn mark_stale(&self) {
        self.stale.store(true, Ordering::Release);
    }

    /// The document jobs are checked against, when one is in hand, with when it was loaded.
    fn current(&self) -> Option<(Arc<ObjectInfo>, Instant)> {
        let documents = self.documents.read().ok()?;
        documents
            .values()
            .next()
            .map(|kept| (Arc::clone(&kept.info), kept.loaded_at))
    }

    /// The node definitions jobs are checked against: the document in hand, or fetched from a
    /// ready instance by one request while the others wait (after a model change too).
    pub async fn object_info(&self, fleet: &FleetHandle) -> Result<Arc<ObjectInfo>, SubmitFailure> {
        if !self.stale.load(Ordering::Acquire)
            && let Some((info, _)) = self.current()
        {
            return Ok(info);
        }
        let _turn = self.fetching.lock().await;
        // Whoever held the turn before may have fetched it meanwhile.
        if !self.stale.load(Ordering::Acquire)
            && let Some((info, _)) = self.current()
        {
            return Ok(info);
        }
        self.stale.store(false, Ordering::Release);
        self.fetch(fleet).await
    }

    /// A job named a list value (a model, a file) that `used` lacks: a newer document if one is
    /// in hand or may now be fetched (at once after a model changed, else at most every
    /// `miss_refresh`), else `None`.
    pub async fn after_miss(
        &self,
        fleet: &FleetHandle,
        used: &Arc<ObjectInfo>,
    ) -> Result<Option<Arc<ObjectInfo>>, SubmitFailure> {
        let _turn = self.fetching.lock().await;
        // A model changed: whatever is in hand is out of date.
        if !self.stale.swap(false, Ordering::AcqRel) {
            match self.current() {
                Some((info, _)) if !Arc::ptr_eq(&info, used) => return Ok(Some(info)),
                Some((_, loaded_at)) if loaded_at.elapsed() < self.miss_refresh => {
                    return Ok(None);
                }
                _ => {}
            }
        }
        let fetched = self.fetch(fleet).await?;
        Ok((!Arc::ptr_eq(&fetched, used)).then_some(fetched))
    }

    /// Fetches the document from a ready instance (the caller holds the turn).
    async fn fetch(&self, fleet: &FleetHandle) -> Result<Arc<ObjectInfo>, SubmitFailure> {
        let snapshot = fleet
            .scheduler
            .send(GetSchedulerSnapshot)
            .await
            .map_err(|e| SubmitFailure::Internal(e.to_string()))?;
        let mut ready: Vec<(ServerIdentity, String)> = snapshot
            .instances
            .iter()
            .filter(|i| i.phase == InstancePhase::Ready)
            .filter_map(|i| Some((self.identity_of(&i.id), i.url.clone()?)))
            .collect();
        // The identity jobs are checked against first.
        ready.sort();
        if ready.is_empty() {
            let phases: Vec<String> = snapshot
                .instances
                .iter()
                .map(|i| format!("{} {}", i.id, i.phase.name()))
                .collect();
            return Err(SubmitFailure::NotReady(if phases.is_empty() {
                "no instances".into()
            } else {
                phases.join(", ")
            }));
        }
        let mut last_error = String::new();
        for (identity, url) in ready {
            match fetch_json(&url).await {
                Ok(json) => match self.offer(identity, &json) {
                    Ok(_) => {
                        if let Some((info, _)) = self.current() {
                            return Ok(info);
                        }
                    }
                    Err(e) => last_error = format!("{url}: {e}"),
                },
                Err(e) => last_error = format!("{url}: {e}"),
            }
        }
        Err(SubmitFailure::NotReady(last_error))
    }
}

/// `GET /object_info` of the server at `url`, as JSON bytes.
async fn fetch_json(url: &str) -> Result<Bytes, crate::comfy::ComfyError> {
    ComfyClient::new(url, ClientConfig::default())?
        .object_info_json()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
        Catalog::new(
            TemplateSet::load(&dir).unwrap(),
            HashMap::new(),
            Duration::from_secs(10),
        )
    }

    fn document(checkpoint: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "CheckpointLoaderSimple": {"input": {"required": {"ckpt_name": [[checkpoint]]}}},
            "SaveImage": {"input": {"required": {}}, "output_node": true},
        }))
        .unwrap()
    }

    #[test]
    fn an_identical_offer_keeps_the_parsed_copy_and_a_different_one_replaces_it() {
        let catalog = catalog();
        assert_eq!(
            catalog
                .offer(ServerIdentity::Launched, &document("a"))
                .unwrap(),
            2
        );
        let (first, _) = catalog.current().unwrap();
        assert_eq!(
            catalog
                .offer(ServerIdentity::Launched, &document("a"))
                .unwrap(),
            2
        );
        let (again, _) = catalog.current().unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "an identical offer is not parsed again"
        );
        catalog
            .offer(ServerIdentity::Launched, &document("b"))
            .unwrap();
        let (changed, _) = catalog.current().unwrap();
        assert!(
            !Arc::ptr_eq(&first, &changed),
            "a changed document replaces the kept one"
        );
        assert!(catalog.offer(ServerIdentity::Launched, b"[1]").is_err());
    }

    #[test]
    fn jobs_are_checked_against_the_launched_instances_document() {
        let catalog = catalog();
        catalog
            .offer(
                ServerIdentity::Attached("http://b".into()),
                &document("remote"),
            )
            .unwrap();
        catalog
            .offer(ServerIdentity::Launched, &document("local"))
            .unwrap();
        let (info, _) = catalog.current().unwrap();
        let choices = info
            .node("CheckpointLoaderSimple")
            .and_then(|n| n.input("ckpt_name"))
            .and_then(|i| i.choices().cloned())
            .unwrap();
        assert_eq!(choices, vec![serde_json::json!("local")]);
    }
}
