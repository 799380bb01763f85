//! Whether the shared store answers, so that during an outage calls go
//! straight to the replica's own limiter instead of each waiting on Redis,
//! one call probes Redis now and then, and the outage is logged once when
//! it starts and once when it ends.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long after a failure the shared store is tried again.
pub(super) const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// What a result changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transition {
    /// The first failure after success: an outage starts.
    WentDown,
    /// The first success after failures: the outage is over.
    CameBack,
    Unchanged,
}

#[derive(Debug)]
pub(super) struct Outage {
    origin: Instant,
    down: AtomicBool,
    /// Milliseconds after `origin` before which nobody probes.
    next_probe: AtomicU64,
}

impl Outage {
    pub(super) fn new() -> Outage {
        Outage {
            origin: Instant::now(),
            down: AtomicBool::new(false),
            next_probe: AtomicU64::new(0),
        }
    }

    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether a call at `now` should ask the shared store: always while it
    /// answers; during an outage, one call per probe interval.
    pub(super) fn should_try(&self, now: Instant) -> bool {
        if !self.down.load(Ordering::Acquire) {
            return true;
        }
        let now = self.millis(now);
        let due = self.next_probe.load(Ordering::Acquire);
        let next = now.saturating_add(millis(PROBE_INTERVAL));
        // Whoever moves the probe time forward is the one call that probes.
        now >= due
            && self
                .next_probe
                .compare_exchange(due, next, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    pub(super) fn failed(&self, now: Instant) -> Transition {
        let next = self.millis(now).saturating_add(millis(PROBE_INTERVAL));
        self.next_probe.store(next, Ordering::Release);
        if self.down.swap(true, Ordering::AcqRel) {
            Transition::Unchanged
        } else {
            Transition::WentDown
        }
    }

    pub(super) fn succeeded(&self) -> Transition {
        if self.down.load(Ordering::Acquire) && self.down.swap(false, Ordering::AcqRel) {
            Transition::CameBack
        } else {
            Transition::Unchanged
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{Outage, PROBE_INTERVAL, Transition};

    #[test]
    fn an_outage_is_reported_once_when_it_starts_and_once_when_it_ends() {
        let outage = Outage::new();
        let now = Instant::now();
        assert_eq!(outage.succeeded(), Transition::Unchanged);
        assert_eq!(outage.failed(now), Transition::WentDown);
        assert_eq!(outage.failed(now), Transition::Unchanged);
        assert_eq!(outage.failed(now + PROBE_INTERVAL), Transition::Unchanged);
        assert_eq!(outage.succeeded(), Transition::CameBack);
        assert_eq!(outage.succeeded(), Transition::Unchanged);
        assert_eq!(outage.failed(now), Transition::WentDown);
    }

    #[test]
    fn during_an_outage_one_call_per_probe_interval_asks_the_store() {
        let outage = Outage::new();
        let start = Instant::now();
        assert!(outage.should_try(start), "every call while it answers");
        assert!(outage.should_try(start));
        outage.failed(start);
        assert!(!outage.should_try(start));
        assert!(!outage.should_try(start + PROBE_INTERVAL - Duration::from_millis(10)));
        let due = start + PROBE_INTERVAL + Duration::from_millis(1);
        assert!(
            outage.should_try(due),
            "the first call after the interval probes"
        );
        assert!(!outage.should_try(due), "and only that one");
        outage.succeeded();
        assert!(outage.should_try(due), "every call once it answers again");
    }
}
