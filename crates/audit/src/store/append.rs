//! Appending to a chain, in the caller's transaction so an entry commits
//! with the change it records or not at all.
//!
//! The head row is locked first (`FOR UPDATE`), which serializes writers of
//! one chain: one linear chain, contiguous sequence numbers, whatever the
//! number of concurrent writers; other chains are not blocked. Two round
//! trips: lock and read the head; insert the entry and move the head in one
//! statement. Nothing is announced (`NOTIFY` would serialize every commit
//! in the database on the notification queue lock); the checkpointer finds
//! grown chains from the statistics collector instead.

use cg_db::DbError;
use sqlx::PgConnection;
use uuid::Uuid;

use super::qualified;
use super::row::{ENTRY_COLUMNS, EntryRow};
use crate::entry::{AuditEntry, GENESIS_HASH, NewEntry, chain};

fn lock_head_sql(prefix: &str) -> String {
    format!("SELECT sequence, hash FROM {prefix}audit_head FOR UPDATE")
}

fn create_head_sql(prefix: &str) -> String {
    format!(
        "INSERT INTO {prefix}audit_head (organization_id, sequence, hash) VALUES ($1, 0, $2) \
         ON CONFLICT (singleton) DO NOTHING"
    )
}

/// Inserts the entry ($1..$16) and moves the head to it, in one statement.
fn insert_sql(prefix: &str) -> String {
    format!(
        "WITH entry AS (INSERT INTO {prefix}audit_log ({ENTRY_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING sequence, hash) \
         UPDATE {prefix}audit_head SET sequence = entry.sequence, hash = entry.hash FROM entry"
    )
}

fn head_from(sequence: i64, hash: Vec<u8>) -> Result<(i64, [u8; 32]), DbError> {
    let hash: [u8; 32] = hash
        .try_into()
        .map_err(|_| DbError::Other("audit head hash is not 32 bytes".to_owned()))?;
    Ok((sequence, hash))
}

/// Appends `new` to the chain in `schema` within the caller's open
/// transaction (sqlx), with schema-qualified statements.
pub async fn append(
    conn: &mut PgConnection,
    schema: &str,
    new: NewEntry,
) -> Result<AuditEntry, DbError> {
    let prefix = qualified(schema)?;
    let organization_id: Option<Uuid> = new.organization_id;
    let mut head: Option<(i64, Vec<u8>)> =
        sqlx::query_as(sqlx::AssertSqlSafe(lock_head_sql(&prefix)))
            .fetch_optional(&mut *conn)
            .await?;
    if head.is_none() {
        sqlx::query(sqlx::AssertSqlSafe(create_head_sql(&prefix)))
            .bind(organization_id)
            .bind(GENESIS_HASH.to_vec())
            .execute(&mut *conn)
            .await?;
        head = sqlx::query_as(sqlx::AssertSqlSafe(lock_head_sql(&prefix)))
            .fetch_optional(&mut *conn)
            .await?;
    }
    let (sequence, hash) = head.ok_or_else(|| DbError::Other("audit head missing".to_owned()))?;
    let (sequence, previous_hash) = head_from(sequence, hash)?;
    let entry = chain(new, sequence + 1, previous_hash);
    let row = EntryRow::from_entry(&entry);
    sqlx::query(sqlx::AssertSqlSafe(insert_sql(&prefix)))
        .bind(row.sequence)
        .bind(row.organization_id)
        .bind(row.occurred_at)
        .bind(&row.actor_kind)
        .bind(&row.actor_id)
        .bind(&row.action)
        .bind(&row.resource_type)
        .bind(&row.resource_id)
        .bind(&row.outcome)
        .bind(&row.request_id)
        .bind(&row.trace_id)
        .bind(&row.source_ip)
        .bind(&row.user_agent)
        .bind(&row.summary)
        .bind(&row.previous_hash)
        .bind(&row.hash)
        .execute(&mut *conn)
        .await?;
    Ok(entry)
}

/// Appends `new` to the chain of the tenant whose transaction this is
/// (search_path on `schema`, row-level security in force).
pub async fn append_in_tenant(
    tx: &tokio_postgres::Transaction<'_>,
    schema: &str,
    new: NewEntry,
) -> Result<AuditEntry, DbError> {
    let prefix = qualified(schema)?;
    let mut head = tx.query_opt(&lock_head_sql(&prefix), &[]).await?;
    if head.is_none() {
        tx.execute(
            &create_head_sql(&prefix),
            &[&new.organization_id, &GENESIS_HASH.to_vec()],
        )
        .await?;
        head = tx.query_opt(&lock_head_sql(&prefix), &[]).await?;
    }
    let head = head.ok_or_else(|| DbError::Other("audit head missing".to_owned()))?;
    let (sequence, previous_hash) = head_from(head.try_get(0)?, head.try_get(1)?)?;
    let entry = chain(new, sequence + 1, previous_hash);
    let row = EntryRow::from_entry(&entry);
    tx.execute(
        &insert_sql(&prefix),
        &[
            &row.sequence,
            &row.organization_id,
            &row.occurred_at,
            &row.actor_kind,
            &row.actor_id,
            &row.action,
            &row.resource_type,
            &row.resource_id,
            &row.outcome,
            &row.request_id,
            &row.trace_id,
            &row.source_ip,
            &row.user_agent,
            &row.summary,
            &row.previous_hash,
            &row.hash,
        ],
    )
    .await?;
    Ok(entry)
}
