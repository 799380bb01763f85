//! Rows of `audit_log` and `audit_checkpoints` ↔ domain records.

use cg_db::DbError;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::checkpoint::Checkpoint;
use crate::encoding::canonical_json;
use crate::entry::{Actor, ActorKind, AuditEntry, Outcome};

pub const ENTRY_COLUMNS: &str = "sequence, organization_id, occurred_at, actor_kind, actor_id, action, \
    resource_type, resource_id, outcome, request_id, trace_id, source_ip, user_agent, summary, \
    previous_hash, hash";

pub const CHECKPOINT_COLUMNS: &str =
    "sequence, organization_id, head_hash, signed_at, key_id, signature";

/// `audit_log` as stored.
#[derive(Debug, sqlx::FromRow)]
pub struct EntryRow {
    pub sequence: i64,
    pub organization_id: Option<Uuid>,
    pub occurred_at: DateTime<Utc>,
    pub actor_kind: String,
    pub actor_id: String,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub outcome: String,
    pub request_id: String,
    pub trace_id: String,
    pub source_ip: String,
    pub user_agent: String,
    pub summary: String,
    pub previous_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

impl EntryRow {
    pub fn from_entry(entry: &AuditEntry) -> EntryRow {
        EntryRow {
            sequence: entry.sequence,
            organization_id: entry.organization_id,
            occurred_at: entry.time,
            actor_kind: entry.actor.kind.as_str().to_owned(),
            actor_id: entry.actor.id.clone(),
            action: entry.action.clone(),
            resource_type: entry.resource_type.clone(),
            resource_id: entry.resource_id.clone(),
            outcome: entry.outcome.as_str().to_owned(),
            request_id: entry.request_id.clone(),
            trace_id: entry.trace_id.clone(),
            source_ip: entry.source_ip.clone(),
            user_agent: entry.user_agent.clone(),
            summary: String::from_utf8(canonical_json(&entry.summary)).unwrap_or_default(),
            previous_hash: entry.previous_hash.to_vec(),
            hash: entry.hash.to_vec(),
        }
    }

    pub fn from_pg(row: &tokio_postgres::Row) -> Result<EntryRow, DbError> {
        Ok(EntryRow {
            sequence: row.try_get("sequence")?,
            organization_id: row.try_get("organization_id")?,
            occurred_at: row.try_get("occurred_at")?,
            actor_kind: row.try_get("actor_kind")?,
            actor_id: row.try_get("actor_id")?,
            action: row.try_get("action")?,
            resource_type: row.try_get("resource_type")?,
            resource_id: row.try_get("resource_id")?,
            outcome: row.try_get("outcome")?,
            request_id: row.try_get("request_id")?,
            trace_id: row.try_get("trace_id")?,
            source_ip: row.try_get("source_ip")?,
            user_agent: row.try_get("user_agent")?,
            summary: row.try_get("summary")?,
            previous_hash: row.try_get("previous_hash")?,
            hash: row.try_get("hash")?,
        })
    }

    /// The entry as stored. A row that does not even parse is returned with
    /// what could be read, so verification reports it as a bad entry rather
    /// than failing the whole read: unknown kinds and outcomes, broken JSON
    /// or short hashes all make the recomputed hash differ.
    pub fn into_entry(self) -> AuditEntry {
        let summary = serde_json::from_str(&self.summary)
            .unwrap_or_else(|_| serde_json::Value::String(self.summary.clone()));
        AuditEntry {
            organization_id: self.organization_id,
            sequence: self.sequence,
            time: self.occurred_at,
            actor: Actor {
                kind: ActorKind::parse(&self.actor_kind).unwrap_or(ActorKind::Anonymous),
                id: self.actor_id,
            },
            action: self.action,
            resource_type: self.resource_type,
            resource_id: self.resource_id,
            outcome: Outcome::parse(&self.outcome).unwrap_or(Outcome::Failed),
            request_id: self.request_id,
            trace_id: self.trace_id,
            source_ip: self.source_ip,
            user_agent: self.user_agent,
            summary,
            previous_hash: to_array(&self.previous_hash),
            hash: to_array(&self.hash),
        }
    }
}

fn to_array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    if bytes.len() == N {
        out.copy_from_slice(bytes);
    }
    out
}

/// `audit_checkpoints` as stored.
#[derive(Debug, sqlx::FromRow)]
pub struct CheckpointRow {
    pub sequence: i64,
    pub organization_id: Option<Uuid>,
    pub head_hash: Vec<u8>,
    pub signed_at: DateTime<Utc>,
    pub key_id: String,
    pub signature: Vec<u8>,
}

impl CheckpointRow {
    pub fn from_pg(row: &tokio_postgres::Row) -> Result<CheckpointRow, DbError> {
        Ok(CheckpointRow {
            sequence: row.try_get("sequence")?,
            organization_id: row.try_get("organization_id")?,
            head_hash: row.try_get("head_hash")?,
            signed_at: row.try_get("signed_at")?,
            key_id: row.try_get("key_id")?,
            signature: row.try_get("signature")?,
        })
    }

    pub fn into_checkpoint(self) -> Checkpoint {
        Checkpoint {
            organization_id: self.organization_id,
            sequence: self.sequence,
            head_hash: to_array(&self.head_hash),
            time: self.signed_at,
            key_id: self.key_id,
            signature: to_array(&self.signature),
        }
    }
}
