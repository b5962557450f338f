//! The instance's conversations with its server, as futures the actor spawns: the readiness
//! probe, a job's uploads and run, and control calls bounded by a timeout. They decide nothing:
//! their outcome goes back to the policies.

use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix::clock::{sleep, timeout};
use uuid::Uuid;

use crate::ids::{InstanceId, JobId};
use crate::instance::jobs::JobActivity;
use crate::ports::{Backend, BackendError, EventSink, InputFile, PromptRun, RunResult};

/// A control call (ping, prompt status, interrupt) that must answer within `limit`, reduced to
/// its error text.
pub async fn bounded<T>(
    limit: Duration,
    call: impl Future<Output = Result<T, BackendError>>,
) -> Result<T, String> {
    match timeout(limit, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!(
            "no answer within {}",
            humantime::format_duration(limit)
        )),
    }
}

/// How the readiness probe goes.
pub struct ProbeSettings {
    /// Pause between tries.
    pub poll: Duration,
    /// Limit of each ping.
    pub control: Duration,
    /// A prompt to run once the server answers, before it counts as ready.
    pub warmup: Option<serde_json::Value>,
}

/// Waits until the server answers pings and has loaded its node classes, then runs the warm-up
/// prompt if any. Unbounded: the lifecycle's readiness timeout ends it.
pub async fn probe_readiness(
    backend: Rc<dyn Backend>,
    instance: InstanceId,
    settings: ProbeSettings,
) -> Result<(), String> {
    let ProbeSettings {
        poll,
        control,
        warmup,
    } = settings;
    wait_until_ok(poll, || bounded(control, backend.ping())).await;
    tracing::debug!(%instance, "HTTP up; loading object_info");
    wait_until_ok(poll, || backend.object_info()).await;
    if let Some(prompt) = warmup {
        tracing::info!(%instance, "running the warm-up prompt");
        let run = PromptRun {
            job: None,
            prompt_id: Uuid::new_v4(),
            prompt,
            extra_data: serde_json::json!({}),
        };
        backend
            .run(run, Box::new(|_| {}))
            .await
            .map_err(|e| format!("the warm-up prompt failed: {e}"))?;
    }
    Ok(())
}

/// Uploads a job's inputs, then runs its prompt, stamping `activity` at every step (the
/// watchdog measures silence from it) and handing every execution event to `events`.
pub async fn upload_and_run(
    backend: Rc<dyn Backend>,
    instance: InstanceId,
    job: JobId,
    run: PromptRun,
    inputs: Vec<InputFile>,
    activity: Rc<JobActivity>,
    mut events: EventSink,
) -> Result<RunResult, BackendError> {
    // Released when this attempt ends, including when its future is dropped (cancel, crash).
    let _release = ReleaseInputs {
        backend: Rc::clone(&backend),
        job,
        inputs: inputs.clone(),
    };
    for input in inputs {
        let wanted = if input.subfolder.is_empty() {
            input.name.clone()
        } else {
            format!("{}/{}", input.subfolder, input.name)
        };
        let stored = backend.upload(input).await?;
        if stored != wanted {
            tracing::warn!(%instance, %job, %wanted, %stored, "ComfyUI stored the upload under another name");
        }
        activity.touch(Instant::now());
    }
    activity.mark_submitted();
    activity.touch(Instant::now());
    let sink = Box::new(move |event| {
        activity.touch(Instant::now());
        events(event);
    });
    backend.run(run, sink).await
}

/// Tells the backend, when dropped, that an attempt's uploads are no longer needed.
struct ReleaseInputs {
    backend: Rc<dyn Backend>,
    job: JobId,
    inputs: Vec<InputFile>,
}

impl Drop for ReleaseInputs {
    fn drop(&mut self) {
        if !self.inputs.is_empty() {
            self.backend.release_inputs(self.job, &self.inputs);
        }
    }
}

/// Calls `attempt` until it succeeds, pausing `poll` between tries (bounded by the caller).
async fn wait_until_ok<T, E, F, Fut>(poll: Duration, mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    while attempt().await.is_err() {
        sleep(poll).await;
    }
}
