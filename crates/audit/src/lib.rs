//! Per-organization hash-chained, tamper-evident audit log.
#![forbid(unsafe_code)]

use cg_proto::audit::v1::audit_service_server::AuditService;

/// The audit gRPC service. Every method answers `UNIMPLEMENTED` until the
/// audit issue builds it.
#[derive(Debug, Default)]
pub struct AuditGrpc;

impl AuditService for AuditGrpc {}
