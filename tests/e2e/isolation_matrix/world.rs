//! The organizations, people and credentials the matrix calls with,
//! arranged once through the public API.

use std::collections::{BTreeMap, BTreeSet};

use cg_context::Role;
use cg_proto::claims::v1 as claims;
use cg_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use cg_proto::identity::v1 as identity;
use cg_proto::identity::v1::identity_service_client::IdentityServiceClient;
use cg_proto::tenancy::v1 as tenancy;
use cg_proto::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use cg_testkit::TestStack;
use prost_types::FieldMask;
use tonic::transport::Channel;

use crate::fixtures::{create_organization, organization_request, property};
use crate::identity_fixtures::{as_user, join, login};

/// The organization every case aims at.
pub const HOME: &str = "home";
/// The other organization, whose people and resources must stay out of reach.
pub const RIVAL: &str = "rival";
/// An organization whose allow-list leaves out loopback, where the tests run.
pub const FENCED: &str = "fenced";
/// A suspended organization.
pub const FROZEN: &str = "frozen";

/// Names and texts of the rival's that must never appear in an answer to home.
pub const RIVAL_PROPERTY_NAME: &str = "Rival's beach house";
pub const RIVAL_LEDGER_PROPERTY_NAME: &str = "Rival's ledger house";
pub const RIVAL_STRANGER_EMAIL: &str = "stranger@rival.example";
pub const RIVAL_KEEPER_EMAIL: &str = "keeper@rival.example";
pub const RIVAL_INVITEE_EMAIL: &str = "pending@rival.example";
pub const RIVAL_KEY_NAME: &str = "rival-integration";

/// An addressable allow-list range that contains no loopback address.
const FAR_AWAY: [&str; 2] = ["203.0.113.0/24", "2001:db8::/32"];

/// A signed-in person.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub access_token: String,
}

/// Ids of the rival's resources that home must never reach.
#[derive(Debug, Clone)]
pub struct RivalResources {
    pub organization_id: String,
    pub property_id: String,
    /// A property named only by the audit probe, so that no refused call
    /// from home ever mentions it.
    pub ledger_property_id: String,
    /// The rival's open invitation, as stored before the matrix ran.
    pub invitation: identity::Invitation,
    pub api_key_id: String,
    pub api_key_secret: String,
    /// The rival admin who made all of the above; never acts in home.
    pub keeper: Session,
    /// A rival member who is nothing in home.
    pub stranger: Session,
}

/// Everything arranged before the matrix runs.
pub struct World {
    pub channel: Channel,
    pub operator_key: String,
    pub home: tenancy::Organization,
    /// Members of home signed in to home, one per role that lacks some
    /// permission a method requires.
    pub home_members: BTreeMap<Role, Session>,
    /// A member of both home and the rival, signed in to the rival.
    pub dual: Session,
    pub rival: RivalResources,
    /// An admin of [`FENCED`], signed in before the allow-list was set.
    pub fenced_admin: Session,
    /// An admin of [`FROZEN`], signed in before the suspension.
    pub frozen_admin: Session,
    /// The tier catalog, by rank.
    pub tiers: Vec<tenancy::Tier>,
    /// An organization of each tier that lacks some method's feature, by tier.
    pub tier_orgs: BTreeMap<String, String>,
}

/// The wire form of a role.
pub fn wire_role(role: Role) -> identity::Role {
    identity::Role::from_str_name(&format!("ROLE_{}", role.as_str().to_uppercase()))
        .unwrap_or_else(|| panic!("role {role} has no wire form"))
}

/// What the matrix needs to arrange: the roles and the tiers it will call with.
pub struct Needs {
    pub roles: BTreeSet<Role>,
    pub features: BTreeSet<String>,
}

async fn sign_in(stack: &TestStack, code: &str, email: &str, role: Role) -> Session {
    let user_id = join(stack, code, email, wire_role(role)).await;
    let tokens = login(stack, code, email).await;
    assert_eq!(tokens.user_id, user_id);
    Session {
        user_id,
        access_token: tokens.access_token,
    }
}

