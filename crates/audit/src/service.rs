//! The audit service: reading, exporting and verifying the calling
//! organization's chain. Every read runs in a tenant-scoped transaction, so
//! one organization can never reach another's entries.

use async_trait::async_trait;
use cg_context::{Tenant, TenantContext};
use cg_db::{TenantPool, paging};
use cg_status::FieldViolations;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::checkpoint::{Checkpoint, CheckpointVerifier};
use crate::entry::AuditEntry;
use crate::error::AuditError;
use crate::export::{checkpoint_to_json_line, to_json_line};
use crate::store::{self, AuditFilter};
use crate::verify::{ChainExpectation, VerifyReport, verify_chain};

/// Entries read and verified per round trip.
const BATCH: i64 = 20_000;
/// Entries per export chunk.
const EXPORT_CHUNK: i64 = 1_000;

/// One chunk of an export: JSON Lines, entries with the checkpoints among them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportChunk {
    pub jsonl: Vec<u8>,
    pub first_sequence: i64,
    pub last_sequence: i64,
    pub entry_count: i32,
}

/// The outcome of VerifyAuditChain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainVerification {
    pub report: VerifyReport,
    pub last_verified_checkpoint: Option<Checkpoint>,
}

#[async_trait]
pub trait AuditApi: Send + Sync + 'static {
    async fn list_entries(
        &self,
        ctx: &TenantContext,
        filter: AuditFilter,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<AuditEntry>, String), AuditError>;
    async fn export(
        &self,
        ctx: &TenantContext,
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
        after_sequence: i64,
    ) -> Result<mpsc::Receiver<Result<ExportChunk, AuditError>>, AuditError>;
    async fn verify(
        &self,
        ctx: &TenantContext,
        first: Option<i64>,
        last: Option<i64>,
    ) -> Result<ChainVerification, AuditError>;
    async fn list_checkpoints(
        &self,
        ctx: &TenantContext,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<Checkpoint>, String), AuditError>;
    /// The key checkpoints are verified with.
    fn verifier(&self) -> &CheckpointVerifier;
}

/// The audit service on the tenant schemas.
#[derive(Debug, Clone)]
pub struct PgAudit {
    pool: TenantPool,
    verifier: CheckpointVerifier,
}

impl PgAudit {
    pub fn new(pool: TenantPool, verifier: CheckpointVerifier) -> Self {
        PgAudit { pool, verifier }
    }
}

fn tenant(ctx: &TenantContext) -> Result<&Tenant, AuditError> {
    ctx.tenant.as_ref().ok_or(AuditError::PermissionDenied(
        "this method acts within an organization",
    ))
}

fn before_sequence(page_token: &str) -> Result<Option<i64>, FieldViolations> {
    paging::decode(page_token)?
        .map(|key| key.parse::<i64>())
        .transpose()
        .map_err(|_| FieldViolations::single("page_token", "is not a token this service issued"))
}

#[async_trait]
impl AuditApi for PgAudit {
    async fn list_entries(
        &self,
        ctx: &TenantContext,
        filter: AuditFilter,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<AuditEntry>, String), AuditError> {
        tenant(ctx)?;
        let limit = paging::page_size(page_size)?;
        let before = before_sequence(page_token)?;
        let mut entries = self
            .pool
            .in_tenant(ctx, async |tx| {
                store::list_entries(tx, &filter, before, limit + 1)
                    .await
                    .map_err(AuditError::from)
            })
            .await?;
        let next = paging::finish_page(&mut entries, limit, |e| e.sequence.to_string());
        Ok((entries, next))
    }

