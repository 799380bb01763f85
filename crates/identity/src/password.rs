//! Passwords: argon2id (RFC 9106 second recommended parameters as set by
//! the `argon2` crate's defaults), PHC strings at rest.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use std::sync::OnceLock;

/// Shortest accepted password.
pub const MIN_LENGTH: usize = 12;
/// Longest accepted password (hashing cost must stay bounded).
pub const MAX_LENGTH: usize = 256;

/// Why a password is not acceptable.
pub fn policy_violation(password: &str) -> Option<&'static str> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        Some("must be at least 12 characters")
    } else if length > MAX_LENGTH {
        Some("must be at most 256 characters")
    } else {
        None
    }
}

/// The argon2id PHC string of `password` with a fresh salt.
pub fn hash(password: &str) -> String {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).expect("16 bytes make a valid salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 accepts any password within MAX_LENGTH")
        .to_string()
}

/// Whether `password` matches `stored`. With no stored hash (unknown user,
/// SSO-only account) a dummy hash is checked anyway, so the answer takes
/// as long either way and reveals nothing about which accounts exist.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash("a password nobody has, for timing"));
    let (phc, real) = match stored {
        Some(phc) => (phc, true),
        None => (dummy.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let matches = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    matches && real
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_reveal_nothing() {
        let stored = hash("correct horse battery staple");
        assert!(stored.starts_with("$argon2id$"));
        assert!(!stored.contains("correct horse"));
        assert!(verify("correct horse battery staple", Some(&stored)));
        assert!(!verify("correct horse battery stapler", Some(&stored)));
        assert!(!verify("a password nobody has, for timing", None));
        assert!(!verify("anything", Some("not a phc string")));
        assert_ne!(hash("same"), hash("same"), "salted");
    }

    #[test]
    fn policy() {
        assert!(policy_violation("short").is_some());
        assert!(policy_violation("twelve chars").is_none());
        assert!(policy_violation(&"x".repeat(257)).is_some());
    }
}
