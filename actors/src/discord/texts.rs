//! Every sentence the bot says to people. Errors say what was wrong and what to do: the option
//! and its range, how long to wait, the node and ComfyUI's reason.

use std::time::Duration;

use super::access::Refusal;
use super::chat::ChatError;
use super::commands::CommandSpec;
use super::custom_id::CustomIdError;
use super::fleet_port::{Accepted, FleetView, JobError, OperationError, OrderError};
use super::job_options::OptionError;
use crate::job::JobState;

/// A duration as people read it: "12 s", "about 3 min", "about 1 h 20 min".
pub fn readable(d: Duration) -> String {
    let secs = d.as_secs_f64().ceil() as u64;
    match secs {
        0..=59 => format!("{} s", secs.max(1)),
        60..=3599 => format!("about {} min", (secs + 30) / 60),
        _ => {
            let mins = (secs + 30) / 60;
            format!("about {} h {} min", mins / 60, mins % 60)
        }
    }
}

/// The first 8 characters of a job id, as shown to people.
pub fn short(job: &crate::ids::JobId) -> String {
    job.to_string().chars().take(8).collect()
}

pub fn help(commands: &[CommandSpec]) -> String {
    let mut text = String::from(
        "**comfy-fleet** runs image jobs on the server's GPUs. Jobs wait in one fair queue; \
         progress and the result appear in the channel, errors only to you.\n",
    );
    for command in commands {
        if command.subcommands.is_empty() {
            text.push_str(&format!("\n`/{}` — {}", command.name, command.description));
        } else {
            let subs: Vec<&str> = command
                .subcommands
                .iter()
                .map(|s| s.name.as_str())
                .collect();
            text.push_str(&format!(
                "\n`/{} {}` — {}",
                command.name,
                subs.join("|"),
                command.description
            ));
        }
    }
    text.push_str(
        "\n\nButtons: **Cancel** on a running job, **Re-roll** (same settings, new seed) and \
         **Upscale** on a result; they keep working after the bot restarts.",
    );
    text
}

pub fn refusal(refusal: &Refusal) -> String {
    match refusal {
        Refusal::Guild => "This bot is not available in this server.".into(),
        Refusal::DirectMessage => {
            "This bot works in its servers only, not in direct messages.".into()
        }
        Refusal::Channel => "This bot does not take commands in this channel; use one of the channels set aside for it.".into(),
        Refusal::NotOperator => "`/fleet` is for operators: it needs one of the operator roles.".into(),
    }
}

pub fn restarting() -> String {
    "comfy-fleet is restarting and takes no new jobs right now; try again in a minute.".into()
}

pub fn option_problem(command: &str, problem: &OptionError) -> String {
    format!("⚠️ {problem}. Fix it and run `/{command}` again.")
}

pub fn order_problem(problem: &OrderError) -> String {
    match problem {
        OrderError::RateLimited {
            message,
            retry_after,
        } => format!(
            "⏳ Not now: {message}. You can run it again in {}.",
            readable(*retry_after)
        ),
        OrderError::Invalid { param, message } => match param {
            Some(p) => format!("⚠️ `{p}`: {message}"),
            None => format!("⚠️ The job was refused: {message}"),
        },
        OrderError::QueueFull(message) => format!("🚦 {message}"),
        OrderError::ShuttingDown => restarting(),
        OrderError::NotReady(message) => format!("🛠️ {message}"),
        OrderError::Unavailable(message) => {
            format!("🛠️ The fleet could not take the job ({message}); try again in a minute.")
        }
    }
}

pub fn download_problem(option: &str, problem: &ChatError) -> String {
    format!("⚠️ `{option}`: the attachment could not be fetched: {problem}. Attach it again.")
}

pub fn job_problem(problem: &JobError) -> String {
    match problem {
        JobError::Unknown(job) => format!(
            "Job `{}` is no longer running (it ended long ago, or comfy-fleet restarted since).",
            short(job)
        ),
        JobError::NotYours(job) => format!(
            "Job `{}` was started by someone else; only they (or an operator) can cancel it.",
            short(job)
        ),
        JobError::Finished { job, state } => format!(
            "Job `{}` has already {}; there is nothing to cancel.",
            short(job),
            match state {
                JobState::Done => "finished",
                JobState::Failed => "failed",
                JobState::Cancelled => "been cancelled",
                JobState::Queued | JobState::Running => "moved on",
            }
        ),
        JobError::Unavailable(message) => {
            format!("🛠️ The fleet is not answering ({message}); try again in a minute.")
        }
    }
}

pub fn operation(outcome: &Result<String, OperationError>) -> String {
    match outcome {
        Ok(text) => text.clone(),
        Err(OperationError::Failed(reason)) => format!("⚠️ {reason}"),
    }
}

