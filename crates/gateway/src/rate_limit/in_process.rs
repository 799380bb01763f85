//! GCRA in this process with `governor`: one keyed limiter per (tier,
//! class), keyed by organization id, so one organization's burst never
//! spends another's allowance. Idle keys are swept periodically so memory
//! follows the organizations active within their period, not every
//! organization ever seen.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cg_proto::access::v1::RateLimitClass;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use super::quota::{Period, Quotas};

/// How often idle organizations are dropped from the limiters.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

pub(super) struct InProcess {
    limiters: HashMap<(&'static str, RateLimitClass), DefaultKeyedRateLimiter<Uuid>>,
    clock: DefaultClock,
    last_sweep: Mutex<Instant>,
}

impl InProcess {
    pub(super) fn new(quotas: &Quotas) -> InProcess {
        let clock = DefaultClock::default();
        let limiters = quotas
            .iter()
            .map(|(&key, limit)| {
                let calls = NonZeroU32::new(limit.calls).unwrap_or(NonZeroU32::MIN);
                let quota = match limit.period {
                    Period::Minute => Quota::per_minute(calls),
                    Period::Hour => Quota::per_hour(calls),
                };
                (key, RateLimiter::dashmap_with_clock(quota, clock.clone()))
            })
            .collect();
        InProcess {
            limiters,
            clock,
            last_sweep: Mutex::new(Instant::now()),
        }
    }

    /// Admits one call of `organization` in the (tier, class) pair, or
    /// says how long until the next call would be admitted.
    pub(super) fn check(
        &self,
        organization: Uuid,
        tier: &'static str,
        class: RateLimitClass,
    ) -> Result<(), Duration> {
        self.sweep_if_due();
        let Some(limiter) = self.limiters.get(&(tier, class)) else {
            return Ok(());
        };
        limiter
            .check_key(&organization)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Organizations currently holding limiter state, over all limiters.
    pub(super) fn tracked_keys(&self) -> usize {
        self.limiters.values().map(|l| l.len()).sum()
    }

    /// Drops the state of organizations whose allowance is full again.
    pub(super) fn sweep(&self) {
        for limiter in self.limiters.values() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
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
