//! The `DiscordSession` actor: receives every interaction from the adapter, answers it at once
//! (so Discord's 3 seconds hold however loaded the pool is), starts jobs through the fleet port
//! and delivers each one through its [`Delivery`]. Thin: the decisions are in the policies
//! (access rules, options → parameters, the custom_id codec, the delivery state machine and its
//! throttle, the texts); the actor carries out what they return.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Instant;

use actix::fut::wrap_future;
use actix::prelude::*;
use serde_json::json;

use crate::ids::JobId;
use crate::job::{JobEvent, JobState};

use super::access::Refusal;
use super::chat::{Chat, ChatError};
use super::commands::{CommandSpec, autocomplete_kind, command_specs};
use super::custom_id::ButtonAction;
use super::delivery::{Delivery, DeliveryStart, ResultButtons, Step};
use super::fleet_port::{
    FleetOperation, FleetPort, JobError, JobOrder, ModelKind, OrderError, OrderImage, TemplateInfo,
};
use super::interaction::{ClickedMessage, CommandCall, Interaction, InteractionKind, OptionValue};
use super::job_commands::{JobCommand, job_command};
use super::job_options::{JobParams, call_from_fields, job_params};
use super::lora_pages::lora_page;
use super::message::{Ack, ChatMessage, Choice, MAX_CHOICE_TEXT, MAX_CHOICES, MessagePlace, clip};
use super::settings::SessionSettings;
use super::texts;

/// Adapter → session: an interaction arrived.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Incoming(pub Interaction);

/// Start-up → session: register the commands (a bulk overwrite); answers how many.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<usize, ChatError>")]
pub struct RegisterCommands;

/// Shutdown → session: take no new jobs ("restarting, try again in a minute").
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct StopTaking;

/// Shutdown → session: answers once every job the session started has been delivered.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct WaitDelivered;

/// Tests and benchmarks → session: how much it is carrying.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "SessionLoad")]
pub struct GetSessionLoad;

/// Jobs in the session's hands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionLoad {
    /// Orders being checked and submitted.
    pub starting: usize,
    /// Accepted jobs not yet delivered.
    pub delivering: usize,
}

/// The bot's session with Discord.
pub struct DiscordSession {
    chat: Rc<dyn Chat>,
    fleet: Rc<dyn FleetPort>,
    settings: SessionSettings,
    templates: Vec<TemplateInfo>,
    commands: Vec<CommandSpec>,
    deliveries: HashMap<JobId, Delivery>,
    starting: usize,
    closing: bool,
    drain_waiters: Vec<Waker>,
}

impl DiscordSession {
    pub fn new(chat: Rc<dyn Chat>, fleet: Rc<dyn FleetPort>, settings: SessionSettings) -> Self {
        let templates = fleet.templates();
        let commands = command_specs(&templates);
        Self {
            chat,
            fleet,
            settings,
            templates,
            commands,
            deliveries: HashMap::new(),
            starting: 0,
            closing: false,
            drain_waiters: Vec::new(),
        }
    }

    /// The commands it registers.
    pub fn commands(&self) -> &[CommandSpec] {
        &self.commands
    }

    fn template(&self, name: &str) -> Option<&TemplateInfo> {
        self.templates.iter().find(|t| t.name == name)
    }

    /// Runs `work` beside the actor's other work; `then` gets its output with the actor.
    fn spawn<F, T>(
        &self,
        ctx: &mut Context<Self>,
        work: F,
        then: impl FnOnce(T, &mut Self, &mut Context<Self>) + 'static,
    ) where
        F: Future<Output = T> + 'static,
    {
        ctx.spawn(wrap_future::<_, Self>(work).map(then));
    }

    /// Answers an interaction once, and logs a failure (nothing else can be done about it).
    fn answer(&self, ctx: &mut Context<Self>, interaction: &Interaction, ack: Ack) {
        let chat = Rc::clone(&self.chat);
        let token = interaction.token.clone();
        self.spawn(
            ctx,
            async move { chat.acknowledge(&token, ack).await },
            |result, _, _| {
                if let Err(e) = result {
                    tracing::warn!(target: "fleet.discord", "could not answer an interaction: {e}");
                }
            },
        );
    }

