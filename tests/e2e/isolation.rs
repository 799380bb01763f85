//! Tenant isolation through the gateway: one organization's property is
//! invisible under another.

use cg_proto::claims::v1 as claims;
use cg_testkit::TestStack;
use prost_types::FieldMask;
use tonic::Code;

use crate::assertions::{assert_code, assert_field_violation};
use crate::fixtures::{claims_client, create_enterprise, create_property, property};

#[tokio::test]
async fn a_property_of_one_organization_is_invisible_to_another() {
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "org-a").await;
    create_enterprise(&stack, "org-b").await;
    let created = create_property(&stack, "org-a", property("Beach house", "FL"))
        .await
        .expect("create in A");
    assert_eq!(
        created.value.as_ref().map(|m| m.amount.as_str()),
        Some("350000.10")
    );
    let mut client = claims_client(&stack).await;

    let got = client
        .get_property(stack.in_tenant(
            "org-a",
            claims::GetPropertyRequest {
                id: created.id.clone(),
            },
        ))
        .await
        .expect("get in A")
        .into_inner()
        .property
        .expect("property");
    assert_eq!(got, created);
    let listed = client
        .list_properties(stack.in_tenant("org-a", claims::ListPropertiesRequest::default()))
        .await
        .expect("list in A")
        .into_inner();
    assert_eq!(listed.properties, vec![created.clone()]);

    let across = client
        .get_property(stack.in_tenant(
            "org-b",
            claims::GetPropertyRequest {
                id: created.id.clone(),
            },
        ))
        .await;
    let status = assert_code(across, Code::NotFound);
    assert!(
        !status.message().contains("org-a"),
        "the error names nothing of A: {status:?}"
    );
    let listed_b = client
        .list_properties(stack.in_tenant("org-b", claims::ListPropertiesRequest::default()))
        .await
        .expect("list in B")
        .into_inner();
    assert!(
        listed_b.properties.is_empty(),
        "B sees none of A's properties: {listed_b:?}"
    );

    let update_across = client
        .update_property(stack.in_tenant(
            "org-b",
            claims::UpdatePropertyRequest {
                property: Some(claims::Property {
                    id: created.id.clone(),
                    display_name: "Taken".to_owned(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["display_name".to_owned()],
                }),
            },
        ))
        .await;
    assert_code(update_across, Code::NotFound);
}

#[tokio::test]
async fn properties_update_by_field_mask_and_page_newest_first() {
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "pager").await;
    let mut ids = Vec::new();
    for name in ["one", "two", "three"] {
        ids.push(
            create_property(&stack, "pager", property(name, "GA"))
                .await
                .expect("create")
                .id,
        );
    }
    let mut client = claims_client(&stack).await;
    let page = client
        .list_properties(stack.in_tenant(
            "pager",
            claims::ListPropertiesRequest {
                page_size: 2,
                ..Default::default()
            },
        ))
        .await
        .expect("page 1")
        .into_inner();
    let names: Vec<&str> = page
        .properties
        .iter()
        .map(|p| p.display_name.as_str())
        .collect();
    assert_eq!(names, ["three", "two"]);
    let rest = client
        .list_properties(stack.in_tenant(
            "pager",
            claims::ListPropertiesRequest {
                page_size: 2,
                page_token: page.next_page_token,
                ..Default::default()
            },
        ))
        .await
        .expect("page 2")
        .into_inner();
    let names: Vec<&str> = rest
        .properties
        .iter()
        .map(|p| p.display_name.as_str())
        .collect();
    assert_eq!(names, ["one"]);
    assert!(rest.next_page_token.is_empty());

    let updated = client
        .update_property(stack.in_tenant(
            "pager",
            claims::UpdatePropertyRequest {
                property: Some(claims::Property {
                    id: ids[0].clone(),
                    display_name: "renamed".to_owned(),
                    year_built: 1850,
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
        .property
        .expect("property");
    assert_eq!(updated.display_name, "renamed");
    assert_eq!(
        updated.year_built, 1990,
        "fields outside the mask keep their value"
    );
    assert_eq!(
        updated.address.as_ref().map(|a| a.state.as_str()),
        Some("GA")
    );

    let moved_out = client
        .update_property(stack.in_tenant(
            "pager",
            claims::UpdatePropertyRequest {
                property: Some(claims::Property {
                    id: ids[0].clone(),
                    address: Some(claims::Address {
                        line1: "5 Main St".to_owned(),
                        city: "Austin".to_owned(),
                        state: "TX".to_owned(),
                        postal_code: "73301".to_owned(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["address".to_owned()],
                }),
            },
        ))
        .await;
    assert_field_violation(moved_out, "property.address.state");

    let bad_id = client
        .get_property(stack.in_tenant(
            "pager",
            claims::GetPropertyRequest {
                id: "not-a-uuid".to_owned(),
            },
        ))
        .await;
    assert_field_violation(bad_id, "id");
}
