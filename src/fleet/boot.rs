//! Boot and shutdown of the whole fleet.
//!
//! [`preflight`] checks everything that can be known before anything starts (the config's
//! values, the GPUs, the templates, the instance plan): `check-config` runs it too, so the two
//! agree. Boot then sweeps what a crashed previous run left behind, starts the scheduler, rate
//! limiter, event hub, metrics reporter and GPU monitor, then one instance actor per planned
//! instance. Shutdown is the reverse and is awaited: the scheduler
//! drains (running jobs may finish until the deadline), then every instance stops its process
//! group, so nothing outlives the fleet.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use comfy_fleet_actors::gpu_monitor::GpuMonitor;
use comfy_fleet_actors::instance::{BackendFactory, Instance, InstanceMode, InstanceSetup};
use comfy_fleet_actors::messages::{InstanceHandle, RegisterInstance, Shutdown};
use comfy_fleet_actors::ports::{Backend, LaunchSpec, Launcher};
use comfy_fleet_actors::rate_limit::RateLimiter;
use comfy_fleet_actors::scheduling::{JobTable, Scheduler};
use futures_util::future::join_all;

use crate::comfy::backend::ObjectInfoSink;
use crate::comfy::{ClientConfig, ComfyBackend, ComfyClient, RunOptions};
use crate::config::{BackendKind, Config, ConfigError};
use crate::fleet::FleetHandle;
use crate::fleet::catalog::{Catalog, ServerIdentity};
use crate::fleet::demo_backend;
use crate::fleet::events::JobEventHub;
use crate::fleet::job_metrics::JobMetrics;
use crate::fleet::metrics::{GpuView, MetricsReporter};
use crate::fleet::model_changes::ModelWatch;
use crate::fleet::output_collector::{OutputCollector, ServerFolders};
use crate::fleet::output_store::{OutputStore, StoreError};
use crate::fleet::plan::{InstancePlan, PlanKind, plan_instances};
use crate::fleet::recorded_uploads::RecordedUploads;
use crate::fleet::watch::PhaseBoard;
use crate::gpu::{Discovery, discover};
use crate::launch::{InstanceFolders, ProcessLauncher, StateLock, StateLockError, sweep_stale};
use crate::workflow::{TemplateSet, WorkflowError};