impl World {
    pub async fn arrange(stack: &TestStack, needs: &Needs) -> World {
        let tiers = TenancyServiceClient::new(stack.gateway().await)
            .list_tiers(tenancy::ListTiersRequest {})
            .await
            .expect("list tiers")
            .into_inner()
            .tiers;
        // Home has every feature a method declares, so that only the case
        // under test can refuse a call.
        let home_tier = tiers
            .iter()
            .find(|tier| needs.features.iter().all(|f| tier.features.contains(f)))
            .unwrap_or_else(|| panic!("no tier has every feature {:?}", needs.features));
        let home = create_organization(
            stack,
            organization_request(HOME, &home_tier.code, &["FL"], "FL"),
        )
        .await
        .expect("create home");
        for code in [RIVAL, FENCED, FROZEN] {
            create_organization(
                stack,
                organization_request(code, &home_tier.code, &["FL"], "FL"),
            )
            .await
            .unwrap_or_else(|status| panic!("create {code}: {status:?}"));
        }
        let mut tier_orgs = BTreeMap::new();
        for tier in &tiers {
            if needs.features.iter().any(|f| !tier.features.contains(f)) {
                let code = format!("tier-{}", tier.code);
                create_organization(
                    stack,
                    organization_request(&code, &tier.code, &["FL"], "FL"),
                )
                .await
                .unwrap_or_else(|status| panic!("create {code}: {status:?}"));
                tier_orgs.insert(tier.code.clone(), code);
            }
        }

        let members = futures::future::join_all(needs.roles.iter().map(|role| async move {
            let email = format!("{role}@{HOME}.example");
            (*role, sign_in(stack, HOME, &email, *role).await)
        }))
        .await;
        let fenced_admin = sign_in(stack, FENCED, "admin@fenced.example", Role::Admin).await;
        let frozen_admin = sign_in(stack, FROZEN, "admin@frozen.example", Role::Admin).await;
        let rival = arrange_rival(stack).await;

        // A person in both organizations, signed in to the rival.
        let dual_email = "both@rival.example";
        join(stack, HOME, dual_email, identity::Role::Admin).await;
        let dual = sign_in(stack, RIVAL, dual_email, Role::Member).await;

        fence(stack).await;
        TenancyServiceClient::new(stack.gateway().await)
            .suspend_organization(stack.as_operator(tenancy::SuspendOrganizationRequest {
                code: FROZEN.to_owned(),
                reason: "isolation matrix".to_owned(),
            }))
            .await
            .expect("suspend");

        World {
            channel: stack.gateway().await,
            operator_key: stack.operator_key.clone(),
            home,
            home_members: members.into_iter().collect(),
            dual,
            rival,
            fenced_admin,
            frozen_admin,
            tiers,
            tier_orgs,
        }
    }
}

/// The rival's people and resources, made by a rival admin.
async fn arrange_rival(stack: &TestStack) -> RivalResources {
    let organization_id = TenancyServiceClient::new(stack.gateway().await)
        .get_organization(stack.in_tenant(RIVAL, tenancy::GetOrganizationRequest {}))
        .await
        .expect("rival")
        .into_inner()
        .organization
        .expect("organization")
        .id;
    let keeper = sign_in(stack, RIVAL, RIVAL_KEEPER_EMAIL, Role::Admin).await;
    let stranger = sign_in(stack, RIVAL, RIVAL_STRANGER_EMAIL, Role::Member).await;
    let property_id = create_rival_property(stack, &keeper, RIVAL_PROPERTY_NAME).await;
    let ledger_property_id =
        create_rival_property(stack, &keeper, RIVAL_LEDGER_PROPERTY_NAME).await;
    let mut identity_client = IdentityServiceClient::new(stack.gateway().await);
    let invitation_id = identity_client
        .create_invitation(as_user(
            RIVAL,
            &keeper.access_token,
            identity::CreateInvitationRequest {
                email: RIVAL_INVITEE_EMAIL.to_owned(),
                role: identity::Role::Viewer.into(),
            },
        ))
        .await
        .expect("invite into the rival")
        .into_inner()
        .invitation
        .expect("invitation")
        .id;
    let key = identity_client
        .create_api_key(as_user(
            RIVAL,
            &keeper.access_token,
            identity::CreateApiKeyRequest {
                display_name: RIVAL_KEY_NAME.to_owned(),
                role: identity::Role::Member.into(),
                expire_time: None,
            },
        ))
        .await
        .expect("create a rival API key")
        .into_inner();
    RivalResources {
        organization_id,
        property_id,
        ledger_property_id,
        invitation: rival_invitation(stack, &invitation_id).await,
        api_key_id: key.api_key.expect("key").id,
        api_key_secret: key.secret,
        keeper,
        stranger,
    }
}

async fn create_rival_property(stack: &TestStack, keeper: &Session, name: &str) -> String {
    ClaimsServiceClient::new(stack.gateway().await)
        .create_property(as_user(
            RIVAL,
            &keeper.access_token,
            claims::CreatePropertyRequest {
                property: Some(property(name, "FL")),
            },
        ))
        .await
        .expect("create a rival property")
        .into_inner()
        .property
        .expect("property")
        .id
}

/// Sets an allow-list on [`FENCED`] that leaves out every loopback address.
async fn fence(stack: &TestStack) {
    IdentityServiceClient::new(stack.gateway().await)
        .update_security_settings(stack.in_tenant(
            FENCED,
            identity::UpdateSecuritySettingsRequest {
                security_settings: Some(identity::SecuritySettings {
                    ip_allowlist: FAR_AWAY.map(str::to_owned).to_vec(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["ip_allowlist".to_owned()],
                }),
            },
        ))
        .await
        .expect("set an allow-list without loopback");
}

/// The rival's invitation `id`, as the rival sees it.
pub async fn rival_invitation(stack: &TestStack, id: &str) -> identity::Invitation {
    IdentityServiceClient::new(stack.gateway().await)
        .list_invitations(stack.in_tenant(RIVAL, identity::ListInvitationsRequest::default()))
        .await
        .expect("the rival lists its invitations")
        .into_inner()
        .invitations
        .into_iter()
        .find(|i| i.id == id)
        .expect("the rival's invitation")
}
