//! SQL of single sign-on: one function per statement.

use std::time::Duration;

use cg_context::{OrganizationId, Role};
use cg_db::DbError;
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use super::model::SsoConfig;
use super::validate::ValidConfig;

#[derive(sqlx::FromRow)]
struct ConfigRow {
    organization_id: Uuid,
    issuer_url: String,
    client_id: String,
    allowed_email_domains: Vec<String>,
    default_role: String,
    updated_at: DateTime<Utc>,
}

impl ConfigRow {
    fn into_config(self) -> Result<SsoConfig, DbError> {
        let default_role = Role::parse(&self.default_role).ok_or_else(|| {
            DbError::Other(format!(
                "unknown role `{}` in sso_configurations",
                self.default_role
            ))
        })?;
        Ok(SsoConfig {
            organization_id: OrganizationId(self.organization_id),
            issuer_url: self.issuer_url,
            client_id: self.client_id,
            allowed_email_domains: self.allowed_email_domains,
            default_role,
            updated_at: self.updated_at,
        })
    }
}

/// The columns of `ConfigRow`, as a literal for `concat!`.
macro_rules! config_columns {
    () => {
        "organization_id, issuer_url, client_id, allowed_email_domains, default_role, \
         updated_at"
    };
}

/// Inserts or replaces the configuration with a new sealed secret.
pub(crate) async fn save_with_secret(
    db: impl PgExecutor<'_>,
    org: OrganizationId,
    config: &ValidConfig,
    client_secret_enc: &[u8],
) -> Result<SsoConfig, DbError> {
    let row: ConfigRow = sqlx::query_as(concat!(
        "INSERT INTO identity.sso_configurations \
             (organization_id, issuer_url, client_id, client_secret_enc, \
              allowed_email_domains, default_role) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (organization_id) DO UPDATE SET \
             issuer_url = EXCLUDED.issuer_url, client_id = EXCLUDED.client_id, \
             client_secret_enc = EXCLUDED.client_secret_enc, \
             allowed_email_domains = EXCLUDED.allowed_email_domains, \
             default_role = EXCLUDED.default_role, \
             updated_at = now() \
         RETURNING ",
        config_columns!()
    ))
    .bind(org.0)
    .bind(&config.issuer_url)
    .bind(&config.client_id)
    .bind(client_secret_enc)
    .bind(&config.allowed_email_domains)
    .bind(config.default_role.as_str())
    .fetch_one(db)
    .await?;
    row.into_config()
}

/// Updates an existing configuration, keeping its secret; `None` when the
/// organization has none yet.
pub(crate) async fn update_keeping_secret(
    db: impl PgExecutor<'_>,
    org: OrganizationId,
    config: &ValidConfig,
) -> Result<Option<SsoConfig>, DbError> {
    let row: Option<ConfigRow> = sqlx::query_as(concat!(
        "UPDATE identity.sso_configurations SET \
             issuer_url = $2, client_id = $3, allowed_email_domains = $4, \
             default_role = $5, updated_at = now() \
         WHERE organization_id = $1 \
         RETURNING ",
        config_columns!()
    ))
    .bind(org.0)
    .bind(&config.issuer_url)
    .bind(&config.client_id)
    .bind(&config.allowed_email_domains)
    .bind(config.default_role.as_str())
    .fetch_optional(db)
    .await?;
    row.map(ConfigRow::into_config).transpose()
}

pub(crate) async fn find(
    db: impl PgExecutor<'_>,
    org: OrganizationId,
) -> Result<Option<SsoConfig>, DbError> {
    let row: Option<ConfigRow> = sqlx::query_as(concat!(
        "SELECT ",
        config_columns!(),
        " FROM identity.sso_configurations WHERE organization_id = $1"
    ))
    .bind(org.0)
    .fetch_optional(db)
    .await?;
    row.map(ConfigRow::into_config).transpose()
}

/// The configuration with its sealed client secret.
pub(crate) async fn find_with_secret(
    db: impl PgExecutor<'_>,
    org: OrganizationId,
) -> Result<Option<(SsoConfig, Vec<u8>)>, DbError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        config: ConfigRow,
        client_secret_enc: Vec<u8>,
    }
    let row: Option<Row> = sqlx::query_as(concat!(
        "SELECT ",
        config_columns!(),
        ", client_secret_enc FROM identity.sso_configurations WHERE organization_id = $1"
    ))
    .bind(org.0)
    .fetch_optional(db)
    .await?;
    row.map(|row| Ok((row.config.into_config()?, row.client_secret_enc)))
        .transpose()
}

/// A sign-in to remember between `start` and `complete`.
pub(crate) struct NewLogin<'a> {
    pub state_hash: &'a [u8],
    pub organization_id: OrganizationId,
    pub issuer_url: &'a str,
    pub nonce_hash: &'a [u8],
    pub pkce_verifier_enc: &'a [u8],
    pub redirect_uri: &'a str,
    pub ttl: Duration,
}

/// Stores a started sign-in; returns when it expires (database clock).
pub(crate) async fn insert_login(
    db: impl PgExecutor<'_>,
    login: &NewLogin<'_>,
) -> Result<DateTime<Utc>, DbError> {
    let (expires_at,): (DateTime<Utc>,) = sqlx::query_as(
        "INSERT INTO identity.sso_logins \
             (state_hash, organization_id, issuer_url, nonce_hash, pkce_verifier_enc, \
              redirect_uri, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7)) \
         RETURNING expires_at",
    )
    .bind(login.state_hash)
    .bind(login.organization_id.0)
    .bind(login.issuer_url)
    .bind(login.nonce_hash)
    .bind(login.pkce_verifier_enc)
    .bind(login.redirect_uri)
    .bind(login.ttl.as_secs_f64())
    .fetch_one(db)
    .await?;
    Ok(expires_at)
}

/// A sign-in taken for completion.
#[derive(sqlx::FromRow)]
pub(crate) struct PendingLogin {
    pub organization_id: Uuid,
    pub issuer_url: String,
    pub nonce_hash: Vec<u8>,
    pub pkce_verifier_enc: Vec<u8>,
    pub redirect_uri: String,
}

/// Marks the sign-in consumed and returns it, in one statement: of two
/// concurrent completions only one gets it. Unknown, used and expired
/// states all give `None`.
pub(crate) async fn consume_login(
    db: impl PgExecutor<'_>,
    state_hash: &[u8],
) -> Result<Option<PendingLogin>, DbError> {
    Ok(sqlx::query_as(
        "UPDATE identity.sso_logins SET consumed_at = now() \
         WHERE state_hash = $1 AND consumed_at IS NULL AND expires_at > now() \
         RETURNING organization_id, issuer_url, nonce_hash, pkce_verifier_enc, redirect_uri",
    )
    .bind(state_hash)
    .fetch_optional(db)
    .await?)
}

/// Deletes sign-ins that expired more than `grace` ago.
pub(crate) async fn delete_expired_logins(
    db: impl PgExecutor<'_>,
    grace: Duration,
) -> Result<u64, DbError> {
    Ok(sqlx::query(
        "DELETE FROM identity.sso_logins WHERE expires_at < now() - make_interval(secs => $1)",
    )
    .bind(grace.as_secs_f64())
    .execute(db)
    .await?
    .rows_affected())
}