/// Why the fleet could not start.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    StateLock(#[from] StateLockError),
    #[error("cannot use the state folder {path}: {reason}")]
    StateDir { path: String, reason: String },
    #[error(transparent)]
    Discovery(#[from] crate::gpu::DiscoveryError),
    #[error("cannot load the templates: {0}")]
    Templates(#[from] WorkflowError),
    #[error("invalid setting: {0}")]
    Setting(String),
    #[error("nothing to run: no GPU, gpus.cpu_instances = 0 and no [[remote]]; set one of them")]
    NoInstances,
}

/// What a config sets up, checked before anything starts.
pub struct Preflight {
    pub discovery: Discovery,
    pub templates: TemplateSet,
    pub plans: Vec<InstancePlan>,
}

/// Every check that can be made before anything starts: the config's values, GPU discovery,
/// the templates and the instance plan (attached URLs included). `check-config` runs exactly
/// this; `serve` and `run` run it first.
pub fn preflight(config: &Config) -> Result<Preflight, BootError> {
    config.validate()?;
    let declared = config.gpus.declared_gpus();
    let discovery = discover(
        config.gpus.discovery,
        &declared,
        config.gpus.nvml_library.as_deref(),
    )?;
    let templates = TemplateSet::load(&config.workflows.dir)?;
    let plans = plan_instances(config, &discovery.gpus);
    if plans.is_empty() {
        return Err(BootError::NoInstances);
    }
    for plan in &plans {
        if let PlanKind::Attached { url } = &plan.kind {
            ComfyClient::new(url, ClientConfig::default())
                .map_err(|e| BootError::Setting(format!("remote `{}`: {e}", plan.id)))?;
        }
    }
    Ok(Preflight {
        discovery,
        templates,
        plans,
    })
}

/// A running fleet.
pub struct Fleet {
    pub handle: FleetHandle,
    pub instances: Vec<(InstancePlan, Addr<Instance>)>,
    _monitor: Addr<GpuMonitor>,
    /// Held while the fleet runs launched instances: one comfy-fleet per state folder.
    _state_lock: Option<StateLock>,
}

impl Fleet {
    /// Starts everything after a successful [`preflight`]. Must run inside an actix system.
    pub async fn boot(config: Config, preflight: Preflight) -> Result<Self, BootError> {
        let Preflight {
            discovery,
            templates,
            plans,
        } = preflight;
        let config = Arc::new(config);
        let demo = config.comfyui.backend_kind() == BackendKind::Demo;
        let state_root = config.comfyui.state_dir.clone();
        let state_err = |e: &dyn std::fmt::Display| BootError::StateDir {
            path: state_root.display().to_string(),
            reason: e.to_string(),
        };
        // The state folder holds the output store in every mode, and launched instances' own
        // folders: one comfy-fleet per folder.
        let managed = plans
            .iter()
            .any(|p| matches!(p.kind, PlanKind::Managed { .. }));
        let library = config.comfyui.library().map_err(|e| state_err(&e))?;
        std::fs::create_dir_all(&state_root).map_err(|e| state_err(&e))?;
        let state_lock = Some(StateLock::acquire(&state_root)?);
        let mut launcher: Option<Rc<dyn Launcher>> = None;
        if managed {
            match sweep_stale(&state_root) {
                Ok(report) => tracing::info!(
                    state_dir = %state_root.display(),
                    killed_groups = report.killed.len(),
                    ephemeral_removed = report.ephemeral_removed,
                    records_removed = report.records_removed,
                    "start-up sweep done"
                ),
                Err(e) => {
                    tracing::warn!(state_dir = %state_root.display(), "start-up sweep incomplete: {e}")
                }
            }
            // Ephemeral models of a run that did not stop cleanly.
            match library.clean_ephemeral() {
                Ok(report) if !report.removed.is_empty() => tracing::info!(
                    removed = report.removed.len(),
                    "deleted ephemeral models left by a previous comfy-fleet"
                ),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("cannot delete the ephemeral models of a previous run: {e}")
                }
            }
            library.prepare().map_err(|e| state_err(&e))?;
            tracing::info!(
                dir = %library.dir().display(),
                read_only = library.read_only(),
                files = library.list(None).len(),
                "model library"
            );
            launcher = Some(Rc::new(
                ProcessLauncher::new(&state_root)
                    .map_err(|e| state_err(&e))?
                    .with_models_dir(library.dir().to_path_buf()),
            ));
        }

        tracing::info!(source = %discovery.source, gpus = discovery.gpus.len(), "GPUs found");
        tracing::info!(dir = %config.workflows.dir.display(), templates = ?templates.names(), "templates loaded");

        let phases = PhaseBoard::default();
        let scheduler = Scheduler::new(config.scheduler.clone()).observe_phases(phases.clone());
        let table = scheduler.table();
        let scheduler = scheduler.start();
        let outputs = open_output_store(&config, &table).map_err(|e| state_err(&e))?;
        let limiter = RateLimiter::new(config.effective_limits()).start();
        let job_metrics = JobMetrics::new();
        let events = JobEventHub::new(
            config.scheduler.job_retention,
            Some(limiter.clone().recipient()),
            job_metrics.clone(),
        )
        .start();
        let gpus = GpuView::default();
        gpus.set(discovery.gpus.clone());
        let reporter = MetricsReporter::new(
            scheduler.clone(),
            gpus.clone(),
            config.logging.metrics_interval,
            demo,
        )
        .start();
        let monitor = GpuMonitor::start(
            discovery.probe,
            config.gpus.sample_interval,
            vec![scheduler.clone().recipient(), reporter.recipient()],
        );

        if demo {
            tracing::warn!(
                "DEMO BACKEND: instances are fake-comfyui (no GPU work, real protocol, real PNGs); \
                 set comfyui.path to a ComfyUI checkout to run the real thing"
            );
        }
        let instance_config = comfy_fleet_actors::instance::InstanceConfig {
            warmup_prompt: config.lifecycle.warmup.then(warmup_prompt),
            ..config.lifecycle.clone()
        };
        let (mut command, working_dir) = config.comfyui.launch_command();
        if demo {
            // The demo backend lists the templates' model files as installed.
            command.extend(demo_backend::model_args(&templates));
        }
        let identities = plans
            .iter()
            .map(|plan| {
                let identity = match &plan.kind {
                    PlanKind::Managed { .. } => ServerIdentity::Launched,
                    PlanKind::Attached { url } => ServerIdentity::Attached(url.clone()),
                };
                (plan.id.clone(), identity)
            })
            .collect();
        let catalog = Arc::new(Catalog::new(
            templates,
            identities,
            config.workflows.object_info_refresh,
        ));
        let mut instances = Vec::new();
        for plan in plans {
            let mut folders = None;
            let server_folders;
            let mode = match &plan.kind {
                PlanKind::Managed { gpu, port } => InstanceMode::Managed {
                    spec: {
                        let state_dir = state_root.join(&plan.id.0);
                        let own = InstanceFolders::new(&state_dir)
                            .map_err(|e| state_err(&e))?
                            .with_models_dir(library.dir().to_path_buf());
                        server_folders = Some(ServerFolders {
                            input: own.input(),
                            output: own.output(),
                            temp: own.temp(),
                        });
                        folders = Some(own);
                        LaunchSpec {
                            instance: plan.id.clone(),
                            command: command.clone(),
                            working_dir: working_dir.clone(),
                            extra_args: config.comfyui.extra_args.clone(),
                            env: config
                                .comfyui
                                .env
                                .iter()
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                            gpu: gpu.clone(),
                            listen: config.comfyui.listen.to_string(),
                            port: *port,
                            state_dir,
                        }
                    },
                    launcher: launcher.clone().ok_or_else(|| {
                        BootError::Setting(format!("instance {}: no launcher", plan.id))
                    })?,
                },
                PlanKind::Attached { url } => {
                    server_folders = config
                        .remote
                        .iter()
                        .find(|r| r.name == plan.id.0)
                        .and_then(|r| r.base_directory.as_deref())
                        .map(ServerFolders::below);
                    InstanceMode::Attach { url: url.clone() }
                }
            };
            let instance = Instance::new(InstanceSetup {
                id: plan.id.clone(),
                gpu: plan.gpu().cloned(),
                mode,
                config: instance_config.clone(),
                backend_factory: backend_factory(
                    folders,
                    Arc::clone(&catalog),
                    catalog.identity_of(&plan.id),
                    OutputCollection {
                        store: Arc::clone(&outputs),
                        folders: server_folders,
                    },
                ),
                reports: scheduler.clone().recipient(),
            })
            .map_err(|e| BootError::Setting(e.to_string()))?
            .start();
            scheduler.do_send(RegisterInstance(InstanceHandle {
                id: plan.id.clone(),
                gpu: plan.gpu().cloned(),
                run: instance.clone().recipient(),
                cancel: instance.clone().recipient(),
                operate: instance.clone().recipient(),
            }));
            instances.push((plan, instance));
        }

        let handle = FleetHandle {
            config: Arc::clone(&config),
            scheduler,
            limiter,
            events,
            table,
            catalog,
            outputs,
            gpus,
            phases,
            gpu_source: discovery.source,
            job_metrics,
            demo,
            model_watch: ModelWatch::new(library.fingerprint()),
            library,
        };
        Ok(Self {
            handle,
            instances,
            _monitor: monitor,
            _state_lock: state_lock,
        })
    }

    /// Stops everything: the queue drains until `deadline` (running jobs may finish), then every
    /// instance stops its processes. Returns once all of them have exited.
    pub async fn shutdown(&self, deadline: Duration) {
        self.drain_jobs(deadline).await;
        self.stop_instances(self.handle.config.lifecycle.stop_grace)
            .await;
    }

    /// The first half of [`Fleet::shutdown`]: no new jobs, running ones may finish until
    /// `deadline` (then they are failed). Returns once no job is left running; the instances
    /// still run (their outputs can still be fetched).
    pub async fn drain_jobs(&self, deadline: Duration) {
        tracing::info!(deadline = %humantime::format_duration(deadline), "fleet shutting down");
        if let Err(e) = self.handle.scheduler.send(Shutdown { deadline }).await {
            tracing::warn!("scheduler did not drain: {e}");
        }
    }

    /// Deletes the model files added as ephemeral, once no instance uses them any more.
    fn clean_ephemeral_models(&self) {
        match self.handle.library.clean_ephemeral() {
            Ok(report) => {
                if !report.removed.is_empty() {
                    tracing::info!(
                        removed = report.removed.len(),
                        "deleted the ephemeral models"
                    );
                }
                for (file, why) in report.failed {
                    tracing::warn!(
                        "cannot delete the ephemeral model {}: {why}",
                        file.display()
                    );
                }
            }
            Err(e) => tracing::warn!("cannot delete the ephemeral models: {e}"),
        }
    }

    /// Stops at once: every queued and running job is failed (its submitter is told the fleet
    /// shut down), then every instance stops without waiting.
    pub async fn stop_now(&self) {
        if let Err(e) = self
            .handle
            .scheduler
            .send(Shutdown {
                deadline: Duration::ZERO,
            })
            .await
        {
            tracing::warn!("scheduler did not stop: {e}");
        }
        self.stop_instances(Duration::ZERO).await;
        self.clean_ephemeral_models();
    }

    /// Stops every instance: each has `deadline` to finish its jobs (then they are cancelled),
    /// then its process group gets SIGTERM and, after `lifecycle.stop_grace`, SIGKILL. Returns
    /// once every process has exited and the ephemeral models are deleted.
    pub async fn stop_instances(&self, deadline: Duration) {
        let stops = self.instances.iter().map(|(plan, addr)| {
            let id = plan.id.clone();
            let stop = addr.send(Shutdown { deadline });
            async move {
                if let Err(e) = stop.await {
                    tracing::warn!(instance = %id, "instance did not confirm its stop: {e}");
                }
            }
        });
        join_all(stops).await;
        tracing::info!("fleet stopped: every instance has exited");
        self.clean_ephemeral_models();
    }
}

