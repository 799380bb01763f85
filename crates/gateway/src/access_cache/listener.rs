//! Hears `cg_access` notifications on a dedicated PostgreSQL connection and
//! applies them to the caches, reconnecting for as long as the gateway runs.

use std::sync::Arc;
use std::time::Duration;

use cg_db::ControlPool;
use sqlx::postgres::PgListener;

use super::settle::{self, REPLICA_PREFIX};
use super::{AccessCache, Change};

/// The channel the `notify_access_change` trigger notifies.
pub const CHANNEL: &str = "cg_access";
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Applies every change PostgreSQL announces to `cache`, until the task is
/// dropped. The caches are used only while the listening connection is up.
pub async fn follow(pool: ControlPool, cache: Arc<AccessCache>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        match listen(&pool, cache.replica()).await {
            Ok(mut listener) => {
                cache.go_live();
                backoff = MIN_BACKOFF;
                loop {
                    match listener.try_recv().await {
                        Ok(Some(notification)) => heard(&pool, &cache, notification.payload()),
                        Ok(None) => break,
                        Err(error) => {
                            tracing::warn!(%error, "reading access changes failed");
                            break;
                        }
                    }
                }
                cache.go_dark();
                tracing::warn!("lost the access-change feed; caches bypassed until it is back");
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for access changes; caches bypassed");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Applies a change, or answers a barrier once everything before it is
/// applied (notifications arrive in commit order).
fn heard(pool: &ControlPool, cache: &AccessCache, payload: &str) {
    match Change::parse(payload) {
        Change::Barrier { from, id } => {
            let pool = pool.clone();
            let me = cache.replica().to_owned();
            tokio::spawn(async move { settle::acknowledge(&pool, &from, id, &me).await });
        }
        Change::Ack { to, id, by } if to == cache.replica() => {
            cache.barriers.acknowledged(id, &by);
        }
        change => cache.apply(change),
    }
}

/// A listening connection, named after the replica so others can tell it
/// is there (see `settle`).
async fn listen(pool: &ControlPool, replica: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    sqlx::query("SELECT set_config('application_name', $1, false)")
        .bind(format!("{REPLICA_PREFIX}{replica}"))
        .execute(&mut listener)
        .await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
