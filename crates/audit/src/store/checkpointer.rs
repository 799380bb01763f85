//! Signed checkpoints: every `every_entries` entries of a chain, and at
//! least once per `max_age` for a chain with entries not yet covered.
//!
//! Only the audit service holds the signing key; writers cannot sign, so a
//! writer (or anyone with database access) that rewrites history cannot
//! produce checkpoints that match it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use cg_db::{ControlPool, DbError};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::row::CHECKPOINT_COLUMNS;
use super::{PLATFORM_SCHEMA, qualified};
use crate::checkpoint::{Checkpoint, CheckpointSigner};

/// When chains are checkpointed.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointPolicy {
    /// A checkpoint at every multiple of this many entries.
    pub every_entries: i64,
    /// A chain's newest entry is covered within this long.
    pub max_age: Duration,
    /// How often grown chains are looked for.
    pub tick: Duration,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy {
            every_entries: 100,
            max_age: Duration::from_secs(3600),
            tick: Duration::from_secs(5),
        }
    }
}

/// Every chain: the platform's and each organization's.
pub async fn chain_schemas(pool: &ControlPool) -> Result<Vec<String>, DbError> {
    let mut schemas = vec![PLATFORM_SCHEMA.to_owned()];
    schemas.extend(
        sqlx::query_scalar::<_, String>(
            "SELECT schema_name FROM tenancy.organizations ORDER BY code",
        )
        .fetch_all(pool)
        .await?,
    );
    Ok(schemas)
}

/// Writes the checkpoints that are due in `schema` (all multiples of
/// `every_entries` not yet covered, and the head when the oldest uncovered
/// entry is older than `max_age` or `force` is set). Returns them.
pub async fn checkpoint_schema(
    pool: &ControlPool,
    schema: &str,
    signer: &CheckpointSigner,
    policy: &CheckpointPolicy,
    force: bool,
) -> Result<Vec<Checkpoint>, DbError> {
    let prefix = qualified(schema)?;
    let head: Option<(i64, Option<Uuid>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT sequence, organization_id FROM {prefix}audit_head"
    )))
    .fetch_optional(pool)
    .await?;
    let Some((head_sequence, organization_id)) = head else {
        return Ok(Vec::new());
    };
    let covered: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT coalesce(max(sequence), 0) FROM {prefix}audit_checkpoints"
    )))
    .fetch_one(pool)
    .await?;
    if head_sequence <= covered {
        return Ok(Vec::new());
    }
    let every = policy.every_entries.max(1);
    let mut due: BTreeSet<i64> = ((covered / every + 1)..=(head_sequence / every))
        .map(|k| k * every)
        .collect();
    let oldest_uncovered: Option<DateTime<Utc>> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT occurred_at FROM {prefix}audit_log WHERE sequence = $1"
    )))
    .bind(covered + 1)
    .fetch_optional(pool)
    .await?;
    let stale = oldest_uncovered.is_some_and(|time| {
        Utc::now()
            .signed_duration_since(time)
            .to_std()
            .unwrap_or_default()
            >= policy.max_age
    });
    if force || stale {
        due.insert(head_sequence);
    }
    let mut written = Vec::new();
    for sequence in due {
        let hash: Vec<u8> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT hash FROM {prefix}audit_log WHERE sequence = $1"
        )))
        .bind(sequence)
        .fetch_one(pool)
        .await?;
        let hash: [u8; 32] = hash.try_into().map_err(|_| {
            DbError::Other(format!(
                "audit entry {sequence} of {schema} has a malformed hash"
            ))
        })?;
        let checkpoint = signer.sign(organization_id, sequence, hash, Utc::now());
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {prefix}audit_checkpoints ({CHECKPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (sequence) DO NOTHING"
        )))
        .bind(checkpoint.sequence)
        .bind(checkpoint.organization_id)
        .bind(checkpoint.head_hash.to_vec())
        .bind(checkpoint.time)
        .bind(&checkpoint.key_id)
        .bind(checkpoint.signature.to_vec())
        .execute(pool)
        .await?;
        written.push(checkpoint);
    }
    Ok(written)
}

/// Checkpoints every chain that is due. Returns the number written.
pub async fn run_once(
    pool: &ControlPool,
    signer: &CheckpointSigner,
    policy: &CheckpointPolicy,
    force: bool,
) -> Result<usize, DbError> {
    let mut written = 0;
    for schema in chain_schemas(pool).await? {
        written += checkpoint_schema(pool, &schema, signer, policy, force)
            .await?
            .len();
    }
    Ok(written)
}

/// Insert counts of every chain's `audit_log`, by schema, from the
/// statistics collector: one query for all organizations, at no cost to
/// writers. The counts lag commits by up to a few seconds.
async fn insert_counts(pool: &ControlPool) -> Result<BTreeMap<String, i64>, DbError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT schemaname::text, n_tup_ins FROM pg_stat_user_tables WHERE relname = 'audit_log'",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

/// The checkpointer's loop: each tick, checkpoints the chains whose insert
/// counts grew; four times per `max_age`, sweeps every chain (for chains
/// whose growth was missed, e.g. after a statistics reset, and for the
/// age rule).
pub async fn run(pool: ControlPool, signer: Arc<CheckpointSigner>, policy: CheckpointPolicy) {
    let mut seen: BTreeMap<String, i64> = BTreeMap::new();
    let mut sweep = tokio::time::interval((policy.max_age / 4).max(Duration::from_secs(1)));
    let mut tick = tokio::time::interval(policy.tick.max(Duration::from_millis(10)));
    loop {
        tokio::select! {
            _ = sweep.tick() => {
                if let Err(error) = run_once(&pool, &signer, &policy, false).await {
                    tracing::warn!(%error, "audit checkpoint sweep failed");
                }
            }
            _ = tick.tick() => {
                let counts = match insert_counts(&pool).await {
                    Ok(counts) => counts,
                    Err(error) => {
                        tracing::warn!(%error, "audit checkpointer cannot read statistics");
                        continue;
                    }
                };
                for (schema, count) in &counts {
                    if seen.get(schema) == Some(count) {
                        continue;
                    }
                    match checkpoint_schema(&pool, schema, &signer, &policy, false).await {
                        Ok(_) => {
                            seen.insert(schema.clone(), *count);
                        }
                        Err(error) => tracing::warn!(%error, schema, "audit checkpoint failed"),
                    }
                }
            }
        }
    }
}
