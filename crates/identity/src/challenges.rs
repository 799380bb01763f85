//! Sign-in challenges: a password was right and a second factor is due.
//! The challenge token is single use, short-lived, stored hashed, and
//! allows a few attempts only.

use cg_context::{OrganizationId, UserId};
use cg_db::{ControlPool, DbError};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::IdentityError;

/// How long a challenge may be answered.
const LIFETIME_SECONDS: i64 = 300;
/// Wrong codes a challenge takes before it is dead.
const MAX_ATTEMPTS: i32 = 5;

/// A challenge as handed to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

pub async fn create(
    conn: &mut PgConnection,
    user: UserId,
    organization: OrganizationId,
) -> Result<Challenge, IdentityError> {
    use base64::Engine as _;
    let token = format!(
        "cgm_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
    );
    let expires_at = Utc::now() + chrono::Duration::seconds(LIFETIME_SECONDS);
    sqlx::query("INSERT INTO identity.mfa_challenges (token_hash, user_id, organization_id, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(hash(&token))
        .bind(user.0)
        .bind(organization.0)
        .bind(expires_at)
        .execute(&mut *conn)
        .await
        .map_err(DbError::from)?;
    Ok(Challenge { token, expires_at })
}

/// The user and organization of a live challenge (locked for this transaction).
pub async fn open(
    conn: &mut PgConnection,
    token: &str,
) -> Result<(UserId, OrganizationId), IdentityError> {
    if token.len() > 128 {
        return Err(IdentityError::MfaChallengeInvalid);
    }
    let row: Option<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT user_id, organization_id FROM identity.mfa_challenges WHERE token_hash = $1 \
         AND consumed_at IS NULL AND expires_at > now() AND attempts < $2 FOR UPDATE",
    )
    .bind(hash(token))
    .bind(MAX_ATTEMPTS)
    .fetch_optional(&mut *conn)
    .await
    .map_err(DbError::from)?;
    row.map(|(user, organization)| (UserId(user), OrganizationId(organization)))
        .ok_or(IdentityError::MfaChallengeInvalid)
}

pub async fn consume(conn: &mut PgConnection, token: &str) -> Result<(), IdentityError> {
    sqlx::query("UPDATE identity.mfa_challenges SET consumed_at = now() WHERE token_hash = $1")
        .bind(hash(token))
        .execute(&mut *conn)
        .await
        .map_err(DbError::from)?;
    Ok(())
}

/// Counts a wrong code against the challenge (committed on its own).
pub async fn count_failure(pool: &ControlPool, token: &str) -> Result<(), IdentityError> {
    sqlx::query("UPDATE identity.mfa_challenges SET attempts = attempts + 1 WHERE token_hash = $1")
        .bind(hash(token))
        .execute(pool)
        .await
        .map_err(DbError::from)?;
    Ok(())
}
