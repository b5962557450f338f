//! API flood: thousands of submissions from a hundred users over HTTP against a real
//! `comfy-fleet serve` (tokens from `COMFY_FLEET_API_TOKENS`, fake-comfyui instances).
//!
//! Each user sends, from a pool of client threads, more valid jobs than its window allows plus,
//! while under the limit, a few workflows ComfyUI would refuse. Checked (the bench panics otherwise): no user gets more
//! accepted jobs than `limits.per_user` allows, none is refused by the rate limit while under
//! it, refused workflows never count, and every accepted job finishes. Reported: the answer time
//! of `POST /v1/jobs` as the client sees it (p50, p99, max), the peak resident memory of the
//! serve process (VmHWM) and the instances' memory.
//!
//! Run: `cargo bench --bench api_flood [-- --users 100 --per-user 30 --limit 20 --bad 5
//!       --instances 4 --threads 16]`

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::fleet_process::{FleetProcess, FleetSpec};
use support::http_client::{HttpAnswer, http};
use support::measures::{arg_or, ms, percentile, proc_status_kb};

fn token(user: usize) -> String {
    format!("flood-token-{user:03}")
}

/// One request with a bearer token, on its own connection.
fn post(addr: std::net::SocketAddr, token: &str, body: &Value) -> HttpAnswer {
    support::http_client::http_with_headers(
        addr,
        "POST",
        "/v1/jobs",
        &[("Authorization", &format!("Bearer {token}"))],
        Some(("application/json", body.to_string().into_bytes())),
    )
}

/// What one user's submissions got.
#[derive(Debug, Default, Clone)]
struct Outcome {
    accepted: Vec<String>,
    rate_limited: usize,
    refused_workflows: usize,
    other: Vec<(u16, String)>,
}

