//! Verification of access tokens at the gateway.
//!
//! Identity signs access tokens, RFC 9068 JWTs with `typ: at+jwt`, with
//! Ed25519 and publishes the public keys as a JWKS, which reaches the
//! gateway through a [`JwksSource`]. [`AccessTokenVerifier::verify`] checks a
//! token locally and returns its [`AccessClaims`], or a [`TokenError`] that
//! names the reason it was refused.
//!
//! # What is checked, in this order
//!
//! 1. **Size**: longer than `max_token_bytes` is [`TokenError::TooLarge`],
//!    before the token is hashed or decoded.
//! 2. **The verified cache** (see below): a hit skips steps 3 to 6.
//! 3. **Shape**: exactly three non-empty segments of the base64url alphabet.
//! 4. **Header**: a JSON object. It must not carry `jku`, `jwk`, `x5u`,
//!    `x5c`, `crit`, `enc` or `zip`. The key has to come from identity's
//!    JWKS and never from the token itself, and this verifier understands no
//!    critical extension and no encryption. `alg` must be exactly `EdDSA`.
//!    `typ` must be exactly `at+jwt` or `application/at+jwt`, compared with
//!    case. That refuses ID tokens and other JWTs that the same keys might
//!    sign. `kid` must be present.
//! 5. **Key**: the JWKS entry for `kid`, pinned to EdDSA. If the `kid` is
//!    unknown, the JWKS is fetched again, once. Fetches happen at most once
//!    per `min_refresh_interval`, and concurrent callers share one fetch.
//!    A flood of made-up `kid`s therefore costs identity at most one call
//!    per interval. If the fetch fails, the result is
//!    [`TokenError::KeysUnavailable`]. Kids that could not name a key (empty,
//!    over 256 bytes, not printable ASCII) never cause a fetch.
//! 6. **Signature** by `jsonwebtoken` with `Algorithm::EdDSA` as the only
//!    algorithm. After it come the audience and issuer, and the spec claims
//!    `exp`, `nbf`, `aud`, `iss` and `sub`, which must be present. The
//!    claims are decoded only after the signature has verified.
//! 7. **Claims**: every field of [`AccessClaims`] must be present, non-null
//!    and of its type. `sub`, `org` and `jti` must be UUIDs in canonical
//!    form (lowercase, hyphenated), so that one organization has exactly one
//!    spelling when the gateway compares ids. `role` must be one of owner,
//!    admin, manager, member or viewer.
//! 8. **Time**, with the leeway (at most 60 s): the token is refused if now
//!    is at or after `exp + leeway`, or if `nbf` or `iat` is after
//!    `now + leeway`.
//!
//! # `jsonwebtoken` 11, and why some checks are done here
//!
//! - Its `exp`/`nbf` checks read the system clock and cannot be given a
//!   time, so they are turned off and step 8 does them here, against the
//!   `now` passed to [`AccessTokenVerifier::verify_at`]. Nothing is lost:
//!   [`verify`](AccessTokenVerifier::verify) passes the system clock.
//! - It never looks at `iat`. Putting `iat` among the required spec claims
//!   is silently ignored, so steps 7 and 8 check it.
//! - It deserializes the claims type before it checks for required claims.
//!   Decoding straight into [`AccessClaims`] would turn a missing `aud`
//!   into an opaque JSON error. The claims are therefore decoded as a JSON
//!   map and then checked here, name by name.
//! - Its EdDSA verifier panics on keys shorter than 32 bytes. See the `keys`
//!   module: every key is checked when the JWKS is loaded.
//! - It picks its crypto back end from crate features. If both `rust_crypto`
//!   and `aws_lc_rs` end up enabled in one build, the first signature check
//!   panics, unless a provider was installed with
//!   `CryptoProvider::install_default`.
//!
//! # The verified cache
//!
//! Tokens that verified are cached by the SHA-256 of the token string,
//! together with their claims. A repeat costs a hash, a lookup and the time
//! checks of step 8. Capacity is bounded (`verified_cache_capacity`, 0 turns
//! caching off). An entry leaves the cache when:
//! - its token expires (the hit then reports [`TokenError::Expired`]), or it
//!   is evicted because the cache is full (expired tokens go first, then
//!   the ones that expire soonest);
//! - a JWKS refresh removes the key that verified it, or publishes another
//!   key under the same `kid`;
//! - [`AccessTokenVerifier::forget`] or [`AccessTokenVerifier::clear_cache`]
//!   is called.
//!
//! Nothing else invalidates an entry. In particular a logout or a revoked
//! refresh token does not: access tokens are short-lived by design, and the
//! gateway consults no revocation list. `forget` is the hook for one.

