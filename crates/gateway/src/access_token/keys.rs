//! Identity's JWKS as the gateway uses it: Ed25519 keys by `kid`, each
//! pinned to EdDSA.
//!
//! Only `OKP`/`Ed25519`/`EdDSA` keys are usable; every other entry (RSA, EC,
//! X25519, a key without `alg` or with another one, a malformed `x`) is
//! ignored with a warning rather than failing the whole set, so that a JWKS
//! identity extends with another key type one day still serves its Ed25519
//! keys. A token naming an ignored key is refused as an unknown key.
//!
//! `x` is checked here, once per refresh, to be exactly 32 bytes of a valid,
//! non-weak Ed25519 point. Beyond refusing bad keys early, this keeps
//! `jsonwebtoken` 11 safe: its RustCrypto EdDSA verifier slices the key
//! bytes with `[..32]` (a panic on a shorter key) and silently ignores any
//! bytes after the 32nd.

use std::collections::{HashMap, HashSet};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cg_identity::tokens::claims::ALGORITHM;
use cg_proto::identity::v1::Jwk;
use ed25519_dalek::VerifyingKey;
use jsonwebtoken::DecodingKey;

/// The JWK key type of Ed25519 keys (RFC 8037).
const KTY_OKP: &str = "OKP";
/// The JWK curve of Ed25519 keys (RFC 8037).
const CRV_ED25519: &str = "Ed25519";
/// The only `use` a signing key may declare; absent is accepted too.
const USE_SIG: &str = "sig";
/// Key ids longer than this are not looked up (identity's are far shorter).
pub(super) const MAX_KID_LEN: usize = 256;

/// One usable verification key.
#[derive(Debug, Clone)]
pub(super) struct VerifyKey {
    /// The key for `jsonwebtoken`, always used with `Algorithm::EdDSA`.
    pub(super) decoding: DecodingKey,
    /// The raw public key: tells a key that was replaced under the same
    /// `kid` from one that was kept.
    pub(super) public: [u8; 32],
}

/// The usable keys of one JWKS response, by `kid`.
#[derive(Debug, Default)]
pub(super) struct KeySet {
    keys: HashMap<String, VerifyKey>,
}

impl KeySet {
    /// The usable keys of `jwks`; unusable entries are logged and skipped.
    ///
    /// A `kid` that appears more than once is dropped entirely, whatever
    /// the entries hold: which key a token named would be a guess.
    pub(super) fn from_jwks(jwks: &[Jwk]) -> Self {
        let mut keys = HashMap::new();
        let mut duplicated = HashSet::new();
        for jwk in jwks {
            if keys.contains_key(&jwk.kid) || duplicated.contains(&jwk.kid) {
                duplicated.insert(jwk.kid.clone());
                keys.remove(&jwk.kid);
                continue;
            }
            match usable_key(jwk) {
                Ok(key) => {
                    keys.insert(jwk.kid.clone(), key);
                }
                Err(reason) => {
                    tracing::warn!(kid = %jwk.kid.escape_debug(), reason, "ignoring a JWKS entry");
                }
            }
        }
        for kid in &duplicated {
            tracing::warn!(kid = %kid.escape_debug(), "ignoring a kid that the JWKS lists more than once");
        }
        Self { keys }
    }

    /// The key of `kid`, if the set has it.
    pub(super) fn get(&self, kid: &str) -> Option<&VerifyKey> {
        self.keys.get(kid)
    }

    /// Whether the set still holds exactly this key under `kid`.
    pub(super) fn holds(&self, kid: &str, public: &[u8; 32]) -> bool {
        self.keys.get(kid).is_some_and(|key| key.public == *public)
    }

    /// The number of usable keys.
    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether some key of `self` is absent from `next` or was replaced
    /// there by another key under the same `kid`.
    pub(super) fn loses_keys_in(&self, next: &KeySet) -> bool {
        self.keys
            .iter()
            .any(|(kid, key)| !next.holds(kid, &key.public))
    }
}

/// Whether `kid` could name a key at all: non-empty, bounded, printable
/// ASCII. Anything else is refused without asking identity for its JWKS,
/// so junk in the header cannot trigger a refresh (nor reach a log line).
pub(super) fn plausible_kid(kid: &str) -> bool {
    !kid.is_empty() && kid.len() <= MAX_KID_LEN && kid.bytes().all(|b| b.is_ascii_graphic())
}

/// The verification key of one JWK, or why it is not usable.
fn usable_key(jwk: &Jwk) -> Result<VerifyKey, &'static str> {
    if jwk.kty != KTY_OKP {
        return Err("kty is not OKP");
    }
    if jwk.crv != CRV_ED25519 {
        return Err("crv is not Ed25519");
    }
    // Pinned: the JWK must say EdDSA itself, not leave it to the token.
    if jwk.alg != ALGORITHM {
        return Err("alg is not EdDSA");
    }
    if !(jwk.r#use.is_empty() || jwk.r#use == USE_SIG) {
        return Err("use is not sig");
    }
    if !plausible_kid(&jwk.kid) {
        return Err("kid is empty, too long or not printable ASCII");
    }
    if !(jwk.y.is_empty() && jwk.n.is_empty() && jwk.e.is_empty()) {
        return Err("an OKP key has y, n or e");
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(&jwk.x)
        .map_err(|_| "x is not unpadded base64url")?;
    let public: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| "x is not 32 bytes")?;
    let point = VerifyingKey::from_bytes(&public).map_err(|_| "x is not an Ed25519 point")?;
    // Small-order keys verify signatures an attacker can forge for them.
    if point.is_weak() {
        return Err("x is a weak (small-order) key");
    }
    // Despite its name, `from_ed_der` takes the raw 32-byte key for EdDSA,
    // exactly what `from_ed_components` would decode `x` into.
    let decoding = DecodingKey::from_ed_der(&public);
    Ok(VerifyKey { decoding, public })
}
