//! The tenancy service: its trait, and the PostgreSQL implementation.

use async_trait::async_trait;
use cg_audit::entry::Outcome;
use cg_audit::record::entry_for;
use cg_audit::store;
use cg_context::{OrganizationId, Principal, Tenant, TenantContext};
use cg_db::{ControlPool, DbError, migrate, paging};
use cg_status::FieldViolations;
use serde_json::json;
use sqlx::Connection;

use crate::TenancyError;
use crate::directory;
use crate::feature_override::{FeatureOverrideChange, FeatureSetting};
use crate::model::{
    DEFAULT_REGION, NewOrganization, Organization, OrganizationCode, OrganizationStatus, Tier,
    validate_basics, validate_domains, validate_states,
};
use crate::repository::{self, InsertOrganization, OrganizationChanges};

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: String,
}

/// Fields of the organization UpdateOrganization may change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrganizationUpdate {
    pub display_name: Option<String>,
    pub domains: Option<Vec<String>>,
    pub primary_contact_email: Option<String>,
    pub allowed_states: Option<Vec<String>>,
    pub primary_state: Option<String>,
}

impl OrganizationUpdate {
    /// The field-mask paths this update sets, for the audit trail.
    pub fn paths(&self) -> Vec<&'static str> {
        [
            ("display_name", self.display_name.is_some()),
            ("domains", self.domains.is_some()),
            (
                "primary_contact_email",
                self.primary_contact_email.is_some(),
            ),
            ("allowed_states", self.allowed_states.is_some()),
            ("primary_state", self.primary_state.is_some()),
        ]
        .into_iter()
        .filter_map(|(path, set)| set.then_some(path))
        .collect()
    }
}

/// Feature access of the calling tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureAccess {
    pub has_access: bool,
    pub current_tier: String,
    pub required_tier: Option<String>,
}

/// Schema version of a tenant against the latest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    pub schema_name: String,
    pub current_version: i64,
    pub latest_version: i64,
    pub pending_versions: Vec<i64>,
}

#[async_trait]
pub trait TenancyApi: Send + Sync + 'static {
    async fn create_organization(
        &self,
        ctx: &TenantContext,
        new: NewOrganization,
    ) -> Result<Organization, TenancyError>;
    async fn get_organization(&self, ctx: &TenantContext) -> Result<Organization, TenancyError>;
    async fn list_organizations(
        &self,
        ctx: &TenantContext,
        page_size: i32,
        page_token: &str,
        status: Option<OrganizationStatus>,
    ) -> Result<Page<Organization>, TenancyError>;
    async fn update_organization(
        &self,
        ctx: &TenantContext,
        update: OrganizationUpdate,
    ) -> Result<Organization, TenancyError>;
    async fn set_status(
        &self,
        ctx: &TenantContext,
        code: &str,
        status: OrganizationStatus,
        reason: &str,
    ) -> Result<Organization, TenancyError>;
    async fn change_tier(
        &self,
        ctx: &TenantContext,
        code: &str,
        tier: &str,
    ) -> Result<Organization, TenancyError>;
    async fn list_tiers(&self) -> Result<Vec<Tier>, TenancyError>;
    async fn check_feature_access(
        &self,
        ctx: &TenantContext,
        feature: &str,
    ) -> Result<FeatureAccess, TenancyError>;
    async fn set_feature_override(
        &self,
        ctx: &TenantContext,
        change: FeatureOverrideChange,
    ) -> Result<Organization, TenancyError>;
    async fn schema_status(&self, ctx: &TenantContext) -> Result<SchemaStatus, TenancyError>;
}

/// Tenancy on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgTenancy {
    pool: ControlPool,
}

impl PgTenancy {
    pub fn new(pool: ControlPool) -> Self {
        PgTenancy { pool }
    }

    async fn tier(&self, code: &str, field: &str) -> Result<Tier, TenancyError> {
        repository::find_tier(&self.pool, code)
            .await?
            .ok_or_else(|| {
                FieldViolations::single(field, format!("unknown tier `{code}`; see ListTiers"))
                    .into()
            })
    }

    async fn organization_by_code(&self, code: &str) -> Result<Organization, TenancyError> {
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        repository::find_by_code(&mut conn, code)
            .await?
            .ok_or(TenancyError::NotFound)
    }