mod cache;
mod keys;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cg_context::Role;
use cg_identity::tokens::claims::{ACCESS_TOKEN_TYPE, ALGORITHM, AUDIENCE, AccessClaims};
use cg_proto::identity::v1::Jwk;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use tonic::{Code, Status};

use self::cache::{Digest, VerifiedCache};
use self::keys::KeySet;

/// The longest leeway for clock skew the verifier accepts; longer
/// configured values are clamped to it.
pub const MAX_LEEWAY: Duration = Duration::from_secs(60);

/// The `typ` of access tokens in its full media type form, which RFC 9068
/// allows as well.
const ACCESS_TOKEN_MEDIA_TYPE: &str = "application/at+jwt";

/// Header parameters whose presence refuses a token. Each would let the
/// token choose its own key (`jku`, `jwk`, `x5u`, `x5c`), demand processing
/// this verifier does not do (`crit`), or mark an encrypted token (`enc`,
/// `zip`).
const FORBIDDEN_HEADERS: [&str; 7] = ["jku", "jwk", "x5u", "x5c", "crit", "enc", "zip"];

/// The spec claims `jsonwebtoken` must find. It ignores `iat` (see the
/// module docs); `iat` stays in the list anyway, because that is the rule.
const REQUIRED_SPEC_CLAIMS: [&str; 6] = ["exp", "nbf", "iat", "aud", "iss", "sub"];

/// The JSON type a claim of [`AccessClaims`] must have.
#[derive(Debug, Clone, Copy)]
enum ClaimType {
    Integer,
    String,
    Strings,
}

/// Every claim of [`AccessClaims`] with its type. All are required.
const CLAIMS: [(&str, ClaimType, &str); 11] = [
    ("iss", ClaimType::String, "`iss` must be a string"),
    ("sub", ClaimType::String, "`sub` must be a string"),
    ("aud", ClaimType::String, "`aud` must be a single string"),
    ("exp", ClaimType::Integer, "`exp` must be an integer"),
    ("nbf", ClaimType::Integer, "`nbf` must be an integer"),
    ("iat", ClaimType::Integer, "`iat` must be an integer"),
    ("jti", ClaimType::String, "`jti` must be a string"),
    ("org", ClaimType::String, "`org` must be a string"),
    ("org_code", ClaimType::String, "`org_code` must be a string"),
    ("role", ClaimType::String, "`role` must be a string"),
    (
        "amr",
        ClaimType::Strings,
        "`amr` must be an array of strings",
    ),
];

