//! Tests of access token verification: the hostile-token table, JWKS
//! refresh and rotation, and the verified cache.

use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicBool, AtomicUsize};

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use super::*;

const ISSUER: &str = "https://identity.claimguardian.test";
/// The time of every test, far from the real clock on purpose.
const NOW: i64 = 1_900_000_000;
const SUB: &str = "0190f0c4-7a5e-7c3d-9b1a-2f3e4d5c6b7a";
const ORG: &str = "0190f0c4-7a5e-7c3d-9b1a-000000000001";
const JTI: &str = "0190f0c4-7a5e-7c3d-9b1a-00000000abcd";

/// A JWKS served from memory that counts its fetches.
struct MemoryJwks {
    keys: StdMutex<Vec<Jwk>>,
    fetches: AtomicUsize,
    failing: AtomicBool,
    delay: Duration,
}

impl MemoryJwks {
    fn new(keys: Vec<Jwk>) -> Arc<Self> {
        Self::slow(keys, Duration::ZERO)
    }

    /// Each fetch takes `delay`, so concurrent callers overlap.
    fn slow(keys: Vec<Jwk>, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            keys: StdMutex::new(keys),
            fetches: AtomicUsize::new(0),
            failing: AtomicBool::new(false),
            delay,
        })
    }

    fn set(&self, keys: Vec<Jwk>) {
        *self.keys.lock().expect("keys lock") = keys;
    }

    fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl JwksSource for MemoryJwks {
    async fn fetch(&self) -> Result<Vec<Jwk>, JwksError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(JwksError("identity is down".to_owned()));
        }
        Ok(self.keys.lock().expect("keys lock").clone())
    }
}

/// An Ed25519 key pair of a test, with its `kid`.
struct TestKey {
    kid: String,
    signing: SigningKey,
    encoding: EncodingKey,
}

impl TestKey {
    /// A deterministic key: `seed` repeated is the private key.
    fn new(kid: &str, seed: u8) -> Self {
        let signing = SigningKey::from_bytes(&[seed; 32]);
        let der = signing.to_pkcs8_der().expect("PKCS#8 encoding");
        Self {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            signing,
        }
    }

    fn public(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    fn jwk(&self) -> Jwk {
        ed_jwk(&self.kid, &self.public())
    }

    /// A token as identity would mint it, through `jsonwebtoken::encode`.
    fn mint(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("encode")
    }

    /// A token with any header and payload JSON, signed with EdDSA.
    fn mint_raw(&self, header: &Value, payload: &Value) -> String {
        let header = serde_json::to_vec(header).expect("header JSON");
        let payload = serde_json::to_vec(payload).expect("payload JSON");
        sign_raw(&header, &payload, &self.encoding, Algorithm::EdDSA)
    }
}

/// An Ed25519 JWK for `public`.
fn ed_jwk(kid: &str, public: &[u8]) -> Jwk {
    Jwk {
        kty: "OKP".to_owned(),
        kid: kid.to_owned(),
        r#use: "sig".to_owned(),
        alg: "EdDSA".to_owned(),
        crv: "Ed25519".to_owned(),
        x: b64(public),
        ..Jwk::default()
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `header.payload.signature` over arbitrary header and payload bytes.
fn sign_raw(header: &[u8], payload: &[u8], key: &EncodingKey, alg: Algorithm) -> String {
    let message = format!("{}.{}", b64(header), b64(payload));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).expect("sign");
    format!("{message}.{signature}")
}

/// `message.signature`, signed with EdDSA: any message, even one that is
/// not base64url-encoded JSON.
fn sign_message(message: &str, key: &EncodingKey) -> String {
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), key, Algorithm::EdDSA).expect("sign");
    format!("{message}.{signature}")
}

/// The header identity writes for `kid`.
fn header(kid: &str) -> Value {
    json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": kid })
}

/// Valid claims at [`NOW`].
fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "sub": SUB,
        "aud": AUDIENCE,
        "exp": NOW + 900,
        "nbf": NOW,
        "iat": NOW,
        "jti": JTI,
        "org": ORG,
        "org_code": "acme",
        "role": "member",
        "amr": ["pwd", "otp"],
    })
}

fn with(mut value: Value, name: &str, replacement: Value) -> Value {
    value
        .as_object_mut()
        .expect("an object")
        .insert(name.to_owned(), replacement);
    value
}

fn without(mut value: Value, name: &str) -> Value {
    value.as_object_mut().expect("an object").remove(name);
    value
}

/// Leeway 60 s, and no second fetch within a test unless it waits.
fn config() -> VerifierConfig {
    VerifierConfig {
        leeway: Duration::from_secs(60),
        min_refresh_interval: Duration::from_secs(3600),
        ..VerifierConfig::new(ISSUER)
    }
}

