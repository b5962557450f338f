//! Measures for the benches: percentiles of latencies, milliseconds, and the memory of this
//! process and of its children read from `/proc`.

use std::time::Duration;

/// The `p`-th percentile (0–100) of the samples, nearest-rank.
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds with three decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// A `KEY:   N kB` line of /proc/PID/status, in kB.
pub fn proc_status_kb(pid: &str, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The pids of this process's direct children.
pub fn child_pids() -> Vec<String> {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.chars().all(|c| c.is_ascii_digit()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
                    let after = stat.rsplit_once(')')?.1.to_owned();
                    after.split_whitespace().nth(1).map(|p| p == me)
                })
                .unwrap_or(false)
        })
        .collect()
}

/// A bench's command-line option `name VALUE` (after `cargo bench --bench NAME --`), parsed;
/// `None` when it is not given. Panics with the option's name when the value does not parse.
pub fn arg<T: std::str::FromStr>(name: &str) -> Option<T> {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2).find(|w| w[0] == name).map(|w| {
        w[1].parse()
            .unwrap_or_else(|_| panic!("{name}: cannot read `{}`", w[1]))
    })
}

/// [`arg`], or `default` when the option is not given.
pub fn arg_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    arg(name).unwrap_or(default)
}
