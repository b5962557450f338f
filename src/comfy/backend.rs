//! [`ComfyBackend`]: the actors' [`Backend`] port implemented with a [`ComfyClient`].

use comfy_fleet_actors::job::JobOutput;
use comfy_fleet_actors::ports::{
    Backend, BackendError, EventSink, ExecutionEvent, InputFile, PromptRun, PromptStatus, RunResult,
};
use futures_util::FutureExt as _;
use futures_util::future::LocalBoxFuture;
use uuid::Uuid;

use super::client::{ComfyClient, Upload};
use super::events::{ServerEvent, WsMessage};
use super::prompt_run::RunOptions;
use super::protocol::{FileRef, FolderType, FreeRequest, HistoryEnding};

/// Takes the `/object_info` JSON a readiness check loaded and returns how many node classes it
/// lists, or why it is not a valid document.
pub type ObjectInfoSink = Box<dyn Fn(&[u8]) -> Result<usize, String>>;

/// One ComfyUI server as the instance actor uses it. `!Send`, like the client it wraps.
pub struct ComfyBackend {
    client: ComfyClient,
    options: RunOptions,
    object_info_sink: Option<ObjectInfoSink>,
}

impl std::fmt::Debug for ComfyBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComfyBackend")
            .field("client", &self.client)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl ComfyBackend {
    /// Wraps a client; `options` apply to every [`Backend::run`] (e.g. the silence timeout).
    pub fn new(client: ComfyClient, options: RunOptions) -> Self {
        Self {
            client,
            options,
            object_info_sink: None,
        }
    }

    /// Hands each `/object_info` the readiness check loads to `sink` (the fleet's catalog keeps
    /// it, so jobs need not fetch it again) instead of parsing and dropping it here.
    pub fn with_object_info_sink(mut self, sink: ObjectInfoSink) -> Self {
        self.object_info_sink = Some(sink);
        self
    }

    pub fn client(&self) -> &ComfyClient {
        &self.client
    }
}

/// The fleet's view of one websocket event, if it has one.
pub fn execution_event(event: &ServerEvent) -> Option<ExecutionEvent> {
    match event {
        ServerEvent::Message(msg) => match msg {
            WsMessage::ExecutionStart(_) => Some(ExecutionEvent::Started),
            WsMessage::ExecutionCached(d) if !d.nodes.is_empty() => Some(ExecutionEvent::Cached {
                nodes: d.nodes.clone(),
            }),
            WsMessage::Executing(d) => d
                .node
                .clone()
                .map(|node| ExecutionEvent::Executing { node }),
            WsMessage::Progress(d) => Some(ExecutionEvent::Progress {
                node: d.node.clone().unwrap_or_default(),
                value: d.value.max(0.0) as u64,
                max: d.max.max(0.0) as u64,
            }),
            WsMessage::Executed(d) => Some(ExecutionEvent::Executed {
                node: d.node.clone(),
                outputs: d
                    .output
                    .files()
                    .into_iter()
                    .map(|f| job_output(&d.node, f))
                    .collect(),
            }),
            _ => None,
        },
        ServerEvent::Binary(frame) => {
            frame
                .preview()
                .map(|(mime, bytes)| ExecutionEvent::Preview {
                    mime: mime.to_owned(),
                    bytes: bytes.to_vec(),
                })
        }
        ServerEvent::ConnectionLost { .. } | ServerEvent::Reconnected => None,
    }
}

fn job_output(node: &str, f: FileRef) -> JobOutput {
    JobOutput {
        node_id: node.to_owned(),
        filename: f.filename,
        subfolder: f.subfolder,
        kind: f.kind,
    }
}

/// The file a job output names, as `/view` asks for it.
impl From<&JobOutput> for FileRef {
    fn from(o: &JobOutput) -> Self {
        FileRef {
            filename: o.filename.clone(),
            subfolder: o.subfolder.clone(),
            kind: o.kind.clone(),
        }
    }
}

impl Backend for ComfyBackend {
    fn url(&self) -> &str {
        self.client.url()
    }

