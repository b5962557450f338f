//! [`OutputCollector`]: the [`Backend`] of an instance that, when a job's prompt has run, moves
//! the job's output files into the fleet's [`OutputStore`] and clears the instance of what the
//! job left: its outputs and the images uploaded for it.
//!
//! Collection happens before the run's result reaches the scheduler, so by the time a client
//! hears `done` the files are in the store. When the server's folders are known (a launched
//! instance's own, or an attached server's `remote.base_directory`) a file is moved from there;
//! otherwise it is downloaded (`/view`) and stays on the server, since ComfyUI has no API to
//! delete files. A file that cannot be collected stays on the instance and is served from
//! there.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use comfy_fleet_actors::JobId;
use comfy_fleet_actors::job::JobOutput;
use comfy_fleet_actors::ports::{
    Backend, BackendError, EventSink, InputFile, PromptRun, PromptStatus, RunResult,
};
use futures_util::FutureExt as _;
use futures_util::future::LocalBoxFuture;
use uuid::Uuid;

use crate::fleet::job_files::job_folder;
use crate::fleet::output_store::OutputStore;
use crate::launch::checked_relative_path;

/// An instance's folders as seen from this machine.
#[derive(Debug, Clone)]
pub struct ServerFolders {
    pub input: PathBuf,
    pub output: PathBuf,
    pub temp: PathBuf,
}

impl ServerFolders {
    /// ComfyUI's layout below a base folder: `input/`, `output/`, `temp/`.
    pub fn below(base: &Path) -> Self {
        Self {
            input: base.join("input"),
            output: base.join("output"),
            temp: base.join("temp"),
        }
    }

    /// Where an output file of a finished prompt lies, if it is one the server wrote.
    fn output_path(&self, output: &JobOutput) -> Option<PathBuf> {
        let folder = match output.kind.as_str() {
            "output" => &self.output,
            "temp" => &self.temp,
            _ => return None,
        };
        let mut path = folder.clone();
        if !output.subfolder.is_empty() {
            path.push(checked_relative_path(&output.subfolder, true).ok()?);
        }
        path.push(checked_relative_path(&output.filename, false).ok()?);
        Some(path)
    }
}

/// Wraps the backend of one instance.
pub struct OutputCollector {
    inner: Rc<dyn Backend>,
    store: Arc<OutputStore>,
    folders: Option<ServerFolders>,
}

impl OutputCollector {
    /// Collects into `store`; deletes from `folders` when the server's folders are known.
    pub fn new(
        inner: Rc<dyn Backend>,
        store: Arc<OutputStore>,
        folders: Option<ServerFolders>,
    ) -> Self {
        Self {
            inner,
            store,
            folders,
        }
    }

    fn delete(&self, path: &Path) {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(url = self.url(), path = %path.display(), "cannot delete: {e}")
            }
        }
    }

    /// Deletes the job's own upload folder (`input/fleet/<job>/`) with what is in it.
    fn delete_inputs(&self, job: JobId) {
        let Some(folders) = &self.folders else {
            return;
        };
        let dir = folders.input.join(job_folder(job));
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(%job, url = self.url(), path = %dir.display(), "cannot delete the job's uploads: {e}")
            }
        }
    }

    /// Moves `job`'s outputs into the store (`None`: the warm-up, whose outputs only go): from
    /// the instance's folder when it is known (a rename on one file system), else downloaded.
    async fn collect(&self, job: Option<JobId>, outputs: &[JobOutput]) {
        for (index, output) in outputs.iter().enumerate() {
            let local = self.folders.as_ref().and_then(|f| f.output_path(output));
            let Some(job) = job else {
                if let Some(path) = &local {
                    self.delete(path);
                }
                continue;
            };
            let stored = match &local {
                Some(path) => self
                    .store
                    .adopt(job, index, path)
                    .map_err(|e| e.to_string()),
                None => match self.inner.download(output).await {
                    Ok(bytes) => self
                        .store
                        .put(job, index, &bytes)
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                },
            };
            if let Err(reason) = stored {
                tracing::warn!(
                    %job, url = self.url(), file = %output.filename,
                    "output not collected, left on the instance: {reason}"
                );
            }
        }
    }
}

impl Backend for OutputCollector {
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
        self.inner.upload(input)
    }

    fn release_inputs(&self, job: JobId, inputs: &[InputFile]) {
        self.inner.release_inputs(job, inputs);
        self.delete_inputs(job);
    }

    fn run(
        &self,
        run: PromptRun,
        sink: EventSink,
    ) -> LocalBoxFuture<'_, Result<RunResult, BackendError>> {
        async move {
            let job = run.job;
            let result = self.inner.run(run, sink).await?;
            self.collect(job, &result.outputs).await;
            Ok(result)
        }
        .boxed_local()
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
