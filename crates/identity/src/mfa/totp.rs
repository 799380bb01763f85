//! RFC 6238 time-based one-time passwords (TOTP) for the second factor.
//!
//! The HOTP/TOTP arithmetic (HMAC, dynamic truncation, steps) is the
//! `totp-rs` crate's; this module adds what that crate leaves to its caller:
//! our issuer and label in the enrolment URI, a strict code syntax, and
//! replay protection.
//!
//! **Parameters.** SHA-1, 6 digits, 30-second steps, one step of tolerance
//! either side ([`TotpParams::STANDARD`]). These are the only values every
//! authenticator app honours; several apps ignore `algorithm=` in the URI and
//! compute SHA-1 anyway, so choosing SHA-256 would lock those users out.
//! HMAC-SHA-1 is not weakened by SHA-1 collisions (RFC 4226 Appendix B.2).
//! Other parameters exist for the RFC test vectors.
//!
//! **Replay.** RFC 6238 §5.2: a verifier must not accept the same code twice.
//! [`verify`] returns the time step the code matched; the caller stores it per
//! user and passes it back as `last_used_step`. A code is accepted only if its
//! step is strictly later than that, so a code works at most once, and a code
//! of an older step that is still inside the window cannot be used after a
//! newer one was. The caller must store the step in the same statement that
//! accepts the login (for example `UPDATE … SET totp_last_step = $2 WHERE
//! user_id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)` and check
//! that one row changed), or two concurrent requests with the same code could
//! both pass.
//!
//! **Label.** The secret belongs to the person, not to an organization: a
//! person can be a member of several organizations and signs in once. So the
//! label is `ClaimGuardian:<e-mail>` and the `issuer` parameter is
//! `ClaimGuardian` (apps group and pick icons by issuer, so it stays exactly
//! our product name). A deployment that enrols per organization can pass the
//! organization's display name, which is appended to the account part of the
//! label (`ClaimGuardian:alice@example.com (Acme)`) where apps show it.

use std::fmt;

use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Builder, Secret, Totp};

/// The issuer shown by authenticator apps.
pub const ISSUER: &str = "ClaimGuardian";
/// Length of a generated secret: 160 bits, the length RFC 4226 §4 recommends.
pub const SECRET_BYTES: usize = 20;
/// RFC 4226 §4: the shared secret must be at least 128 bits.
const MIN_SECRET_BYTES: usize = 16;
/// Steps accepted on either side of the current one (RFC 6238 §5.2
/// recommends at most one), for clock drift and typing time.
pub const WINDOW_STEPS: u64 = 1;

/// The HMAC hash function of RFC 6238.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

/// How codes are computed. [`TotpParams::STANDARD`] is what users enrol
/// with; the other values exist for the RFC test vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpParams {
    pub algorithm: HashAlgorithm,
    /// 6 to 8 (RFC 4226 §5.3).
    pub digits: u8,
    /// Length of a time step in seconds (RFC 6238 `X`); at least 1.
    pub step_seconds: u64,
}

impl TotpParams {
    /// SHA-1, 6 digits, 30-second steps.
    pub const STANDARD: Self = Self {
        algorithm: HashAlgorithm::Sha1,
        digits: 6,
        step_seconds: 30,
    };
}

impl Default for TotpParams {
    fn default() -> Self {
        Self::STANDARD
    }
}

/// Why a TOTP operation failed.
///
/// `InvalidCode` and `Replayed` are kept apart for the audit log; an API
/// should answer both the same way so a caller learns nothing more than
/// "not accepted".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    #[error("a code must be exactly {digits} ASCII digits")]
    MalformedCode { digits: u8 },
    #[error("the code does not match any step in the window")]
    InvalidCode,
    #[error("the code's time step was already used, or a later one was")]
    Replayed,
    #[error("a TOTP secret must be base32 of at least 128 bits")]
    InvalidSecret,
    #[error("unsupported TOTP parameters: {digits} digits, {step_seconds}-second step")]
    InvalidParams { digits: u8, step_seconds: u64 },
    #[error("the account name must be a non-empty e-mail address without ':'")]
    InvalidAccountName,
}

/// A user's shared TOTP secret (raw bytes). Encrypt it before storing it:
/// anyone who holds it can compute every future code.
#[derive(Clone)]
pub struct TotpSecret(Vec<u8>);

