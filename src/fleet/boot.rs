//! Boot and shutdown of the whole fleet.
//!
//! Boot: sweep what a crashed previous run left behind, discover the GPUs, load the templates,
//! start the scheduler, rate limiter, event hub, metrics reporter and GPU monitor, then one
//! instance actor per planned instance. Shutdown is the reverse and is awaited: the scheduler
//! drains (running jobs may finish until the deadline), then every instance stops its process
//! group, so nothing outlives the fleet.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use comfy_fleet_actors::gpu_monitor::GpuMonitor;
use comfy_fleet_actors::instance::{
    BackendFactory, BackoffConfig, Instance, InstanceConfig, InstanceMode, InstanceSetup,
    RestartIntensity,
};
use comfy_fleet_actors::messages::{InstanceHandle, RegisterInstance, Shutdown};
use comfy_fleet_actors::ports::{Backend, LaunchSpec, Launcher};
use comfy_fleet_actors::rate_limit::{RateLimitConfig, RateLimiter, WindowLimit};
use comfy_fleet_actors::scheduling::{Scheduler, SchedulerConfig};
use comfy_fleet_actors::{InstanceId, UserId};
use futures_util::future::join_all;

use crate::comfy::{ClientConfig, ComfyBackend, ComfyClient, RunOptions};
use crate::config::{BackendKind, Config};
use crate::fleet::FleetHandle;
use crate::fleet::catalog::Catalog;
use crate::fleet::events::JobEventHub;
use crate::fleet::job_metrics::JobMetrics;
use crate::fleet::metrics::{GpuView, MetricsReporter};
use crate::fleet::plan::{InstancePlan, PlanKind, plan_instances};
use crate::fleet::recorded_uploads::RecordedUploads;
use crate::fleet::watch::{InstanceWatch, PhaseBoard};
use crate::gpu::{GpuSource, discover};
use crate::launch::{InstanceFolders, ProcessLauncher, sweep_stale};
use crate::workflow::{TemplateSet, WorkflowError};

/// Why the fleet could not start.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
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

/// A running fleet.
pub struct Fleet {
    pub handle: FleetHandle,
    pub instances: Vec<(InstancePlan, Addr<Instance>)>,
    /// Phases of every instance, updated as they report.
    pub phases: PhaseBoard,
    pub gpu_source: GpuSource,
    _monitor: Addr<GpuMonitor>,
}

impl Fleet {
    /// Starts everything. Must run inside an actix system.
    pub async fn boot(config: Config) -> Result<Self, BootError> {
        let config = Arc::new(config);
        let demo = config.comfyui.backend_kind() == BackendKind::Demo;
        let state_root = config.comfyui.state_dir.clone();
        let state_err = |e: &dyn std::fmt::Display| BootError::StateDir {
            path: state_root.display().to_string(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(&state_root).map_err(|e| state_err(&e))?;
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

        let declared = config.gpus.declared_gpus();
        let discovery = discover(
            config.gpus.discovery,
            &declared,
            config.gpus.nvml_library.as_deref(),
        )?;
        tracing::info!(source = %discovery.source, gpus = discovery.gpus.len(), "GPUs found");

        let templates = TemplateSet::load(&config.workflows.dir)?;
        tracing::info!(dir = %config.workflows.dir.display(), templates = ?templates.names(), "templates loaded");

        let scheduler = Scheduler::new(scheduler_config(&config));
        let table = scheduler.table();
        let scheduler = scheduler.start();
        let limiter = RateLimiter::new(rate_limit_config(&config)).start();
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
        let phases = PhaseBoard::default();
        let watch = InstanceWatch::new(
            scheduler.clone().recipient(),
            scheduler.clone().recipient(),
            phases.clone(),
        )
        .start();

        let plans = plan_instances(&config, &discovery.gpus);
        for plan in &plans {
            if let PlanKind::Attached { url } = &plan.kind {
                ComfyClient::new(url, ClientConfig::default())
                    .map_err(|e| BootError::Setting(format!("remote `{}`: {e}", plan.id)))?;
            }
        }
        if plans.is_empty() {
            return Err(BootError::NoInstances);
        }
        if demo {
            tracing::warn!(
                "DEMO BACKEND: instances are fake-comfyui (no GPU work, real protocol, real PNGs); \
                 set comfyui.path to a ComfyUI checkout to run the real thing"
            );
        }
        let launcher: Rc<dyn Launcher> =
            Rc::new(ProcessLauncher::new(&state_root).map_err(|e| state_err(&e))?);
        let instance_config = instance_config(&config);
        instance_config
            .validate()
            .map_err(|e| BootError::Setting(e.to_string()))?;
        let (command, working_dir) = config.comfyui.launch_command();
        let mut instances = Vec::new();
        for plan in plans {
            let mut folders = None;
            let mode = match &plan.kind {
                PlanKind::Managed { gpu, port } => InstanceMode::Managed {
                    spec: {
                        let state_dir = state_root.join(&plan.id.0);
                        folders =
                            Some(InstanceFolders::new(&state_dir).map_err(|e| state_err(&e))?);
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
                    launcher: Rc::clone(&launcher),
                },
                PlanKind::Attached { url } => InstanceMode::Attach { url: url.clone() },
            };
            let instance = Instance::new(InstanceSetup {
                id: plan.id.clone(),
                gpu: plan.gpu().cloned(),
                mode,
                config: instance_config.clone(),
                backend_factory: backend_factory(folders),
                updates: watch.clone().recipient(),
                progress: scheduler.clone().recipient(),
                // Through the watch, so reports stay in order with the phase updates.
                finished: watch.clone().recipient(),
            })
            .map_err(|e| BootError::Setting(e.to_string()))?
            .start();
            scheduler.do_send(RegisterInstance(InstanceHandle {
                id: plan.id.clone(),
                gpu: plan.gpu().cloned(),
                run: instance.clone().recipient(),
                cancel: instance.clone().recipient(),
            }));
            instances.push((plan, instance));
        }

        let handle = FleetHandle {
            config: Arc::clone(&config),
            scheduler,
            limiter,
            events,
            table,
            catalog: Arc::new(Catalog::new(templates)),
            gpus,
            job_metrics,
            demo,
        };
        Ok(Self {
            handle,
            instances,
            phases,
            gpu_source: discovery.source,
            _monitor: monitor,
        })
    }

    /// The ids of the instances.
    pub fn instance_ids(&self) -> Vec<InstanceId> {
        self.instances.iter().map(|(p, _)| p.id.clone()).collect()
    }

    /// Stops everything: the queue drains until `deadline` (running jobs may finish), then every
    /// instance stops its processes. Returns once all of them have exited.
    pub async fn shutdown(&self, deadline: Duration) {
        tracing::info!(deadline = %humantime::format_duration(deadline), "fleet shutting down");
        if let Err(e) = self.handle.scheduler.send(Shutdown { deadline }).await {
            tracing::warn!("scheduler did not drain: {e}");
        }
        self.stop_instances(self.handle.config.lifecycle.stop_grace)
            .await;
    }

    /// Stops every instance: each has `deadline` to finish its jobs (then they are cancelled),
    /// then its process group gets SIGTERM and, after `lifecycle.stop_grace`, SIGKILL. Returns
    /// once every process has exited.
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
    }
}

/// Creates the connector for an instance's URL; a managed instance's (`folders` given) records
/// the job inputs it uploads as ephemeral files.
fn backend_factory(folders: Option<InstanceFolders>) -> BackendFactory {
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
        let backend: Rc<dyn Backend> = Rc::new(ComfyBackend::new(client, RunOptions::default()));
        match &folders {
            Some(folders) => Rc::new(RecordedUploads::new(backend, folders.clone())),
            None => backend,
        }
    })
}