    async fn organization(&self, id: OrganizationId) -> Result<Organization, TenancyError> {
        repository::find_by_id(&self.pool, id)
            .await?
            .ok_or(TenancyError::NotFound)
    }
}

fn require_platform(ctx: &TenantContext) -> Result<(), TenancyError> {
    match ctx.principal {
        Principal::Operator { .. } | Principal::Service { .. } => Ok(()),
        _ => Err(TenancyError::PermissionDenied("platform operators only")),
    }
}

fn require_tenant(ctx: &TenantContext) -> Result<&Tenant, TenancyError> {
    ctx.tenant.as_ref().ok_or(TenancyError::PermissionDenied(
        "this method acts within an organization",
    ))
}

/// Records a change to an organization in its own audit chain, inside the
/// transaction that makes the change.
async fn audit(
    conn: &mut sqlx::PgConnection,
    ctx: &TenantContext,
    schema: &str,
    id: OrganizationId,
    action: &str,
    summary: serde_json::Value,
) -> Result<(), TenancyError> {
    let entry = entry_for(
        ctx,
        Some(id.0),
        action,
        ("organization", &id.to_string()),
        Outcome::Success,
        summary,
    );
    store::append(conn, schema, entry).await?;
    Ok(())
}

fn map_create_conflict(error: DbError, code: &str) -> TenancyError {
    match &error {
        DbError::UniqueViolation(constraint) if constraint == "organizations_code_key" => {
            TenancyError::AlreadyExists(code.to_owned())
        }
        DbError::UniqueViolation(constraint) if constraint == "organizations_schema_name_key" => {
            FieldViolations::single("code", "maps to the schema of an existing organization").into()
        }
        DbError::UniqueViolation(constraint) if constraint == "organization_domains_pkey" => {
            FieldViolations::single(
                "domains",
                "a domain is already used by another organization",
            )
            .into()
        }
        _ => TenancyError::Db(error),
    }
}

#[async_trait]
impl TenancyApi for PgTenancy {
    async fn create_organization(
        &self,
        ctx: &TenantContext,
        new: NewOrganization,
    ) -> Result<Organization, TenancyError> {
        require_platform(ctx)?;
        let mut violations = FieldViolations::new();
        validate_basics(&new, &mut violations);
        match repository::find_tier(&self.pool, &new.tier).await? {
            Some(tier) => validate_states(
                &new.allowed_states,
                &new.primary_state,
                &tier,
                &mut violations,
            ),
            None => violations.add(
                "tier",
                format!("unknown tier `{}`; see ListTiers", new.tier),
            ),
        }
        violations.check()?;
        let code = OrganizationCode::parse(&new.code)
            .map_err(|problem| FieldViolations::single("code", problem))?;
        let schema_name = code.schema_name();
        let region = if new.data_residency_region.is_empty() {
            DEFAULT_REGION
        } else {
            new.data_residency_region.as_str()
        };
        let id = OrganizationId::new();

        // The organization row and its schema commit together or not at all.
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await.map_err(DbError::from)?;
        let insert = InsertOrganization {
            id,
            code: code.as_str(),
            schema_name: &schema_name,
            display_name: new.display_name.trim(),
            primary_contact_email: &new.primary_contact_email,
            tier: &new.tier,
            allowed_states: &new.allowed_states,
            primary_state: &new.primary_state,
            data_residency_region: region,
        };
        repository::insert(&mut tx, &insert)
            .await
            .map_err(|e| map_create_conflict(e, code.as_str()))?;
        repository::replace_domains(&mut tx, id, &new.domains, true)
            .await
            .map_err(|e| map_create_conflict(e, code.as_str()))?;
        let applied = migrate::provision_tenant(&mut tx, &schema_name).await?;
        let summary = json!({
            "code": code.as_str(),
            "tier": new.tier,
            "allowed_states": new.allowed_states,
            "primary_state": new.primary_state,
            "domains": new.domains,
        });
        audit(
            &mut tx,
            ctx,
            &schema_name,
            id,
            "tenancy.organization.create",
            summary,
        )
        .await?;
        tx.commit().await.map_err(DbError::from)?;
        tracing::info!(organization = code.as_str(), schema = %schema_name, versions = ?applied, "organization created");
        self.organization(id).await
    }

    async fn get_organization(&self, ctx: &TenantContext) -> Result<Organization, TenancyError> {
        let tenant = require_tenant(ctx)?;
        self.organization(tenant.org_id).await
    }

