//! Tenancy errors and their one mapping to gRPC status.

use cg_db::DbError;
use cg_status::{FieldViolations, reason, with_reason};
use tonic::{Code, Status};

use crate::model::OrganizationCode;

#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    #[error("invalid request")]
    Invalid(FieldViolations),
    #[error("organization `{0}` already exists")]
    AlreadyExists(String),
    #[error("organization not found")]
    NotFound,
    /// An operator named a well-formed organization code nobody has.
    #[error("organization `{}` not found", .0.as_str())]
    UnknownOrganization(OrganizationCode),
    #[error("{0}")]
    PermissionDenied(&'static str),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<FieldViolations> for TenancyError {
    fn from(violations: FieldViolations) -> Self {
        TenancyError::Invalid(violations)
    }
}

impl From<TenancyError> for Status {
    fn from(error: TenancyError) -> Status {
        match error {
            TenancyError::Invalid(violations) => violations.into(),
            TenancyError::AlreadyExists(code) => with_reason(
                Code::AlreadyExists,
                format!("organization `{code}` already exists"),
                reason::ALREADY_EXISTS,
                &[("code", code.as_str())],
            ),
            TenancyError::NotFound => Status::not_found("organization not found"),
            // The gateway's answer for an unknown `x-tenant`, so a client
            // handles both alike.
            TenancyError::UnknownOrganization(code) => with_reason(
                Code::NotFound,
                format!("organization `{}` not found", code.as_str()),
                reason::TENANT_NOT_FOUND,
                &[("organization", code.as_str())],
            ),
            TenancyError::PermissionDenied(why) => Status::permission_denied(why),
            TenancyError::Db(DbError::Unavailable(cause)) => cg_status::unavailable(cause),
            TenancyError::Db(other) => cg_status::internal(other),
        }
    }
}
