//! The Discord session through its ports, fast: an in-memory `Chat` that records every call and
//! an in-memory fleet whose jobs the test drives event by event. Each test waits on what the
//! session did (the recorder wakes the test on every call), never on sleeps.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix::{Actor, Addr};
use comfy_fleet_actors::discord::access::AccessRules;
use comfy_fleet_actors::discord::commands::CommandSpec;
use comfy_fleet_actors::discord::custom_id::ButtonAction;
use comfy_fleet_actors::discord::fleet_port::{
    Accepted, FleetOperation, FleetPort, FleetView, JobError, JobOrder, ModelKind, OperationError,
    OrderError, OwnJob, ParamInfo, ParamType, ResultFiles, TemplateInfo,
};
use comfy_fleet_actors::discord::interaction::{
    Attachment, ChatUser, ClickedMessage, CommandCall, Interaction, InteractionKind,
    InteractionToken, OptionValue,
};
use comfy_fleet_actors::discord::message::{
    Ack, ChatFile, ChatMessage, Embed, EmbedField, Files, MessagePlace,
};
use comfy_fleet_actors::discord::session::{
    GetSessionLoad, Incoming, RegisterCommands, StopTaking, WaitDelivered,
};
use comfy_fleet_actors::discord::{Chat, ChatError, DiscordSession, SessionSettings};
use comfy_fleet_actors::{InstanceId, JobEvent, JobId, JobOutput, JobState, UserId};
use futures_util::future::LocalBoxFuture;
use futures_util::stream::LocalBoxStream;
use tokio::sync::Notify;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

/// Safety net on every wait; the waits end on the session's calls.
const GUARD: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// The in-memory Chat
// ---------------------------------------------------------------------------------------------

/// One call the session made to Discord.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    Ack(String, Ack),
    Followup(String, ChatMessage),
    Post(String, ChatMessage),
    Edit(MessagePlace, ChatMessage),
    Download(String),
    Register(usize, Vec<String>),
}

#[derive(Default)]
struct ChatLog {
    calls: RefCell<Vec<Call>>,
    changed: Notify,
    /// Edits of interaction messages answer "expired".
    expired: RefCell<bool>,
    next_id: RefCell<u64>,
}

impl ChatLog {
    fn record(&self, call: Call) {
        self.calls.borrow_mut().push(call);
        self.changed.notify_waiters();
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    /// Waits until `done` holds for the calls so far; returns them.
    async fn wait(&self, what: &str, done: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        let deadline = tokio::time::Instant::now() + GUARD;
        loop {
            let notified = self.changed.notified();
            let calls = self.calls();
            if done(&calls) {
                return calls;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("gave up waiting for {what}; calls: {calls:#?}");
            }
        }
    }
}

struct RecordingChat(Rc<ChatLog>);

impl Chat for RecordingChat {
    fn acknowledge(
        &self,
        interaction: &InteractionToken,
        ack: Ack,
    ) -> LocalBoxFuture<'_, Result<(), ChatError>> {
        self.0.record(Call::Ack(interaction.id.clone(), ack));
        Box::pin(async { Ok(()) })
    }