fn verifier(source: &Arc<MemoryJwks>, config: VerifierConfig) -> AccessTokenVerifier {
    let source: Arc<dyn JwksSource> = source.clone();
    AccessTokenVerifier::new(source, config)
}

#[tokio::test]
async fn valid_token_verifies() {
    let key = TestKey::new("k1", 1);
    let source = MemoryJwks::new(vec![key.jwk()]);
    let verifier = verifier(&source, config());

    let verified = verifier
        .verify_at(&key.mint(&claims()), NOW)
        .await
        .expect("valid token");
    let expected: AccessClaims = serde_json::from_value(claims()).expect("claims");
    assert_eq!(verified, expected);
    assert_eq!(source.fetches(), 1, "the first verification loads the JWKS");
}

#[tokio::test]
async fn media_type_typ_is_accepted() {
    let key = TestKey::new("k1", 1);
    let source = MemoryJwks::new(vec![key.jwk()]);
    let verifier = verifier(&source, config());
    let header = json!({ "alg": "EdDSA", "typ": "application/at+jwt", "kid": "k1" });
    let token = key.mint_raw(&header, &claims());
    assert!(verifier.verify_at(&token, NOW).await.is_ok());
}

#[tokio::test]
async fn verify_uses_the_system_clock() {
    let key = TestKey::new("k1", 1);
    let source = MemoryJwks::new(vec![key.jwk()]);
    let verifier = verifier(&source, config());
    let now = unix_now();
    let current = with(
        with(with(claims(), "iat", json!(now)), "nbf", json!(now)),
        "exp",
        json!(now + 900),
    );
    assert!(verifier.verify(&key.mint(&current)).await.is_ok());
    // Valid at NOW (years ahead), not yet now.
    assert_eq!(
        verifier.verify(&key.mint(&claims())).await,
        Err(TokenError::NotYetValid)
    );
}

