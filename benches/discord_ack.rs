//! The Discord bot under load: how fast interactions are acknowledged while 1000 a minute arrive
//! from 100 users and the pool is saturated, how many edits each job's message gets (against
//! Discord's limits), and the resident memory of comfy-fleet with 1000 jobs in flight through
//! the bot.
//!
//! `comfy-fleet serve` runs as a real child process with `DISCORD_TOKEN` set and
//! `COMFY_FLEET_DISCORD_PROXY` pointing at a fake Discord in this process (its own thread), with
//! `fake-comfyui` instances. Acknowledgement latency is the fake's own measure: from the
//! interaction's creation (before it is dispatched on the gateway) to the bot's deferral
//! arriving at the callback route, so it includes the gateway, serenity, the session and the
//! REST call.
//!
//! Run: `cargo bench --bench discord_ack [-- --interactions 1000 --per-minute 1000
//! --users 100 --in-flight 1000]`

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use fake_discord::{ControlClient, Invoker, RequestRecord, SlashCommand};
use support::discord_bot::{demo_models, fake_discord};
use support::fleet_process::{FleetProcess, FleetSpec, count_phase};
use support::measures::{arg_or, proc_status_kb};

/// The route of followup edits (the job messages).
const FOLLOWUP_EDIT: &str = "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}";
/// The route of followups (one per accepted job).
const FOLLOWUP: &str = "/webhooks/{webhook_id}/{webhook_token}";
const CALLBACK: &str = "/interactions/{interaction_id}/{interaction_token}/callback";

/// A fleet spec with open limits and room for every job.
fn spec(instances: usize, node_time: &str, models: &str) -> FleetSpec {
    let mut spec = FleetSpec::new(instances, &["--models-directory", models]);
    spec.command[2] = node_time.to_string();
    spec.command[4] = "10ms".to_string();
    spec.set("limits", "per_user", "[]")
        .set("limits", "global", "[]")
        .set("limits", "user_concurrent", "0")
        .set("scheduler", "queue_capacity", "5000")
        .set("lifecycle", "readiness_timeout", "\"2m\"")
        .set("shutdown", "drain_timeout", "\"1s\"")
        .set("logging", "level", "\"info\"")
}

fn start_serve(
    fake: &fake_discord::RunningFake,
    spec: &FleetSpec,
    root: &std::path::Path,
) -> FleetProcess {
    let fleet = FleetProcess::start_with_env(
        spec,
        root,
        &[
            ("DISCORD_TOKEN", fake.token()),
            ("COMFY_FLEET_DISCORD_PROXY", &fake.base_url()),
        ],
    );
    fleet.wait_status("every instance ready", |s| {
        count_phase(s, "ready") == spec.gpus.len()
    });
    fleet
}

async fn wait_connected(control: &ControlClient) {
    control
        .wait_for_gateway(|g| g.sessions.iter().any(|s| s.connected))
        .await
        .expect("the bot connects to the fake gateway");
}

