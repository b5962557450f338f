//! The delivery of one job to Discord: the state it shows (accepted → queued(position, ETA) →
//! running(node, percent) → delivered / failed / cancelled), where its message lives (a
//! followup of the interaction, then, before the 15-minute token expires, an ordinary channel
//! message), and when to edit it (through [`EditThrottle`]: at most once per
//! `progress_interval`, and less often the further back a job waits in the queue, since its
//! position changes slowly and a long queue would otherwise make hundreds of edits a second).
//! Plain code: the session actor carries out the [`Step`]s it returns and reports back.

use std::time::{Duration, Instant};

use crate::ids::JobId;
use crate::job::JobEvent;

use super::custom_id::ButtonAction;
use super::fleet_port::ResultFiles;
use super::interaction::{ChatUser, InteractionToken};
use super::message::{
    Button, ButtonStyle, ChatFile, ChatMessage, Embed, EmbedField, Files, MessagePlace,
};
use super::texts;
use super::throttle::{EditThrottle, Go};

/// What the job's message shows.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    Queued {
        position: usize,
        eta: Option<Duration>,
    },
    Running {
        instance: String,
        node: Option<String>,
        percent: Option<u8>,
    },
    Retrying {
        attempt: u32,
        reason: String,
    },
    /// Done; the result files are being fetched.
    Fetching,
    Delivered(ResultFiles),
    Failed(String),
    Cancelled,
}

impl Stage {
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Delivered(_) | Self::Failed(_) | Self::Cancelled)
    }
}

/// What the session must do for a delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Edit the job's message to this, then call [`Delivery::sent`].
    Edit(MessagePlace, ChatMessage),
    /// Call [`Delivery::tick`] at this moment.
    WakeAt(Instant),
    /// Fetch the job's results (files within the upload limit), then call
    /// [`Delivery::results`].
    FetchResults,
    /// The interaction's token is about to expire: post this as a channel message, call
    /// [`Delivery::handed_over`] with its place, and edit the old message to `old_says`.
    HandOver {
        channel: String,
        message: ChatMessage,
        old: Option<MessagePlace>,
        old_says: ChatMessage,
    },
    /// Tell the job's owner privately (a followup of their interaction).
    TellOwner(ChatMessage),
    /// The final state is shown: forget this delivery.
    Finished,
}

/// The least time between two edits of a job waiting at `position` (0 = next): the interval
/// near the front, growing by one interval for every 10 places further back.
pub fn queued_interval(interval: Duration, position: usize) -> Duration {
    interval.saturating_mul(1 + u32::try_from(position / 10).unwrap_or(u32::MAX))
}

/// Which buttons a finished job's message offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResultButtons {
    pub reroll: bool,
    pub upscale: bool,
}

/// One job on its way to Discord.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub job: JobId,
    /// The command (= template) that started it.
    pub command: String,
    pub owner: ChatUser,
    pub interaction: InteractionToken,
    /// Where the progress continues once the token is about to expire.
    pub channel: String,
    /// The options as asked (the re-roll reads them back from the message).
    pub fields: Vec<EmbedField>,
    pub seed: Option<u64>,
    /// Largest file the message may carry.
    pub upload_limit: u64,
    buttons: ResultButtons,
    previews: bool,
    stage: Stage,
    preview: Option<ChatFile>,
    preview_changed: bool,
    place: Option<MessagePlace>,
    /// The message before a hand-over, edited on if the channel message cannot be posted.
    fallback: Option<MessagePlace>,
    handover_at: Instant,
    handed_over: bool,
    throttle: EditThrottle,
    interval: Duration,
    /// The edit in flight shows a final state.
    final_in_flight: bool,
    accepted_at: Instant,
}

/// Everything a delivery starts from.
#[derive(Debug, Clone)]
pub struct DeliveryStart {
    pub job: JobId,
    pub command: String,
    pub owner: ChatUser,
    pub interaction: InteractionToken,
    pub channel: String,
    pub fields: Vec<EmbedField>,
    pub seed: Option<u64>,
    pub position: usize,
    pub upload_limit: u64,
    pub buttons: ResultButtons,
    pub previews: bool,
    /// When the interaction arrived (its token expires 15 minutes after).
    pub received: Instant,
    pub token_handover: Duration,
    pub interval: Duration,
}