/// The acceptance table: malformed and hostile tokens, each refused for
/// its own reason, none panicking.
#[tokio::test]
async fn hostile_tokens_are_refused() {
    let key = TestKey::new("k1", 1);
    let attacker = TestKey::new("k1", 66);
    let source = MemoryJwks::new(vec![key.jwk()]);
    let verifier = verifier(&source, config());
    let good = key.mint(&claims());
    let [good_header, good_payload, good_signature] =
        split_segments(&good).expect("three segments");
    let public = key.public();
    let fake_signature = b64(&[7; 64]);

    // A header with `alg`, signed by nothing useful: refused before any key.
    let with_alg = |alg: &str| {
        let header = json!({ "alg": alg, "typ": "at+jwt", "kid": "k1" });
        format!(
            "{}.{}.{fake_signature}",
            b64(&serde_json::to_vec(&header).expect("json")),
            good_payload
        )
    };
    // A header with one extra parameter, properly signed by the real key.
    let with_header =
        |name: &str, value: Value| key.mint_raw(&with(header("k1"), name, value), &claims());
    let with_claim = |name: &str, value: Value| key.mint(&with(claims(), name, value));
    let without_claim = |name: &str| key.mint(&without(claims(), name));
    let hs256_public_key = {
        let header = serde_json::to_vec(&json!({ "alg": "HS256", "typ": "at+jwt", "kid": "k1" }))
            .expect("json");
        let payload = serde_json::to_vec(&claims()).expect("json");
        sign_raw(
            &header,
            &payload,
            &EncodingKey::from_secret(&public),
            Algorithm::HS256,
        )
    };
    let hs256_jwk_x = {
        let header = serde_json::to_vec(&json!({ "alg": "HS256", "typ": "at+jwt", "kid": "k1" }))
            .expect("json");
        let payload = serde_json::to_vec(&claims()).expect("json");
        let secret = b64(&public);
        sign_raw(
            &header,
            &payload,
            &EncodingKey::from_secret(secret.as_bytes()),
            Algorithm::HS256,
        )
    };
    let embedded_jwk = {
        let jwk = json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(&attacker.public()) });
        attacker.mint_raw(&with(header("k1"), "jwk", jwk), &claims())
    };
    let escalated = {
        let payload = serde_json::to_vec(&with(claims(), "role", json!("owner"))).expect("json");
        format!("{good_header}.{}.{good_signature}", b64(&payload))
    };
    let id_token = {
        let header = json!({ "alg": "EdDSA", "kid": "k1" });
        let id_claims = with(
            with(claims(), "nonce", json!("n-0S6_WzA2Mj")),
            "aud",
            json!("web-client"),
        );
        key.mint_raw(&header, &id_claims)
    };
    let raw =
        |header: &[u8], payload: &[u8]| sign_raw(header, payload, &key.encoding, Algorithm::EdDSA);
    let header_bytes = serde_json::to_vec(&header("k1")).expect("json");

    use TokenError::*;
    let table: Vec<(&str, String, TokenError)> = vec![
        // alg: none in any case, and other algorithms.
        (
            "alg none, empty signature",
            format!(
                "{}.{good_payload}.",
                b64(br#"{"alg":"none","typ":"at+jwt","kid":"k1"}"#)
            ),
            Malformed("a token segment is empty"),
        ),
        ("alg none", with_alg("none"), WrongAlgorithm),
        ("alg None", with_alg("None"), WrongAlgorithm),
        ("alg NONE", with_alg("NONE"), WrongAlgorithm),
        ("alg nOnE", with_alg("nOnE"), WrongAlgorithm),
        ("alg eddsa (case)", with_alg("eddsa"), WrongAlgorithm),
        ("alg Ed25519", with_alg("Ed25519"), WrongAlgorithm),
        ("alg RS256", with_alg("RS256"), WrongAlgorithm),
        ("alg ES256", with_alg("ES256"), WrongAlgorithm),
        (
            "alg absent",
            key.mint_raw(&without(header("k1"), "alg"), &claims()),
            WrongAlgorithm,
        ),
        (
            "HS256 keyed with the public key bytes",
            hs256_public_key,
            WrongAlgorithm,
        ),
        (
            "HS256 keyed with the JWK x string",
            hs256_jwk_x,
            WrongAlgorithm,
        ),
        // Keys named or carried by the token.
        (
            "unknown kid",
            key.mint_raw(&header("k2"), &claims()),
            UnknownKey,
        ),
        (
            "kid path traversal",
            key.mint_raw(&header("../../etc/passwd"), &claims()),
            UnknownKey,
        ),
        (
            "kid SQL injection",
            key.mint_raw(&header("k1' OR '1'='1"), &claims()),
            UnknownKey,
        ),
        (
            "kid with NUL",
            key.mint_raw(&header("k1\u{0}"), &claims()),
            UnknownKey,
        ),
        (
            "kid empty",
            key.mint_raw(&header(""), &claims()),
            UnknownKey,
        ),
        (
            "kid a number",
            key.mint_raw(&with(header("k1"), "kid", json!(1)), &claims()),
            UnknownKey,
        ),
        (
            "kid absent",
            key.mint_raw(&without(header("k1"), "kid"), &claims()),
            UnknownKey,
        ),
        (
            "jku header",
            with_header("jku", json!("https://attacker.example/jwks.json")),
            UnsupportedHeader("jku"),
        ),
        (
            "jwk header with the attacker's key",
            embedded_jwk,
            UnsupportedHeader("jwk"),
        ),
        (
            "x5u header",
            with_header("x5u", json!("https://attacker.example/cert.pem")),
            UnsupportedHeader("x5u"),
        ),
        (
            "x5c header",
            with_header("x5c", json!(["MIIB"])),
            UnsupportedHeader("x5c"),
        ),
        (
            "crit header",
            with_header("crit", json!(["exp"])),
            UnsupportedHeader("crit"),
        ),
        (
            "enc header",
            with_header("enc", json!("A256GCM")),
            UnsupportedHeader("enc"),
        ),
        (
            "signed by another key under the right kid",
            attacker.mint(&claims()),
            BadSignature,
        ),
        ("payload changed after signing", escalated, BadSignature),
        (
            "signature truncated",
            format!("{good_header}.{good_payload}.{}", &good_signature[..40]),
            BadSignature,
        ),
        // Token type.
        ("typ JWT", with_header("typ", json!("JWT")), WrongType),
        (
            "typ AT+JWT (case)",
            with_header("typ", json!("AT+JWT")),
            WrongType,
        ),
        ("typ a number", with_header("typ", json!(1)), WrongType),
        ("ID token (no typ)", id_token, WrongType),
        // Claims.
        ("aud missing", without_claim("aud"), MissingClaim("aud")),
        ("iss missing", without_claim("iss"), MissingClaim("iss")),
        ("sub missing", without_claim("sub"), MissingClaim("sub")),
        ("exp missing", without_claim("exp"), MissingClaim("exp")),
        ("nbf missing", without_claim("nbf"), MissingClaim("nbf")),
        ("iat missing", without_claim("iat"), MissingClaim("iat")),
        ("org missing", without_claim("org"), MissingClaim("org")),
        (
            "role null",
            with_claim("role", Value::Null),
            MissingClaim("role"),
        ),
        (
            "aud other",
            with_claim("aud", json!("billing")),
            WrongAudience,
        ),
        (
            "aud list without ours",
            with_claim("aud", json!(["billing", "claims"])),
            WrongAudience,
        ),
        (
            "aud list with ours",
            with_claim("aud", json!([AUDIENCE, "billing"])),
            InvalidClaim("`aud` must be a single string"),
        ),
        (
            "iss other",
            with_claim("iss", json!("https://attacker.example")),
            WrongIssuer,
        ),
        (
            "iss with trailing slash",
            with_claim("iss", json!(format!("{ISSUER}/"))),
            WrongIssuer,
        ),
        (
            "nbf beyond leeway",
            with_claim("nbf", json!(NOW + 61)),
            NotYetValid,
        ),
        (
            "exp beyond leeway",
            with_claim("exp", json!(NOW - 60)),
            Expired,
        ),
        (
            "exp fractional",
            with_claim("exp", json!((NOW + 900) as f64 + 0.5)),
            InvalidClaim("`exp` must be an integer"),
        ),
        (
            "iat far in the future",
            with_claim("iat", json!(NOW + 86_400)),
            InvalidClaim("`iat` is in the future"),
        ),
        (
            "sub not a UUID",
            with_claim("sub", json!("admin")),
            InvalidClaim("`sub` must be a UUID"),
        ),
        (
            "sub UUID uppercase",
            with_claim("sub", json!(SUB.to_uppercase())),
            InvalidClaim("`sub` must be a UUID"),
        ),
        (
            "org not a UUID",
            with_claim("org", json!("acme")),
            InvalidClaim("`org` must be a UUID"),
        ),
        (
            "org UUID without hyphens",
            with_claim("org", json!(ORG.replace('-', ""))),
            InvalidClaim("`org` must be a UUID"),
        ),
        (
            "jti not a UUID",
            with_claim("jti", json!("1")),
            InvalidClaim("`jti` must be a UUID"),
        ),
        (
            "role unknown",
            with_claim("role", json!("superuser")),
            InvalidClaim("`role` is not a known role"),
        ),
        (
            "role capitalised",
            with_claim("role", json!("Owner")),
            InvalidClaim("`role` is not a known role"),
        ),
        (
            "amr not a list",
            with_claim("amr", json!("pwd")),
            InvalidClaim("`amr` must be an array of strings"),
        ),
        // Shape and encoding.
        (
            "1 MB token",
            format!("{good}{}", "A".repeat(1024 * 1024)),
            TooLarge,
        ),
        (
            "four segments",
            format!("{good}.{good_signature}"),
            Malformed("a token has exactly three segments"),
        ),
        (
            "two segments",
            format!("{good_header}.{good_payload}"),
            Malformed("a token has exactly three segments"),
        ),
        (
            "one segment",
            good_header.to_owned(),
            Malformed("a token has exactly three segments"),
        ),
        (
            "empty token",
            String::new(),
            Malformed("a token has exactly three segments"),
        ),
        (
            "empty signature",
            format!("{good_header}.{good_payload}."),
            Malformed("a token segment is empty"),
        ),
        (
            "empty header",
            format!(".{good_payload}.{good_signature}"),
            Malformed("a token segment is empty"),
        ),
        (
            "bad base64 character",
            format!("{good_header}.{good_payload}*.{good_signature}"),
            Malformed("a token segment is not base64url"),
        ),
        (
            "base64 padding",
            format!("{good_header}=.{good_payload}.{good_signature}"),
            Malformed("a token segment is not base64url"),
        ),
        (
            "standard base64 alphabet",
            format!("{good_header}.{good_payload}.{}+/", &good_signature[2..]),
            Malformed("a token segment is not base64url"),
        ),
        (
            "whitespace",
            format!(" {good}"),
            Malformed("a token segment is not base64url"),
        ),
        (
            "header of impossible length",
            format!("A.{good_payload}.{good_signature}"),
            Malformed("the header is not base64url"),
        ),
        (
            "header not JSON",
            format!("{}.{good_payload}.{good_signature}", b64(b"hello")),
            Malformed("the header is not JSON"),
        ),
        (
            "header a JSON array",
            format!("{}.{good_payload}.{good_signature}", b64(b"[\"EdDSA\"]")),
            Malformed("the header is not a JSON object"),
        ),
        (
            "header a JSON string",
            format!("{}.{good_payload}.{good_signature}", b64(b"\"EdDSA\"")),
            Malformed("the header is not a JSON object"),
        ),
        (
            "payload a JSON array",
            raw(&header_bytes, b"[1,2,3]"),
            Malformed("the header or claims are not the expected JSON"),
        ),
        (
            "payload a JSON string",
            raw(&header_bytes, b"\"claims\""),
            Malformed("the header or claims are not the expected JSON"),
        ),
        (
            "payload a JSON number",
            raw(&header_bytes, b"42"),
            Malformed("the header or claims are not the expected JSON"),
        ),
        (
            "payload not JSON",
            raw(&header_bytes, b"{\"sub\":"),
            Malformed("the header or claims are not the expected JSON"),
        ),
        (
            "payload bad base64",
            sign_message(&format!("{good_header}.A"), &key.encoding),
            Malformed("a token segment does not decode"),
        ),
    ];
    assert!(table.len() >= 25);

    let mut failures = Vec::new();
    for (name, token, expected) in &table {
        let outcome = verifier.verify_at(token, NOW).await;
        if outcome.as_ref() != Err(expected) {
            failures.push(format!("{name}: expected {expected:?}, got {outcome:?}"));
            continue;
        }
        assert_eq!(expected.code(), Code::Unauthenticated, "{name}");
        let message = expected.to_string();
        for secret in ["../", "OR '1'", "attacker", good_signature] {
            assert!(
                !message.contains(secret),
                "{name}: message {message:?} leaks token contents"
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        table.len(),
        failures.join("\n")
    );
    // `k2`, the first kid to reach the key lookup, loaded the JWKS;
    // `../../etc/passwd` found the refresh interval running; kids that
    // cannot name a key never cause a fetch.
    assert_eq!(source.fetches(), 1);
    assert_eq!(
        verifier.stats().cached_tokens,
        0,
        "no refused token is cached"
    );
}

#[tokio::test]
async fn leeway_applies_to_exp_nbf_and_iat() {
    let key = TestKey::new("k1", 1);
    let source = MemoryJwks::new(vec![key.jwk()]);
    let verifier = verifier(&source, config());

    let expired_recently = key.mint(&with(claims(), "exp", json!(NOW - 59)));
    assert!(verifier.verify_at(&expired_recently, NOW).await.is_ok());
    let starts_soon = key.mint(&with(
        with(claims(), "nbf", json!(NOW + 60)),
        "iat",
        json!(NOW + 60),
    ));
    assert!(verifier.verify_at(&starts_soon, NOW).await.is_ok());
    let expired = key.mint(&with(claims(), "exp", json!(NOW - 60)));
    assert_eq!(
        verifier.verify_at(&expired, NOW).await,
        Err(TokenError::Expired)
    );
}

#[tokio::test]
async fn leeway_is_clamped_to_a_minute() {
    let key = TestKey::new("k1", 1);
    let source = MemoryJwks::new(vec![key.jwk()]);
    let config = VerifierConfig {
        leeway: Duration::from_secs(3600),
        ..config()
    };
    let verifier = verifier(&source, config);
    assert_eq!(verifier.config().leeway, MAX_LEEWAY);
    let expired = key.mint(&with(claims(), "exp", json!(NOW - 120)));
    assert_eq!(
        verifier.verify_at(&expired, NOW).await,
        Err(TokenError::Expired)
    );
    let early = key.mint(&with(claims(), "nbf", json!(NOW + 120)));
    assert_eq!(
        verifier.verify_at(&early, NOW).await,
        Err(TokenError::NotYetValid)
    );
}

#[tokio::test]
async fn size_cap_comes_before_anything_else() {
    let key = TestKey::new("k1", 1);
    let source = MemoryJwks::new(vec![key.jwk()]);
    let config = VerifierConfig {
        max_token_bytes: 64,
        ..config()
    };
    let verifier = verifier(&source, config);
    assert_eq!(
        verifier.verify_at(&key.mint(&claims()), NOW).await,
        Err(TokenError::TooLarge)
    );
    assert_eq!(
        verifier.verify_at(&"x".repeat(65), NOW).await,
        Err(TokenError::TooLarge)
    );
    assert_eq!(source.fetches(), 0);
    assert_eq!(verifier.stats().signature_checks, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_fetches_once_for_concurrent_callers() {
    let key = TestKey::new("k1", 1);
    let source = MemoryJwks::slow(vec![key.jwk()], Duration::from_millis(50));
    let verifier = Arc::new(verifier(&source, config()));

    // Ten concurrent first calls share the initial load.
    let tokens: Vec<String> = (0..10)
        .map(|i| key.mint(&with(claims(), "org_code", json!(format!("org{i}")))))
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for token in tokens {
        let verifier = Arc::clone(&verifier);
        tasks.spawn(async move { verifier.verify_at(&token, NOW).await });
    }
    while let Some(outcome) = tasks.join_next().await {
        assert!(outcome.expect("task").is_ok());
    }
    assert_eq!(source.fetches(), 1);

    // Ten concurrent unknown kids: the interval has not passed, no fetch.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10 {
        let verifier = Arc::clone(&verifier);
        let token = key.mint_raw(&header(&format!("bogus-{i}")), &claims());
        tasks.spawn(async move { verifier.verify_at(&token, NOW).await });
    }
    while let Some(outcome) = tasks.join_next().await {
        assert_eq!(outcome.expect("task"), Err(TokenError::UnknownKey));
    }
    assert_eq!(source.fetches(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_stampede_after_the_interval_fetches_once() {
    let key = TestKey::new("k1", 1);
    let source = MemoryJwks::slow(vec![key.jwk()], Duration::from_millis(50));
    let config = VerifierConfig {
        min_refresh_interval: Duration::from_millis(200),
        ..config()
    };
    let verifier = Arc::new(verifier(&source, config));
    assert_eq!(verifier.refresh().await, Ok(1));
    assert_eq!(source.fetches(), 1);

    tokio::time::sleep(Duration::from_millis(250)).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let verifier = Arc::clone(&verifier);
        let token = key.mint_raw(&header("bogus"), &claims());
        tasks.spawn(async move { verifier.verify_at(&token, NOW).await });
    }
    while let Some(outcome) = tasks.join_next().await {
        assert_eq!(outcome.expect("task"), Err(TokenError::UnknownKey));
    }
    assert_eq!(source.fetches(), 2, "one refresh for ten callers");
    assert_eq!(verifier.stats().jwks_fetches, 2);
}

#[tokio::test]
async fn rotation_accepts_old_and_new_keys() {
    let old = TestKey::new("2026-01", 1);
    let new = TestKey::new("2026-02", 2);
    let source = MemoryJwks::new(vec![old.jwk()]);
    let config = VerifierConfig {
        min_refresh_interval: Duration::ZERO,
        ..config()
    };
    let verifier = verifier(&source, config);
    let old_token = old.mint(&claims());
    assert!(verifier.verify_at(&old_token, NOW).await.is_ok());

    // Identity rotates: new key first, old kept until its tokens expire.
    source.set(vec![new.jwk(), old.jwk()]);
    let new_token = new.mint(&claims());
    assert!(verifier.verify_at(&new_token, NOW).await.is_ok());
    assert_eq!(source.fetches(), 2, "the new kid triggered one refresh");
    verifier.clear_cache();
    assert!(verifier.verify_at(&old_token, NOW).await.is_ok());
    assert!(verifier.verify_at(&new_token, NOW).await.is_ok());
    assert_eq!(source.fetches(), 2);
}

#[tokio::test]
async fn removed_key_stops_verifying_after_refresh() {
    let old = TestKey::new("old", 1);
    let new = TestKey::new("new", 2);
    let source = MemoryJwks::new(vec![new.jwk(), old.jwk()]);
    let verifier = verifier(&source, config());
    let old_token = old.mint(&claims());
    let new_token = new.mint(&claims());
    assert!(verifier.verify_at(&old_token, NOW).await.is_ok());
    assert!(verifier.verify_at(&new_token, NOW).await.is_ok());
    assert_eq!(verifier.stats().cached_tokens, 2);

    source.set(vec![new.jwk()]);
    assert_eq!(verifier.refresh().await, Ok(1));
    assert_eq!(
        verifier.stats().cached_tokens,
        1,
        "the old key's token left the cache"
    );
    assert_eq!(
        verifier.verify_at(&old_token, NOW).await,
        Err(TokenError::UnknownKey)
    );
    assert!(verifier.verify_at(&new_token, NOW).await.is_ok());
}

#[tokio::test]
async fn replaced_key_under_the_same_kid_stops_verifying() {
    let first = TestKey::new("k1", 1);
    let second = TestKey::new("k1", 2);
    let source = MemoryJwks::new(vec![first.jwk()]);
    let verifier = verifier(&source, config());
    let token = first.mint(&claims());
    assert!(verifier.verify_at(&token, NOW).await.is_ok());

    source.set(vec![second.jwk()]);
    assert_eq!(verifier.refresh().await, Ok(1));
    assert_eq!(verifier.stats().cached_tokens, 0);
    assert_eq!(
        verifier.verify_at(&token, NOW).await,
        Err(TokenError::BadSignature)
    );
    assert!(
        verifier
            .verify_at(&second.mint(&claims()), NOW)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn refresh_for_a_new_kid_drops_removed_keys() {
    let old = TestKey::new("old", 1);
    let new = TestKey::new("new", 2);
    let source = MemoryJwks::new(vec![old.jwk()]);
    let config = VerifierConfig {
        min_refresh_interval: Duration::ZERO,
        ..config()
    };
    let verifier = verifier(&source, config);
    let old_token = old.mint(&claims());
    assert!(verifier.verify_at(&old_token, NOW).await.is_ok());

    source.set(vec![new.jwk()]);
    assert!(verifier.verify_at(&new.mint(&claims()), NOW).await.is_ok());
    assert_eq!(
        verifier.verify_at(&old_token, NOW).await,
        Err(TokenError::UnknownKey)
    );
}

#[tokio::test]
async fn verified_cache_skips_the_signature_check() {
    let key = TestKey::new("k1", 1);
    let source = MemoryJwks::new(vec![key.jwk()]);
    let verifier = verifier(&source, config());
    let token = key.mint(&claims());

    let first = verifier.verify_at(&token, NOW).await.expect("first");
    let second = verifier.verify_at(&token, NOW + 10).await.expect("second");
    assert_eq!(first, second);
    let stats = verifier.stats();
    assert_eq!(stats.signature_checks, 1);
    assert_eq!(stats.cache_hits, 1);
    assert_eq!(stats.cached_tokens, 1);

    // Still subject to time: past exp + leeway the hit is refused, and the
    // entry goes.
    assert_eq!(
        verifier.verify_at(&token, NOW + 900 + 60).await,
        Err(TokenError::Expired)
    );
    assert_eq!(verifier.stats().cached_tokens, 0);

    assert!(verifier.verify_at(&token, NOW).await.is_ok());
    assert!(verifier.forget(&token));
    assert!(!verifier.forget(&token));
    assert!(verifier.verify_at(&token, NOW).await.is_ok());
    assert_eq!(verifier.stats().signature_checks, 3);
}

#[tokio::test]
async fn verified_cache_is_bounded() {
    let key = TestKey::new("k1", 1);
    let source = MemoryJwks::new(vec![key.jwk()]);
    let config = VerifierConfig {
        verified_cache_capacity: 2,
        ..config()
    };
    let verifier = verifier(&source, config);
    // exp NOW+100, NOW+200, NOW+300: the soonest to expire is evicted.
    let tokens: Vec<String> = (1..=3)
        .map(|i| key.mint(&with(claims(), "exp", json!(NOW + 100 * i))))
        .collect();
    for token in &tokens {
        assert!(verifier.verify_at(token, NOW).await.is_ok());
    }
    assert_eq!(verifier.stats().cached_tokens, 2);
    assert!(verifier.verify_at(&tokens[2], NOW).await.is_ok());
    assert!(verifier.verify_at(&tokens[1], NOW).await.is_ok());
    assert_eq!(verifier.stats().cache_hits, 2);
    assert!(verifier.verify_at(&tokens[0], NOW).await.is_ok());
    assert_eq!(
        verifier.stats().cache_hits,
        2,
        "the first token was evicted"
    );

    let uncached = VerifierConfig {
        verified_cache_capacity: 0,
        ..self::config()
    };
    let verifier = self::verifier(&source, uncached);
    assert!(verifier.verify_at(&tokens[0], NOW).await.is_ok());
    assert!(verifier.verify_at(&tokens[0], NOW).await.is_ok());
    assert_eq!(verifier.stats().signature_checks, 2);
    assert_eq!(verifier.stats().cached_tokens, 0);
}

#[tokio::test]
async fn unusable_jwks_entries_are_ignored() {
    let key = TestKey::new("good", 1);
    let public = key.public();
    let mut ec = ed_jwk("ec", &public);
    ec.kty = "EC".to_owned();
    ec.crv = "P-256".to_owned();
    ec.alg = "ES256".to_owned();
    ec.y = b64(&public);
    let mut x25519 = ed_jwk("x25519", &public);
    x25519.crv = "X25519".to_owned();
    let mut no_alg = ed_jwk("no-alg", &public);
    no_alg.alg = String::new();
    let mut hs = ed_jwk("hs", &public);
    hs.kty = "oct".to_owned();
    hs.alg = "HS256".to_owned();
    let mut encryption = ed_jwk("enc", &public);
    encryption.r#use = "enc".to_owned();
    let short = ed_jwk("short", &public[..16]);
    let long = ed_jwk("long", &[public.as_slice(), &[0; 8]].concat());
    let mut padded = ed_jwk("padded", &public);
    padded.x.push('=');
    // The identity point: small order, a forger's favourite.
    let mut identity_point = [0u8; 32];
    identity_point[0] = 1;
    let weak = ed_jwk("weak", &identity_point);
    let dup_a = TestKey::new("dup", 3);
    let dup_b = TestKey::new("dup", 4);

    let jwks = vec![
        ec,
        x25519,
        no_alg,
        hs,
        encryption,
        short,
        long,
        padded,
        weak,
        dup_a.jwk(),
        dup_b.jwk(),
        key.jwk(),
    ];
    let source = MemoryJwks::new(jwks);
    let verifier = verifier(&source, config());
    assert_eq!(verifier.refresh().await, Ok(1));
    assert!(verifier.verify_at(&key.mint(&claims()), NOW).await.is_ok());
    for kid in [
        "ec", "x25519", "no-alg", "hs", "enc", "short", "long", "padded", "weak", "dup",
    ] {
        // Signed by the good key under each ignored kid: none is usable,
        // and none panics inside jsonwebtoken.
        let token = key.mint_raw(&header(kid), &claims());
        assert_eq!(
            verifier.verify_at(&token, NOW).await,
            Err(TokenError::UnknownKey),
            "{kid}"
        );
    }
    assert_eq!(
        verifier.verify_at(&dup_a.mint(&claims()), NOW).await,
        Err(TokenError::UnknownKey)
    );
}

#[tokio::test]
async fn jwks_outage_is_unavailable_and_rate_limited() {
    let key = TestKey::new("k1", 1);
    let source = MemoryJwks::new(vec![key.jwk()]);
    source.fail(true);
    let verifier = verifier(&source, config());
    let token = key.mint(&claims());

    let refused = verifier.verify_at(&token, NOW).await;
    assert_eq!(refused, Err(TokenError::KeysUnavailable));
    assert_eq!(TokenError::KeysUnavailable.code(), Code::Unavailable);
    assert_eq!(
        verifier.verify_at(&token, NOW).await,
        Err(TokenError::KeysUnavailable)
    );
    assert_eq!(
        source.fetches(),
        1,
        "a failed fetch is not retried within the interval"
    );

    source.fail(false);
    assert_eq!(verifier.refresh().await, Ok(1));
    assert!(verifier.verify_at(&token, NOW).await.is_ok());
}

#[tokio::test]
async fn slow_jwks_times_out() {
    let key = TestKey::new("k1", 1);
    let source = MemoryJwks::slow(vec![key.jwk()], Duration::from_secs(10));
    let config = VerifierConfig {
        fetch_timeout: Duration::from_millis(20),
        ..config()
    };
    let verifier = verifier(&source, config);
    assert_eq!(
        verifier.verify_at(&key.mint(&claims()), NOW).await,
        Err(TokenError::KeysUnavailable)
    );
}

#[test]
fn every_refusal_is_unauthenticated_but_unavailable_keys() {
    let all = [
        TokenError::Malformed("x"),
        TokenError::TooLarge,
        TokenError::UnsupportedHeader("jku"),
        TokenError::WrongType,
        TokenError::WrongAlgorithm,
        TokenError::UnknownKey,
        TokenError::BadSignature,
        TokenError::Expired,
        TokenError::NotYetValid,
        TokenError::WrongAudience,
        TokenError::WrongIssuer,
        TokenError::MissingClaim("aud"),
        TokenError::InvalidClaim("x"),
        TokenError::KeysUnavailable,
    ];
    let mut reasons = std::collections::HashSet::new();
    for error in all {
        let expected = if error == TokenError::KeysUnavailable {
            Code::Unavailable
        } else {
            Code::Unauthenticated
        };
        assert_eq!(error.code(), expected, "{error:?}");
        let status = error.to_status();
        assert_eq!(status.code(), expected);
        assert_eq!(status.message(), error.to_string());
        assert!(
            reasons.insert(error.reason()),
            "reason of {error:?} is not unique"
        );
    }
}

#[test]
fn defaults_follow_the_rules() {
    let config = VerifierConfig::new(ISSUER);
    assert_eq!(config.audience, AUDIENCE);
    assert!(config.leeway <= MAX_LEEWAY);
    assert_eq!(config.max_token_bytes, 8 * 1024);
    assert_eq!(config.min_refresh_interval, Duration::from_secs(30));
    assert!(config.verified_cache_capacity > 0);
}

#[test]
fn jwks_error_from_status_keeps_code_and_message() {
    let error = JwksError::from(Status::unavailable("connection refused"));
    assert!(error.to_string().contains("Unavailable"));
    assert!(error.to_string().contains("connection refused"));
}

#[test]
fn canonical_uuids_only() {
    assert!(is_canonical_uuid(SUB));
    assert!(!is_canonical_uuid(&SUB.to_uppercase()));
    assert!(!is_canonical_uuid(&format!("{{{SUB}}}")));
    assert!(!is_canonical_uuid(&format!("urn:uuid:{SUB}")));
    assert!(!is_canonical_uuid(""));
}
