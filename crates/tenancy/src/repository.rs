//! SQL of the tenancy schema: one function per statement, rows separate from domain types.

use cg_context::OrganizationId;
use cg_db::DbError;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use crate::model::{Organization, OrganizationStatus, Tier};

const ORGANIZATION_COLUMNS: &str = "o.id, o.code, o.display_name, o.primary_contact_email, o.tier, \
    o.status, o.suspension_reason, o.allowed_states, o.primary_state, o.data_residency_region, \
    o.schema_name, o.created_at, o.updated_at, \
    ARRAY(SELECT d.domain FROM tenancy.organization_domains d \
          WHERE d.organization_id = o.id ORDER BY d.domain) AS domains";

#[derive(FromRow)]
struct OrganizationRow {
    id: Uuid,
    code: String,
    display_name: String,
    primary_contact_email: String,
    tier: String,
    status: String,
    suspension_reason: String,
    allowed_states: Vec<String>,
    primary_state: String,
    data_residency_region: String,
    schema_name: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    domains: Vec<String>,
}

impl TryFrom<OrganizationRow> for Organization {
    type Error = DbError;
    fn try_from(row: OrganizationRow) -> Result<Self, DbError> {
        let status = OrganizationStatus::parse(&row.status).ok_or_else(|| {
            DbError::Other(format!("unknown organization status {:?}", row.status))
        })?;
        Ok(Organization {
            id: OrganizationId(row.id),
            code: row.code,
            display_name: row.display_name,
            domains: row.domains,
            primary_contact_email: row.primary_contact_email,
            tier: row.tier,
            status,
            suspension_reason: row.suspension_reason,
            allowed_states: row.allowed_states,
            primary_state: row.primary_state.trim_end().to_owned(),
            data_residency_region: row.data_residency_region,
            schema_name: row.schema_name,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

#[derive(FromRow)]
struct TierRow {
    code: String,
    display_name: String,
    rank: i32,
    max_users: i64,
    max_properties: i64,
    max_claims: i64,
    max_ai_requests_monthly: i64,
    max_states: i32,
    monthly_base_price: Option<Decimal>,
    currency_code: String,
    features: Vec<String>,
}

impl From<TierRow> for Tier {
    fn from(row: TierRow) -> Tier {
        Tier {
            code: row.code,
            display_name: row.display_name,
            rank: row.rank,
            max_users: row.max_users,
            max_properties: row.max_properties,
            max_claims: row.max_claims,
            max_ai_requests_monthly: row.max_ai_requests_monthly,
            max_states: row.max_states,
            features: row.features,
            monthly_base_price: row.monthly_base_price,
            currency_code: row.currency_code,
        }
    }
}

const TIER_SELECT: &str = "SELECT t.code, t.display_name, t.rank, t.max_users, t.max_properties, \
    t.max_claims, t.max_ai_requests_monthly, t.max_states, t.monthly_base_price, t.currency_code, \
    ARRAY(SELECT f.feature_code FROM tenancy.tier_features f \
          WHERE f.tier_code = t.code ORDER BY f.feature_code) AS features \
    FROM tenancy.tiers t";

pub async fn list_tiers(pool: &PgPool) -> Result<Vec<Tier>, DbError> {
    let rows: Vec<TierRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{TIER_SELECT} ORDER BY t.rank"
    )))
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Tier::from).collect())
}

pub async fn find_tier(pool: &PgPool, code: &str) -> Result<Option<Tier>, DbError> {
    let row: Option<TierRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{TIER_SELECT} WHERE t.code = $1"
    )))
    .bind(code)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Tier::from))
}

pub async fn find_by_id(
    pool: &PgPool,
    id: OrganizationId,
) -> Result<Option<Organization>, DbError> {
    let row: Option<OrganizationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ORGANIZATION_COLUMNS} FROM tenancy.organizations o WHERE o.id = $1"
    )))
    .bind(id.0)
    .fetch_optional(pool)
    .await?;
    row.map(Organization::try_from).transpose()
}