impl fmt::Debug for TotpSecret {
    // Never print the secret, not even in a debug log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

impl TotpSecret {
    /// A new 160-bit secret from the thread-local CSPRNG (ChaCha seeded by
    /// the operating system). Generated here rather than with `totp-rs`'s
    /// `gen_secret` feature, which would pull a second major version of `rand`.
    pub fn generate() -> Self {
        Self(rand::random::<[u8; SECRET_BYTES]>().to_vec())
    }

    /// A secret from raw bytes (e.g. after decrypting the stored value).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, TotpError> {
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(TotpError::InvalidSecret);
        }
        Ok(Self(bytes))
    }

    /// A secret from its base32 text (RFC 4648). Case, spaces and `=` padding
    /// are ignored because people copy secrets by hand and apps print them in
    /// groups.
    pub fn from_base32(text: &str) -> Result<Self, TotpError> {
        let cleaned: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '=')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let secret = Secret::try_from_base32(&cleaned).map_err(|_| TotpError::InvalidSecret)?;
        Self::from_bytes(secret.as_bytes().to_vec())
    }

    /// The base32 text (RFC 4648, no padding) that authenticator apps accept
    /// for manual entry.
    pub fn to_base32(&self) -> String {
        Secret::from(self.0.as_slice()).to_base32()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Builds the `totp-rs` generator, refusing parameters it would panic on
/// (more than 9 digits) or that no RFC allows.
fn generator(params: &TotpParams, secret: &TotpSecret) -> Result<Totp, TotpError> {
    let invalid = TotpError::InvalidParams {
        digits: params.digits,
        step_seconds: params.step_seconds,
    };
    if !(6..=8).contains(&params.digits) || params.step_seconds == 0 {
        return Err(invalid);
    }
    let algorithm = match params.algorithm {
        HashAlgorithm::Sha1 => Algorithm::SHA1,
        HashAlgorithm::Sha256 => Algorithm::SHA256,
        HashAlgorithm::Sha512 => Algorithm::SHA512,
    };
    Builder::new()
        .with_algorithm(algorithm)
        .with_digits(params.digits)
        .with_step_duration(params.step_seconds)
        .with_secret(secret.as_bytes())
        .build()
        .map_err(|error| match error {
            totp_rs::TotpError::SecretTooShort { .. } => TotpError::InvalidSecret,
            _ => invalid,
        })
}

/// The `otpauth://totp/…` URI to show as a QR code at enrolment.
///
/// `account_email` names the account in the app; `organization`, if given,
/// is appended to it (see the module documentation). A `:` in the
/// organization's display name is replaced by a space because the label uses
/// `:` to separate issuer and account; an e-mail address with `:` is refused
/// instead, since rewriting it would show the user a different address.
pub fn enrolment_uri(
    secret: &TotpSecret,
    account_email: &str,
    organization: Option<&str>,
) -> Result<String, TotpError> {
    let email = account_email.trim();
    if email.is_empty() || email.contains(':') {
        return Err(TotpError::InvalidAccountName);
    }
    let account = match organization.map(str::trim).filter(|org| !org.is_empty()) {
        Some(org) => format!("{email} ({})", org.replace(':', " ")),
        None => email.to_owned(),
    };
    let params = TotpParams::STANDARD;
    Builder::new()
        .with_digits(params.digits)
        .with_step_duration(params.step_seconds)
        .with_secret(secret.as_bytes())
        .with_account_name(account)
        .with_issuer(Some(ISSUER))
        .build()
        .and_then(|totp| totp.to_url())
        .map_err(|error| match error {
            totp_rs::TotpError::SecretTooShort { .. } => TotpError::InvalidSecret,
            _ => TotpError::InvalidAccountName,
        })
}

/// The code for `unix_time`, as an app would show it. For tests and test
/// clients; the server itself only verifies.
pub fn code_at(
    params: &TotpParams,
    secret: &TotpSecret,
    unix_time: u64,
) -> Result<String, TotpError> {
    Ok(generator(params, secret)?.generate(unix_time).to_string())
}

/// Verifies a code with [`TotpParams::STANDARD`]; see [`verify_with`].
pub fn verify(
    secret: &TotpSecret,
    code: &str,
    now_unix: u64,
    last_used_step: Option<u64>,
) -> Result<u64, TotpError> {
    verify_with(
        &TotpParams::STANDARD,
        secret,
        code,
        now_unix,
        last_used_step,
    )
}

/// Verifies `code` at `now_unix` within ±[`WINDOW_STEPS`] steps and returns
/// the step it matched, which the caller stores as the next
/// `last_used_step`. A code whose step is not later than `last_used_step` is
/// [`TotpError::Replayed`].
///
/// `code` must be exactly `params.digits` ASCII digits: no spaces, signs or
/// other scripts' digits (strip display spaces before calling, if an API
/// wants to allow them). Every step of the window is computed and compared in
/// constant time, without stopping at the first match, so the time taken
/// does not depend on how close a guess was.
///
/// If a code happens to match two steps of the window (a one-in-a-million
/// coincidence), the later step is returned: recording the earlier one would
/// let the same digits be accepted a second time for the later step.
pub fn verify_with(
    params: &TotpParams,
    secret: &TotpSecret,
    code: &str,
    now_unix: u64,
    last_used_step: Option<u64>,
) -> Result<u64, TotpError> {
    let totp = generator(params, secret)?;
    if code.len() != usize::from(params.digits) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TotpError::MalformedCode {
            digits: params.digits,
        });
    }
    let current = now_unix / params.step_seconds;
    let mut matched_any = false;
    let mut fresh_match = None;
    for step in current.saturating_sub(WINDOW_STEPS)..=current.saturating_add(WINDOW_STEPS) {
        // A step whose start time does not fit in u64 cannot be the code's.
        let Some(step_start) = step.checked_mul(params.step_seconds) else {
            continue;
        };
        let expected = totp.generate(step_start).to_string();
        let equal: bool = expected.as_bytes().ct_eq(code.as_bytes()).into();
        if equal {
            matched_any = true;
            if last_used_step.is_none_or(|last| step > last) {
                fresh_match = Some(step);
            }
        }
    }
    match (fresh_match, matched_any) {
        (Some(step), _) => Ok(step),
        (None, true) => Err(TotpError::Replayed),
        (None, false) => Err(TotpError::InvalidCode),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_SHA1: &[u8] = b"12345678901234567890";
    const SEED_SHA256: &[u8] = b"12345678901234567890123456789012";
    const SEED_SHA512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    /// RFC 6238 Appendix B, every row: (time, algorithm, 8-digit TOTP).
    const RFC6238_VECTORS: [(u64, HashAlgorithm, &str); 18] = [
        (59, HashAlgorithm::Sha1, "94287082"),
        (59, HashAlgorithm::Sha256, "46119246"),
        (59, HashAlgorithm::Sha512, "90693936"),
        (1111111109, HashAlgorithm::Sha1, "07081804"),
        (1111111109, HashAlgorithm::Sha256, "68084774"),
        (1111111109, HashAlgorithm::Sha512, "25091201"),
        (1111111111, HashAlgorithm::Sha1, "14050471"),
        (1111111111, HashAlgorithm::Sha256, "67062674"),
        (1111111111, HashAlgorithm::Sha512, "99943326"),
        (1234567890, HashAlgorithm::Sha1, "89005924"),
        (1234567890, HashAlgorithm::Sha256, "91819424"),
        (1234567890, HashAlgorithm::Sha512, "93441116"),
        (2000000000, HashAlgorithm::Sha1, "69279037"),
        (2000000000, HashAlgorithm::Sha256, "90698825"),
        (2000000000, HashAlgorithm::Sha512, "38618901"),
        (20000000000, HashAlgorithm::Sha1, "65353130"),
        (20000000000, HashAlgorithm::Sha256, "77737706"),
        (20000000000, HashAlgorithm::Sha512, "47863826"),
    ];

    /// RFC 4226 Appendix D: HOTP values for counters 0..=9.
    const RFC4226_VECTORS: [&str; 10] = [
        "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
        "520489",
    ];

    /// A fixed time in the middle of a 30-second step.
    const NOW: u64 = 1_700_000_015;

    fn secret(bytes: &[u8]) -> TotpSecret {
        TotpSecret::from_bytes(bytes.to_vec()).expect("test seed is at least 128 bits")
    }

    fn standard_code(secret: &TotpSecret, step: u64) -> String {
        code_at(&TotpParams::STANDARD, secret, step * 30).expect("standard params are valid")
    }

    #[test]
    fn rfc6238_appendix_b_vectors() {
        for (time, algorithm, expected) in RFC6238_VECTORS {
            let seed = match algorithm {
                HashAlgorithm::Sha1 => SEED_SHA1,
                HashAlgorithm::Sha256 => SEED_SHA256,
                HashAlgorithm::Sha512 => SEED_SHA512,
            };
            let params = TotpParams {
                algorithm,
                digits: 8,
                step_seconds: 30,
            };
            let secret = secret(seed);
            let code = code_at(&params, &secret, time).expect("valid params");
            assert_eq!(code, expected, "{algorithm:?} at T={time}");
            assert_eq!(
                verify_with(&params, &secret, expected, time, None),
                Ok(time / 30),
                "{algorithm:?} at T={time} must verify"
            );
        }
    }

    #[test]
    fn rfc4226_appendix_d_hotp_vectors() {
        // HOTP(K, C) is TOTP with a 1-second step at time C (RFC 6238 §4.2
        // defines TOTP as HOTP with C = floor(T / X)).
        let params = TotpParams {
            algorithm: HashAlgorithm::Sha1,
            digits: 6,
            step_seconds: 1,
        };
        let secret = secret(SEED_SHA1);
        for (counter, expected) in (0u64..).zip(RFC4226_VECTORS) {
            let code = code_at(&params, &secret, counter).expect("valid params");
            assert_eq!(code, expected, "HOTP counter {counter}");
            assert_eq!(
                verify_with(&params, &secret, expected, counter, None),
                Ok(counter),
                "HOTP counter {counter} must verify"
            );
        }
    }

    #[test]
    fn standard_params_are_sha1_six_digits_thirty_seconds() {
        assert_eq!(TotpParams::default(), TotpParams::STANDARD);
        assert_eq!(TotpParams::STANDARD.algorithm, HashAlgorithm::Sha1);
        assert_eq!(TotpParams::STANDARD.digits, 6);
        assert_eq!(TotpParams::STANDARD.step_seconds, 30);
        let code = standard_code(&secret(SEED_SHA1), NOW / 30);
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
    }

    #[test]
    fn accepts_the_current_step_and_one_either_side() {
        let secret = secret(SEED_SHA1);
        let current = NOW / 30;
        for step in [current - 1, current, current + 1] {
            let code = standard_code(&secret, step);
            assert_eq!(verify(&secret, &code, NOW, None), Ok(step), "step {step}");
        }
    }

    #[test]
    fn refuses_codes_two_steps_away() {
        let secret = secret(SEED_SHA1);
        let current = NOW / 30;
        for step in [current - 2, current + 2] {
            let code = standard_code(&secret, step);
            assert_eq!(
                verify(&secret, &code, NOW, None),
                Err(TotpError::InvalidCode),
                "step {step}"
            );
        }
    }

    #[test]
    fn window_edges_follow_step_boundaries() {
        let secret = secret(SEED_SHA1);
        let step = NOW / 30;
        let code = standard_code(&secret, step);
        // Valid from the first second of the previous step to the last
        // second of the next one.
        assert_eq!(verify(&secret, &code, (step - 1) * 30, None), Ok(step));
        assert_eq!(verify(&secret, &code, (step + 2) * 30 - 1, None), Ok(step));
        assert_eq!(
            verify(&secret, &code, (step + 2) * 30, None),
            Err(TotpError::InvalidCode)
        );
        assert_eq!(
            verify(&secret, &code, (step - 1) * 30 - 1, None),
            Err(TotpError::InvalidCode)
        );
    }

    #[test]
    fn replay_in_the_same_step_is_refused() {
        let secret = secret(SEED_SHA1);
        let code = standard_code(&secret, NOW / 30);
        let used = verify(&secret, &code, NOW, None).expect("first use is accepted");
        assert_eq!(used, NOW / 30);
        assert_eq!(
            verify(&secret, &code, NOW, Some(used)),
            Err(TotpError::Replayed)
        );
        // Still refused a step later, while the code is inside the window.
        assert_eq!(
            verify(&secret, &code, NOW + 30, Some(used)),
            Err(TotpError::Replayed)
        );
    }

    #[test]
    fn an_older_step_is_refused_after_a_newer_one_was_used() {
        let secret = secret(SEED_SHA1);
        let current = NOW / 30;
        let newer = standard_code(&secret, current + 1);
        let used = verify(&secret, &newer, NOW, None).expect("next-step code is accepted");
        assert_eq!(used, current + 1);
        for step in [current - 1, current] {
            let older = standard_code(&secret, step);
            assert_eq!(
                verify(&secret, &older, NOW, Some(used)),
                Err(TotpError::Replayed),
                "step {step}"
            );
        }
    }

    #[test]
    fn the_next_step_is_accepted_after_the_current_one() {
        let secret = secret(SEED_SHA1);
        let current = NOW / 30;
        let first = verify(&secret, &standard_code(&secret, current), NOW, None);
        assert_eq!(first, Ok(current));
        let next = standard_code(&secret, current + 1);
        assert_eq!(
            verify(&secret, &next, NOW + 30, Some(current)),
            Ok(current + 1)
        );
    }

    #[test]
    fn a_wrong_code_is_invalid_not_replayed() {
        let secret = secret(SEED_SHA1);
        let current = NOW / 30;
        let window: Vec<String> = (current - 1..=current + 1)
            .map(|step| standard_code(&secret, step))
            .collect();
        let wrong = (0..1_000_000u32)
            .map(|n| format!("{n:06}"))
            .find(|candidate| !window.contains(candidate))
            .expect("some 6-digit string is outside a 3-code window");
        assert_eq!(
            verify(&secret, &wrong, NOW, Some(current)),
            Err(TotpError::InvalidCode)
        );
    }

    #[test]
    fn malformed_codes_are_refused() {
        let secret = secret(SEED_SHA1);
        let good = standard_code(&secret, NOW / 30);
        let malformed = [
            String::new(),
            good[..5].to_owned(),
            format!("{good}0"),
            format!(" {good}"),
            format!("{good} "),
            format!("{} {}", &good[..3], &good[3..]),
            format!("+{}", &good[1..]),
            format!("-{}", &good[1..]),
            "12345a".to_owned(),
            "abcdef".to_owned(),
            // Arabic-Indic digits: numeric to Unicode, not to us.
            "١٢٣٤٥٦".to_owned(),
            // Fullwidth digits.
            "１２３４５６".to_owned(),
        ];
        for code in &malformed {
            assert_eq!(
                verify(&secret, code, NOW, None),
                Err(TotpError::MalformedCode { digits: 6 }),
                "{code:?}"
            );
        }
        // Eight digits are malformed under the standard parameters even if
        // they are the right 8-digit code.
        let eight = TotpParams {
            digits: 8,
            ..TotpParams::STANDARD
        };
        let code8 = code_at(&eight, &secret, NOW).expect("valid params");
        assert_eq!(
            verify(&secret, &code8, NOW, None),
            Err(TotpError::MalformedCode { digits: 6 })
        );
        assert_eq!(
            verify_with(&eight, &secret, &code8, NOW, None),
            Ok(NOW / 30)
        );
    }

    #[test]
    fn unsupported_params_are_refused_not_panicked_on() {
        let secret = secret(SEED_SHA1);
        for (digits, step_seconds) in [(5, 30), (9, 30), (10, 30), (255, 30), (6, 0)] {
            let params = TotpParams {
                algorithm: HashAlgorithm::Sha1,
                digits,
                step_seconds,
            };
            let expected = TotpError::InvalidParams {
                digits,
                step_seconds,
            };
            assert_eq!(code_at(&params, &secret, NOW), Err(expected.clone()));
            assert_eq!(
                verify_with(&params, &secret, "123456", NOW, None),
                Err(expected)
            );
        }
    }

    #[test]
    fn extreme_times_do_not_panic() {
        let secret = secret(SEED_SHA1);
        for now in [0, 1, 29, u64::MAX - 1, u64::MAX] {
            let result = verify(&secret, "123456", now, None);
            assert!(
                matches!(result, Ok(_) | Err(TotpError::InvalidCode)),
                "{now}: {result:?}"
            );
        }
        // At time 0 the window is steps 0 and 1 (there is no step -1).
        let code = standard_code(&secret, 0);
        assert_eq!(verify(&secret, &code, 0, None), Ok(0));
    }

    #[test]
    fn generated_secret_is_160_random_bits_in_base32() {
        let a = TotpSecret::generate();
        let b = TotpSecret::generate();
        assert_eq!(a.as_bytes().len(), 20);
        assert_ne!(a.as_bytes(), b.as_bytes());
        let text = a.to_base32();
        // 160 bits are exactly 32 base32 characters, so no padding.
        assert_eq!(text.len(), 32);
        assert!(
            text.bytes()
                .all(|c| c.is_ascii_uppercase() || (b'2'..=b'7').contains(&c))
        );
        let back = TotpSecret::from_base32(&text).expect("own base32 parses");
        assert_eq!(back.as_bytes(), a.as_bytes());
    }

    #[test]
    fn base32_input_ignores_case_spaces_and_padding() {
        let expected = secret(SEED_SHA1);
        assert_eq!(expected.to_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        for text in [
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
            "gezdgnbvgy3tqojqgezdgnbvgy3tqojq",
            "gezd gnbv gy3t qojq gezd gnbv gy3t qojq",
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ====",
        ] {
            let parsed = TotpSecret::from_base32(text).expect("valid base32");
            assert_eq!(parsed.as_bytes(), expected.as_bytes(), "{text:?}");
        }
    }

    #[test]
    fn short_or_invalid_secrets_are_refused() {
        assert_eq!(
            TotpSecret::from_bytes(vec![0; 15]).map(|_| ()),
            Err(TotpError::InvalidSecret)
        );
        assert!(TotpSecret::from_bytes(vec![0; 16]).is_ok());
        // 80 bits of valid base32.
        assert_eq!(
            TotpSecret::from_base32("GEZDGNBVGY3TQOJQ").map(|_| ()),
            Err(TotpError::InvalidSecret)
        );
        // '1', '8' and '0' are not in the base32 alphabet.
        for text in [
            "",
            "GEZDGNBVGY3TQOJ1GEZDGNBVGY3TQOJQ",
            "80000000000000000000000000000000",
        ] {
            assert_eq!(
                TotpSecret::from_base32(text).map(|_| ()),
                Err(TotpError::InvalidSecret),
                "{text:?}"
            );
        }
    }

    #[test]
    fn secret_debug_does_not_print_the_secret() {
        let secret = secret(SEED_SHA1);
        let printed = format!("{secret:?}");
        assert_eq!(printed, "TotpSecret(..)");
    }

    #[test]
    fn enrolment_uri_names_issuer_and_account() {
        let secret = secret(SEED_SHA1);
        let uri = enrolment_uri(&secret, "alice@example.com", None).expect("valid account");
        assert_eq!(
            uri,
            "otpauth://totp/ClaimGuardian:alice%40example.com\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ClaimGuardian"
        );
        // An authenticator app reading it gets our parameters back.
        let parsed = Totp::from_url(&uri).expect("totp-rs parses its own URI");
        assert_eq!(parsed.issuer(), Some(ISSUER));
        assert_eq!(parsed.account_name(), "alice@example.com");
        assert_eq!(parsed.algorithm(), Algorithm::SHA1);
        assert_eq!(parsed.digits(), 6);
        assert_eq!(parsed.step(), 30);
        assert_eq!(parsed.secret().as_bytes(), SEED_SHA1);
    }

    #[test]
    fn enrolment_uri_can_carry_the_organization() {
        let secret = secret(SEED_SHA1);
        let uri = enrolment_uri(&secret, " bob@example.com ", Some("Acme: Claims & Co"))
            .expect("valid account");
        assert_eq!(
            uri,
            "otpauth://totp/ClaimGuardian:bob%40example.com%20%28Acme%20%20Claims%20%26%20Co%29\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ClaimGuardian"
        );
        let parsed = Totp::from_url(&uri).expect("totp-rs parses its own URI");
        assert_eq!(parsed.account_name(), "bob@example.com (Acme  Claims & Co)");
        assert_eq!(parsed.issuer(), Some(ISSUER));
        // A blank organization is the same as none.
        assert_eq!(
            enrolment_uri(&secret, "bob@example.com", Some("  ")),
            enrolment_uri(&secret, "bob@example.com", None)
        );
    }

    #[test]
    fn enrolment_uri_refuses_bad_account_names() {
        let secret = secret(SEED_SHA1);
        for email in ["", "   ", "evil:alice@example.com"] {
            assert_eq!(
                enrolment_uri(&secret, email, None),
                Err(TotpError::InvalidAccountName),
                "{email:?}"
            );
        }
    }

    #[test]
    fn enrolment_then_verification_round_trip() {
        let secret = TotpSecret::generate();
        let uri = enrolment_uri(&secret, "carol@example.com", None).expect("valid account");
        // What the user's app does: read the URI, compute the current code.
        let app = Totp::from_url(&uri).expect("parsable URI");
        let shown = app.generate(NOW).to_string();
        assert_eq!(verify(&secret, &shown, NOW, None), Ok(NOW / 30));
    }
}