/// Why a token was refused.
///
/// The messages name only the reason, never anything from the token, so
/// they are safe to return to the client. [`TokenError::code`] gives the
/// gRPC code and [`TokenError::to_status`] the whole status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a compact JWS, or a part that is not the expected base64url or
    /// JSON.
    #[error("malformed access token: {0}")]
    Malformed(&'static str),
    /// Longer than the configured maximum; refused unread.
    #[error("access token too large")]
    TooLarge,
    /// A header parameter this verifier refuses (named).
    #[error("access token header parameter `{0}` is not accepted")]
    UnsupportedHeader(&'static str),
    /// `typ` is absent or not `at+jwt`.
    #[error("not an access token (wrong or missing `typ`)")]
    WrongType,
    /// `alg` is absent or not `EdDSA`.
    #[error("access token algorithm not accepted")]
    WrongAlgorithm,
    /// No usable key of identity's JWKS has the token's `kid`, or the token
    /// has no `kid`.
    #[error("access token signed by an unknown key")]
    UnknownKey,
    /// The signature does not verify with the key named by `kid`.
    #[error("access token signature is invalid")]
    BadSignature,
    /// `exp` has passed, beyond the leeway.
    #[error("access token expired")]
    Expired,
    /// `nbf` is still ahead, beyond the leeway.
    #[error("access token not valid yet")]
    NotYetValid,
    /// `aud` is not the gateway's audience.
    #[error("access token issued for another audience")]
    WrongAudience,
    /// `iss` is not identity's issuer.
    #[error("access token from an unexpected issuer")]
    WrongIssuer,
    /// A required claim is absent or null (named).
    #[error("access token lacks the `{0}` claim")]
    MissingClaim(&'static str),
    /// A claim has the wrong type or an unacceptable value.
    #[error("invalid access token claim: {0}")]
    InvalidClaim(&'static str),
    /// Identity's JWKS could not be fetched, so the token cannot be checked
    /// now; the client may retry.
    #[error("access token keys unavailable, retry shortly")]
    KeysUnavailable,
}

impl TokenError {
    /// The gRPC code of the refusal: `UNAVAILABLE` for
    /// [`TokenError::KeysUnavailable`], `UNAUTHENTICATED` otherwise.
    pub fn code(&self) -> Code {
        match self {
            TokenError::KeysUnavailable => Code::Unavailable,
            _ => Code::Unauthenticated,
        }
    }

    /// A stable machine-readable reason, for `ErrorInfo`.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::Malformed(_) => "TOKEN_MALFORMED",
            TokenError::TooLarge => "TOKEN_TOO_LARGE",
            TokenError::UnsupportedHeader(_) => "TOKEN_UNSUPPORTED_HEADER",
            TokenError::WrongType => "TOKEN_WRONG_TYPE",
            TokenError::WrongAlgorithm => "TOKEN_WRONG_ALGORITHM",
            TokenError::UnknownKey => "TOKEN_UNKNOWN_KEY",
            TokenError::BadSignature => "TOKEN_BAD_SIGNATURE",
            TokenError::Expired => "TOKEN_EXPIRED",
            TokenError::NotYetValid => "TOKEN_NOT_YET_VALID",
            TokenError::WrongAudience => "TOKEN_WRONG_AUDIENCE",
            TokenError::WrongIssuer => "TOKEN_WRONG_ISSUER",
            TokenError::MissingClaim(_) => "TOKEN_MISSING_CLAIM",
            TokenError::InvalidClaim(_) => "TOKEN_INVALID_CLAIM",
            TokenError::KeysUnavailable => "TOKEN_KEYS_UNAVAILABLE",
        }
    }

    /// The status to answer with: [`TokenError::code`], the message, and an
    /// `ErrorInfo` with [`TokenError::reason`].
    pub fn to_status(&self) -> Status {
        cg_status::with_reason(self.code(), self.to_string(), self.reason(), &[])
    }
}

/// Fetching identity's JWKS failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fetching the JWKS failed: {0}")]
pub struct JwksError(pub String);

impl From<Status> for JwksError {
    fn from(status: Status) -> Self {
        JwksError(format!("{:?}: {}", status.code(), status.message()))
    }
}

/// Where identity's JWKS comes from. The gateway calls identity's `GetJwks`;
/// tests serve keys from memory.
///
/// The verifier calls `fetch` at most once per `min_refresh_interval`,
/// except through [`AccessTokenVerifier::refresh`], and gives up on it after
/// `fetch_timeout`.
#[async_trait]
pub trait JwksSource: Send + Sync {
    /// The current keys: every key whose tokens may still be in use.
    async fn fetch(&self) -> Result<Vec<Jwk>, JwksError>;
}

/// How the verifier checks tokens. Start from [`VerifierConfig::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierConfig {
    /// The `iss` of identity's tokens; matched exactly.
    pub issuer: String,
    /// The `aud` tokens must carry; [`AUDIENCE`] by default.
    pub audience: String,
    /// Clock skew allowed on `exp`, `nbf` and `iat`; whole seconds count,
    /// and [`MAX_LEEWAY`] is the most used. 30 s by default.
    pub leeway: Duration,
    /// Longer tokens are refused unread; 8 KiB by default.
    pub max_token_bytes: usize,
    /// The JWKS is fetched for an unknown `kid` at most this often; 30 s
    /// by default.
    pub min_refresh_interval: Duration,
    /// A JWKS fetch that takes longer fails; 5 s by default.
    pub fetch_timeout: Duration,
    /// At most this many verified tokens are cached; 10 000 by default, 0
    /// disables the cache.
    pub verified_cache_capacity: usize,
}

