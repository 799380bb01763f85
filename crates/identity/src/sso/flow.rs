//! The sign-in itself: `start` sends the browser to the provider, `complete`
//! takes the code it brings back.

use cg_context::OrganizationId;
use cg_db::ControlPool;
use cg_status::FieldViolations;
use openidconnect::core::{CoreAuthenticationFlow, CoreErrorResponseType, CoreUserInfoClaims};
use openidconnect::{
    AuthorizationCode, CsrfToken, HttpClientError, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, StandardErrorResponse, TokenResponse,
    UserInfoError,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::model::{SsoIdentity, StartedSso};
use super::provider::{self, SsoClient};
use super::repository::{self, NewLogin};
use super::validate::{self, EmailCheck};
use super::{LOGIN_TTL, SsoError};
use crate::secrets::SecretBox;

/// Longest `state` looked up; ours are 22 characters.
const MAX_STATE: usize = 512;
/// Longest authorization code sent on to the provider.
const MAX_CODE: usize = 4096;

fn sha256(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// Starts a sign-in for `org`: a fresh state, nonce and PKCE (S256)
/// verifier, remembered server-side for [`LOGIN_TTL`], and the provider's
/// authorization URL carrying them (scopes `openid email profile`).
pub async fn start(
    pool: &ControlPool,
    secrets: &SecretBox,
    sso: &SsoClient,
    org: OrganizationId,
    redirect_uri: &str,
) -> Result<StartedSso, SsoError> {
    let redirect = validate::redirect_uri(redirect_uri)?;
    // Stored as sent: the token request must repeat it byte for byte.
    let redirect_uri = redirect.as_str().to_owned();
    let config = repository::find(pool, org)
        .await?
        .ok_or(SsoError::NotConfigured)?;
    let provider = provider::discover(sso, &config.issuer_url, &config.client_id, None).await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = provider
        .client
        .set_redirect_uri(RedirectUrl::from_url(redirect))
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let expires_at = repository::insert_login(
        pool,
        &NewLogin {
            state_hash: &sha256(state.secret()),
            organization_id: org,
            issuer_url: &config.issuer_url,
            nonce_hash: &sha256(nonce.secret()),
            pkce_verifier_enc: &secrets.seal(verifier.secret().as_bytes()),
            redirect_uri: &redirect_uri,
            ttl: LOGIN_TTL,
        },
    )
    .await?;
    Ok(StartedSso {
        authorization_url: url.into(),
        state: state.into_secret(),
        expires_at,
    })
}

/// Completes the sign-in `state` names with the provider's `code`.
///
/// The state is consumed first, atomically (a second completion, or one
/// after [`LOGIN_TTL`], is `InvalidState`, even when this one fails later).
/// Then the code is exchanged with the PKCE verifier and the client secret,
/// and openidconnect validates the ID token: signature against the
/// provider's key set (asymmetric algorithms it announces, never `none`
/// or HMAC), issuer, audience, expiry and nonce. The e-mail address comes
/// from the ID token, or else from the user-info endpoint (checked to be
/// about the same subject); it must not be marked unverified and its
/// domain must be allowed.
///
/// Provisioning the membership and issuing tokens is the caller's.
pub async fn complete(
    pool: &ControlPool,
    secrets: &SecretBox,
    sso: &SsoClient,
    state: &str,
    code: &str,
) -> Result<SsoIdentity, SsoError> {
    if code.is_empty() || code.len() > MAX_CODE {
        return Err(FieldViolations::single("code", "required, at most 4096 characters").into());
    }
    if state.is_empty() || state.len() > MAX_STATE {
        return Err(SsoError::InvalidState);
    }
    let login = repository::consume_login(pool, &sha256(state))
        .await?
        .ok_or(SsoError::InvalidState)?;
    let org = OrganizationId(login.organization_id);
    let (config, secret_enc) = repository::find_with_secret(pool, org)
        .await?
        .ok_or(SsoError::NotConfigured)?;
    if config.issuer_url != login.issuer_url {
        // Reconfigured since the sign-in started: the code is another
        // provider's.
        return Err(SsoError::InvalidState);
    }
    let client_secret =
        String::from_utf8(secrets.open(&secret_enc)?).map_err(|_| SsoError::Sealed)?;
    let pkce_verifier = PkceCodeVerifier::new(
        String::from_utf8(secrets.open(&login.pkce_verifier_enc)?).map_err(|_| SsoError::Sealed)?,
    );
    let redirect = RedirectUrl::new(login.redirect_uri).map_err(|_| SsoError::InvalidState)?;

    let provider = provider::discover(
        sso,
        &config.issuer_url,
        &config.client_id,
        Some(client_secret),
    )
    .await?;
    let client = provider.client.set_redirect_uri(redirect);
    let response = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .set_pkce_verifier(pkce_verifier)
        .request_async(sso.http())
        .await
        .map_err(exchange_failed)?;
    let id_token = response
        .id_token()
        .ok_or_else(|| SsoError::TokenRejected("no ID token in the token response".into()))?;
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(provider.id_token_algs.iter().cloned());
    let expected_nonce = login.nonce_hash;
    let claims = id_token
        .claims(&verifier, |nonce: Option<&Nonce>| match nonce {
            Some(nonce) if bool::from(sha256(nonce.secret()).ct_eq(&expected_nonce)) => Ok(()),
            Some(_) => Err("nonce mismatch".to_owned()),
            None => Err("nonce missing".to_owned()),
        })
        .map_err(|error| SsoError::TokenRejected(super::error::rejection(&error).into()))?;

    let subject = claims.subject().as_str().to_owned();
    let mut name = claims
        .name()
        .and_then(|name| name.get(None))
        .map(|name| name.as_str().to_owned());
    let (email, email_verified) = match claims.email() {
        Some(email) => (email.as_str().to_owned(), claims.email_verified()),
        None => {
            // Providers conforming to OpenID Connect Core §5.4 release
            // scope claims from user-info only when an access token is issued.
            let Ok(request) = client.user_info(
                response.access_token().clone(),
                Some(claims.subject().clone()),
            ) else {
                return Err(SsoError::EmailMissing);
            };
            let info: CoreUserInfoClaims = request
                .request_async(sso.http())
                .await
                .map_err(user_info_failed)?;
            if name.is_none() {
                name = info
                    .name()
                    .and_then(|name| name.get(None))
                    .map(|name| name.as_str().to_owned());
            }
            match info.email() {
                Some(email) => (email.as_str().to_owned(), info.email_verified()),
                None => return Err(SsoError::EmailMissing),
            }
        }
    };
    if email_verified == Some(false) {
        return Err(SsoError::TokenRejected(
            "the provider has not verified the e-mail address".into(),
        ));
    }
    let email = match validate::email(&email, &config.allowed_email_domains) {
        EmailCheck::Allowed(email) => email,
        EmailCheck::DomainNotAllowed => return Err(SsoError::EmailDomainNotAllowed),
        EmailCheck::Malformed => {
            return Err(SsoError::TokenRejected("malformed e-mail address".into()));
        }
    };
    Ok(SsoIdentity {
        organization_id: org,
        email,
        subject,
        issuer: claims.issuer().as_str().to_owned(),
        name,
        default_role: config.default_role,
    })
}

fn exchange_failed(
    error: RequestTokenError<
        HttpClientError<reqwest::Error>,
        StandardErrorResponse<CoreErrorResponseType>,
    >,
) -> SsoError {
    match error {
        RequestTokenError::ServerResponse(response) => SsoError::TokenRejected(
            match response.error() {
                CoreErrorResponseType::InvalidGrant => {
                    "the provider refused the code (expired, used, or issued for another request)"
                }
                CoreErrorResponseType::InvalidClient => {
                    "the provider refused the client credentials"
                }
                _ => "the provider refused the code",
            }
            .into(),
        ),
        RequestTokenError::Parse(..) => SsoError::TokenRejected("malformed token response".into()),
        RequestTokenError::Request(_) => {
            SsoError::ProviderUnavailable("token request failed".into())
        }
        _ => SsoError::ProviderUnavailable("the token endpoint answered unexpectedly".into()),
    }
}

fn user_info_failed(error: UserInfoError<HttpClientError<reqwest::Error>>) -> SsoError {
    match error {
        UserInfoError::ClaimsVerification(_) => {
            SsoError::TokenRejected("user-info is about another subject".into())
        }
        UserInfoError::Parse(_) => SsoError::TokenRejected("malformed user-info response".into()),
        _ => SsoError::ProviderUnavailable("user-info request failed".into()),
    }
}
