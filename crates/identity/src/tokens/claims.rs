//! The claims of an access token: a JWT with `typ: at+jwt` (RFC 9068),
//! signed by identity with EdDSA (Ed25519) and verified by the gateway
//! against identity's JWKS.

use serde::{Deserialize, Serialize};

/// The `typ` header of access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// The `aud` of every access token: the platform's gateway.
pub const AUDIENCE: &str = "claimguardian";
/// The JWS algorithm of access tokens.
pub const ALGORITHM: &str = "EdDSA";

/// Claims of an access token. All are required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The identity service's issuer URL.
    pub iss: String,
    /// The user id (UUID).
    pub sub: String,
    /// [`AUDIENCE`].
    pub aud: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Not before, seconds since the Unix epoch.
    pub nbf: i64,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Unique token id (UUID), for revocation.
    pub jti: String,
    /// The organization id (UUID) the token acts in.
    pub org: String,
    /// The organization code.
    pub org_code: String,
    /// The member's role in that organization: owner, admin, manager, member, viewer.
    pub role: String,
    /// How the user authenticated (RFC 8176): `pwd`, `otp`, `sso`.
    pub amr: Vec<String>,
}
