//! Sessions: an access token (EdDSA JWT, short-lived) and an opaque refresh
//! token (stored hashed, rotated on every use; reusing a rotated one
//! revokes its whole family, since only a thief would hold an old one).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cg_context::{OrganizationId, Role, UserId};
use cg_db::{ControlPool, DbError};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::IdentityError;
use crate::secrets::SecretBox;
use crate::tokens::claims::{AUDIENCE, AccessClaims};
use crate::tokens::signing;

const REFRESH_PREFIX: &str = "cgr_";

/// Issued tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedSession {
    pub access_token: String,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
    pub user_id: UserId,
    pub organization_code: String,
    pub role: Role,
    pub amr: Vec<String>,
}

/// Who the session is for.
#[derive(Debug, Clone)]
pub struct SessionSubject {
    pub user_id: UserId,
    pub organization_id: OrganizationId,
    pub organization_code: String,
    pub role: Role,
    pub amr: Vec<String>,
}

/// Lifetimes of the tokens.
#[derive(Debug, Clone, Copy)]
pub struct SessionLifetimes {
    pub access: Duration,
    pub refresh: Duration,
    /// How long a new signing key is published before it signs.
    pub key_publish_delay: Duration,
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn new_refresh_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{REFRESH_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

fn later(duration: Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(duration).unwrap_or_default()
}

/// Issues an access token and a refresh token in `family` (a new family
/// when `None`), inside the caller's transaction.
pub async fn issue(
    conn: &mut PgConnection,
    pool: &ControlPool,
    secrets: &SecretBox,
    issuer: &str,
    lifetimes: SessionLifetimes,
    subject: &SessionSubject,
    family: Option<Uuid>,
) -> Result<IssuedSession, IdentityError> {
    let now = Utc::now();
    let access_expires_at = later(lifetimes.access);
    let claims = AccessClaims {
        iss: issuer.to_owned(),
        sub: subject.user_id.to_string(),
        aud: AUDIENCE.to_owned(),
        exp: access_expires_at.timestamp(),
        nbf: now.timestamp(),
        iat: now.timestamp(),
        jti: Uuid::now_v7().to_string(),
        org: subject.organization_id.to_string(),
        org_code: subject.organization_code.clone(),
        role: subject.role.as_str().to_owned(),
        amr: subject.amr.clone(),
    };
    let key = signing::load_active(pool, secrets, lifetimes.key_publish_delay).await?;
    let access_token = signing::sign(&key, &claims)?;
    let refresh_token = new_refresh_token();
    let refresh_expires_at = later(lifetimes.refresh);
    sqlx::query(
        "INSERT INTO identity.refresh_tokens (token_hash, family_id, user_id, organization_id, amr, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(hash(&refresh_token))
    .bind(family.unwrap_or_else(Uuid::now_v7))
    .bind(subject.user_id.0)
    .bind(subject.organization_id.0)
    .bind(&subject.amr)
    .bind(refresh_expires_at)
    .execute(&mut *conn)
    .await
    .map_err(DbError::from)?;
    Ok(IssuedSession {
        access_token,
        access_expires_at,
        refresh_token,
        refresh_expires_at,
        user_id: subject.user_id,
        organization_code: subject.organization_code.clone(),
        role: subject.role,
        amr: subject.amr.clone(),
    })
}

/// What a presented refresh token turned out to be.
#[derive(Debug)]
pub enum Redeemed {
    /// Good: the family to continue, for this user and organization.
    Fresh {
        family: Uuid,
        user_id: UserId,
        organization_id: OrganizationId,
        amr: Vec<String>,
    },
    /// Already used: the family has just been revoked.
    Reused,
    /// Unknown, expired or revoked.
    Invalid,
}

#[derive(sqlx::FromRow)]
struct RefreshRow {
    family_id: Uuid,
    user_id: Uuid,
    organization_id: Uuid,
    amr: Vec<String>,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

/// Marks a refresh token used, inside the caller's transaction.
pub async fn redeem(conn: &mut PgConnection, token: &str) -> Result<Redeemed, IdentityError> {
    if !token.starts_with(REFRESH_PREFIX) || token.len() > 128 {
        return Ok(Redeemed::Invalid);
    }
    let row: Option<RefreshRow> = sqlx::query_as(
        "SELECT family_id, user_id, organization_id, amr, expires_at, used_at, revoked_at \
         FROM identity.refresh_tokens WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(hash(token))
    .fetch_optional(&mut *conn)
    .await
    .map_err(DbError::from)?;
    let Some(RefreshRow {
        family_id: family,
        user_id: user,
        organization_id: organization,
        amr,
        expires_at,
        used_at,
        revoked_at,
    }) = row
    else {
        return Ok(Redeemed::Invalid);
    };
    if used_at.is_some() {
        revoke_family(conn, family).await?;
        return Ok(Redeemed::Reused);
    }
    if revoked_at.is_some() || expires_at <= Utc::now() {
        return Ok(Redeemed::Invalid);
    }
    sqlx::query("UPDATE identity.refresh_tokens SET used_at = now() WHERE token_hash = $1")
        .bind(hash(token))
        .execute(&mut *conn)
        .await
        .map_err(DbError::from)?;
    Ok(Redeemed::Fresh {
        family,
        user_id: UserId(user),
        organization_id: OrganizationId(organization),
        amr,
    })
}

pub async fn revoke_family(conn: &mut PgConnection, family: Uuid) -> Result<(), IdentityError> {
    sqlx::query("UPDATE identity.refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL")
        .bind(family)
        .execute(&mut *conn)
        .await
        .map_err(DbError::from)?;
    Ok(())
}

/// Revokes every refresh token of the user in the organization (logout).
pub async fn revoke_user(
    conn: &mut PgConnection,
    user: UserId,
    organization: OrganizationId,
) -> Result<u64, IdentityError> {
    Ok(sqlx::query(
        "UPDATE identity.refresh_tokens SET revoked_at = now() \
         WHERE user_id = $1 AND organization_id = $2 AND revoked_at IS NULL",
    )
    .bind(user.0)
    .bind(organization.0)
    .execute(&mut *conn)
    .await
    .map_err(DbError::from)?
    .rows_affected())
}
