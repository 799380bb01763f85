//! OIDC single sign-on against real providers on loopback: npm
//! `oidc-provider` (a certified OpenID provider) for the whole flow, and
//! `tests/oidc/bad-provider.mjs` for ID tokens a relying party must refuse.
//! Each test has its own PostgreSQL database and its own provider process.
//!
//! Needs Node.js 20+ and `npm ci --prefix tests/oidc` (done by `.ci/run`).

use cg_context::{OrganizationId, Role};
use cg_db::ControlPool;
use cg_identity::SecretBox;
use cg_identity::sso::{self, SsoClient, SsoConfigInput, SsoError, SsoIdentity, StartedSso};
use cg_testkit::oidc::Browser;
use cg_testkit::oidc::{ClientRegistration, NodeProvider};
use reqwest::Url;
use sha2::{Digest, Sha256};

const REDIRECT_URI: &str = "https://app.claimguardian.test/sso/callback";
const DOMAIN: &str = "acme.test";

struct Fixture {
    pool: ControlPool,
    secrets: SecretBox,
    client: SsoClient,
    org: OrganizationId,
    registration: ClientRegistration,
}

impl Fixture {
    async fn new() -> Fixture {
        let db = cg_testkit::test_database().await;
        Fixture {
            pool: cg_db::connect_control(&db.url, 4)
                .await
                .expect("connect the test database"),
            secrets: SecretBox::generate(),
            client: SsoClient::new().expect("SSO HTTP client"),
            org: OrganizationId::new(),
            registration: ClientRegistration {
                client_id: "claimguardian-acme".into(),
                client_secret: format!("cs-{}", hex::encode(rand::random::<[u8; 16]>())),
                redirect_uri: REDIRECT_URI.into(),
                email_domain: DOMAIN.into(),
            },
        }
    }

    fn input(&self, issuer: &str) -> SsoConfigInput {
        SsoConfigInput {
            issuer_url: issuer.into(),
            client_id: self.registration.client_id.clone(),
            client_secret: Some(self.registration.client_secret.clone()),
            allowed_email_domains: vec![DOMAIN.into()],
            default_role: "member".into(),
        }
    }

    async fn configure(&self, issuer: &str) {
        sso::configure(&self.pool, &self.secrets, self.org, self.input(issuer))
            .await
            .expect("configure SSO");
    }

    async fn start(&self) -> StartedSso {
        sso::start(
            &self.pool,
            &self.secrets,
            &self.client,
            self.org,
            REDIRECT_URI,
        )
        .await
        .expect("start SSO")
    }

    async fn complete(&self, state: &str, code: &str) -> Result<SsoIdentity, SsoError> {
        sso::complete(&self.pool, &self.secrets, &self.client, state, code).await
    }

    /// Start, then the bad provider's authorization endpoint with `scenario`.
    async fn authorize_bad(&self, scenario: &str) -> (StartedSso, String) {
        let started = self.start().await;
        let mut url = Url::parse(&started.authorization_url).expect("authorization URL");
        url.query_pairs_mut().append_pair("scenario", scenario);
        let callback = Browser::new()
            .sign_in(url.as_str(), REDIRECT_URI, "alice")
            .await;
        assert_eq!(callback.state(), started.state);
        let code = callback.code();
        (started, code)
    }
}

fn query(url: &str) -> Vec<(String, String)> {
    Url::parse(url)
        .expect("absolute URL")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
        .unwrap_or_else(|| panic!("no `{name}` in {pairs:?}"))
}

/// A short, comparable description of a completion's outcome.
fn outcome(result: &Result<SsoIdentity, SsoError>) -> String {
    match result {
        Ok(identity) => format!("ok {}", identity.email),
        Err(SsoError::TokenRejected(reason)) => format!("rejected: {reason}"),
        Err(error) => format!("{error:?}"),
    }
}

