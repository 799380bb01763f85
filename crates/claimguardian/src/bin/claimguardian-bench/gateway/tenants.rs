//! The organizations the load runs as, arranged through the gateway with
//! the public RPCs, as a customer's onboarding does: an operator creates the
//! organization and invites an admin, who accepts, signs in and records a
//! property.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use cg_context::{OrganizationId, Role, Tenant, UserId};
use cg_proto::claims::v1 as claims;
use cg_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use cg_proto::identity::v1 as identity;
use cg_proto::identity::v1::identity_service_client::IdentityServiceClient;
use cg_proto::tenancy::v1 as tenancy;
use cg_proto::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use cg_proto::r#type::v1::Money;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request};

/// The tier of every benchmark organization: the largest allowances
/// (`cg_gateway::rate_limit::tier_quota`), with the limiter on.
pub const TIER: &str = "custom";
const PASSWORD: &str = "correct horse battery staple";

/// One organization and its signed-in admin.
#[derive(Debug, Clone)]
pub struct BenchTenant {
    /// `org_<code>`'s code, sent as `x-tenant` through the gateway.
    pub code: String,
    /// The admin's access token, sent as the bearer through the gateway.
    pub access_token: String,
    pub user_id: UserId,
    /// What the gateway resolves for the admin; the direct calls carry it.
    pub tenant: Tenant,
    /// A property of the organization, read by GetProperty.
    pub property_id: String,
}

fn in_tenant<T>(code: &str, bearer: &str, message: T) -> anyhow::Result<Request<T>> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {bearer}"))?,
    );
    if !code.is_empty() {
        request
            .metadata_mut()
            .insert("x-tenant", MetadataValue::try_from(code)?);
    }
    Ok(request)
}

/// Creates `count` organizations `bench-0`… through the gateway at `gateway`.
pub async fn create(
    gateway: Channel,
    operator_key: &str,
    count: usize,
) -> anyhow::Result<Vec<BenchTenant>> {
    let mut tenancy_client = TenancyServiceClient::new(gateway.clone());
    let mut identity_client = IdentityServiceClient::new(gateway.clone());
    let mut claims_client = ClaimsServiceClient::new(gateway);
    let mut tenants = Vec::with_capacity(count);
    for i in 0..count {
        let code = format!("bench-{i}");
        let organization = create_organization(&mut tenancy_client, operator_key, &code).await?;
        let (user_id, access_token) =
            sign_in_new_admin(&mut identity_client, operator_key, &code).await?;
        let property_id = claims_client
            .create_property(in_tenant(
                &code,
                &access_token,
                claims::CreatePropertyRequest {
                    property: Some(property()),
                },
            )?)
            .await
            .context("CreateProperty")?
            .into_inner()
            .property
            .context("CreateProperty returned no property")?
            .id;
        let tenant = Tenant {
            org_id: organization.id.parse::<OrganizationId>()?,
            org_code: organization.code,
            schema: organization.schema_name,
            tier: organization.tier,
            allowed_states: organization.allowed_states,
            role: Role::Admin,
        };
        tenants.push(BenchTenant {
            code,
            access_token,
            user_id,
            tenant,
            property_id,
        });
        eprint!("\r  organizations: {}/{count}", i + 1);
    }
    eprintln!();
    Ok(tenants)
}

/// Creates one organization, retrying while the services still start.
async fn create_organization(
    client: &mut TenancyServiceClient<Channel>,
    operator_key: &str,
    code: &str,
) -> anyhow::Result<tenancy::Organization> {
    let message = tenancy::CreateOrganizationRequest {
        code: code.to_owned(),
        display_name: format!("Bench {code}"),
        primary_contact_email: "ops@bench.example".to_owned(),
        tier: TIER.to_owned(),
        allowed_states: vec!["FL".to_owned()],
        primary_state: "FL".to_owned(),
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match client
            .create_organization(in_tenant("", operator_key, message.clone())?)
            .await
        {
            Ok(response) => {
                return response
                    .into_inner()
                    .organization
                    .context("CreateOrganization returned no organization");
            }
            Err(status) if status.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(status) => anyhow::bail!("CreateOrganization {code}: {status:?}"),
        }
    }
}

/// Invites, admits and signs in an admin of `code`: its user id and access token.
async fn sign_in_new_admin(
    client: &mut IdentityServiceClient<Channel>,
    operator_key: &str,
    code: &str,
) -> anyhow::Result<(UserId, String)> {
    let email = format!("admin@{code}.example");
    let invitation = client
        .create_invitation(in_tenant(
            code,
            operator_key,
            identity::CreateInvitationRequest {
                email: email.clone(),
                role: identity::Role::Admin.into(),
            },
        )?)
        .await
        .context("CreateInvitation")?
        .into_inner();
    let user_id = client
        .accept_invitation(identity::AcceptInvitationRequest {
            token: invitation.token,
            password: PASSWORD.to_owned(),
            display_name: "Bench Admin".to_owned(),
        })
        .await
        .context("AcceptInvitation")?
        .into_inner()
        .user
        .context("AcceptInvitation returned no user")?
        .id
        .parse::<UserId>()?;
    let login = client
        .login(identity::LoginRequest {
            organization_code: code.to_owned(),
            email,
            password: PASSWORD.to_owned(),
        })
        .await
        .context("Login")?
        .into_inner();
    match login.result {
        Some(identity::login_response::Result::Tokens(tokens)) => {
            Ok((user_id, tokens.access_token))
        }
        other => anyhow::bail!("Login returned no tokens: {other:?}"),
    }
}

fn property() -> claims::Property {
    claims::Property {
        display_name: "Main residence".to_owned(),
        address: Some(claims::Address {
            line1: "1 Ocean Dr".to_owned(),
            line2: String::new(),
            city: "Miami".to_owned(),
            state: "FL".to_owned(),
            postal_code: "33139".to_owned(),
        }),
        property_type: claims::PropertyType::SingleFamily.into(),
        value: Some(Money {
            currency_code: "USD".to_owned(),
            amount: "350000.00".to_owned(),
        }),
        year_built: 1990,
        ..claims::Property::default()
    }
}