fn main() {
    let users = arg_or("--users", 100);
    let per_user = arg_or("--per-user", 30);
    let limit = arg_or("--limit", 20);
    let bad = arg_or("--bad", 5);
    let instances = arg_or("--instances", 4);
    let threads = arg_or("--threads", 16);
    assert!(
        per_user > limit,
        "--per-user must exceed --limit to test the limit"
    );

    let root = tempfile::tempdir().expect("a temporary folder");
    let spec = FleetSpec::new(
        instances,
        &["--fake-node-time", "0ms", "--fake-step-time", "0ms"],
    )
    .set(
        "limits",
        "per_user",
        &format!("[{{ jobs = {limit}, per = \"1h\" }}]"),
    )
    .set("limits", "global", "[{ jobs = 1000000, per = \"1h\" }]")
    .set("limits", "user_concurrent", "0")
    .set(
        "scheduler",
        "queue_capacity",
        &(users * per_user + 100).to_string(),
    );
    let tokens: String = (0..users)
        .map(|u| format!("{}=user{u:03}", token(u)))
        .collect::<Vec<_>>()
        .join(",");
    let fleet =
        FleetProcess::start_with_env(&spec, root.path(), &[("COMFY_FLEET_API_TOKENS", &tokens)]);
    let addr = fleet.addr;
    // Ready: /readyz is open.
    let deadline = Instant::now() + support::waits::SAFETY;
    while http(addr, "GET", "/readyz", None).status != 200 {
        assert!(Instant::now() < deadline, "the fleet never became ready");
        std::thread::sleep(support::waits::POLL);
    }
    let serve_pid = fleet.pid().to_string();
    let hwm_ready = proc_status_kb(&serve_pid, "VmHWM:").unwrap_or(0);

    // Each user's sequence: its valid jobs with a refused workflow after every few while it is
    // under its limit (over it, every submission is refused by the limiter first); the users'
    // sequences are dealt round robin, so a hundred users' requests mix on the wire.
    let every = (limit / (bad + 1)).max(1);
    let mut sequence = Vec::new();
    let mut bad_left = bad;
    for i in 0..per_user {
        sequence.push(false);
        if bad_left > 0 && (i + 1) % every == 0 && i + 1 < limit {
            sequence.push(true);
            bad_left -= 1;
        }
    }
    assert_eq!(bad_left, 0, "--bad must fit under --limit");
    let plan: Vec<(usize, bool)> = sequence
        .iter()
        .flat_map(|is_bad| (0..users).map(move |user| (user, *is_bad)))
        .collect();
    let plan = Arc::new(Mutex::new(plan.into_iter()));
    let outcomes = Arc::new(Mutex::new(vec![Outcome::default(); users]));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (plan, outcomes, latencies) = (plan.clone(), outcomes.clone(), latencies.clone());
            std::thread::spawn(move || {
                loop {
                    let next = plan.lock().unwrap().next();
                    let Some((user, is_bad)) = next else { break };
                    let body = if is_bad {
                        // ComfyUI would refuse it: width below EmptyImage's minimum.
                        json!({"workflow": {
                            "1": {"class_type": "EmptyImage", "inputs": {"width": 0, "height": 8, "batch_size": 1, "color": 0}},
                            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "flood"}}
                        }})
                    } else {
                        json!({"template": "demo", "params": {"width": 64, "height": 64}})
                    };
                    let sent = Instant::now();
                    let answer = post(addr, &token(user), &body);
                    latencies.lock().unwrap().push(sent.elapsed());
                    let mut all = outcomes.lock().unwrap();
                    let outcome = &mut all[user];
                    match (answer.status, is_bad) {
                        (201, false) => outcome.accepted.push(answer.json()["id"].as_str().unwrap_or_default().to_string()),
                        (429, false) => outcome.rate_limited += 1,
                        (400, true) => outcome.refused_workflows += 1,
                        (status, _) => outcome.other.push((status, answer.text())),
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a client thread");
    }
    let submit_time = started.elapsed();
    let hwm_submitted = proc_status_kb(&serve_pid, "VmHWM:").unwrap_or(0);

    // The rules held for every user.
    let outcomes = outcomes.lock().unwrap().clone();
    for (user, o) in outcomes.iter().enumerate() {
        assert!(
            o.other.is_empty(),
            "user {user}: unexpected answers {:?}",
            o.other
        );
        assert_eq!(
            o.accepted.len(),
            limit,
            "user {user}: accepted {} of a limit of {limit}",
            o.accepted.len()
        );
        assert_eq!(
            o.rate_limited,
            per_user - limit,
            "user {user}: refused while under the limit"
        );
        assert_eq!(o.refused_workflows, bad, "user {user}");
    }
    // Every accepted job finishes.
    let accepted: usize = outcomes.iter().map(|o| o.accepted.len()).sum();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let answer = support::http_client::http_with_headers(
            addr,
            "GET",
            "/metrics",
            &[("Authorization", &format!("Bearer {}", token(0)))],
            None,
        );
        let done: f64 = answer
            .text()
            .lines()
            .find_map(|l| l.strip_prefix("comfy_fleet_jobs_total{outcome=\"done\"} "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0);
        if done as usize >= accepted {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {accepted} jobs finished"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let all_done = started.elapsed();
    let hwm_end = proc_status_kb(&serve_pid, "VmHWM:").unwrap_or(0);
    let instance_rss: u64 = fleet
        .processes()
        .iter()
        .filter_map(|p| proc_status_kb(&p.pid.to_string(), "VmRSS:"))
        .sum();

    let latencies = latencies.lock().unwrap().clone();
    let total = latencies.len();
    println!(
        "api_flood: {users} users x ({per_user} jobs + {bad} refused workflows) = {total} submissions from {threads} client threads, {instances} instances, limit {limit} per user per hour"
    );
    println!(
        "  accepted {accepted} ({limit} per user, none over), rate-limited {} ({} per user, none under the limit), refused workflows {} (not counted)",
        outcomes.iter().map(|o| o.rate_limited).sum::<usize>(),
        per_user - limit,
        outcomes.iter().map(|o| o.refused_workflows).sum::<usize>()
    );
    println!(
        "  POST /v1/jobs answer time: p50 {}, p99 {}, max {} ({:.0} submissions/s; all {accepted} jobs done after {:.1?})",
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(percentile(&latencies, 100.0)),
        total as f64 / submit_time.as_secs_f64(),
        all_done
    );
    println!(
        "  serve peak RSS (VmHWM): {:.1} MB ready, {:.1} MB after the flood, {:.1} MB at the end; {instances} instances {:.1} MB resident",
        hwm_ready as f64 / 1024.0,
        hwm_submitted as f64 / 1024.0,
        hwm_end as f64 / 1024.0,
        instance_rss as f64 / 1024.0
    );
}