#[tokio::test]
async fn sign_in_end_to_end_against_oidc_provider() {
    let fx = Fixture::new().await;
    let provider = NodeProvider::real(&fx.registration);
    fx.configure(&provider.issuer).await;

    let config = sso::get(&fx.pool, fx.org)
        .await
        .expect("read the configuration")
        .expect("configured");
    assert_eq!(config.issuer_url, provider.issuer);
    assert_eq!(config.allowed_email_domains, [DOMAIN]);
    assert_eq!(config.default_role, Role::Member);

    let started = fx.start().await;
    assert!(
        started
            .authorization_url
            .starts_with(&format!("{}/auth?", provider.issuer)),
        "{}",
        started.authorization_url
    );
    let pairs = query(&started.authorization_url);
    assert_eq!(param(&pairs, "response_type"), "code");
    assert_eq!(param(&pairs, "client_id"), fx.registration.client_id);
    assert_eq!(param(&pairs, "redirect_uri"), REDIRECT_URI);
    assert_eq!(param(&pairs, "state"), started.state);
    assert_eq!(param(&pairs, "code_challenge_method"), "S256");
    assert_eq!(
        param(&pairs, "code_challenge").len(),
        43,
        "base64url SHA-256"
    );
    assert!(param(&pairs, "nonce").len() >= 16);
    let scopes: Vec<&str> = param(&pairs, "scope").split(' ').collect();
    for scope in ["openid", "email", "profile"] {
        assert!(scopes.contains(&scope), "{scopes:?}");
    }
    let ttl = started.expires_at - chrono::Utc::now();
    assert!(ttl > chrono::TimeDelta::minutes(9) && ttl <= chrono::TimeDelta::minutes(10));

    let mut browser = Browser::new();
    let callback = browser
        .sign_in(&started.authorization_url, REDIRECT_URI, "alice")
        .await;
    assert_eq!(
        callback.state(),
        started.state,
        "trail {:#?}",
        browser.trail
    );
    let forms = browser
        .trail
        .iter()
        .filter(|step| step.starts_with("POST"))
        .count();
    assert_eq!(forms, 2, "a login and a consent form: {:#?}", browser.trail);
    assert_eq!(
        callback.param("iss").as_deref(),
        Some(provider.issuer.as_str())
    );

    // oidc-provider puts scope claims in the ID token only when no access
    // token is issued (OpenID Connect Core §5.4): the e-mail address comes
    // from its user-info endpoint here, from the ID token with bad-provider.
    let identity = fx
        .complete(&started.state, &callback.code())
        .await
        .unwrap_or_else(|error| {
            panic!(
                "complete: {error:?}\nprovider stderr:\n{}",
                provider.stderr()
            )
        });
    assert_eq!(
        identity,
        SsoIdentity {
            organization_id: fx.org,
            email: format!("alice@{DOMAIN}"),
            subject: "alice".into(),
            issuer: provider.issuer.clone(),
            name: Some("Alice Example".into()),
            default_role: Role::Member,
        }
    );

    // Single use: the same state (and code) again is refused before the
    // provider is even asked.
    let again = fx.complete(&started.state, &callback.code()).await;
    assert!(
        matches!(again, Err(SsoError::InvalidState)),
        "{}",
        outcome(&again)
    );
}

#[tokio::test]
async fn an_expired_or_unknown_state_is_refused() {
    let fx = Fixture::new().await;
    let provider = NodeProvider::bad(&fx.registration);
    fx.configure(&provider.issuer).await;

    let (started, code) = fx.authorize_bad("ok").await;
    let state_hash = Sha256::digest(started.state.as_bytes()).to_vec();
    let expired = sqlx::query(
        "UPDATE identity.sso_logins SET expires_at = now() - interval '1 second' \
         WHERE state_hash = $1",
    )
    .bind(&state_hash)
    .execute(&fx.pool)
    .await
    .expect("expire the sign-in");
    assert_eq!(
        expired.rows_affected(),
        1,
        "the state is stored as its SHA-256"
    );
    let result = fx.complete(&started.state, &code).await;
    assert!(
        matches!(result, Err(SsoError::InvalidState)),
        "{}",
        outcome(&result)
    );

    let unknown = fx.complete("never-issued", &code).await;
    assert!(
        matches!(unknown, Err(SsoError::InvalidState)),
        "{}",
        outcome(&unknown)
    );

    // Purging takes expired sign-ins only.
    let (_fresh, _) = fx.authorize_bad("ok").await;
    assert_eq!(
        sso::purge_expired(&fx.pool, std::time::Duration::ZERO)
            .await
            .expect("purge"),
        1
    );
}

