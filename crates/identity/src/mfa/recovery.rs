//! Recovery codes: ten single-use codes, shown once at 2FA enrolment, that
//! stand in for a TOTP code when the user has lost their authenticator.
//!
//! A code is 12 characters from a 32-symbol alphabet, printed as
//! `XXXX-XXXX-XXXX`: 60 random bits. The alphabet leaves out `0`/`O` and
//! `1`/`I`, so no printed character can be read as another one; input is
//! upper-cased and hyphens, dashes and spaces are dropped, so any way a
//! person retypes a code matches.
//!
//! **Hashing.** Only `SHA-256(domain ‖ salt ‖ code)` is stored. A slow
//! password hash such as argon2 exists to make guessing *low-entropy* human
//! passwords expensive; a 60-bit random code has no guessable structure, so
//! a slow hash would only make every login with a recovery code slower. The
//! random 16-byte salt per code is there because the hash is fast: without
//! it, one brute-force pass over the 2^60 codes would be checked against
//! every stored code of every user at once, so finding *some* code would
//! take 2^60 divided by the number of codes stored; with it, each code costs
//! the full 2^60 on its own. Online guessing is the login throttle's job.
//!
//! **Single use is the caller's job.** [`verify_and_consume`] is pure: it
//! returns the index of the matching stored code and the caller deletes that
//! row (or marks it used) in the same transaction that accepts the login,
//! checking that exactly one row changed so two concurrent requests with
//! the same code cannot both succeed.

use std::fmt;

use rand::Rng as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How many codes a user receives at enrolment.
pub const CODE_COUNT: usize = 10;
/// 32 symbols, 5 bits each; no `0`, `O`, `1` or `I`.
const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
const GROUP_LEN: usize = 4;
const CODE_LEN: usize = 12;
/// Characters of entropy times 5 bits; the module promises at least 60.
const _: () = assert!(CODE_LEN * 5 >= 60 && ALPHABET.len() == 32);
/// Longer input cannot be a code once separators are removed; refusing it
/// early bounds the work an attacker can make us do.
const MAX_INPUT_LEN: usize = 64;
const SALT_LEN: usize = 16;
const DIGEST_LEN: usize = 32;
/// Length of a [`StoredRecoveryCode`] in bytes: salt then digest.
pub const STORED_LEN: usize = SALT_LEN + DIGEST_LEN;
/// Domain separation, and a version in case the format ever changes.
const DOMAIN: &[u8] = b"claimguardian recovery code v1\0";

/// What is stored for one recovery code: a random salt and the SHA-256 of
/// the normalised code. Store [`as_bytes`](Self::as_bytes) (48 bytes).
#[derive(Clone)]
pub struct StoredRecoveryCode([u8; STORED_LEN]);

impl fmt::Debug for StoredRecoveryCode {
    // A hash is not the code, but there is no reason for it to reach logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoredRecoveryCode(..)")
    }
}

impl StoredRecoveryCode {
    /// Reads a stored value back; `None` if it has the wrong length.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn new(code: &[u8; CODE_LEN]) -> Self {
        let salt: [u8; SALT_LEN] = rand::random();
        let mut stored = [0u8; STORED_LEN];
        stored[..SALT_LEN].copy_from_slice(&salt);
        stored[SALT_LEN..].copy_from_slice(&digest(&salt, code));
        Self(stored)
    }

    fn matches(&self, code: &[u8; CODE_LEN]) -> bool {
        let (salt, expected) = self.0.split_at(SALT_LEN);
        digest(salt, code).ct_eq(expected).into()
    }
}

fn digest(salt: &[u8], code: &[u8; CODE_LEN]) -> [u8; DIGEST_LEN] {
    Sha256::new()
        .chain_update(DOMAIN)
        .chain_update(salt)
        .chain_update(code)
        .finalize()
        .into()
}

