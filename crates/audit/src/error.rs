//! Audit errors and their one mapping to gRPC status.

use cg_db::DbError;
use cg_status::FieldViolations;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("invalid request")]
    Invalid(FieldViolations),
    #[error("{0}")]
    PermissionDenied(&'static str),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<FieldViolations> for AuditError {
    fn from(violations: FieldViolations) -> Self {
        AuditError::Invalid(violations)
    }
}

impl From<AuditError> for Status {
    fn from(error: AuditError) -> Status {
        match error {
            AuditError::Invalid(violations) => violations.into(),
            AuditError::PermissionDenied(why) => Status::permission_denied(why),
            AuditError::Db(DbError::Unavailable(cause)) => cg_status::unavailable(cause),
            AuditError::Db(other) => cg_status::internal(other),
        }
    }
}
