//! The ninth case, which the services decide: a request that names a
//! resource of another organization. The fields that name resources are
//! found in the descriptor set; each implemented method needs a probe here
//! that sends the rival's ids from home and asserts `NOT_FOUND` (or, for a
//! list filter, an empty page), never the rival's data.

use cg_proto::audit::v1 as audit;
use cg_proto::audit::v1::audit_service_client::AuditServiceClient;
use cg_proto::claims::v1 as claims;
use cg_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use cg_proto::identity::v1 as identity;
use cg_proto::identity::v1::identity_service_client::IdentityServiceClient;
use cg_proto::policy::MethodPolicy;
use cg_proto::tenancy::v1 as tenancy;
use cg_proto::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use cg_testkit::TestStack;
use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, Kind, MessageDescriptor, ReflectMessage as _, Value,
};
use prost_types::FieldMask;
use tonic::{Code, Status};

use super::world::{
    HOME, RIVAL, RIVAL_INVITEE_EMAIL, RIVAL_KEEPER_EMAIL, RIVAL_KEY_NAME,
    RIVAL_LEDGER_PROPERTY_NAME, RIVAL_PROPERTY_NAME, RIVAL_STRANGER_EMAIL, World, rival_invitation,
};
use crate::identity_fixtures::as_user;
use crate::raw_call;

/// Fields that hold an id but never name a resource the caller picks.
const NOT_REFERENCES: [(&str, &str); 5] = [
    ("owner_user_id", "set by the server from the caller"),
    ("uploaded_by_user_id", "set by the server from the caller"),
    ("invited_by_user_id", "set by the server from the caller"),
    ("created_by_user_id", "set by the server from the caller"),
    ("client_id", "an OpenID client id at the identity provider"),
];

fn names_an_id(name: &str) -> bool {
    name == "id" || name.ends_with("_id") || name.ends_with("_ids")
}

fn is_reference(name: &str) -> bool {
    names_an_id(name) && !NOT_REFERENCES.iter().any(|(field, _)| *field == name)
}

/// The request fields of a method that name a resource: top-level string
/// fields called `id` or `*_id(s)`, and those of a resource message it
/// carries (except the new resource's own `id` in a `Create…` request,
/// which the server assigns).
pub fn id_fields(pool: &DescriptorPool, policy: &MethodPolicy) -> Vec<String> {
    let method_name = policy.path.rsplit('/').next().unwrap_or_default();
    let service = pool
        .get_service_by_name(&policy.service)
        .unwrap_or_else(|| panic!("{} is not in the descriptor set", policy.service));
    let method = service
        .methods()
        .find(|m| m.name() == method_name)
        .unwrap_or_else(|| panic!("{} is not in the descriptor set", policy.path));
    let creates = method_name.starts_with("Create");
    let mut found = Vec::new();
    for field in method.input().fields() {
        match field.kind() {
            Kind::String if is_reference(field.name()) => found.push(field.name().to_owned()),
            Kind::Message(resource) if resource.full_name().starts_with("claimguardian.") => {
                for inner in resource.fields() {
                    let own_new_id = creates && inner.name() == "id";
                    if inner.kind() == Kind::String && is_reference(inner.name()) && !own_new_id {
                        found.push(format!("{}.{}", field.name(), inner.name()));
                    }
                }
            }
            _ => {}
        }
    }
    found
}

/// A request message with every field in `paths` set to `id`.
fn request_naming(input: MessageDescriptor, paths: &[String], id: &str) -> Vec<u8> {
    let mut message = DynamicMessage::new(input);
    for path in paths {
        let mut target = &mut message;
        let mut parts: Vec<&str> = path.split('.').collect();
        let leaf = parts.pop().expect("a field path has a leaf");
        for part in parts {
            let value = target
                .get_field_by_name_mut(part)
                .unwrap_or_else(|| panic!("no field {part} in {path}"));
            target = match value {
                Value::Message(inner) => inner,
                other => panic!("{path}: {part} is not a message: {other:?}"),
            };
        }
        let field = target
            .descriptor()
            .get_field_by_name(leaf)
            .unwrap_or_else(|| panic!("no field {leaf} in {path}"));
        let value = if field.is_list() {
            Value::List(vec![Value::String(id.to_owned())])
        } else {
            Value::String(id.to_owned())
        };
        target.set_field_by_name(leaf, value);
    }
    message.encode_to_vec()
}