pub async fn find_by_code(
    conn: &mut PgConnection,
    code: &str,
) -> Result<Option<Organization>, DbError> {
    let row: Option<OrganizationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ORGANIZATION_COLUMNS} FROM tenancy.organizations o WHERE o.code = $1"
    )))
    .bind(code)
    .fetch_optional(conn)
    .await?;
    row.map(Organization::try_from).transpose()
}

pub async fn list(
    pool: &PgPool,
    after_code: Option<&str>,
    limit: i64,
    status: Option<OrganizationStatus>,
) -> Result<Vec<Organization>, DbError> {
    let rows: Vec<OrganizationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ORGANIZATION_COLUMNS} FROM tenancy.organizations o \
         WHERE ($1::text IS NULL OR o.code > $1) AND ($2::text IS NULL OR o.status = $2) \
         ORDER BY o.code LIMIT $3"
    )))
    .bind(after_code)
    .bind(status.map(OrganizationStatus::as_str))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(Organization::try_from).collect()
}

pub struct InsertOrganization<'a> {
    pub id: OrganizationId,
    pub code: &'a str,
    pub schema_name: &'a str,
    pub display_name: &'a str,
    pub primary_contact_email: &'a str,
    pub tier: &'a str,
    pub allowed_states: &'a [String],
    pub primary_state: &'a str,
    pub data_residency_region: &'a str,
}

pub async fn insert(conn: &mut PgConnection, org: &InsertOrganization<'_>) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO tenancy.organizations (id, code, schema_name, display_name, primary_contact_email, \
         tier, allowed_states, primary_state, data_residency_region) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(org.id.0)
    .bind(org.code)
    .bind(org.schema_name)
    .bind(org.display_name)
    .bind(org.primary_contact_email)
    .bind(org.tier)
    .bind(org.allowed_states)
    .bind(org.primary_state)
    .bind(org.data_residency_region)
    .execute(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO tenancy.organization_customizations (organization_id) VALUES ($1)")
        .bind(org.id.0)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Replaces the organization's domains. `verified` marks them verified now
/// (an operator set them) or leaves them waiting for verification.
pub async fn replace_domains(
    conn: &mut PgConnection,
    id: OrganizationId,
    domains: &[String],
    verified: bool,
) -> Result<(), DbError> {
    sqlx::query("DELETE FROM tenancy.organization_domains WHERE organization_id = $1 AND NOT (domain = ANY($2))")
        .bind(id.0)
        .bind(domains)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO tenancy.organization_domains (domain, organization_id, verified_at) \
         SELECT d, $1, CASE WHEN $3 THEN now() END FROM unnest($2::text[]) AS d \
         ON CONFLICT (domain) DO NOTHING",
    )
    .bind(id.0)
    .bind(domains)
    .bind(verified)
    .execute(&mut *conn)
    .await?;
    let owned: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tenancy.organization_domains WHERE organization_id = $1 AND domain = ANY($2)",
    )
    .bind(id.0)
    .bind(domains)
    .fetch_one(&mut *conn)
    .await?;
    if owned as usize != domains.len() {
        return Err(DbError::UniqueViolation(
            "organization_domains_pkey".to_owned(),
        ));
    }
    Ok(())
}

pub struct OrganizationChanges<'a> {
    pub display_name: Option<&'a str>,
    pub primary_contact_email: Option<&'a str>,
    pub allowed_states: Option<&'a [String]>,
    pub primary_state: Option<&'a str>,
}

pub async fn update(
    conn: &mut PgConnection,
    id: OrganizationId,
    changes: &OrganizationChanges<'_>,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE tenancy.organizations SET \
         display_name = coalesce($2, display_name), \
         primary_contact_email = coalesce($3, primary_contact_email), \
         allowed_states = coalesce($4, allowed_states), \
         primary_state = coalesce($5, primary_state), \
         updated_at = now() WHERE id = $1",
    )
    .bind(id.0)
    .bind(changes.display_name)
    .bind(changes.primary_contact_email)
    .bind(changes.allowed_states)
    .bind(changes.primary_state)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets the status; returns the organization's id and schema, or `None`
