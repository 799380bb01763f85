//! API keys of an organization's service accounts: `cgk_<prefix>_<secret>`,
//! a role each, the secret shown once and only its SHA-256 kept (256 random
//! bits need no slow hash), revocable, optionally expiring.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cg_context::{ApiKeyId, OrganizationId, Role};
use cg_db::{ControlPool, DbError};
use chrono::{DateTime, Utc};
use rand::Rng as _;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use subtle::ConstantTimeEq;
use uuid::Uuid;

const KEY_PREFIX: &str = "cgk_";
const PREFIX_LEN: usize = 12;

/// An API key as listed (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub organization_id: OrganizationId,
    pub prefix: String,
    pub display_name: String,
    pub role: Role,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Whether a bearer credential is shaped like an organization API key.
pub fn looks_like_api_key(credential: &str) -> bool {
    credential.starts_with(KEY_PREFIX)
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    organization_id: Uuid,
    key_prefix: String,
    display_name: String,
    role: String,
    created_by: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<Row> for ApiKey {
    type Error = DbError;
    fn try_from(row: Row) -> Result<ApiKey, DbError> {
        Ok(ApiKey {
            id: ApiKeyId(row.id),
            organization_id: OrganizationId(row.organization_id),
            prefix: row.key_prefix,
            display_name: row.display_name,
            role: Role::parse(&row.role)
                .ok_or_else(|| DbError::Other(format!("unknown role {:?}", row.role)))?,
            created_by: row.created_by,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct VerifyRow {
    #[sqlx(flatten)]
    key: Row,
    secret_hash: Vec<u8>,
}

const COLUMNS: &str = "id, organization_id, key_prefix, display_name, role, created_by, created_at, expires_at, revoked_at";

/// Creates a key; returns it and its secret (shown once).
pub async fn create(
    conn: &mut PgConnection,
    organization: OrganizationId,
    display_name: &str,
    role: Role,
    created_by: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(ApiKey, String), DbError> {
    let prefix: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(PREFIX_LEN)
        .map(char::from)
        .collect();
    let secret = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO identity.api_keys (id, organization_id, key_prefix, secret_hash, display_name, role, created_by, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(organization.0)
    .bind(&prefix)
    .bind(hash(&secret))
    .bind(display_name)
    .bind(role.as_str())
    .bind(created_by)
    .bind(expires_at)
    .fetch_one(&mut *conn)
    .await?;
    Ok((row.try_into()?, format!("{KEY_PREFIX}{prefix}_{secret}")))
}

/// The organization's keys, newest first.
pub async fn list(
    pool: &ControlPool,
    organization: OrganizationId,
    show_revoked: bool,
) -> Result<Vec<ApiKey>, DbError> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM identity.api_keys WHERE organization_id = $1 AND ($2 OR revoked_at IS NULL) ORDER BY created_at DESC"
    )))
    .bind(organization.0)
    .bind(show_revoked)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(ApiKey::try_from).collect()
}

/// Revokes a key of the organization; `None` when it has no such key.
pub async fn revoke(
    conn: &mut PgConnection,
    organization: OrganizationId,
    id: ApiKeyId,
) -> Result<Option<ApiKey>, DbError> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE identity.api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 AND organization_id = $2 RETURNING {COLUMNS}"
    )))
    .bind(id.0)
    .bind(organization.0)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(ApiKey::try_from).transpose()
}

/// The live key `presented` is, or `None`.
pub async fn verify(pool: &ControlPool, presented: &str) -> Result<Option<ApiKey>, DbError> {
    let Some((prefix, secret)) = presented
        .strip_prefix(KEY_PREFIX)
        .and_then(|rest| rest.split_once('_'))
        .filter(|(prefix, secret)| prefix.len() == PREFIX_LEN && secret.len() == 43)
    else {
        return Ok(None);
    };
    let row: Option<VerifyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS}, secret_hash FROM identity.api_keys WHERE key_prefix = $1 AND revoked_at IS NULL \
         AND (expires_at IS NULL OR expires_at > now())"
    )))
    .bind(prefix)
    .fetch_optional(pool)
    .await?;
    let Some(VerifyRow {
        key: row,
        secret_hash: stored,
    }) = row
    else {
        return Ok(None);
    };
    if bool::from(stored.as_slice().ct_eq(&hash(secret))) {
        Ok(Some(row.try_into()?))
    } else {
        Ok(None)
    }
}