impl Delivery {
    /// A delivery whose first message is being posted (call [`Delivery::posted`] when it is).
    pub fn new(start: DeliveryStart, now: Instant) -> Self {
        let mut throttle = EditThrottle::new(start.interval);
        throttle.started(now);
        let mut fields = start.fields;
        if let Some(seed) = start.seed {
            fields.retain(|f| f.name != "seed");
            fields.push(EmbedField::new("seed", &seed.to_string(), true));
        }
        Self {
            job: start.job,
            command: start.command,
            owner: start.owner,
            interaction: start.interaction,
            channel: start.channel,
            fields,
            seed: start.seed,
            upload_limit: start.upload_limit,
            buttons: start.buttons,
            previews: start.previews,
            stage: Stage::Queued {
                position: start.position,
                eta: None,
            },
            preview: None,
            preview_changed: false,
            place: None,
            fallback: None,
            handover_at: start.received + start.token_handover,
            handed_over: false,
            throttle,
            interval: start.interval,
            final_in_flight: false,
            accepted_at: now,
        }
    }

    pub fn stage(&self) -> &Stage {
        &self.stage
    }

    pub fn place(&self) -> Option<&MessagePlace> {
        self.place.as_ref()
    }

    pub fn handover_at(&self) -> Instant {
        self.handover_at
    }

    /// The message the job's progress is first posted as.
    pub fn first_message(&mut self) -> ChatMessage {
        self.render()
    }

    /// The first message was posted (or failed to be: `None`, and a channel message is tried).
    pub fn posted(&mut self, place: Option<MessagePlace>, now: Instant) -> Vec<Step> {
        self.place = place;
        let go = self.throttle.finished(now);
        if self.place.is_none() && !self.handed_over {
            return self.hand_over(now);
        }
        self.after(go, now)
    }

    /// An event of the job.
    pub fn observe(&mut self, event: &JobEvent, now: Instant) -> Vec<Step> {
        if self.stage.is_final() || self.stage == Stage::Fetching {
            return Vec::new();
        }
        let mut steps = Vec::new();
        match event {
            JobEvent::Queued { position, eta, .. } => {
                self.stage = Stage::Queued {
                    position: *position,
                    eta: *eta,
                };
            }
            JobEvent::Started { instance, .. } => {
                self.stage = Stage::Running {
                    instance: instance.0.clone(),
                    node: None,
                    percent: None,
                };
            }
            JobEvent::Executing { node, title, .. } => {
                if let Stage::Running {
                    node: shown,
                    percent,
                    ..
                } = &mut self.stage
                {
                    *shown = Some(title.clone().unwrap_or_else(|| format!("node {node}")));
                    *percent = None;
                }
            }
            JobEvent::Progress { value, max, .. } => {
                if let Stage::Running { percent, .. } = &mut self.stage {
                    *percent = (*max > 0).then(|| (value.saturating_mul(100) / max).min(100) as u8);
                }
            }
            JobEvent::Preview { mime, bytes, .. } => {
                if !self.previews || bytes.is_empty() || bytes.len() as u64 > self.upload_limit {
                    return Vec::new();
                }
                let name = if mime.contains("png") {
                    "preview.png"
                } else {
                    "preview.jpg"
                };
                self.preview = Some(ChatFile::new(name, bytes.as_slice()));
                self.preview_changed = true;
            }
            JobEvent::Retrying {
                attempt, reason, ..
            } => {
                self.stage = Stage::Retrying {
                    attempt: *attempt,
                    reason: reason.clone(),
                };
            }
            JobEvent::Done { .. } => {
                self.stage = Stage::Fetching;
                steps.push(Step::FetchResults);
            }
            JobEvent::Failed { message, .. } => {
                return self.finish(Stage::Failed(message.clone()), now);
            }
            JobEvent::Cancelled { .. } => return self.finish(Stage::Cancelled, now),
        }
        let interval = match &self.stage {
            Stage::Queued { position, .. } => queued_interval(self.interval, *position),
            _ => self.interval,
        };
        self.throttle.set_interval(interval);
        let go = self.throttle.changed(now, false);
        steps.extend(self.after(go, now));
        steps
    }

