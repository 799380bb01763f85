//! Tier features at the gateway: a method whose feature the tier lacks is
//! refused with what a client needs for an upgrade prompt, and works on the
//! next call after the upgrade. An operator's per-organization override
//! grants or withholds a feature whatever the tier, from the next call on.

use std::collections::BTreeMap;

use cg_proto::audit::v1 as audit;
use cg_proto::audit::v1::audit_service_client::AuditServiceClient;
use cg_proto::identity::v1 as identity;
use cg_proto::identity::v1::identity_service_client::IdentityServiceClient;
use cg_proto::tenancy::v1 as tenancy;
use cg_proto::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use cg_testkit::{TestStack, with_bearer};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use crate::assertions::{assert_code, assert_reason};
use crate::fixtures::{create_organization, organization_request};
use crate::identity_fixtures::{create_key, join, login};

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

/// Sets `code`'s override of `feature` as the operator.
async fn set_override(
    stack: &TestStack,
    code: &str,
    feature: &str,
    setting: tenancy::FeatureOverride,
) -> Result<tenancy::Organization, Status> {
    Ok(TenancyServiceClient::new(stack.gateway().await)
        .set_feature_override(stack.as_operator(tenancy::SetFeatureOverrideRequest {
            code: code.to_owned(),
            feature: feature.to_owned(),
            r#override: setting.into(),
        }))
        .await?
        .into_inner()
        .organization
        .expect("the organization is returned"))
}

/// GetSsoConfiguration, gated on `sso`, as the operator within `code`.
async fn call_sso_gated(stack: &TestStack, code: &str) -> Result<(), Status> {
    IdentityServiceClient::new(stack.gateway().await)
        .get_sso_configuration(stack.in_tenant(code, identity::GetSsoConfigurationRequest {}))
        .await
        .map(drop)
}

/// What CheckFeatureAccess says about `sso` in `code`.
async fn sso_access(stack: &TestStack, code: &str) -> (bool, String, String) {
    let access = TenancyServiceClient::new(stack.gateway().await)
        .check_feature_access(stack.in_tenant(
            code,
            tenancy::CheckFeatureAccessRequest {
                feature: "sso".to_owned(),
            },
        ))
        .await
        .expect("check")
        .into_inner();
    (access.has_access, access.current_tier, access.required_tier)
}

/// Asserts the gateway's refusal of the `sso`-gated method, with the
/// metadata a client builds its upgrade prompt from.
#[track_caller]
fn assert_sso_withheld(result: Result<(), Status>, current_tier: &str) {
    let status = assert_reason(result, Code::PermissionDenied, "FEATURE_NOT_IN_TIER");
    let info = status
        .get_error_details()
        .error_info()
        .cloned()
        .expect("ErrorInfo");
    let metadata: BTreeMap<&str, &str> = info
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        metadata,
        BTreeMap::from([
            ("feature", "sso"),
            ("current_tier", current_tier),
            ("required_tier", "enterprise"),
        ])
    );
}

/// The fields named by a BadRequest, exactly.
#[track_caller]
fn violated_fields<T: std::fmt::Debug>(result: Result<T, Status>) -> Vec<String> {
    let status = assert_code(result, Code::InvalidArgument);
    status
        .get_error_details()
        .bad_request()
        .unwrap_or_else(|| panic!("no BadRequest in {status:?}"))
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect()
}

#[tokio::test]
async fn an_override_grants_a_feature_the_tier_lacks_until_it_is_removed() {
    let stack = TestStack::spawn().await;
    create_organization(
        &stack,
        organization_request("granted", "standard", &["FL"], "FL"),
    )
    .await
    .expect("a Standard organization");
    assert_sso_withheld(call_sso_gated(&stack, "granted").await, "standard");

    let org = set_override(&stack, "granted", "sso", tenancy::FeatureOverride::Enabled)
        .await
        .expect("grant sso");
    assert_eq!(
        (org.code.as_str(), org.tier.as_str()),
        ("granted", "standard")
    );
    call_sso_gated(&stack, "granted")
        .await
        .expect("the next call has the granted feature");
    assert_eq!(
        sso_access(&stack, "granted").await,
        (true, "standard".to_owned(), "enterprise".to_owned())
    );

    // Granting it again changes nothing and still succeeds.
    let again = set_override(&stack, "granted", "sso", tenancy::FeatureOverride::Enabled)
        .await
        .expect("the same override twice");
    assert_eq!(again.update_time, org.update_time, "nothing was written");
    call_sso_gated(&stack, "granted")
        .await
        .expect("still granted");

    // Removed: the Standard tier decides again.
    set_override(
        &stack,
        "granted",
        "sso",
        tenancy::FeatureOverride::Unspecified,
    )
    .await
    .expect("remove the override");
    assert_sso_withheld(call_sso_gated(&stack, "granted").await, "standard");
    assert_eq!(
        sso_access(&stack, "granted").await,
        (false, "standard".to_owned(), "enterprise".to_owned())
    );

    // Every call is in the organization's audit trail, with what it replaced.
    let entries = AuditServiceClient::new(stack.gateway().await)
        .list_audit_entries(stack.in_tenant(
            "granted",
            audit::ListAuditEntriesRequest {
                action_prefix: "tenancy.feature_override.".to_owned(),
                ..Default::default()
            },
        ))
        .await
        .expect("list")
        .into_inner()
        .audit_entries;
    let recorded: Vec<(String, String, String)> = entries
        .iter()
        .rev()
        .map(|entry| {
            let summary = entry.summary.clone().expect("summary").fields;
            let text = |key: &str| match summary.get(key).and_then(|v| v.kind.clone()) {
                Some(prost_types::value::Kind::StringValue(text)) => text,
                other => panic!("{key}: {other:?}"),
            };
            (text("feature"), text("override"), text("previous"))
        })
        .collect();
    let expected = [
        ("sso", "enabled", "tier"),
        ("sso", "enabled", "enabled"),
        ("sso", "tier", "enabled"),
    ]
    .map(|(f, o, p)| (f.to_owned(), o.to_owned(), p.to_owned()));
    assert_eq!(recorded, expected);
    assert!(
        entries
            .iter()
            .all(|e| e.action == "tenancy.feature_override.set"),
        "{entries:?}"
    );
}