impl VerifierConfig {
    /// The defaults, for tokens issued by `issuer`.
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: AUDIENCE.to_owned(),
            leeway: Duration::from_secs(30),
            max_token_bytes: 8 * 1024,
            min_refresh_interval: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(5),
            verified_cache_capacity: 10_000,
        }
    }
}

/// Counters of the verifier's work, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifierStats {
    /// JWKS fetches started, including failed ones.
    pub jwks_fetches: u64,
    /// Signature checks performed.
    pub signature_checks: u64,
    /// Verifications answered from the verified cache.
    pub cache_hits: u64,
    /// Tokens in the verified cache now.
    pub cached_tokens: usize,
    /// Usable keys in the current JWKS.
    pub keys: usize,
}

/// When the JWKS was last fetched and how that went.
#[derive(Debug, Default)]
struct RefreshState {
    last_attempt: Option<Instant>,
    last_failed: bool,
}

/// Verifies access tokens against identity's JWKS; see the module docs.
///
/// Share one verifier (it is `Send + Sync`) so that the JWKS, the refresh
/// limit and the cache are shared.
pub struct AccessTokenVerifier {
    source: Arc<dyn JwksSource>,
    config: VerifierConfig,
    /// `config.leeway` in whole seconds, clamped.
    leeway_secs: i64,
    validation: Validation,
    /// The current keys. Readers clone the `Arc` and release the lock.
    keys: RwLock<Arc<KeySet>>,
    /// Held across a JWKS fetch, so concurrent callers share one.
    refresh: tokio::sync::Mutex<RefreshState>,
    cache: Mutex<VerifiedCache>,
    jwks_fetches: AtomicU64,
    signature_checks: AtomicU64,
    cache_hits: AtomicU64,
}

