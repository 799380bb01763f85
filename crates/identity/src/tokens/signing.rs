//! The keys that sign access tokens: Ed25519, the private half sealed with
//! the secrets key, published (with retired keys still inside their tokens'
//! lifetime) as a JWKS for the gateway.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cg_db::{ControlPool, DbError};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use jsonwebtoken::{EncodingKey, Header};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use super::claims::{ACCESS_TOKEN_TYPE, AccessClaims};
use crate::secrets::SecretBox;

/// A public key as published in the JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicJwk {
    pub kid: String,
    /// Raw 32-byte Ed25519 public key.
    pub public_key: Vec<u8>,
}

impl PublicJwk {
    /// The `x` member of the OKP JWK (RFC 8037).
    pub fn x(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.public_key)
    }
}

/// The key that signs new tokens.
pub struct ActiveKey {
    pub kid: String,
    encoding: EncodingKey,
}

impl std::fmt::Debug for ActiveKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn kid_of(public_key: &[u8]) -> String {
    hex::encode(&Sha256::digest(public_key)[..8])
}

fn active_key(kid: String, seed: &[u8]) -> Result<ActiveKey, DbError> {
    let seed: [u8; 32] = seed
        .try_into()
        .map_err(|_| DbError::Other("a signing key seed is not 32 bytes".to_owned()))?;
    let der = SigningKey::from_bytes(&seed)
        .to_pkcs8_der()
        .map_err(|e| DbError::Other(format!("encode a signing key: {e}")))?;
    Ok(ActiveKey {
        kid,
        encoding: EncodingKey::from_ed_der(der.as_bytes()),
    })
}

/// Creates a signing key and makes it the active one; the previous key is
/// retired (it still verifies, signs nothing).
///
/// The new key is published at once but signs only once `publish_delay`
/// has passed (until then the previous key keeps signing), so every gateway
/// has fetched it before the first token signed with it arrives.
pub async fn rotate(
    conn: &mut PgConnection,
    secrets: &SecretBox,
    publish_delay: std::time::Duration,
) -> Result<PublicJwk, DbError> {
    let seed: [u8; 32] = rand::random();
    let public_key = SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes()
        .to_vec();
    let kid = kid_of(&public_key);
    sqlx::query(
        "UPDATE identity.signing_keys SET retired_at = now() + make_interval(secs => $1) WHERE retired_at IS NULL",
    )
    .bind(publish_delay.as_secs_f64())
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO identity.signing_keys (kid, private_key_enc, public_key) VALUES ($1, $2, $3)",
    )
    .bind(&kid)
    .bind(secrets.seal(&seed))
    .bind(&public_key)
    .execute(&mut *conn)
    .await?;
    Ok(PublicJwk { kid, public_key })
}

/// The active signing key, created on first use.
///
/// Among the keys still signing (not retired, or retired in the future),
/// the newest one published for at least `publish_delay`; when none is that
/// old, the oldest (a fresh deployment's first key).
pub async fn load_active(
    pool: &ControlPool,
    secrets: &SecretBox,
    publish_delay: std::time::Duration,
) -> Result<ActiveKey, DbError> {
    loop {
        let row: Option<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT kid, private_key_enc FROM identity.signing_keys \
             WHERE retired_at IS NULL OR retired_at > now() \
             ORDER BY (created_at <= now() - make_interval(secs => $1)) DESC, \
                      CASE WHEN created_at <= now() - make_interval(secs => $1) THEN created_at END DESC NULLS LAST, \
                      created_at ASC \
             LIMIT 1",
        )
        .bind(publish_delay.as_secs_f64())
        .fetch_optional(pool)
        .await?;
        match row {
            Some((kid, sealed)) => {
                let seed = secrets.open(&sealed).map_err(|_| {
                    DbError::Other(
                        "the signing key cannot be opened with this secrets key".to_owned(),
                    )
                })?;
                return active_key(kid, &seed);
            }
            None => {
                let mut tx = pool.begin().await?;
                // Concurrent first uses create one key, not several.
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext('cg.signing_keys'))")
                    .execute(&mut *tx)
                    .await?;
                let exists: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM identity.signing_keys WHERE retired_at IS NULL OR retired_at > now())",
                )
                .fetch_one(&mut *tx)
                .await?;
                if !exists {
                    rotate(&mut tx, secrets, publish_delay).await?;
                }
                tx.commit().await?;
            }
        }
    }
}

/// Keys to publish: the active one and those retired within `overlap` (the
/// lifetime of the tokens they signed), newest first.
pub async fn published(
    pool: &ControlPool,
    overlap: std::time::Duration,
) -> Result<Vec<PublicJwk>, DbError> {
    let overlap_seconds = i64::try_from(overlap.as_secs()).unwrap_or(i64::MAX);
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT kid, public_key FROM identity.signing_keys \
         WHERE retired_at IS NULL OR retired_at > now() - make_interval(secs => $1) \
         ORDER BY created_at DESC",
    )
    .bind(overlap_seconds as f64)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(kid, public_key)| PublicJwk { kid, public_key })
        .collect())
}

/// Signs `claims` as an access token (`typ: at+jwt`, EdDSA, the key's `kid`).
pub fn sign(key: &ActiveKey, claims: &AccessClaims) -> Result<String, DbError> {
    let mut header = Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding)
        .map_err(|e| DbError::Other(format!("sign a token: {e}")))
}
