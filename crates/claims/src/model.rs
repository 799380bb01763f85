//! Claims domain types. Wire types never appear here.

use cg_context::UserId;
use cg_status::FieldViolations;
use chrono::{DateTime, Datelike, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

/// Kind of property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyType {
    SingleFamily,
    Condo,
    MultiFamily,
    Commercial,
    MobileHome,
}

impl PropertyType {
    pub const ALL: [PropertyType; 5] = [
        PropertyType::SingleFamily,
        PropertyType::Condo,
        PropertyType::MultiFamily,
        PropertyType::Commercial,
        PropertyType::MobileHome,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PropertyType::SingleFamily => "single_family",
            PropertyType::Condo => "condo",
            PropertyType::MultiFamily => "multi_family",
            PropertyType::Commercial => "commercial",
            PropertyType::MobileHome => "mobile_home",
        }
    }

    pub fn parse(s: &str) -> Option<PropertyType> {
        PropertyType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// A US postal address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub line1: String,
    pub line2: String,
    pub city: String,
    pub state: String,
    pub postal_code: String,
}

/// The editable fields of a property.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyFields {
    pub display_name: String,
    pub address: Address,
    pub property_type: PropertyType,
    pub value: Option<Decimal>,
    pub year_built: Option<i32>,
}

/// A stored property.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    pub id: Uuid,
    pub fields: PropertyFields,
    pub owner_user_id: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const MAX_TEXT: usize = 200;

impl PropertyFields {
    /// Checks the fields against the organization's allowed states.
    /// `prefix` is the request path of the property, e.g. `property`.
    pub fn validate(&self, allowed_states: &[String], prefix: &str) -> Result<(), FieldViolations> {
        let mut violations = FieldViolations::new();
        let mut text = |field: &str, value: &str, required: bool| {
            let length = value.trim().chars().count();
            if required && length == 0 {
                violations.add(format!("{prefix}.{field}"), "is required");
            } else if length > MAX_TEXT {
                violations.add(
                    format!("{prefix}.{field}"),
                    "must be at most 200 characters",
                );
            }
        };
        text("display_name", &self.display_name, true);
        text("address.line1", &self.address.line1, true);
        text("address.line2", &self.address.line2, false);
        text("address.city", &self.address.city, true);
        if !allowed_states.contains(&self.address.state) {
            violations.add(
                format!("{prefix}.address.state"),
                format!(
                    "`{}` is not among the organization's allowed states ({})",
                    self.address.state,
                    allowed_states.join(", ")
                ),
            );
        }
        if !is_zip(&self.address.postal_code) {
            violations.add(
                format!("{prefix}.address.postal_code"),
                "must be a ZIP or ZIP+4 code",
            );
        }
        if let Some(year) = self.year_built {
            let next_year = Utc::now().year() + 1;
            if !(1600..=next_year).contains(&year) {
                violations.add(
                    format!("{prefix}.year_built"),
                    format!("must be between 1600 and {next_year}"),
                );
            }
        }
        violations.check()
    }
}

fn is_zip(code: &str) -> bool {
    let bytes = code.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    match bytes.len() {
        5 => digits(bytes),
        10 => digits(&bytes[..5]) && bytes[5] == b'-' && digits(&bytes[6..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(state: &str) -> PropertyFields {
        PropertyFields {
            display_name: "Main residence".into(),
            address: Address {
                line1: "1 Ocean Dr".into(),
                line2: String::new(),
                city: "Miami".into(),
                state: state.into(),
                postal_code: "33139".into(),
            },
            property_type: PropertyType::SingleFamily,
            value: None,
            year_built: Some(1990),
        }
    }

    #[test]
    fn a_state_outside_the_allowed_ones_is_named() {
        let allowed = vec!["FL".to_owned()];
        assert!(fields("FL").validate(&allowed, "property").is_ok());
        let err = fields("TX")
            .validate(&allowed, "property")
            .expect_err("TX refused");
        assert_eq!(err.fields().collect::<Vec<_>>(), ["property.address.state"]);
    }

    #[test]
    fn zip_codes() {
        assert!(is_zip("33139"));
        assert!(is_zip("33139-1234"));
        assert!(!is_zip("3313"));
        assert!(!is_zip("33139 1234"));
    }
}