/// when no organization has the code.
pub async fn set_status(
    conn: &mut PgConnection,
    code: &str,
    status: OrganizationStatus,
    reason: &str,
) -> Result<Option<(OrganizationId, String)>, DbError> {
    let row: Option<(Uuid, String)> = sqlx::query_as(
        "UPDATE tenancy.organizations SET status = $2, suspension_reason = $3, updated_at = now() \
         WHERE code = $1 RETURNING id, schema_name",
    )
    .bind(code)
    .bind(status.as_str())
    .bind(reason)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(id, schema)| (OrganizationId(id), schema)))
}

pub async fn set_tier(
    conn: &mut PgConnection,
    id: OrganizationId,
    tier: &str,
) -> Result<(), DbError> {
    sqlx::query("UPDATE tenancy.organizations SET tier = $2, updated_at = now() WHERE id = $1")
        .bind(id.0)
        .bind(tier)
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether the catalog has a feature with this code.
pub async fn feature_exists(pool: &PgPool, code: &str) -> Result<bool, DbError> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tenancy.features WHERE code = $1)")
            .bind(code)
            .fetch_one(pool)
            .await?,
    )
}

/// Locks the organization with this code against concurrent changes until
/// the transaction ends; returns its id and schema, or `None` when no
/// organization has the code. `NO KEY` so that rows referencing it can
/// still be written meanwhile.
pub async fn lock_by_code(
    conn: &mut PgConnection,
    code: &str,
) -> Result<Option<(OrganizationId, String)>, DbError> {
    let row: Option<(Uuid, String)> = sqlx::query_as(
        "SELECT id, schema_name FROM tenancy.organizations WHERE code = $1 FOR NO KEY UPDATE",
    )
    .bind(code)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(id, schema)| (OrganizationId(id), schema)))
}

/// The organization's override of one feature: `Some(enabled)`, or `None`
/// when its tier decides.
pub async fn feature_override(
    conn: &mut PgConnection,
    id: OrganizationId,
    feature: &str,
) -> Result<Option<bool>, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT enabled FROM tenancy.feature_overrides WHERE organization_id = $1 AND feature_code = $2",
    )
    .bind(id.0)
    .bind(feature)
    .fetch_optional(conn)
    .await?)
}

pub async fn set_feature_override(
    conn: &mut PgConnection,
    id: OrganizationId,
    feature: &str,
    enabled: bool,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO tenancy.feature_overrides (organization_id, feature_code, enabled) \
         VALUES ($1, $2, $3) \
         ON CONFLICT (organization_id, feature_code) DO UPDATE SET enabled = EXCLUDED.enabled",
    )
    .bind(id.0)
    .bind(feature)
    .bind(enabled)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn clear_feature_override(
    conn: &mut PgConnection,
    id: OrganizationId,
    feature: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "DELETE FROM tenancy.feature_overrides WHERE organization_id = $1 AND feature_code = $2",
    )
    .bind(id.0)
    .bind(feature)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks the organization changed now.
pub async fn touch(conn: &mut PgConnection, id: OrganizationId) -> Result<(), DbError> {
    sqlx::query("UPDATE tenancy.organizations SET updated_at = now() WHERE id = $1")
        .bind(id.0)
        .execute(conn)
        .await?;
    Ok(())
}

/// Features of the organization: its tier's, with per-organization overrides applied.
pub async fn effective_features(pool: &PgPool, id: OrganizationId) -> Result<Vec<String>, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT f.feature_code FROM tenancy.tier_features f \
         JOIN tenancy.organizations o ON o.tier = f.tier_code WHERE o.id = $1 \
           AND NOT EXISTS (SELECT 1 FROM tenancy.feature_overrides x \
                           WHERE x.organization_id = o.id AND x.feature_code = f.feature_code AND NOT x.enabled) \
         UNION \
         SELECT x.feature_code FROM tenancy.feature_overrides x WHERE x.organization_id = $1 AND x.enabled \
         ORDER BY 1",
    )
    .bind(id.0)
    .fetch_all(pool)
    .await?)
}
