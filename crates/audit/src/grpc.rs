//! The tonic adapter: wire ↔ domain conversions around [`AuditApi`].

use std::sync::Arc;
use std::time::SystemTime;

use cg_context::context_of;
use cg_proto::audit::v1 as pb;
use cg_proto::audit::v1::audit_service_server::AuditService;

/// The response stream of ExportAuditLog, as the generated trait names it.
type ExportStream = std::pin::Pin<
    Box<dyn futures::Stream<Item = Result<pb::ExportAuditLogResponse, Status>> + Send + 'static>,
>;
use cg_status::FieldViolations;
use chrono::{DateTime, Utc};
use prost_types::Timestamp;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::checkpoint::Checkpoint;
use crate::entry::{ActorKind, AuditEntry, Outcome};
use crate::service::AuditApi;
use crate::store::AuditFilter;

/// Serves [`AuditService`] over any [`AuditApi`].
#[derive(Debug)]
pub struct AuditGrpc<T> {
    api: Arc<T>,
}

impl<T> AuditGrpc<T> {
    pub fn new(api: Arc<T>) -> Self {
        AuditGrpc { api }
    }
}

fn timestamp(time: DateTime<Utc>) -> Option<Timestamp> {
    Some(Timestamp::from(SystemTime::from(time)))
}

fn time_from(
    field: &str,
    value: Option<Timestamp>,
) -> Result<Option<DateTime<Utc>>, FieldViolations> {
    value
        .map(|t| {
            DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(u32::MAX))
                .ok_or_else(|| FieldViolations::single(field, "is not a valid time"))
        })
        .transpose()
}

/// A JSON value as a protobuf `Value`.
fn json_to_value(value: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.into_iter().map(json_to_value).collect(),
        }),
        serde_json::Value::Object(map) => Kind::StructValue(json_to_struct(map)),
    };
    prost_types::Value { kind: Some(kind) }
}

fn json_to_struct(map: serde_json::Map<String, serde_json::Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: map
            .into_iter()
            .map(|(k, v)| (k, json_to_value(v)))
            .collect(),
    }
}

fn actor_kind(kind: ActorKind) -> pb::ActorKind {
    match kind {
        ActorKind::Anonymous => pb::ActorKind::Anonymous,
        ActorKind::User => pb::ActorKind::User,
        ActorKind::ApiKey => pb::ActorKind::ApiKey,
        ActorKind::Operator => pb::ActorKind::Operator,
        ActorKind::Service => pb::ActorKind::Service,
    }
}

fn outcome(outcome: Outcome) -> pb::Outcome {
    match outcome {
        Outcome::Success => pb::Outcome::Success,
        Outcome::Denied => pb::Outcome::Denied,
        Outcome::Failed => pb::Outcome::Failed,
    }
}

impl From<AuditEntry> for pb::AuditEntry {
    fn from(entry: AuditEntry) -> Self {
        let summary = match entry.summary {
            serde_json::Value::Object(map) => Some(json_to_struct(map)),
            _ => None,
        };
        pb::AuditEntry {
            organization_id: entry
                .organization_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            sequence: entry.sequence,
            time: timestamp(entry.time),
            actor: Some(pb::Actor {
                kind: actor_kind(entry.actor.kind).into(),
                id: entry.actor.id,
            }),
            action: entry.action,
            resource_type: entry.resource_type,
            resource_id: entry.resource_id,
            outcome: outcome(entry.outcome).into(),
            request_id: entry.request_id,
            trace_id: entry.trace_id,
            source_ip: entry.source_ip,
            user_agent: entry.user_agent,
            summary,
            previous_hash: entry.previous_hash.to_vec(),
            hash: entry.hash.to_vec(),
        }
    }
}

impl From<Checkpoint> for pb::AuditCheckpoint {
    fn from(checkpoint: Checkpoint) -> Self {
        pb::AuditCheckpoint {
            organization_id: checkpoint
                .organization_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            sequence: checkpoint.sequence,
            hash: checkpoint.head_hash.to_vec(),
            create_time: timestamp(checkpoint.time),
            key_id: checkpoint.key_id,
            signature: checkpoint.signature.to_vec(),
        }
    }
}

