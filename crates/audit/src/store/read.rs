//! Reading a tenant's chain inside a tenant-scoped transaction (search_path
//! on the tenant schema, row-level security in force): what the audit
//! service serves, never across organizations.

use cg_db::DbError;
use chrono::{DateTime, Utc};
use tokio_postgres::Transaction;
use tokio_postgres::types::ToSql;

use super::row::{CHECKPOINT_COLUMNS, CheckpointRow, ENTRY_COLUMNS, EntryRow};
use crate::checkpoint::Checkpoint;
use crate::entry::{AuditEntry, Outcome};
use crate::verify::ChainHead;

/// Filters of ListAuditEntries; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub actor_id: Option<String>,
    pub action_prefix: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub outcome: Option<Outcome>,
}

/// `prefix%` for LIKE, with the pattern characters of the prefix escaped.
fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// One page of entries matching `filter`, newest first, below `before`.
pub async fn list_entries(
    tx: &Transaction<'_>,
    filter: &AuditFilter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditEntry>, DbError> {
    let action_pattern = filter.action_prefix.as_deref().map(like_prefix);
    let outcome = filter.outcome.map(Outcome::as_str);
    let params: [&(dyn ToSql + Sync); 9] = [
        &before,
        &filter.start_time,
        &filter.end_time,
        &filter.actor_id,
        &action_pattern,
        &filter.resource_type,
        &filter.resource_id,
        &outcome,
        &limit,
    ];
    let rows = tx
        .query(
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM audit_log \
                 WHERE ($1::bigint IS NULL OR sequence < $1) \
                   AND ($2::timestamptz IS NULL OR occurred_at >= $2) \
                   AND ($3::timestamptz IS NULL OR occurred_at < $3) \
                   AND ($4::text IS NULL OR actor_id = $4) \
                   AND ($5::text IS NULL OR action LIKE $5) \
                   AND ($6::text IS NULL OR resource_type = $6) \
                   AND ($7::text IS NULL OR resource_id = $7) \
                   AND ($8::text IS NULL OR outcome = $8) \
                 ORDER BY sequence DESC LIMIT $9"
            ),
            &params,
        )
        .await?;
    rows.iter()
        .map(|row| EntryRow::from_pg(row).map(EntryRow::into_entry))
        .collect()
}

/// Entries with `from <= sequence <= to`, ascending, at most `limit`.
pub async fn entries_between(
    tx: &Transaction<'_>,
    from: i64,
    to: i64,
    limit: i64,
) -> Result<Vec<AuditEntry>, DbError> {
    let rows = tx
        .query(
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM audit_log WHERE sequence BETWEEN $1 AND $2 \
                 ORDER BY sequence LIMIT $3"
            ),
            &[&from, &to, &limit],
        )
        .await?;
    rows.iter()
        .map(|row| EntryRow::from_pg(row).map(EntryRow::into_entry))
        .collect()
}

/// Checkpoints with `from <= sequence <= to`, ascending.
pub async fn checkpoints_between(
    tx: &Transaction<'_>,
    from: i64,
    to: i64,
) -> Result<Vec<Checkpoint>, DbError> {
    let rows = tx
        .query(
            &format!(
                "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE sequence BETWEEN $1 AND $2 \
                 ORDER BY sequence"
            ),
            &[&from, &to],
        )
        .await?;
    rows.iter()
        .map(|row| CheckpointRow::from_pg(row).map(CheckpointRow::into_checkpoint))
        .collect()
}

/// The head row: sequence and hash of the newest entry.
pub async fn chain_head(tx: &Transaction<'_>) -> Result<Option<ChainHead>, DbError> {
    let row = tx
        .query_opt("SELECT sequence, hash FROM audit_head", &[])
        .await?;
    row.map(|row| {
        let hash: Vec<u8> = row.try_get(1)?;
        Ok(ChainHead {
            sequence: row.try_get(0)?,
            hash: hash
                .try_into()
                .map_err(|_| DbError::Other("audit head hash is not 32 bytes".to_owned()))?,
        })
    })
    .transpose()
}

/// The lowest sequence still stored (after retention), if any.
pub async fn first_sequence(tx: &Transaction<'_>) -> Result<Option<i64>, DbError> {
    Ok(tx
        .query_one("SELECT min(sequence) FROM audit_log", &[])
        .await?
        .try_get(0)?)
}

/// The sequence range of entries with `start <= occurred_at < end`.
pub async fn sequence_range(
    tx: &Transaction<'_>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
) -> Result<Option<(i64, i64)>, DbError> {
    let row = tx
        .query_one(
            "SELECT min(sequence), max(sequence) FROM audit_log \
             WHERE ($1::timestamptz IS NULL OR occurred_at >= $1) AND ($2::timestamptz IS NULL OR occurred_at < $2)",
            &[&start, &end],
        )
        .await?;
    let first: Option<i64> = row.try_get(0)?;
    let last: Option<i64> = row.try_get(1)?;
    Ok(first.zip(last))
}

#[cfg(test)]
mod tests {
    use super::like_prefix;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_prefix("claims."), "claims.%");
        assert_eq!(like_prefix("a_b%"), "a\\_b\\%%");
    }
}
