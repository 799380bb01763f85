//! Typed helpers that arrange state through the public API.

use cg_proto::claims::v1 as claims;
use cg_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use cg_proto::tenancy::v1 as tenancy;
use cg_proto::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use cg_proto::r#type::v1::Money;
use cg_testkit::TestStack;
use tonic::Status;
use tonic::transport::Channel;

pub async fn tenancy_client(stack: &TestStack) -> TenancyServiceClient<Channel> {
    TenancyServiceClient::new(stack.gateway().await)
}

pub async fn claims_client(stack: &TestStack) -> ClaimsServiceClient<Channel> {
    ClaimsServiceClient::new(stack.gateway().await)
}

pub fn organization_request(
    code: &str,
    tier: &str,
    states: &[&str],
    primary: &str,
) -> tenancy::CreateOrganizationRequest {
    tenancy::CreateOrganizationRequest {
        code: code.to_owned(),
        display_name: format!("{code} Insurance"),
        domains: vec![],
        primary_contact_email: format!("admin@{code}.example.com"),
        tier: tier.to_owned(),
        allowed_states: states.iter().map(|s| (*s).to_owned()).collect(),
        primary_state: primary.to_owned(),
        data_residency_region: String::new(),
    }
}

/// Creates an organization through the gateway as the operator.
pub async fn create_organization(
    stack: &TestStack,
    request: tenancy::CreateOrganizationRequest,
) -> Result<tenancy::Organization, Status> {
    let response = tenancy_client(stack)
        .await
        .create_organization(stack.as_operator(request))
        .await?;
    Ok(response
        .into_inner()
        .organization
        .expect("created organization is returned"))
}

pub async fn create_enterprise(stack: &TestStack, code: &str) -> tenancy::Organization {
    create_organization(
        stack,
        organization_request(code, "enterprise", &["FL", "GA", "SC"], "FL"),
    )
    .await
    .unwrap_or_else(|status| panic!("create {code}: {status:?}"))
}

pub fn property(name: &str, state: &str) -> claims::Property {
    claims::Property {
        display_name: name.to_owned(),
        address: Some(claims::Address {
            line1: "1 Ocean Dr".to_owned(),
            line2: String::new(),
            city: "Miami".to_owned(),
            state: state.to_owned(),
            postal_code: "33139".to_owned(),
        }),
        property_type: claims::PropertyType::SingleFamily.into(),
        value: Some(Money {
            currency_code: "USD".to_owned(),
            amount: "350000.10".to_owned(),
        }),
        year_built: 1990,
        ..claims::Property::default()
    }
}

/// Creates a property in organization `code` through the gateway.
pub async fn create_property(
    stack: &TestStack,
    code: &str,
    property: claims::Property,
) -> Result<claims::Property, Status> {
    let response = claims_client(stack)
        .await
        .create_property(stack.in_tenant(
            code,
            claims::CreatePropertyRequest {
                property: Some(property),
            },
        ))
        .await?;
    Ok(response
        .into_inner()
        .property
        .expect("created property is returned"))
}
