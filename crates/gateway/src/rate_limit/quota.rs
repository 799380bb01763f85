//! The quota table: how many calls each tier may make per route class.

use std::collections::HashMap;

use cg_proto::access::v1::RateLimitClass;

/// How many calls a tier may make in one class, per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub calls: u32,
    pub period: Period,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Minute,
    Hour,
}

impl Period {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Period::Minute => "minute",
            Period::Hour => "hour",
        }
    }

    pub(super) fn length(self) -> std::time::Duration {
        match self {
            Period::Minute => std::time::Duration::from_secs(60),
            Period::Hour => std::time::Duration::from_secs(3_600),
        }
    }
}

/// The tiers the table knows; an unknown tier is limited as Standard.
pub(super) const TIERS: [&str; 4] = ["standard", "professional", "enterprise", "custom"];

/// The classes that are limited; methods without a class have no policy.
pub(super) const CLASSES: [RateLimitClass; 7] = [
    RateLimitClass::Read,
    RateLimitClass::Write,
    RateLimitClass::Property,
    RateLimitClass::Ai,
    RateLimitClass::Auth,
    RateLimitClass::Admin,
    RateLimitClass::Export,
];

/// The table's name for `tier`: itself when known, else Standard's.
pub(super) fn tier_key(tier: &str) -> &'static str {
    TIERS.iter().find(|t| **t == tier).unwrap_or(&TIERS[0])
}

/// The limit of `class` for `tier`. AI and property routes follow the
/// product guide; the other classes are sized so that an interactive
/// organization of the tier's user count never meets them. Custom gets
/// twice Enterprise until per-contract limits are stored.
pub fn tier_quota(tier: &str, class: RateLimitClass) -> Limit {
    use Period::{Hour, Minute};
    let column = match tier {
        "professional" => 1,
        "enterprise" => 2,
        "custom" => 3,
        _ => 0,
    };
    let (calls, period) = match class {
        RateLimitClass::Ai => ([50, 200, 1_000, 2_000], Hour),
        RateLimitClass::Property => ([100, 500, 2_000, 4_000], Minute),
        RateLimitClass::Read => ([600, 1_500, 6_000, 12_000], Minute),
        RateLimitClass::Write => ([120, 300, 1_200, 2_400], Minute),
        RateLimitClass::Auth => ([120, 300, 600, 1_200], Minute),
        RateLimitClass::Admin => ([60, 120, 300, 600], Minute),
        RateLimitClass::Export => ([30, 60, 240, 480], Hour),
        // Methods without a class never reach the limiter (no policy).
        RateLimitClass::Unspecified => ([1, 1, 1, 1], Minute),
    };
    Limit {
        calls: calls[column],
        period,
    }
}

/// The lower-case name of `class` used in keys and error details.
pub(super) fn class_name(class: RateLimitClass) -> String {
    class
        .as_str_name()
        .strip_prefix("RATE_LIMIT_CLASS_")
        .unwrap_or("UNSPECIFIED")
        .to_ascii_lowercase()
}

/// The limit of every (tier, class) pair, resolved once from a table.
#[derive(Debug)]
pub(super) struct Quotas(HashMap<(&'static str, RateLimitClass), Limit>);

impl Quotas {
    pub(super) fn from_table(table: impl Fn(&str, RateLimitClass) -> Limit) -> Quotas {
        let mut limits = HashMap::new();
        for tier in TIERS {
            for class in CLASSES {
                limits.insert((tier, class), table(tier, class));
            }
        }
        Quotas(limits)
    }

    /// The table's tier name and the limit for a call of `tier` in
    /// `class`; `None` for a class that is not limited.
    pub(super) fn get(&self, tier: &str, class: RateLimitClass) -> Option<(&'static str, Limit)> {
        let tier = tier_key(tier);
        self.0.get(&(tier, class)).map(|limit| (tier, *limit))
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&(&'static str, RateLimitClass), &Limit)> {
        self.0.iter()
    }
}
