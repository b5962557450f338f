//! Unit tests of the rate-limit policy: windows slide with injected time, retry-after values,
//! the concurrency cap, global limits and exemptions.

use std::time::{Duration, Instant};

use super::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn user(name: &str) -> UserId {
    UserId::new(name)
}

fn limiter(
    per_user: &[(u32, u64)],
    global: &[(u32, u64)],
    concurrent: Option<u32>,
) -> RateLimitPolicy {
    RateLimitPolicy::new(RateLimitConfig {
        per_user: per_user
            .iter()
            .map(|(jobs, per)| WindowLimit::new(*jobs, secs(*per)))
            .collect(),
        global: global
            .iter()
            .map(|(jobs, per)| WindowLimit::new(*jobs, secs(*per)))
            .collect(),
        user_concurrent: concurrent.unwrap_or(0),
        exempt_users: vec![user("owner")],
        exempt_roles: vec!["operator".into()],
        concurrency_retry_after: secs(30),
        ..RateLimitConfig::default()
    })
}

#[test]
fn a_user_gets_five_per_minute_and_is_told_when_to_come_back() {
    let mut limits = limiter(&[(5, 60)], &[], None);
    let start = Instant::now();
    let alice = user("alice");
    for i in 0..5u64 {
        let permit = limits.acquire(&alice, &[], start + secs(i * 2)).unwrap();
        assert_eq!(permit.remaining, Some(4 - i as u32));
        // The oldest of the window (at `start`) gives a job back 60 s after it was taken.
        assert_eq!(permit.reset_after, Some(secs(60 - i * 2)));
    }
    let refused = limits.acquire(&alice, &[], start + secs(18)).unwrap_err();
    assert_eq!(refused.reason, LimitReason::User);
    assert_eq!(refused.retry_after, secs(42));
    assert_eq!((refused.limit, refused.window), (5, Some(secs(60))));
    assert_eq!(
        refused.to_string(),
        "you have used your 5 jobs per 1m; try again in 42s"
    );
    // Another user is not affected.
    limits.acquire(&user("bob"), &[], start + secs(18)).unwrap();
    // The window slides: at 60 s the first acquisition has left it.
    assert!(limits.acquire(&alice, &[], start + secs(59)).is_err());
    let permit = limits.acquire(&alice, &[], start + secs(60)).unwrap();
    assert_eq!(permit.remaining, Some(0));
}

#[test]
fn the_longest_wait_among_several_windows_is_reported() {
    // 2 per 10 s and 3 per 100 s.
    let mut limits = limiter(&[(2, 10), (3, 100)], &[], None);
    let start = Instant::now();
    let alice = user("alice");
    limits.acquire(&alice, &[], start).unwrap();
    limits.acquire(&alice, &[], start + secs(1)).unwrap();
    let short = limits.acquire(&alice, &[], start + secs(5)).unwrap_err();
    assert_eq!((short.retry_after, short.window), (secs(5), Some(secs(10))));
    limits.acquire(&alice, &[], start + secs(20)).unwrap();
    // Now the 10 s window has room but the 100 s one is full until `start + 100`.
    let long = limits.acquire(&alice, &[], start + secs(30)).unwrap_err();
    assert_eq!((long.retry_after, long.window), (secs(70), Some(secs(100))));
    assert!(
        long.to_string()
            .contains("3 jobs per 1m 40s; try again in 1m 10s"),
        "{long}"
    );
}

#[test]
fn retry_after_is_rounded_up_to_whole_seconds_in_words() {
    let mut limits = limiter(&[(1, 60)], &[], None);
    let start = Instant::now();
    limits.acquire(&user("a"), &[], start).unwrap();
    let refused = limits
        .acquire(&user("a"), &[], start + Duration::from_millis(59_500))
        .unwrap_err();
    assert_eq!(refused.retry_after, Duration::from_millis(500));
    assert_eq!(
        refused.to_string(),
        "you have used your 1 job per 1m; try again in 1s"
    );
}

#[test]
fn the_global_limit_applies_to_everyone_together() {
    let mut limits = limiter(&[(10, 60)], &[(3, 60)], None);
    let start = Instant::now();
    for name in ["a", "b", "c"] {
        limits.acquire(&user(name), &[], start).unwrap();
    }
    let refused = limits
        .acquire(&user("d"), &[], start + secs(15))
        .unwrap_err();
    assert_eq!(refused.reason, LimitReason::Global);
    assert_eq!(refused.retry_after, secs(45));
    assert!(
        refused
            .to_string()
            .starts_with("the fleet has taken its 3 jobs per 1m")
    );
    // A refused acquisition does not count against the user.
    assert_eq!(
        limits.quota(&user("d"), &[], start + secs(15)).windows[0].used,
        0
    );
}

