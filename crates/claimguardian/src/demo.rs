//! `up --demo`: an Enterprise organization `demo` (FL, GA, SC) with a few
//! properties, an operator key, and grpcurl calls ready to paste.

use std::net::SocketAddr;

use anyhow::Context as _;
use cg_claims::model::{Address, PropertyFields, PropertyType};
use cg_claims::{ClaimsApi, PgClaims};
use cg_context::{ClientInfo, RequestId, Role, Tenant, TenantContext};
use cg_db::{ControlPool, TenantPool};
use cg_identity::operator_keys;
use cg_tenancy::model::NewOrganization;
use cg_tenancy::{PgTenancy, TenancyApi, TenancyError};
use rust_decimal::Decimal;

pub const DEMO_CODE: &str = "demo";

/// What the demo seeded.
#[derive(Debug)]
pub struct DemoSeed {
    pub operator_key: String,
    pub created_organization: bool,
}

/// Creates the demo organization and its properties unless they exist, and
/// a fresh operator key (keys are shown once, so every run makes one).
pub async fn seed(control: &ControlPool, tenant_pool: &TenantPool) -> anyhow::Result<DemoSeed> {
    let key = operator_keys::create(control, "demo (claimguardian up --demo)").await?;
    let ctx = TenantContext::operator(key.id);
    let tenancy = PgTenancy::new(control.clone());
    let new = NewOrganization {
        code: DEMO_CODE.to_owned(),
        display_name: "Demo Insurance Corp".to_owned(),
        domains: vec![],
        primary_contact_email: "admin@demo-corp.com".to_owned(),
        tier: "enterprise".to_owned(),
        allowed_states: vec!["FL".to_owned(), "GA".to_owned(), "SC".to_owned()],
        primary_state: "FL".to_owned(),
        data_residency_region: String::new(),
    };
    let (org, created) = match tenancy.create_organization(&ctx, new).await {
        Ok(org) => (org, true),
        Err(TenancyError::AlreadyExists(_)) => {
            let mut tenant_ctx = ctx.clone();
            tenant_ctx.tenant = Some(lookup_tenant(control).await?);
            (tenancy.get_organization(&tenant_ctx).await?, false)
        }
        Err(error) => return Err(anyhow::anyhow!("create the demo organization: {error}")),
    };
    if created {
        let tenant_ctx = TenantContext {
            request_id: RequestId::new(),
            principal: ctx.principal.clone(),
            tenant: Some(Tenant {
                org_id: org.id,
                org_code: org.code.clone(),
                schema: org.schema_name.clone(),
                tier: org.tier.clone(),
                allowed_states: org.allowed_states.clone(),
                role: Role::Owner,
            }),
            client: ClientInfo::default(),
        };
        let claims = PgClaims::new(tenant_pool.clone());
        for (name, line1, city, state, zip, value) in [
            (
                "Beach house",
                "1 Ocean Dr",
                "Miami Beach",
                "FL",
                "33139",
                850_000,
            ),
            (
                "Atlanta office",
                "200 Peachtree St NE",
                "Atlanta",
                "GA",
                "30303",
                2_400_000,
            ),
            (
                "Charleston rental",
                "12 King St",
                "Charleston",
                "SC",
                "29401",
                460_000,
            ),
        ] {
            let fields = PropertyFields {
                display_name: name.to_owned(),
                address: Address {
                    line1: line1.to_owned(),
                    line2: String::new(),
                    city: city.to_owned(),
                    state: state.to_owned(),
                    postal_code: zip.to_owned(),
                },
                property_type: PropertyType::SingleFamily,
                value: Some(Decimal::new(value * 100, 2)),
                year_built: Some(1998),
            };
            claims
                .create_property(&tenant_ctx, fields)
                .await
                .map_err(|error| anyhow::anyhow!("seed a demo property: {error}"))?;
        }
    }
    Ok(DemoSeed {
        operator_key: key.secret_key,
        created_organization: created,
    })
}

async fn lookup_tenant(control: &ControlPool) -> anyhow::Result<Tenant> {
    let record = cg_tenancy::directory::by_code(control, DEMO_CODE)
        .await?
        .context("the demo organization vanished")?;
    Ok(Tenant {
        org_id: record.id,
        org_code: record.code,
        schema: record.schema,
        tier: record.tier,
        allowed_states: record.allowed_states,
        role: Role::Owner,
    })
}

/// Ready-to-paste grpcurl calls against the gateway.
pub fn grpcurl_calls(gateway: SocketAddr, operator_key: &str) -> Vec<String> {
    let auth = format!("-H 'authorization: Bearer {operator_key}'");
    let tenant = format!("-H 'x-tenant: {DEMO_CODE}'");
    vec![
        format!("grpcurl -plaintext {gateway} list"),
        format!(
            "grpcurl -plaintext {auth} {tenant} {gateway} claimguardian.tenancy.v1.TenancyService/GetOrganization"
        ),
        format!(
            "grpcurl -plaintext {auth} {tenant} -d '{{\"page_size\": 10}}' {gateway} claimguardian.claims.v1.ClaimsService/ListProperties"
        ),
        format!(
            "grpcurl -plaintext {auth} {tenant} -d '{{\"property\": {{\"display_name\": \"Lake cabin\", \"property_type\": \"PROPERTY_TYPE_SINGLE_FAMILY\", \"address\": {{\"line1\": \"9 Lake Rd\", \"city\": \"Orlando\", \"state\": \"FL\", \"postal_code\": \"32801\"}}, \"value\": {{\"currency_code\": \"USD\", \"amount\": \"315000.00\"}}}}}}' {gateway} claimguardian.claims.v1.ClaimsService/CreateProperty"
        ),
        format!(
            "grpcurl -plaintext {auth} {gateway} claimguardian.tenancy.v1.TenancyService/ListOrganizations"
        ),
        format!(
            "grpcurl -plaintext {auth} {tenant} -d '{{\"page_size\": 5}}' {gateway} claimguardian.audit.v1.AuditService/ListAuditEntries"
        ),
        format!(
            "grpcurl -plaintext {auth} {tenant} {gateway} claimguardian.audit.v1.AuditService/VerifyAuditChain"
        ),
    ]
}
