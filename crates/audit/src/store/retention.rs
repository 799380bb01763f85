//! Retention: an organization's audit entries are kept for the longest
//! data-retention period of its allowed states, unless a legal hold stops
//! every purge. A purge runs as the retention role and removes entries only
//! up to a signed checkpoint, so what remains still verifies from that
//! checkpoint.

use cg_db::migrate::RETENTION_ROLE;
use cg_db::{ControlPool, DbError};
use chrono::{DateTime, Duration, Utc};
use sqlx::Connection;

use super::qualified;

/// Retention when none of an organization's states has a configuration:
/// seven years, the longest the guide names.
pub const DEFAULT_RETENTION_DAYS: i32 = 2555;

/// Why nothing was purged.
#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error("organization `{0}` not found")]
    UnknownOrganization(String),
    #[error("organization `{0}` is under legal hold: nothing is purged")]
    LegalHold(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What a purge removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeOutcome {
    pub schema: String,
    pub retention_days: i32,
    pub cutoff: DateTime<Utc>,
    /// Entries removed.
    pub deleted: u64,
    /// The checkpoint the remaining chain starts from, when anything was removed.
    pub through_sequence: Option<i64>,
}

/// The organization's id, schema, legal hold, and retention in days.
async fn retention_of(
    pool: &ControlPool,
    code: &str,
) -> Result<(uuid::Uuid, String, bool, i32), PurgeError> {
    let row: Option<(uuid::Uuid, String, bool, Option<i32>)> = sqlx::query_as(
        "SELECT o.id, o.schema_name, o.legal_hold, \
                (SELECT max(s.data_retention_days) FROM tenancy.state_configurations s \
                 WHERE s.state = ANY (o.allowed_states)) \
         FROM tenancy.organizations o WHERE o.code = $1",
    )
    .bind(code)
    .fetch_optional(pool)
    .await
    .map_err(DbError::from)?;
    let (id, schema, hold, days) =
        row.ok_or_else(|| PurgeError::UnknownOrganization(code.to_owned()))?;
    Ok((id, schema, hold, days.unwrap_or(DEFAULT_RETENTION_DAYS)))
}

/// Sets or clears the legal hold of an organization.
pub async fn set_legal_hold(pool: &ControlPool, code: &str, hold: bool) -> Result<(), PurgeError> {
    let done = sqlx::query("UPDATE tenancy.organizations SET legal_hold = $2 WHERE code = $1")
        .bind(code)
        .bind(hold)
        .execute(pool)
        .await
        .map_err(DbError::from)?;
    if done.rows_affected() == 0 {
        return Err(PurgeError::UnknownOrganization(code.to_owned()));
    }
    Ok(())
}

/// Removes the organization's entries older than its retention period, up
/// to the newest checkpoint that covers only such entries.
pub async fn purge_organization(
    pool: &ControlPool,
    code: &str,
    now: DateTime<Utc>,
) -> Result<PurgeOutcome, PurgeError> {
    let (org_id, schema, hold, retention_days) = retention_of(pool, code).await?;
    if hold {
        return Err(PurgeError::LegalHold(code.to_owned()));
    }
    let cutoff = now - Duration::days(i64::from(retention_days));
    let prefix = qualified(&schema)?;
    let mut conn = pool.acquire().await.map_err(DbError::from)?;
    let mut tx = conn.begin().await.map_err(DbError::from)?;
    // The retention role bypasses no row-level security: it acts within
    // this organization like any tenant transaction.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT set_config('role', '{RETENTION_ROLE}', true), set_config('app.org_id', $1, true)"
    )))
    .bind(org_id.to_string())
    .execute(&mut *tx)
    .await
    .map_err(DbError::from)?;
    let through: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT max(c.sequence) FROM {prefix}audit_checkpoints c \
         WHERE c.sequence <= (SELECT coalesce(max(sequence), 0) FROM {prefix}audit_log WHERE occurred_at < $1)"
    )))
    .bind(cutoff)
    .fetch_one(&mut *tx)
    .await
    .map_err(DbError::from)?;
    let deleted = match through {
        Some(through) => sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {prefix}audit_log WHERE sequence <= $1"
        )))
        .bind(through)
        .execute(&mut *tx)
        .await
        .map_err(DbError::from)?
        .rows_affected(),
        None => 0,
    };
    tx.commit().await.map_err(DbError::from)?;
    Ok(PurgeOutcome {
        schema,
        retention_days,
        cutoff,
        deleted,
        through_sequence: through.filter(|_| deleted > 0),
    })
}
