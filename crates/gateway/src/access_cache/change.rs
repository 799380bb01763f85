//! What a `cg_access` notification says changed: the payload the
//! `notify_access_change` trigger writes, `<schema>.<table>[:<key>...]`.

use cg_context::{OrganizationId, UserId};
use uuid::Uuid;

/// A change to something the gateway caches.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Replica `from` asks every replica to confirm it has applied what
    /// came before (see `settle`).
    Barrier { from: String, id: u64 },
    /// Replica `by` confirms barrier `id` of replica `to`.
    Ack { to: String, id: u64, by: String },
    /// A payload this gateway does not know: it forgets everything, which
    /// is always safe.
    Unknown,
}

impl Change {
    pub fn parse(payload: &str) -> Change {
        let parts: Vec<&str> = payload.split(':').collect();
        let uuid = |i: usize| parts.get(i).and_then(|part| part.parse::<Uuid>().ok());
        let organization = || uuid(1).map(OrganizationId);
        let text = |i: usize| parts.get(i).map(|part| (*part).to_owned());
        let number = |i: usize| parts.get(i).and_then(|part| part.parse::<u64>().ok());
        let change = match parts.as_slice() {
            ["tenancy.organizations" | "tenancy.feature_overrides", _] => {
                organization().map(Change::Organization)
            }
            ["tenancy.organization_domains", ..] => Some(Change::Domains),
            ["tenancy.tiers" | "tenancy.tier_features"] => Some(Change::Tiers),
            ["identity.security_settings", _] => organization().map(Change::SecuritySettings),
            ["identity.memberships", _, _] => organization()
                .zip(uuid(2))
                .map(|(organization, user)| Change::Membership(organization, UserId(user))),
            ["identity.api_keys", ..] => Some(Change::ApiKeys),
            ["identity.operator_api_keys"] => Some(Change::OperatorKeys),
            ["cg.barrier", _, _] => text(1)
                .zip(number(2))
                .map(|(from, id)| Change::Barrier { from, id }),
            ["cg.ack", _, _, _] => match (text(1), number(2), text(3)) {
                (Some(to), Some(id), Some(by)) => Some(Change::Ack { to, id, by }),
                _ => None,
            },
            _ => None,
        };
        change.unwrap_or(Change::Unknown)
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
            "cg.barrier:gw1:x",
            "cg.ack:gw1:7",
        ] {
            assert_eq!(Change::parse(payload), Change::Unknown, "{payload:?}");
        }
    }
}