#[test]
fn the_concurrency_cap_holds_until_a_job_is_released() {
    let mut limits = limiter(&[(100, 60)], &[], Some(2));
    let start = Instant::now();
    let alice = user("alice");
    limits.acquire(&alice, &[], start).unwrap();
    limits.acquire(&alice, &[], start).unwrap();
    let refused = limits.acquire(&alice, &[], start).unwrap_err();
    assert_eq!(refused.reason, LimitReason::Concurrent);
    assert_eq!(refused.retry_after, secs(30));
    assert_eq!(refused.window, None);
    assert!(refused.to_string().contains("2 jobs in progress"));
    limits.release(&alice);
    limits.acquire(&alice, &[], start).unwrap();
    let quota = limits.quota(&alice, &[], start);
    assert_eq!((quota.in_progress, quota.max_in_progress), (2, Some(2)));
}

#[test]
fn exempt_users_and_roles_are_neither_limited_nor_counted() {
    let mut limits = limiter(&[(1, 60)], &[(1, 60)], Some(1));
    let start = Instant::now();
    for _ in 0..10 {
        let permit = limits.acquire(&user("owner"), &[], start).unwrap();
        assert_eq!(permit.remaining, None);
        limits
            .acquire(&user("mod"), &["member".into(), "operator".into()], start)
            .unwrap();
    }
    // Nothing was counted globally: an ordinary user still gets the one global job.
    limits.acquire(&user("alice"), &[], start).unwrap();
    assert!(limits.quota(&user("owner"), &[], start).exempt);
    assert_eq!(
        limits.quota(&user("owner"), &[], start).to_string(),
        "no limits apply to you"
    );
}

#[test]
fn the_quota_shows_what_is_left_and_when_more_comes() {
    let mut limits = limiter(&[(5, 60)], &[], Some(2));
    let start = Instant::now();
    let alice = user("alice");
    limits.acquire(&alice, &[], start).unwrap();
    limits.acquire(&alice, &[], start + secs(10)).unwrap();
    let quota = limits.quota(&alice, &[], start + secs(20));
    assert_eq!(
        quota.windows,
        [WindowQuota {
            limit: 5,
            window: secs(60),
            used: 2,
            remaining: 3,
            reset_after: Some(secs(40)),
        }]
    );
    assert_eq!(
        quota.to_string(),
        "3 of 5 jobs left per 1m (one more in 40s); 2 of 2 jobs in progress"
    );
    // After the window has passed, everything is back.
    let later = limits.quota(&alice, &[], start + secs(120));
    assert_eq!(later.windows[0].remaining, 5);
    assert_eq!(later.windows[0].reset_after, None);
}

#[test]
fn idle_users_are_forgotten() {
    let mut limits = limiter(&[(5, 60)], &[], None);
    let start = Instant::now();
    for i in 0..PRUNE_EVERY {
        let name = user(&format!("u{i}"));
        limits.acquire(&name, &[], start).unwrap();
        limits.release(&name);
    }
    // The pruning pass ran at the 1024th acquisition, when all windows were still open.
    assert_eq!(limits.tracked_users(), PRUNE_EVERY as usize);
    for i in 0..PRUNE_EVERY {
        let name = user(&format!("v{i}"));
        limits.acquire(&name, &[], start + secs(120)).unwrap();
        limits.release(&name);
    }
    // The second pass forgot the first batch (windows over, nothing in progress).
    assert_eq!(limits.tracked_users(), PRUNE_EVERY as usize);
}

#[test]
fn refused_jobs_given_back_leave_the_quota_whole() {
    let mut limits = limiter(&[(2, 600)], &[(3, 600)], Some(1));
    let start = Instant::now();
    // Ten submissions refused after they were counted (a typo in each): each is given back.
    for i in 0..10 {
        let now = start + secs(i);
        let permit = limits.acquire(&user("bob"), &[], now).unwrap();
        limits.give_back(&user("bob"), permit.taken_at.unwrap());
    }
    let report = limits.quota(&user("bob"), &[], start + secs(10));
    assert_eq!((report.windows[0].used, report.in_progress), (0, 0));
    // The eleventh is accepted, and counts.
    let permit = limits.acquire(&user("bob"), &[], start + secs(11)).unwrap();
    assert_eq!(permit.remaining, Some(1));
    // The global window was given back too: two more users fit in it.
    limits.release(&user("bob"));
    assert!(limits.acquire(&user("ann"), &[], start + secs(12)).is_ok());
    assert!(limits.acquire(&user("cid"), &[], start + secs(12)).is_ok());
    // Exempt users are never counted, so nothing is given back.
    let permit = limits.acquire(&user("owner"), &[], start).unwrap();
    assert_eq!(permit.taken_at, None);
}