pub fn button_problem(problem: &CustomIdError) -> String {
    format!("⚠️ {}.", capitalised(&problem.to_string()))
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The private receipt of an accepted job.
pub fn receipt(accepted: &Accepted) -> String {
    format!(
        "✅ Job `{}` is {}. Its progress and result appear in the channel; cancel it with the button there or `/cancel`.",
        short(&accepted.job),
        if accepted.position == 0 {
            "next in the queue".to_string()
        } else {
            format!("queued at position {}", accepted.position + 1)
        }
    )
}

/// Where a queued job stands.
pub fn queued(position: usize, eta: Option<Duration>) -> String {
    let place = if position == 0 {
        "next in the queue".to_string()
    } else {
        format!("position {} in the queue", position + 1)
    };
    match eta {
        Some(eta) => format!("⏳ Queued: {place}, starts in {}", readable(eta)),
        None => format!("⏳ Queued: {place}"),
    }
}

/// A running job's line.
pub fn running(instance: &str, node: Option<&str>, percent: Option<u8>) -> String {
    let mut line = format!("🎨 Running on `{instance}`");
    if let Some(node) = node {
        line.push_str(&format!(": {node}"));
    }
    if let Some(p) = percent {
        line.push_str(&format!(" {p}%"));
    }
    line
}

pub fn retrying(attempt: u32, reason: &str) -> String {
    format!("🔁 The instance failed under the job ({reason}); trying again (attempt {attempt}).")
}

pub fn fetching() -> &'static str {
    "📦 Finished; fetching the result…"
}

pub fn delivered(took: Duration, seed: Option<u64>, notes: &[String]) -> String {
    let mut text = format!("✅ Done in {}", readable(took));
    if let Some(seed) = seed {
        text.push_str(&format!(" · seed {seed}"));
    }
    for note in notes {
        text.push_str(&format!("\n-# {note}"));
    }
    text
}

pub fn failed_public() -> &'static str {
    "❌ This job failed; whoever started it was told why."
}

pub fn failed_private(job: &crate::ids::JobId, message: &str) -> String {
    format!("❌ Job `{}` failed: {message}", short(job))
}

pub fn cancelled() -> &'static str {
    "🛑 Cancelled."
}

pub fn lost() -> &'static str {
    "⚠️ This job was lost when comfy-fleet restarted. Run the command again."
}

pub fn moved() -> &'static str {
    "⏩ This job takes a while: its progress continues in a new message below."
}

/// `/status` for one user.
pub fn status(view: &FleetView) -> String {
    let mut text = String::new();
    if view.shutting_down {
        text.push_str("⚠️ comfy-fleet is shutting down: running jobs finish, no new ones start.\n");
    }
    if view.demo {
        text.push_str("-# Demo backend: the instances make test images, not real ones.\n");
    }
    text.push_str("**Instances**");
    if view.instances.is_empty() {
        text.push_str("\nnone yet");
    }
    for i in &view.instances {
        let gpu = i.gpu.as_deref().unwrap_or("CPU");
        let work = if i.running.is_empty() {
            "idle".to_string()
        } else {
            format!("running {}", i.running.join(", "))
        };
        let work = if i.phase == "ready" {
            work
        } else {
            i.phase.clone()
        };
        text.push_str(&format!("\n`{}` · {gpu} · {}", i.id, work));
    }
    text.push_str(&format!(
        "\n**Queue**: {} waiting (room for {})",
        view.queue_depth, view.queue_capacity
    ));
    text.push_str("\n**Your jobs**");
    if view.mine.is_empty() {
        text.push_str("\nnone running or queued");
    }
    for job in &view.mine {
        let at = match (job.state, job.position) {
            (JobState::Queued, Some(p)) => {
                let mut line = format!("queued, position {}", p + 1);
                if let Some(eta) = job.eta {
                    line.push_str(&format!(", starts in {}", readable(eta)));
                }
                line
            }
            (JobState::Running, _) => "running".into(),
            (state, _) => format!("{state:?}").to_lowercase(),
        };
        text.push_str(&format!("\n`{}` /{} · {at}", short(&job.job), job.template));
    }
    super::message::clip(&text, super::message::MAX_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_say_them() {
        assert_eq!(readable(Duration::from_millis(300)), "1 s");
        assert_eq!(readable(Duration::from_secs(42)), "42 s");
        assert_eq!(readable(Duration::from_secs(150)), "about 3 min");
        assert_eq!(readable(Duration::from_secs(4830)), "about 1 h 21 min");
    }

    #[test]
    fn a_rate_limit_says_how_long_to_wait() {
        let text = order_problem(&OrderError::RateLimited {
            message: "you have used your 10 jobs per 10m".into(),
            retry_after: Duration::from_secs(250),
        });
        assert!(
            text.contains("10 jobs per 10m") && text.contains("about 4 min"),
            "{text}"
        );
    }
}
