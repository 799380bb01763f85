//! Tier features at the gateway: a method whose feature the tier lacks is
//! refused with what a client needs for an upgrade prompt, and works on the
//! next call after the upgrade.

use cg_proto::identity::v1 as identity;
use cg_proto::identity::v1::identity_service_client::IdentityServiceClient;
use cg_proto::tenancy::v1 as tenancy;
use cg_proto::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use cg_testkit::TestStack;
use tonic::Code;
use tonic_types::StatusExt;

use crate::assertions::assert_reason;
use crate::fixtures::{create_organization, organization_request};

#[tokio::test]
async fn a_missing_feature_names_the_tier_that_has_it_and_an_upgrade_opens_it() {
    let stack = TestStack::spawn().await;
    create_organization(
        &stack,
        organization_request("basic", "standard", &["FL"], "FL"),
    )
    .await
    .expect("a Standard organization");

    let refused = IdentityServiceClient::new(stack.gateway().await)
        .get_sso_configuration(stack.in_tenant("basic", identity::GetSsoConfigurationRequest {}))
        .await;
    let status = assert_reason(refused, Code::PermissionDenied, "FEATURE_NOT_IN_TIER");
    let info = status
        .get_error_details()
        .error_info()
        .cloned()
        .expect("ErrorInfo");
    assert_eq!(
        info.metadata.get("feature").map(String::as_str),
        Some("sso")
    );
    assert_eq!(
        info.metadata.get("current_tier").map(String::as_str),
        Some("standard")
    );
    assert_eq!(
        info.metadata.get("required_tier").map(String::as_str),
        Some("enterprise")
    );

    // The same answer for user interfaces.
    let mut tenancy_client = TenancyServiceClient::new(stack.gateway().await);
    let access = tenancy_client
        .check_feature_access(stack.in_tenant(
            "basic",
            tenancy::CheckFeatureAccessRequest {
                feature: "sso".to_owned(),
            },
        ))
        .await
        .expect("check")
        .into_inner();
    assert_eq!(
        (
            access.has_access,
            access.current_tier.as_str(),
            access.required_tier.as_str()
        ),
        (false, "standard", "enterprise")
    );

    tenancy_client
        .change_organization_tier(stack.as_operator(tenancy::ChangeOrganizationTierRequest {
            code: "basic".to_owned(),
            tier: "enterprise".to_owned(),
        }))
        .await
        .expect("upgrade");
    IdentityServiceClient::new(stack.gateway().await)
        .get_sso_configuration(stack.in_tenant("basic", identity::GetSsoConfigurationRequest {}))
        .await
        .expect("the next call after the upgrade passes");
}
