//! Claims errors and their one mapping to gRPC status.

use cg_db::DbError;
use cg_status::FieldViolations;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum ClaimsError {
    #[error("invalid request")]
    Invalid(FieldViolations),
    /// Absent, or another organization's: the caller cannot tell which.
    #[error("{0} {1} not found")]
    NotFound(&'static str, String),
    #[error("{0}")]
    PermissionDenied(&'static str),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<FieldViolations> for ClaimsError {
    fn from(violations: FieldViolations) -> Self {
        ClaimsError::Invalid(violations)
    }
}

impl From<ClaimsError> for Status {
    fn from(error: ClaimsError) -> Status {
        match error {
            ClaimsError::Invalid(violations) => violations.into(),
            ClaimsError::NotFound(kind, id) => cg_status::not_found(kind, id),
            ClaimsError::PermissionDenied(why) => Status::permission_denied(why),
            ClaimsError::Db(DbError::Unavailable(cause)) => cg_status::unavailable(cause),
            ClaimsError::Db(other) => cg_status::internal(other),
        }
    }
}
