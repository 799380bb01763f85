//! What a `cg_access` notification says changed: the payload the
//! `notify_access_change` trigger writes, `<schema>.<table>[:<key>...]`.

use cg_context::{OrganizationId, UserId};
use uuid::Uuid;

/// A change to something the gateway caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The organization's row or its feature overrides.
    Organization(OrganizationId),
    /// Some organization's custom domains.
    Domains,
    /// A tier or its features: every organization on it.
    Tiers,
    /// The organization's security settings (its allow-list).
    SecuritySettings(OrganizationId),
    /// One membership.
    Membership(OrganizationId, UserId),
    /// Some organization API key (issued, revoked).
    ApiKeys,
    /// Some operator key.
    OperatorKeys,
    /// A payload this gateway does not know: it forgets everything, which
    /// is always safe.
    Unknown,
}

impl Change {
    pub fn parse(payload: &str) -> Change {
        let mut parts = payload.split(':');
        let table = parts.next().unwrap_or_default();
        let mut id = || parts.next().and_then(|part| part.parse::<Uuid>().ok());
        let organization = |id: Option<Uuid>| id.map(OrganizationId);
        match table {
            "tenancy.organizations" | "tenancy.feature_overrides" => {
                organization(id()).map_or(Change::Unknown, Change::Organization)
            }
            "tenancy.organization_domains" => Change::Domains,
            "tenancy.tiers" | "tenancy.tier_features" => Change::Tiers,
            "identity.security_settings" => {
                organization(id()).map_or(Change::Unknown, Change::SecuritySettings)
            }
            "identity.memberships" => match (id(), id()) {
                (Some(organization), Some(user)) => {
                    Change::Membership(OrganizationId(organization), UserId(user))
                }
                _ => Change::Unknown,
            },
            "identity.api_keys" => Change::ApiKeys,
            "identity.operator_api_keys" => Change::OperatorKeys,
            _ => Change::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "01a21c16-d441-77aa-94ec-e1dcb5ce84cb";
    const USER: &str = "01a21c17-0a2d-7503-9adf-051a109a774b";

    #[test]
    fn every_trigger_payload_names_its_change() {
        let org = OrganizationId(ORG.parse().expect("uuid"));
        let user = UserId(USER.parse().expect("uuid"));
        let cases = [
            (
                format!("tenancy.organizations:{ORG}"),
                Change::Organization(org),
            ),
            (
                format!("tenancy.feature_overrides:{ORG}"),
                Change::Organization(org),
            ),
            (
                format!("tenancy.organization_domains:{ORG}"),
                Change::Domains,
            ),
            ("tenancy.tiers".to_owned(), Change::Tiers),
            ("tenancy.tier_features".to_owned(), Change::Tiers),
            (
                format!("identity.security_settings:{ORG}"),
                Change::SecuritySettings(org),
            ),
            (
                format!("identity.memberships:{ORG}:{USER}"),
                Change::Membership(org, user),
            ),
            (format!("identity.api_keys:{ORG}"), Change::ApiKeys),
            (
                "identity.operator_api_keys".to_owned(),
                Change::OperatorKeys,
            ),
        ];
        for (payload, expected) in cases {
            assert_eq!(Change::parse(&payload), expected, "{payload}");
        }
    }

    #[test]
    fn anything_else_forgets_everything() {
        for payload in [
            "",
            "tenancy.organizations",
            "tenancy.organizations:not-a-uuid",
            &format!("identity.memberships:{ORG}"),
            "billing.invoices:1",
        ] {
            assert_eq!(Change::parse(payload), Change::Unknown, "{payload:?}");
        }
    }
}