/// Texts of the rival's that no answer to home may carry.
const RIVAL_MARKERS: [&str; 7] = [
    RIVAL,
    RIVAL_PROPERTY_NAME,
    RIVAL_LEDGER_PROPERTY_NAME,
    RIVAL_STRANGER_EMAIL,
    RIVAL_KEEPER_EMAIL,
    RIVAL_INVITEE_EMAIL,
    RIVAL_KEY_NAME,
];

/// Asserts `NOT_FOUND` with nothing of the rival's in the message or details.
#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(method: &str, answer: Result<T, Status>) {
    let status = match answer {
        Ok(value) => panic!("{method}: a rival id was served: {value:?}"),
        Err(status) => status,
    };
    assert_eq!(
        status.code(),
        Code::NotFound,
        "{method}: a rival id must be not found: {status:?}"
    );
    let text = format!(
        "{} {}",
        status.message(),
        String::from_utf8_lossy(status.details())
    );
    for marker in RIVAL_MARKERS {
        assert!(
            !text.contains(marker),
            "{method}: the refusal names the rival's {marker:?}: {status:?}"
        );
    }
}

/// Sends the rival's ids to an implemented method from home; returns the
/// fields it named, or `None` when there is no probe for the method.
pub async fn probe(stack: &TestStack, world: &World, method: &str) -> Option<Vec<&'static str>> {
    let rival = &world.rival;
    let channel = world.channel.clone();
    let mut claims_client = ClaimsServiceClient::new(channel.clone());
    let mut identity_client = IdentityServiceClient::new(channel.clone());
    let mut tenancy_client = TenancyServiceClient::new(channel.clone());
    let mask = |path: &str| {
        Some(FieldMask {
            paths: vec![path.to_owned()],
        })
    };
    let covered = match method {
        "GetProperty" => {
            let answer = claims_client
                .get_property(stack.in_tenant(
                    HOME,
                    claims::GetPropertyRequest {
                        id: rival.property_id.clone(),
                    },
                ))
                .await;
            assert_not_found(method, answer);
            vec!["id"]
        }
        "UpdateProperty" => {
            let answer = claims_client
                .update_property(stack.in_tenant(
                    HOME,
                    claims::UpdatePropertyRequest {
                        property: Some(claims::Property {
                            id: rival.property_id.clone(),
                            display_name: "Taken by home".to_owned(),
                            ..Default::default()
                        }),
                        update_mask: mask("display_name"),
                    },
                ))
                .await;
            assert_not_found(method, answer);
            vec!["property.id"]
        }
        "GetUser" => {
            let answer = identity_client
                .get_user(stack.in_tenant(
                    HOME,
                    identity::GetUserRequest {
                        id: rival.stranger.user_id.clone(),
                    },
                ))
                .await;
            assert_not_found(method, answer);
            vec!["id"]
        }
        "UpdateUser" => {
            let (_, member) = world
                .home_members
                .iter()
                .next()
                .expect("home has signed-in members");
            let answer = identity_client
                .update_user(as_user(
                    HOME,
                    &member.access_token,
                    identity::UpdateUserRequest {
                        user: Some(identity::User {
                            id: rival.stranger.user_id.clone(),
                            display_name: "Renamed by home".to_owned(),
                            ..Default::default()
                        }),
                        update_mask: mask("display_name"),
                    },
                ))
                .await;
            assert_not_found(method, answer);
            vec!["user.id"]
        }
        "UpdateMembership" => {
            let rival_member = identity_client
                .update_membership(stack.in_tenant(
                    HOME,
                    identity::UpdateMembershipRequest {
                        membership: Some(identity::Membership {
                            user_id: rival.stranger.user_id.clone(),
                            role: identity::Role::Owner.into(),
                            ..Default::default()
                        }),
                        update_mask: mask("role"),
                    },
                ))
                .await;
            assert_not_found(method, rival_member);
            // A home member, but the membership named is the rival's.
            let rival_membership = identity_client
                .update_membership(stack.in_tenant(
                    HOME,
                    identity::UpdateMembershipRequest {
                        membership: Some(identity::Membership {
                            organization_id: rival.organization_id.clone(),
                            user_id: world.dual.user_id.clone(),
                            role: identity::Role::Owner.into(),
                            ..Default::default()
                        }),
                        update_mask: mask("role"),
                    },
                ))
                .await;
            assert_not_found(method, rival_membership);
            vec!["membership.user_id", "membership.organization_id"]
        }
        "RemoveMembership" => {
            let answer = identity_client
                .remove_membership(stack.in_tenant(
                    HOME,
                    identity::RemoveMembershipRequest {
                        user_id: rival.stranger.user_id.clone(),
                    },
                ))
                .await;
            assert_not_found(method, answer);
            vec!["user_id"]
        }
        "ResendInvitation" => {
            let answer = identity_client
                .resend_invitation(stack.in_tenant(
                    HOME,
                    identity::ResendInvitationRequest {
                        id: rival.invitation.id.clone(),
                    },
                ))
                .await;
            assert_not_found(method, answer);
            vec!["id"]
        }
        "RevokeInvitation" => {
            let answer = identity_client
                .revoke_invitation(stack.in_tenant(
                    HOME,
                    identity::RevokeInvitationRequest {
                        id: rival.invitation.id.clone(),
                    },
                ))
                .await;
            assert_not_found(method, answer);
            vec!["id"]
        }
        "RevokeApiKey" => {
            let answer = identity_client
                .revoke_api_key(stack.in_tenant(
                    HOME,
                    identity::RevokeApiKeyRequest {
                        id: rival.api_key_id.clone(),
                    },
                ))
                .await;
            assert_not_found(method, answer);
            vec!["id"]
        }
        "CheckPermission" => {
            let answer = identity_client
                .check_permission(stack.in_tenant(
                    HOME,
                    identity::CheckPermissionRequest {
                        permission: "properties.read".to_owned(),
                        user_id: rival.stranger.user_id.clone(),
                    },
                ))
                .await;
            assert_not_found(method, answer);
            vec!["user_id"]
        }
        "UpdateOrganization" => {
            let answer = tenancy_client
                .update_organization(stack.in_tenant(
                    HOME,
                    tenancy::UpdateOrganizationRequest {
                        organization: Some(tenancy::Organization {
                            id: rival.organization_id.clone(),
                            display_name: "Taken by home".to_owned(),
                            ..Default::default()
                        }),
                        update_mask: mask("display_name"),
                    },
                ))
                .await;
            assert_not_found(method, answer);
            vec!["organization.id"]
        }
        "ListAuditEntries" => {
            // Filters, not lookups: home's page must be empty, while the
            // rival's own page shows the filter does find these ids.
            let mut audit_client = AuditServiceClient::new(channel.clone());
            let by_actor = audit::ListAuditEntriesRequest {
                actor_id: rival.keeper.user_id.clone(),
                ..Default::default()
            };
            let by_resource = audit::ListAuditEntriesRequest {
                resource_id: rival.ledger_property_id.clone(),
                ..Default::default()
            };
            for filter in [by_actor, by_resource] {
                let in_rival = audit_client
                    .list_audit_entries(stack.in_tenant(RIVAL, filter.clone()))
                    .await
                    .expect("the rival reads its own log")
                    .into_inner();
                assert!(
                    !in_rival.audit_entries.is_empty(),
                    "{method}: the filter {filter:?} finds nothing even in the rival"
                );
                let in_home = audit_client
                    .list_audit_entries(stack.in_tenant(HOME, filter.clone()))
                    .await
                    .expect("home reads its own log")
                    .into_inner();
                assert!(
                    in_home.audit_entries.is_empty() && in_home.next_page_token.is_empty(),
                    "{method}: the rival's entries reached home: {in_home:?}"
                );
            }
            vec!["actor_id", "resource_id"]
        }
        _ => return None,
    };
    Some(covered)
}

