//! Organizations through the gateway: creation with its own schema,
//! validation at the edge, suspension.

use cg_proto::claims::v1 as claims;
use cg_proto::tenancy::v1 as tenancy;
use cg_testkit::TestStack;
use prost_types::FieldMask;
use sqlx::Row;
use tonic::Code;

use crate::assertions::{assert_code, assert_field_violation, assert_reason};
use crate::fixtures::{
    claims_client, create_enterprise, create_organization, create_property, organization_request,
    property, tenancy_client,
};

const TENANT_TABLES: [&str; 8] = [
    "ai_usage_log",
    "audit_checkpoints",
    "audit_head",
    "audit_log",
    "claims",
    "documents",
    "policies",
    "properties",
];

#[tokio::test]
async fn each_organization_gets_its_own_schema_with_every_tenant_table_and_its_version() {
    let stack = TestStack::spawn().await;

    let a = create_enterprise(&stack, "alpha").await;
    let b = create_enterprise(&stack, "bravo-co").await;

    assert_eq!(a.schema_name, "org_alpha");
    assert_eq!(b.schema_name, "org_bravo_co");
    for org in [&a, &b] {
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
        )
        .bind(&org.schema_name)
        .fetch_all(&stack.control)
        .await
        .expect("list tables");
        let mut expected: Vec<String> = TENANT_TABLES.iter().map(|t| (*t).to_owned()).collect();
        expected.push("schema_migrations".to_owned());
        expected.sort();
        assert_eq!(tables, expected, "tables of {}", org.schema_name);

        let versions: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT version FROM {}.schema_migrations ORDER BY version",
            org.schema_name
        )))
        .fetch_all(&stack.control)
        .await
        .expect("read the schema version");
        assert_eq!(
            versions.last().copied(),
            Some(cg_db::migrate::latest_tenant_version()),
            "version of {}",
            org.schema_name
        );

        let rls: Vec<(String, bool, bool, String)> = sqlx::query_as(
            "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner)::text \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname <> 'schema_migrations' ORDER BY 1",
        )
        .bind(&org.schema_name)
        .fetch_all(&stack.control)
        .await
        .expect("read RLS flags");
        assert_eq!(rls.len(), TENANT_TABLES.len());
        for (table, enabled, forced, owner) in rls {
            assert!(
                enabled && forced,
                "{table}: RLS enabled {enabled}, forced {forced}"
            );
            assert_ne!(
                owner, "cg_app",
                "{table} must not be owned by the application role"
            );
        }
    }
}

#[tokio::test]
async fn malformed_codes_are_refused_naming_the_field() {
    let stack = TestStack::spawn().await;
    let seventy = "a".repeat(70);
    for code in [
        "Demo",
        "demo corp",
        "demo;drop",
        seventy.as_str(),
        "",
        "-demo",
        "demo_corp",
    ] {
        let result = create_organization(
            &stack,
            organization_request(code, "standard", &["FL"], "FL"),
        )
        .await;
        assert_field_violation(result, "code");
    }
    // Codes that would map to one schema: `demo-corp` and `demo_corp` both
    // give `org_demo_corp`; the second is refused.
    create_organization(
        &stack,
        organization_request("demo-corp", "standard", &["FL"], "FL"),
    )
    .await
    .expect("first code is accepted");
    let clash = create_organization(
        &stack,
        organization_request("demo_corp", "standard", &["FL"], "FL"),
    )
    .await;
    assert_field_violation(clash, "code");
}

#[tokio::test]
async fn tier_and_state_rules_are_enforced() {
    let stack = TestStack::spawn().await;

    let unknown_tier =
        create_organization(&stack, organization_request("acme", "gold", &["FL"], "FL")).await;
    assert_field_violation(unknown_tier, "tier");

    let too_many = create_organization(
        &stack,
        organization_request("acme", "standard", &["FL", "GA", "SC", "NC"], "FL"),
    )
    .await;
    assert_field_violation(too_many, "allowed_states");

    let primary_elsewhere = create_organization(
        &stack,
        organization_request("acme", "professional", &["FL", "GA"], "TX"),
    )
    .await;
    assert_field_violation(primary_elsewhere, "primary_state");

    let not_a_state = create_organization(
        &stack,
        organization_request("acme", "professional", &["FL", "XX"], "FL"),
    )
    .await;
    assert_field_violation(not_a_state, "allowed_states[1]");

    // None of the refused requests left anything behind.
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tenancy.organizations WHERE code = 'acme'")
            .fetch_one(&stack.control)
            .await
            .expect("count");
    assert_eq!(count, 0);

    create_organization(
        &stack,
        organization_request("acme", "professional", &["FL", "GA", "SC"], "GA"),
    )
    .await
    .expect("three states on Professional are allowed");
}

#[tokio::test]
async fn a_property_outside_the_allowed_states_is_refused() {
    let stack = TestStack::spawn().await;
    create_organization(
        &stack,
        organization_request("sunshine", "standard", &["FL"], "FL"),
    )
    .await
    .expect("create");
    let result = create_property(&stack, "sunshine", property("Texas ranch", "TX")).await;
    assert_field_violation(result, "property.address.state");
    create_property(&stack, "sunshine", property("Miami condo", "FL"))
        .await
        .expect("FL is allowed");
}

