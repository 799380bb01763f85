//! United States jurisdictions an organization may operate in.

/// The 50 states and the District of Columbia, by USPS code.
pub const US_STATE_CODES: [&str; 51] = [
    "AK", "AL", "AR", "AZ", "CA", "CO", "CT", "DC", "DE", "FL", "GA", "HI", "IA", "ID", "IL", "IN",
    "KS", "KY", "LA", "MA", "MD", "ME", "MI", "MN", "MO", "MS", "MT", "NC", "ND", "NE", "NH", "NJ",
    "NM", "NV", "NY", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VA", "VT", "WA",
    "WI", "WV", "WY",
];

/// Whether `code` is an upper-case USPS code of a state or DC.
pub fn is_us_state(code: &str) -> bool {
    US_STATE_CODES.binary_search(&code).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_sorted_for_binary_search() {
        assert!(US_STATE_CODES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn recognises_states() {
        assert!(is_us_state("FL"));
        assert!(is_us_state("DC"));
        assert!(!is_us_state("fl"));
        assert!(!is_us_state("XX"));
        assert!(!is_us_state("PR"));
    }
}
