//! Who is calling: the bearer credential of the request, verified.

use cg_context::Principal;
use cg_db::ControlPool;
use cg_identity::operator_keys;
use http::HeaderMap;

use crate::metadata::AUTHORIZATION;

/// Why a credential was refused.
#[derive(Debug)]
pub enum AuthError {
    /// Present but not valid.
    Invalid,
    /// The credential store could not be reached.
    Unavailable(String),
}

/// Credentials longer than this are refused unread.
const MAX_CREDENTIAL_LEN: usize = 8 * 1024;

/// The principal of a request: anonymous without credentials; an error
/// for credentials that do not verify.
pub async fn authenticate(headers: &HeaderMap, pool: &ControlPool) -> Result<Principal, AuthError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(Principal::Anonymous);
    };
    if value.len() > MAX_CREDENTIAL_LEN {
        return Err(AuthError::Invalid);
    }
    let value = value.to_str().map_err(|_| AuthError::Invalid)?;
    let credential = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or(AuthError::Invalid)?
        .trim();
    if operator_keys::looks_like_operator_key(credential) {
        return match operator_keys::verify(pool, credential).await {
            Ok(Some(key_id)) => Ok(Principal::Operator { key_id }),
            Ok(None) => Err(AuthError::Invalid),
            Err(error) => Err(AuthError::Unavailable(error.to_string())),
        };
    }
    // Access tokens of users and API keys of service accounts arrive with
    // the identity service; until then no other credential is valid.
    Err(AuthError::Invalid)
}
