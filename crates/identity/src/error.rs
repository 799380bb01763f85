//! Identity errors and their one mapping to gRPC status.

use std::time::Duration;

use cg_db::DbError;

use crate::sso::SsoError;
use cg_status::{FieldViolations, with_reason};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Stable `ErrorInfo` reasons of identity.
pub mod reason {
    pub const INVALID_CREDENTIALS: &str = "INVALID_CREDENTIALS";
    pub const LOGIN_THROTTLED: &str = "LOGIN_THROTTLED";
    pub const LAST_OWNER: &str = "LAST_OWNER";
    pub const ROLE_ABOVE_OWN: &str = "ROLE_ABOVE_OWN";
    pub const INVITATION_INVALID: &str = "INVITATION_INVALID";
    pub const USER_LIMIT_REACHED: &str = "USER_LIMIT_REACHED";
    pub const MFA_NOT_ENROLLED: &str = "MFA_NOT_ENROLLED";
    pub const MFA_CODE_INVALID: &str = "MFA_CODE_INVALID";
    pub const MFA_ENROLLMENT_REQUIRED: &str = "MFA_ENROLLMENT_REQUIRED";
    pub const MFA_CHALLENGE_INVALID: &str = "MFA_CHALLENGE_INVALID";
    pub const SSO_REQUIRED: &str = "SSO_REQUIRED";
    pub const REFRESH_TOKEN_INVALID: &str = "REFRESH_TOKEN_INVALID";
    pub const SSO_NOT_CONFIGURED: &str = "SSO_NOT_CONFIGURED";
    pub const SSO_STATE_INVALID: &str = "SSO_STATE_INVALID";
    pub const SSO_PROVIDER_UNAVAILABLE: &str = "SSO_PROVIDER_UNAVAILABLE";
    pub const SSO_TOKEN_REJECTED: &str = "SSO_TOKEN_REJECTED";
    pub const SSO_EMAIL_DOMAIN: &str = "SSO_EMAIL_DOMAIN";
    pub const SSO_EMAIL_MISSING: &str = "SSO_EMAIL_MISSING";
    pub const MEMBERSHIP_INACTIVE: &str = "MEMBERSHIP_INACTIVE";
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("invalid request")]
    Invalid(FieldViolations),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    PermissionDenied(&'static str),
    /// Wrong e-mail, password, organization or membership: one answer for all.
    #[error("invalid e-mail or password")]
    InvalidCredentials,
    #[error("too many failed sign-ins")]
    Throttled(Duration),
    #[error("invitation not found, used or expired")]
    InvitationInvalid,
    #[error("an organization keeps at least one active owner")]
    LastOwner,
    #[error("nobody grants or changes a role above their own")]
    RoleAboveOwn,
    #[error("the tier's user limit is reached")]
    UserLimit { limit: i64 },
    #[error("{0}")]
    AlreadyExists(&'static str),
    #[error("two-factor authentication is not set up")]
    MfaNotEnrolled,
    #[error("the code is not valid")]
    MfaCodeInvalid,
    /// A valid code used a second time; answered like an invalid one.
    #[error("the code was already used")]
    MfaCodeReplayed,
    #[error("the organization requires two-factor authentication")]
    MfaEnrollmentRequired,
    #[error("the sign-in challenge is unknown, used or expired")]
    MfaChallengeInvalid,
    #[error("the organization requires single sign-on")]
    SsoRequired,
    #[error("the refresh token is not valid")]
    RefreshInvalid,
    #[error(transparent)]
    Sso(#[from] SsoError),
    /// Known to the identity provider, but not an active member here.
    #[error("the membership is suspended or removed")]
    MembershipInactive,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<FieldViolations> for IdentityError {
    fn from(violations: FieldViolations) -> Self {
        IdentityError::Invalid(violations)
    }
}

impl From<IdentityError> for Status {
    fn from(error: IdentityError) -> Status {
        match error {
            IdentityError::Invalid(violations) => violations.into(),
            IdentityError::NotFound(what) => Status::not_found(format!("{what} not found")),
            IdentityError::PermissionDenied(why) => Status::permission_denied(why),
            IdentityError::InvalidCredentials => with_reason(
                Code::Unauthenticated,
                "invalid e-mail or password",
                reason::INVALID_CREDENTIALS,
                &[],
            ),
            IdentityError::Throttled(retry_after) => {
                let mut details = ErrorDetails::with_retry_info(Some(retry_after));
                details.set_error_info(
                    reason::LOGIN_THROTTLED,
                    cg_status::ERROR_DOMAIN,
                    std::collections::HashMap::<String, String>::new(),
                );
                Status::with_error_details(
                    Code::ResourceExhausted,
                    format!(
                        "too many failed sign-ins; retry in {} s",
                        retry_after.as_secs().max(1)
                    ),
                    details,
                )
            }
            IdentityError::InvitationInvalid => with_reason(
                Code::NotFound,
                "invitation not found, already used, revoked or expired",
                reason::INVITATION_INVALID,
                &[],
            ),
            IdentityError::LastOwner => with_reason(
                Code::FailedPrecondition,
                "an organization keeps at least one active owner: make someone else owner first",
                reason::LAST_OWNER,
                &[],
            ),
            IdentityError::RoleAboveOwn => with_reason(
                Code::PermissionDenied,
                "nobody grants or changes a role above their own",
                reason::ROLE_ABOVE_OWN,
                &[],
            ),
            IdentityError::UserLimit { limit } => {
                let mut details = ErrorDetails::with_quota_failure_violation(
                    "users",
                    format!("the tier allows {limit} users, invitations included"),
                );
                details.set_error_info(
                    reason::USER_LIMIT_REACHED,
                    cg_status::ERROR_DOMAIN,
                    std::collections::HashMap::<String, String>::new(),
                );
                Status::with_error_details(
                    Code::ResourceExhausted,
                    "the tier's user limit is reached",
                    details,
                )
            }
            IdentityError::AlreadyExists(what) => Status::already_exists(what),
            IdentityError::MfaNotEnrolled => with_reason(
                Code::FailedPrecondition,
                "two-factor authentication is not set up: call EnrollTotp first",
                reason::MFA_NOT_ENROLLED,
                &[],
            ),
            IdentityError::MfaCodeInvalid | IdentityError::MfaCodeReplayed => with_reason(
                Code::Unauthenticated,
                "the code is not valid",
                reason::MFA_CODE_INVALID,
                &[],
            ),
            IdentityError::MfaEnrollmentRequired => with_reason(
                Code::FailedPrecondition,
                "the organization requires two-factor authentication and this account has none: ask an administrator",
                reason::MFA_ENROLLMENT_REQUIRED,
                &[],
            ),
            IdentityError::MfaChallengeInvalid => with_reason(
                Code::Unauthenticated,
                "the sign-in challenge is unknown, used or expired: sign in again",
                reason::MFA_CHALLENGE_INVALID,
                &[],
            ),
            IdentityError::SsoRequired => with_reason(
                Code::FailedPrecondition,
                "the organization requires single sign-on: call StartSso",
                reason::SSO_REQUIRED,
                &[],
            ),
            IdentityError::RefreshInvalid => with_reason(
                Code::Unauthenticated,
                "the refresh token is not valid: sign in again",
                reason::REFRESH_TOKEN_INVALID,
                &[],
            ),
            IdentityError::Sso(error) => sso_status(error),
            IdentityError::MembershipInactive => with_reason(
                Code::PermissionDenied,
                "this account's membership of the organization is suspended or removed",
                reason::MEMBERSHIP_INACTIVE,
                &[],
            ),
            IdentityError::Db(DbError::Unavailable(cause)) => cg_status::unavailable(cause),
            IdentityError::Db(other) => cg_status::internal(other),
        }
    }
}

fn sso_status(error: SsoError) -> Status {
    let message = error.to_string();
    match error {
        SsoError::NotConfigured => with_reason(
            Code::FailedPrecondition,
            message,
            reason::SSO_NOT_CONFIGURED,
            &[],
        ),
        SsoError::InvalidState => with_reason(
            Code::Unauthenticated,
            message,
            reason::SSO_STATE_INVALID,
            &[],
        ),
        SsoError::ProviderUnavailable(_) => with_reason(
            Code::Unavailable,
            message,
            reason::SSO_PROVIDER_UNAVAILABLE,
            &[],
        ),
        SsoError::TokenRejected(_) => with_reason(
            Code::Unauthenticated,
            message,
            reason::SSO_TOKEN_REJECTED,
            &[],
        ),
        SsoError::EmailDomainNotAllowed => with_reason(
            Code::PermissionDenied,
            message,
            reason::SSO_EMAIL_DOMAIN,
            &[],
        ),
        SsoError::EmailMissing => with_reason(
            Code::Unauthenticated,
            message,
            reason::SSO_EMAIL_MISSING,
            &[],
        ),
        SsoError::Invalid(violations) => violations.into(),
        SsoError::Db(DbError::Unavailable(cause)) => cg_status::unavailable(cause),
        other => cg_status::internal(other),
    }
}
