use std::time::Duration;

use cg_proto::access::v1::RateLimitClass;
use cg_status::reason;
use tonic::Code;
use tonic_types::StatusExt;
use uuid::Uuid;

use super::{Limit, Period, RateLimits, tier_quota};

#[test]
fn the_guide_limits_ai_routes_per_hour_and_property_routes_per_minute() {
    let ai: Vec<_> = ["standard", "professional", "enterprise"]
        .iter()
        .map(|tier| tier_quota(tier, RateLimitClass::Ai))
        .collect();
    let property: Vec<_> = ["standard", "professional", "enterprise"]
        .iter()
        .map(|tier| tier_quota(tier, RateLimitClass::Property))
        .collect();
    let per = |calls, period| Limit { calls, period };
    assert_eq!(
        ai,
        [
            per(50, Period::Hour),
            per(200, Period::Hour),
            per(1_000, Period::Hour)
        ]
    );
    assert_eq!(
        property,
        [
            per(100, Period::Minute),
            per(500, Period::Minute),
            per(2_000, Period::Minute)
        ]
    );
    // A tier the table does not know is held to Standard, not let through.
    assert_eq!(
        tier_quota("trial", RateLimitClass::Ai),
        per(50, Period::Hour)
    );
}

#[tokio::test]
async fn a_standard_organization_gets_exactly_its_property_limit_then_retry_info_and_the_quota() {
    let limits = RateLimits::default();
    let org = Uuid::now_v7();
    for call in 1..=100 {
        assert!(
            limits
                .check(org, "acme", "standard", RateLimitClass::Property)
                .await
                .is_ok(),
            "call {call} of 100 was refused"
        );
    }
    let refused = limits
        .check(org, "acme", "standard", RateLimitClass::Property)
        .await
        .expect_err("the 101st call in the minute must be refused");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    let details = refused.get_error_details();
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(info.reason, reason::RATE_LIMITED);
    assert_eq!(info.metadata["limit"], "100");
    assert_eq!(info.metadata["period"], "minute");
    assert_eq!(info.metadata["route_class"], "property");
    // 100 per minute replenishes one call every 600 ms.
    let delay = details
        .retry_info()
        .and_then(|r| r.retry_delay)
        .expect("RetryInfo");
    assert!(
        delay > Duration::ZERO && delay <= Duration::from_millis(600),
        "retry delay {delay:?}"
    );
    let quota = details.quota_failure().expect("QuotaFailure");
    assert_eq!(quota.violations.len(), 1);
    assert_eq!(quota.violations[0].subject, "organization:acme:property");
    assert_eq!(
        quota.violations[0].description,
        "the standard tier allows 100 property calls per minute"
    );
}

#[tokio::test]
async fn one_organization_at_its_limit_leaves_other_organizations_and_classes_alone() {
    let limits = RateLimits::default();
    let busy = Uuid::now_v7();
    let quiet = Uuid::now_v7();
    for _ in 0..50 {
        limits
            .check(busy, "busy", "standard", RateLimitClass::Ai)
            .await
            .expect("within the hourly AI limit");
    }
    let refused = limits
        .check(busy, "busy", "standard", RateLimitClass::Ai)
        .await;
    assert_eq!(refused.map_err(|s| s.code()), Err(Code::ResourceExhausted));
    assert!(
        limits
            .check(quiet, "quiet", "standard", RateLimitClass::Ai)
            .await
            .is_ok()
    );
    assert!(
        limits
            .check(busy, "busy", "standard", RateLimitClass::Read)
            .await
            .is_ok()
    );
    // The same organization upgraded draws on the Professional allowance.
    assert!(
        limits
            .check(busy, "busy", "professional", RateLimitClass::Ai)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn limiter_state_of_ten_thousand_idle_organizations_is_swept_away() {
    // 60,000 a minute replenishes a call every millisecond, so a key is idle
    // (its allowance full again) a few milliseconds after its one call.
    let limits = RateLimits::with_table(|_, _| Limit {
        calls: 60_000,
        period: Period::Minute,
    });
    for _ in 0..10_000 {
        limits
            .check(Uuid::now_v7(), "org", "enterprise", RateLimitClass::Read)
            .await
            .expect("admitted");
    }
    assert_eq!(limits.tracked_keys(), 10_000);
    std::thread::sleep(Duration::from_millis(20));
    limits.sweep();
    assert_eq!(limits.tracked_keys(), 0);
}