    /// The results of a done job arrived (`Err`: why they could not be fetched).
    pub fn results(&mut self, results: Result<ResultFiles, String>, now: Instant) -> Vec<Step> {
        match results {
            Ok(files) => self.finish(Stage::Delivered(files), now),
            Err(message) => self.finish(
                Stage::Failed(format!(
                    "the job finished, but its images could not be fetched: {message}"
                )),
                now,
            ),
        }
    }

    fn finish(&mut self, stage: Stage, now: Instant) -> Vec<Step> {
        let mut steps = Vec::new();
        if let Stage::Failed(message) = &stage
            && !self.handed_over
        {
            let private = ChatMessage::private(texts::failed_private(&self.job, message));
            steps.push(Step::TellOwner(private));
        }
        self.stage = stage;
        let go = self.throttle.changed(now, true);
        steps.extend(self.after(go, now));
        steps
    }

    /// A wake-up asked for with [`Step::WakeAt`] came.
    pub fn tick(&mut self, now: Instant) -> Vec<Step> {
        let go = self.throttle.woke(now);
        self.after(go, now)
    }

    /// The edit asked for ended; `expired` when the token no longer opened the message.
    pub fn sent(&mut self, expired: bool, now: Instant) -> Vec<Step> {
        let was_final = std::mem::take(&mut self.final_in_flight);
        let go = self.throttle.finished(now);
        if expired && !self.handed_over {
            // Show the latest state (final or not) in a channel message instead; the old
            // message can no longer be edited.
            self.place = None;
            return self.hand_over(now);
        }
        if was_final {
            return vec![Step::Finished];
        }
        self.after(go, now)
    }

    /// The channel message was posted (`None`: it could not be; the old message stays).
    pub fn handed_over(&mut self, place: Option<MessagePlace>, now: Instant) -> Vec<Step> {
        let was_final = std::mem::take(&mut self.final_in_flight);
        let fallback = self.fallback.take();
        self.place = match place {
            Some(place) => Some(place),
            // No channel message (no permission to post there?): go on where it was, while the
            // token lasts.
            None => fallback,
        };
        let go = self.throttle.finished(now);
        if was_final || self.place.is_none() {
            return vec![Step::Finished];
        }
        self.after(go, now)
    }

    /// Turns the throttle's answer into steps, handing over first when it is time.
    fn after(&mut self, go: Go, now: Instant) -> Vec<Step> {
        let handover_due = !self.handed_over && now >= self.handover_at;
        match go {
            Go::Now if handover_due => self.hand_over(now),
            Go::Now => {
                let message = self.render();
                self.final_in_flight = self.stage.is_final();
                match &self.place {
                    Some(place) => vec![Step::Edit(place.clone(), message)],
                    None => {
                        let _ = self.throttle.finished(now);
                        vec![Step::Finished]
                    }
                }
            }
            _ if handover_due && !self.throttle.in_flight() => self.hand_over(now),
            Go::Wait => Vec::new(),
            Go::At(at) => vec![Step::WakeAt(at)],
        }
    }

    fn hand_over(&mut self, now: Instant) -> Vec<Step> {
        self.handed_over = true;
        self.throttle.started(now);
        self.final_in_flight = self.stage.is_final();
        // The new message carries the latest preview too.
        self.preview_changed = true;
        let message = self.render();
        vec![Step::HandOver {
            channel: self.channel.clone(),
            message,
            old: {
                self.fallback = self.place.take();
                self.fallback.clone()
            },
            old_says: ChatMessage::text(texts::moved()).with_files(Vec::new()),
        }]
    }