    fn reply(&self, ctx: &mut Context<Self>, interaction: &Interaction, text: String) {
        self.answer(ctx, interaction, Ack::Reply(ChatMessage::private(text)));
    }

    /// Defers privately, then edits the answer to what `work` returns.
    fn defer_then<F>(&self, ctx: &mut Context<Self>, interaction: &Interaction, work: F)
    where
        F: Future<Output = ChatMessage> + 'static,
    {
        let chat = Rc::clone(&self.chat);
        let token = interaction.token.clone();
        self.spawn(
            ctx,
            async move {
                chat.acknowledge(&token, Ack::Defer { ephemeral: true })
                    .await?;
                let message = work.await;
                chat.edit(&MessagePlace::Original(token), message).await
            },
            |result: Result<(), ChatError>, _, _| {
                if let Err(e) = result {
                    tracing::warn!(target: "fleet.discord", "could not answer an interaction: {e}");
                }
            },
        );
    }

    fn command(&mut self, ctx: &mut Context<Self>, interaction: Interaction, call: CommandCall) {
        if let Err(refusal) = self.settings.access.check(&interaction) {
            return self.reply(ctx, &interaction, texts::refusal(&refusal));
        }
        match call.name.as_str() {
            "help" => {
                let text = texts::help(&self.commands);
                self.reply(ctx, &interaction, text);
            }
            "status" => {
                let fleet = Rc::clone(&self.fleet);
                let user = interaction.user.id.clone();
                self.defer_then(ctx, &interaction, async move {
                    match fleet.status(&user).await {
                        Ok(view) => ChatMessage::private(texts::status(&view)),
                        Err(e) => ChatMessage::private(texts::job_problem(&e)),
                    }
                });
            }
            "loras" => {
                let fleet = Rc::clone(&self.fleet);
                let page_size = self.settings.lora_page_size;
                self.defer_then(ctx, &interaction, async move {
                    match fleet.models(ModelKind::Lora).await {
                        Ok(names) => lora_page(&names, 0, page_size),
                        Err(e) => ChatMessage::private(texts::job_problem(&e)),
                    }
                });
            }
            "cancel" => self.cancel_command(ctx, &interaction, &call),
            "fleet" => self.fleet_command(ctx, &interaction, &call),
            name => match job_command(name) {
                Some(command) => self.job_command(ctx, interaction, command, &call),
                None => self.reply(
                    ctx,
                    &interaction,
                    format!("`/{name}` is not a command of this bot any more; the command list refreshes within a minute."),
                ),
            },
        }
    }

    fn cancel_command(
        &self,
        ctx: &mut Context<Self>,
        interaction: &Interaction,
        call: &CommandCall,
    ) {
        let fleet = Rc::clone(&self.fleet);
        let user = interaction.user.id.clone();
        let operator = self.settings.access.is_operator(interaction);
        let named = match call.option("job") {
            Some(OptionValue::Text(t)) => Some(t.trim().to_lowercase()),
            _ => None,
        };
        self.defer_then(ctx, interaction, async move {
            let mine = match fleet.status(&user).await {
                Ok(view) => view.mine,
                Err(e) => return ChatMessage::private(texts::job_problem(&e)),
            };
            let job = match &named {
                Some(text) => match uuid::Uuid::parse_str(text) {
                    Ok(id) => Some(JobId(id)),
                    Err(_) => mine
                        .iter()
                        .find(|j| j.job.to_string().starts_with(text.as_str()))
                        .map(|j| j.job),
                },
                None => mine.last().map(|j| j.job),
            };
            let Some(job) = job else {
                return ChatMessage::private(match named {
                    Some(text) => {
                        format!("None of your jobs is called `{text}`; `/status` lists them.")
                    }
                    None => "You have no job queued or running.".to_string(),
                });
            };
            match fleet.cancel(job, &user, operator).await {
                Ok(()) => {
                    ChatMessage::private(format!("🛑 Job `{}` is cancelled.", texts::short(&job)))
                }
                Err(e) => ChatMessage::private(texts::job_problem(&e)),
            }
        });
    }