    fn followup(
        &self,
        interaction: &InteractionToken,
        message: ChatMessage,
    ) -> LocalBoxFuture<'_, Result<MessagePlace, ChatError>> {
        self.0
            .record(Call::Followup(interaction.id.clone(), message));
        let id = self.0.next_id.replace_with(|n| *n + 1);
        let place = MessagePlace::Followup {
            interaction: interaction.clone(),
            message: format!("m{id}"),
        };
        Box::pin(async move { Ok(place) })
    }

    fn post(
        &self,
        channel: &str,
        message: ChatMessage,
    ) -> LocalBoxFuture<'_, Result<MessagePlace, ChatError>> {
        self.0.record(Call::Post(channel.to_string(), message));
        let id = self.0.next_id.replace_with(|n| *n + 1);
        let place = MessagePlace::Channel {
            channel: channel.to_string(),
            message: format!("c{id}"),
        };
        Box::pin(async move { Ok(place) })
    }

    fn edit(
        &self,
        place: &MessagePlace,
        message: ChatMessage,
    ) -> LocalBoxFuture<'_, Result<(), ChatError>> {
        self.0.record(Call::Edit(place.clone(), message));
        let expired = *self.0.expired.borrow() && !matches!(place, MessagePlace::Channel { .. });
        Box::pin(async move {
            if expired {
                Err(ChatError::Expired("Invalid Webhook Token".into()))
            } else {
                Ok(())
            }
        })
    }

    fn download(
        &self,
        attachment: &Attachment,
        limit: u64,
    ) -> LocalBoxFuture<'_, Result<Vec<u8>, ChatError>> {
        self.0.record(Call::Download(attachment.url.clone()));
        let too_big = attachment.url.contains("huge");
        Box::pin(async move {
            if too_big {
                Err(ChatError::Download(format!(
                    "it is larger than {limit} bytes"
                )))
            } else {
                Ok(b"\x89PNG fake image".to_vec())
            }
        })
    }

    fn register_commands(
        &self,
        commands: Vec<CommandSpec>,
        guilds: Vec<String>,
    ) -> LocalBoxFuture<'_, Result<(), ChatError>> {
        self.0.record(Call::Register(commands.len(), guilds));
        Box::pin(async { Ok(()) })
    }
}

// ---------------------------------------------------------------------------------------------
// The in-memory fleet
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct FleetState {
    orders: RefCell<Vec<JobOrder>>,
    /// The next submissions fail with these, in order.
    refusals: RefCell<Vec<OrderError>>,
    /// Senders of each followed job's events.
    events: RefCell<HashMap<JobId, UnboundedSender<JobEvent>>>,
    owners: RefCell<HashMap<JobId, UserId>>,
    cancels: RefCell<Vec<(JobId, UserId)>>,
    followed: Notify,
    loras: RefCell<Vec<String>>,
}

struct MemoryFleet(Rc<FleetState>);

fn param(name: &str, kind: ParamType, min: Option<f64>, max: Option<f64>) -> ParamInfo {
    ParamInfo {
        name: name.into(),
        kind,
        min,
        max,
        ..ParamInfo::default()
    }
}

fn templates() -> Vec<TemplateInfo> {
    vec![
        TemplateInfo {
            name: "generate".into(),
            description: "Text to image".into(),
            params: vec![
                param("prompt", ParamType::Text, None, None),
                param("seed", ParamType::Integer, None, None),
                param("steps", ParamType::Integer, Some(1.0), Some(60.0)),
                param("width", ParamType::Integer, Some(512.0), Some(1536.0)),
                param("height", ParamType::Integer, Some(512.0), Some(1536.0)),
                param("lora", ParamType::Text, None, None),
                param("lora_strength", ParamType::Number, Some(-2.0), Some(2.0)),
                param(
                    "lora_clip_strength",
                    ParamType::Number,
                    Some(-2.0),
                    Some(2.0),
                ),
            ],
        },
        TemplateInfo {
            name: "upscale".into(),
            description: "Upscale".into(),
            params: vec![param("image", ParamType::Image, None, None)],
        },
    ]
}

impl FleetPort for MemoryFleet {
    fn templates(&self) -> Vec<TemplateInfo> {
        templates()
    }