/// For a method with id fields and no probe: it must still be
/// unimplemented, so implementing it without adding a probe fails the
/// matrix. The call names the rival's property in every id field.
pub async fn assert_awaiting_implementation(
    stack: &TestStack,
    world: &World,
    pool: &DescriptorPool,
    policy: &MethodPolicy,
    fields: &[String],
) {
    let method_name = policy.path.rsplit('/').next().unwrap_or_default();
    let input = pool
        .get_service_by_name(&policy.service)
        .and_then(|s| s.methods().find(|m| m.name() == method_name))
        .expect("method in the descriptor set")
        .input();
    let body = request_naming(input, fields, &world.rival.property_id);
    let answer = raw_call::unary(
        world.channel.clone(),
        &policy.path,
        stack.in_tenant(HOME, body),
    )
    .await;
    let status = answer.expect_err(&format!(
        "{} answered a request naming rival ids: add a probe for it to `probe`",
        policy.path
    ));
    assert_eq!(
        status.code(),
        Code::Unimplemented,
        "{} is implemented but has no cross-organization probe for {fields:?}: add one to `probe` ({status:?})",
        policy.path
    );
}

/// After every probe: the rival's resources are as the rival left them.
pub async fn assert_rival_untouched(stack: &TestStack, world: &World) {
    let rival = &world.rival;
    let channel = world.channel.clone();
    let property = ClaimsServiceClient::new(channel.clone())
        .get_property(stack.in_tenant(
            RIVAL,
            claims::GetPropertyRequest {
                id: rival.property_id.clone(),
            },
        ))
        .await
        .expect("the rival reads its property")
        .into_inner()
        .property
        .expect("property");
    assert_eq!(property.display_name, RIVAL_PROPERTY_NAME);

    let organization = TenancyServiceClient::new(channel.clone())
        .get_organization(stack.in_tenant(RIVAL, tenancy::GetOrganizationRequest {}))
        .await
        .expect("the rival reads itself")
        .into_inner()
        .organization
        .expect("organization");
    assert_eq!(organization.display_name, format!("{RIVAL} Insurance"));

    let mut identity_client = IdentityServiceClient::new(channel);
    let stranger = identity_client
        .get_user(stack.in_tenant(
            RIVAL,
            identity::GetUserRequest {
                id: rival.stranger.user_id.clone(),
            },
        ))
        .await
        .expect("the rival reads its member")
        .into_inner()
        .user
        .expect("user");
    assert_eq!(stranger.display_name, RIVAL_STRANGER_EMAIL);

    let memberships = identity_client
        .list_memberships(stack.in_tenant(RIVAL, identity::ListMembershipsRequest::default()))
        .await
        .expect("the rival lists its members")
        .into_inner()
        .memberships;
    let role_of = |user: &str| {
        memberships
            .iter()
            .find(|m| m.user_id == user)
            .map(|m| (m.role, m.status))
    };
    let active = identity::MembershipStatus::Active.into();
    assert_eq!(
        role_of(&rival.stranger.user_id),
        Some((identity::Role::Member.into(), active))
    );
    assert_eq!(
        role_of(&world.dual.user_id),
        Some((identity::Role::Member.into(), active))
    );

    // The probe that named the rival's membership must not have touched home's either.
    let home_memberships = identity_client
        .list_memberships(stack.in_tenant(HOME, identity::ListMembershipsRequest::default()))
        .await
        .expect("home lists its members")
        .into_inner()
        .memberships;
    let dual_at_home = home_memberships
        .iter()
        .find(|m| m.user_id == world.dual.user_id)
        .map(|m| (m.role, m.status));
    assert_eq!(dual_at_home, Some((identity::Role::Admin.into(), active)));

    let invitation = rival_invitation(stack, &rival.invitation.id).await;
    assert_eq!(
        invitation, rival.invitation,
        "the rival's invitation is still open, neither renewed nor revoked"
    );

    let keys = identity_client
        .list_api_keys(stack.in_tenant(
            RIVAL,
            identity::ListApiKeysRequest {
                show_revoked: true,
                ..Default::default()
            },
        ))
        .await
        .expect("the rival lists its keys")
        .into_inner()
        .api_keys;
    let key = keys
        .iter()
        .find(|k| k.id == rival.api_key_id)
        .expect("the rival's key");
    assert_eq!(key.revoke_time, None, "{key:?}");
}
