//! Platform operator API keys: `cgo_<prefix>_<secret>`.
//!
//! The prefix (public, 12 characters) finds the row; the secret (256 random
//! bits) is stored only as its SHA-256 and compared in constant time. A slow
//! password hash would add nothing against guessing a 256-bit secret and
//! would cost every request.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cg_context::ApiKeyId;
use cg_db::{ControlPool, DbError};
use rand::Rng as _;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const KEY_PREFIX: &str = "cgo_";
const PREFIX_LEN: usize = 12;

/// A newly created key. `secret_key` is shown once and never stored.
#[derive(Debug)]
pub struct IssuedOperatorKey {
    pub id: ApiKeyId,
    pub secret_key: String,
}

/// Whether a bearer credential is shaped like an operator key.
pub fn looks_like_operator_key(credential: &str) -> bool {
    credential.starts_with(KEY_PREFIX)
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

fn split(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (prefix, secret) = rest.split_once('_')?;
    (prefix.len() == PREFIX_LEN && secret.len() == 43).then_some((prefix, secret))
}

/// Creates an operator key with a label (who or what it is for).
pub async fn create(pool: &ControlPool, label: &str) -> Result<IssuedOperatorKey, DbError> {
    let prefix: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(PREFIX_LEN)
        .map(char::from)
        .collect();
    let secret_bytes: [u8; 32] = rand::random();
    let secret = URL_SAFE_NO_PAD.encode(secret_bytes);
    let id = ApiKeyId::new();
    sqlx::query(
        "INSERT INTO identity.operator_api_keys (id, key_prefix, secret_hash, label) VALUES ($1, $2, $3, $4)",
    )
    .bind(id.0)
    .bind(&prefix)
    .bind(hash(&secret))
    .bind(label)
    .execute(pool)
    .await?;
    Ok(IssuedOperatorKey {
        id,
        secret_key: format!("{KEY_PREFIX}{prefix}_{secret}"),
    })
}

/// The id of the live operator key `presented`, or `None`.
pub async fn verify(pool: &ControlPool, presented: &str) -> Result<Option<ApiKeyId>, DbError> {
    let Some((prefix, secret)) = split(presented) else {
        return Ok(None);
    };
    let row: Option<(uuid::Uuid, Vec<u8>)> = sqlx::query_as(
        "SELECT id, secret_hash FROM identity.operator_api_keys WHERE key_prefix = $1 AND revoked_at IS NULL",
    )
    .bind(prefix)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(id, stored)| {
        bool::from(stored.as_slice().ct_eq(&hash(secret))).then_some(ApiKeyId(id))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_shape_is_checked_before_any_lookup() {
        let good = format!("cgo_{}_{}", "a".repeat(12), "b".repeat(43));
        assert!(split(&good).is_some());
        assert!(split("cgo_short_x").is_none());
        assert!(split(&format!("cgx_{}_{}", "a".repeat(12), "b".repeat(43))).is_none());
        assert!(looks_like_operator_key(&good));
    }
}
