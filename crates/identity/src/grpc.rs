//! The tonic adapter: wire ↔ domain conversions around [`IdentityApi`].

use std::sync::Arc;
use std::time::SystemTime;

use cg_context::{Role, UserId, context_of};
use cg_proto::identity::v1 as pb;
use cg_proto::identity::v1::identity_service_server::IdentityService;
use cg_status::FieldViolations;
use prost_types::Timestamp;
use tonic::{Request, Response, Status};

use crate::api_keys::ApiKey;
use crate::model::{Invitation, InvitationStatus, Membership, MembershipStatus};
use crate::security::SecuritySettings;
use crate::service::{IdentityApi, LoginOutcome, MembershipChange};
use crate::sessions::IssuedSession;
use crate::sso::{SsoConfig, SsoConfigInput};
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

fn tokens_to_wire(session: IssuedSession) -> pb::SessionTokens {
    let expires_in = (session.access_expires_at - chrono::Utc::now())
        .num_seconds()
        .max(0);
    pb::SessionTokens {
        access_token: session.access_token,
        token_type: "Bearer".to_owned(),
        expires_in,
        expire_time: timestamp(session.access_expires_at),
        refresh_token: session.refresh_token,
        refresh_expire_time: timestamp(session.refresh_expires_at),
        user_id: session.user_id.to_string(),
        organization_code: session.organization_code,
        role: role_to_wire(session.role).into(),
        amr: session.amr,
    }
}

fn settings_to_wire(settings: SecuritySettings) -> pb::SecuritySettings {
    pb::SecuritySettings {
        require_mfa: settings.require_mfa,
        require_sso: settings.require_sso,
        ip_allowlist: settings.ip_allowlist,
        session_lifetime: Some(prost_types::Duration {
            seconds: i64::from(settings.session_minutes) * 60,
            nanos: 0,
        }),
        update_time: settings.updated_at.and_then(timestamp),
    }
}

fn api_key_to_wire(key: ApiKey) -> pb::ApiKey {
    pb::ApiKey {
        id: key.id.to_string(),
        display_name: key.display_name,
        prefix: key.prefix,
        role: role_to_wire(key.role).into(),
        created_by_user_id: key.created_by,
        create_time: timestamp(key.created_at),
        expire_time: key.expires_at.and_then(timestamp),
        last_use_time: None,
        revoke_time: key.revoked_at.and_then(timestamp),
    }
}

fn sso_to_wire(config: Option<SsoConfig>) -> pb::SsoConfiguration {
    match config {
        None => pb::SsoConfiguration::default(),
        Some(config) => pb::SsoConfiguration {
            enabled: true,
            issuer_url: config.issuer_url,
            client_id: config.client_id,
            // Input only: never sent back.
            client_secret: String::new(),
            client_secret_set: true,
            scopes: vec![
                "openid".to_owned(),
                "email".to_owned(),
                "profile".to_owned(),
            ],
            allowed_email_domains: config.allowed_email_domains,
            jit_provisioning: true,
            jit_default_role: role_to_wire(config.default_role).into(),
            update_time: timestamp(config.updated_at),
            ..Default::default()
        },
    }
}

fn invitation_to_wire(invitation: Invitation) -> pb::Invitation {
    let status = match invitation.status {
        InvitationStatus::Pending => pb::InvitationStatus::Pending,
        InvitationStatus::Accepted => pb::InvitationStatus::Accepted,
        InvitationStatus::Revoked => pb::InvitationStatus::Revoked,
        InvitationStatus::Expired => pb::InvitationStatus::Expired,
    };
    pb::Invitation {
        id: invitation.id.to_string(),
        email: invitation.email,
        role: role_to_wire(invitation.role).into(),
        status: status.into(),
        invited_by_user_id: invitation.invited_by,
        expire_time: timestamp(invitation.expires_at),
        create_time: timestamp(invitation.created_at),
        ..Default::default()
    }
}

fn invitation_id(raw: &str) -> Result<uuid::Uuid, FieldViolations> {
    uuid::Uuid::parse_str(raw)
        .map_err(|_| FieldViolations::single("id", "must be an invitation id"))
}