    fn submit(&self, order: JobOrder) -> LocalBoxFuture<'_, Result<Accepted, OrderError>> {
        let refusal = {
            let mut refusals = self.0.refusals.borrow_mut();
            (!refusals.is_empty()).then(|| refusals.remove(0))
        };
        let job = JobId::new();
        if refusal.is_none() {
            self.0.owners.borrow_mut().insert(job, order.user.clone());
            self.0.orders.borrow_mut().push(order);
        }
        Box::pin(async move {
            match refusal {
                Some(e) => Err(e),
                None => Ok(Accepted {
                    job,
                    position: 1,
                    seed: Some(7),
                }),
            }
        })
    }

    fn follow(
        &self,
        job: JobId,
    ) -> LocalBoxFuture<'_, Result<LocalBoxStream<'static, JobEvent>, JobError>> {
        let (tx, rx) = unbounded_channel();
        self.0.events.borrow_mut().insert(job, tx);
        self.0.followed.notify_waiters();
        let stream =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|e| (e, rx)) },
            );
        Box::pin(async move { Ok(Box::pin(stream) as LocalBoxStream<'static, JobEvent>) })
    }

    fn results(
        &self,
        _job: JobId,
        _per_file_limit: u64,
    ) -> LocalBoxFuture<'_, Result<ResultFiles, JobError>> {
        Box::pin(async {
            Ok(ResultFiles {
                files: vec![ChatFile::new("result-1.png", b"png".to_vec())],
                notes: Vec::new(),
            })
        })
    }

    fn cancel(
        &self,
        job: JobId,
        user: &UserId,
        operator: bool,
    ) -> LocalBoxFuture<'_, Result<(), JobError>> {
        self.0.cancels.borrow_mut().push((job, user.clone()));
        let owner = self.0.owners.borrow().get(&job).cloned();
        let sender = self.0.events.borrow().get(&job).cloned();
        let user = user.clone();
        Box::pin(async move {
            match owner {
                None => Err(JobError::Unknown(job)),
                Some(owner) if owner != user && !operator => Err(JobError::NotYours(job)),
                Some(_) => {
                    if let Some(tx) = sender {
                        let _ = tx.send(JobEvent::Cancelled { job });
                    }
                    Ok(())
                }
            }
        })
    }

    fn status(&self, user: &UserId) -> LocalBoxFuture<'_, Result<FleetView, JobError>> {
        let mine = self
            .0
            .owners
            .borrow()
            .iter()
            .filter(|(_, owner)| *owner == user)
            .map(|(job, _)| OwnJob {
                job: *job,
                template: "generate".into(),
                state: JobState::Queued,
                position: Some(0),
                eta: Some(Duration::from_secs(30)),
            })
            .collect();
        Box::pin(async move {
            Ok(FleetView {
                mine,
                queue_depth: 1,
                queue_capacity: 10,
                ..FleetView::default()
            })
        })
    }

    fn models(&self, kind: ModelKind) -> LocalBoxFuture<'_, Result<Vec<String>, JobError>> {
        let names = match kind {
            ModelKind::Lora => self.0.loras.borrow().clone(),
            _ => vec!["sd_xl_base_1.0.safetensors".into()],
        };
        Box::pin(async move { Ok(names) })
    }

    fn operate(
        &self,
        operation: FleetOperation,
    ) -> LocalBoxFuture<'_, Result<String, OperationError>> {
        Box::pin(async move {
            match operation {
                FleetOperation::Metrics => Ok("queue 0, running 0".into()),
                other => Err(OperationError::Failed(format!(
                    "{other:?} refused by the test fleet"
                ))),
            }
        })
    }
}

impl FleetState {
    /// Waits until the session follows `n` jobs; returns their event senders' job ids.
    async fn wait_followed(&self, n: usize) -> Vec<JobId> {
        let deadline = tokio::time::Instant::now() + GUARD;
        loop {
            let notified = self.followed.notified();
            let jobs: Vec<JobId> = self.events.borrow().keys().copied().collect();
            if jobs.len() >= n {
                return jobs;
            }
            tokio::time::timeout_at(deadline, notified)
                .await
                .expect("the session follows the job");
        }
    }