    async fn export(
        &self,
        ctx: &TenantContext,
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
        after_sequence: i64,
    ) -> Result<mpsc::Receiver<Result<ExportChunk, AuditError>>, AuditError> {
        tenant(ctx)?;
        let range = self
            .pool
            .in_tenant(ctx, async |tx| {
                store::sequence_range(tx, start, end)
                    .await
                    .map_err(AuditError::from)
            })
            .await?;
        let (sender, receiver) = mpsc::channel(2);
        let pool = self.pool.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let Some((first, last)) = range else { return };
            let mut next = first.max(after_sequence + 1);
            let mut anchor_sent = false;
            while next <= last {
                let to = (next + EXPORT_CHUNK - 1).min(last);
                let anchor = if anchor_sent { next } else { next - 1 };
                let chunk = pool
                    .in_tenant(&ctx, async |tx| {
                        let entries = store::entries_between(tx, next, to, EXPORT_CHUNK).await?;
                        let checkpoints = store::checkpoints_between(tx, anchor, to).await?;
                        Ok::<_, AuditError>((entries, checkpoints))
                    })
                    .await;
                anchor_sent = true;
                let (entries, checkpoints) = match chunk {
                    Ok(read) => read,
                    Err(error) => {
                        let _ = sender.send(Err(error)).await;
                        return;
                    }
                };
                let mut jsonl = Vec::with_capacity(entries.len() * 512);
                for checkpoint in checkpoints.iter().filter(|c| c.sequence < next) {
                    jsonl.extend_from_slice(checkpoint_to_json_line(checkpoint).as_bytes());
                    jsonl.push(b'\n');
                }
                for entry in &entries {
                    jsonl.extend_from_slice(to_json_line(entry).as_bytes());
                    jsonl.push(b'\n');
                    for checkpoint in checkpoints.iter().filter(|c| c.sequence == entry.sequence) {
                        jsonl.extend_from_slice(checkpoint_to_json_line(checkpoint).as_bytes());
                        jsonl.push(b'\n');
                    }
                }
                let chunk = ExportChunk {
                    jsonl,
                    first_sequence: next,
                    last_sequence: to,
                    entry_count: entries.len() as i32,
                };
                if sender.send(Ok(chunk)).await.is_err() {
                    return;
                }
                next = to + 1;
            }
        });
        Ok(receiver)
    }

    async fn verify(
        &self,
        ctx: &TenantContext,
        first: Option<i64>,
        last: Option<i64>,
    ) -> Result<ChainVerification, AuditError> {
        let tenant = tenant(ctx)?;
        let org = Some(tenant.org_id.0);
        let verifier = &self.verifier;
        self.pool
            .in_tenant(ctx, async |tx| {
                // The head is read first: every entry up to it has committed.
                let head = store::chain_head(tx).await?;
                let stored_from = store::first_sequence(tx).await?.unwrap_or(1);
                let Some(head) = head else {
                    return Ok(ChainVerification {
                        report: verify_chain(&[], &[], verifier, ChainExpectation::genesis(org)),
                        last_verified_checkpoint: None,
                    });
                };
                let from = first.unwrap_or(stored_from).max(1);
                let to = last.map_or(head.sequence, |l| l.min(head.sequence));
                let mut expectation: Option<ChainExpectation> = None;
                let mut total_checked = 0u64;
                let mut last_checkpoint: Option<Checkpoint> = None;
                let mut next = from;
                let mut report = verify_chain(&[], &[], verifier, ChainExpectation::genesis(org));
                while next <= to {
                    let batch_end = (next + BATCH - 1).min(to);
                    let entries = store::entries_between(tx, next, batch_end, BATCH).await?;
                    let checkpoints = store::checkpoints_between(tx, next - 1, batch_end).await?;
                    let mut expected = match (expectation.take(), entries.first()) {
                        (Some(expected), _) => expected,
                        (None, _) if next == 1 => ChainExpectation::genesis(org),
                        (None, Some(first)) => ChainExpectation::starting_at(first),
                        (None, None) => ChainExpectation::genesis(org),
                    };
                    // The chain must go on exactly where it was asked to,
                    // so a missing first entry is a gap, not a new start.
                    expected.organization_id = org;
                    expected.first_sequence = next;
                    if batch_end == head.sequence {
                        expected = expected.with_head(head);
                    }
                    report = verify_chain(&entries, &checkpoints, verifier, expected);
                    total_checked += report.entries_checked;
                    if let Some(sequence) = report.last_verified_checkpoint {
                        last_checkpoint =
                            checkpoints.iter().find(|c| c.sequence == sequence).cloned();
                    }
                    if !report.ok {
                        break;
                    }
                    let Some(tail) = entries.last() else { break };
                    expectation = Some(ChainExpectation {
                        organization_id: org,
                        first_sequence: tail.sequence + 1,
                        first_previous_hash: tail.hash,
                        head: None,
                    });
                    next = batch_end + 1;
                }
                report.entries_checked = total_checked;
                Ok(ChainVerification {
                    report,
                    last_verified_checkpoint: last_checkpoint,
                })
            })
            .await
    }

    async fn list_checkpoints(
        &self,
        ctx: &TenantContext,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<Checkpoint>, String), AuditError> {
        tenant(ctx)?;
        let limit = paging::page_size(page_size)?;
        let before = before_sequence(page_token)?.unwrap_or(i64::MAX);
        let mut checkpoints = self
            .pool
            .in_tenant(ctx, async |tx| {
                let mut all = store::checkpoints_between(tx, 0, before - 1).await?;
                all.reverse();
                all.truncate(limit as usize + 1);
                Ok::<_, AuditError>(all)
            })
            .await?;
        let next = paging::finish_page(&mut checkpoints, limit, |c| c.sequence.to_string());
        Ok((checkpoints, next))
    }

    fn verifier(&self) -> &CheckpointVerifier {
        &self.verifier
    }
}