impl std::fmt::Debug for AccessTokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokenVerifier")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl AccessTokenVerifier {
    /// A verifier with no keys yet: the first verification fetches the
    /// JWKS (or call [`AccessTokenVerifier::refresh`] at startup).
    /// `config.leeway` is clamped to [`MAX_LEEWAY`].
    pub fn new(source: Arc<dyn JwksSource>, mut config: VerifierConfig) -> Self {
        config.leeway = config.leeway.min(MAX_LEEWAY);
        let leeway_secs = i64::try_from(config.leeway.as_secs()).unwrap_or(0);

        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_required_spec_claims(&REQUIRED_SPEC_CLAIMS);
        validation.set_audience(&[&config.audience]);
        validation.set_issuer(&[&config.issuer]);
        validation.validate_aud = true;
        // Time is checked by `check_times`, against the caller's `now`:
        // jsonwebtoken can only read the system clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = config.leeway.as_secs();

        let capacity = config.verified_cache_capacity;
        Self {
            source,
            config,
            leeway_secs,
            validation,
            keys: RwLock::new(Arc::new(KeySet::default())),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
            cache: Mutex::new(VerifiedCache::new(capacity)),
            jwks_fetches: AtomicU64::new(0),
            signature_checks: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
        }
    }

    /// The configuration in use (with the leeway clamped).
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// Verifies `token` (without the `Bearer ` prefix) at the current time.
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.verify_at(token, unix_now()).await
    }

    /// Verifies `token` as if the time were `now_unix` (seconds since the
    /// Unix epoch), for tests; [`verify`](Self::verify) is this with the
    /// system clock.
    pub async fn verify_at(&self, token: &str, now_unix: i64) -> Result<AccessClaims, TokenError> {
        if token.len() > self.config.max_token_bytes {
            return Err(TokenError::TooLarge);
        }
        let digest: Digest = Sha256::digest(token.as_bytes()).into();
        if let Some(claims) = self.cached(&digest) {
            self.cache_hits.fetch_add(1, Ordering::Relaxed);
            let checked = check_times(&claims, now_unix, self.leeway_secs);
            if checked == Err(TokenError::Expired) {
                self.lock_cache().remove(&digest);
            }
            return checked.map(|()| claims);
        }

        let [header, _, _] = split_segments(token)?;
        let kid = check_header(header)?;
        let keys = self.keys_with(&kid).await?;
        let key = keys.get(&kid).ok_or(TokenError::UnknownKey)?;

        self.signature_checks.fetch_add(1, Ordering::Relaxed);
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &self.validation)
                .map_err(from_jwt_error)?;
        let claims = self.check_claims(data.claims)?;
        check_times(&claims, now_unix, self.leeway_secs)?;

        self.remember(digest, &claims, &kid, key.public, now_unix);
        Ok(claims)
    }

    /// Fetches the JWKS now, whatever the refresh interval, and returns the
    /// number of usable keys. For startup and periodic refreshes by the
    /// gateway itself, not for anything a request can trigger.
    pub async fn refresh(&self) -> Result<usize, TokenError> {
        let mut state = self.refresh.lock().await;
        self.fetch_keys(&mut state).await
    }

    /// Drops `token` from the verified cache, so that its next use is
    /// verified in full; whether it was cached. This does not revoke the
    /// token: it still verifies until it expires.
    pub fn forget(&self, token: &str) -> bool {
        let digest: Digest = Sha256::digest(token.as_bytes()).into();
        self.lock_cache().remove(&digest)
    }

    /// Drops every verified token from the cache.
    pub fn clear_cache(&self) {
        self.lock_cache().clear();
    }

    /// The verifier's counters.
    pub fn stats(&self) -> VerifierStats {
        VerifierStats {
            jwks_fetches: self.jwks_fetches.load(Ordering::Relaxed),
            signature_checks: self.signature_checks.load(Ordering::Relaxed),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
            cached_tokens: self.lock_cache().len(),
            keys: self.current_keys().len(),
        }
    }

    /// The claims of a cached token.
    fn cached(&self, digest: &Digest) -> Option<AccessClaims> {
        self.lock_cache().get(digest).cloned()
    }

    /// Caches a verified token, unless its key left the JWKS meanwhile.
    fn remember(
        &self,
        digest: Digest,
        claims: &AccessClaims,
        kid: &str,
        public: [u8; 32],
        now: i64,
    ) {
        let mut cache = self.lock_cache();
        // Checked under the cache lock: a refresh that removed the key
        // either happened before this check, or purges the cache after
        // this insert (it replaces the keys first, then takes this lock).
        if !self.current_keys().holds(kid, &public) {
            return;
        }
        let expired_before = now.saturating_sub(self.leeway_secs);
        cache.insert(digest, claims.clone(), kid, public, expired_before);
    }

    /// The current key set if it has `kid`. Otherwise the key set after one
    /// JWKS refresh, if the refresh interval allows one.
    async fn keys_with(&self, kid: &str) -> Result<Arc<KeySet>, TokenError> {
        let keys = self.current_keys();
        if keys.get(kid).is_some() {
            return Ok(keys);
        }
        if !keys::plausible_kid(kid) {
            return Err(TokenError::UnknownKey);
        }
        let mut state = self.refresh.lock().await;
        // Another caller may have refreshed while this one waited.
        let keys = self.current_keys();
        if keys.get(kid).is_some() {
            return Ok(keys);
        }
        if let Some(last) = state.last_attempt
            && last.elapsed() < self.config.min_refresh_interval
        {
            return Err(if state.last_failed {
                TokenError::KeysUnavailable
            } else {
                TokenError::UnknownKey
            });
        }
        self.fetch_keys(&mut state).await?;
        Ok(self.current_keys())
    }

    /// Fetches and installs the JWKS; the caller holds the refresh lock.
    async fn fetch_keys(&self, state: &mut RefreshState) -> Result<usize, TokenError> {
        state.last_attempt = Some(Instant::now());
        self.jwks_fetches.fetch_add(1, Ordering::Relaxed);
        let fetched = tokio::time::timeout(self.config.fetch_timeout, self.source.fetch()).await;
        let jwks = match fetched {
            Ok(Ok(jwks)) => jwks,
            Ok(Err(error)) => {
                tracing::warn!(%error, "fetching the JWKS failed");
                state.last_failed = true;
                return Err(TokenError::KeysUnavailable);
            }
            Err(_) => {
                tracing::warn!(timeout = ?self.config.fetch_timeout, "fetching the JWKS timed out");
                state.last_failed = true;
                return Err(TokenError::KeysUnavailable);
            }
        };
        state.last_failed = false;
        let next = Arc::new(KeySet::from_jwks(&jwks));
        let count = next.len();
        if count == 0 {
            tracing::warn!("identity's JWKS has no usable Ed25519 key");
        }
        let previous = {
            let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
            std::mem::replace(&mut *keys, Arc::clone(&next))
        };
        if previous.loses_keys_in(&next) {
            self.lock_cache().retain_keys_of(&next);
        }
        Ok(count)
    }

    /// Every claim present and typed, then the values the types do not
    /// express.
    fn check_claims(&self, map: Map<String, Value>) -> Result<AccessClaims, TokenError> {
        for (name, kind, wrong_type) in CLAIMS {
            let ok = match (map.get(name), kind) {
                (None | Some(Value::Null), _) => return Err(TokenError::MissingClaim(name)),
                (Some(value), ClaimType::Integer) => value.as_i64().is_some(),
                (Some(value), ClaimType::String) => value.is_string(),
                (Some(value), ClaimType::Strings) => value
                    .as_array()
                    .is_some_and(|items| items.iter().all(Value::is_string)),
            };
            if !ok {
                return Err(TokenError::InvalidClaim(wrong_type));
            }
        }
        let claims: AccessClaims = serde_json::from_value(Value::Object(map))
            .map_err(|_| TokenError::InvalidClaim("claims do not have the expected types"))?;
        // jsonwebtoken compared these already; again here, exactly, because
        // the gateway's trust rests on them.
        if claims.iss != self.config.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if claims.aud != self.config.audience {
            return Err(TokenError::WrongAudience);
        }
        if !is_canonical_uuid(&claims.sub) {
            return Err(TokenError::InvalidClaim("`sub` must be a UUID"));
        }
        if !is_canonical_uuid(&claims.org) {
            return Err(TokenError::InvalidClaim("`org` must be a UUID"));
        }
        if !is_canonical_uuid(&claims.jti) {
            return Err(TokenError::InvalidClaim("`jti` must be a UUID"));
        }
        if !Role::ALL.iter().any(|role| role.as_str() == claims.role) {
            return Err(TokenError::InvalidClaim("`role` is not a known role"));
        }
        Ok(claims)
    }

    fn current_keys(&self) -> Arc<KeySet> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, VerifiedCache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The current time in seconds since the Unix epoch (0 before it).
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// The three segments of a compact JWS, each non-empty and made of the
/// base64url alphabet only: no padding, whitespace or other characters.
fn split_segments(token: &str) -> Result<[&str; 3], TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("a token has exactly three segments"));
    };
    for part in [header, payload, signature] {
        if part.is_empty() {
            return Err(TokenError::Malformed("a token segment is empty"));
        }
        if !part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(TokenError::Malformed("a token segment is not base64url"));
        }
    }
    Ok([header, payload, signature])
}