/// A fresh set of codes: `codes` to show the user once, `stored` to save.
/// `codes[i]` belongs to `stored[i]`.
pub struct GeneratedRecoveryCodes {
    pub codes: Vec<String>,
    pub stored: Vec<StoredRecoveryCode>,
}

impl fmt::Debug for GeneratedRecoveryCodes {
    // The plaintext codes are credentials: print only how many there are.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedRecoveryCodes")
            .field("count", &self.codes.len())
            .finish_non_exhaustive()
    }
}

/// Generates [`CODE_COUNT`] distinct codes from the thread-local CSPRNG.
pub fn generate() -> GeneratedRecoveryCodes {
    let mut rng = rand::rng();
    let mut raw: Vec<[u8; CODE_LEN]> = Vec::with_capacity(CODE_COUNT);
    while raw.len() < CODE_COUNT {
        let mut code = [0u8; CODE_LEN];
        for c in &mut code {
            *c = ALPHABET[rng.random_range(0..ALPHABET.len())];
        }
        // Two equal codes in one set (chance about 2^-54) would be two
        // stored rows for one code, so it could be used twice.
        if !raw.contains(&code) {
            raw.push(code);
        }
    }
    GeneratedRecoveryCodes {
        codes: raw.iter().map(display).collect(),
        stored: raw.iter().map(StoredRecoveryCode::new).collect(),
    }
}