    async fn list_organizations(
        &self,
        ctx: &TenantContext,
        page_size: i32,
        page_token: &str,
        status: Option<OrganizationStatus>,
    ) -> Result<Page<Organization>, TenancyError> {
        require_platform(ctx)?;
        let limit = paging::page_size(page_size)?;
        let after = paging::decode(page_token)?;
        let mut items = repository::list(&self.pool, after.as_deref(), limit + 1, status).await?;
        let next_page_token = paging::finish_page(&mut items, limit, |o| o.code.clone());
        Ok(Page {
            items,
            next_page_token,
        })
    }

    async fn update_organization(
        &self,
        ctx: &TenantContext,
        update: OrganizationUpdate,
    ) -> Result<Organization, TenancyError> {
        let tenant = require_tenant(ctx)?;
        let current = self.organization(tenant.org_id).await?;
        let mut violations = FieldViolations::new();
        if let Some(name) = &update.display_name
            && (name.trim().is_empty() || name.chars().count() > 200)
        {
            violations.add("organization.display_name", "must be 1 to 200 characters");
        }
        if let Some(email) = &update.primary_contact_email {
            let probe = NewOrganization {
                code: current.code.clone(),
                display_name: current.display_name.clone(),
                primary_contact_email: email.clone(),
                ..NewOrganization::default()
            };
            let mut email_violations = FieldViolations::new();
            validate_basics(&probe, &mut email_violations);
            if email_violations
                .fields()
                .any(|f| f == "primary_contact_email")
            {
                violations.add(
                    "organization.primary_contact_email",
                    "must be an e-mail address",
                );
            }
        }
        if let Some(domains) = &update.domains {
            validate_domains(domains, "organization.domains", &mut violations);
        }
        if update.allowed_states.is_some() || update.primary_state.is_some() {
            let allowed = update
                .allowed_states
                .clone()
                .unwrap_or_else(|| current.allowed_states.clone());
            let primary = update
                .primary_state
                .clone()
                .unwrap_or_else(|| current.primary_state.clone());
            let tier = self.tier(&current.tier, "organization.tier").await?;
            let mut state_violations = FieldViolations::new();
            validate_states(&allowed, &primary, &tier, &mut state_violations);
            for field in state_violations.fields() {
                violations.add(
                    format!("organization.{field}"),
                    "invalid for this organization's tier",
                );
            }
        }
        violations.check()?;
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await.map_err(DbError::from)?;
        let changes = OrganizationChanges {
            display_name: update.display_name.as_deref().map(str::trim),
            primary_contact_email: update.primary_contact_email.as_deref(),
            allowed_states: update.allowed_states.as_deref(),
            primary_state: update.primary_state.as_deref(),
        };
        repository::update(&mut tx, current.id, &changes).await?;
        if let Some(domains) = &update.domains {
            // A tenant's own domain change waits for verification before it routes.
            repository::replace_domains(&mut tx, current.id, domains, false)
                .await
                .map_err(|e| map_create_conflict(e, &current.code))?;
        }
        let summary = json!({ "fields": update.paths() });
        audit(
            &mut tx,
            ctx,
            &current.schema_name,
            current.id,
            "tenancy.organization.update",
            summary,
        )
        .await?;
        tx.commit().await.map_err(DbError::from)?;
        self.organization(current.id).await
    }

    async fn set_status(
        &self,
        ctx: &TenantContext,
        code: &str,
        status: OrganizationStatus,
        reason: &str,
    ) -> Result<Organization, TenancyError> {
        require_platform(ctx)?;
        let reason = match status {
            OrganizationStatus::Active => "",
            OrganizationStatus::Suspended if reason.trim().is_empty() => "suspended by an operator",
            OrganizationStatus::Suspended => reason.trim(),
        };
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await.map_err(DbError::from)?;
        let (id, schema) = repository::set_status(&mut tx, code, status, reason)
            .await?
            .ok_or(TenancyError::NotFound)?;
        let action = match status {
            OrganizationStatus::Active => "tenancy.organization.reactivate",
            OrganizationStatus::Suspended => "tenancy.organization.suspend",
        };
        audit(
            &mut tx,
            ctx,
            &schema,
            id,
            action,
            json!({ "reason": reason }),
        )
        .await?;
        tx.commit().await.map_err(DbError::from)?;
        self.organization(id).await
    }

