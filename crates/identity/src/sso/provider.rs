//! Talking to an OpenID provider: the HTTP client, discovery (metadata and
//! key set), and an openidconnect client configured from them.

use std::time::Duration;

use openidconnect::core::{
    CoreClient, CoreClientAuthMethod, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AuthType, ClientId, ClientSecret, DiscoveryError, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, HttpClientError, IssuerUrl,
};

use super::SsoError;

/// The HTTP client of single sign-on. Create one and share it (it pools
/// connections). It never follows redirects: openidconnect requires that,
/// so a provider cannot bounce our requests to internal addresses.
#[derive(Debug, Clone)]
pub struct SsoClient {
    http: reqwest::Client,
}

impl SsoClient {
    /// Connect timeout 5 s, whole request 10 s.
    pub fn new() -> Result<SsoClient, reqwest::Error> {
        SsoClient::with_timeouts(Duration::from_secs(5), Duration::from_secs(10))
    }

    pub fn with_timeouts(connect: Duration, total: Duration) -> Result<SsoClient, reqwest::Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect)
            .timeout(total)
            .user_agent(concat!(
                "claimguardian-identity/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()?;
        Ok(SsoClient { http })
    }

    /// The underlying client (what openidconnect's requests take).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

/// A client for one provider: authorization and token endpoints known.
pub(crate) type ProviderClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
    EndpointMaybeSet,
>;

/// The provider as discovered just now, with the ID-token algorithms we
/// accept from it.
pub(crate) struct Provider {
    pub client: ProviderClient,
    pub id_token_algs: Vec<CoreJwsSigningAlgorithm>,
}

/// Asymmetric algorithms only: `none` is never accepted, and HMAC with the
/// client secret is refused because the secret is shared with whoever
/// configured it.
const ASYMMETRIC: &[CoreJwsSigningAlgorithm] = &[
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// Fetches the discovery document and the key set of `issuer` (every
/// call: a rotated key is seen at once, and a sign-in costs two small
/// requests more) and builds a client for it.
pub(crate) async fn discover(
    sso: &SsoClient,
    issuer: &str,
    client_id: &str,
    client_secret: Option<String>,
) -> Result<Provider, SsoError> {
    let issuer = IssuerUrl::new(issuer.to_owned())
        .map_err(|_| SsoError::ProviderUnavailable("the issuer URL does not parse".into()))?;
    let metadata = CoreProviderMetadata::discover_async(issuer, sso.http())
        .await
        .map_err(discovery_failed)?;
    let token_url = metadata.token_endpoint().cloned().ok_or_else(|| {
        SsoError::ProviderUnavailable("the provider announces no token endpoint".into())
    })?;
    let auth_type = match metadata.token_endpoint_auth_methods_supported() {
        Some(methods)
            if !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
                && methods.contains(&CoreClientAuthMethod::ClientSecretPost) =>
        {
            AuthType::RequestBody
        }
        _ => AuthType::BasicAuth,
    };
    let offered = metadata.id_token_signing_alg_values_supported();
    let mut id_token_algs: Vec<_> = ASYMMETRIC
        .iter()
        .filter(|alg| offered.contains(alg))
        .cloned()
        .collect();
    if id_token_algs.is_empty() {
        // OpenID Connect's default, which every provider must support.
        id_token_algs.push(CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256);
    }
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.to_owned()),
        client_secret.map(ClientSecret::new),
    )
    .set_token_uri(token_url)
    .set_auth_type(auth_type);
    Ok(Provider {
        client,
        id_token_algs,
    })
}

fn discovery_failed(error: DiscoveryError<HttpClientError<reqwest::Error>>) -> SsoError {
    let step = match error {
        DiscoveryError::Request(_) => "discovery request failed",
        DiscoveryError::Response(..) => "discovery answered with an error status",
        DiscoveryError::Parse(_) => "discovery document or key set malformed",
        DiscoveryError::Validation(_) => {
            "discovery document invalid (its issuer must equal the configured one)"
        }
        DiscoveryError::UrlParse(_) => "the issuer URL does not parse",
        _ => "discovery failed",
    };
    SsoError::ProviderUnavailable(step.into())
}
