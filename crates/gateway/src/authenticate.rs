//! Who is calling: the bearer credential of the request, verified —
//! an operator API key, or an access token issued by identity.

use std::sync::Arc;

use cg_context::Principal;
use cg_db::ControlPool;
use cg_identity::api_keys::{self, ApiKey};
use cg_identity::operator_keys;
use cg_identity::tokens::claims::AccessClaims;
use http::HeaderMap;
use tonic::Status;

use crate::access_cache::AccessCache;
use crate::access_token::AccessTokenVerifier;
use crate::metadata::AUTHORIZATION;

/// Why a credential was refused.
#[derive(Debug)]
pub enum AuthError {
    /// Present but not valid.
    Invalid,
    /// An access token refused, with the status that says why.
    Token(Status),
    /// The credential store could not be reached.
    Unavailable(String),
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    /// The claims of the caller's access token, when it used one.
    pub token: Option<AccessClaims>,
    /// The service-account key the caller used, when it used one.
    pub api_key: Option<Arc<ApiKey>>,
}

/// Credentials longer than this are refused unread.
const MAX_CREDENTIAL_LEN: usize = 8 * 1024;

/// The caller of a request: anonymous without credentials; an error for
/// credentials that do not verify.
pub async fn authenticate(
    headers: &HeaderMap,
    pool: &ControlPool,
    cache: &AccessCache,
    tokens: &AccessTokenVerifier,
) -> Result<Caller, AuthError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(Caller {
            api_key: None,
            principal: Principal::Anonymous,
            token: None,
        });
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
        return match cache.operator_key(pool, credential).await {
            Ok(Some(key_id)) => Ok(Caller {
                principal: Principal::Operator { key_id },
                token: None,
                api_key: None,
            }),
            Ok(None) => Err(AuthError::Invalid),
            Err(error) => Err(AuthError::Unavailable(error.to_string())),
        };
    }
    if api_keys::looks_like_api_key(credential) {
        return match cache.api_key(pool, credential).await {
            Ok(Some(key)) => Ok(Caller {
                principal: Principal::ApiKey { key_id: key.id },
                token: None,
                api_key: Some(key),
            }),
            Ok(None) => Err(AuthError::Invalid),
            Err(error) => Err(AuthError::Unavailable(error.to_string())),
        };
    }
    let claims = tokens
        .verify(credential)
        .await
        .map_err(|error| AuthError::Token(error.to_status()))?;
    let user_id = claims.sub.parse().map_err(|_| AuthError::Invalid)?;
    Ok(Caller {
        principal: Principal::User { user_id },
        token: Some(claims),
        api_key: None,
    })
}