#[tokio::test]
async fn an_override_withholds_a_feature_whatever_the_tier() {
    let stack = TestStack::spawn().await;
    create_organization(
        &stack,
        organization_request("withheld", "enterprise", &["FL"], "FL"),
    )
    .await
    .expect("an Enterprise organization");
    call_sso_gated(&stack, "withheld")
        .await
        .expect("Enterprise includes sso");

    set_override(
        &stack,
        "withheld",
        "sso",
        tenancy::FeatureOverride::Disabled,
    )
    .await
    .expect("withhold sso");
    assert_sso_withheld(call_sso_gated(&stack, "withheld").await, "enterprise");
    assert_eq!(
        sso_access(&stack, "withheld").await,
        (false, "enterprise".to_owned(), "enterprise".to_owned())
    );

    // A tier change does not lift it: the override wins over any tier.
    TenancyServiceClient::new(stack.gateway().await)
        .change_organization_tier(stack.as_operator(tenancy::ChangeOrganizationTierRequest {
            code: "withheld".to_owned(),
            tier: "custom".to_owned(),
        }))
        .await
        .expect("move to Custom");
    assert_sso_withheld(call_sso_gated(&stack, "withheld").await, "custom");

    set_override(
        &stack,
        "withheld",
        "sso",
        tenancy::FeatureOverride::Unspecified,
    )
    .await
    .expect("remove the override");
    call_sso_gated(&stack, "withheld")
        .await
        .expect("the Custom tier's answer again");
    assert_eq!(
        sso_access(&stack, "withheld").await,
        (true, "custom".to_owned(), "enterprise".to_owned())
    );
}

#[tokio::test]
async fn a_feature_override_names_what_is_wrong_with_the_request() {
    let stack = TestStack::spawn().await;
    create_organization(
        &stack,
        organization_request("checked", "standard", &["FL"], "FL"),
    )
    .await
    .expect("a Standard organization");
    let mut client = TenancyServiceClient::new(stack.gateway().await);
    let request = |code: &str, feature: &str, setting: i32| {
        stack.as_operator(tenancy::SetFeatureOverrideRequest {
            code: code.to_owned(),
            feature: feature.to_owned(),
            r#override: setting,
        })
    };
    let enabled = tenancy::FeatureOverride::Enabled as i32;

    for (code, feature, setting, fields) in [
        ("", "sso", enabled, vec!["code"]),
        ("Checked!", "sso", enabled, vec!["code"]),
        ("checked", "", enabled, vec!["feature"]),
        ("checked", "Not-A-Feature", enabled, vec!["feature"]),
        // Well-formed, but not in the catalog.
        ("checked", "teleportation", enabled, vec!["feature"]),
        ("checked", "sso", 7, vec!["override"]),
        ("", "", 7, vec!["code", "feature", "override"]),
    ] {
        let answer = client
            .set_feature_override(request(code, feature, setting))
            .await;
        assert_eq!(
            violated_fields(answer),
            fields,
            "{code:?} {feature:?} {setting}"
        );
    }

    let unknown = client
        .set_feature_override(request("ghost", "sso", enabled))
        .await;
    let status = assert_reason(unknown, Code::NotFound, "TENANT_NOT_FOUND");
    let info = status
        .get_error_details()
        .error_info()
        .cloned()
        .expect("info");
    assert_eq!(
        info.metadata.get("organization").map(String::as_str),
        Some("ghost")
    );

    // Nothing was granted by any of it.
    assert_sso_withheld(call_sso_gated(&stack, "checked").await, "standard");
}

#[tokio::test]
async fn only_operators_set_feature_overrides() {
    let stack = TestStack::spawn().await;
    create_organization(
        &stack,
        organization_request("tenant", "standard", &["FL"], "FL"),
    )
    .await
    .expect("a Standard organization");
    join(
        &stack,
        "tenant",
        "owner@tenant.example",
        identity::Role::Owner,
    )
    .await;
    let owner = login(&stack, "tenant", "owner@tenant.example").await;
    let (_, api_key) = create_key(&stack, "tenant", "automation").await;
    let request = || tenancy::SetFeatureOverrideRequest {
        code: "tenant".to_owned(),
        feature: "sso".to_owned(),
        r#override: tenancy::FeatureOverride::Enabled.into(),
    };
    let mut client = TenancyServiceClient::new(stack.gateway().await);

    for credential in [owner.access_token.as_str(), api_key.as_str()] {
        // Even within its own organization.
        let mut own = with_bearer(Request::new(request()), credential);
        own.metadata_mut()
            .insert("x-tenant", "tenant".parse().expect("ascii"));
        for attempt in [with_bearer(Request::new(request()), credential), own] {
            let refused = client.set_feature_override(attempt).await;
            assert_reason(refused, Code::PermissionDenied, "OPERATOR_REQUIRED");
        }
    }
    let anonymous = client.set_feature_override(Request::new(request())).await;
    assert_reason(anonymous, Code::Unauthenticated, "UNAUTHENTICATED");

    assert_sso_withheld(call_sso_gated(&stack, "tenant").await, "standard");
    assert_eq!(
        sso_access(&stack, "tenant").await,
        (false, "standard".to_owned(), "enterprise".to_owned())
    );
}