#[tokio::test]
async fn a_duplicate_code_already_exists() {
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "twice").await;
    let again = create_organization(
        &stack,
        organization_request("twice", "enterprise", &["FL"], "FL"),
    )
    .await;
    assert_reason(again, Code::AlreadyExists, "ALREADY_EXISTS");
}

#[tokio::test]
async fn an_unknown_tenant_is_not_found() {
    let stack = TestStack::spawn().await;
    let result = claims_client(&stack)
        .await
        .list_properties(stack.in_tenant("nobody", claims::ListPropertiesRequest::default()))
        .await;
    assert_reason(result, Code::NotFound, "TENANT_NOT_FOUND");
}

#[tokio::test]
async fn a_suspended_organization_is_refused_until_reactivated() {
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "paused").await;
    let mut client = tenancy_client(&stack).await;
    let suspended = client
        .suspend_organization(stack.as_operator(tenancy::SuspendOrganizationRequest {
            code: "paused".to_owned(),
            reason: "payment failed".to_owned(),
        }))
        .await
        .expect("suspend")
        .into_inner()
        .organization
        .expect("organization");
    assert_eq!(
        suspended.status,
        i32::from(tenancy::OrganizationStatus::Suspended)
    );
    assert_eq!(suspended.suspension_reason, "payment failed");

    let refused = claims_client(&stack)
        .await
        .list_properties(stack.in_tenant("paused", claims::ListPropertiesRequest::default()))
        .await;
    assert_reason(refused, Code::FailedPrecondition, "ORGANIZATION_SUSPENDED");

    client
        .reactivate_organization(stack.as_operator(tenancy::ReactivateOrganizationRequest {
            code: "paused".to_owned(),
        }))
        .await
        .expect("reactivate");
    claims_client(&stack)
        .await
        .list_properties(stack.in_tenant("paused", claims::ListPropertiesRequest::default()))
        .await
        .expect("served again after reactivation");
}

#[tokio::test]
async fn organization_row_and_schema_are_created_together_or_not_at_all() {
    let stack = TestStack::spawn().await;
    // A leftover object in the schema-to-be makes provisioning fail half-way.
    sqlx::raw_sql("CREATE SCHEMA org_halfway; CREATE TABLE org_halfway.properties (x int)")
        .execute(&stack.control)
        .await
        .expect("arrange a conflicting schema");

    let result = create_organization(
        &stack,
        organization_request("halfway", "standard", &["FL"], "FL"),
    )
    .await;
    let status = assert_code(result, Code::Internal);
    assert_eq!(
        status.message(),
        "internal error",
        "no internal detail leaks"
    );

    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tenancy.organizations WHERE code = 'halfway'")
            .fetch_one(&stack.control)
            .await
            .expect("count");
    assert_eq!(rows, 0, "no organization row without its schema");
    let versioned = sqlx::query("SELECT 1 FROM information_schema.tables WHERE table_schema = 'org_halfway' AND table_name = 'schema_migrations'")
        .fetch_optional(&stack.control)
        .await
        .expect("query");
    assert!(
        versioned.is_none(),
        "the failed provisioning left no version record"
    );
}

#[tokio::test]
async fn organizations_list_in_pages_and_update_by_field_mask() {
    let stack = TestStack::spawn().await;
    for code in ["org-a", "org-b", "org-c"] {
        create_enterprise(&stack, code).await;
    }
    let mut client = tenancy_client(&stack).await;
    let first = client
        .list_organizations(stack.as_operator(tenancy::ListOrganizationsRequest {
            page_size: 2,
            ..Default::default()
        }))
        .await
        .expect("page 1")
        .into_inner();
    let codes: Vec<&str> = first
        .organizations
        .iter()
        .map(|o| o.code.as_str())
        .collect();
    assert_eq!(codes, ["org-a", "org-b"]);
    assert!(!first.next_page_token.is_empty());
    let second = client
        .list_organizations(stack.as_operator(tenancy::ListOrganizationsRequest {
            page_size: 2,
            page_token: first.next_page_token,
            ..Default::default()
        }))
        .await
        .expect("page 2")
        .into_inner();
    let codes: Vec<&str> = second
        .organizations
        .iter()
        .map(|o| o.code.as_str())
        .collect();
    assert_eq!(codes, ["org-c"]);
    assert!(second.next_page_token.is_empty());

    let updated = client
        .update_organization(stack.in_tenant(
            "org-b",
            tenancy::UpdateOrganizationRequest {
                organization: Some(tenancy::Organization {
                    display_name: "Bravo Mutual".to_owned(),
                    primary_contact_email: "not changed@example.com".to_owned(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["display_name".to_owned()],
                }),
            },
        ))
        .await
        .expect("update")
        .into_inner()
        .organization
        .expect("organization");
    assert_eq!(updated.display_name, "Bravo Mutual");
    assert_eq!(
        updated.primary_contact_email, "admin@org-b.example.com",
        "fields outside the mask keep their value"
    );

    let bad_mask = client
        .update_organization(stack.in_tenant(
            "org-b",
            tenancy::UpdateOrganizationRequest {
                organization: Some(tenancy::Organization::default()),
                update_mask: Some(FieldMask {
                    paths: vec!["tier".to_owned()],
                }),
            },
        ))
        .await;
    assert_field_violation(bad_mask, "update_mask");
    let stored: String = sqlx::query("SELECT tier FROM tenancy.organizations WHERE code = 'org-b'")
        .fetch_one(&stack.control)
        .await
        .expect("read")
        .get(0);
    assert_eq!(stored, "enterprise");
}