fn generate(i: u64, users: u64) -> SlashCommand {
    SlashCommand::new("generate")
        .string("prompt", &format!("benchmark picture {i}"))
        .string("size", "512x512")
        .integer("steps", 10)
        .by(Invoker::user(10_000 + i % users))
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn count(log: &[RequestRecord], method: &str, route: &str) -> usize {
    log.iter()
        .filter(|r| r.method == method && r.route == route && r.status < 300)
        .count()
}

/// The most requests in any window of `window_ms` among these times.
fn busiest(times: &mut [u64], window_ms: u64) -> usize {
    times.sort_unstable();
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= window_ms {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

async fn acknowledgement_and_edits(interactions: u64, per_minute: u64, users: u64) {
    let root = tempfile::tempdir().expect("a temporary folder");
    let models = demo_models(root.path()).display().to_string();
    let fake = fake_discord();
    let control = fake.control().with_wait_limit(Duration::from_secs(900));
    // Two instances, ~0.5 s a job: about 4 jobs a second, far fewer than arrive.
    let spec = spec(2, "30ms", &models);
    let fleet = start_serve(&fake, &spec, root.path());
    wait_connected(&control).await;

    let gap = Duration::from_secs_f64(60.0 / per_minute as f64);
    let mut ticker = tokio::time::interval(gap);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..interactions {
        ticker.tick().await;
        let injected = control
            .inject_command(&generate(i, users))
            .await
            .expect("the fake takes the interaction");
        ids.push(injected.id);
    }
    let arrival = started.elapsed();
    let queue_at_end = fleet.get("/v1/status").json()["queue"]["depth"].clone();

    let mut acks = Vec::new();
    let mut missing = 0;
    for id in &ids {
        let view = control
            .wait_for_interaction(id, |i| i.acknowledgement.is_some())
            .await
            .expect("every interaction is acknowledged");
        match view.acknowledgement {
            Some(ack) => acks.push(ack.after_ms),
            None => missing += 1,
        }
    }
    acks.sort_unstable();

    // Let the fleet finish a first hundred jobs, then look at the edits.
    let done_wanted = 100.min(interactions as usize);
    let log = control
        .wait_for_requests(|log| {
            log.iter()
                .filter(|r| {
                    r.method == "PATCH"
                        && r.route == FOLLOWUP_EDIT
                        && r.body
                            .as_ref()
                            .and_then(|b| b["content"].as_str())
                            .is_some_and(|c| c.contains("✅ Done"))
                })
                .count()
                >= done_wanted
        })
        .await
        .expect("jobs finish");
    let mut by_message: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for r in log
        .iter()
        .filter(|r| r.method == "PATCH" && r.route == FOLLOWUP_EDIT)
    {
        by_message.entry(r.path.as_str()).or_default().push(r.at_ms);
    }
    let done_paths: Vec<&str> = log
        .iter()
        .filter(|r| {
            r.method == "PATCH"
                && r.route == FOLLOWUP_EDIT
                && r.body
                    .as_ref()
                    .and_then(|b| b["content"].as_str())
                    .is_some_and(|c| c.contains("✅ Done"))
        })
        .map(|r| r.path.as_str())
        .collect();
    let per_done_job: Vec<usize> = done_paths
        .iter()
        .map(|p| by_message.get(p).map_or(0, Vec::len))
        .collect();
    let mean_per_job = per_done_job.iter().sum::<usize>() as f64 / per_done_job.len().max(1) as f64;
    let max_per_job = per_done_job.iter().max().copied().unwrap_or(0);
    let busiest_message_minute = by_message
        .values_mut()
        .map(|times| busiest(times, 60_000))
        .max()
        .unwrap_or(0);
    let busiest_message_5s = by_message
        .values_mut()
        .map(|times| busiest(times, 5_000))
        .max()
        .unwrap_or(0);
    let mut all_times: Vec<u64> = log.iter().map(|r| r.at_ms).collect();
    let busiest_second = busiest(&mut all_times, 1_000);
    let span_min =
        (log.last().map_or(0, |r| r.at_ms) - log.first().map_or(0, |r| r.at_ms)) as f64 / 60_000.0;
    let edits = log
        .iter()
        .filter(|r| r.method == "PATCH" && r.route == FOLLOWUP_EDIT)
        .count();

    println!("## acknowledgement under load");
    println!(
        "{interactions} interactions from {users} users in {:.1} s ({:.0}/min), 2 instances saturated (queue {} at the end)",
        arrival.as_secs_f64(),
        interactions as f64 / arrival.as_secs_f64() * 60.0,
        queue_at_end
    );
    println!(
        "acknowledgement (created → deferral at the callback route): p50 {} ms, p99 {} ms, max {} ms, missing {missing}",
        percentile(&acks, 50.0),
        percentile(&acks, 99.0),
        acks.last().copied().unwrap_or(0)
    );
    println!(
        "callbacks {}, followups {}, followup edits {}",
        count(&log, "POST", CALLBACK),
        count(&log, "POST", FOLLOWUP),
        edits
    );
    println!("## edits");
    println!(
        "job message edits per finished job: mean {mean_per_job:.1}, max {max_per_job} ({} jobs finished)",
        per_done_job.len()
    );
    println!(
        "busiest job message: {busiest_message_5s} edits in 5 s, {busiest_message_minute} in a minute"
    );
    println!(
        "all REST requests to Discord: {:.0}/min on average over {:.1} min, busiest second {busiest_second}",
        log.len() as f64 / span_min.max(1.0 / 60.0),
        span_min
    );
    drop(fleet);
}

async fn memory_in_flight(in_flight: u64, users: u64) {
    let root = tempfile::tempdir().expect("a temporary folder");
    let models = demo_models(root.path()).display().to_string();
    let fake = fake_discord();
    let control = fake.control().with_wait_limit(Duration::from_secs(900));
    // Jobs never finish: everything submitted stays in flight.
    let spec = spec(2, "1h", &models);
    let fleet = start_serve(&fake, &spec, root.path());
    wait_connected(&control).await;
    let pid = fleet.pid().to_string();
    let kb = |key: &str| proc_status_kb(&pid, key).expect("/proc/PID/status of comfy-fleet");
    let booted = kb("VmRSS:");
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for i in 0..in_flight {
        ticker.tick().await;
        control
            .inject_command(&generate(i, users))
            .await
            .expect("the fake takes the interaction");
    }
    control
        .wait_for_requests(|log| count(log, "POST", FOLLOWUP) as u64 >= in_flight)
        .await
        .expect("every job's message is posted");
    let loaded = kb("VmRSS:");
    let peak = kb("VmHWM:");
    println!("## memory");
    println!(
        "comfy-fleet RSS: {:.1} MB booted with the bot, {:.1} MB with {in_flight} jobs in flight through the bot (+{:.1} KB per job), peak {:.1} MB",
        booted as f64 / 1024.0,
        loaded as f64 / 1024.0,
        (loaded.saturating_sub(booted)) as f64 / in_flight as f64,
        peak as f64 / 1024.0
    );
    drop(fleet);
}

fn main() {
    let interactions = arg_or("--interactions", 1000);
    let per_minute = arg_or("--per-minute", 1000);
    let users = arg_or("--users", 100);
    let in_flight = arg_or("--in-flight", 1000);
    actix_rt::System::new().block_on(async move {
        acknowledgement_and_edits(interactions, per_minute, users).await;
        memory_in_flight(in_flight, users).await;
    });
}