#[tokio::test]
async fn the_relying_party_refuses_bad_id_tokens() {
    let fx = Fixture::new().await;
    let provider = NodeProvider::bad(&fx.registration);
    fx.configure(&provider.issuer).await;

    let cases = [
        ("ok", format!("ok alice@{DOMAIN}")),
        ("wrong_aud", "rejected: audience mismatch".into()),
        ("wrong_iss", "rejected: issuer mismatch".into()),
        ("bad_signature", "rejected: bad signature".into()),
        ("no_kid", "rejected: no key id with several keys".into()),
        ("nonce_mismatch", "rejected: nonce mismatch".into()),
        ("alg_none", "rejected: unsupported algorithm".into()),
        ("expired", "rejected: expired".into()),
        ("email_outside_domain", "EmailDomainNotAllowed".into()),
        (
            "unverified_email",
            "rejected: the provider has not verified the e-mail address".into(),
        ),
        ("no_email", "EmailMissing".into()),
    ];
    let mut failures = Vec::new();
    for (scenario, expected) in &cases {
        let (started, code) = fx.authorize_bad(scenario).await;
        let actual = outcome(&fx.complete(&started.state, &code).await);
        if &actual != expected {
            failures.push(format!("{scenario}: expected `{expected}`, got `{actual}`"));
        }
    }
    assert!(
        failures.is_empty(),
        "{failures:#?}\nprovider stderr:\n{}",
        provider.stderr()
    );

    let ok = {
        let (started, code) = fx.authorize_bad("ok").await;
        fx.complete(&started.state, &code)
            .await
            .expect("ok scenario")
    };
    assert_eq!(ok.subject, "bad-provider-alice");
    assert_eq!(ok.issuer, provider.issuer);
    assert_eq!(ok.name.as_deref(), Some("Alice Example"));
}

#[tokio::test]
async fn the_client_secret_is_checked_by_the_provider_and_kept_on_update() {
    let fx = Fixture::new().await;
    let provider = NodeProvider::bad(&fx.registration);
    fx.configure(&provider.issuer).await;

    // Update without a secret: the stored one stays and still works.
    let update = SsoConfigInput {
        client_secret: None,
        allowed_email_domains: vec!["Other.Example".into(), DOMAIN.into()],
        default_role: "viewer".into(),
        ..fx.input(&provider.issuer)
    };
    let updated = sso::configure(&fx.pool, &fx.secrets, fx.org, update)
        .await
        .expect("update keeping the secret");
    assert_eq!(updated.allowed_email_domains, [DOMAIN, "other.example"]);
    assert_eq!(updated.default_role, Role::Viewer);
    let (started, code) = fx.authorize_bad("ok").await;
    let identity = fx
        .complete(&started.state, &code)
        .await
        .expect("the kept secret authenticates");
    assert_eq!(identity.default_role, Role::Viewer);

    // A wrong secret is refused by the token endpoint.
    let wrong = SsoConfigInput {
        client_secret: Some("not-the-secret".into()),
        ..fx.input(&provider.issuer)
    };
    sso::configure(&fx.pool, &fx.secrets, fx.org, wrong)
        .await
        .expect("configure a wrong secret");
    let (started, code) = fx.authorize_bad("ok").await;
    let result = fx.complete(&started.state, &code).await;
    assert_eq!(
        outcome(&result),
        "rejected: the provider refused the client credentials"
    );
}

#[tokio::test]
async fn configuration_is_validated() {
    let fx = Fixture::new().await;
    let other = OrganizationId::new();
    assert!(
        sso::get(&fx.pool, other)
            .await
            .expect("read the configuration")
            .is_none()
    );
    let not_configured = sso::start(&fx.pool, &fx.secrets, &fx.client, other, REDIRECT_URI).await;
    assert!(matches!(not_configured, Err(SsoError::NotConfigured)));

    // The first configuration needs a secret.
    let first = SsoConfigInput {
        client_secret: None,
        ..fx.input("https://idp.acme.test")
    };
    match sso::configure(&fx.pool, &fx.secrets, fx.org, first).await {
        Err(SsoError::Invalid(violations)) => {
            assert_eq!(violations.fields().collect::<Vec<_>>(), ["client_secret"]);
        }
        other => panic!("{other:?}"),
    }

    let bad = SsoConfigInput {
        issuer_url: "http://idp.acme.test".into(),
        client_id: String::new(),
        client_secret: Some("x".into()),
        allowed_email_domains: vec!["acme".into()],
        default_role: "root".into(),
    };
    match sso::configure(&fx.pool, &fx.secrets, fx.org, bad).await {
        Err(SsoError::Invalid(violations)) => assert_eq!(
            violations.fields().collect::<Vec<_>>(),
            [
                "issuer_url",
                "client_id",
                "allowed_email_domains[0]",
                "default_role"
            ]
        ),
        other => panic!("{other:?}"),
    }

    // A redirect URI must be absolute.
    fx.configure("http://127.0.0.1:9").await;
    match sso::start(&fx.pool, &fx.secrets, &fx.client, fx.org, "/callback").await {
        Err(SsoError::Invalid(violations)) => {
            assert_eq!(violations.fields().collect::<Vec<_>>(), ["redirect_uri"]);
        }
        other => panic!("{other:?}"),
    }
    // Nobody listens on the discard port: the provider is unavailable.
    let unreachable = sso::start(&fx.pool, &fx.secrets, &fx.client, fx.org, REDIRECT_URI).await;
    assert!(
        matches!(unreachable, Err(SsoError::ProviderUnavailable(_))),
        "{unreachable:?}"
    );
}

