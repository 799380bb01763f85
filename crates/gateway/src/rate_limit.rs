//! Per-organization rate limits by tier and route class (GCRA, in process).
//!
//! Each (tier, class) pair has one keyed limiter whose keys are organization
//! ids, so one organization's burst never spends another's allowance. The
//! quotas are data ([`tier_quota`]); idle keys are swept periodically so the
//! memory follows the organizations active in the last hour, not every
//! organization ever seen.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cg_proto::access::v1::RateLimitClass;
use cg_status::{ERROR_DOMAIN, reason};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use uuid::Uuid;

/// How many calls a tier may make in one class, per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub calls: u32,
    pub period: Period,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Minute,
    Hour,
}

impl Period {
    fn as_str(self) -> &'static str {
        match self {
            Period::Minute => "minute",
            Period::Hour => "hour",
        }
    }
}

/// The tiers the table knows; an unknown tier is limited as Standard.
const TIERS: [&str; 4] = ["standard", "professional", "enterprise", "custom"];

/// The limit of `class` for `tier`. AI and property routes follow the
/// product guide; the other classes are sized so that an interactive
/// organization of the tier's user count never meets them. Custom gets
/// twice Enterprise until per-contract limits are stored.
pub fn tier_quota(tier: &str, class: RateLimitClass) -> Limit {
    use Period::{Hour, Minute};
    let column = match tier {
        "professional" => 1,
        "enterprise" => 2,
        "custom" => 3,
        _ => 0,
    };
    let (calls, period) = match class {
        RateLimitClass::Ai => ([50, 200, 1_000, 2_000], Hour),
        RateLimitClass::Property => ([100, 500, 2_000, 4_000], Minute),
        RateLimitClass::Read => ([600, 1_500, 6_000, 12_000], Minute),
        RateLimitClass::Write => ([120, 300, 1_200, 2_400], Minute),
        RateLimitClass::Auth => ([120, 300, 600, 1_200], Minute),
        RateLimitClass::Admin => ([60, 120, 300, 600], Minute),
        RateLimitClass::Export => ([30, 60, 240, 480], Hour),
        // Methods without a class never reach the limiter (no policy).
        RateLimitClass::Unspecified => ([1, 1, 1, 1], Minute),
    };
    Limit {
        calls: calls[column],
        period,
    }
}

const CLASSES: [RateLimitClass; 7] = [
    RateLimitClass::Read,
    RateLimitClass::Write,
    RateLimitClass::Property,
    RateLimitClass::Ai,
    RateLimitClass::Auth,
    RateLimitClass::Admin,
    RateLimitClass::Export,
];

/// How often idle organizations are dropped from the limiters.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

struct Bucket {
    limit: Limit,
    limiter: DefaultKeyedRateLimiter<Uuid>,
}

/// Every (tier, class) limiter of one gateway process.
pub struct RateLimits {
    buckets: HashMap<(&'static str, RateLimitClass), Bucket>,
    clock: DefaultClock,
    last_sweep: Mutex<Instant>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("tracked_keys", &self.tracked_keys())
            .finish()
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::with_table(tier_quota)
    }
}

impl RateLimits {
    /// Limiters built from `table`, e.g. [`tier_quota`].
    pub fn with_table(table: impl Fn(&str, RateLimitClass) -> Limit) -> RateLimits {
        let clock = DefaultClock::default();
        let mut buckets = HashMap::new();
        for tier in TIERS {
            for class in CLASSES {
                let limit = table(tier, class);
                let calls = NonZeroU32::new(limit.calls).unwrap_or(NonZeroU32::MIN);
                let quota = match limit.period {
                    Period::Minute => Quota::per_minute(calls),
                    Period::Hour => Quota::per_hour(calls),
                };
                let limiter = RateLimiter::dashmap_with_clock(quota, clock.clone());
                buckets.insert((tier, class), Bucket { limit, limiter });
            }
        }
        RateLimits {
            buckets,
            clock,
            last_sweep: Mutex::new(Instant::now()),
        }
    }

    /// Admits one call of `organization` (on `tier`) in `class`, or refuses
    /// it with `RESOURCE_EXHAUSTED`, the wait in `RetryInfo` and the limit in
    /// `QuotaFailure`.
    pub fn check(
        &self,
        organization: Uuid,
        org_code: &str,
        tier: &str,
        class: RateLimitClass,
    ) -> Result<(), Status> {
        self.sweep_if_due();
        let tier_key = TIERS.iter().find(|t| **t == tier).unwrap_or(&TIERS[0]);
        let Some(bucket) = self.buckets.get(&(*tier_key, class)) else {
            return Ok(());
        };
        let Err(not_until) = bucket.limiter.check_key(&organization) else {
            return Ok(());
        };
        let wait = not_until.wait_time_from(self.clock.now());
        Err(exhausted(org_code, tier, class, bucket.limit, wait))
    }

    /// Organizations currently holding limiter state, over all buckets.
    pub fn tracked_keys(&self) -> usize {
        self.buckets.values().map(|b| b.limiter.len()).sum()
    }

    /// Drops the state of organizations whose allowance is full again.
    pub fn sweep(&self) {
        for bucket in self.buckets.values() {
            bucket.limiter.retain_recent();
            bucket.limiter.shrink_to_fit();
        }
    }

    fn sweep_if_due(&self) {
        let Ok(mut last) = self.last_sweep.try_lock() else {
            return;
        };
        if last.elapsed() >= SWEEP_INTERVAL {
            *last = Instant::now();
            drop(last);
            self.sweep();
        }
    }
}

fn class_name(class: RateLimitClass) -> &'static str {
    class
        .as_str_name()
        .strip_prefix("RATE_LIMIT_CLASS_")
        .unwrap_or("UNSPECIFIED")
}

fn exhausted(
    org_code: &str,
    tier: &str,
    class: RateLimitClass,
    limit: Limit,
    wait: Duration,
) -> Status {
    let class = class_name(class).to_ascii_lowercase();
    let per = limit.period.as_str();
    let description = format!(
        "the {tier} tier allows {} {class} calls per {per}",
        limit.calls
    );
    let mut details = ErrorDetails::with_error_info(
        reason::RATE_LIMITED,
        ERROR_DOMAIN,
        [
            ("organization".to_owned(), org_code.to_owned()),
            ("route_class".to_owned(), class.clone()),
            ("limit".to_owned(), limit.calls.to_string()),
            ("period".to_owned(), per.to_owned()),
        ],
    );
    // Round up: retrying after a truncated wait would be refused again.
    let millis = u64::try_from(wait.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
    let wait = Duration::from_millis(millis.max(1));
    details.set_retry_info(Some(wait));
    details.add_quota_failure_violation(format!("organization:{org_code}:{class}"), description);
    Status::with_error_details(
        Code::ResourceExhausted,
        format!(
            "rate limit of {} {class} calls per {per} reached; retry in {} ms",
            limit.calls,
            wait.as_millis()
        ),
        details,
    )
}

#[cfg(test)]
mod tests;
