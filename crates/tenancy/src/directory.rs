//! Read model the gateway resolves tenants with: one organization by code
//! or by verified custom domain, with what policy needs (status, tier,
//! effective features, allowed states).

use cg_context::OrganizationId;
use cg_db::DbError;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

/// What the gateway needs to know about a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRecord {
    pub id: OrganizationId,
    pub code: String,
    pub schema: String,
    pub tier: String,
    pub suspended: bool,
    pub allowed_states: Vec<String>,
    /// The tier's features with per-organization overrides applied.
    pub features: Vec<String>,
}

#[derive(FromRow)]
struct TenantRow {
    id: Uuid,
    code: String,
    schema_name: String,
    tier: String,
    status: String,
    allowed_states: Vec<String>,
    features: Vec<String>,
}

const SELECT: &str = "SELECT o.id, o.code, o.schema_name, o.tier, o.status, o.allowed_states, \
    ARRAY(SELECT f.feature_code FROM tenancy.tier_features f WHERE f.tier_code = o.tier \
            AND NOT EXISTS (SELECT 1 FROM tenancy.feature_overrides x WHERE x.organization_id = o.id \
                            AND x.feature_code = f.feature_code AND NOT x.enabled) \
          UNION SELECT x.feature_code FROM tenancy.feature_overrides x \
            WHERE x.organization_id = o.id AND x.enabled) AS features \
    FROM tenancy.organizations o";

impl From<TenantRow> for TenantRecord {
    fn from(row: TenantRow) -> TenantRecord {
        TenantRecord {
            id: OrganizationId(row.id),
            code: row.code,
            schema: row.schema_name,
            tier: row.tier,
            suspended: row.status != "active",
            allowed_states: row.allowed_states,
            features: row.features,
        }
    }
}

/// The organization with this code.
pub async fn by_code(pool: &PgPool, code: &str) -> Result<Option<TenantRecord>, DbError> {
    let row: Option<TenantRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE o.code = $1")))
            .bind(code)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(TenantRecord::from))
}

/// The organization with this id.
pub async fn by_id(pool: &PgPool, id: OrganizationId) -> Result<Option<TenantRecord>, DbError> {
    let row: Option<TenantRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE o.id = $1")))
            .bind(id.0)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(TenantRecord::from))
}

/// The user limit of the organization's tier; 0 means unlimited.
pub async fn user_limit(pool: &PgPool, id: OrganizationId) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT t.max_users FROM tenancy.organizations o JOIN tenancy.tiers t ON t.code = o.tier WHERE o.id = $1",
    )
    .bind(id.0)
    .fetch_optional(pool)
    .await?
    .unwrap_or(0))
}

/// The organization owning this verified custom domain.
pub async fn by_verified_domain(
    pool: &PgPool,
    domain: &str,
) -> Result<Option<TenantRecord>, DbError> {
    let row: Option<TenantRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} JOIN tenancy.organization_domains d ON d.organization_id = o.id \
         WHERE d.domain = $1 AND d.verified_at IS NOT NULL"
    )))
    .bind(domain)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(TenantRecord::from))
}

/// The lowest-ranked tier that includes `feature`, if any.
pub async fn lowest_tier_with(pool: &PgPool, feature: &str) -> Result<Option<String>, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT t.code FROM tenancy.tiers t JOIN tenancy.tier_features f ON f.tier_code = t.code \
         WHERE f.feature_code = $1 ORDER BY t.rank LIMIT 1",
    )
    .bind(feature)
    .fetch_optional(pool)
    .await?)
}