/// `XXXX-XXXX-XXXX`.
fn display(code: &[u8; CODE_LEN]) -> String {
    code.chunks(GROUP_LEN)
        .map(|group| group.iter().map(|&b| char::from(b)).collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// Upper-cases and drops separators; `None` unless exactly [`CODE_LEN`]
/// alphabet characters remain.
fn normalise(presented: &str) -> Option<[u8; CODE_LEN]> {
    if presented.len() > MAX_INPUT_LEN {
        return None;
    }
    let mut code = [0u8; CODE_LEN];
    let mut len = 0;
    for c in presented.chars() {
        // Word processors and phones turn '-' into other dashes.
        if c.is_whitespace() || matches!(c, '-' | '\u{2010}'..='\u{2015}' | '\u{2212}') {
            continue;
        }
        let upper = c.to_ascii_uppercase();
        if !upper.is_ascii() || !ALPHABET.contains(&(upper as u8)) {
            return None;
        }
        *code.get_mut(len)? = upper as u8;
        len += 1;
    }
    (len == CODE_LEN).then_some(code)
}

/// The index in `stored` of the code `presented`, or `None`.
///
/// Despite the name this does not consume anything: the caller must delete
/// or mark `stored[index]` used (see the module documentation). Every stored
/// code is hashed and compared in constant time, without stopping at the
/// first match, so the time taken does not reveal which code matched.
pub fn verify_and_consume(presented: &str, stored: &[StoredRecoveryCode]) -> Option<usize> {
    let code = normalise(presented)?;
    let mut found = None;
    for (index, candidate) in stored.iter().enumerate() {
        if candidate.matches(&code) && found.is_none() {
            found = Some(index);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_ten_distinct_well_formed_codes() {
        let generated = generate();
        assert_eq!(generated.codes.len(), CODE_COUNT);
        assert_eq!(generated.stored.len(), CODE_COUNT);
        for code in &generated.codes {
            assert_eq!(code.len(), 14, "{code}");
            for (i, c) in code.bytes().enumerate() {
                if i == 4 || i == 9 {
                    assert_eq!(c, b'-', "{code}");
                } else {
                    assert!(ALPHABET.contains(&c), "{code}");
                }
            }
        }
        let mut unique = generated.codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), CODE_COUNT);
    }

    #[test]
    fn alphabet_has_no_lookalikes() {
        for c in [b'0', b'O', b'1', b'I'] {
            assert!(!ALPHABET.contains(&c), "{}", char::from(c));
        }
        let mut sorted = ALPHABET.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 32, "symbols must be distinct");
    }

    #[test]
    fn every_code_round_trips_to_its_index() {
        let generated = generate();
        for (index, code) in generated.codes.iter().enumerate() {
            assert_eq!(
                verify_and_consume(code, &generated.stored),
                Some(index),
                "{code}"
            );
        }
    }

    #[test]
    fn stored_values_round_trip_through_bytes() {
        let generated = generate();
        let reloaded: Vec<StoredRecoveryCode> = generated
            .stored
            .iter()
            .map(|s| StoredRecoveryCode::from_bytes(s.as_bytes()).expect("48 bytes"))
            .collect();
        assert_eq!(verify_and_consume(&generated.codes[3], &reloaded), Some(3));
        assert!(StoredRecoveryCode::from_bytes(&[0; STORED_LEN - 1]).is_none());
        assert!(StoredRecoveryCode::from_bytes(&[0; STORED_LEN + 1]).is_none());
        assert!(StoredRecoveryCode::from_bytes(&[]).is_none());
    }

    #[test]
    fn a_consumed_code_no_longer_verifies() {
        let generated = generate();
        let mut stored = generated.stored.clone();
        let code = &generated.codes[5];
        let index = verify_and_consume(code, &stored).expect("fresh code verifies");
        // What the caller does on success: delete that row.
        stored.remove(index);
        assert_eq!(verify_and_consume(code, &stored), None);
        // The others still work (indices after the removed one shift down).
        assert_eq!(verify_and_consume(&generated.codes[4], &stored), Some(4));
        assert_eq!(verify_and_consume(&generated.codes[6], &stored), Some(5));
    }

    #[test]
    fn input_is_normalised() {
        let generated = generate();
        let code = &generated.codes[0];
        let bare = code.replace('-', "");
        let variants = [
            code.to_lowercase(),
            bare.clone(),
            bare.to_lowercase(),
            code.replace('-', " "),
            format!("  {code}\n"),
            code.replace('-', "\u{2013}"),
            format!("{} {} {}", &bare[..3], &bare[3..8], &bare[8..]),
        ];
        for variant in &variants {
            assert_eq!(
                verify_and_consume(variant, &generated.stored),
                Some(0),
                "{variant:?}"
            );
        }
    }

    #[test]
    fn wrong_or_malformed_input_is_refused() {
        let generated = generate();
        let code = &generated.codes[0];
        let other = generate();
        let malformed = [
            String::new(),
            "----".to_owned(),
            code[..13].to_owned(),
            format!("{code}2"),
            // Characters outside the alphabet, even in the right shape.
            "0000-0000-0000".to_owned(),
            "OOOO-IIII-1111".to_owned(),
            code.replacen(|c: char| c.is_ascii_alphanumeric(), "é", 1),
            "2".repeat(10_000),
        ];
        for input in malformed.iter().chain(&other.codes) {
            assert_eq!(
                verify_and_consume(input, &generated.stored),
                None,
                "{input:?}"
            );
        }
        assert_eq!(verify_and_consume(code, &[]), None);
    }

    #[test]
    fn stored_values_are_salted_hashes_not_codes() {
        let code = normalise("ABCD-EFGH-JKLM").expect("valid code");
        let first = StoredRecoveryCode::new(&code);
        let second = StoredRecoveryCode::new(&code);
        // The same code stores differently each time.
        assert_ne!(first.as_bytes(), second.as_bytes());
        assert!(first.matches(&code) && second.matches(&code));
        let generated = generate();
        for (code, stored) in generated.codes.iter().zip(&generated.stored) {
            let bare = code.replace('-', "");
            assert!(
                !stored
                    .as_bytes()
                    .windows(4)
                    .any(|w| w == &bare.as_bytes()[..4]),
                "stored value contains the code"
            );
        }
    }

    #[test]
    fn debug_output_hides_codes() {
        let generated = generate();
        let printed = format!("{generated:?} {:?}", generated.stored[0]);
        for code in &generated.codes {
            assert!(!printed.contains(code.as_str()));
            assert!(!printed.contains(&code[..4]));
        }
    }
}
