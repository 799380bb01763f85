//! Typed helpers for people: invitations, sign-in, second factors, API keys.

use cg_proto::identity::v1 as identity;
use cg_proto::identity::v1::identity_service_client::IdentityServiceClient;
use cg_testkit::TestStack;
use tonic::Request;

/// Invites `email` into `code` as the operator; returns the invitation id and token.
pub async fn invite(
    stack: &TestStack,
    code: &str,
    email: &str,
    role: identity::Role,
) -> (String, String) {
    let response = IdentityServiceClient::new(stack.gateway().await)
        .create_invitation(stack.in_tenant(
            code,
            identity::CreateInvitationRequest {
                email: email.to_owned(),
                role: role.into(),
            },
        ))
        .await
        .expect("invite")
        .into_inner();
    (response.invitation.expect("invitation").id, response.token)
}

/// The password of every member the tests admit.
pub const PASSWORD: &str = "correct horse battery staple";

/// Invites and admits `email` with [`PASSWORD`]; returns the user id.
pub async fn join(stack: &TestStack, code: &str, email: &str, role: identity::Role) -> String {
    let (_, token) = invite(stack, code, email, role).await;
    IdentityServiceClient::new(stack.gateway().await)
        .accept_invitation(identity::AcceptInvitationRequest {
            token,
            password: PASSWORD.to_owned(),
            display_name: email.to_owned(),
        })
        .await
        .expect("accept")
        .into_inner()
        .user
        .expect("user")
        .id
}

/// Signs `email` in to `code` with [`PASSWORD`].
pub async fn login(stack: &TestStack, code: &str, email: &str) -> identity::SessionTokens {
    let response = IdentityServiceClient::new(stack.gateway().await)
        .login(identity::LoginRequest {
            organization_code: code.to_owned(),
            email: email.to_owned(),
            password: PASSWORD.to_owned(),
        })
        .await
        .expect("login")
        .into_inner();
    match response.result {
        Some(identity::login_response::Result::Tokens(tokens)) => tokens,
        other => panic!("no tokens: {other:?}"),
    }
}

/// A request carrying a user's access token, within organization `code`.
pub fn as_user<T>(code: &str, access_token: &str, message: T) -> Request<T> {
    let mut request = cg_testkit::with_bearer(Request::new(message), access_token);
    request
        .metadata_mut()
        .insert("x-tenant", code.parse().expect("ascii"));
    request
}

/// The raw answer of a password sign-in.
pub async fn password_login(stack: &TestStack, code: &str, email: &str) -> identity::LoginResponse {
    IdentityServiceClient::new(stack.gateway().await)
        .login(identity::LoginRequest {
            organization_code: code.to_owned(),
            email: email.to_owned(),
            password: PASSWORD.to_owned(),
        })
        .await
        .expect("login")
        .into_inner()
}

/// A member of `code` as `email`, signed in.
pub async fn signed_in(stack: &TestStack, code: &str, email: &str) -> identity::SessionTokens {
    join(stack, code, email, identity::Role::Member).await;
    login(stack, code, email).await
}

/// Enrols the signed-in user in TOTP; returns the secret.
pub async fn enroll(
    stack: &TestStack,
    code: &str,
    access_token: &str,
) -> cg_identity::mfa::totp::TotpSecret {
    let enrolled = IdentityServiceClient::new(stack.gateway().await)
        .enroll_totp(as_user(code, access_token, identity::EnrollTotpRequest {}))
        .await
        .expect("enrol")
        .into_inner();
    assert!(enrolled.otpauth_uri.starts_with("otpauth://totp/"));
    cg_identity::mfa::totp::TotpSecret::from_base32(&enrolled.secret).expect("base32 secret")
}

/// The current TOTP code of `secret`.
pub fn current_code(secret: &cg_identity::mfa::totp::TotpSecret) -> String {
    let now = u64::try_from(chrono::Utc::now().timestamp()).expect("after 1970");
    cg_identity::mfa::totp::code_at(&cg_identity::mfa::totp::TotpParams::STANDARD, secret, now)
        .expect("code")
}

