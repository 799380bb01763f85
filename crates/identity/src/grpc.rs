//! The tonic adapter: wire ↔ domain conversions around [`IdentityApi`].

use std::sync::Arc;
use std::time::SystemTime;

use cg_context::{Role, UserId, context_of};
use cg_proto::identity::v1 as pb;
use cg_proto::identity::v1::identity_service_server::IdentityService;
use cg_status::FieldViolations;
use prost_types::Timestamp;
use tonic::{Request, Response, Status};

use crate::model::{Membership, MembershipStatus};
use crate::service::{IdentityApi, MembershipChange};
use crate::tokens::claims::ALGORITHM;
use crate::tokens::signing::PublicJwk;

/// Serves [`IdentityService`] over any [`IdentityApi`]; methods not built
/// yet answer `UNIMPLEMENTED`.
#[derive(Debug)]
pub struct IdentityGrpc<T> {
    api: Arc<T>,
}

impl<T> IdentityGrpc<T> {
    pub fn new(api: Arc<T>) -> Self {
        IdentityGrpc { api }
    }
}

fn timestamp(time: chrono::DateTime<chrono::Utc>) -> Option<Timestamp> {
    Some(Timestamp::from(SystemTime::from(time)))
}

fn role_to_wire(role: Role) -> pb::Role {
    match role {
        Role::Owner => pb::Role::Owner,
        Role::Admin => pb::Role::Admin,
        Role::Manager => pb::Role::Manager,
        Role::Member => pb::Role::Member,
        Role::Viewer => pb::Role::Viewer,
    }
}

fn role_from_wire(raw: i32, field: &str) -> Result<Role, FieldViolations> {
    match pb::Role::try_from(raw) {
        Ok(pb::Role::Owner) => Ok(Role::Owner),
        Ok(pb::Role::Admin) => Ok(Role::Admin),
        Ok(pb::Role::Manager) => Ok(Role::Manager),
        Ok(pb::Role::Member) => Ok(Role::Member),
        Ok(pb::Role::Viewer) => Ok(Role::Viewer),
        _ => Err(FieldViolations::single(field, "must be a role")),
    }
}

fn status_to_wire(status: MembershipStatus) -> pb::MembershipStatus {
    match status {
        MembershipStatus::Invited => pb::MembershipStatus::Invited,
        MembershipStatus::Active => pb::MembershipStatus::Active,
        MembershipStatus::Suspended => pb::MembershipStatus::Suspended,
        MembershipStatus::Removed => pb::MembershipStatus::Removed,
    }
}

fn status_from_wire(raw: i32) -> Result<MembershipStatus, FieldViolations> {
    match pb::MembershipStatus::try_from(raw) {
        Ok(pb::MembershipStatus::Active) => Ok(MembershipStatus::Active),
        Ok(pb::MembershipStatus::Suspended) => Ok(MembershipStatus::Suspended),
        _ => Err(FieldViolations::single(
            "membership.status",
            "may be set to active or suspended; use RemoveMembership to remove",
        )),
    }
}

impl From<Membership> for pb::Membership {
    fn from(m: Membership) -> Self {
        pb::Membership {
            organization_id: m.organization_id.to_string(),
            user_id: m.user_id.to_string(),
            email: m.email,
            display_name: m.display_name,
            role: role_to_wire(m.role).into(),
            status: status_to_wire(m.status).into(),
            create_time: timestamp(m.created_at),
            update_time: timestamp(m.updated_at),
            ..Default::default()
        }
    }
}

impl From<PublicJwk> for pb::Jwk {
    fn from(key: PublicJwk) -> Self {
        pb::Jwk {
            kty: "OKP".to_owned(),
            kid: key.kid.clone(),
            r#use: "sig".to_owned(),
            alg: ALGORITHM.to_owned(),
            crv: "Ed25519".to_owned(),
            x: key.x(),
            ..Default::default()
        }
    }
}

fn user_id(raw: &str, field: &str) -> Result<UserId, FieldViolations> {
    raw.parse()
        .map_err(|_| FieldViolations::single(field, "must be a user id"))
}

#[tonic::async_trait]
impl<T: IdentityApi> IdentityService for IdentityGrpc<T> {
    async fn create_invitation(
        &self,
        request: Request<pb::CreateInvitationRequest>,
    ) -> Result<Response<pb::CreateInvitationResponse>, Status> {
        let ctx = context_of(&request)?;
        let req = request.get_ref();
        let role = role_from_wire(req.role, "role")?;
        let (invitation, token) = self.api.create_invitation(ctx, &req.email, role).await?;
        Ok(Response::new(pb::CreateInvitationResponse {
            invitation: Some(pb::Invitation {
                id: invitation.id.to_string(),
                email: invitation.email,
                role: role_to_wire(invitation.role).into(),
                status: pb::InvitationStatus::Pending.into(),
                send_count: 0,
                expire_time: timestamp(invitation.expires_at),
                create_time: timestamp(invitation.created_at),
                ..Default::default()
            }),
            token,
        }))
    }

