//! Tenancy domain types. Wire types never appear here.

use cg_context::OrganizationId;
use cg_status::FieldViolations;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::states::is_us_state;

/// Longest organization code. With the `org_` prefix the schema name stays
/// far below PostgreSQL's 63-byte identifier limit, so no two codes can be
/// cut to the same schema.
pub const MAX_CODE_LEN: usize = 40;
const MAX_DISPLAY_NAME_LEN: usize = 200;
const MAX_DOMAINS: usize = 20;

/// A validated organization code: lowercase letters, digits and hyphens,
/// starting and ending with a letter or digit, at most [`MAX_CODE_LEN`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrganizationCode(String);

impl OrganizationCode {
    pub fn parse(raw: &str) -> Result<OrganizationCode, &'static str> {
        if raw.is_empty() {
            return Err("is required");
        }
        if raw.len() > MAX_CODE_LEN {
            return Err("must be at most 40 characters");
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("may contain only lowercase letters, digits and hyphens");
        }
        if raw.starts_with('-') || raw.ends_with('-') {
            return Err("must start and end with a letter or digit");
        }
        Ok(OrganizationCode(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `org_<code>` with hyphens as underscores. Injective: a valid code has
    /// no underscore, so distinct codes give distinct schema names.
    pub fn schema_name(&self) -> String {
        format!("org_{}", self.0.replace('-', "_"))
    }
}

/// Lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrganizationStatus {
    Active,
    Suspended,
}

impl OrganizationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrganizationStatus::Active => "active",
            OrganizationStatus::Suspended => "suspended",
        }
    }

    pub fn parse(s: &str) -> Option<OrganizationStatus> {
        match s {
            "active" => Some(OrganizationStatus::Active),
            "suspended" => Some(OrganizationStatus::Suspended),
            _ => None,
        }
    }
}

/// A customer organization.
#[derive(Debug, Clone, PartialEq)]
pub struct Organization {
    pub id: OrganizationId,
    pub code: String,
    pub display_name: String,
    pub domains: Vec<String>,
    pub primary_contact_email: String,
    pub tier: String,
    pub status: OrganizationStatus,
    pub suspension_reason: String,
    pub allowed_states: Vec<String>,
    pub primary_state: String,
    pub data_residency_region: String,
    pub schema_name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A subscription tier from the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Tier {
    pub code: String,
    pub display_name: String,
    pub rank: i32,
    pub max_users: i64,
    pub max_properties: i64,
    pub max_claims: i64,
    pub max_ai_requests_monthly: i64,
    /// Zero: nationwide.
    pub max_states: i32,
    pub features: Vec<String>,
    /// `None`: custom pricing.
    pub monthly_base_price: Option<Decimal>,
    pub currency_code: String,
}

/// What CreateOrganization asks for, before validation against the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewOrganization {
    pub code: String,
    pub display_name: String,
    pub domains: Vec<String>,
    pub primary_contact_email: String,
    pub tier: String,
    pub allowed_states: Vec<String>,
    pub primary_state: String,
    pub data_residency_region: String,
}

/// Data-residency regions the platform runs in.
pub const REGIONS: [&str; 3] = ["us-east-1", "us-west-2", "us-central-1"];
pub const DEFAULT_REGION: &str = "us-east-1";

/// Checks the fields of a new organization that need no catalog.
pub fn validate_basics(new: &NewOrganization, violations: &mut FieldViolations) {
    if let Err(problem) = OrganizationCode::parse(&new.code) {
        violations.add("code", problem);
    }
    let name = new.display_name.trim();
    if name.is_empty() {
        violations.add("display_name", "is required");
    } else if name.chars().count() > MAX_DISPLAY_NAME_LEN {
        violations.add("display_name", "must be at most 200 characters");
    }
    if !is_plausible_email(&new.primary_contact_email) {
        violations.add("primary_contact_email", "must be an e-mail address");
    }
    validate_domains(&new.domains, "domains", violations);
    if !new.data_residency_region.is_empty()
        && !REGIONS.contains(&new.data_residency_region.as_str())
    {
        violations.add(
            "data_residency_region",
            format!("must be one of {}", REGIONS.join(", ")),
        );
    }
}

