//! Per-organization hash-chained, tamper-evident audit log.
#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod encoding;
pub mod entry;
mod error;
pub mod export;
mod grpc;
pub mod record;
mod service;
pub mod store;
pub mod verify;

pub use error::AuditError;
pub use grpc::AuditGrpc;
pub use service::{AuditApi, ChainVerification, ExportChunk, PgAudit};
