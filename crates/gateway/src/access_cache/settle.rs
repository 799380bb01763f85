//! Settling: after a call that may have changed what admits calls, wait
//! until every gateway replica has applied every change committed so far,
//! before the caller hears that its call is done. Then its next call, through
//! any replica, sees the change — not merely within a few milliseconds.
//!
//! Each replica's listening connection is named `cg-gateway:<replica>` in
//! `pg_stat_activity`, which says who listens on this database (channels are
//! per database). The settling replica
//! notifies `cg.barrier:<from>:<n>` on the same channel as the changes;
//! PostgreSQL delivers a channel's notifications to each listener in commit
//! order, so a replica that answers `cg.ack:<from>:<n>:<by>` has applied
//! everything committed before the barrier.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use cg_db::ControlPool;
use tokio::sync::oneshot;

use super::listener::CHANNEL;

/// `application_name` prefix of each replica's listening connection.
pub const REPLICA_PREFIX: &str = "cg-gateway:";
/// Longest wait for the replicas; one that has not answered by then is
/// logged (it is usually one that just died).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);

struct Waiter {
    pending: HashSet<String>,
    done: Option<oneshot::Sender<()>>,
}

/// This replica's barriers in flight.
#[derive(Default)]
pub struct Barriers {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, Waiter>>,
}

impl std::fmt::Debug for Barriers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Barriers")
            .field("next", &self.next.load(Ordering::Relaxed))
            .finish()
    }
}

impl Barriers {
    /// Waits until every replica listening now has applied every change
    /// committed before this call; gives up after a bounded wait.
    pub async fn settle(&self, pool: &ControlPool, replica: &str) {
        let replicas: Vec<String> = match sqlx::query_scalar(
            "SELECT DISTINCT substr(application_name, length($1) + 1) FROM pg_stat_activity \
             WHERE datname = current_database() AND starts_with(application_name, $1)",
        )
        .bind(REPLICA_PREFIX)
        .fetch_all(pool)
        .await
        {
            Ok(replicas) => replicas,
            Err(error) => {
                tracing::warn!(%error, "cannot list the gateway replicas to settle");
                return;
            }
        };
        if replicas.is_empty() {
            return;
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (done, answered) = oneshot::channel();
        self.lock().insert(
            id,
            Waiter {
                pending: replicas.into_iter().collect(),
                done: Some(done),
            },
        );
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(format!("cg.barrier:{replica}:{id}"))
            .execute(pool)
            .await;
        if let Err(error) = sent {
            tracing::warn!(%error, "cannot send a settling barrier");
        } else if tokio::time::timeout(SETTLE_TIMEOUT, answered)
            .await
            .is_err()
        {
            let missing: Vec<String> = self
                .lock()
                .get(&id)
                .map(|waiter| waiter.pending.iter().cloned().collect())
                .unwrap_or_default();
            tracing::warn!(
                ?missing,
                "gateway replicas did not confirm access changes in time"
            );
        }
        self.lock().remove(&id);
    }

    /// Replica `by` has applied everything before barrier `id`.
    pub fn acknowledged(&self, id: u64, by: &str) {
        let mut waiting = self.lock();
        if let Some(waiter) = waiting.get_mut(&id) {
            waiter.pending.remove(by);
            if waiter.pending.is_empty()
                && let Some(done) = waiter.done.take()
            {
                let _ = done.send(());
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Waiter>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Answers another replica's barrier, once everything before it is applied.
pub async fn acknowledge(pool: &ControlPool, from: &str, id: u64, me: &str) {
    let sent = sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(format!("cg.ack:{from}:{id}:{me}"))
        .execute(pool)
        .await;
    if let Err(error) = sent {
        tracing::warn!(%error, "cannot acknowledge a settling barrier");
    }
}
