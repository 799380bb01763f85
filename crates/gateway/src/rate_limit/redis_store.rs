//! GCRA in Redis, shared by every gateway replica: one Lua script per call
//! (`gcra.lua`) reads and advances the organization's theoretical arrival
//! time atomically, on the server's clock, and lets idle keys expire.

use std::time::Duration;

use anyhow::Context as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::io::tcp::TcpSettings;
use redis::{IntoConnectionInfo as _, Script};
use uuid::Uuid;

use cg_proto::access::v1::RateLimitClass;

use super::quota::{Limit, class_name, tier_key};

/// The longest a call waits for Redis before the replica decides alone.
/// Redis answers a loopback or LAN call in well under a millisecond; this
/// bounds the cost of a stalled or partitioned server, not a normal one.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

/// A Redis server holding the rate-limit state of every replica.
///
/// Connects lazily and reconnects by itself; cheap to clone.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    /// `host:port`, for logs: the URL may hold a password.
    address: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("address", &self.address)
            .finish()
    }
}

impl RedisStore {
    /// The server at `url` (`redis://[:password@]host:port[/db]`). Does
    /// not connect yet, so a gateway starts while Redis is down; must be
    /// called within a Tokio runtime.
    pub fn connect_lazy(url: &str) -> anyhow::Result<RedisStore> {
        let info = url
            .into_connection_info()
            .context("the rate-limit Redis URL")?;
        let address = info.addr().to_string();
        // Without TCP_NODELAY each small request can wait for the peer's
        // delayed ACK (tens of milliseconds).
        let info = info.set_tcp_settings(TcpSettings::default().set_nodelay(true));
        let client = redis::Client::open(info).context("the rate-limit Redis URL")?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            // One attempt per reconnect: while Redis is down the limiter
            // probes it now and then (see `outage`) rather than having
            // every call wait on a chain of retries.
            .set_number_of_retries(0);
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .context("create the rate-limit Redis connection")?;
        Ok(RedisStore {
            connection,
            address,
        })
    }

    /// `host:port` of the server.
    pub fn address(&self) -> &str {
        &self.address
    }
}

/// Why Redis gave no answer.
#[derive(Debug, thiserror::Error)]
pub(super) enum StoreError {
    #[error("no answer within {REDIS_TIMEOUT:?}")]
    Timeout,
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    #[error("the script answered {0:?}")]
    Answer((i64, i64)),
}

/// The GCRA script bound to a store.
pub(super) struct RedisGcra {
    store: RedisStore,
    script: Script,
}

impl RedisGcra {
    pub(super) fn new(store: RedisStore) -> RedisGcra {
        RedisGcra {
            store,
            script: Script::new(include_str!("gcra.lua")),
        }
    }

    pub(super) fn address(&self) -> &str {
        self.store.address()
    }

    /// Admits one call of `organization` on `tier` in `class` under
    /// `limit`, or says how long until one would be admitted. `EVALSHA`
    /// first; the script is loaded again when the server does not know it
    /// (e.g. after a restart).
    pub(super) async fn check(
        &self,
        organization: Uuid,
        tier: &str,
        class: RateLimitClass,
        limit: Limit,
    ) -> Result<Result<(), Duration>, StoreError> {
        let (interval, tolerance) = gcra_parameters(limit);
        let mut connection = self.store.connection.clone();
        let mut invocation = self.script.key(key(organization, tier, class));
        invocation.arg(interval).arg(tolerance);
        let answer: (i64, i64) =
            tokio::time::timeout(REDIS_TIMEOUT, invocation.invoke_async(&mut connection))
                .await
                .map_err(|_| StoreError::Timeout)??;
        match answer {
            (1, _) => Ok(Ok(())),
            (0, wait) if wait >= 0 => Ok(Err(Duration::from_micros(wait.unsigned_abs()))),
            other => Err(StoreError::Answer(other)),
        }
    }
}

/// The key of one organization's state in one route class on one tier.
/// The tier is part of it, as it names the in-process limiter: an upgrade
/// starts from the new tier's full allowance rather than from arrears
/// counted at the old tier's pace.
pub fn key(organization: Uuid, tier: &str, class: RateLimitClass) -> String {
    format!(
        "cg:rl:{organization}:{}:{}",
        class_name(class),
        tier_key(tier)
    )
}

/// Emission interval and tolerance in microseconds, as governor computes
/// them: `limit.calls` at once from a full allowance, then one per interval.
fn gcra_parameters(limit: Limit) -> (u64, u64) {
    let period = u64::try_from(limit.period.length().as_micros()).unwrap_or(u64::MAX);
    let calls = u64::from(limit.calls.max(1));
    let interval = (period / calls).max(1);
    (interval, interval * (calls - 1))
}

#[cfg(test)]
mod tests {
    use super::super::quota::{Limit, Period};
    use super::gcra_parameters;

    #[test]
    fn a_hundred_a_minute_is_one_call_every_600_ms_after_a_burst_of_a_hundred() {
        let limit = Limit {
            calls: 100,
            period: Period::Minute,
        };
        assert_eq!(gcra_parameters(limit), (600_000, 99 * 600_000));
    }

    #[test]
    fn a_single_call_per_hour_has_no_tolerance() {
        let limit = Limit {
            calls: 1,
            period: Period::Hour,
        };
        assert_eq!(gcra_parameters(limit), (3_600_000_000, 0));
    }
}
