//! The rate limiter actor: permits, refusals with retry-after, release and quota, through
//! messages.

use std::time::{Duration, Instant};

use actix::prelude::*;

use comfy_fleet_actors::UserId;
use comfy_fleet_actors::rate_limit::{
    Acquire, LimitReason, Quota, RateLimitConfig, RateLimiter, Release, WindowLimit,
};

#[actix_rt::test]
async fn permits_refusals_release_and_quota_through_the_actor() {
    let config = RateLimitConfig {
        per_user: vec![WindowLimit::new(2, Duration::from_secs(60))],
        global: vec![],
        user_concurrent: 1,
        exempt_users: vec![],
        exempt_roles: vec!["operator".into()],
        concurrency_retry_after: Duration::from_secs(20),
        ..RateLimitConfig::default()
    };
    config.validate().unwrap();
    let limiter = RateLimiter::new(config).start();
    let alice = UserId::new("alice");
    let start = Instant::now();
    let acquire = |at: u64| Acquire {
        user: alice.clone(),
        roles: vec!["member".into()],
        now: Some(start + Duration::from_secs(at)),
    };

    let permit = limiter.send(acquire(0)).await.unwrap().unwrap();
    assert_eq!(permit.remaining, Some(1));
    // One job in progress: the cap refuses the second.
    let refused = limiter.send(acquire(1)).await.unwrap().unwrap_err();
    assert_eq!(refused.reason, LimitReason::Concurrent);
    assert_eq!(refused.retry_after, Duration::from_secs(20));

    limiter
        .send(Release {
            user: alice.clone(),
        })
        .await
        .unwrap();
    let permit = limiter.send(acquire(2)).await.unwrap().unwrap();
    assert_eq!(permit.remaining, Some(0));
    limiter
        .send(Release {
            user: alice.clone(),
        })
        .await
        .unwrap();
    // The window is used up until the first job leaves it at 60 s.
    let refused = limiter.send(acquire(15)).await.unwrap().unwrap_err();
    assert_eq!(refused.reason, LimitReason::User);
    assert_eq!(refused.retry_after, Duration::from_secs(45));
    assert_eq!(
        refused.to_string(),
        "you have used your 2 jobs per 1m; try again in 45s"
    );

    let quota = limiter
        .send(Quota {
            user: alice.clone(),
            roles: vec![],
        })
        .await
        .unwrap();
    assert_eq!(quota.windows[0].used, 2);
    assert_eq!(quota.in_progress, 0);

    // An operator is never refused.
    for _ in 0..5 {
        limiter
            .send(Acquire {
                user: UserId::new("mod"),
                roles: vec!["operator".into()],
                now: None,
            })
            .await
            .unwrap()
            .unwrap();
    }
}