/// Opens the output store in the state folder (sweeping a previous run's files), and expires
/// its files as time passes.
fn open_output_store(config: &Config, table: &JobTable) -> Result<Arc<OutputStore>, StoreError> {
    let (store, swept) = OutputStore::open(
        &config.comfyui.state_dir,
        config.outputs.retention,
        config.outputs.max_size_mb * 1024 * 1024,
    )?;
    tracing::info!(
        dir = %store.root().display(),
        swept_jobs = swept.jobs,
        swept_bytes = swept.bytes,
        "output store open"
    );
    let store = Arc::new(store.with_records(table.clone()));
    let every =
        (config.outputs.retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let expiring = Arc::downgrade(&store);
    actix_rt::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        loop {
            ticks.tick().await;
            let Some(store) = expiring.upgrade() else {
                break;
            };
            store.expire(std::time::Instant::now());
        }
    });
    Ok(store)
}

/// Where an instance's finished jobs' outputs go, and its folders when they are known.
struct OutputCollection {
    store: Arc<OutputStore>,
    folders: Option<ServerFolders>,
}

/// Creates the connector for an instance's URL: its readiness checks hand `/object_info` to the
/// catalog (as a server of `identity`), a managed instance's (`folders` given) records the job
/// inputs it uploads as ephemeral files, and every job's outputs are collected into the store.
fn backend_factory(
    folders: Option<InstanceFolders>,
    catalog: Arc<Catalog>,
    identity: ServerIdentity,
    collection: OutputCollection,
) -> BackendFactory {
    Box::new(move |url: &str| -> Rc<dyn Backend> {
        let client = match ComfyClient::new(url, ClientConfig::default()) {
            Ok(client) => client,
            Err(e) => {
                // Remote URLs are checked at boot and launched ones are ours, so this is a bug;
                // the instance then sees an unreachable server instead of the program crashing.
                tracing::error!(url, "cannot build a client for this URL: {e}");
                match ComfyClient::new("http://127.0.0.1:9", ClientConfig::default()) {
                    Ok(client) => client,
                    Err(_) => unreachable!("a literal loopback URL always parses"),
                }
            }
        };
        let catalog = Arc::clone(&catalog);
        let identity = identity.clone();
        let sink: ObjectInfoSink = Box::new(move |json: &[u8]| {
            catalog
                .offer(identity.clone(), json)
                .map_err(|e| e.to_string())
        });
        let backend: Rc<dyn Backend> =
            Rc::new(ComfyBackend::new(client, RunOptions::default()).with_object_info_sink(sink));
        let backend: Rc<dyn Backend> = match &folders {
            Some(folders) => Rc::new(RecordedUploads::new(backend, folders.clone())),
            None => backend,
        };
        Rc::new(OutputCollector::new(
            backend,
            Arc::clone(&collection.store),
            collection.folders.clone(),
        ))
    })
}

/// A tiny prompt any ComfyUI runs without models: an 8×8 image, previewed.
fn warmup_prompt() -> serde_json::Value {
    serde_json::json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
    })
}
