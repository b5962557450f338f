//! [`RecordedUploads`]: a [`Backend`] of a managed instance that records every job input it
//! uploads as an ephemeral file of that instance before sending it.
//!
//! ComfyUI writes uploads into the instance's own `input/` folder, which comfy-fleet created.
//! Recording the file in the instance's ephemeral manifest first means it is deleted even if the
//! job's end is never seen: when the instance stops, and by the start-up sweep if comfy-fleet
//! itself was killed. Normally it is deleted, with the job's folder, as soon as the attempt that
//! uploaded it ends (by the [`crate::fleet::output_collector::OutputCollector`] around it).

use std::path::PathBuf;
use std::rc::Rc;

use comfy_fleet_actors::job::JobOutput;
use comfy_fleet_actors::ports::{
    Backend, BackendError, EventSink, InputFile, PromptRun, PromptStatus, RunResult,
};
use futures_util::FutureExt as _;
use futures_util::future::LocalBoxFuture;
use uuid::Uuid;

use crate::launch::{InstanceFolders, checked_relative_path};

/// Wraps the backend of one managed instance whose folders are `folders`.
pub struct RecordedUploads {
    inner: Rc<dyn Backend>,
    folders: InstanceFolders,
}

impl RecordedUploads {
    pub fn new(inner: Rc<dyn Backend>, folders: InstanceFolders) -> Self {
        Self { inner, folders }
    }

    /// Where ComfyUI puts an upload named `subfolder/name` (`subfolder` may be empty).
    fn input_path(&self, subfolder: &str, name: &str) -> Result<PathBuf, String> {
        let mut path = self.folders.input();
        if !subfolder.is_empty() {
            path.push(checked_relative_path(subfolder, true).map_err(|e| e.to_string())?);
        }
        path.push(checked_relative_path(name, false).map_err(|e| e.to_string())?);
        Ok(path)
    }

    fn record(&self, subfolder: &str, name: &str) -> Result<(), String> {
        let path = self.input_path(subfolder, name)?;
        let manifest = self.folders.ephemeral();
        manifest.record(&path).map_err(|e| {
            format!(
                "cannot record {} in {}: {e}",
                path.display(),
                manifest.path().display()
            )
        })
    }
}

impl Backend for RecordedUploads {
    fn url(&self) -> &str {
        self.inner.url()
    }

    fn ping(&self) -> LocalBoxFuture<'_, Result<(), BackendError>> {
        self.inner.ping()
    }

    fn object_info(&self) -> LocalBoxFuture<'_, Result<usize, BackendError>> {
        self.inner.object_info()
    }

    fn upload(&self, input: InputFile) -> LocalBoxFuture<'_, Result<String, BackendError>> {
        async move {
            if let Err(reason) = self.record(&input.subfolder, &input.name) {
                // Not sent: a file nobody recorded could outlive the instance.
                return Err(BackendError::Disconnected(format!(
                    "the upload of {} was not sent: {reason}",
                    input.name
                )));
            }
            let wanted = self.input_path(&input.subfolder, &input.name);
            let stored = self.inner.upload(input).await?;
            // ComfyUI renames an upload when it must not overwrite; record the name it chose.
            let (subfolder, name) = stored.rsplit_once('/').unwrap_or(("", stored.as_str()));
            if self.input_path(subfolder, name) != wanted
                && let Err(reason) = self.record(subfolder, name)
            {
                tracing::warn!(
                    url = self.url(),
                    "upload {stored} may outlive its instance: {reason}"
                );
            }
            Ok(stored)
        }
        .boxed_local()
    }

    fn run(
        &self,
        run: PromptRun,
        sink: EventSink,
    ) -> LocalBoxFuture<'_, Result<RunResult, BackendError>> {
        self.inner.run(run, sink)
    }

    fn prompt_status(
        &self,
        prompt_id: Uuid,
    ) -> LocalBoxFuture<'_, Result<PromptStatus, BackendError>> {
        self.inner.prompt_status(prompt_id)
    }

    fn cancel(&self, prompt_id: Uuid) -> LocalBoxFuture<'_, Result<(), BackendError>> {
        self.inner.cancel(prompt_id)
    }

    fn free(
        &self,
        unload_models: bool,
        free_memory: bool,
    ) -> LocalBoxFuture<'_, Result<(), BackendError>> {
        self.inner.free(unload_models, free_memory)
    }

    fn download(&self, output: &JobOutput) -> LocalBoxFuture<'_, Result<Vec<u8>, BackendError>> {
        self.inner.download(output)
    }
}