    fn fleet_command(
        &self,
        ctx: &mut Context<Self>,
        interaction: &Interaction,
        call: &CommandCall,
    ) {
        if !self.settings.access.is_operator(interaction) {
            return self.reply(ctx, interaction, texts::refusal(&Refusal::NotOperator));
        }
        let instance = match call.option("instance") {
            Some(OptionValue::Text(t)) => t.trim().to_string(),
            _ => String::new(),
        };
        let operation = match call.subcommand.as_deref() {
            Some("pause") => FleetOperation::PauseQueue,
            Some("resume") => FleetOperation::ResumeQueue,
            Some("drain") => FleetOperation::Drain { instance },
            Some("restart") => FleetOperation::Restart { instance },
            Some("metrics") => FleetOperation::Metrics,
            other => {
                return self.reply(
                    ctx,
                    interaction,
                    format!(
                        "`/fleet {}` is not an operation; see `/help`.",
                        other.unwrap_or("")
                    ),
                );
            }
        };
        let fleet = Rc::clone(&self.fleet);
        tracing::info!(target: "fleet.discord", user = %interaction.user.id, ?operation, "operator operation");
        self.defer_then(ctx, interaction, async move {
            ChatMessage::private(texts::operation(&fleet.operate(operation).await))
        });
    }

    fn job_command(
        &mut self,
        ctx: &mut Context<Self>,
        interaction: Interaction,
        command: &'static JobCommand,
        call: &CommandCall,
    ) {
        if self.closing {
            return self.reply(ctx, &interaction, texts::restarting());
        }
        let Some(template) = self.template(command.template) else {
            return self.reply(
                ctx,
                &interaction,
                format!(
                    "`/{}` is not available: this server has no `{}` template.",
                    command.name, command.template
                ),
            );
        };
        match job_params(command, template, call) {
            Ok(params) => self.start_job(ctx, interaction, command, params),
            Err(problem) => self.reply(
                ctx,
                &interaction,
                texts::option_problem(command.name, &problem),
            ),
        }
    }

