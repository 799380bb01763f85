//! The identity service: invitations, memberships, password sign-in and
//! the access tokens it issues.

use std::time::Duration;

use async_trait::async_trait;
use cg_audit::entry::Outcome;
use cg_audit::record::entry_for;
use cg_audit::store;
use cg_context::{ApiKeyId, OrganizationId, Principal, Role, Tenant, TenantContext, UserId};
use cg_db::{ControlPool, DbError};
use cg_status::FieldViolations;
use cg_tenancy::directory;
use chrono::Utc;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::api_keys::{self, ApiKey};
use crate::challenges;
use crate::error::IdentityError;
use crate::mfa::store as mfa_store;
use crate::model::{Invitation, InvitationStatus, Membership, MembershipStatus};
use crate::secrets::SecretBox;
use crate::security::{self, SecuritySettings};
use crate::sessions::{self, IssuedSession, Redeemed, SessionLifetimes, SessionSubject};
use crate::sso::{self, SsoClient, SsoConfig, SsoConfigInput, SsoError, StartedSso};
use crate::tokens::signing::{self, PublicJwk};
use crate::{invitations, outbox};
use crate::{password, throttle};

/// Identity settings.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// `iss` of the access tokens; the gateway expects the same.
    pub issuer: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub invitation_ttl: Duration,
    /// Where identity providers send the browser back after sign-in.
    pub sso_redirect_uri: String,
    /// How messages (invitations) are delivered.
    pub mail: crate::outbox::MailConfig,
    /// How long a rotated signing key is published before it signs; at
    /// least the gateways' JWKS refresh interval.
    pub signing_key_publish_delay: Duration,
}

/// Where providers return the browser when none is configured.
pub const DEFAULT_SSO_REDIRECT_URI: &str = "https://app.claimguardian.ai/sso/callback";

/// The issuer of access tokens when none is configured.
pub const DEFAULT_ISSUER: &str = "https://identity.claimguardian.ai";

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            issuer: DEFAULT_ISSUER.to_owned(),
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            invitation_ttl: Duration::from_secs(7 * 24 * 3600),
            sso_redirect_uri: DEFAULT_SSO_REDIRECT_URI.to_owned(),
            mail: crate::outbox::MailConfig::default(),
            signing_key_publish_delay: Duration::from_secs(60),
        }
    }
}

/// What can change about a membership.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipChange {
    pub role: Option<Role>,
    pub status: Option<MembershipStatus>,
}

#[async_trait]
pub trait IdentityApi: Send + Sync + 'static {
    async fn create_invitation(
        &self,
        ctx: &TenantContext,
        email: &str,
        role: Role,
    ) -> Result<(Invitation, String), IdentityError>;
    async fn accept_invitation(
        &self,
        ctx: &TenantContext,
        token: &str,
        password: &str,
        display_name: &str,
    ) -> Result<Membership, IdentityError>;
    async fn login(
        &self,
        ctx: &TenantContext,
        organization_code: &str,
        email: &str,
        password: &str,
    ) -> Result<LoginOutcome, IdentityError>;
    async fn complete_mfa_challenge(
        &self,
        ctx: &TenantContext,
        challenge_token: &str,
        totp_code: Option<&str>,
        recovery_code: Option<&str>,
    ) -> Result<(IssuedSession, Option<i64>), IdentityError>;
    async fn refresh(
        &self,
        ctx: &TenantContext,
        refresh_token: &str,
    ) -> Result<IssuedSession, IdentityError>;
    async fn logout(&self, ctx: &TenantContext) -> Result<(), IdentityError>;
    async fn enroll_totp(&self, ctx: &TenantContext) -> Result<(String, String), IdentityError>;
    async fn confirm_totp(
        &self,
        ctx: &TenantContext,
        code: &str,
    ) -> Result<Vec<String>, IdentityError>;
    async fn security_settings(
        &self,
        ctx: &TenantContext,
    ) -> Result<SecuritySettings, IdentityError>;
    async fn update_security_settings(
        &self,
        ctx: &TenantContext,
        settings: SecuritySettings,
    ) -> Result<SecuritySettings, IdentityError>;
    async fn create_api_key(
        &self,
        ctx: &TenantContext,
        display_name: &str,
        role: Role,
        expires_at: Option<chrono::DateTime<Utc>>,
    ) -> Result<(ApiKey, String), IdentityError>;
    async fn list_api_keys(
        &self,
        ctx: &TenantContext,
        show_revoked: bool,
    ) -> Result<Vec<ApiKey>, IdentityError>;
    async fn revoke_api_key(
        &self,
        ctx: &TenantContext,
        id: ApiKeyId,
    ) -> Result<ApiKey, IdentityError>;
    async fn sso_configuration(
        &self,
        ctx: &TenantContext,
    ) -> Result<Option<SsoConfig>, IdentityError>;
    async fn update_sso_configuration(
        &self,
        ctx: &TenantContext,
        input: SsoConfigInput,
    ) -> Result<SsoConfig, IdentityError>;
    async fn start_sso(
        &self,
        ctx: &TenantContext,
        organization_code: &str,
    ) -> Result<StartedSso, IdentityError>;
    async fn complete_sso(
        &self,
        ctx: &TenantContext,
        state: &str,
        code: &str,
    ) -> Result<(IssuedSession, bool), IdentityError>;
    async fn resend_invitation(
        &self,
        ctx: &TenantContext,
        id: Uuid,
    ) -> Result<(Invitation, String), IdentityError>;
    async fn revoke_invitation(
        &self,
        ctx: &TenantContext,
        id: Uuid,
    ) -> Result<Invitation, IdentityError>;
    async fn list_invitations(&self, ctx: &TenantContext)
    -> Result<Vec<Invitation>, IdentityError>;
    async fn current_member(&self, ctx: &TenantContext) -> Result<Membership, IdentityError>;
    async fn check_permission(
        &self,
        ctx: &TenantContext,
        permission: &str,
        user: Option<UserId>,
    ) -> Result<(bool, Role), IdentityError>;
    async fn change_password(
        &self,
        ctx: &TenantContext,
        current: &str,
        new: &str,
    ) -> Result<(), IdentityError>;
    async fn disable_totp(
        &self,
        ctx: &TenantContext,
        password: &str,
        code: &str,
    ) -> Result<(), IdentityError>;
    async fn regenerate_recovery_codes(
        &self,
        ctx: &TenantContext,
        code: &str,
    ) -> Result<Vec<String>, IdentityError>;
    async fn my_memberships(&self, ctx: &TenantContext) -> Result<Vec<Membership>, IdentityError>;
    async fn update_own_profile(
        &self,
        ctx: &TenantContext,
        display_name: &str,
    ) -> Result<Membership, IdentityError>;
    async fn jwks(&self) -> Result<Vec<PublicJwk>, IdentityError>;
    async fn rotate_signing_key(&self, ctx: &TenantContext) -> Result<PublicJwk, IdentityError>;
    async fn list_memberships(&self, ctx: &TenantContext)
    -> Result<Vec<Membership>, IdentityError>;
    async fn update_membership(
        &self,
        ctx: &TenantContext,
        user_id: UserId,
        change: MembershipChange,
    ) -> Result<Membership, IdentityError>;
}

