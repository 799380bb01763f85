//! How the gateway finds the organization: `x-tenant`, the subdomain of
//! `:authority`, or a verified custom domain.

use cg_proto::tenancy::v1 as tenancy;
use cg_proto::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use cg_testkit::TestStack;
use cg_testkit::with_bearer;
use tonic::transport::Endpoint;
use tonic::{Code, Request};

use crate::assertions::assert_reason;
use crate::fixtures::{create_organization, organization_request};

async fn client_for_authority(
    stack: &TestStack,
    authority: &str,
) -> TenancyServiceClient<tonic::transport::Channel> {
    let channel = Endpoint::from_shared(format!("http://{}", stack.gateway_addr()))
        .expect("uri")
        .origin(format!("http://{authority}").parse().expect("origin"))
        .connect()
        .await
        .expect("connect");
    TenancyServiceClient::new(channel)
}

async fn current_organization(stack: &TestStack, authority: &str) -> Result<String, tonic::Status> {
    let request = with_bearer(
        Request::new(tenancy::GetOrganizationRequest {}),
        &stack.operator_key,
    );
    let org = client_for_authority(stack, authority)
        .await
        .get_organization(request)
        .await?
        .into_inner()
        .organization
        .expect("organization");
    Ok(org.code)
}

#[tokio::test]
async fn the_tenant_comes_from_the_subdomain_or_a_verified_custom_domain() {
    let stack = TestStack::spawn().await;
    let mut request = organization_request("acme", "enterprise", &["FL"], "FL");
    request.domains = vec!["claims.acme-mutual.com".to_owned()];
    create_organization(&stack, request)
        .await
        .expect("create acme");
    create_organization(
        &stack,
        organization_request("other", "enterprise", &["FL"], "FL"),
    )
    .await
    .expect("create other");

    assert_eq!(
        current_organization(&stack, "acme.claimguardian.ai")
            .await
            .expect("subdomain"),
        "acme"
    );
    assert_eq!(
        current_organization(&stack, "other.claimguardian.ai:443")
            .await
            .expect("subdomain with port"),
        "other"
    );
    assert_eq!(
        current_organization(&stack, "claims.acme-mutual.com")
            .await
            .expect("custom domain"),
        "acme"
    );

    let unknown_domain = current_organization(&stack, "claims.nobody.com").await;
    assert_reason(unknown_domain, Code::NotFound, "TENANT_NOT_FOUND");
    let unknown_sub = current_organization(&stack, "ghost.claimguardian.ai").await;
    assert_reason(unknown_sub, Code::NotFound, "TENANT_NOT_FOUND");

    // x-tenant wins over the authority.
    let mut request = with_bearer(
        Request::new(tenancy::GetOrganizationRequest {}),
        &stack.operator_key,
    );
    request
        .metadata_mut()
        .insert("x-tenant", "other".parse().expect("ascii"));
    let org = client_for_authority(&stack, "acme.claimguardian.ai")
        .await
        .get_organization(request)
        .await
        .expect("x-tenant")
        .into_inner()
        .organization
        .expect("organization");
    assert_eq!(org.code, "other");

    // No tenant at all on a tenant method: a clear error, not a guess.
    let none = current_organization(&stack, "127.0.0.1").await;
    assert_reason(none, Code::InvalidArgument, "TENANT_REQUIRED");
}

#[tokio::test]
async fn a_domain_the_tenant_adds_does_not_route_until_verified() {
    let stack = TestStack::spawn().await;
    create_organization(
        &stack,
        organization_request("late", "enterprise", &["FL"], "FL"),
    )
    .await
    .expect("create");
    let mut client = TenancyServiceClient::new(stack.gateway().await);
    client
        .update_organization(stack.in_tenant(
            "late",
            tenancy::UpdateOrganizationRequest {
                organization: Some(tenancy::Organization {
                    domains: vec!["claims.late.com".to_owned()],
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["domains".to_owned()],
                }),
            },
        ))
        .await
        .expect("add a domain");
    let unverified = current_organization(&stack, "claims.late.com").await;
    assert_reason(unverified, Code::NotFound, "TENANT_NOT_FOUND");
}