/// Checks the header segment and returns its `kid`.
///
/// jsonwebtoken parses the header again during `decode`. The header is
/// covered by the signature, so a difference between the two parsers could
/// only concern headers that identity signed.
fn check_header(segment: &str) -> Result<String, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| TokenError::Malformed("the header is not base64url"))?;
    let header: Value = serde_json::from_slice(&bytes)
        .map_err(|_| TokenError::Malformed("the header is not JSON"))?;
    let Value::Object(header) = header else {
        return Err(TokenError::Malformed("the header is not a JSON object"));
    };
    if let Some(name) = FORBIDDEN_HEADERS
        .into_iter()
        .find(|name| header.contains_key(*name))
    {
        return Err(TokenError::UnsupportedHeader(name));
    }
    match header.get("alg") {
        Some(Value::String(alg)) if alg == ALGORITHM => {}
        _ => return Err(TokenError::WrongAlgorithm),
    }
    match header.get("typ") {
        Some(Value::String(typ)) if typ == ACCESS_TOKEN_TYPE || typ == ACCESS_TOKEN_MEDIA_TYPE => {}
        _ => return Err(TokenError::WrongType),
    }
    match header.get("kid") {
        Some(Value::String(kid)) if !kid.is_empty() => Ok(kid.clone()),
        _ => Err(TokenError::UnknownKey),
    }
}