    fn autocomplete(
        &self,
        ctx: &mut Context<Self>,
        interaction: Interaction,
        call: CommandCall,
        focused: String,
        typed: String,
    ) {
        let fleet = Rc::clone(&self.fleet);
        let chat = Rc::clone(&self.chat);
        let token = interaction.token.clone();
        let user = interaction.user.id.clone();
        let kind = autocomplete_kind(&call.name, &focused);
        let own_jobs = call.name == "cancel" && focused == "job";
        let typed = typed.to_lowercase();
        self.spawn(
            ctx,
            async move {
                let choices: Vec<Choice> = if own_jobs {
                    fleet
                        .status(&user)
                        .await
                        .map(|view| view.mine)
                        .unwrap_or_default()
                        .into_iter()
                        .rev()
                        .filter(|j| j.job.to_string().starts_with(&typed))
                        .map(|j| Choice {
                            name: format!("{} /{} · {}", texts::short(&j.job), j.template, state_word(j.state)),
                            value: j.job.to_string(),
                        })
                        .collect()
                } else if let Some(kind) = kind {
                    fleet
                        .models(kind)
                        .await
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|name| name.len() <= MAX_CHOICE_TEXT)
                        .filter(|name| name.to_lowercase().contains(&typed))
                        .map(|name| Choice {
                            name: clip(&name, MAX_CHOICE_TEXT),
                            value: name,
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                let choices = choices.into_iter().take(MAX_CHOICES).collect();
                chat.acknowledge(&token, Ack::Choices(choices)).await
            },
            |result, _, _| {
                if let Err(e) = result {
                    tracing::warn!(target: "fleet.discord", "could not send autocomplete choices: {e}");
                }
            },
        );
    }

    fn button(
        &mut self,
        ctx: &mut Context<Self>,
        interaction: Interaction,
        custom_id: &str,
        message: ClickedMessage,
    ) {
        let action = match ButtonAction::decode(custom_id) {
            Ok(action) => action,
            Err(problem) => return self.reply(ctx, &interaction, texts::button_problem(&problem)),
        };
        if let Err(refusal) = self.settings.access.check(&interaction) {
            return self.reply(ctx, &interaction, texts::refusal(&refusal));
        }
        match action {
            ButtonAction::Cancel(job) => self.cancel_button(ctx, &interaction, job),
            ButtonAction::LoraPage { page } => {
                let fleet = Rc::clone(&self.fleet);
                let chat = Rc::clone(&self.chat);
                let token = interaction.token.clone();
                let page_size = self.settings.lora_page_size;
                self.spawn(
                    ctx,
                    async move {
                        let page = match fleet.models(ModelKind::Lora).await {
                            Ok(names) => lora_page(&names, page, page_size),
                            Err(e) => ChatMessage::private(texts::job_problem(&e)),
                        };
                        chat.acknowledge(&token, Ack::Update(page)).await
                    },
                    |result, _, _| {
                        if let Err(e) = result {
                            tracing::warn!(target: "fleet.discord", "could not turn a /loras page: {e}");
                        }
                    },
                );
            }
            ButtonAction::Reroll { template } => {
                let Some(command) = job_command(&template) else {
                    return self.reply(
                        ctx,
                        &interaction,
                        format!("`/{template}` is not a command of this bot any more."),
                    );
                };
                let Some(info) = self.template(command.template) else {
                    return self.reply(
                        ctx,
                        &interaction,
                        format!(
                            "This server has no `{}` template any more.",
                            command.template
                        ),
                    );
                };
                let embed = message.embed.clone().unwrap_or_default();
                match call_from_fields(command, info, &embed, true) {
                    Ok(call) => self.job_command(ctx, interaction, command, &call),
                    Err(problem) => self.reply(
                        ctx,
                        &interaction,
                        texts::option_problem(command.name, &problem),
                    ),
                }
            }
            ButtonAction::Upscale { image } => {
                let Some(command) = job_command("upscale") else {
                    return self.reply(ctx, &interaction, "Upscaling is not available.".into());
                };
                let Some(attachment) = message.attachments.get(image).cloned() else {
                    return self.reply(
                        ctx,
                        &interaction,
                        format!(
                            "This message has no image {}; it may have been edited.",
                            image + 1
                        ),
                    );
                };
                let call =
                    CommandCall::new("upscale").with("image", OptionValue::Attachment(attachment));
                self.job_command(ctx, interaction, command, &call);
            }
        }
    }

    fn cancel_button(&self, ctx: &mut Context<Self>, interaction: &Interaction, job: JobId) {
        let fleet = Rc::clone(&self.fleet);
        let chat = Rc::clone(&self.chat);
        let token = interaction.token.clone();
        let user = interaction.user.id.clone();
        let operator = self.settings.access.is_operator(interaction);
        let delivering = self.deliveries.contains_key(&job);
        self.spawn(
            ctx,
            async move {
                chat.acknowledge(&token, Ack::DeferUpdate).await?;
                match fleet.cancel(job, &user, operator).await {
                    // The job's delivery shows the cancellation.
                    Ok(()) => Ok(()),
                    Err(problem) => {
                        if matches!(problem, JobError::Unknown(_)) && !delivering {
                            // A message of a job lost in a restart: it will never change again.
                            let stale = ChatMessage::text(texts::lost());
                            let _ = chat
                                .edit(&MessagePlace::Original(token.clone()), stale)
                                .await;
                        }
                        chat.followup(&token, ChatMessage::private(texts::job_problem(&problem)))
                            .await
                            .map(|_| ())
                    }
                }
            },
            |result, _, _| {
                if let Err(e) = result {
                    tracing::warn!(target: "fleet.discord", "could not answer a cancel click: {e}");
                }
            },
        );
    }

    /// Acknowledges, downloads the images, submits; then delivers the job.
    fn start_job(
        &mut self,
        ctx: &mut Context<Self>,
        interaction: Interaction,
        command: &'static JobCommand,
        params: JobParams,
    ) {
        self.starting += 1;
        let chat = Rc::clone(&self.chat);
        let fleet = Rc::clone(&self.fleet);
        let limit = self.settings.max_image_bytes;
        let token = interaction.token.clone();
        let order = JobOrder {
            user: interaction.user.id.clone(),
            roles: interaction.user.roles.clone(),
            template: command.template.to_string(),
            params: params.params.clone(),
            images: Vec::new(),
            note: json!({"discord": {
                "user": interaction.user.discord_id,
                "channel": interaction.channel,
                "interaction": interaction.token.id,
            }}),
        };
        let images = params.images.clone();
        self.spawn(
            ctx,
            async move {
                chat.acknowledge(&token, Ack::Defer { ephemeral: true }).await?;
                let refused = |text: String| Ok(Err(ChatMessage::private(text)));
                let mut order = order;
                for (param, attachment) in images {
                    if attachment.size > limit {
                        return refused(texts::order_problem(&OrderError::Invalid {
                            param: Some(param),
                            message: format!(
                                "`{}` is {} MiB; images may be at most {} MiB",
                                attachment.filename,
                                attachment.size.div_ceil(1 << 20),
                                limit >> 20
                            ),
                        }));
                    }
                    match chat.download(&attachment, limit).await {
                        Ok(bytes) => order.images.push(OrderImage {
                            param,
                            filename: attachment.filename.clone(),
                            bytes,
                        }),
                        Err(problem) => return refused(texts::download_problem(&param, &problem)),
                    }
                }
                match fleet.submit(order).await {
                    Ok(accepted) => Ok(Ok(accepted)),
                    Err(OrderError::Invalid {
                        param: Some(param),
                        message,
                    }) => {
                        // Name the option the user typed, not the template's parameter.
                        let option = command.option_for(&param).unwrap_or(&param).to_string();
                        refused(texts::order_problem(&OrderError::Invalid {
                            param: Some(option),
                            message,
                        }))
                    }
                    Err(problem) => refused(texts::order_problem(&problem)),
                }
            },
            move |outcome: Result<Result<_, ChatMessage>, ChatError>, act, ctx| {
                act.starting -= 1;
                match outcome {
                    Err(e) => {
                        tracing::warn!(target: "fleet.discord", "could not answer a job command: {e}");
                        act.wake_drain_waiters();
                    }
                    Ok(Err(refusal)) => {
                        let chat = Rc::clone(&act.chat);
                        let token = interaction.token.clone();
                        act.spawn(
                            ctx,
                            async move { chat.edit(&MessagePlace::Original(token), refusal).await },
                            |result, act, _| {
                                if let Err(e) = result {
                                    tracing::warn!(target: "fleet.discord", "could not tell a refusal: {e}");
                                }
                                act.wake_drain_waiters();
                            },
                        );
                    }
                    Ok(Ok(accepted)) => act.deliver(ctx, interaction, command, params, accepted),
                }
            },
        );
    }

    fn deliver(
        &mut self,
        ctx: &mut Context<Self>,
        interaction: Interaction,
        command: &'static JobCommand,
        params: JobParams,
        accepted: super::fleet_port::Accepted,
    ) {
        let now = Instant::now();
        let job = accepted.job;
        let buttons = ResultButtons {
            reroll: true,
            upscale: command.name != "upscale" && self.template("upscale").is_some(),
        };
        let mut delivery = Delivery::new(
            DeliveryStart {
                job,
                command: command.name.to_string(),
                owner: interaction.user.clone(),
                interaction: interaction.token.clone(),
                channel: interaction.channel.clone().unwrap_or_default(),
                fields: params.fields,
                seed: accepted.seed,
                position: accepted.position,
                upload_limit: interaction.upload_limit,
                buttons,
                previews: self.settings.previews,
                received: interaction.received,
                token_handover: self.settings.token_handover,
                interval: self.settings.progress_interval,
            },
            now,
        );
        let first = delivery.first_message();
        let handover_in = delivery.handover_at().saturating_duration_since(now);
        self.deliveries.insert(job, delivery);
        ctx.run_later(handover_in, move |act, ctx| act.tick(ctx, job));

        let fleet = Rc::clone(&self.fleet);
        self.spawn(
            ctx,
            async move { fleet.follow(job).await },
            move |stream, act, ctx| match stream {
                Ok(stream) => {
                    ctx.add_stream(stream);
                }
                Err(e) => {
                    let failed = JobEvent::Failed {
                        job,
                        message: format!("the job could not be followed: {e}"),
                        retriable: false,
                    };
                    StreamHandler::handle(act, failed, ctx);
                }
            },
        );

        let chat = Rc::clone(&self.chat);
        let token = interaction.token.clone();
        let receipt = ChatMessage::private(texts::receipt(&accepted));
        self.spawn(
            ctx,
            async move {
                if let Err(e) = chat.edit(&MessagePlace::Original(token.clone()), receipt).await {
                    tracing::warn!(target: "fleet.discord", "could not send a job's receipt: {e}");
                }
                chat.followup(&token, first).await
            },
            move |posted, act, ctx| {
                if let Err(e) = &posted {
                    tracing::warn!(target: "fleet.discord", %job, "could not post the job's message: {e}; trying the channel");
                }
                let now = Instant::now();
                if let Some(d) = act.deliveries.get_mut(&job) {
                    let steps = d.posted(posted.ok(), now);
                    act.carry_out(ctx, job, steps);
                }
            },
        );
    }

    fn tick(&mut self, ctx: &mut Context<Self>, job: JobId) {
        if let Some(d) = self.deliveries.get_mut(&job) {
            let steps = d.tick(Instant::now());
            self.carry_out(ctx, job, steps);
        }
    }

    /// Carries out what a delivery asked for.
    fn carry_out(&mut self, ctx: &mut Context<Self>, job: JobId, steps: Vec<Step>) {
        for step in steps {
            match step {
                Step::Edit(place, message) => {
                    let chat = Rc::clone(&self.chat);
                    self.spawn(ctx, async move { chat.edit(&place, message).await }, move |result, act, ctx| {
                        let expired = matches!(result, Err(ChatError::Expired(_)));
                        if let Err(e) = &result && !expired {
                            tracing::warn!(target: "fleet.discord", %job, "could not edit the job's message: {e}");
                        }
                        if let Some(d) = act.deliveries.get_mut(&job) {
                            let steps = d.sent(expired, Instant::now());
                            act.carry_out(ctx, job, steps);
                        }
                    });
                }
                Step::WakeAt(at) => {
                    let wait = at.saturating_duration_since(Instant::now());
                    ctx.run_later(wait, move |act, ctx| act.tick(ctx, job));
                }
                Step::FetchResults => {
                    let fleet = Rc::clone(&self.fleet);
                    let limit = self.deliveries.get(&job).map_or(0, |d| d.upload_limit);
                    self.spawn(
                        ctx,
                        async move { fleet.results(job, limit).await },
                        move |results, act, ctx| {
                            if let Some(d) = act.deliveries.get_mut(&job) {
                                let steps =
                                    d.results(results.map_err(|e| e.to_string()), Instant::now());
                                act.carry_out(ctx, job, steps);
                            }
                        },
                    );
                }
                Step::HandOver {
                    channel,
                    message,
                    old,
                    old_says,
                } => {
                    let chat = Rc::clone(&self.chat);
                    self.spawn(
                        ctx,
                        async move {
                            let posted = chat.post(&channel, message).await;
                            if posted.is_ok()
                                && let Some(old) = old
                                && let Err(e) = chat.edit(&old, old_says).await
                            {
                                tracing::debug!(target: "fleet.discord", "could not point the old message to the new one: {e}");
                            }
                            posted
                        },
                        move |posted, act, ctx| {
                            if let Err(e) = &posted {
                                tracing::warn!(target: "fleet.discord", %job, "could not post the job's progress in its channel: {e}");
                            }
                            if let Some(d) = act.deliveries.get_mut(&job) {
                                let steps = d.handed_over(posted.ok(), Instant::now());
                                act.carry_out(ctx, job, steps);
                            }
                        },
                    );
                }
                Step::TellOwner(message) => {
                    let Some(token) = self.deliveries.get(&job).map(|d| d.interaction.clone())
                    else {
                        continue;
                    };
                    let chat = Rc::clone(&self.chat);
                    self.spawn(ctx, async move { chat.followup(&token, message).await }, move |result, _, _| {
                        if let Err(e) = result {
                            tracing::warn!(target: "fleet.discord", %job, "could not tell the owner why the job failed: {e}");
                        }
                    });
                }
                Step::Finished => {
                    self.deliveries.remove(&job);
                    self.wake_drain_waiters();
                }
            }
        }
    }

    fn wake_drain_waiters(&mut self) {
        if self.is_drained() {
            for waker in self.drain_waiters.drain(..) {
                waker.wake();
            }
        }
    }

    fn is_drained(&self) -> bool {
        self.starting == 0 && self.deliveries.is_empty()
    }
}

fn state_word(state: JobState) -> &'static str {
    match state {
        JobState::Queued => "queued",
        JobState::Running => "running",
        JobState::Done => "done",
        JobState::Failed => "failed",
        JobState::Cancelled => "cancelled",
    }
}

impl Actor for DiscordSession {
    type Context = Context<Self>;
}

impl Handler<Incoming> for DiscordSession {
    type Result = ();