    async fn change_tier(
        &self,
        ctx: &TenantContext,
        code: &str,
        tier_code: &str,
    ) -> Result<Organization, TenancyError> {
        require_platform(ctx)?;
        let tier = self.tier(tier_code, "tier").await?;
        let current = self.organization_by_code(code).await?;
        let mut violations = FieldViolations::new();
        validate_states(
            &current.allowed_states,
            &current.primary_state,
            &tier,
            &mut violations,
        );
        if !violations.is_empty() {
            return Err(FieldViolations::single(
                "tier",
                format!(
                    "the organization operates in more states than the {tier_code} tier allows"
                ),
            )
            .into());
        }
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await.map_err(DbError::from)?;
        repository::set_tier(&mut tx, current.id, &tier.code).await?;
        let summary = json!({ "from": current.tier, "to": tier.code });
        audit(
            &mut tx,
            ctx,
            &current.schema_name,
            current.id,
            "tenancy.organization.change_tier",
            summary,
        )
        .await?;
        tx.commit().await.map_err(DbError::from)?;
        self.organization(current.id).await
    }

    async fn list_tiers(&self) -> Result<Vec<Tier>, TenancyError> {
        Ok(repository::list_tiers(&self.pool).await?)
    }

    async fn check_feature_access(
        &self,
        ctx: &TenantContext,
        feature: &str,
    ) -> Result<FeatureAccess, TenancyError> {
        let tenant = require_tenant(ctx)?;
        if feature.is_empty() {
            return Err(FieldViolations::single("feature", "is required").into());
        }
        let features = repository::effective_features(&self.pool, tenant.org_id).await?;
        let org = self.organization(tenant.org_id).await?;
        Ok(FeatureAccess {
            has_access: features.iter().any(|f| f == feature),
            current_tier: org.tier,
            required_tier: directory::lowest_tier_with(&self.pool, feature).await?,
        })
    }

    async fn set_feature_override(
        &self,
        ctx: &TenantContext,
        change: FeatureOverrideChange,
    ) -> Result<Organization, TenancyError> {
        require_platform(ctx)?;
        let feature = change.feature.as_str();
        if !repository::feature_exists(&self.pool, feature).await? {
            return Err(FieldViolations::single(
                "feature",
                format!("unknown feature `{feature}`; see ListTiers"),
            )
            .into());
        }
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await.map_err(DbError::from)?;
        // The lock orders concurrent overrides of one organization, so the
        // previous setting recorded below is the one this call replaced.
        let (id, schema) = repository::lock_by_code(&mut tx, change.organization.as_str())
            .await?
            .ok_or_else(|| TenancyError::UnknownOrganization(change.organization.clone()))?;
        let previous =
            FeatureSetting::from_stored(repository::feature_override(&mut tx, id, feature).await?);
        // Setting what is already set writes nothing, so the gateways' caches
        // are not dropped for a repeat; the operator's call is still recorded.
        if previous != change.setting {
            match change.setting.stored() {
                Some(enabled) => {
                    repository::set_feature_override(&mut tx, id, feature, enabled).await?
                }
                None => repository::clear_feature_override(&mut tx, id, feature).await?,
            }
            repository::touch(&mut tx, id).await?;
        }
        let summary = json!({
            "feature": feature,
            "override": change.setting.as_str(),
            "previous": previous.as_str(),
        });
        audit(
            &mut tx,
            ctx,
            &schema,
            id,
            "tenancy.feature_override.set",
            summary,
        )
        .await?;
        tx.commit().await.map_err(DbError::from)?;
        tracing::info!(
            organization = change.organization.as_str(),
            feature,
            setting = change.setting.as_str(),
            previous = previous.as_str(),
            "feature override set"
        );
        self.organization(id).await
    }

    async fn schema_status(&self, ctx: &TenantContext) -> Result<SchemaStatus, TenancyError> {
        let tenant = require_tenant(ctx)?;
        let applied = migrate::tenant_versions(&self.pool, &tenant.schema).await?;
        let pending_versions = migrate::TENANT
            .iter()
            .map(|m| m.version)
            .filter(|v| !applied.contains(v))
            .collect();
        Ok(SchemaStatus {
            schema_name: tenant.schema.clone(),
            current_version: applied.iter().copied().max().unwrap_or(0),
            latest_version: migrate::latest_tenant_version(),
            pending_versions,
        })
    }
}