/// Confirms enrolment with the current code; returns the recovery codes.
pub async fn confirm(
    stack: &TestStack,
    code: &str,
    access_token: &str,
    secret: &cg_identity::mfa::totp::TotpSecret,
) -> Vec<String> {
    IdentityServiceClient::new(stack.gateway().await)
        .confirm_totp(as_user(
            code,
            access_token,
            identity::ConfirmTotpRequest {
                totp_code: current_code(secret),
            },
        ))
        .await
        .expect("confirm")
        .into_inner()
        .recovery_codes
}

/// Creates a member-role API key as the operator; returns its id and secret.
pub async fn create_key(stack: &TestStack, code: &str, name: &str) -> (String, String) {
    let created = IdentityServiceClient::new(stack.gateway().await)
        .create_api_key(stack.in_tenant(
            code,
            identity::CreateApiKeyRequest {
                display_name: name.to_owned(),
                role: identity::Role::Member.into(),
                expire_time: None,
            },
        ))
        .await
        .expect("create API key")
        .into_inner();
    (created.api_key.expect("key").id, created.secret)
}

/// A real OpenID provider registered for organization `code`, whose people
/// have e-mail addresses in `<code>.example`.
pub struct Sso {
    pub provider: cg_testkit::oidc::NodeProvider,
    pub registration: cg_testkit::oidc::ClientRegistration,
}

impl Sso {
    pub fn start(code: &str) -> Sso {
        let registration = cg_testkit::oidc::ClientRegistration {
            client_id: format!("claimguardian-{code}"),
            client_secret: format!("client-secret-of-{code}-{}", uuid::Uuid::now_v7().simple()),
            redirect_uri: cg_identity::DEFAULT_SSO_REDIRECT_URI.to_owned(),
            email_domain: format!("{code}.example"),
        };
        let provider = cg_testkit::oidc::NodeProvider::real(&registration);
        Sso {
            provider,
            registration,
        }
    }

    /// Configures the organization to sign in through this provider.
    pub async fn configure(&self, stack: &TestStack, code: &str) {
        IdentityServiceClient::new(stack.gateway().await)
            .update_sso_configuration(
                stack.in_tenant(
                    code,
                    identity::UpdateSsoConfigurationRequest {
                        sso_configuration: Some(identity::SsoConfiguration {
                            issuer_url: self.provider.issuer.clone(),
                            client_id: self.registration.client_id.clone(),
                            client_secret: self.registration.client_secret.clone(),
                            allowed_email_domains: vec![self.registration.email_domain.clone()],
                            jit_default_role: identity::Role::Member.into(),
                            ..Default::default()
                        }),
                        update_mask: Some(prost_types::FieldMask {
                            paths: [
                                "issuer_url",
                                "client_id",
                                "client_secret",
                                "allowed_email_domains",
                                "jit_default_role",
                            ]
                            .map(str::to_owned)
                            .to_vec(),
                        }),
                    },
                ),
            )
            .await
            .expect("configure SSO");
    }

    /// StartSso, the browser leg as `login`, CompleteSso.
    pub async fn sign_in(
        &self,
        stack: &TestStack,
        code: &str,
        login: &str,
    ) -> identity::CompleteSsoResponse {
        let started = IdentityServiceClient::new(stack.gateway().await)
            .start_sso(identity::StartSsoRequest {
                organization_code: code.to_owned(),
                login_hint: String::new(),
            })
            .await
            .expect("start SSO")
            .into_inner();
        let callback = cg_testkit::oidc::Browser::new()
            .sign_in(
                &started.authorization_url,
                &self.registration.redirect_uri,
                login,
            )
            .await;
        assert_eq!(callback.state(), started.state);
        IdentityServiceClient::new(stack.gateway().await)
            .complete_sso(identity::CompleteSsoRequest {
                state: callback.state(),
                code: callback.code(),
            })
            .await
            .expect("complete SSO")
            .into_inner()
    }
}

/// The TOTP code of the next step: accepted now (±1 step) and after a code
/// of the current step was used.
pub fn next_code(secret: &cg_identity::mfa::totp::TotpSecret) -> String {
    let now = u64::try_from(chrono::Utc::now().timestamp()).expect("after 1970");
    cg_identity::mfa::totp::code_at(
        &cg_identity::mfa::totp::TotpParams::STANDARD,
        secret,
        now + 30,
    )
    .expect("code")
}