    async fn accept_invitation(
        &self,
        request: Request<pb::AcceptInvitationRequest>,
    ) -> Result<Response<pb::AcceptInvitationResponse>, Status> {
        let ctx = context_of(&request)?;
        let req = request.get_ref();
        let membership = self
            .api
            .accept_invitation(ctx, &req.token, &req.password, &req.display_name)
            .await?;
        Ok(Response::new(pb::AcceptInvitationResponse {
            user: Some(pb::User {
                id: membership.user_id.to_string(),
                email: membership.email.clone(),
                display_name: membership.display_name.clone(),
                has_password: true,
                ..Default::default()
            }),
            membership: Some(membership.into()),
        }))
    }

    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let ctx = context_of(&request)?;
        let req = request.get_ref();
        let session = self
            .api
            .login(ctx, &req.organization_code, &req.email, &req.password)
            .await?;
        let expires_in = (session.expires_at - chrono::Utc::now())
            .num_seconds()
            .max(0);
        Ok(Response::new(pb::LoginResponse {
            result: Some(pb::login_response::Result::Tokens(pb::SessionTokens {
                access_token: session.access_token,
                token_type: "Bearer".to_owned(),
                expires_in,
                expire_time: timestamp(session.expires_at),
                user_id: session.user_id.to_string(),
                organization_code: session.organization_code,
                role: role_to_wire(session.role).into(),
                amr: session.amr,
                ..Default::default()
            })),
            mfa_enrollment_required: false,
        }))
    }

    async fn get_jwks(
        &self,
        _request: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        let keys = self.api.jwks().await?;
        Ok(Response::new(pb::GetJwksResponse {
            keys: keys.into_iter().map(Into::into).collect(),
        }))
    }

    async fn rotate_signing_key(
        &self,
        request: Request<pb::RotateSigningKeyRequest>,
    ) -> Result<Response<pb::RotateSigningKeyResponse>, Status> {
        let key = self.api.rotate_signing_key(context_of(&request)?).await?;
        Ok(Response::new(pb::RotateSigningKeyResponse {
            key: Some(key.into()),
            ..Default::default()
        }))
    }

    async fn list_memberships(
        &self,
        request: Request<pb::ListMembershipsRequest>,
    ) -> Result<Response<pb::ListMembershipsResponse>, Status> {
        let memberships = self.api.list_memberships(context_of(&request)?).await?;
        Ok(Response::new(pb::ListMembershipsResponse {
            memberships: memberships.into_iter().map(Into::into).collect(),
            next_page_token: String::new(),
        }))
    }

    async fn update_membership(
        &self,
        request: Request<pb::UpdateMembershipRequest>,
    ) -> Result<Response<pb::UpdateMembershipResponse>, Status> {
        let ctx = context_of(&request)?;
        let req = request.get_ref();
        let membership = req
            .membership
            .as_ref()
            .ok_or_else(|| FieldViolations::single("membership", "is required"))?;
        let mask = req
            .update_mask
            .as_ref()
            .ok_or_else(|| FieldViolations::single("update_mask", "is required"))?;
        let mut change = MembershipChange::default();
        for path in &mask.paths {
            match path.as_str() {
                "role" => change.role = Some(role_from_wire(membership.role, "membership.role")?),
                "status" => change.status = Some(status_from_wire(membership.status)?),
                other => {
                    return Err(FieldViolations::single(
                        "update_mask",
                        format!("`{other}` cannot be updated"),
                    )
                    .into());
                }
            }
        }
        if mask.paths.is_empty() {
            return Err(FieldViolations::single("update_mask", "names no field").into());
        }
        let user = user_id(&membership.user_id, "membership.user_id")?;
        let updated = self.api.update_membership(ctx, user, change).await?;
        Ok(Response::new(pb::UpdateMembershipResponse {
            membership: Some(updated.into()),
        }))
    }

    async fn remove_membership(
        &self,
        request: Request<pb::RemoveMembershipRequest>,
    ) -> Result<Response<pb::RemoveMembershipResponse>, Status> {
        let ctx = context_of(&request)?;
        let user = user_id(&request.get_ref().user_id, "user_id")?;
        let change = MembershipChange {
            role: None,
            status: Some(MembershipStatus::Removed),
        };
        let removed = self.api.update_membership(ctx, user, change).await?;
        Ok(Response::new(pb::RemoveMembershipResponse {
            membership: Some(removed.into()),
        }))
    }
}