    fn send(&self, event: JobEvent) {
        let tx = self.events.borrow().get(&event.job()).cloned();
        tx.expect("a followed job")
            .send(event)
            .expect("the session listens");
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

struct Bot {
    session: Addr<DiscordSession>,
    chat: Rc<ChatLog>,
    fleet: Rc<FleetState>,
    next: u64,
}

fn settings() -> SessionSettings {
    SessionSettings {
        progress_interval: Duration::from_millis(20),
        access: AccessRules {
            allowed_guilds: Vec::new(),
            allowed_channels: Vec::new(),
            operator_roles: vec!["900".into()],
        },
        guilds: vec!["100".into()],
        ..SessionSettings::default()
    }
}

fn start(settings: SessionSettings) -> Bot {
    let chat = Rc::new(ChatLog::default());
    let fleet = Rc::new(FleetState::default());
    let session = DiscordSession::new(
        Rc::new(RecordingChat(Rc::clone(&chat))),
        Rc::new(MemoryFleet(Rc::clone(&fleet))),
        settings,
    )
    .start();
    Bot {
        session,
        chat,
        fleet,
        next: 0,
    }
}

fn ann() -> ChatUser {
    ChatUser::discord("4242", "ann", vec!["77".into()])
}

impl Bot {
    fn interaction(&mut self, user: ChatUser, kind: InteractionKind) -> Interaction {
        self.next += 1;
        Interaction {
            token: InteractionToken {
                id: format!("i{}", self.next),
                token: format!("token{}", self.next),
                application_id: "1".into(),
            },
            received: Instant::now(),
            user,
            guild: Some("100".into()),
            channel: Some("300".into()),
            upload_limit: 10 << 20,
            kind,
        }
    }

    /// Sends an interaction; returns its id.
    fn send(&mut self, user: ChatUser, kind: InteractionKind) -> String {
        let interaction = self.interaction(user, kind);
        let id = interaction.token.id.clone();
        self.session.do_send(Incoming(interaction));
        id
    }

    fn command(&mut self, call: CommandCall) -> String {
        self.send(ann(), InteractionKind::Command(call))
    }

    fn click(&mut self, user: ChatUser, custom_id: &str, message: ClickedMessage) -> String {
        self.send(
            user,
            InteractionKind::Button {
                custom_id: custom_id.to_string(),
                message,
            },
        )
    }

    /// The edits of the original response of `id` (followups go through `Followup`).
    fn original_edits(&self, id: &str) -> Vec<ChatMessage> {
        self.chat
            .calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Edit(MessagePlace::Original(t), m) if t.id == id => Some(m),
                _ => None,
            })
            .collect()
    }
}

fn text(v: &str) -> OptionValue {
    OptionValue::Text(v.into())
}

fn generate(prompt: &str) -> CommandCall {
    CommandCall::new("generate").with("prompt", text(prompt))
}

fn first_ack(calls: &[Call], id: &str) -> Option<Ack> {
    calls.iter().find_map(|c| match c {
        Call::Ack(i, ack) if i == id => Some(ack.clone()),
        _ => None,
    })
}

fn followups(calls: &[Call], id: &str) -> Vec<ChatMessage> {
    calls
        .iter()
        .filter_map(|c| match c {
            Call::Followup(i, m) if i == id => Some(m.clone()),
            _ => None,
        })
        .collect()
}