impl TryFrom<&pb::ListAuditEntriesRequest> for AuditFilter {
    type Error = FieldViolations;
    fn try_from(req: &pb::ListAuditEntriesRequest) -> Result<Self, FieldViolations> {
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let outcome = match pb::Outcome::try_from(req.outcome) {
            Ok(pb::Outcome::Unspecified) => None,
            Ok(pb::Outcome::Success) => Some(Outcome::Success),
            Ok(pb::Outcome::Denied) => Some(Outcome::Denied),
            Ok(pb::Outcome::Failed) => Some(Outcome::Failed),
            Err(_) => return Err(FieldViolations::single("outcome", "unknown outcome")),
        };
        Ok(AuditFilter {
            start_time: time_from("start_time", req.start_time)?,
            end_time: time_from("end_time", req.end_time)?,
            actor_id: non_empty(&req.actor_id),
            action_prefix: non_empty(&req.action_prefix),
            resource_type: non_empty(&req.resource_type),
            resource_id: non_empty(&req.resource_id),
            outcome,
        })
    }
}

#[tonic::async_trait]
impl<T: AuditApi> AuditService for AuditGrpc<T> {
    async fn list_audit_entries(
        &self,
        request: Request<pb::ListAuditEntriesRequest>,
    ) -> Result<Response<pb::ListAuditEntriesResponse>, Status> {
        let ctx = context_of(&request)?;
        let req = request.get_ref();
        let filter = AuditFilter::try_from(req)?;
        let (entries, next_page_token) = self
            .api
            .list_entries(ctx, filter, req.page_size, &req.page_token)
            .await?;
        Ok(Response::new(pb::ListAuditEntriesResponse {
            audit_entries: entries.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    async fn export_audit_log(
        &self,
        request: Request<pb::ExportAuditLogRequest>,
    ) -> Result<Response<ExportStream>, Status> {
        let ctx = context_of(&request)?;
        let req = request.get_ref();
        let start = time_from("start_time", req.start_time)?;
        let end = time_from("end_time", req.end_time)?;
        if req.after_sequence < 0 {
            return Err(FieldViolations::single("after_sequence", "must not be negative").into());
        }
        let chunks = self.api.export(ctx, start, end, req.after_sequence).await?;
        let stream = ReceiverStream::new(chunks).map(|chunk| {
            chunk
                .map(|c| pb::ExportAuditLogResponse {
                    jsonl: c.jsonl,
                    first_sequence: c.first_sequence,
                    last_sequence: c.last_sequence,
                    entry_count: c.entry_count,
                })
                .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn verify_audit_chain(
        &self,
        request: Request<pb::VerifyAuditChainRequest>,
    ) -> Result<Response<pb::VerifyAuditChainResponse>, Status> {
        let ctx = context_of(&request)?;
        let req = request.get_ref();
        if let (Some(first), Some(last)) = (req.first_sequence, req.last_sequence)
            && first > last
        {
            return Err(FieldViolations::single(
                "last_sequence",
                "must not be below first_sequence",
            )
            .into());
        }
        let verification = self
            .api
            .verify(ctx, req.first_sequence, req.last_sequence)
            .await?;
        let report = verification.report;
        Ok(Response::new(pb::VerifyAuditChainResponse {
            ok: report.ok,
            entries_checked: i64::try_from(report.entries_checked).unwrap_or(i64::MAX),
            first_bad_sequence: report.first_bad_sequence.unwrap_or(0),
            problem: report.problem.map(|p| p.to_string()).unwrap_or_default(),
            last_verified_checkpoint: verification.last_verified_checkpoint.map(Into::into),
        }))
    }

    async fn get_audit_public_key(
        &self,
        request: Request<pb::GetAuditPublicKeyRequest>,
    ) -> Result<Response<pb::GetAuditPublicKeyResponse>, Status> {
        let verifier = self.api.verifier();
        let asked = &request.get_ref().key_id;
        if !asked.is_empty() && asked != verifier.key_id() {
            return Err(cg_status::not_found("audit key", asked));
        }
        Ok(Response::new(pb::GetAuditPublicKeyResponse {
            key_id: verifier.key_id().to_owned(),
            algorithm: "Ed25519".to_owned(),
            public_key: verifier.public_key().to_bytes().to_vec(),
            create_time: None,
            retire_time: None,
        }))
    }

    async fn list_audit_checkpoints(
        &self,
        request: Request<pb::ListAuditCheckpointsRequest>,
    ) -> Result<Response<pb::ListAuditCheckpointsResponse>, Status> {
        let ctx = context_of(&request)?;
        let req = request.get_ref();
        let (checkpoints, next_page_token) = self
            .api
            .list_checkpoints(ctx, req.page_size, &req.page_token)
            .await?;
        Ok(Response::new(pb::ListAuditCheckpointsResponse {
            audit_checkpoints: checkpoints.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }
}