/// The refusal for an error of `jsonwebtoken::decode`.
fn from_jwt_error(error: jsonwebtoken::errors::Error) -> TokenError {
    match error.kind() {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::MissingAlgorithm => TokenError::WrongAlgorithm,
        ErrorKind::MissingRequiredClaim(name) => TokenError::MissingClaim(spec_claim_name(name)),
        ErrorKind::InvalidClaimFormat(_) => {
            TokenError::InvalidClaim("a time claim is not a number")
        }
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::InvalidSubject => TokenError::InvalidClaim("`sub` is not accepted"),
        ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
            TokenError::Malformed("a token segment does not decode")
        }
        ErrorKind::Json(_) => {
            TokenError::Malformed("the header or claims are not the expected JSON")
        }
        other => {
            // Key errors cannot happen with keys checked at load time; fail
            // closed and leave a trace if they do.
            tracing::warn!(error = ?other, "unexpected error verifying an access token");
            TokenError::BadSignature
        }
    }
}

/// `name` as a static string, for [`TokenError::MissingClaim`].
fn spec_claim_name(name: &str) -> &'static str {
    REQUIRED_SPEC_CLAIMS
        .into_iter()
        .find(|claim| *claim == name)
        .unwrap_or("spec claim")
}

/// Whether `s` is a UUID in its canonical text form (lowercase, hyphenated).
fn is_canonical_uuid(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok_and(|id| id.hyphenated().to_string() == s)
}

/// The time claims against `now`, with `leeway` seconds either way.
fn check_times(claims: &AccessClaims, now: i64, leeway: i64) -> Result<(), TokenError> {
    if now >= claims.exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    if claims.nbf > now.saturating_add(leeway) {
        return Err(TokenError::NotYetValid);
    }
    if claims.iat > now.saturating_add(leeway) {
        return Err(TokenError::InvalidClaim("`iat` is in the future"));
    }
    Ok(())
}