fn scheduler_config(config: &Config) -> SchedulerConfig {
    let s = &config.scheduler;
    SchedulerConfig {
        queue_capacity: s.queue_capacity,
        pipeline_depth: s.pipeline_depth,
        max_retries: s.max_retries,
        vram_headroom_bytes: (s.vram_headroom_mb > 0).then_some(s.vram_headroom_mb * 1024 * 1024),
        job_retention: s.job_retention,
        loaded_models_per_instance: s.loaded_models_per_instance,
        affinity_lookahead: s.affinity_lookahead,
        affinity_rounds_ahead: s.affinity_rounds_ahead,
        affinity_wait: s.affinity_wait,
        max_overtakes: s.max_overtakes,
        position_updates_first: s.position_updates_first,
        position_update_change: s.position_update_change,
        eta_update_change: s.eta_update_change,
        ..SchedulerConfig::default()
    }
}

fn rate_limit_config(config: &Config) -> RateLimitConfig {
    let l = &config.limits;
    RateLimitConfig {
        per_user: vec![WindowLimit::new(l.user_jobs, l.user_window)],
        global: vec![WindowLimit::new(l.global_jobs, l.global_window)],
        max_concurrent_per_user: (l.user_concurrent > 0).then_some(l.user_concurrent),
        exempt_users: l
            .exempt_users
            .iter()
            .map(|u| UserId::new(u.clone()))
            .collect(),
        exempt_roles: l.exempt_roles.clone(),
        ..RateLimitConfig::default()
    }
}

/// The lifecycle settings as the instance actor takes them.
pub fn instance_config(config: &Config) -> InstanceConfig {
    let l = &config.lifecycle;
    InstanceConfig {
        readiness_timeout: l.readiness_timeout,
        health_interval: l.health_interval,
        health_failures: l.health_failures,
        warmup_prompt: l.warmup.then(warmup_prompt),
        job_silence: l.job_silence_timeout,
        stop_grace: l.stop_grace,
        backoff: BackoffConfig {
            initial: l.restart_backoff_initial,
            max: l.restart_backoff_max,
            multiplier: l.restart_backoff_multiplier,
            jitter: l.restart_jitter,
        },
        restart_intensity: RestartIntensity {
            // `crash_loop_max_crashes` crashes quarantine: the ones before it were restarted.
            max_restarts: l.crash_loop_max_crashes.saturating_sub(1),
            period: l.crash_loop_window,
            cooldown: l.quarantine_cooldown,
        },
        ..InstanceConfig::default()
    }
}

/// A tiny prompt any ComfyUI runs without models: an 8×8 image, previewed.
fn warmup_prompt() -> serde_json::Value {
    serde_json::json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
    })
}