#[tokio::test]
async fn a_sign_in_started_before_the_issuer_changed_does_not_complete() {
    let fx = Fixture::new().await;
    let provider = NodeProvider::bad(&fx.registration);
    fx.configure(&provider.issuer).await;
    let (started, code) = fx.authorize_bad("ok").await;
    let moved = format!("{}/moved", provider.issuer);
    fx.configure(&moved).await;
    let result = fx.complete(&started.state, &code).await;
    assert!(
        matches!(result, Err(SsoError::InvalidState)),
        "{}",
        outcome(&result)
    );
}

#[tokio::test]
async fn no_sso_secret_is_stored_in_clear() {
    let fx = Fixture::new().await;
    let provider = NodeProvider::bad(&fx.registration);
    fx.configure(&provider.issuer).await;
    let started = fx.start().await;
    let nonce = query(&started.authorization_url)
        .into_iter()
        .find(|(key, _)| key == "nonce")
        .map(|(_, value)| value)
        .expect("nonce in the URL");

    // Every column of both tables, as text (bytea as hex) and as raw bytes.
    let (text,): (String,) = sqlx::query_as(
        "SELECT concat_ws(E'\\n', \
             (SELECT string_agg(c::text, E'\\n') FROM identity.sso_configurations c), \
             (SELECT string_agg(l::text, E'\\n') FROM identity.sso_logins l))",
    )
    .fetch_one(&fx.pool)
    .await
    .expect("dump the SSO tables");
    let (bytes,): (Vec<u8>,) = sqlx::query_as(
        "SELECT (SELECT string_agg(client_secret_enc, '') FROM identity.sso_configurations) \
             || (SELECT string_agg(pkce_verifier_enc || nonce_hash || state_hash, '') \
                 FROM identity.sso_logins)",
    )
    .fetch_one(&fx.pool)
    .await
    .expect("read the sealed columns");
    assert!(
        text.contains(&fx.registration.client_id),
        "the dump is real"
    );
    for secret in [
        fx.registration.client_secret.as_str(),
        started.state.as_str(),
        nonce.as_str(),
    ] {
        assert!(!text.contains(secret), "`{secret}` in clear");
        assert!(
            !text.contains(&hex::encode(secret)),
            "`{secret}` hex-encoded"
        );
        assert!(
            !bytes
                .windows(secret.len())
                .any(|window| window == secret.as_bytes()),
            "`{secret}` in a bytea column"
        );
    }
}

#[tokio::test]
async fn the_redirect_uri_is_sent_identically_in_both_legs() {
    let fx = Fixture::new().await;
    let provider = NodeProvider::bad(&fx.registration);
    fx.configure(&provider.issuer).await;
    // Not in normal form: the authorization URL carries the normalised URI,
    // and the token request must repeat that, not the caller's spelling
    // (bad-provider compares them like a real provider).
    let spelled = "HTTPS://App.ClaimGuardian.test:443/sso/callback";
    let started = sso::start(&fx.pool, &fx.secrets, &fx.client, fx.org, spelled)
        .await
        .expect("start SSO");
    assert_eq!(
        param(&query(&started.authorization_url), "redirect_uri"),
        REDIRECT_URI
    );
    let callback = Browser::new()
        .sign_in(&started.authorization_url, REDIRECT_URI, "alice")
        .await;
    let identity = fx.complete(&callback.state(), &callback.code()).await;
    assert_eq!(outcome(&identity), format!("ok alice@{DOMAIN}"));
}
