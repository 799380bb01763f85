//! What can go wrong with single sign-on, and the safe reason shown for a
//! refused ID token.

use cg_db::DbError;
use cg_status::FieldViolations;
use openidconnect::{ClaimsVerificationError, SignatureVerificationError};

use crate::secrets::SecretError;

/// A single sign-on failure. Texts are safe to show to the person signing
/// in; provider responses and token contents never appear in them.
#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    /// The organization has no SSO configuration.
    #[error("single sign-on is not configured for this organization")]
    NotConfigured,
    /// The `state` is unknown, expired, already used, or belongs to a
    /// configuration that changed since the sign-in started.
    #[error("the sign-in is unknown, expired or already completed; start again")]
    InvalidState,
    /// Discovery, the key set or the token endpoint could not be reached or
    /// answered nonsense. The text says which step failed.
    #[error("the identity provider is unavailable: {0}")]
    ProviderUnavailable(String),
    /// The provider refused the code, or its answer (the ID token above all)
    /// failed validation: "audience mismatch", "issuer mismatch", "bad
    /// signature", "nonce mismatch", "expired", "unsupported algorithm", "no
    /// key id with several keys", ...
    #[error("the identity provider's answer was rejected: {0}")]
    TokenRejected(String),
    /// The verified e-mail address is outside the organization's domains.
    #[error("the e-mail address is not in a domain allowed for this organization")]
    EmailDomainNotAllowed,
    /// The provider sent no e-mail address (neither in the ID token nor from
    /// its user-info endpoint).
    #[error("the identity provider sent no e-mail address")]
    EmailMissing,
    #[error("invalid request")]
    Invalid(FieldViolations),
    /// A sealed value (client secret, PKCE verifier) does not open: the
    /// secrets key changed. An internal error.
    #[error("a stored SSO secret cannot be opened")]
    Sealed,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<FieldViolations> for SsoError {
    fn from(violations: FieldViolations) -> Self {
        SsoError::Invalid(violations)
    }
}

impl From<sqlx::Error> for SsoError {
    fn from(error: sqlx::Error) -> Self {
        SsoError::Db(error.into())
    }
}

impl From<SecretError> for SsoError {
    fn from(_: SecretError) -> Self {
        SsoError::Sealed
    }
}

/// The reason shown for an ID token openidconnect refused.
pub(crate) fn rejection(error: &ClaimsVerificationError) -> &'static str {
    use ClaimsVerificationError as C;
    use SignatureVerificationError as S;
    match error {
        C::Expired(_) => "expired",
        C::InvalidAudience(_) => "audience mismatch",
        C::InvalidIssuer(_) => "issuer mismatch",
        C::InvalidNonce(_) => "nonce mismatch",
        C::InvalidSubject(_) => "subject mismatch",
        C::InvalidAuthContext(_) | C::InvalidAuthTime(_) => "authentication context refused",
        C::Unsupported(_) => "unsupported token format",
        C::SignatureVerification(signature) => match signature {
            S::CryptoError(_) => "bad signature",
            // `alg: none` is `NoSignature`; HS256 and anything not offered
            // by the provider's metadata are `DisallowedAlg`.
            S::NoSignature | S::DisallowedAlg(_) | S::UnsupportedAlg(_) => "unsupported algorithm",
            // Several keys of the right type and no `kid` to choose (or a key
            // set repeating one `kid`).
            S::AmbiguousKeyId(_) => "no key id with several keys",
            S::NoMatchingKey => "unknown signing key",
            S::InvalidKey(_) => "unusable signing key",
            _ => "signature not verified",
        },
        _ => "invalid token",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_a_short_reason() {
        let cases = [
            (ClaimsVerificationError::Expired("x".into()), "expired"),
            (
                ClaimsVerificationError::InvalidAudience("x".into()),
                "audience mismatch",
            ),
            (
                ClaimsVerificationError::InvalidIssuer("x".into()),
                "issuer mismatch",
            ),
            (
                ClaimsVerificationError::InvalidNonce("x".into()),
                "nonce mismatch",
            ),
            (
                ClaimsVerificationError::SignatureVerification(
                    SignatureVerificationError::NoSignature,
                ),
                "unsupported algorithm",
            ),
            (
                ClaimsVerificationError::SignatureVerification(
                    SignatureVerificationError::AmbiguousKeyId("x".into()),
                ),
                "no key id with several keys",
            ),
            (
                ClaimsVerificationError::SignatureVerification(
                    SignatureVerificationError::CryptoError("x".into()),
                ),
                "bad signature",
            ),
        ];
        for (error, reason) in cases {
            assert_eq!(rejection(&error), reason, "{error:?}");
        }
    }
}