    fn handle(&mut self, Incoming(interaction): Incoming, ctx: &mut Self::Context) {
        match interaction.kind.clone() {
            InteractionKind::Command(call) => self.command(ctx, interaction, call),
            InteractionKind::Autocomplete {
                call,
                focused,
                typed,
            } => self.autocomplete(ctx, interaction, call, focused, typed),
            InteractionKind::Button { custom_id, message } => {
                self.button(ctx, interaction, &custom_id, message)
            }
        }
    }
}

impl StreamHandler<JobEvent> for DiscordSession {
    fn handle(&mut self, event: JobEvent, ctx: &mut Self::Context) {
        let job = event.job();
        if let Some(d) = self.deliveries.get_mut(&job) {
            let steps = d.observe(&event, Instant::now());
            self.carry_out(ctx, job, steps);
        }
    }

    /// One job's events ended; the session goes on.
    fn finished(&mut self, _ctx: &mut Self::Context) {}
}

impl Handler<RegisterCommands> for DiscordSession {
    type Result = ResponseFuture<Result<usize, ChatError>>;

    fn handle(&mut self, _: RegisterCommands, _ctx: &mut Self::Context) -> Self::Result {
        let chat = Rc::clone(&self.chat);
        let commands = self.commands.clone();
        let guilds = self.settings.guilds.clone();
        Box::pin(async move {
            let count = commands.len();
            chat.register_commands(commands, guilds).await?;
            Ok(count)
        })
    }
}

impl Handler<StopTaking> for DiscordSession {
    type Result = ();

    fn handle(&mut self, _: StopTaking, _ctx: &mut Self::Context) {
        self.closing = true;
    }
}

impl Handler<GetSessionLoad> for DiscordSession {
    type Result = MessageResult<GetSessionLoad>;

    fn handle(&mut self, _: GetSessionLoad, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(SessionLoad {
            starting: self.starting,
            delivering: self.deliveries.len(),
        })
    }
}

impl Handler<WaitDelivered> for DiscordSession {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: WaitDelivered, _ctx: &mut Self::Context) -> Self::Result {
        Box::pin(Delivered)
    }
}

/// Resolves once the session has nothing left to deliver.
struct Delivered;

impl ActorFuture<DiscordSession> for Delivered {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        act: &mut DiscordSession,
        _ctx: &mut Context<DiscordSession>,
        task: &mut TaskContext<'_>,
    ) -> Poll<()> {
        if act.is_drained() {
            Poll::Ready(())
        } else {
            if !act.drain_waiters.iter().any(|w| w.will_wake(task.waker())) {
                act.drain_waiters.push(task.waker().clone());
            }
            Poll::Pending
        }
    }
}