    /// What the job's message shows now.
    fn render(&mut self) -> ChatMessage {
        let head = format!("{} · `/{}`", self.owner.mention(), self.command);
        let embed = Embed {
            title: format!("/{}", self.command),
            description: String::new(),
            fields: self.fields.clone(),
            image: None,
        };
        let cancel = || {
            ButtonAction::Cancel(self.job)
                .encode()
                .map(|id| vec![Button::new("Cancel", id, ButtonStyle::Danger)])
                .unwrap_or_default()
        };
        let line = match &self.stage {
            Stage::Queued { position, eta } => texts::queued(*position, *eta),
            Stage::Running {
                instance,
                node,
                percent,
            } => texts::running(instance, node.as_deref(), *percent),
            Stage::Retrying { attempt, reason } => texts::retrying(*attempt, reason),
            Stage::Fetching => texts::fetching().to_string(),
            Stage::Delivered(results) => {
                let took = self.accepted_at.elapsed();
                let text = format!(
                    "{head}\n{}",
                    texts::delivered(took, self.seed, &results.notes)
                );
                let mut buttons = Vec::new();
                if self.buttons.reroll
                    && let Ok(id) = (ButtonAction::Reroll {
                        template: self.command.clone(),
                    })
                    .encode()
                {
                    buttons.push(Button::new("🎲 Re-roll", id, ButtonStyle::Primary));
                }
                if self.buttons.upscale {
                    for (i, _) in results.files.iter().enumerate().take(4) {
                        if let Ok(id) = (ButtonAction::Upscale { image: i }).encode() {
                            let label = if results.files.len() == 1 {
                                "🔍 Upscale".to_string()
                            } else {
                                format!("🔍 Upscale {}", i + 1)
                            };
                            buttons.push(Button::new(&label, id, ButtonStyle::Secondary));
                        }
                    }
                }
                return ChatMessage::text(text)
                    .with_embed(embed)
                    .with_buttons(buttons)
                    .with_files(results.files.clone());
            }
            Stage::Failed(message) => {
                let text = if self.handed_over {
                    format!("{head}\n{}", texts::failed_private(&self.job, message))
                } else {
                    format!("{head}\n{}", texts::failed_public())
                };
                return ChatMessage::text(text)
                    .with_embed(embed)
                    .with_files(Vec::new());
            }
            Stage::Cancelled => {
                return ChatMessage::text(format!("{head}\n{}", texts::cancelled()))
                    .with_embed(embed)
                    .with_files(Vec::new());
            }
        };
        let mut message = ChatMessage::text(format!("{head}\n{line}"))
            .with_embed(embed)
            .with_buttons(cancel());
        if std::mem::take(&mut self.preview_changed)
            && let Some(preview) = &self.preview
        {
            message.files = Files::Replace(vec![preview.clone()]);
        }
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::InstanceId;
    use crate::job::JobOutput;

    const STEP: Duration = Duration::from_millis(1500);

    fn token() -> InteractionToken {
        InteractionToken {
            id: "1".into(),
            token: "tok".into(),
            application_id: "2".into(),
        }
    }

    fn followup() -> MessagePlace {
        MessagePlace::Followup {
            interaction: token(),
            message: "55".into(),
        }
    }

    fn start(received: Instant) -> DeliveryStart {
        DeliveryStart {
            job: JobId::new(),
            command: "generate".into(),
            owner: ChatUser::discord("7", "ann", Vec::new()),
            interaction: token(),
            channel: "300".into(),
            fields: vec![EmbedField::new("prompt", "a cat", false)],
            seed: Some(42),
            position: 2,
            upload_limit: 1 << 20,
            buttons: ResultButtons {
                reroll: true,
                upscale: true,
            },
            previews: true,
            received,
            token_handover: Duration::from_secs(14 * 60),
            interval: STEP,
        }
    }

    fn posted(t0: Instant) -> Delivery {
        let mut d = Delivery::new(start(t0), t0);
        let first = d.first_message();
        assert!(first.content.contains("position 3"), "{}", first.content);
        assert_eq!(first.buttons[0].label, "Cancel");
        assert_eq!(d.posted(Some(followup()), t0), Vec::new());
        d
    }

    fn edit_text(steps: &[Step]) -> Option<String> {
        steps.iter().find_map(|s| match s {
            Step::Edit(_, m) => Some(m.content.clone()),
            _ => None,
        })
    }

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn progress_is_edited_at_most_once_per_interval_and_shows_the_latest_state() {
        let t0 = Instant::now();
        let mut d = posted(t0);
        let job = d.job;
        let started = JobEvent::Started {
            job,
            instance: InstanceId::new("gpu0"),
            attempt: 1,
        };
        // The post started at t0, so the first edit waits for the interval.
        assert_eq!(
            d.observe(&started, ms(t0, 100)),
            vec![Step::WakeAt(ms(t0, 1500))]
        );
        let executing = JobEvent::Executing {
            job,
            node: "3".into(),
            title: Some("KSampler".into()),
        };
        assert_eq!(d.observe(&executing, ms(t0, 200)), Vec::new());
        let progress = |v| JobEvent::Progress {
            job,
            node: "3".into(),
            value: v,
            max: 20,
        };
        assert_eq!(d.observe(&progress(5), ms(t0, 300)), Vec::new());
        let steps = d.tick(ms(t0, 1500));
        let text = edit_text(&steps).expect("an edit at the wake-up");
        assert!(
            text.contains("gpu0") && text.contains("KSampler 25%"),
            "{text}"
        );
        assert_eq!(
            d.observe(&progress(10), ms(t0, 1600)),
            Vec::new(),
            "one edit in flight"
        );
        let steps = d.sent(false, ms(t0, 1700));
        assert_eq!(steps, vec![Step::WakeAt(ms(t0, 3000))]);
        let text = edit_text(&d.tick(ms(t0, 3000))).unwrap();
        assert!(text.contains("50%"), "{text}");
    }

    #[test]
    fn a_done_job_fetches_its_results_and_sends_them_at_once_with_buttons() {
        let t0 = Instant::now();
        let mut d = posted(t0);
        let job = d.job;
        let done = JobEvent::Done {
            job,
            outputs: vec![JobOutput {
                node_id: "9".into(),
                filename: "a.png".into(),
                subfolder: String::new(),
                kind: "output".into(),
            }],
        };
        let steps = d.observe(&done, ms(t0, 10));
        assert_eq!(steps[0], Step::FetchResults);
        let files = ResultFiles {
            files: vec![ChatFile::new("a.png", vec![1u8, 2, 3])],
            notes: vec!["recompressed".into()],
        };
        let steps = d.results(Ok(files), ms(t0, 20));
        let Some(Step::Edit(place, message)) = steps.first() else {
            panic!("{steps:?}");
        };
        assert_eq!(place, &followup());
        assert!(message.content.contains("Done") && message.content.contains("seed 42"));
        assert!(message.content.contains("recompressed"));
        assert_eq!(
            message.files,
            Files::Replace(vec![ChatFile::new("a.png", vec![1u8, 2, 3])])
        );
        let ids: Vec<ButtonAction> = message
            .buttons
            .iter()
            .map(|b| ButtonAction::decode(&b.custom_id).unwrap())
            .collect();
        assert_eq!(
            ids,
            vec![
                ButtonAction::Reroll {
                    template: "generate".into()
                },
                ButtonAction::Upscale { image: 0 }
            ]
        );
        let embed = message.embed.as_ref().unwrap();
        assert_eq!(embed.field("prompt"), Some("a cat"));
        assert_eq!(
            embed.field("seed"),
            Some("42"),
            "the seed used is on the message"
        );
        assert_eq!(d.sent(false, ms(t0, 30)), vec![Step::Finished]);
    }

    #[test]
    fn a_failure_is_told_privately_and_shown_publicly_without_details() {
        let t0 = Instant::now();
        let mut d = posted(t0);
        let failed = JobEvent::Failed {
            job: d.job,
            message: "node 3 (KSampler) failed: out of memory".into(),
            retriable: false,
        };
        let steps = d.observe(&failed, ms(t0, 10));
        let Step::TellOwner(private) = &steps[0] else {
            panic!("{steps:?}");
        };
        assert!(private.ephemeral && private.content.contains("KSampler"));
        let text = edit_text(&steps).unwrap();
        assert!(
            text.contains("failed") && !text.contains("KSampler"),
            "{text}"
        );
        assert_eq!(d.sent(false, ms(t0, 20)), vec![Step::Finished]);
    }

    #[test]
    fn progress_moves_to_a_channel_message_before_the_token_expires() {
        let t0 = Instant::now();
        let mut s = start(t0);
        s.token_handover = Duration::from_secs(60);
        let mut d = Delivery::new(s, t0);
        d.posted(Some(followup()), t0);
        let steps = d.tick(t0 + Duration::from_secs(60));
        let Some(Step::HandOver {
            channel,
            message,
            old,
            old_says,
        }) = steps.first()
        else {
            panic!("{steps:?}");
        };
        assert_eq!(channel, "300");
        assert!(message.content.contains("Queued"));
        assert_eq!(old.as_ref(), Some(&followup()));
        assert!(old_says.buttons.is_empty() && old_says.content.contains("continues"));
        let place = MessagePlace::Channel {
            channel: "300".into(),
            message: "77".into(),
        };
        assert_eq!(
            d.handed_over(Some(place.clone()), ms(t0, 60_100)),
            Vec::new()
        );
        let cancelled = JobEvent::Cancelled { job: d.job };
        let steps = d.observe(&cancelled, ms(t0, 60_200));
        assert!(
            matches!(&steps[0], Step::Edit(p, m) if *p == place && m.content.contains("Cancelled")),
            "{steps:?}"
        );
    }

    #[test]
    fn an_expired_token_hands_the_latest_state_over_at_once() {
        let t0 = Instant::now();
        let mut d = posted(t0);
        let failed = JobEvent::Failed {
            job: d.job,
            message: "boom".into(),
            retriable: false,
        };
        d.observe(&failed, ms(t0, 10));
        let steps = d.sent(true, ms(t0, 20));
        let Some(Step::HandOver { message, .. }) = steps.first() else {
            panic!("{steps:?}");
        };
        assert!(
            message.content.contains("boom"),
            "public once handed over: {}",
            message.content
        );
        let place = MessagePlace::Channel {
            channel: "300".into(),
            message: "77".into(),
        };
        assert_eq!(d.handed_over(Some(place), ms(t0, 30)), vec![Step::Finished]);
    }

    #[test]
    fn previews_travel_once_when_they_change_and_only_within_the_upload_limit() {
        let t0 = Instant::now();
        let mut d = posted(t0);
        let job = d.job;
        let preview = |n: usize| JobEvent::Preview {
            job,
            mime: "image/jpeg".into(),
            bytes: vec![7; n],
        };
        d.observe(&preview(10), ms(t0, 10));
        let steps = d.tick(ms(t0, 1500));
        let Some(Step::Edit(_, message)) = steps.first() else {
            panic!("{steps:?}");
        };
        assert!(matches!(&message.files, Files::Replace(f) if f[0].name == "preview.jpg"));
        d.sent(false, ms(t0, 1600));
        let progress = JobEvent::Queued {
            job,
            position: 0,
            eta: None,
        };
        d.observe(&progress, ms(t0, 1700));
        let steps = d.tick(ms(t0, 3000));
        let Some(Step::Edit(_, message)) = steps.first() else {
            panic!("{steps:?}");
        };
        assert_eq!(
            message.files,
            Files::Keep,
            "an unchanged preview is not sent again"
        );
        d.sent(false, ms(t0, 3100));
        assert_eq!(
            d.observe(&preview(2 << 20), ms(t0, 3200)),
            Vec::new(),
            "too large for Discord"
        );
    }

    #[test]
    fn without_a_channel_message_the_progress_stays_where_it_was() {
        let t0 = Instant::now();
        let mut s = start(t0);
        s.token_handover = Duration::from_secs(60);
        let mut d = Delivery::new(s, t0);
        d.posted(Some(followup()), t0);
        let steps = d.tick(t0 + Duration::from_secs(60));
        assert!(matches!(steps[0], Step::HandOver { .. }));
        // Posting in the channel failed (no permission there): the followup goes on.
        assert_eq!(d.handed_over(None, ms(t0, 60_100)), Vec::new());
        let steps = d.observe(&JobEvent::Cancelled { job: d.job }, ms(t0, 60_200));
        assert!(
            matches!(&steps[0], Step::Edit(p, _) if *p == followup()),
            "{steps:?}"
        );
    }

    #[test]
    fn jobs_far_back_in_the_queue_are_edited_less_often() {
        assert_eq!(queued_interval(STEP, 3), STEP);
        assert_eq!(queued_interval(STEP, 250), STEP * 26);
        let t0 = Instant::now();
        let mut d = posted(t0);
        let queued = |position| JobEvent::Queued {
            job: d.job,
            position,
            eta: None,
        };
        let steps = d.observe(&queued(120), ms(t0, 100));
        assert_eq!(steps, vec![Step::WakeAt(t0 + STEP * 13)]);
        let mut d = posted(t0);
        let steps = d.observe(
            &JobEvent::Queued {
                job: d.job,
                position: 2,
                eta: None,
            },
            ms(t0, 100),
        );
        assert_eq!(steps, vec![Step::WakeAt(t0 + STEP)]);
    }
}
