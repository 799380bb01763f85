//! The claims service: its trait, and the implementation on tenant schemas.

use async_trait::async_trait;
use cg_audit::entry::Outcome;
use cg_audit::record::entry_for;
use cg_audit::store;
use cg_context::{Tenant, TenantContext, UserId};
use cg_db::{TenantPool, paging};
use cg_status::FieldViolations;
use serde_json::json;
use uuid::Uuid;

use crate::ClaimsError;
use crate::model::{Property, PropertyFields};
use crate::repository;

/// One page of properties.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyPage {
    pub items: Vec<Property>,
    pub next_page_token: String,
}

/// Which fields an update replaces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PropertyMask {
    pub display_name: bool,
    pub address: bool,
    pub property_type: bool,
    pub value: bool,
    pub year_built: bool,
}

#[async_trait]
pub trait ClaimsApi: Send + Sync + 'static {
    async fn create_property(
        &self,
        ctx: &TenantContext,
        fields: PropertyFields,
    ) -> Result<Property, ClaimsError>;
    async fn get_property(&self, ctx: &TenantContext, id: Uuid) -> Result<Property, ClaimsError>;
    async fn list_properties(
        &self,
        ctx: &TenantContext,
        page_size: i32,
        page_token: &str,
        state: Option<String>,
    ) -> Result<PropertyPage, ClaimsError>;
    async fn update_property(
        &self,
        ctx: &TenantContext,
        id: Uuid,
        fields: PropertyFields,
        mask: PropertyMask,
    ) -> Result<Property, ClaimsError>;
}

/// Claims on the tenant schemas of PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgClaims {
    pool: TenantPool,
}

impl PropertyMask {
    /// The field-mask paths set, for the audit trail.
    pub fn paths(&self) -> Vec<&'static str> {
        [
            ("display_name", self.display_name),
            ("address", self.address),
            ("property_type", self.property_type),
            ("value", self.value),
            ("year_built", self.year_built),
        ]
        .into_iter()
        .filter_map(|(path, set)| set.then_some(path))
        .collect()
    }
}

impl PgClaims {
    pub fn new(pool: TenantPool) -> Self {
        PgClaims { pool }
    }
}

/// Records a change in the organization's audit chain, in the transaction
/// that makes it.
async fn audit(
    tx: &tokio_postgres::Transaction<'_>,
    ctx: &TenantContext,
    tenant: &Tenant,
    action: &str,
    property: &Property,
    summary: serde_json::Value,
) -> Result<(), ClaimsError> {
    let entry = entry_for(
        ctx,
        Some(tenant.org_id.0),
        action,
        ("property", &property.id.to_string()),
        Outcome::Success,
        summary,
    );
    store::append_in_tenant(tx, &tenant.schema, entry).await?;
    Ok(())
}

fn tenant(ctx: &TenantContext) -> Result<&Tenant, ClaimsError> {
    ctx.tenant.as_ref().ok_or(ClaimsError::PermissionDenied(
        "this method acts within an organization",
    ))
}

#[async_trait]
impl ClaimsApi for PgClaims {
    async fn create_property(
        &self,
        ctx: &TenantContext,
        fields: PropertyFields,
    ) -> Result<Property, ClaimsError> {
        let tenant = tenant(ctx)?;
        fields.validate(&tenant.allowed_states, "property")?;
        let owner = ctx.principal.owner_id().map(UserId);
        self.pool
            .in_tenant(ctx, async |tx| {
                let property =
                    repository::insert(tx, tenant.org_id, Uuid::now_v7(), &fields, owner).await?;
                let summary = json!({
                    "display_name": property.fields.display_name,
                    "state": property.fields.address.state,
                    "property_type": property.fields.property_type.as_str(),
                });
                audit(
                    tx,
                    ctx,
                    tenant,
                    "claims.property.create",
                    &property,
                    summary,
                )
                .await?;
                Ok(property)
            })
            .await
    }

    async fn get_property(&self, ctx: &TenantContext, id: Uuid) -> Result<Property, ClaimsError> {
        tenant(ctx)?;
        self.pool
            .in_tenant(ctx, async |tx| {
                repository::find(tx, id).await.map_err(ClaimsError::from)
            })
            .await?
            .ok_or_else(|| ClaimsError::NotFound("property", id.to_string()))
    }

    async fn list_properties(
        &self,
        ctx: &TenantContext,
        page_size: i32,
        page_token: &str,
        state: Option<String>,
    ) -> Result<PropertyPage, ClaimsError> {
        tenant(ctx)?;
        let limit = paging::page_size(page_size)?;
        let before = paging::decode(page_token)?
            .map(|key| Uuid::parse_str(&key))
            .transpose()
            .map_err(|_| {
                FieldViolations::single("page_token", "is not a token this service issued")
            })?;
        let mut items = self
            .pool
            .in_tenant(ctx, async |tx| {
                repository::list(tx, before, state.as_deref(), limit + 1)
                    .await
                    .map_err(ClaimsError::from)
            })
            .await?;
        let next_page_token = paging::finish_page(&mut items, limit, |p| p.id.to_string());
        Ok(PropertyPage {
            items,
            next_page_token,
        })
    }

    async fn update_property(
        &self,
        ctx: &TenantContext,
        id: Uuid,
        fields: PropertyFields,
        mask: PropertyMask,
    ) -> Result<Property, ClaimsError> {
        let tenant = tenant(ctx)?;
        self.pool
            .in_tenant(ctx, async |tx| {
                let current = repository::find(tx, id)
                    .await?
                    .ok_or_else(|| ClaimsError::NotFound("property", id.to_string()))?;
                let mut merged = current.fields;
                if mask.display_name {
                    merged.display_name = fields.display_name;
                }
                if mask.address {
                    merged.address = fields.address;
                }
                if mask.property_type {
                    merged.property_type = fields.property_type;
                }
                if mask.value {
                    merged.value = fields.value;
                }
                if mask.year_built {
                    merged.year_built = fields.year_built;
                }
                merged.validate(&tenant.allowed_states, "property")?;
                let property = repository::update(tx, id, &merged)
                    .await?
                    .ok_or_else(|| ClaimsError::NotFound("property", id.to_string()))?;
                let summary = json!({ "fields": mask.paths() });
                audit(
                    tx,
                    ctx,
                    tenant,
                    "claims.property.update",
                    &property,
                    summary,
                )
                .await?;
                Ok(property)
            })
            .await
    }
}