    fn ping(&self) -> LocalBoxFuture<'_, Result<(), BackendError>> {
        async move {
            self.client.system_stats().await?;
            Ok(())
        }
        .boxed_local()
    }

    fn object_info(&self) -> LocalBoxFuture<'_, Result<usize, BackendError>> {
        async move {
            // The instance only checks that the node definitions load; the fleet's catalog keeps
            // one shared copy. Keeping one per instance would cost ~16 MB each.
            if let Some(sink) = &self.object_info_sink {
                let json = self.client.object_info_json().await?;
                return sink(&json).map_err(|reason| {
                    BackendError::Protocol(format!("invalid /object_info: {reason}"))
                });
            }
            let classes = self.client.object_info().await?.len();
            self.client.forget_object_info();
            Ok(classes)
        }
        .boxed_local()
    }

    fn upload(&self, input: InputFile) -> LocalBoxFuture<'_, Result<String, BackendError>> {
        async move {
            let stored = self
                .client
                .upload_image(&Upload {
                    filename: &input.name,
                    bytes: &input.bytes,
                    subfolder: &input.subfolder,
                    overwrite: input.overwrite,
                    folder: FolderType::Input,
                })
                .await?;
            Ok(stored.load_image_name())
        }
        .boxed_local()
    }

    fn run(
        &self,
        run: PromptRun,
        mut sink: EventSink,
    ) -> LocalBoxFuture<'_, Result<RunResult, BackendError>> {
        async move {
            let on_event = |event: &ServerEvent| {
                if let Some(e) = execution_event(event) {
                    sink(e);
                }
            };
            let outcome = self
                .client
                .run_prompt(
                    run.prompt_id,
                    &run.prompt,
                    Some(&run.extra_data).filter(|v| !v.is_null()),
                    &self.options,
                    on_event,
                )
                .await?;
            Ok(RunResult {
                outputs: outcome
                    .files
                    .into_iter()
                    .map(|(node, f)| job_output(&node, f))
                    .collect(),
                texts: outcome.texts,
                cached_nodes: outcome.cached_nodes,
            })
        }
        .boxed_local()
    }

    fn prompt_status(
        &self,
        prompt_id: Uuid,
    ) -> LocalBoxFuture<'_, Result<PromptStatus, BackendError>> {
        async move {
            let pid = prompt_id.as_hyphenated().to_string();
            let queue = self.client.queue().await?;
            if queue.is_running(&pid) {
                return Ok(PromptStatus::Running);
            }
            if queue.is_pending(&pid) {
                return Ok(PromptStatus::Pending);
            }
            let Some(entry) = self.client.history(&pid).await? else {
                return Ok(PromptStatus::Unknown);
            };
            Ok(match entry.ending() {
                HistoryEnding::Success => PromptStatus::Succeeded,
                HistoryEnding::Error(_) | HistoryEnding::Interrupted => PromptStatus::Failed,
                HistoryEnding::Unknown => {
                    if entry.status.is_some_and(|s| s.completed) {
                        PromptStatus::Succeeded
                    } else {
                        PromptStatus::Failed
                    }
                }
            })
        }
        .boxed_local()
    }

    fn cancel(&self, prompt_id: Uuid) -> LocalBoxFuture<'_, Result<(), BackendError>> {
        async move {
            self.client
                .withdraw(&prompt_id.as_hyphenated().to_string())
                .await?;
            Ok(())
        }
        .boxed_local()
    }

    fn free(
        &self,
        unload_models: bool,
        free_memory: bool,
    ) -> LocalBoxFuture<'_, Result<(), BackendError>> {
        async move {
            self.client
                .free(FreeRequest {
                    unload_models,
                    free_memory,
                })
                .await?;
            Ok(())
        }
        .boxed_local()
    }

    fn download(&self, output: &JobOutput) -> LocalBoxFuture<'_, Result<Vec<u8>, BackendError>> {
        let file = FileRef::from(output);
        async move { Ok(self.client.view(&file).await?.to_vec()) }.boxed_local()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comfy::events::BinaryFrame;

    fn msg(json: &str) -> ServerEvent {
        ServerEvent::Message(WsMessage::parse(json).unwrap())
    }

    #[test]
    fn websocket_events_map_to_execution_events() {
        assert_eq!(
            execution_event(&msg(
                r#"{"type":"executing","data":{"node":"3","display_node":"3","prompt_id":"p"}}"#
            )),
            Some(ExecutionEvent::Executing { node: "3".into() })
        );
        assert_eq!(
            execution_event(&msg(
                r#"{"type":"progress","data":{"value":2,"max":4,"prompt_id":"p","node":"3"}}"#
            )),
            Some(ExecutionEvent::Progress {
                node: "3".into(),
                value: 2,
                max: 4
            })
        );
        let executed = execution_event(&msg(
            r#"{"type":"executed","data":{"node":"9","output":{"images":[{"filename":"a.png","subfolder":"","type":"output"}]},"prompt_id":"p"}}"#,
        ));
        match executed {
            Some(ExecutionEvent::Executed { node, outputs }) => {
                assert_eq!(node, "9");
                assert_eq!(outputs[0].filename, "a.png");
                assert_eq!(outputs[0].node_id, "9");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            execution_event(&msg(
                r#"{"type":"executing","data":{"node":null,"prompt_id":"p"}}"#
            )),
            None
        );
        let preview = ServerEvent::Binary(BinaryFrame::parse(
            [&[0u8, 0, 0, 1, 0, 0, 0, 1][..], b"JPG"].concat().into(),
        ));
        assert_eq!(
            execution_event(&preview),
            Some(ExecutionEvent::Preview {
                mime: "image/jpeg".into(),
                bytes: b"JPG".to_vec()
            })
        );
    }
}