/// Edits of the job's public message (a followup `m…` or a channel post `c…`).
fn job_edits(calls: &[Call]) -> Vec<ChatMessage> {
    calls
        .iter()
        .filter_map(|c| match c {
            Call::Edit(MessagePlace::Followup { .. } | MessagePlace::Channel { .. }, m) => {
                Some(m.clone())
            }
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn a_job_is_acknowledged_queued_followed_and_delivered_with_its_buttons() {
    let mut bot = start(settings());
    let registered = bot.session.send(RegisterCommands).await.unwrap().unwrap();
    assert!(registered >= 7, "the job commands and the bot's own");
    assert!(
        bot.chat
            .calls()
            .contains(&Call::Register(registered, vec!["100".into()]))
    );

    let id = bot.command(generate("a lighthouse").with("steps", OptionValue::Integer(20)));
    let calls = bot
        .chat
        .wait("the job's public message", |c| {
            !followups(c, &id).is_empty()
        })
        .await;
    assert_eq!(
        first_ack(&calls, &id),
        Some(Ack::Defer { ephemeral: true }),
        "acknowledged privately first"
    );
    let receipt = &bot.original_edits(&id)[0];
    assert!(receipt.ephemeral && receipt.content.contains("queued at position 2"));
    let public = &followups(&calls, &id)[0];
    assert!(!public.ephemeral);
    assert!(public.content.contains("<@4242>") && public.content.contains("Queued"));
    assert_eq!(public.buttons[0].label, "Cancel");
    let order = bot.fleet.orders.borrow()[0].clone();
    assert_eq!(order.user, UserId::new("discord:4242"));
    assert_eq!(
        order.roles,
        vec!["77".to_string()],
        "the member's roles reach the fleet"
    );
    assert_eq!(order.template, "generate");
    assert_eq!(order.params["steps"], 20);

    let job = bot.fleet.wait_followed(1).await[0];
    bot.fleet.send(JobEvent::Started {
        job,
        instance: InstanceId::new("gpu0"),
        attempt: 1,
    });
    bot.fleet.send(JobEvent::Progress {
        job,
        node: "3".into(),
        value: 10,
        max: 20,
    });
    bot.chat
        .wait("a progress edit with the percent", |c| {
            job_edits(c).iter().any(|m| m.content.contains("50%"))
        })
        .await;
    bot.fleet.send(JobEvent::Done {
        job,
        outputs: vec![JobOutput {
            node_id: "9".into(),
            filename: "a.png".into(),
            subfolder: String::new(),
            kind: "output".into(),
        }],
    });
    let calls = bot
        .chat
        .wait("the result", |c| {
            job_edits(c).iter().any(|m| m.content.contains("Done"))
        })
        .await;
    let result = job_edits(&calls).pop().unwrap();
    assert!(matches!(&result.files, Files::Replace(f) if f[0].name == "result-1.png"));
    let actions: Vec<ButtonAction> = result
        .buttons
        .iter()
        .map(|b| ButtonAction::decode(&b.custom_id).unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            ButtonAction::Reroll {
                template: "generate".into()
            },
            ButtonAction::Upscale { image: 0 }
        ]
    );
    let embed = result.embed.unwrap();
    assert_eq!(embed.field("prompt"), Some("a lighthouse"));
    assert_eq!(embed.field("seed"), Some("7"));
    tokio::time::timeout(GUARD, bot.session.send(WaitDelivered))
        .await
        .expect("nothing left to deliver")
        .unwrap();
}

#[actix_rt::test]
async fn invalid_options_are_answered_at_once_privately_naming_the_option_and_range() {
    let mut bot = start(settings());
    let id = bot.command(generate("x").with("steps", OptionValue::Integer(80)));
    let calls = bot
        .chat
        .wait("the answer", |c| first_ack(c, &id).is_some())
        .await;
    let Some(Ack::Reply(reply)) = first_ack(&calls, &id) else {
        panic!("{calls:?}");
    };
    assert!(reply.ephemeral);
    assert!(
        reply
            .content
            .contains("`steps` must be between 1 and 60 (you gave 80)"),
        "{}",
        reply.content
    );
    assert!(bot.fleet.orders.borrow().is_empty());
}

#[actix_rt::test]
async fn refusals_of_the_fleet_edit_the_private_answer_with_what_to_do() {
    let mut bot = start(settings());
    bot.fleet.refusals.borrow_mut().extend([
        OrderError::RateLimited {
            message: "you have used your 10 jobs per 10m".into(),
            retry_after: Duration::from_secs(95),
        },
        OrderError::QueueFull(
            "the queue is full (1000 jobs waiting); try again in a few minutes".into(),
        ),
    ]);
    let limited = bot.command(generate("one"));
    let full = bot.command(generate("two"));
    bot.chat
        .wait("both answers", |_| {
            !bot.original_edits(&limited).is_empty() && !bot.original_edits(&full).is_empty()
        })
        .await;
    let limited = &bot.original_edits(&limited)[0];
    assert!(
        limited.ephemeral && limited.content.contains("about 2 min"),
        "{}",
        limited.content
    );
    assert!(
        bot.original_edits(&full)[0]
            .content
            .contains("queue is full")
    );
    assert_eq!(bot.session.send(GetSessionLoad).await.unwrap().starting, 0);
}

#[actix_rt::test]
async fn a_failed_job_tells_its_owner_privately_and_the_channel_briefly() {
    let mut bot = start(settings());
    let id = bot.command(generate("x"));
    let job = bot.fleet.wait_followed(1).await[0];
    bot.fleet.send(JobEvent::Failed {
        job,
        message: "ComfyUI rejected the workflow: node 4 (CheckpointLoaderSimple), input `ckpt_name`: not in list".into(),
        retriable: false,
    });
    let calls = bot
        .chat
        .wait("the private failure", |c| followups(c, &id).len() >= 2)
        .await;
    let private = &followups(&calls, &id)[1];
    assert!(private.ephemeral && private.content.contains("CheckpointLoaderSimple"));
    let calls = bot
        .chat
        .wait("the public failure", |c| {
            job_edits(c).iter().any(|m| m.content.contains("failed"))
        })
        .await;
    let public = job_edits(&calls).pop().unwrap();
    assert!(!public.content.contains("CheckpointLoaderSimple") && public.buttons.is_empty());
}

#[actix_rt::test]
async fn reroll_reads_the_parameters_from_the_clicked_message_with_a_new_seed() {
    let mut bot = start(settings());
    let message = ClickedMessage {
        id: "555".into(),
        content: "done".into(),
        embed: Some(Embed {
            title: "/generate".into(),
            fields: vec![
                EmbedField::new("prompt", "a red fox", false),
                EmbedField::new("size", "832x1216", true),
                EmbedField::new("seed", "1234", true),
            ],
            ..Embed::default()
        }),
        attachments: Vec::new(),
    };
    let id = bot.click(
        ChatUser::discord("5", "bo", Vec::new()),
        "cf1:reroll:generate",
        message,
    );
    bot.chat
        .wait("the new job's message", |c| !followups(c, &id).is_empty())
        .await;
    let order = bot.fleet.orders.borrow()[0].clone();
    assert_eq!(
        order.user,
        UserId::new("discord:5"),
        "the clicker owns the re-roll"
    );
    assert_eq!(order.params["prompt"], "a red fox");
    assert_eq!(
        (
            order.params["width"].clone(),
            order.params["height"].clone()
        ),
        (832.into(), 1216.into())
    );
    assert!(!order.params.contains_key("seed"), "a new seed is drawn");
}

#[actix_rt::test]
async fn upscale_downloads_the_clicked_image_and_runs_the_upscale_template() {
    let mut bot = start(settings());
    let url = "https://cdn.discordapp.com/attachments/300/9/result-1.png?ex=1";
    let message = ClickedMessage {
        id: "555".into(),
        attachments: vec![Attachment {
            filename: "result-1.png".into(),
            url: url.into(),
            size: 100,
            content_type: Some("image/png".into()),
        }],
        ..ClickedMessage::default()
    };
    let id = bot.click(ann(), "cf1:upscale:0", message.clone());
    let calls = bot
        .chat
        .wait("the upscale job's message", |c| {
            !followups(c, &id).is_empty()
        })
        .await;
    assert!(calls.contains(&Call::Download(url.into())));
    let order = bot.fleet.orders.borrow()[0].clone();
    assert_eq!(order.template, "upscale");
    assert_eq!(order.images[0].param, "image");
    let public = &followups(&calls, &id)[0];
    assert!(
        public
            .buttons
            .iter()
            .all(|b| !b.custom_id.contains("upscale")),
        "an upscale is not offered an upscale"
    );
    let missing = bot.click(ann(), "cf1:upscale:3", message);
    let calls = bot
        .chat
        .wait("the answer", |c| first_ack(c, &missing).is_some())
        .await;
    assert!(
        matches!(first_ack(&calls, &missing), Some(Ack::Reply(m)) if m.content.contains("no image 4"))
    );
}

#[actix_rt::test]
async fn the_cancel_button_works_for_the_owner_and_is_refused_to_others() {
    let mut bot = start(settings());
    bot.command(generate("x"));
    let job = bot.fleet.wait_followed(1).await[0];
    let custom_id = ButtonAction::Cancel(job).encode().unwrap();
    let stranger = bot.click(
        ChatUser::discord("9", "eve", Vec::new()),
        &custom_id,
        ClickedMessage::default(),
    );
    let calls = bot
        .chat
        .wait("the refusal", |c| !followups(c, &stranger).is_empty())
        .await;
    assert_eq!(first_ack(&calls, &stranger), Some(Ack::DeferUpdate));
    assert!(
        followups(&calls, &stranger)[0]
            .content
            .contains("started by someone else")
    );
    let operator = ChatUser::discord("8", "op", vec!["900".into()]);
    bot.click(operator, &custom_id, ClickedMessage::default());
    bot.chat
        .wait("the cancellation shown", |c| {
            job_edits(c).iter().any(|m| m.content.contains("Cancelled"))
        })
        .await;
    assert_eq!(bot.fleet.cancels.borrow().len(), 2);
}

#[actix_rt::test]
async fn cancel_of_a_job_lost_in_a_restart_marks_the_message_stale() {
    let mut bot = start(settings());
    let custom_id = ButtonAction::Cancel(JobId::new()).encode().unwrap();
    let id = bot.click(ann(), &custom_id, ClickedMessage::default());
    bot.chat
        .wait("the answer", |c| !followups(c, &id).is_empty())
        .await;
    let stale = &bot.original_edits(&id)[0];
    assert!(stale.content.contains("restarted") && stale.buttons.is_empty());
}

#[actix_rt::test]
async fn the_cancel_command_cancels_the_most_recent_job_of_the_caller() {
    let mut bot = start(settings());
    bot.command(generate("x"));
    bot.fleet.wait_followed(1).await;
    let id = bot.command(CommandCall::new("cancel"));
    bot.chat
        .wait("the answer", |_| !bot.original_edits(&id).is_empty())
        .await;
    assert!(bot.original_edits(&id)[0].content.contains("is cancelled"));
    let nothing = bot.send(
        ChatUser::discord("1", "idle", Vec::new()),
        InteractionKind::Command(CommandCall::new("cancel")),
    );
    bot.chat
        .wait("the answer", |_| !bot.original_edits(&nothing).is_empty())
        .await;
    assert!(bot.original_edits(&nothing)[0].content.contains("no job"));
}

#[actix_rt::test]
async fn while_stopping_new_jobs_are_refused_and_running_ones_still_delivered() {
    let mut bot = start(settings());
    bot.command(generate("before"));
    let job = bot.fleet.wait_followed(1).await[0];
    bot.session.send(StopTaking).await.unwrap();
    let late = bot.command(generate("after"));
    let calls = bot
        .chat
        .wait("the answer", |c| first_ack(c, &late).is_some())
        .await;
    assert!(
        matches!(first_ack(&calls, &late), Some(Ack::Reply(m)) if m.content.contains("restarting"))
    );
    let status = bot.command(CommandCall::new("status"));
    bot.chat
        .wait("status still answers", |_| {
            !bot.original_edits(&status).is_empty()
        })
        .await;
    let delivered = bot.session.send(WaitDelivered);
    bot.fleet.send(JobEvent::Done {
        job,
        outputs: Vec::new(),
    });
    tokio::time::timeout(GUARD, delivered)
        .await
        .expect("delivered")
        .unwrap();
    assert!(
        job_edits(&bot.chat.calls())
            .iter()
            .any(|m| m.content.contains("Done"))
    );
}

#[actix_rt::test]
async fn autocomplete_and_lora_pages_come_from_the_fleets_models() {
    let mut bot = start(settings());
    *bot.fleet.loras.borrow_mut() = (0..45)
        .map(|i| format!("style_{i:02}.safetensors"))
        .collect();
    let id = bot.send(
        ann(),
        InteractionKind::Autocomplete {
            call: generate("x"),
            focused: "lora".into(),
            typed: "STYLE_1".into(),
        },
    );
    let calls = bot
        .chat
        .wait("choices", |c| first_ack(c, &id).is_some())
        .await;
    let Some(Ack::Choices(choices)) = first_ack(&calls, &id) else {
        panic!("{calls:?}");
    };
    assert_eq!(choices.len(), 10, "style_10 … style_19");
    assert!(choices.iter().all(|c| c.value.starts_with("style_1")));

    let id = bot.command(CommandCall::new("loras"));
    bot.chat
        .wait("page 1", |_| !bot.original_edits(&id).is_empty())
        .await;
    let page = bot.original_edits(&id)[0].clone();
    assert!(page.content.contains("page 1 of 3"));
    let next = page.buttons[1].custom_id.clone();
    let click = bot.click(ann(), &next, ClickedMessage::default());
    let calls = bot
        .chat
        .wait("page 2", |c| first_ack(c, &click).is_some())
        .await;
    assert!(
        matches!(first_ack(&calls, &click), Some(Ack::Update(m)) if m.content.contains("page 2 of 3"))
    );
}

#[actix_rt::test]
async fn progress_moves_to_a_channel_message_when_the_token_is_due_or_expired() {
    let mut due = settings();
    due.token_handover = Duration::ZERO;
    let mut bot = start(due);
    bot.command(generate("slow"));
    let job = bot.fleet.wait_followed(1).await[0];
    let calls = bot
        .chat
        .wait("a channel message", |c| {
            c.iter().any(|c| matches!(c, Call::Post(..)))
        })
        .await;
    assert!(
        calls
            .iter()
            .any(|c| matches!(c, Call::Post(ch, m) if ch == "300" && m.content.contains("Queued")))
    );
    bot.fleet.send(JobEvent::Cancelled { job });
    bot.chat
        .wait("the channel message edited", |c| {
            c.iter().any(|c| matches!(c, Call::Edit(MessagePlace::Channel { .. }, m) if m.content.contains("Cancelled")))
        })
        .await;

    let mut bot = start(settings());
    bot.command(generate("x"));
    let job = bot.fleet.wait_followed(1).await[0];
    bot.chat
        .wait("the job's message", |c| {
            job_edits(c).is_empty() && c.iter().any(|c| matches!(c, Call::Followup(..)))
        })
        .await;
    *bot.chat.expired.borrow_mut() = true;
    bot.fleet.send(JobEvent::Started {
        job,
        instance: InstanceId::new("gpu0"),
        attempt: 1,
    });
    bot.chat
        .wait("the latest state posted in the channel", |c| {
            c.iter()
                .any(|c| matches!(c, Call::Post(_, m) if m.content.contains("Running")))
        })
        .await;
}

#[actix_rt::test]
async fn access_rules_and_the_operator_role_are_enforced() {
    let mut rules = settings();
    rules.access.allowed_channels = vec!["301".into()];
    let mut bot = start(rules);
    let id = bot.command(generate("x"));
    let calls = bot
        .chat
        .wait("refusal", |c| first_ack(c, &id).is_some())
        .await;
    assert!(matches!(first_ack(&calls, &id), Some(Ack::Reply(m)) if m.content.contains("channel")));

    let mut bot = start(settings());
    let fleet = CommandCall {
        name: "fleet".into(),
        subcommand: Some("pause".into()),
        options: Vec::new(),
    };
    let id = bot.command(fleet.clone());
    let calls = bot
        .chat
        .wait("refusal", |c| first_ack(c, &id).is_some())
        .await;
    assert!(
        matches!(first_ack(&calls, &id), Some(Ack::Reply(m)) if m.content.contains("operator"))
    );
    let operator = ChatUser::discord("8", "op", vec!["900".into()]);
    let id = bot.send(operator.clone(), InteractionKind::Command(fleet));
    bot.chat
        .wait("answer", |_| !bot.original_edits(&id).is_empty())
        .await;
    assert!(
        bot.original_edits(&id)[0]
            .content
            .contains("⚠️ PauseQueue refused by the test fleet")
    );
    let metrics = CommandCall {
        name: "fleet".into(),
        subcommand: Some("metrics".into()),
        options: Vec::new(),
    };
    let id = bot.send(operator, InteractionKind::Command(metrics));
    bot.chat
        .wait("answer", |_| !bot.original_edits(&id).is_empty())
        .await;
    assert_eq!(bot.original_edits(&id)[0].content, "queue 0, running 0");
}

#[actix_rt::test]
async fn foreign_buttons_and_oversized_attachments_get_clear_answers() {
    let mut bot = start(settings());
    let id = bot.click(ann(), "someone-elses-button", ClickedMessage::default());
    let calls = bot
        .chat
        .wait("answer", |c| first_ack(c, &id).is_some())
        .await;
    assert!(
        matches!(first_ack(&calls, &id), Some(Ack::Reply(m)) if m.content.contains("does not belong"))
    );

    let huge = Attachment {
        filename: "huge.png".into(),
        url: "https://cdn.discordapp.com/attachments/1/2/huge.png".into(),
        size: 0,
        content_type: None,
    };
    let id = bot.command(CommandCall::new("upscale").with("image", OptionValue::Attachment(huge)));
    bot.chat
        .wait("answer", |_| !bot.original_edits(&id).is_empty())
        .await;
    let answer = &bot.original_edits(&id)[0];
    assert!(
        answer.ephemeral
            && answer.content.contains("`image`")
            && answer.content.contains("larger than"),
        "{}",
        answer.content
    );
    assert!(bot.fleet.orders.borrow().is_empty());
}
