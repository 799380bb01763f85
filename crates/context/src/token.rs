//! The internal context token: the gateway's signed statement of a call's
//! [`TenantContext`], sent to services in the `x-cg-context` metadata entry.
//!
//! Format: `v1.<base64url(JSON claims)>.<base64url(HMAC-SHA256)>`. HMAC rather
//! than a signature because every hop mints or verifies one per call: it
//! costs about a microsecond where Ed25519 costs tens, and the key is
//! shared only inside the mesh (gateway and services of one deployment).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::TenantContext;

const VERSION_PREFIX: &str = "v1";
/// Tokens longer than this are refused before any decoding.
const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Clock skew tolerated between gateway and service.
const LEEWAY_SECONDS: u64 = 5;

type HmacSha256 = Hmac<Sha256>;

/// The key that signs and verifies context tokens. Never printed.
#[derive(Clone)]
pub struct MeshKey([u8; 32]);

impl fmt::Debug for MeshKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MeshKey(..)")
    }
}

/// Why a context token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextTokenError {
    #[error("context token is malformed")]
    Malformed,
    #[error("context token signature is invalid")]
    BadSignature,
    #[error("context token has expired")]
    Expired,
    #[error("mesh key must be 32 bytes, hex or base64url encoded")]
    BadKey,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    iat: u64,
    exp: u64,
    ctx: TenantContext,
}

impl MeshKey {
    /// A fresh random key (single-process deployments such as `claimguardian up`).
    pub fn generate() -> Self {
        Self(rand_bytes())
    }

    /// A key from configuration: 64 hex digits or 43 base64url characters.
    pub fn parse(encoded: &str) -> Result<Self, ContextTokenError> {
        let encoded = encoded.trim();
        let bytes = if encoded.len() == 64 && encoded.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&encoded[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| ContextTokenError::BadKey)?
        } else {
            URL_SAFE_NO_PAD
                .decode(encoded)
                .map_err(|_| ContextTokenError::BadKey)?
        };
        let key: [u8; 32] = bytes.try_into().map_err(|_| ContextTokenError::BadKey)?;
        Ok(Self(key))
    }

    /// The key as 64 hex digits, for handing to another process.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.0).expect("HMAC accepts a key of any length")
    }

    /// Signs `ctx`, valid for `ttl` from now.
    pub fn mint(&self, ctx: &TenantContext, ttl: Duration) -> String {
        self.mint_at(ctx, unix_now(), ttl)
    }

    /// Signs `ctx` as if at `issued_at` (seconds since the Unix epoch): for
    /// jobs that sign ahead of time, and for tests of expiry.
    pub fn mint_at(&self, ctx: &TenantContext, now: u64, ttl: Duration) -> String {
        let claims = Claims {
            iat: now,
            exp: now + ttl.as_secs().max(1),
            ctx: ctx.clone(),
        };
        let payload = serde_json::to_vec(&claims).expect("a context always serializes");
        let mut out = String::with_capacity(payload.len() * 4 / 3 + 64);
        out.push_str(VERSION_PREFIX);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut out);
        let mut mac = self.mac();
        mac.update(out.as_bytes());
        let signature = mac.finalize().into_bytes();
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut out);
        out
    }

    /// Verifies a token and returns the context it carries.
    pub fn verify(&self, token: &str) -> Result<TenantContext, ContextTokenError> {
        self.verify_at(token, unix_now())
    }

    fn verify_at(&self, token: &str, now: u64) -> Result<TenantContext, ContextTokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(ContextTokenError::Malformed);
        }
        let (signed, signature) = token.rsplit_once('.').ok_or(ContextTokenError::Malformed)?;
        let (version, payload) = signed.split_once('.').ok_or(ContextTokenError::Malformed)?;
        if version != VERSION_PREFIX {
            return Err(ContextTokenError::Malformed);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| ContextTokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        // Constant-time comparison inside `verify_slice`.
        mac.verify_slice(&signature)
            .map_err(|_| ContextTokenError::BadSignature)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| ContextTokenError::Malformed)?;
        let claims: Claims =
            serde_json::from_slice(&payload).map_err(|_| ContextTokenError::Malformed)?;
        if claims.exp + LEEWAY_SECONDS <= now || claims.iat > now + LEEWAY_SECONDS {
            return Err(ContextTokenError::Expired);
        }
        Ok(claims.ctx)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn rand_bytes() -> [u8; 32] {
    // `rand`'s thread RNG is a CSPRNG seeded from the operating system.
    rand::random()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ApiKeyId, Principal, RequestId};

    fn ctx() -> TenantContext {
        TenantContext {
            request_id: RequestId::new(),
            principal: Principal::Operator {
                key_id: ApiKeyId::new(),
            },
            tenant: None,
            client: crate::ClientInfo::default(),
        }
    }

    #[test]
    fn a_minted_token_verifies_to_the_same_context() {
        let key = MeshKey::generate();
        let ctx = ctx();
        let token = key.mint(&ctx, Duration::from_secs(30));
        assert_eq!(key.verify(&token), Ok(ctx));
    }

    #[test]
    fn another_key_is_refused() {
        let token = MeshKey::generate().mint(&ctx(), Duration::from_secs(30));
        assert_eq!(
            MeshKey::generate().verify(&token),
            Err(ContextTokenError::BadSignature)
        );
    }

    #[test]
    fn an_expired_token_is_refused() {
        let key = MeshKey::generate();
        let token = key.mint_at(&ctx(), 1_000, Duration::from_secs(30));
        assert!(key.verify_at(&token, 1_030).is_ok(), "within leeway");
        assert_eq!(
            key.verify_at(&token, 1_035),
            Err(ContextTokenError::Expired)
        );
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let key = MeshKey::generate();
        let token = key.mint(&ctx(), Duration::from_secs(30));
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"iat":0,"exp":99999999999,"ctx":{}}"#);
        parts[1] = &forged;
        assert_eq!(
            key.verify(&parts.join(".")),
            Err(ContextTokenError::BadSignature)
        );
        assert_eq!(key.verify("garbage"), Err(ContextTokenError::Malformed));
        assert_eq!(key.verify(""), Err(ContextTokenError::Malformed));
    }

    #[test]
    fn keys_parse_from_hex_and_round_trip() {
        let key = MeshKey::generate();
        let parsed = MeshKey::parse(&key.to_hex()).expect("hex parses");
        assert_eq!(parsed.0, key.0);
        assert_eq!(MeshKey::parse("abc").err(), Some(ContextTokenError::BadKey));
    }
}
