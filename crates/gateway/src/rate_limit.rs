//! Per-organization rate limits by tier and route class (GCRA).
//!
//! The quotas are data ([`tier_quota`]). The state lives in this process
//! (`governor`, one replica) or in Redis shared by every replica
//! ([`RateLimitStore::Redis`]); either way a refused call gets the same
//! `RESOURCE_EXHAUSTED` with `RetryInfo` and `QuotaFailure`. When Redis
//! does not answer, each replica falls back to its own in-process limiter
//! until Redis answers again: limits stay enforced (per replica) rather
//! than every call failing or every call being admitted.

mod in_process;
mod outage;
mod quota;
mod redis_store;
mod refusal;

use std::time::{Duration, Instant};

use cg_proto::access::v1::RateLimitClass;
use tonic::Status;
use uuid::Uuid;

use in_process::InProcess;
use outage::{Outage, Transition};
use quota::Quotas;
pub use quota::{Limit, Period, tier_quota};
use redis_store::RedisGcra;
pub use redis_store::{RedisStore, key as redis_key};
use refusal::exhausted;

/// Where the rate-limit state lives.
#[derive(Debug, Clone, Default)]
pub enum RateLimitStore {
    /// In this process: right for one gateway replica; with several, each
    /// enforces the limits on its own share of the traffic.
    #[default]
    InProcess,
    /// One Redis shared by every replica, which together enforce one limit.
    Redis(RedisStore),
}

enum Backend {
    InProcess(InProcess),
    Shared {
        redis: RedisGcra,
        outage: Outage,
        /// Decides while Redis does not answer.
        fallback: InProcess,
    },
}

/// Every (tier, class) limit of one gateway process.
pub struct RateLimits {
    quotas: Quotas,
    backend: Backend,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let store = match &self.backend {
            Backend::InProcess(_) => "in process",
            Backend::Shared { redis, .. } => redis.address(),
        };
        f.debug_struct("RateLimits")
            .field("store", &store)
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
    /// The [`tier_quota`] limits, kept in `store`.
    pub fn new(store: RateLimitStore) -> RateLimits {
        Self::with_store_and_table(store, tier_quota)
    }

    /// In-process limiters built from `table`, e.g. [`tier_quota`].
    pub fn with_table(table: impl Fn(&str, RateLimitClass) -> Limit) -> RateLimits {
        Self::with_store_and_table(RateLimitStore::InProcess, table)
    }

    /// Limits from `table`, kept in `store`.
    pub fn with_store_and_table(
        store: RateLimitStore,
        table: impl Fn(&str, RateLimitClass) -> Limit,
    ) -> RateLimits {
        let quotas = Quotas::from_table(table);
        let local = InProcess::new(&quotas);
        let backend = match store {
            RateLimitStore::InProcess => Backend::InProcess(local),
            RateLimitStore::Redis(store) => Backend::Shared {
                redis: RedisGcra::new(store),
                outage: Outage::new(),
                fallback: local,
            },
        };
        RateLimits { quotas, backend }
    }

    /// Admits one call of `organization` (on `tier`) in `class`, or refuses
    /// it with `RESOURCE_EXHAUSTED`, the wait in `RetryInfo` and the limit in
    /// `QuotaFailure`.
    pub async fn check(
        &self,
        organization: Uuid,
        org_code: &str,
        tier: &str,
        class: RateLimitClass,
    ) -> Result<(), Status> {
        let Some((tier_key, limit)) = self.quotas.get(tier, class) else {
            return Ok(());
        };
        let decision = match &self.backend {
            Backend::InProcess(local) => local.check(organization, tier_key, class),
            Backend::Shared {
                redis,
                outage,
                fallback,
            } => match ask_redis(redis, outage, organization, tier_key, class, limit).await {
                Some(decision) => decision,
                None => fallback.check(organization, tier_key, class),
            },
        };
        decision.map_err(|wait| exhausted(org_code, tier, class, limit, wait))
    }

    /// Organizations holding state in this process, over all limiters
    /// (with Redis, those the fallback limiter saw during outages).
    pub fn tracked_keys(&self) -> usize {
        self.local().tracked_keys()
    }

    /// Drops the in-process state of organizations whose allowance is full
    /// again (Redis expires its keys by itself).
    pub fn sweep(&self) {
        self.local().sweep();
    }

    fn local(&self) -> &InProcess {
        match &self.backend {
            Backend::InProcess(local) => local,
            Backend::Shared { fallback, .. } => fallback,
        }
    }
}

/// Redis's decision, or `None` when it is not asked (during an outage,
/// between probes) or does not answer. Logs when an outage starts and ends.
async fn ask_redis(
    redis: &RedisGcra,
    outage: &Outage,
    organization: Uuid,
    tier: &str,
    class: RateLimitClass,
    limit: Limit,
) -> Option<Result<(), Duration>> {
    if !outage.should_try(Instant::now()) {
        return None;
    }
    match redis.check(organization, tier, class, limit).await {
        Ok(decision) => {
            if outage.succeeded() == Transition::CameBack {
                tracing::info!(
                    redis = redis.address(),
                    "rate-limit Redis answers again; replicas share the limits again"
                );
            }
            Some(decision)
        }
        Err(error) => {
            if outage.failed(Instant::now()) == Transition::WentDown {
                tracing::warn!(
                    redis = redis.address(),
                    %error,
                    "rate-limit Redis does not answer; each replica enforces the limits on its \
                     own traffic until it does"
                );
            }
            None
        }
    }
}

#[cfg(test)]
mod tests;