/// Identity on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgIdentity {
    pool: ControlPool,
    secrets: SecretBox,
    config: IdentityConfig,
    sso: SsoClient,
}

impl PgIdentity {
    pub fn new(
        pool: ControlPool,
        secrets: SecretBox,
        config: IdentityConfig,
    ) -> Result<Self, reqwest::Error> {
        Ok(PgIdentity {
            pool,
            secrets,
            config,
            sso: SsoClient::new()?,
        })
    }

    /// Issues a session and records `action` for it, in the caller's transaction.
    async fn issue_session(
        &self,
        tx: &mut PgConnection,
        ctx: &TenantContext,
        schema: &str,
        subject: &SessionSubject,
        family: Option<Uuid>,
        action: &str,
    ) -> Result<IssuedSession, IdentityError> {
        let lifetimes = SessionLifetimes {
            access: self.config.access_token_ttl,
            refresh: self.config.refresh_token_ttl,
            key_publish_delay: self.config.signing_key_publish_delay,
        };
        let session = sessions::issue(
            tx,
            &self.pool,
            &self.secrets,
            &self.config.issuer,
            lifetimes,
            subject,
            family,
        )
        .await?;
        let actor = TenantContext {
            principal: Principal::User {
                user_id: subject.user_id,
            },
            ..ctx.clone()
        };
        let entry = entry_for(
            &actor,
            Some(subject.organization_id.0),
            action,
            ("user", &subject.user_id.to_string()),
            Outcome::Success,
            json!({ "amr": subject.amr }),
        );
        store::append(tx, schema, entry).await?;
        Ok(session)
    }
}

