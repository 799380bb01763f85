//! Roles within an organization and the permissions each holds.
//!
//! The matrix is data: one table below, documented in `docs/permissions.md`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A member's role in one organization, from most to least privileged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Manager,
    Member,
    Viewer,
}

/// A permission a method may require.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    PropertiesRead,
    PropertiesWrite,
    ClaimsRead,
    ClaimsWrite,
    ClaimsApprove,
    UsersRead,
    UsersManage,
    BillingRead,
    BillingManage,
    SettingsManage,
    AuditRead,
}

use Permission::*;

/// Permission names as they appear in the proto access options.
const PERMISSION_NAMES: &[(Permission, &str)] = &[
    (PropertiesRead, "properties.read"),
    (PropertiesWrite, "properties.write"),
    (ClaimsRead, "claims.read"),
    (ClaimsWrite, "claims.write"),
    (ClaimsApprove, "claims.approve"),
    (UsersRead, "users.read"),
    (UsersManage, "users.manage"),
    (BillingRead, "billing.read"),
    (BillingManage, "billing.manage"),
    (SettingsManage, "settings.manage"),
    (AuditRead, "audit.read"),
];

/// The role → permission matrix (the guide's hierarchy). Members' data
/// access is further narrowed to their own records by row-level security.
const ROLE_PERMISSIONS: &[(Role, &[Permission])] = &[
    (
        Role::Owner,
        &[
            PropertiesRead,
            PropertiesWrite,
            ClaimsRead,
            ClaimsWrite,
            ClaimsApprove,
            UsersRead,
            UsersManage,
            BillingRead,
            BillingManage,
            SettingsManage,
            AuditRead,
        ],
    ),
    (
        Role::Admin,
        &[
            PropertiesRead,
            PropertiesWrite,
            ClaimsRead,
            ClaimsWrite,
            ClaimsApprove,
            UsersRead,
            UsersManage,
            BillingRead,
            SettingsManage,
            AuditRead,
        ],
    ),
    (
        Role::Manager,
        &[
            PropertiesRead,
            PropertiesWrite,
            ClaimsRead,
            ClaimsWrite,
            ClaimsApprove,
            UsersRead,
        ],
    ),
    (
        Role::Member,
        &[PropertiesRead, PropertiesWrite, ClaimsRead, ClaimsWrite],
    ),
    (Role::Viewer, &[PropertiesRead, ClaimsRead]),
];

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Admin,
        Role::Manager,
        Role::Member,
        Role::Viewer,
    ];

    /// Whether this role holds the permission.
    pub fn has(self, permission: Permission) -> bool {
        ROLE_PERMISSIONS
            .iter()
            .find(|(role, _)| *role == self)
            .is_some_and(|(_, granted)| granted.contains(&permission))
    }

    /// Whether this role is `other` or above it in the hierarchy.
    pub fn at_least(self, other: Role) -> bool {
        // Variants are declared from most to least privileged.
        self <= other
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A permission name that is not in the matrix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission `{0}`")]
pub struct UnknownPermission(pub String);

impl FromStr for Permission {
    type Err = UnknownPermission;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PERMISSION_NAMES
            .iter()
            .find(|(_, name)| *name == s)
            .map(|(permission, _)| *permission)
            .ok_or_else(|| UnknownPermission(s.to_owned()))
    }
}

impl Permission {
    /// Every permission, in the order of the matrix.
    pub const ALL: [Permission; 11] = [
        PropertiesRead,
        PropertiesWrite,
        ClaimsRead,
        ClaimsWrite,
        ClaimsApprove,
        UsersRead,
        UsersManage,
        BillingRead,
        BillingManage,
        SettingsManage,
        AuditRead,
    ];

    pub fn as_str(self) -> &'static str {
        PERMISSION_NAMES
            .iter()
            .find(|(permission, _)| *permission == self)
            .map(|(_, name)| *name)
            .expect("every permission has a name in PERMISSION_NAMES")
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_permission_round_trips_through_its_name() {
        for (permission, name) in PERMISSION_NAMES {
            assert_eq!(name.parse::<Permission>(), Ok(*permission));
            assert_eq!(permission.as_str(), *name);
        }
        assert!("properties.delete".parse::<Permission>().is_err());
    }

    #[test]
    fn each_role_holds_no_more_than_the_role_above_it() {
        for pair in Role::ALL.windows(2) {
            for (permission, _) in PERMISSION_NAMES {
                if pair[1].has(*permission) {
                    assert!(pair[0].has(*permission), "{} lacks {permission}", pair[0]);
                }
            }
        }
    }

    #[test]
    fn roles_compare_by_privilege() {
        assert!(Role::Owner.at_least(Role::Admin));
        assert!(Role::Admin.at_least(Role::Admin));
        assert!(!Role::Viewer.at_least(Role::Member));
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn guide_hierarchy_holds() {
        assert!(Role::Owner.has(BillingManage));
        assert!(!Role::Admin.has(BillingManage));
        assert!(Role::Admin.has(UsersManage));
        assert!(Role::Manager.has(UsersRead) && !Role::Manager.has(UsersManage));
        assert!(Role::Member.has(PropertiesWrite) && !Role::Member.has(UsersRead));
        assert!(Role::Viewer.has(PropertiesRead) && !Role::Viewer.has(PropertiesWrite));
    }
}
