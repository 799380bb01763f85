//! SQL of invitations, and the message that carries one.

use cg_context::{OrganizationId, Role};
use cg_db::DbError;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::model::{Invitation, InvitationStatus};

/// Where an invitee enters the invitation code.
pub const ACCEPT_URL: &str = "https://app.claimguardian.ai/invitations/accept";

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    email: String,
    role: String,
    invited_by: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    accepted_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<Row> for Invitation {
    type Error = DbError;
    fn try_from(row: Row) -> Result<Invitation, DbError> {
        let status = match (row.accepted_at, row.revoked_at) {
            (Some(_), _) => InvitationStatus::Accepted,
            (None, Some(_)) => InvitationStatus::Revoked,
            (None, None) if row.expires_at <= Utc::now() => InvitationStatus::Expired,
            (None, None) => InvitationStatus::Pending,
        };
        Ok(Invitation {
            id: row.id,
            email: row.email,
            role: Role::parse(&row.role)
                .ok_or_else(|| DbError::Other(format!("unknown role {:?}", row.role)))?,
            invited_by: row.invited_by,
            created_at: row.created_at,
            expires_at: row.expires_at,
            status,
        })
    }
}

const COLUMNS: &str =
    "id, email, role, invited_by, created_at, expires_at, accepted_at, revoked_at";

/// The organization's invitations, newest first.
pub async fn list(
    conn: &mut PgConnection,
    organization: OrganizationId,
) -> Result<Vec<Invitation>, DbError> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM identity.invitations WHERE organization_id = $1 ORDER BY created_at DESC LIMIT 500"
    )))
    .bind(organization.0)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(Invitation::try_from).collect()
}

/// A fresh token for a pending invitation (the old link stops working) and
/// a new expiry; `None` when the organization has no such open invitation.
pub async fn renew(
    conn: &mut PgConnection,
    organization: OrganizationId,
    id: Uuid,
    token_hash: &[u8],
    expires_at: DateTime<Utc>,
) -> Result<Option<Invitation>, DbError> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE identity.invitations SET token_hash = $3, expires_at = $4 \
         WHERE id = $2 AND organization_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL RETURNING {COLUMNS}"
    )))
    .bind(organization.0)
    .bind(id)
    .bind(token_hash)
    .bind(expires_at)
    .fetch_optional(conn)
    .await?;
    row.map(Invitation::try_from).transpose()
}

/// Revokes a pending invitation; `None` when there is no such open one.
pub async fn revoke(
    conn: &mut PgConnection,
    organization: OrganizationId,
    id: Uuid,
) -> Result<Option<Invitation>, DbError> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE identity.invitations SET revoked_at = now() \
         WHERE id = $2 AND organization_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL RETURNING {COLUMNS}"
    )))
    .bind(organization.0)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(Invitation::try_from).transpose()
}

/// Subject and body of an invitation message. Lines stay short and plain
/// ASCII so the message travels as 7-bit text and the code arrives intact.
pub fn message(organization_code: &str, role: Role, token: &str) -> (String, String) {
    (
        format!("You are invited to {organization_code} on ClaimGuardian"),
        format!(
            "You have been invited to join `{organization_code}` on ClaimGuardian\n\
             as {role}.\n\n\
             Open {ACCEPT_URL}\n\
             and enter this invitation code (it works once, within seven days):\n\n\
             {token}\n"
        ),
    )
}
