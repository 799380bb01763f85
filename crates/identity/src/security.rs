//! An organization's security settings: second factor required, SSO
//! required, the IP allow-list the gateway enforces, and the member role it
//! reads on every request.

use cg_context::{OrganizationId, Role, UserId};
use cg_db::{ControlPool, DbError};
use cg_status::FieldViolations;
use chrono::{DateTime, Utc};

use crate::allowlist::AllowList;

/// The settings of one organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecuritySettings {
    pub require_mfa: bool,
    pub require_sso: bool,
    pub ip_allowlist: Vec<String>,
    pub session_minutes: i32,
    pub updated_at: Option<DateTime<Utc>>,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        SecuritySettings {
            require_mfa: false,
            require_sso: false,
            ip_allowlist: Vec::new(),
            session_minutes: 43_200,
            updated_at: None,
        }
    }
}

#[derive(sqlx::FromRow)]
struct SettingsRow {
    require_mfa: bool,
    require_sso: bool,
    ip_allowlist: Vec<String>,
    session_minutes: i32,
    updated_at: DateTime<Utc>,
}

/// The settings, or the defaults when none were set.
pub async fn get(
    pool: &ControlPool,
    organization: OrganizationId,
) -> Result<SecuritySettings, DbError> {
    let row: Option<SettingsRow> = sqlx::query_as(
        "SELECT require_mfa, require_sso, ip_allowlist, session_minutes, updated_at \
         FROM identity.security_settings WHERE organization_id = $1",
    )
    .bind(organization.0)
    .fetch_optional(pool)
    .await?;
    Ok(row
        .map(|row| SecuritySettings {
            require_mfa: row.require_mfa,
            require_sso: row.require_sso,
            ip_allowlist: row.ip_allowlist,
            session_minutes: row.session_minutes,
            updated_at: Some(row.updated_at),
        })
        .unwrap_or_default())
}

/// Validates and stores the settings (allow-list entries normalised).
pub async fn put(
    conn: &mut sqlx::PgConnection,
    organization: OrganizationId,
    settings: &SecuritySettings,
) -> Result<SecuritySettings, crate::IdentityError> {
    let list = AllowList::parse(&settings.ip_allowlist).map_err(|(index, reason)| {
        FieldViolations::single(format!("security_settings.ip_allowlist[{index}]"), reason)
    })?;
    if !(5..=525_600).contains(&settings.session_minutes) {
        return Err(FieldViolations::single(
            "security_settings.session_lifetime",
            "must be between 5 minutes and a year",
        )
        .into());
    }
    let normalised: Vec<String> = list.entries().iter().map(ToString::to_string).collect();
    let updated_at: DateTime<Utc> = sqlx::query_scalar(
        "INSERT INTO identity.security_settings (organization_id, require_mfa, require_sso, ip_allowlist, session_minutes) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (organization_id) DO UPDATE SET require_mfa = EXCLUDED.require_mfa, \
         require_sso = EXCLUDED.require_sso, ip_allowlist = EXCLUDED.ip_allowlist, \
         session_minutes = EXCLUDED.session_minutes, updated_at = now() RETURNING updated_at",
    )
    .bind(organization.0)
    .bind(settings.require_mfa)
    .bind(settings.require_sso)
    .bind(&normalised)
    .bind(settings.session_minutes)
    .fetch_one(&mut *conn)
    .await
    .map_err(DbError::from)?;
    Ok(SecuritySettings {
        ip_allowlist: normalised,
        updated_at: Some(updated_at),
        ..settings.clone()
    })
}

/// The organization's allow-list, for the gateway (empty: every address).
pub async fn allowlist_of(
    pool: &ControlPool,
    organization: OrganizationId,
) -> Result<AllowList, DbError> {
    let entries: Option<Vec<String>> = sqlx::query_scalar(
        "SELECT ip_allowlist FROM identity.security_settings WHERE organization_id = $1",
    )
    .bind(organization.0)
    .fetch_optional(pool)
    .await?;
    // Entries were validated when stored; one that no longer parses denies
    // rather than silently allowing everyone.
    Ok(AllowList::parse(&entries.unwrap_or_default()).unwrap_or_else(|_| AllowList::deny_all()))
}

/// The member's current role in the organization, or `None` when the
/// membership is not active. The gateway asks on every request, so a role
/// change or a removal holds from the next call, not when a token expires.
pub async fn active_role(
    pool: &ControlPool,
    organization: OrganizationId,
    user: UserId,
) -> Result<Option<Role>, DbError> {
    let role: Option<String> = sqlx::query_scalar(
        "SELECT role FROM identity.memberships \
         WHERE organization_id = $1 AND user_id = $2 AND status = 'active'",
    )
    .bind(organization.0)
    .bind(user.0)
    .fetch_optional(pool)
    .await?;
    // The column's CHECK admits only known roles; anything else denies.
    Ok(role.and_then(|r| Role::parse(&r)))
}