/// What a password sign-in leads to.
#[derive(Debug)]
pub enum LoginOutcome {
    /// Signed in.
    Session(IssuedSession),
    /// A second factor is due: complete the challenge with its token.
    Challenge(challenges::Challenge),
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn new_invitation_token() -> String {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::random();
    format!(
        "cgi_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

fn tenant(ctx: &TenantContext) -> Result<&Tenant, IdentityError> {
    ctx.tenant.as_ref().ok_or(IdentityError::PermissionDenied(
        "this method acts within an organization",
    ))
}

fn normalize_email(raw: &str, field: &str) -> Result<String, FieldViolations> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if valid {
        Ok(email)
    } else {
        Err(FieldViolations::single(field, "must be an e-mail address"))
    }
}

#[derive(sqlx::FromRow)]
struct MembershipRow {
    organization_id: Uuid,
    user_id: Uuid,
    email: String,
    display_name: String,
    role: String,
    status: String,
    created_at: chrono::DateTime<Utc>,
    updated_at: chrono::DateTime<Utc>,
}

impl TryFrom<MembershipRow> for Membership {
    type Error = DbError;
    fn try_from(row: MembershipRow) -> Result<Membership, DbError> {
        Ok(Membership {
            organization_id: OrganizationId(row.organization_id),
            user_id: UserId(row.user_id),
            email: row.email,
            display_name: row.display_name,
            role: Role::parse(&row.role)
                .ok_or_else(|| DbError::Other(format!("unknown role {:?}", row.role)))?,
            status: MembershipStatus::parse(&row.status).ok_or_else(|| {
                DbError::Other(format!("unknown membership status {:?}", row.status))
            })?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

const MEMBERSHIP_SELECT: &str = "SELECT m.organization_id, m.user_id, u.email, u.display_name, m.role, m.status, \
    m.created_at, m.updated_at FROM identity.memberships m JOIN identity.users u ON u.id = m.user_id";

async fn membership(
    conn: &mut PgConnection,
    organization: OrganizationId,
    user: UserId,
    lock: bool,
) -> Result<Option<Membership>, IdentityError> {
    let row: Option<MembershipRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{MEMBERSHIP_SELECT} WHERE m.organization_id = $1 AND m.user_id = $2{}",
        if lock { " FOR UPDATE OF m" } else { "" }
    )))
    .bind(organization.0)
    .bind(user.0)
    .fetch_optional(&mut *conn)
    .await
    .map_err(DbError::from)?;
    Ok(row.map(Membership::try_from).transpose()?)
}

#[async_trait]
impl IdentityApi for PgIdentity {
    async fn create_invitation(
        &self,
        ctx: &TenantContext,
        email: &str,
        role: Role,
    ) -> Result<(Invitation, String), IdentityError> {
        let tenant = tenant(ctx)?;
        let email = normalize_email(email, "email")?;
        if !tenant.role.at_least(role) {
            return Err(IdentityError::RoleAboveOwn);
        }
        let limit = directory::user_limit(&self.pool, tenant.org_id).await?;
        let token = new_invitation_token();
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await.map_err(DbError::from)?;
        // Serialize invitations of one organization so the limit holds.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('cg.invite.' || $1))")
            .bind(tenant.org_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(DbError::from)?;
        if limit > 0 {
            let seats: i64 = sqlx::query_scalar(
                "SELECT (SELECT count(*) FROM identity.memberships WHERE organization_id = $1 AND status IN ('active', 'invited', 'suspended')) \
                      + (SELECT count(*) FROM identity.invitations WHERE organization_id = $1 AND accepted_at IS NULL \
                         AND revoked_at IS NULL AND expires_at > now())",
            )
            .bind(tenant.org_id.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(DbError::from)?;
            if seats >= limit {
                return Err(IdentityError::UserLimit { limit });
            }
        }
        let id = Uuid::now_v7();
        let expires_at =
            Utc::now() + chrono::Duration::from_std(self.config.invitation_ttl).unwrap_or_default();
        let inserted = sqlx::query_as::<_, (chrono::DateTime<Utc>,)>(
            "INSERT INTO identity.invitations (id, organization_id, email, role, token_hash, invited_by, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING created_at",
        )
        .bind(id)
        .bind(tenant.org_id.0)
        .bind(&email)
        .bind(role.as_str())
        .bind(token_hash(&token))
        .bind(ctx.principal.describe())
        .bind(expires_at)
        .fetch_one(&mut *tx)
        .await;
        let (created_at,) = match inserted.map_err(DbError::from) {
            Ok(row) => row,
            Err(DbError::UniqueViolation(_)) => {
                return Err(IdentityError::AlreadyExists(
                    "an invitation for this e-mail address is open",
                ));
            }
            Err(other) => return Err(other.into()),
        };
        let summary = json!({ "email": email, "role": role.as_str() });
        store::append(
            &mut tx,
            &tenant.schema,
            entry_for(
                ctx,
                Some(tenant.org_id.0),
                "identity.invitation.create",
                ("invitation", &id.to_string()),
                Outcome::Success,
                summary,
            ),
        )
        .await?;
        // The message commits with the invitation, or neither does.
        let (subject, body) = invitations::message(&tenant.org_code, role, &token);
        outbox::enqueue(
            &mut tx,
            &self.secrets,
            Some(tenant.org_id.0),
            "invitation",
            &email,
            &subject,
            &body,
        )
        .await?;
        tx.commit().await.map_err(DbError::from)?;
        let invitation = Invitation {
            id,
            email,
            role,
            invited_by: ctx.principal.describe(),
            created_at,
            expires_at,
            status: InvitationStatus::Pending,
        };
        Ok((invitation, token))
    }

    async fn accept_invitation(
        &self,
        ctx: &TenantContext,
        token: &str,
        new_password: &str,
        display_name: &str,
    ) -> Result<Membership, IdentityError> {
        if token.is_empty() || token.len() > 128 {
            return Err(IdentityError::InvitationInvalid);
        }
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await.map_err(DbError::from)?;
        let invitation: Option<(Uuid, Uuid, String, String)> = sqlx::query_as(
            "SELECT id, organization_id, email, role FROM identity.invitations \
             WHERE token_hash = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now() FOR UPDATE",
        )
        .bind(token_hash(token))
        .fetch_optional(&mut *tx)
        .await
        .map_err(DbError::from)?;
        let (invitation_id, org, email, role) =
            invitation.ok_or(IdentityError::InvitationInvalid)?;
        let organization = OrganizationId(org);
        let role =
            Role::parse(&role).ok_or_else(|| DbError::Other("unknown invited role".to_owned()))?;
        let record = directory::by_id(&self.pool, organization)
            .await?
            .ok_or(IdentityError::InvitationInvalid)?;

        let existing: Option<(Uuid, Option<String>)> = sqlx::query_as(
            "SELECT id, password_hash FROM identity.users WHERE email = $1 FOR UPDATE",
        )
        .bind(&email)
        .fetch_optional(&mut *tx)
        .await
        .map_err(DbError::from)?;
        let user_id = match existing {
            // An existing account proves it is theirs with its password.
            Some((id, Some(stored))) => {
                if !password::verify(new_password, Some(&stored)) {
                    return Err(IdentityError::InvalidCredentials);
                }
                UserId(id)
            }
            Some((_, None)) | None if password::policy_violation(new_password).is_some() => {
                let problem =
                    password::policy_violation(new_password).unwrap_or("is not acceptable");
                return Err(FieldViolations::single("password", problem).into());
            }
            Some((id, None)) => {
                sqlx::query("UPDATE identity.users SET password_hash = $2, updated_at = now() WHERE id = $1")
                    .bind(id)
                    .bind(password::hash(new_password))
                    .execute(&mut *tx)
                    .await
                    .map_err(DbError::from)?;
                UserId(id)
            }
            None => {
                let id = UserId::new();
                sqlx::query("INSERT INTO identity.users (id, email, display_name, password_hash) VALUES ($1, $2, $3, $4)")
                    .bind(id.0)
                    .bind(&email)
                    .bind(display_name.trim())
                    .bind(password::hash(new_password))
                    .execute(&mut *tx)
                    .await
                    .map_err(DbError::from)?;
                id
            }
        };
        sqlx::query(
            "INSERT INTO identity.memberships (organization_id, user_id, role, status) VALUES ($1, $2, $3, 'active') \
             ON CONFLICT (organization_id, user_id) DO UPDATE SET role = EXCLUDED.role, status = 'active', updated_at = now()",
        )
        .bind(organization.0)
        .bind(user_id.0)
        .bind(role.as_str())
        .execute(&mut *tx)
        .await
        .map_err(DbError::from)?;
        sqlx::query("UPDATE identity.invitations SET accepted_at = now() WHERE id = $1")
            .bind(invitation_id)
            .execute(&mut *tx)
            .await
            .map_err(DbError::from)?;
        let actor = TenantContext {
            principal: Principal::User { user_id },
            ..ctx.clone()
        };
        let summary = json!({ "email": email, "role": role.as_str() });
        store::append(
            &mut tx,
            &record.schema,
            entry_for(
                &actor,
                Some(organization.0),
                "identity.invitation.accept",
                ("invitation", &invitation_id.to_string()),
                Outcome::Success,
                summary,
            ),
        )
        .await?;
        let accepted = membership(&mut tx, organization, user_id, false)
            .await?
            .ok_or(IdentityError::NotFound("membership"))?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(accepted)
    }

    async fn login(
        &self,
        ctx: &TenantContext,
        organization_code: &str,
        email: &str,
        password_text: &str,
    ) -> Result<LoginOutcome, IdentityError> {
        let code = if organization_code.is_empty() {
            ctx.tenant
                .as_ref()
                .map(|t| t.org_code.clone())
                .unwrap_or_default()
        } else {
            organization_code.to_owned()
        };
        if code.is_empty() {
            return Err(FieldViolations::single("organization_code", "is required").into());
        }
        let email = normalize_email(email, "email")?;
        let account = throttle::account_subject(&code, &email);
        let address = throttle::address_subject(&ctx.client.ip);
        for subject in [&account, &address] {
            if let Some(retry_after) = throttle::locked_for(&self.pool, subject).await? {
                return Err(IdentityError::Throttled(retry_after));
            }
        }
        let record = directory::by_code(&self.pool, &code).await?;
        if let Some(record) = &record
            && security::get(&self.pool, record.id).await?.require_sso
        {
            return Err(IdentityError::SsoRequired);
        }
        let user: Option<(Uuid, Option<String>)> =
            sqlx::query_as("SELECT id, password_hash FROM identity.users WHERE email = $1")
                .bind(&email)
                .fetch_optional(&self.pool)
                .await
                .map_err(DbError::from)?;
        // Always verify a hash, even for an unknown account, so the answer
        // takes as long whether or not the account exists.
        let password_ok = password::verify(
            password_text,
            user.as_ref().and_then(|(_, hash)| hash.as_deref()),
        );
        let member = match (&record, &user, password_ok) {
            (Some(record), Some((id, _)), true) if !record.suspended => {
                let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
                membership(&mut conn, record.id, UserId(*id), false)
                    .await?
                    .filter(|m| m.status == MembershipStatus::Active)
            }
            _ => None,
        };
        let (Some(record), Some(member)) = (record, member) else {
            throttle::record_failure(&self.pool, &account, throttle::ACCOUNT).await?;
            if !ctx.client.ip.is_empty() {
                throttle::record_failure(&self.pool, &address, throttle::ADDRESS).await?;
            }
            return Err(IdentityError::InvalidCredentials);
        };
        throttle::clear(&self.pool, &account).await?;

        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await.map_err(DbError::from)?;
        if mfa_store::is_enrolled(&mut tx, member.user_id).await? {
            let token = challenges::create(&mut tx, member.user_id, record.id).await?;
            tx.commit().await.map_err(DbError::from)?;
            return Ok(LoginOutcome::Challenge(token));
        }
        if security::get(&self.pool, record.id).await?.require_mfa {
            return Err(IdentityError::MfaEnrollmentRequired);
        }
        let subject = SessionSubject {
            user_id: member.user_id,
            organization_id: record.id,
            organization_code: record.code.clone(),
            role: member.role,
            amr: vec!["pwd".to_owned()],
        };
        let session = self
            .issue_session(
                &mut tx,
                ctx,
                &record.schema,
                &subject,
                None,
                "identity.session.login",
            )
            .await?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(LoginOutcome::Session(session))
    }

    async fn complete_mfa_challenge(
        &self,
        ctx: &TenantContext,
        challenge_token: &str,
        totp_code: Option<&str>,
        recovery_code: Option<&str>,
    ) -> Result<(IssuedSession, Option<i64>), IdentityError> {
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await.map_err(DbError::from)?;
        let (user, organization) = challenges::open(&mut tx, challenge_token).await?;
        let verified =
            mfa_store::verify_second_factor(&mut tx, &self.secrets, user, totp_code, recovery_code)
                .await;
        let remaining = match verified {
            Ok(remaining) => remaining,
            Err(error) => {
                // Release the challenge's row lock before counting the
                // failure on another connection.
                tx.rollback().await.map_err(DbError::from)?;
                challenges::count_failure(&self.pool, challenge_token).await?;
                return Err(error);
            }
        };
        challenges::consume(&mut tx, challenge_token).await?;
        let record = directory::by_id(&self.pool, organization)
            .await?
            .ok_or(IdentityError::MfaChallengeInvalid)?;
        let member = membership(&mut tx, organization, user, false)
            .await?
            .filter(|m| m.status == MembershipStatus::Active)
            .ok_or(IdentityError::MfaChallengeInvalid)?;
        let subject = SessionSubject {
            user_id: user,
            organization_id: organization,
            organization_code: record.code.clone(),
            role: member.role,
            amr: vec!["pwd".to_owned(), "otp".to_owned()],
        };
        let session = self
            .issue_session(
                &mut tx,
                ctx,
                &record.schema,
                &subject,
                None,
                "identity.mfa_challenge.complete",
            )
            .await?;
        tx.commit().await.map_err(DbError::from)?;
        Ok((session, remaining))
    }

    async fn refresh(
        &self,
        ctx: &TenantContext,
        refresh_token: &str,
    ) -> Result<IssuedSession, IdentityError> {
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await.map_err(DbError::from)?;
        let redeemed = sessions::redeem(&mut tx, refresh_token).await?;
        let (family, user, organization, amr) = match redeemed {
            Redeemed::Fresh {
                family,
                user_id,
                organization_id,
                amr,
            } => (family, user_id, organization_id, amr),
            Redeemed::Reused => {
                // The family is revoked: commit that before refusing.
                tx.commit().await.map_err(DbError::from)?;
                return Err(IdentityError::RefreshInvalid);
            }
            Redeemed::Invalid => return Err(IdentityError::RefreshInvalid),
        };
        let record = directory::by_id(&self.pool, organization)
            .await?
            .ok_or(IdentityError::RefreshInvalid)?;
        let member = membership(&mut tx, organization, user, false)
            .await?
            .filter(|m| m.status == MembershipStatus::Active && !record.suspended)
            .ok_or(IdentityError::RefreshInvalid)?;
        let subject = SessionSubject {
            user_id: user,
            organization_id: organization,
            organization_code: record.code.clone(),
            role: member.role,
            amr,
        };
        let session = self
            .issue_session(
                &mut tx,
                ctx,
                &record.schema,
                &subject,
                Some(family),
                "identity.token.refresh",
            )
            .await?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(session)
    }

    async fn logout(&self, ctx: &TenantContext) -> Result<(), IdentityError> {
        let tenant = tenant(ctx)?;
        let user = ctx
            .principal
            .user_id()
            .ok_or(IdentityError::PermissionDenied(
                "only a signed-in person can sign out",
            ))?;
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await.map_err(DbError::from)?;
        let revoked = sessions::revoke_user(&mut tx, user, tenant.org_id).await?;
        let entry = entry_for(
            ctx,
            Some(tenant.org_id.0),
            "identity.session.logout",
            ("user", &user.to_string()),
            Outcome::Success,
            json!({ "refresh_tokens_revoked": revoked }),
        );
        store::append(&mut tx, &tenant.schema, entry).await?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(())
    }

    async fn enroll_totp(&self, ctx: &TenantContext) -> Result<(String, String), IdentityError> {
        let tenant = tenant(ctx)?;
        let user = ctx
            .principal
            .user_id()
            .ok_or(IdentityError::PermissionDenied(
                "only a signed-in person has a second factor",
            ))?;
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await.map_err(DbError::from)?;
        let email: String = sqlx::query_scalar("SELECT email FROM identity.users WHERE id = $1")
            .bind(user.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(DbError::from)?;
        let (secret, uri) = mfa_store::enroll(&mut tx, &self.secrets, user, &email).await?;
        let entry = entry_for(
            ctx,
            Some(tenant.org_id.0),
            "identity.totp.enroll",
            ("user", &user.to_string()),
            Outcome::Success,
            json!({}),
        );
        store::append(&mut tx, &tenant.schema, entry).await?;
        tx.commit().await.map_err(DbError::from)?;
        Ok((secret.to_base32(), uri))
    }

    async fn confirm_totp(
        &self,
        ctx: &TenantContext,
        code: &str,
    ) -> Result<Vec<String>, IdentityError> {
        let tenant = tenant(ctx)?;
        let user = ctx
            .principal
            .user_id()
            .ok_or(IdentityError::PermissionDenied(
                "only a signed-in person has a second factor",
            ))?;
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await.map_err(DbError::from)?;
        let codes = mfa_store::confirm(&mut tx, &self.secrets, user, code).await?;
        let entry = entry_for(
            ctx,
            Some(tenant.org_id.0),
            "identity.totp.confirm",
            ("user", &user.to_string()),
            Outcome::Success,
            json!({}),
        );
        store::append(&mut tx, &tenant.schema, entry).await?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(codes)
    }

    async fn security_settings(
        &self,
        ctx: &TenantContext,
    ) -> Result<SecuritySettings, IdentityError> {
        Ok(security::get(&self.pool, tenant(ctx)?.org_id).await?)
    }

    async fn update_security_settings(
        &self,
        ctx: &TenantContext,
        settings: SecuritySettings,
    ) -> Result<SecuritySettings, IdentityError> {
        let tenant = tenant(ctx)?;
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await.map_err(DbError::from)?;
        let stored = security::put(&mut tx, tenant.org_id, &settings).await?;
        let summary = json!({
            "require_mfa": stored.require_mfa,
            "require_sso": stored.require_sso,
            "ip_allowlist": stored.ip_allowlist,
            "session_minutes": stored.session_minutes,
        });
        let entry = entry_for(
            ctx,
            Some(tenant.org_id.0),
            "identity.security_settings.update",
            ("organization", &tenant.org_id.to_string()),
            Outcome::Success,
            summary,
        );
        store::append(&mut tx, &tenant.schema, entry).await?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(stored)
    }

    async fn create_api_key(
        &self,
        ctx: &TenantContext,
        display_name: &str,
        role: Role,
        expires_at: Option<chrono::DateTime<Utc>>,
    ) -> Result<(ApiKey, String), IdentityError> {
        let tenant = tenant(ctx)?;
        if !tenant.role.at_least(role) {
            return Err(IdentityError::RoleAboveOwn);
        }
        let name = display_name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(
                FieldViolations::single("display_name", "must be 1 to 100 characters").into(),
            );
        }
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await.map_err(DbError::from)?;
        let (key, secret) = api_keys::create(
            &mut tx,
            tenant.org_id,
            name,
            role,
            &ctx.principal.describe(),
            expires_at,
        )
        .await?;
        let summary = json!({ "display_name": name, "role": role.as_str(), "prefix": key.prefix });
        let entry = entry_for(
            ctx,
            Some(tenant.org_id.0),
            "identity.api_key.create",
            ("api_key", &key.id.to_string()),
            Outcome::Success,
            summary,
        );
        store::append(&mut tx, &tenant.schema, entry).await?;
        tx.commit().await.map_err(DbError::from)?;
        Ok((key, secret))
    }

    async fn list_api_keys(
        &self,
        ctx: &TenantContext,
        show_revoked: bool,
    ) -> Result<Vec<ApiKey>, IdentityError> {
        Ok(api_keys::list(&self.pool, tenant(ctx)?.org_id, show_revoked).await?)
    }

    async fn revoke_api_key(
        &self,
        ctx: &TenantContext,
        id: ApiKeyId,
    ) -> Result<ApiKey, IdentityError> {
        let tenant = tenant(ctx)?;
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await.map_err(DbError::from)?;
        let key = api_keys::revoke(&mut tx, tenant.org_id, id)
            .await?
            .ok_or(IdentityError::NotFound("API key"))?;
        let entry = entry_for(
            ctx,
            Some(tenant.org_id.0),
            "identity.api_key.revoke",
            ("api_key", &id.to_string()),
            Outcome::Success,
            json!({ "prefix": key.prefix }),
        );
        store::append(&mut tx, &tenant.schema, entry).await?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(key)
    }

    async fn sso_configuration(
        &self,
        ctx: &TenantContext,
    ) -> Result<Option<SsoConfig>, IdentityError> {
        Ok(sso::get(&self.pool, tenant(ctx)?.org_id).await?)
    }

    async fn update_sso_configuration(
        &self,
        ctx: &TenantContext,
        input: SsoConfigInput,
    ) -> Result<SsoConfig, IdentityError> {
        let tenant = tenant(ctx)?;
        // Nobody makes people join with a role above their own.
        if let Some(role) = Role::parse(&input.default_role)
            && !tenant.role.at_least(role)
        {
            return Err(IdentityError::RoleAboveOwn);
        }
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await.map_err(DbError::from)?;
        let config = sso::configure(&mut *tx, &self.secrets, tenant.org_id, input).await?;
        let summary = json!({
            "issuer_url": config.issuer_url,
            "client_id": config.client_id,
            "allowed_email_domains": config.allowed_email_domains,
            "default_role": config.default_role.as_str(),
        });
        let entry = entry_for(
            ctx,
            Some(tenant.org_id.0),
            "identity.sso_configuration.update",
            ("organization", &tenant.org_id.to_string()),
            Outcome::Success,
            summary,
        );
        store::append(&mut tx, &tenant.schema, entry).await?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(config)
    }

    async fn start_sso(
        &self,
        ctx: &TenantContext,
        organization_code: &str,
    ) -> Result<StartedSso, IdentityError> {
        let code = if organization_code.is_empty() {
            ctx.tenant
                .as_ref()
                .map(|t| t.org_code.clone())
                .unwrap_or_default()
        } else {
            organization_code.to_owned()
        };
        let record = directory::by_code(&self.pool, &code)
            .await?
            .filter(|r| !r.suspended)
            .ok_or(IdentityError::Sso(SsoError::NotConfigured))?;
        let started = sso::start(
            &self.pool,
            &self.secrets,
            &self.sso,
            record.id,
            &self.config.sso_redirect_uri,
        )
        .await?;
        // The caller is not known yet: recorded in the platform chain, so
        // strangers cannot write into the organization's.
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await.map_err(DbError::from)?;
        let entry = entry_for(
            ctx,
            None,
            "identity.sso.start",
            ("organization", &record.id.to_string()),
            Outcome::Success,
            json!({ "organization": record.code }),
        );
        store::append(&mut tx, store::PLATFORM_SCHEMA, entry).await?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(started)
    }

    async fn complete_sso(
        &self,
        ctx: &TenantContext,
        state: &str,
        code: &str,
    ) -> Result<(IssuedSession, bool), IdentityError> {
        let person = sso::complete(&self.pool, &self.secrets, &self.sso, state, code).await?;
        let record = directory::by_id(&self.pool, person.organization_id)
            .await?
            .filter(|r| !r.suspended)
            .ok_or(IdentityError::Sso(SsoError::InvalidState))?;
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await.map_err(DbError::from)?;
        // Just-in-time: the person and the membership are created on first sign-in.
        let existing: Option<Uuid> =
            sqlx::query_scalar("SELECT id FROM identity.users WHERE email = $1 FOR UPDATE")
                .bind(&person.email)
                .fetch_optional(&mut *tx)
                .await
                .map_err(DbError::from)?;
        let user = match existing {
            Some(id) => UserId(id),
            None => {
                let id = UserId::new();
                sqlx::query(
                    "INSERT INTO identity.users (id, email, display_name) VALUES ($1, $2, $3)",
                )
                .bind(id.0)
                .bind(&person.email)
                .bind(person.name.clone().unwrap_or_default())
                .execute(&mut *tx)
                .await
                .map_err(DbError::from)?;
                id
            }
        };
        let provisioned = sqlx::query(
            "INSERT INTO identity.memberships (organization_id, user_id, role, status) VALUES ($1, $2, $3, 'active') \
             ON CONFLICT (organization_id, user_id) DO NOTHING",
        )
        .bind(record.id.0)
        .bind(user.0)
        .bind(person.default_role.as_str())
        .execute(&mut *tx)
        .await
        .map_err(DbError::from)?
        .rows_affected()
            == 1;
        let member = membership(&mut tx, record.id, user, false)
            .await?
            .ok_or(IdentityError::MembershipInactive)?;
        if member.status != MembershipStatus::Active {
            return Err(IdentityError::MembershipInactive);
        }
        let subject = SessionSubject {
            user_id: user,
            organization_id: record.id,
            organization_code: record.code.clone(),
            role: member.role,
            amr: vec!["sso".to_owned()],
        };
        let session = self
            .issue_session(
                &mut tx,
                ctx,
                &record.schema,
                &subject,
                None,
                "identity.sso.complete",
            )
            .await?;
        tx.commit().await.map_err(DbError::from)?;
        Ok((session, provisioned))
    }

    async fn resend_invitation(
        &self,
        ctx: &TenantContext,
        id: Uuid,
    ) -> Result<(Invitation, String), IdentityError> {
        let tenant = tenant(ctx)?;
        let token = new_invitation_token();
        let expires_at =
            Utc::now() + chrono::Duration::from_std(self.config.invitation_ttl).unwrap_or_default();
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await.map_err(DbError::from)?;
        let invitation =
            invitations::renew(&mut tx, tenant.org_id, id, &token_hash(&token), expires_at)
                .await?
                .ok_or(IdentityError::NotFound("open invitation"))?;
        if !tenant.role.at_least(invitation.role) {
            return Err(IdentityError::RoleAboveOwn);
        }
        let (subject, body) = invitations::message(&tenant.org_code, invitation.role, &token);
        outbox::enqueue(
            &mut tx,
            &self.secrets,
            Some(tenant.org_id.0),
            "invitation",
            &invitation.email,
            &subject,
            &body,
        )
        .await?;
        let entry = entry_for(
            ctx,
            Some(tenant.org_id.0),
            "identity.invitation.resend",
            ("invitation", &id.to_string()),
            Outcome::Success,
            json!({ "email": invitation.email }),
        );
        store::append(&mut tx, &tenant.schema, entry).await?;
        tx.commit().await.map_err(DbError::from)?;
        Ok((invitation, token))
    }

    async fn revoke_invitation(
        &self,
        ctx: &TenantContext,
        id: Uuid,
    ) -> Result<Invitation, IdentityError> {
        let tenant = tenant(ctx)?;
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await.map_err(DbError::from)?;
        let invitation = invitations::revoke(&mut tx, tenant.org_id, id)
            .await?
            .ok_or(IdentityError::NotFound("open invitation"))?;
        let entry = entry_for(
            ctx,
            Some(tenant.org_id.0),
            "identity.invitation.revoke",
            ("invitation", &id.to_string()),
            Outcome::Success,
            json!({ "email": invitation.email }),
        );
        store::append(&mut tx, &tenant.schema, entry).await?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(invitation)
    }

    async fn list_invitations(
        &self,
        ctx: &TenantContext,
    ) -> Result<Vec<Invitation>, IdentityError> {
        let tenant = tenant(ctx)?;
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        Ok(invitations::list(&mut conn, tenant.org_id).await?)
    }

    async fn current_member(&self, ctx: &TenantContext) -> Result<Membership, IdentityError> {
        let tenant = tenant(ctx)?;
        let user = ctx
            .principal
            .user_id()
            .ok_or(IdentityError::PermissionDenied(
                "only a signed-in person is a member",
            ))?;
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        membership(&mut conn, tenant.org_id, user, false)
            .await?
            .ok_or(IdentityError::NotFound("membership"))
    }

    async fn check_permission(
        &self,
        ctx: &TenantContext,
        permission: &str,
        user: Option<UserId>,
    ) -> Result<(bool, Role), IdentityError> {
        let tenant = tenant(ctx)?;
        let permission: cg_context::Permission = permission.parse().map_err(|_| {
            FieldViolations::single("permission", "is not a permission; see docs/permissions.md")
        })?;
        let role = match user {
            // Asking about someone else is reading the members.
            Some(user) if Some(user) != ctx.principal.user_id() => {
                if !tenant.role.has(cg_context::Permission::UsersRead) {
                    return Err(IdentityError::PermissionDenied(
                        "asking about another member needs users.read",
                    ));
                }
                let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
                let member = membership(&mut conn, tenant.org_id, user, false)
                    .await?
                    .filter(|m| m.status == MembershipStatus::Active)
                    .ok_or(IdentityError::NotFound("membership"))?;
                member.role
            }
            _ => tenant.role,
        };
        Ok((role.has(permission), role))
    }

    async fn change_password(
        &self,
        ctx: &TenantContext,
        current: &str,
        new: &str,
    ) -> Result<(), IdentityError> {
        let tenant = tenant(ctx)?;
        let user = ctx
            .principal
            .user_id()
            .ok_or(IdentityError::PermissionDenied(
                "only a signed-in person has a password",
            ))?;
        if let Some(problem) = password::policy_violation(new) {
            return Err(FieldViolations::single("new_password", problem).into());
        }
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await.map_err(DbError::from)?;
        let stored: Option<String> =
            sqlx::query_scalar("SELECT password_hash FROM identity.users WHERE id = $1 FOR UPDATE")
                .bind(user.0)
                .fetch_one(&mut *tx)
                .await
                .map_err(DbError::from)?;
        // Without a password (SSO only) there is nothing to prove: refusing
        // keeps a stolen token from adding one.
        if !password::verify(current, stored.as_deref()) {
            return Err(IdentityError::InvalidCredentials);
        }
        sqlx::query(
            "UPDATE identity.users SET password_hash = $2, updated_at = now() WHERE id = $1",
        )
        .bind(user.0)
        .bind(password::hash(new))
        .execute(&mut *tx)
        .await
        .map_err(DbError::from)?;
        // Other sessions end: whoever knew the old password loses them.
        let revoked = sessions::revoke_user(&mut tx, user, tenant.org_id).await?;
        let entry = entry_for(
            ctx,
            Some(tenant.org_id.0),
            "identity.password.change",
            ("user", &user.to_string()),
            Outcome::Success,
            json!({ "refresh_tokens_revoked": revoked }),
        );
        store::append(&mut tx, &tenant.schema, entry).await?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(())
    }

    async fn disable_totp(
        &self,
        ctx: &TenantContext,
        password_text: &str,
        code: &str,
    ) -> Result<(), IdentityError> {
        let tenant = tenant(ctx)?;
        let user = ctx
            .principal
            .user_id()
            .ok_or(IdentityError::PermissionDenied(
                "only a signed-in person has a second factor",
            ))?;
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await.map_err(DbError::from)?;
        let stored: Option<String> =
            sqlx::query_scalar("SELECT password_hash FROM identity.users WHERE id = $1")
                .bind(user.0)
                .fetch_one(&mut *tx)
                .await
                .map_err(DbError::from)?;
        if !password::verify(password_text, stored.as_deref()) {
            return Err(IdentityError::InvalidCredentials);
        }
        mfa_store::verify_second_factor(&mut tx, &self.secrets, user, Some(code), None).await?;
        mfa_store::disable(&mut tx, user).await?;
        let entry = entry_for(
            ctx,
            Some(tenant.org_id.0),
            "identity.totp.disable",
            ("user", &user.to_string()),
            Outcome::Success,
            json!({}),
        );
        store::append(&mut tx, &tenant.schema, entry).await?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(())
    }

    async fn regenerate_recovery_codes(
        &self,
        ctx: &TenantContext,
        code: &str,
    ) -> Result<Vec<String>, IdentityError> {
        let tenant = tenant(ctx)?;
        let user = ctx
            .principal
            .user_id()
            .ok_or(IdentityError::PermissionDenied(
                "only a signed-in person has a second factor",
            ))?;
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await.map_err(DbError::from)?;
        mfa_store::verify_second_factor(&mut tx, &self.secrets, user, Some(code), None).await?;
        let codes = mfa_store::replace_recovery_codes(&mut tx, user).await?;
        let entry = entry_for(
            ctx,
            Some(tenant.org_id.0),
            "identity.recovery_codes.regenerate",
            ("user", &user.to_string()),
            Outcome::Success,
            json!({}),
        );
        store::append(&mut tx, &tenant.schema, entry).await?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(codes)
    }

    async fn my_memberships(&self, ctx: &TenantContext) -> Result<Vec<Membership>, IdentityError> {
        let user = ctx
            .principal
            .user_id()
            .ok_or(IdentityError::PermissionDenied(
                "only a signed-in person has memberships",
            ))?;
        let rows: Vec<MembershipRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{MEMBERSHIP_SELECT} WHERE m.user_id = $1 AND m.status = 'active' ORDER BY m.created_at"
        )))
        .bind(user.0)
        .fetch_all(&self.pool)
        .await
        .map_err(DbError::from)?;
        Ok(rows
            .into_iter()
            .map(Membership::try_from)
            .collect::<Result<_, _>>()?)
    }

    async fn update_own_profile(
        &self,
        ctx: &TenantContext,
        display_name: &str,
    ) -> Result<Membership, IdentityError> {
        let tenant = tenant(ctx)?;
        let user = ctx
            .principal
            .user_id()
            .ok_or(IdentityError::PermissionDenied(
                "only a signed-in person has a profile",
            ))?;
        let name = display_name.trim();
        if name.chars().count() > 200 {
            return Err(FieldViolations::single(
                "user.display_name",
                "must be at most 200 characters",
            )
            .into());
        }
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await.map_err(DbError::from)?;
        sqlx::query(
            "UPDATE identity.users SET display_name = $2, updated_at = now() WHERE id = $1",
        )
        .bind(user.0)
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(DbError::from)?;
        let entry = entry_for(
            ctx,
            Some(tenant.org_id.0),
            "identity.user.update",
            ("user", &user.to_string()),
            Outcome::Success,
            json!({ "fields": ["display_name"] }),
        );
        store::append(&mut tx, &tenant.schema, entry).await?;
        let member = membership(&mut tx, tenant.org_id, user, false)
            .await?
            .ok_or(IdentityError::NotFound("membership"))?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(member)
    }

    async fn jwks(&self) -> Result<Vec<PublicJwk>, IdentityError> {
        // Ensure a key exists before the first sign-in, so the gateway's
        // first fetch is not empty.
        signing::load_active(
            &self.pool,
            &self.secrets,
            self.config.signing_key_publish_delay,
        )
        .await?;
        Ok(signing::published(&self.pool, self.config.access_token_ttl * 2).await?)
    }

    async fn rotate_signing_key(&self, ctx: &TenantContext) -> Result<PublicJwk, IdentityError> {
        if !matches!(ctx.principal, Principal::Operator { .. }) {
            return Err(IdentityError::PermissionDenied("platform operators only"));
        }
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await.map_err(DbError::from)?;
        let key = signing::rotate(
            &mut tx,
            &self.secrets,
            self.config.signing_key_publish_delay,
        )
        .await?;
        let entry = entry_for(
            ctx,
            None,
            "identity.signing_key.rotate",
            ("signing_key", &key.kid),
            Outcome::Success,
            json!({ "kid": key.kid }),
        );
        store::append(&mut tx, store::PLATFORM_SCHEMA, entry).await?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(key)
    }

    async fn list_memberships(
        &self,
        ctx: &TenantContext,
    ) -> Result<Vec<Membership>, IdentityError> {
        let tenant = tenant(ctx)?;
        let rows: Vec<MembershipRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{MEMBERSHIP_SELECT} WHERE m.organization_id = $1 AND m.status <> 'removed' ORDER BY u.email"
        )))
        .bind(tenant.org_id.0)
        .fetch_all(&self.pool)
        .await
        .map_err(DbError::from)?;
        Ok(rows
            .into_iter()
            .map(Membership::try_from)
            .collect::<Result<_, _>>()?)
    }

    async fn update_membership(
        &self,
        ctx: &TenantContext,
        user_id: UserId,
        change: MembershipChange,
    ) -> Result<Membership, IdentityError> {
        let tenant = tenant(ctx)?;
        let mut conn = self.pool.acquire().await.map_err(DbError::from)?;
        let mut tx = conn.begin().await.map_err(DbError::from)?;
        // One membership change of an organization at a time: the
        // last-owner rule is checked against a stable set of owners.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('cg.members.' || $1))")
            .bind(tenant.org_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(DbError::from)?;
        let current = membership(&mut tx, tenant.org_id, user_id, true)
            .await?
            .filter(|m| m.status != MembershipStatus::Removed)
            .ok_or(IdentityError::NotFound("membership"))?;
        let new_role = change.role.unwrap_or(current.role);
        let new_status = change.status.unwrap_or(current.status);
        if !tenant.role.at_least(current.role) || !tenant.role.at_least(new_role) {
            return Err(IdentityError::RoleAboveOwn);
        }
        let was_active_owner =
            current.role == Role::Owner && current.status == MembershipStatus::Active;
        let stays_active_owner = new_role == Role::Owner && new_status == MembershipStatus::Active;
        if was_active_owner && !stays_active_owner {
            let others: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM identity.memberships WHERE organization_id = $1 AND role = 'owner' \
                 AND status = 'active' AND user_id <> $2",
            )
            .bind(tenant.org_id.0)
            .bind(user_id.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(DbError::from)?;
            if others == 0 {
                return Err(IdentityError::LastOwner);
            }
        }
        sqlx::query("UPDATE identity.memberships SET role = $3, status = $4, updated_at = now() WHERE organization_id = $1 AND user_id = $2")
            .bind(tenant.org_id.0)
            .bind(user_id.0)
            .bind(new_role.as_str())
            .bind(new_status.as_str())
            .execute(&mut *tx)
            .await
            .map_err(DbError::from)?;
        let action = if new_status == MembershipStatus::Removed {
            "identity.membership.remove"
        } else {
            "identity.membership.update"
        };
        let summary = json!({
            "role": { "from": current.role.as_str(), "to": new_role.as_str() },
            "status": { "from": current.status.as_str(), "to": new_status.as_str() },
        });
        store::append(
            &mut tx,
            &tenant.schema,
            entry_for(
                ctx,
                Some(tenant.org_id.0),
                action,
                ("membership", &user_id.to_string()),
                Outcome::Success,
                summary,
            ),
        )
        .await?;
        let updated = membership(&mut tx, tenant.org_id, user_id, false)
            .await?
            .ok_or(IdentityError::NotFound("membership"))?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(updated)
    }
}