fn user_to_wire(member: &Membership) -> pb::User {
    pb::User {
        id: member.user_id.to_string(),
        email: member.email.clone(),
        display_name: member.display_name.clone(),
        ..Default::default()
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
            invitation: Some(invitation_to_wire(invitation)),
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
        let outcome = self
            .api
            .login(ctx, &req.organization_code, &req.email, &req.password)
            .await?;
        let result = match outcome {
            LoginOutcome::Session(session) => {
                pb::login_response::Result::Tokens(tokens_to_wire(session))
            }
            LoginOutcome::Challenge(challenge) => {
                pb::login_response::Result::MfaChallenge(pb::MfaChallenge {
                    challenge_token: challenge.token,
                    methods: vec![
                        pb::MfaMethod::Totp.into(),
                        pb::MfaMethod::RecoveryCode.into(),
                    ],
                    expire_time: timestamp(challenge.expires_at),
                })
            }
        };
        Ok(Response::new(pb::LoginResponse {
            result: Some(result),
            mfa_enrollment_required: false,
        }))
    }

    async fn complete_mfa_challenge(
        &self,
        request: Request<pb::CompleteMfaChallengeRequest>,
    ) -> Result<Response<pb::CompleteMfaChallengeResponse>, Status> {
        let ctx = context_of(&request)?;
        let req = request.get_ref();
        let (totp, recovery) = match &req.code {
            Some(pb::complete_mfa_challenge_request::Code::TotpCode(code)) => {
                (Some(code.as_str()), None)
            }
            Some(pb::complete_mfa_challenge_request::Code::RecoveryCode(code)) => {
                (None, Some(code.as_str()))
            }
            None => {
                return Err(FieldViolations::single(
                    "code",
                    "a TOTP code or a recovery code is required",
                )
                .into());
            }
        };
        let (session, remaining) = self
            .api
            .complete_mfa_challenge(ctx, &req.challenge_token, totp, recovery)
            .await?;
        Ok(Response::new(pb::CompleteMfaChallengeResponse {
            tokens: Some(tokens_to_wire(session)),
            recovery_codes_remaining: remaining
                .map_or(-1, |r| i32::try_from(r).unwrap_or(i32::MAX)),
        }))
    }

    async fn refresh_token(
        &self,
        request: Request<pb::RefreshTokenRequest>,
    ) -> Result<Response<pb::RefreshTokenResponse>, Status> {
        let ctx = context_of(&request)?;
        let session = self
            .api
            .refresh(ctx, &request.get_ref().refresh_token)
            .await?;
        Ok(Response::new(pb::RefreshTokenResponse {
            tokens: Some(tokens_to_wire(session)),
        }))
    }

    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        self.api.logout(context_of(&request)?).await?;
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn enroll_totp(
        &self,
        request: Request<pb::EnrollTotpRequest>,
    ) -> Result<Response<pb::EnrollTotpResponse>, Status> {
        let (secret, otpauth_uri) = self.api.enroll_totp(context_of(&request)?).await?;
        Ok(Response::new(pb::EnrollTotpResponse {
            secret,
            otpauth_uri,
            expire_time: None,
        }))
    }

    async fn confirm_totp(
        &self,
        request: Request<pb::ConfirmTotpRequest>,
    ) -> Result<Response<pb::ConfirmTotpResponse>, Status> {
        let ctx = context_of(&request)?;
        let recovery_codes = self
            .api
            .confirm_totp(ctx, &request.get_ref().totp_code)
            .await?;
        Ok(Response::new(pb::ConfirmTotpResponse { recovery_codes }))
    }

    async fn get_security_settings(
        &self,
        request: Request<pb::GetSecuritySettingsRequest>,
    ) -> Result<Response<pb::GetSecuritySettingsResponse>, Status> {
        let settings = self.api.security_settings(context_of(&request)?).await?;
        Ok(Response::new(pb::GetSecuritySettingsResponse {
            security_settings: Some(settings_to_wire(settings)),
        }))
    }

    async fn update_security_settings(
        &self,
        request: Request<pb::UpdateSecuritySettingsRequest>,
    ) -> Result<Response<pb::UpdateSecuritySettingsResponse>, Status> {
        let ctx = context_of(&request)?;
        let req = request.get_ref();
        let wanted = req
            .security_settings
            .clone()
            .ok_or_else(|| FieldViolations::single("security_settings", "is required"))?;
        let mask = req
            .update_mask
            .as_ref()
            .ok_or_else(|| FieldViolations::single("update_mask", "is required"))?;
        if mask.paths.is_empty() {
            return Err(FieldViolations::single("update_mask", "names no field").into());
        }
        let mut settings = self.api.security_settings(ctx).await?;
        for path in &mask.paths {
            match path.as_str() {
                "require_mfa" => settings.require_mfa = wanted.require_mfa,
                "require_sso" => settings.require_sso = wanted.require_sso,
                "ip_allowlist" => settings.ip_allowlist = wanted.ip_allowlist.clone(),
                "session_lifetime" => {
                    let seconds = wanted.session_lifetime.map_or(0, |d| d.seconds);
                    settings.session_minutes = i32::try_from(seconds / 60).unwrap_or(0);
                }
                other => {
                    return Err(FieldViolations::single(
                        "update_mask",
                        format!("`{other}` cannot be updated"),
                    )
                    .into());
                }
            }
        }
        let stored = self.api.update_security_settings(ctx, settings).await?;
        Ok(Response::new(pb::UpdateSecuritySettingsResponse {
            security_settings: Some(settings_to_wire(stored)),
        }))
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        let ctx = context_of(&request)?;
        let req = request.get_ref();
        let role = role_from_wire(req.role, "role")?;
        let expires_at = req
            .expire_time
            .map(|t| {
                chrono::DateTime::from_timestamp(t.seconds, 0)
                    .filter(|at| *at > chrono::Utc::now())
                    .ok_or_else(|| FieldViolations::single("expire_time", "must be in the future"))
            })
            .transpose()?;
        let (key, secret) = self
            .api
            .create_api_key(ctx, &req.display_name, role, expires_at)
            .await?;
        Ok(Response::new(pb::CreateApiKeyResponse {
            api_key: Some(api_key_to_wire(key)),
            secret,
        }))
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let ctx = context_of(&request)?;
        let keys = self
            .api
            .list_api_keys(ctx, request.get_ref().show_revoked)
            .await?;
        Ok(Response::new(pb::ListApiKeysResponse {
            api_keys: keys.into_iter().map(api_key_to_wire).collect(),
            next_page_token: String::new(),
        }))
    }

    async fn revoke_api_key(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyResponse>, Status> {
        let ctx = context_of(&request)?;
        let id = request
            .get_ref()
            .id
            .parse()
            .map_err(|_| FieldViolations::single("id", "must be an API key id"))?;
        let key = self.api.revoke_api_key(ctx, id).await?;
        Ok(Response::new(pb::RevokeApiKeyResponse {
            api_key: Some(api_key_to_wire(key)),
        }))
    }

    async fn get_sso_configuration(
        &self,
        request: Request<pb::GetSsoConfigurationRequest>,
    ) -> Result<Response<pb::GetSsoConfigurationResponse>, Status> {
        let config = self.api.sso_configuration(context_of(&request)?).await?;
        Ok(Response::new(pb::GetSsoConfigurationResponse {
            sso_configuration: Some(sso_to_wire(config)),
        }))
    }

    async fn update_sso_configuration(
        &self,
        request: Request<pb::UpdateSsoConfigurationRequest>,
    ) -> Result<Response<pb::UpdateSsoConfigurationResponse>, Status> {
        let ctx = context_of(&request)?;
        let req = request.get_ref();
        let wanted = req
            .sso_configuration
            .clone()
            .ok_or_else(|| FieldViolations::single("sso_configuration", "is required"))?;
        let mask = req
            .update_mask
            .as_ref()
            .ok_or_else(|| FieldViolations::single("update_mask", "is required"))?;
        if mask.paths.is_empty() {
            return Err(FieldViolations::single("update_mask", "names no field").into());
        }
        let current = self.api.sso_configuration(ctx).await?;
        let mut input = SsoConfigInput {
            issuer_url: current
                .as_ref()
                .map(|c| c.issuer_url.clone())
                .unwrap_or_default(),
            client_id: current
                .as_ref()
                .map(|c| c.client_id.clone())
                .unwrap_or_default(),
            client_secret: None,
            allowed_email_domains: current
                .as_ref()
                .map(|c| c.allowed_email_domains.clone())
                .unwrap_or_default(),
            default_role: current
                .as_ref()
                .map_or(Role::Member, |c| c.default_role)
                .as_str()
                .to_owned(),
        };
        for path in &mask.paths {
            match path.as_str() {
                "issuer_url" => input.issuer_url = wanted.issuer_url.clone(),
                "client_id" => input.client_id = wanted.client_id.clone(),
                "client_secret" => input.client_secret = Some(wanted.client_secret.clone()),
                "allowed_email_domains" => {
                    input.allowed_email_domains = wanted.allowed_email_domains.clone()
                }
                "jit_default_role" => {
                    input.default_role = role_from_wire(
                        wanted.jit_default_role,
                        "sso_configuration.jit_default_role",
                    )?
                    .as_str()
                    .to_owned();
                }
                other => {
                    return Err(FieldViolations::single(
                        "update_mask",
                        format!("`{other}` cannot be updated"),
                    )
                    .into());
                }
            }
        }
        let stored = self.api.update_sso_configuration(ctx, input).await?;
        Ok(Response::new(pb::UpdateSsoConfigurationResponse {
            sso_configuration: Some(sso_to_wire(Some(stored))),
        }))
    }

    async fn start_sso(
        &self,
        request: Request<pb::StartSsoRequest>,
    ) -> Result<Response<pb::StartSsoResponse>, Status> {
        let ctx = context_of(&request)?;
        let started = self
            .api
            .start_sso(ctx, &request.get_ref().organization_code)
            .await?;
        Ok(Response::new(pb::StartSsoResponse {
            authorization_url: started.authorization_url,
            state: started.state,
            expire_time: timestamp(started.expires_at),
        }))
    }

    async fn complete_sso(
        &self,
        request: Request<pb::CompleteSsoRequest>,
    ) -> Result<Response<pb::CompleteSsoResponse>, Status> {
        let ctx = context_of(&request)?;
        let req = request.get_ref();
        let (session, provisioned) = self.api.complete_sso(ctx, &req.state, &req.code).await?;
        Ok(Response::new(pb::CompleteSsoResponse {
            tokens: Some(tokens_to_wire(session)),
            provisioned,
        }))
    }

    async fn resend_invitation(
        &self,
        request: Request<pb::ResendInvitationRequest>,
    ) -> Result<Response<pb::ResendInvitationResponse>, Status> {
        let ctx = context_of(&request)?;
        let id = invitation_id(&request.get_ref().id)?;
        let (invitation, token) = self.api.resend_invitation(ctx, id).await?;
        Ok(Response::new(pb::ResendInvitationResponse {
            invitation: Some(invitation_to_wire(invitation)),
            token,
        }))
    }

    async fn revoke_invitation(
        &self,
        request: Request<pb::RevokeInvitationRequest>,
    ) -> Result<Response<pb::RevokeInvitationResponse>, Status> {
        let ctx = context_of(&request)?;
        let id = invitation_id(&request.get_ref().id)?;
        let invitation = self.api.revoke_invitation(ctx, id).await?;
        Ok(Response::new(pb::RevokeInvitationResponse {
            invitation: Some(invitation_to_wire(invitation)),
        }))
    }

    async fn list_invitations(
        &self,
        request: Request<pb::ListInvitationsRequest>,
    ) -> Result<Response<pb::ListInvitationsResponse>, Status> {
        let ctx = context_of(&request)?;
        let wanted = request.get_ref().status;
        let invitations = self.api.list_invitations(ctx).await?;
        Ok(Response::new(pb::ListInvitationsResponse {
            invitations: invitations
                .into_iter()
                .map(invitation_to_wire)
                .filter(|i| wanted == 0 || i.status == wanted)
                .collect(),
            next_page_token: String::new(),
        }))
    }

    async fn get_current_user(
        &self,
        request: Request<pb::GetCurrentUserRequest>,
    ) -> Result<Response<pb::GetCurrentUserResponse>, Status> {
        let member = self.api.current_member(context_of(&request)?).await?;
        let permissions = cg_context::Permission::ALL
            .into_iter()
            .filter(|p| member.role.has(*p))
            .map(|p| p.as_str().to_owned())
            .collect();
        Ok(Response::new(pb::GetCurrentUserResponse {
            user: Some(pb::User {
                id: member.user_id.to_string(),
                email: member.email.clone(),
                display_name: member.display_name.clone(),
                ..Default::default()
            }),
            membership: Some(member.into()),
            permissions,
        }))
    }

    async fn check_permission(
        &self,
        request: Request<pb::CheckPermissionRequest>,
    ) -> Result<Response<pb::CheckPermissionResponse>, Status> {
        let ctx = context_of(&request)?;
        let req = request.get_ref();
        let user = if req.user_id.is_empty() {
            None
        } else {
            Some(user_id(&req.user_id, "user_id")?)
        };
        let (allowed, role) = self
            .api
            .check_permission(ctx, &req.permission, user)
            .await?;
        Ok(Response::new(pb::CheckPermissionResponse {
            allowed,
            role: role_to_wire(role).into(),
        }))
    }

    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        let ctx = context_of(&request)?;
        let req = request.get_ref();
        self.api
            .change_password(ctx, &req.current_password, &req.new_password)
            .await?;
        Ok(Response::new(pb::ChangePasswordResponse {}))
    }

    async fn disable_totp(
        &self,
        request: Request<pb::DisableTotpRequest>,
    ) -> Result<Response<pb::DisableTotpResponse>, Status> {
        let ctx = context_of(&request)?;
        let req = request.get_ref();
        self.api.disable_totp(ctx, &req.password, &req.code).await?;
        Ok(Response::new(pb::DisableTotpResponse {}))
    }

    async fn regenerate_recovery_codes(
        &self,
        request: Request<pb::RegenerateRecoveryCodesRequest>,
    ) -> Result<Response<pb::RegenerateRecoveryCodesResponse>, Status> {
        let ctx = context_of(&request)?;
        let recovery_codes = self
            .api
            .regenerate_recovery_codes(ctx, &request.get_ref().totp_code)
            .await?;
        Ok(Response::new(pb::RegenerateRecoveryCodesResponse {
            recovery_codes,
        }))
    }

    async fn list_my_organizations(
        &self,
        request: Request<pb::ListMyOrganizationsRequest>,
    ) -> Result<Response<pb::ListMyOrganizationsResponse>, Status> {
        let memberships = self.api.my_memberships(context_of(&request)?).await?;
        Ok(Response::new(pb::ListMyOrganizationsResponse {
            memberships: memberships.into_iter().map(Into::into).collect(),
        }))
    }

    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::GetUserResponse>, Status> {
        let ctx = context_of(&request)?;
        let wanted = user_id(&request.get_ref().id, "id")?;
        // People are visible through their membership of this organization only.
        let member = self
            .api
            .list_memberships(ctx)
            .await?
            .into_iter()
            .find(|m| m.user_id == wanted)
            .ok_or_else(|| cg_status::not_found("user", wanted))?;
        Ok(Response::new(pb::GetUserResponse {
            user: Some(user_to_wire(&member)),
        }))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let ctx = context_of(&request)?;
        let prefix = request.get_ref().prefix.to_lowercase();
        let users = self
            .api
            .list_memberships(ctx)
            .await?
            .iter()
            .filter(|m| {
                m.email.starts_with(&prefix) || m.display_name.to_lowercase().starts_with(&prefix)
            })
            .map(user_to_wire)
            .collect();
        Ok(Response::new(pb::ListUsersResponse {
            users,
            next_page_token: String::new(),
        }))
    }

    async fn update_user(
        &self,
        request: Request<pb::UpdateUserRequest>,
    ) -> Result<Response<pb::UpdateUserResponse>, Status> {
        let ctx = context_of(&request)?;
        let req = request.get_ref();
        let user = req
            .user
            .as_ref()
            .ok_or_else(|| FieldViolations::single("user", "is required"))?;
        let mask = req
            .update_mask
            .as_ref()
            .ok_or_else(|| FieldViolations::single("update_mask", "is required"))?;
        // One's own profile only: another person's id finds nothing, as
        // GetUser would for someone outside the organization.
        if !user.id.is_empty() {
            let named = user_id(&user.id, "user.id")?;
            if Some(named) != ctx.principal.user_id() {
                return Err(cg_status::not_found("user", named));
            }
        }
        if mask.paths.iter().any(|p| p != "display_name") || mask.paths.is_empty() {
            return Err(FieldViolations::single(
                "update_mask",
                "only `display_name` can be updated",
            )
            .into());
        }
        let member = self.api.update_own_profile(ctx, &user.display_name).await?;
        Ok(Response::new(pb::UpdateUserResponse {
            user: Some(user_to_wire(&member)),
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
        // Memberships of another organization are not found from this one.
        let own = ctx.tenant.as_ref().map(|tenant| tenant.org_id);
        if !membership.organization_id.is_empty() && membership.organization_id.parse().ok() != own
        {
            return Err(cg_status::not_found("membership of user", user));
        }
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
