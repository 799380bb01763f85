//! Per-organization feature overrides: an operator grants or withholds one
//! feature of one organization whatever its tier, or hands the decision
//! back to the tier. Wire types never appear here.

use crate::model::OrganizationCode;

/// Longest feature code accepted; the catalog's are far shorter.
const MAX_FEATURE_LEN: usize = 64;

/// Who decides whether an organization has a feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureSetting {
    /// No override: the organization has the feature when its tier does.
    Tier,
    /// Granted whatever the tier.
    Enabled,
    /// Withheld whatever the tier.
    Disabled,
}

impl FeatureSetting {
    /// The stored row's `enabled` value; `None` means no row.
    pub fn stored(self) -> Option<bool> {
        match self {
            FeatureSetting::Tier => None,
            FeatureSetting::Enabled => Some(true),
            FeatureSetting::Disabled => Some(false),
        }
    }

    pub fn from_stored(enabled: Option<bool>) -> FeatureSetting {
        match enabled {
            None => FeatureSetting::Tier,
            Some(true) => FeatureSetting::Enabled,
            Some(false) => FeatureSetting::Disabled,
        }
    }

    /// Name recorded in the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            FeatureSetting::Tier => "tier",
            FeatureSetting::Enabled => "enabled",
            FeatureSetting::Disabled => "disabled",
        }
    }
}

/// What SetFeatureOverride asks for, once its shape is valid. Whether the
/// feature is in the catalog and the organization exists is decided
/// against the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureOverrideChange {
    pub organization: OrganizationCode,
    pub feature: String,
    pub setting: FeatureSetting,
}

/// Checks that `raw` looks like a catalog feature code (`advanced_analytics`),
/// so an error message never echoes arbitrary input.
pub fn check_feature_code(raw: &str) -> Result<(), &'static str> {
    if raw.is_empty() {
        return Err("is required");
    }
    if raw.len() > MAX_FEATURE_LEN
        || !raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err("must be a feature code such as `advanced_analytics`; see ListTiers");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_through_storage() {
        for setting in [
            FeatureSetting::Tier,
            FeatureSetting::Enabled,
            FeatureSetting::Disabled,
        ] {
            assert_eq!(FeatureSetting::from_stored(setting.stored()), setting);
        }
        assert_eq!(FeatureSetting::Tier.stored(), None);
    }

    #[test]
    fn feature_codes_are_catalog_shaped() {
        assert_eq!(check_feature_code("advanced_analytics"), Ok(()));
        assert_eq!(check_feature_code("sso"), Ok(()));
        assert_eq!(check_feature_code(""), Err("is required"));
        for bad in [
            "SSO",
            "advanced-analytics",
            "sso;drop",
            "é",
            &"a".repeat(65),
        ] {
            assert!(check_feature_code(bad).is_err(), "{bad:?} accepted");
        }
    }
}