/// Checks the allowed and primary states against the tier's state count.
pub fn validate_states(
    allowed: &[String],
    primary: &str,
    tier: &Tier,
    violations: &mut FieldViolations,
) {
    if allowed.is_empty() {
        violations.add("allowed_states", "at least one state is required");
    }
    for (index, state) in allowed.iter().enumerate() {
        if !is_us_state(state) {
            violations.add(
                format!("allowed_states[{index}]"),
                format!("`{state}` is not a two-letter US state code"),
            );
        } else if allowed[..index].contains(state) {
            violations.add(
                format!("allowed_states[{index}]"),
                format!("`{state}` is listed twice"),
            );
        }
    }
    if tier.max_states > 0 && allowed.len() > tier.max_states as usize {
        violations.add(
            "allowed_states",
            format!(
                "the {} tier allows at most {} state(s), {} given",
                tier.code,
                tier.max_states,
                allowed.len()
            ),
        );
    }
    if primary.is_empty() {
        violations.add("primary_state", "is required");
    } else if !allowed.iter().any(|s| s == primary) {
        violations.add("primary_state", "must be one of allowed_states");
    }
}

/// Checks custom domain names: lowercase DNS names with at least two labels.
pub fn validate_domains(domains: &[String], field: &str, violations: &mut FieldViolations) {
    if domains.len() > MAX_DOMAINS {
        violations.add(field, format!("at most {MAX_DOMAINS} domains"));
    }
    for (index, domain) in domains.iter().enumerate() {
        if !is_valid_domain(domain) {
            violations.add(
                format!("{field}[{index}]"),
                "must be a lowercase domain name such as claims.example.com",
            );
        } else if domains[..index].contains(domain) {
            violations.add(format!("{field}[{index}]"), "is listed twice");
        }
    }
}

fn is_valid_domain(domain: &str) -> bool {
    if domain.len() > 253 || !domain.contains('.') {
        return false;
    }
    domain.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

fn is_plausible_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && email.len() <= 254
                && !email.chars().any(char::is_whitespace)
                && is_valid_domain(&domain.to_ascii_lowercase())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_rules() {
        assert!(OrganizationCode::parse("demo").is_ok());
        assert!(OrganizationCode::parse("demo-corp-2").is_ok());
        for bad in [
            "",
            "Demo",
            "demo corp",
            "demo;drop",
            "-demo",
            "demo-",
            "demo_corp",
            "déjà",
        ] {
            assert!(OrganizationCode::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(OrganizationCode::parse(&"a".repeat(40)).is_ok());
        assert!(OrganizationCode::parse(&"a".repeat(41)).is_err());
    }

    #[test]
    fn schema_names_are_distinct_for_distinct_codes() {
        let a = OrganizationCode::parse("demo-corp").expect("valid");
        let b = OrganizationCode::parse("democorp").expect("valid");
        assert_eq!(a.schema_name(), "org_demo_corp");
        assert_ne!(a.schema_name(), b.schema_name());
        let longest = OrganizationCode::parse(&"z".repeat(MAX_CODE_LEN)).expect("valid");
        assert!(longest.schema_name().len() <= 63);
    }

    #[test]
    fn domains_and_emails() {
        assert!(is_valid_domain("claims.demo-corp.com"));
        assert!(!is_valid_domain("Demo.com"));
        assert!(!is_valid_domain("localhost"));
        assert!(!is_valid_domain("a..b"));
        assert!(is_plausible_email("admin@demo-corp.com"));
        assert!(!is_plausible_email("admin"));
        assert!(!is_plausible_email("a b@c.com"));
    }
}
