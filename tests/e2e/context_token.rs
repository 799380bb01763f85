//! The internal context token: services accept only what the gateway signed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cg_context::{MeshKey, TenantContext};
use cg_proto::claims::v1 as claims;
use cg_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use cg_proto::tenancy::v1 as tenancy;
use cg_proto::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use cg_testkit::TestStack;
use claimguardian::platform::ServiceKind;
use tonic::{Code, Request};

use crate::assertions::assert_code;
use crate::fixtures::{claims_client, create_enterprise, create_property, property};

fn with_context<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("x-cg-context", token.parse().expect("ascii token"));
    request
}

fn operator_context() -> TenantContext {
    TenantContext::operator(cg_context::ApiKeyId::new())
}

#[tokio::test]
async fn a_direct_call_without_a_valid_context_token_is_unauthenticated() {
    let stack = TestStack::spawn().await;
    let mut direct = TenancyServiceClient::new(stack.service(ServiceKind::Tenancy).await);

    let none = direct
        .list_organizations(tenancy::ListOrganizationsRequest::default())
        .await;
    assert_code(none, Code::Unauthenticated);

    let forged = MeshKey::generate().mint(&operator_context(), Duration::from_secs(60));
    let other_key = direct
        .list_organizations(with_context(
            tenancy::ListOrganizationsRequest::default(),
            &forged,
        ))
        .await;
    assert_code(other_key, Code::Unauthenticated);

    let an_hour_ago = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        - 3600;
    let expired = stack
        .mesh_key
        .mint_at(&operator_context(), an_hour_ago, Duration::from_secs(60));
    let late = direct
        .list_organizations(with_context(
            tenancy::ListOrganizationsRequest::default(),
            &expired,
        ))
        .await;
    assert_code(late, Code::Unauthenticated);

    let garbage = direct
        .list_organizations(with_context(
            tenancy::ListOrganizationsRequest::default(),
            "v1.e30.AAAA",
        ))
        .await;
    assert_code(garbage, Code::Unauthenticated);

    // The same call with a token of the mesh key is served: the refusals
    // above are about the token, not the call.
    let valid = stack
        .mesh_key
        .mint(&operator_context(), Duration::from_secs(60));
    direct
        .list_organizations(with_context(
            tenancy::ListOrganizationsRequest::default(),
            &valid,
        ))
        .await
        .expect("a valid token is accepted");

    let mut claims_direct = ClaimsServiceClient::new(stack.service(ServiceKind::Claims).await);
    let result = claims_direct
        .list_properties(claims::ListPropertiesRequest::default())
        .await;
    assert_code(result, Code::Unauthenticated);
}

#[tokio::test]
async fn a_context_token_sent_by_a_client_through_the_gateway_is_not_trusted() {
    let stack = TestStack::spawn().await;
    let a = create_enterprise(&stack, "victim").await;
    create_enterprise(&stack, "attacker").await;
    create_property(&stack, "victim", property("Victim's house", "FL"))
        .await
        .expect("create");

    // A correctly signed context for the victim tenant, sent by a client
    // with no credentials: the gateway drops it and refuses the call.
    let mut victim_ctx = operator_context();
    victim_ctx.tenant = Some(cg_context::Tenant {
        org_id: a.id.parse().expect("uuid"),
        org_code: a.code.clone(),
        schema: a.schema_name.clone(),
        tier: a.tier.clone(),
        allowed_states: a.allowed_states.clone(),
        role: cg_context::Role::Owner,
    });
    let signed = stack.mesh_key.mint(&victim_ctx, Duration::from_secs(60));
    let mut gateway = claims_client(&stack).await;
    let anonymous = gateway
        .list_properties(with_context(
            claims::ListPropertiesRequest::default(),
            &signed,
        ))
        .await;
    assert_code(anonymous, Code::Unauthenticated);

    // With real credentials for the attacker tenant, the forged context is
    // replaced by the gateway's own: the victim's rows stay invisible.
    let mut request = stack.in_tenant("attacker", claims::ListPropertiesRequest::default());
    request
        .metadata_mut()
        .insert("x-cg-context", signed.parse().expect("ascii"));
    let listed = gateway
        .list_properties(request)
        .await
        .expect("served as attacker")
        .into_inner();
    assert!(
        listed.properties.is_empty(),
        "forged context leaked: {listed:?}"
    );
}
