//! Rich gRPC errors: field violations, stable reasons, and internal errors that never leak their cause.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fmt::Display;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every error the platform raises.
pub const ERROR_DOMAIN: &str = "claimguardian.ai";

/// Stable `ErrorInfo.reason` values clients may branch on.
pub mod reason {
    pub const TENANT_NOT_FOUND: &str = "TENANT_NOT_FOUND";
    pub const TENANT_REQUIRED: &str = "TENANT_REQUIRED";
    pub const ORGANIZATION_SUSPENDED: &str = "ORGANIZATION_SUSPENDED";
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const PERMISSION_DENIED: &str = "PERMISSION_DENIED";
    pub const OPERATOR_REQUIRED: &str = "OPERATOR_REQUIRED";
    pub const FEATURE_NOT_IN_TIER: &str = "FEATURE_NOT_IN_TIER";
    pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
    pub const UPSTREAM_UNAVAILABLE: &str = "UPSTREAM_UNAVAILABLE";
    pub const ALREADY_EXISTS: &str = "ALREADY_EXISTS";
    pub const TENANT_MISMATCH: &str = "TENANT_MISMATCH";
    pub const IP_NOT_ALLOWED: &str = "IP_NOT_ALLOWED";
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    pub const REQUEST_TOO_LARGE: &str = "REQUEST_TOO_LARGE";
}

/// Field violations collected while validating one request.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldViolations {
    violations: Vec<(String, String)>,
}

impl FieldViolations {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `field` (a path such as `property.address.state`) is invalid.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.violations.push((field.into(), description.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.violations.is_empty()
    }

    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.violations.iter().map(|(field, _)| field.as_str())
    }

    /// `Ok(())` when nothing was recorded.
    pub fn check(self) -> Result<(), FieldViolations> {
        if self.violations.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }

    /// One violation, as an error.
    pub fn single(field: impl Into<String>, description: impl Into<String>) -> FieldViolations {
        let mut violations = FieldViolations::new();
        violations.add(field, description);
        violations
    }
}

impl From<FieldViolations> for Status {
    fn from(violations: FieldViolations) -> Status {
        let message = violations
            .violations
            .iter()
            .map(|(field, description)| format!("{field}: {description}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut details = ErrorDetails::new();
        for (field, description) in &violations.violations {
            details.add_bad_request_violation(field.clone(), description.clone());
        }
        Status::with_error_details(Code::InvalidArgument, message, details)
    }
}

/// A status with an `ErrorInfo` carrying a stable reason and metadata.
pub fn with_reason(
    code: Code,
    message: impl Into<String>,
    reason: &str,
    metadata: &[(&str, &str)],
) -> Status {
    let metadata: HashMap<String, String> = metadata
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
}

/// `NOT_FOUND` for a resource the caller cannot see (absent or another tenant's).
pub fn not_found(resource: &str, id: impl Display) -> Status {
    Status::not_found(format!("{resource} {id} not found"))
}

/// An unexpected failure: logged here with its cause, reported to the caller
/// without it.
pub fn internal(error: impl Display) -> Status {
    tracing::error!(%error, "internal error");
    Status::internal("internal error")
}

/// The database or a peer is unreachable: the caller may retry.
pub fn unavailable(error: impl Display) -> Status {
    tracing::warn!(%error, "dependency unavailable");
    Status::unavailable("service temporarily unavailable, retry shortly")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_violations_become_bad_request_details() {
        let mut violations = FieldViolations::new();
        violations.add("code", "must be lowercase");
        violations.add("tier", "unknown tier `gold`");
        let status = Status::from(violations);
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let bad_request = details.bad_request().expect("bad request details");
        let fields: Vec<&str> = bad_request
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["code", "tier"]);
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let status = internal("relation \"secret_table\" does not exist");
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
    }

    #[test]
    fn reasons_travel_in_error_info() {
        let status = with_reason(
            Code::FailedPrecondition,
            "suspended",
            reason::ORGANIZATION_SUSPENDED,
            &[("organization", "acme")],
        );
        let info = status
            .get_error_details()
            .error_info()
            .cloned()
            .expect("error info");
        assert_eq!(info.reason, reason::ORGANIZATION_SUSPENDED);
        assert_eq!(
            info.metadata.get("organization").map(String::as_str),
            Some("acme")
        );
    }
}
