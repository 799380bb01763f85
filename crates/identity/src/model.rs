//! Identity domain types.

use cg_context::{OrganizationId, Role, UserId};
use chrono::{DateTime, Utc};

/// Membership status in one organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipStatus {
    Invited,
    Active,
    Suspended,
    Removed,
}

impl MembershipStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MembershipStatus::Invited => "invited",
            MembershipStatus::Active => "active",
            MembershipStatus::Suspended => "suspended",
            MembershipStatus::Removed => "removed",
        }
    }

    pub fn parse(s: &str) -> Option<MembershipStatus> {
        [
            MembershipStatus::Invited,
            MembershipStatus::Active,
            MembershipStatus::Suspended,
            MembershipStatus::Removed,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }
}

/// A person's membership of an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub organization_id: OrganizationId,
    pub user_id: UserId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub status: MembershipStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Revoked,
    Expired,
}

/// An invitation (never with its token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub id: uuid::Uuid,
    pub email: String,
    pub role: Role,
    pub invited_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub status: InvitationStatus,
}
