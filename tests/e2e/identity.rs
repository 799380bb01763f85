//! People through the gateway: invitations, sign-in with a second factor,
//! roles, the last owner, refresh tokens, API keys, throttling, IP
//! allow-lists, and no secret stored in clear.

use std::time::Duration;

use cg_proto::audit::v1 as audit;
use cg_proto::audit::v1::audit_service_client::AuditServiceClient;
use cg_proto::billing::v1 as billing;
use cg_proto::billing::v1::billing_service_client::BillingServiceClient;
use cg_proto::claims::v1 as claims;
use cg_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use cg_proto::identity::v1 as identity;
use cg_proto::identity::v1::identity_service_client::IdentityServiceClient;
use cg_proto::tenancy::v1 as tenancy;
use cg_proto::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use cg_testkit::{TestStack, with_bearer};
use prost_types::FieldMask;
use tonic::{Code, Request};
use tonic_types::StatusExt;

use crate::assertions::{assert_code, assert_reason};
use crate::fixtures::{create_enterprise, property};
use crate::identity_fixtures::{
    PASSWORD, as_user, confirm, create_key, current_code, enroll, invite, join, login,
    password_login, signed_in,
};

async fn identity_client(stack: &TestStack) -> IdentityServiceClient<tonic::transport::Channel> {
    IdentityServiceClient::new(stack.gateway().await)
}

async fn create_property_as(
    stack: &TestStack,
    code: &str,
    token: &str,
) -> Result<claims::Property, tonic::Status> {
    let response = ClaimsServiceClient::new(stack.gateway().await)
        .create_property(as_user(
            code,
            token,
            claims::CreatePropertyRequest {
                property: Some(property("Home", "FL")),
            },
        ))
        .await?;
    Ok(response.into_inner().property.expect("property"))
}

#[tokio::test]
async fn invite_accept_login_enrol_a_second_factor_and_work_with_the_token() {
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "acme").await;

    join(&stack, "acme", "alice@acme.example", identity::Role::Member).await;
    let first = login(&stack, "acme", "alice@acme.example").await;
    assert_eq!(first.amr, ["pwd"]);
    assert_eq!(first.role, identity::Role::Member as i32);
    let created = create_property_as(&stack, "acme", &first.access_token)
        .await
        .expect("a member creates a property");
    assert!(
        !created.owner_user_id.is_empty(),
        "the property belongs to alice"
    );

    let secret = enroll(&stack, "acme", &first.access_token).await;
    // The same code string is replayed below: a step boundary in between
    // cannot turn the replay into a fresh code.
    let code = current_code(&secret);
    let recovery = identity_client(&stack)
        .await
        .confirm_totp(as_user(
            "acme",
            &first.access_token,
            identity::ConfirmTotpRequest {
                totp_code: code.clone(),
            },
        ))
        .await
        .expect("confirm")
        .into_inner()
        .recovery_codes;
    assert_eq!(recovery.len(), 10);

    // Now the password alone yields a challenge, not a token.
    let challenge = match password_login(&stack, "acme", "alice@acme.example")
        .await
        .result
    {
        Some(identity::login_response::Result::MfaChallenge(challenge)) => challenge,
        other => panic!("expected a challenge, got {other:?}"),
    };
    let wrong = identity_client(&stack)
        .await
        .complete_mfa_challenge(identity::CompleteMfaChallengeRequest {
            challenge_token: challenge.challenge_token.clone(),
            code: Some(identity::complete_mfa_challenge_request::Code::TotpCode(
                "000000".to_owned(),
            )),
        })
        .await;
    assert_reason(wrong, Code::Unauthenticated, "MFA_CODE_INVALID");
    // The code that confirmed enrolment was used in this step: a replay.
    let replayed = identity_client(&stack)
        .await
        .complete_mfa_challenge(identity::CompleteMfaChallengeRequest {
            challenge_token: challenge.challenge_token.clone(),
            code: Some(identity::complete_mfa_challenge_request::Code::TotpCode(
                current_code(&secret),
            )),
        })
        .await;
    assert_reason(replayed, Code::Unauthenticated, "MFA_CODE_INVALID");
    let tokens = identity_client(&stack)
        .await
        .complete_mfa_challenge(identity::CompleteMfaChallengeRequest {
            challenge_token: challenge.challenge_token.clone(),
            code: Some(
                identity::complete_mfa_challenge_request::Code::RecoveryCode(recovery[3].clone()),
            ),
        })
        .await
        .expect("a recovery code completes the challenge")
        .into_inner();
    assert_eq!(tokens.recovery_codes_remaining, 9);
    let session = tokens.tokens.expect("tokens");
    assert_eq!(session.amr, ["pwd", "otp"]);
    create_property_as(&stack, "acme", &session.access_token)
        .await
        .expect("works with the new token");

    // The challenge is single use; the recovery code too.
    let again = identity_client(&stack)
        .await
        .complete_mfa_challenge(identity::CompleteMfaChallengeRequest {
            challenge_token: challenge.challenge_token,
            code: Some(
                identity::complete_mfa_challenge_request::Code::RecoveryCode(recovery[4].clone()),
            ),
        })
        .await;
    assert_reason(again, Code::Unauthenticated, "MFA_CHALLENGE_INVALID");
    let next = match password_login(&stack, "acme", "alice@acme.example")
        .await
        .result
    {
        Some(identity::login_response::Result::MfaChallenge(challenge)) => challenge,
        other => panic!("expected a challenge, got {other:?}"),
    };
    let reused = identity_client(&stack)
        .await
        .complete_mfa_challenge(identity::CompleteMfaChallengeRequest {
            challenge_token: next.challenge_token,
            code: Some(
                identity::complete_mfa_challenge_request::Code::RecoveryCode(recovery[3].clone()),
            ),
        })
        .await;
    assert_reason(reused, Code::Unauthenticated, "MFA_CODE_INVALID");
}

#[tokio::test]
async fn each_role_has_one_allowed_and_one_denied_call() {
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "roles").await;
    let mut tokens = std::collections::BTreeMap::new();
    for (name, role) in [
        ("owner", identity::Role::Owner),
        ("admin", identity::Role::Admin),
        ("manager", identity::Role::Manager),
        ("member", identity::Role::Member),
        ("viewer", identity::Role::Viewer),
    ] {
        let email = format!("{name}@roles.example");
        join(&stack, "roles", &email, role).await;
        tokens.insert(name, login(&stack, "roles", &email).await.access_token);
    }

    // owner: settings yes; platform operations no.
    TenancyServiceClient::new(stack.gateway().await)
        .update_organization(as_user(
            "roles",
            &tokens["owner"],
            tenancy::UpdateOrganizationRequest {
                organization: Some(tenancy::Organization {
                    display_name: "Roles Mutual".to_owned(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["display_name".to_owned()],
                }),
            },
        ))
        .await
        .expect("owner updates the organization");
    let platform = TenancyServiceClient::new(stack.gateway().await)
        .list_organizations(with_bearer(
            Request::new(tenancy::ListOrganizationsRequest::default()),
            &tokens["owner"],
        ))
        .await;
    assert_reason(platform, Code::PermissionDenied, "OPERATOR_REQUIRED");

    // admin: the audit log yes; billing.manage no.
    AuditServiceClient::new(stack.gateway().await)
        .list_audit_entries(as_user(
            "roles",
            &tokens["admin"],
            audit::ListAuditEntriesRequest::default(),
        ))
        .await
        .expect("admin reads the audit log");
    let billing = BillingServiceClient::new(stack.gateway().await)
        .record_usage(as_user(
            "roles",
            &tokens["admin"],
            billing::RecordUsageRequest::default(),
        ))
        .await;
    assert_reason(billing, Code::PermissionDenied, "PERMISSION_DENIED");

    // manager: list members yes; invite no.
    identity_client(&stack)
        .await
        .list_memberships(as_user(
            "roles",
            &tokens["manager"],
            identity::ListMembershipsRequest::default(),
        ))
        .await
        .expect("manager lists members");
    let invite_denied = identity_client(&stack)
        .await
        .create_invitation(as_user(
            "roles",
            &tokens["manager"],
            identity::CreateInvitationRequest {
                email: "x@roles.example".to_owned(),
                role: identity::Role::Viewer.into(),
            },
        ))
        .await;
    assert_reason(invite_denied, Code::PermissionDenied, "PERMISSION_DENIED");

    // member: create a property yes; read the members no.
    create_property_as(&stack, "roles", &tokens["member"])
        .await
        .expect("member creates");
    let members_denied = identity_client(&stack)
        .await
        .list_memberships(as_user(
            "roles",
            &tokens["member"],
            identity::ListMembershipsRequest::default(),
        ))
        .await;
    assert_reason(members_denied, Code::PermissionDenied, "PERMISSION_DENIED");

    // viewer: list properties yes (but only... all of them: viewers read); create no.
    ClaimsServiceClient::new(stack.gateway().await)
        .list_properties(as_user(
            "roles",
            &tokens["viewer"],
            claims::ListPropertiesRequest::default(),
        ))
        .await
        .expect("viewer lists");
    let create_denied = create_property_as(&stack, "roles", &tokens["viewer"]).await;
    assert_reason(create_denied, Code::PermissionDenied, "PERMISSION_DENIED");

    // Members see only their own properties (row-level security).
    let owner_property = create_property_as(&stack, "roles", &tokens["owner"])
        .await
        .expect("owner creates");
    let seen_by_member = ClaimsServiceClient::new(stack.gateway().await)
        .list_properties(as_user(
            "roles",
            &tokens["member"],
            claims::ListPropertiesRequest::default(),
        ))
        .await
        .expect("member lists")
        .into_inner()
        .properties;
    assert!(
        seen_by_member.iter().all(|p| p.id != owner_property.id),
        "a member saw another's property"
    );
    assert_eq!(seen_by_member.len(), 1);

    // Nobody grants a role above their own: an admin cannot invite an owner.
    let above = identity_client(&stack)
        .await
        .create_invitation(as_user(
            "roles",
            &tokens["admin"],
            identity::CreateInvitationRequest {
                email: "boss@roles.example".to_owned(),
                role: identity::Role::Owner.into(),
            },
        ))
        .await;
    assert_reason(above, Code::PermissionDenied, "ROLE_ABOVE_OWN");
}

#[tokio::test]
async fn the_last_owner_can_be_neither_removed_nor_demoted() {
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "owned").await;
    let owner = join(&stack, "owned", "only@owned.example", identity::Role::Owner).await;
    let mut client = identity_client(&stack).await;

    let removed = client
        .remove_membership(stack.in_tenant(
            "owned",
            identity::RemoveMembershipRequest {
                user_id: owner.clone(),
            },
        ))
        .await;
    assert_reason(removed, Code::FailedPrecondition, "LAST_OWNER");
    let demoted = client
        .update_membership(stack.in_tenant(
            "owned",
            identity::UpdateMembershipRequest {
                membership: Some(identity::Membership {
                    user_id: owner.clone(),
                    role: identity::Role::Admin.into(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["role".to_owned()],
                }),
            },
        ))
        .await;
    assert_reason(demoted, Code::FailedPrecondition, "LAST_OWNER");

    // With a second owner, the first may step down.
    join(
        &stack,
        "owned",
        "second@owned.example",
        identity::Role::Owner,
    )
    .await;
    client
        .update_membership(stack.in_tenant(
            "owned",
            identity::UpdateMembershipRequest {
                membership: Some(identity::Membership {
                    user_id: owner,
                    role: identity::Role::Admin.into(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["role".to_owned()],
                }),
            },
        ))
        .await
        .expect("demoted once another owner exists");
}

#[tokio::test]
async fn tokens_are_good_for_their_organization_only_and_hostile_ones_are_refused() {
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "home").await;
    create_enterprise(&stack, "away").await;
    let session = signed_in(&stack, "home", "traveller@home.example").await;

    let across = ClaimsServiceClient::new(stack.gateway().await)
        .list_properties(as_user(
            "away",
            &session.access_token,
            claims::ListPropertiesRequest::default(),
        ))
        .await;
    assert_reason(across, Code::PermissionDenied, "TENANT_MISMATCH");

    let (header, rest) = session.access_token.split_once('.').expect("a JWT");
    let none_header = base64_url(br#"{"alg":"none","typ":"at+jwt","kid":"x"}"#);
    let payload = rest.split_once('.').expect("three segments").0;
    for hostile in [
        format!("{none_header}.{payload}."),
        format!("{header}.{payload}.c2lnbmF0dXJl"),
        format!("{header}.{payload}"),
        "not-a-token".to_owned(),
        "a".repeat(10_000),
        format!(
            "{}.{payload}.sig",
            base64_url(br#"{"alg":"HS256","typ":"at+jwt","kid":"x"}"#)
        ),
    ] {
        let refused = ClaimsServiceClient::new(stack.gateway().await)
            .list_properties(as_user(
                "home",
                &hostile,
                claims::ListPropertiesRequest::default(),
            ))
            .await;
        assert_code(refused, Code::Unauthenticated);
    }
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_family() {
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "fresh").await;
    let first = signed_in(&stack, "fresh", "rotor@fresh.example").await;
    let mut client = identity_client(&stack).await;
    let second = client
        .refresh_token(identity::RefreshTokenRequest {
            refresh_token: first.refresh_token.clone(),
        })
        .await
        .expect("refresh")
        .into_inner()
        .tokens
        .expect("tokens");
    assert_ne!(second.refresh_token, first.refresh_token, "rotated");

    // The first token again: reuse, so the whole family goes.
    let reused = client
        .refresh_token(identity::RefreshTokenRequest {
            refresh_token: first.refresh_token,
        })
        .await;
    assert_reason(reused, Code::Unauthenticated, "REFRESH_TOKEN_INVALID");
    let after = client
        .refresh_token(identity::RefreshTokenRequest {
            refresh_token: second.refresh_token,
        })
        .await;
    assert_reason(after, Code::Unauthenticated, "REFRESH_TOKEN_INVALID");

    // Logout revokes the refresh tokens of the session.
    let third = login(&stack, "fresh", "rotor@fresh.example").await;
    client
        .logout(as_user(
            "fresh",
            &third.access_token,
            identity::LogoutRequest::default(),
        ))
        .await
        .expect("logout");
    let logged_out = client
        .refresh_token(identity::RefreshTokenRequest {
            refresh_token: third.refresh_token,
        })
        .await;
    assert_reason(logged_out, Code::Unauthenticated, "REFRESH_TOKEN_INVALID");
}

#[tokio::test]
async fn api_keys_act_with_their_role_until_revoked() {
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "robots").await;
    create_enterprise(&stack, "others").await;
    let (id, secret) = create_key(&stack, "robots", "importer").await;
    assert!(secret.starts_with("cgk_"));

    ClaimsServiceClient::new(stack.gateway().await)
        .create_property(as_user(
            "robots",
            &secret,
            claims::CreatePropertyRequest {
                property: Some(property("Imported", "FL")),
            },
        ))
        .await
        .expect("a member-role key creates properties");
    let denied = identity_client(&stack)
        .await
        .list_memberships(as_user(
            "robots",
            &secret,
            identity::ListMembershipsRequest::default(),
        ))
        .await;
    assert_reason(denied, Code::PermissionDenied, "PERMISSION_DENIED");
    let elsewhere = ClaimsServiceClient::new(stack.gateway().await)
        .list_properties(as_user(
            "others",
            &secret,
            claims::ListPropertiesRequest::default(),
        ))
        .await;
    assert_reason(elsewhere, Code::PermissionDenied, "TENANT_MISMATCH");

    identity_client(&stack)
        .await
        .revoke_api_key(stack.in_tenant("robots", identity::RevokeApiKeyRequest { id }))
        .await
        .expect("revoke");
    let revoked = ClaimsServiceClient::new(stack.gateway().await)
        .list_properties(as_user(
            "robots",
            &secret,
            claims::ListPropertiesRequest::default(),
        ))
        .await;
    assert_code(revoked, Code::Unauthenticated);
}

#[tokio::test]
async fn failed_sign_ins_lock_the_account_even_for_the_right_password() {
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "locked").await;
    join(
        &stack,
        "locked",
        "target@locked.example",
        identity::Role::Member,
    )
    .await;
    let mut client = identity_client(&stack).await;
    let attempt = |password: &str| identity::LoginRequest {
        organization_code: "locked".to_owned(),
        email: "target@locked.example".to_owned(),
        password: password.to_owned(),
    };
    // Unknown accounts and wrong passwords answer alike.
    let unknown = client
        .login(identity::LoginRequest {
            email: "nobody@locked.example".to_owned(),
            ..attempt(PASSWORD)
        })
        .await;
    let unknown = assert_reason(unknown, Code::Unauthenticated, "INVALID_CREDENTIALS");
    for n in 0..5 {
        let wrong = client.login(attempt(&format!("wrong password {n}"))).await;
        let wrong = assert_reason(wrong, Code::Unauthenticated, "INVALID_CREDENTIALS");
        assert_eq!(
            wrong.message(),
            unknown.message(),
            "no enumeration through messages"
        );
    }
    let locked = client.login(attempt(PASSWORD)).await;
    let status = assert_reason(locked, Code::ResourceExhausted, "LOGIN_THROTTLED");
    let retry = status
        .get_error_details()
        .retry_info()
        .and_then(|r| r.retry_delay)
        .expect("RetryInfo");
    assert!(
        retry > Duration::from_secs(60) && retry <= Duration::from_secs(900),
        "{retry:?}"
    );
}

#[tokio::test]
async fn the_ip_allow_list_applies_to_the_next_request() {
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "fenced").await;
    let session = signed_in(&stack, "fenced", "inside@fenced.example").await;
    let list = || async {
        ClaimsServiceClient::new(stack.gateway().await)
            .list_properties(as_user(
                "fenced",
                &session.access_token,
                claims::ListPropertiesRequest::default(),
            ))
            .await
    };
    list().await.expect("no allow-list: every address");

    let set = |ranges: Vec<&str>| identity::UpdateSecuritySettingsRequest {
        security_settings: Some(identity::SecuritySettings {
            ip_allowlist: ranges.into_iter().map(str::to_owned).collect(),
            ..Default::default()
        }),
        update_mask: Some(FieldMask {
            paths: vec!["ip_allowlist".to_owned()],
        }),
    };
    let mut client = identity_client(&stack).await;
    let bad = client
        .update_security_settings(stack.in_tenant("fenced", set(vec!["010.0.0.1/32"])))
        .await;
    crate::assertions::assert_field_violation(bad, "security_settings.ip_allowlist[0]");
    client
        .update_security_settings(
            stack.in_tenant("fenced", set(vec!["203.0.113.0/24", "2001:db8::/32"])),
        )
        .await
        .expect("set an allow-list without loopback");
    assert_reason(list().await, Code::PermissionDenied, "IP_NOT_ALLOWED");
    client
        .update_security_settings(stack.in_tenant("fenced", set(vec!["127.0.0.1/32"])))
        .await
        .expect_err("the operator is outside the list too");
}

#[tokio::test]
async fn no_secret_is_stored_in_clear() {
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "vault").await;
    let (_, invitation_token) = invite(
        &stack,
        "vault",
        "keeper@vault.example",
        identity::Role::Member,
    )
    .await;
    IdentityServiceClient::new(stack.gateway().await)
        .accept_invitation(identity::AcceptInvitationRequest {
            token: invitation_token.clone(),
            password: PASSWORD.to_owned(),
            display_name: "Keeper".to_owned(),
        })
        .await
        .expect("accept");
    let session = login(&stack, "vault", "keeper@vault.example").await;
    let secret = enroll(&stack, "vault", &session.access_token).await;
    let recovery = confirm(&stack, "vault", &session.access_token, &secret).await;
    let (_, api_key) = create_key(&stack, "vault", "robot").await;

    let dump: String = sqlx::query_scalar(
        "SELECT string_agg(t, ' ') FROM ( \
           SELECT row_to_json(u)::text AS t FROM identity.users u UNION ALL \
           SELECT row_to_json(i)::text FROM identity.invitations i UNION ALL \
           SELECT row_to_json(r)::text FROM identity.refresh_tokens r UNION ALL \
           SELECT row_to_json(c)::text FROM identity.recovery_codes c UNION ALL \
           SELECT row_to_json(k)::text FROM identity.api_keys k UNION ALL \
           SELECT row_to_json(s)::text FROM identity.signing_keys s UNION ALL \
           SELECT row_to_json(m)::text FROM identity.mfa_challenges m UNION ALL \
           SELECT row_to_json(o)::text FROM identity.operator_api_keys o UNION ALL \
           SELECT row_to_json(a)::text FROM org_vault.audit_log a) d",
    )
    .fetch_one(&stack.control)
    .await
    .expect("dump");
    let secret_base32 = secret.to_base32();
    let api_key_secret = api_key.rsplit('_').next().expect("secret part");
    for (what, value) in [
        ("password", PASSWORD),
        ("invitation token", invitation_token.as_str()),
        ("access token", session.access_token.as_str()),
        ("refresh token", session.refresh_token.as_str()),
        ("TOTP secret", secret_base32.as_str()),
        ("recovery code", recovery[0].as_str()),
        ("API key", api_key.as_str()),
        ("API key secret", api_key_secret),
        ("operator key", stack.operator_key.as_str()),
    ] {
        assert!(!dump.contains(value), "{what} stored in clear");
    }
    let hex_totp: String = secret
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        !dump.contains(&hex_totp),
        "TOTP secret stored in clear (hex)"
    );
}

fn kid_of(token: &str) -> String {
    use base64::Engine as _;
    let header = token.split('.').next().expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .expect("base64url header");
    let json: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON header");
    json["kid"].as_str().expect("kid").to_owned()
}

#[tokio::test]
async fn a_rotated_signing_key_is_published_before_it_signs_and_old_tokens_keep_working() {
    let identity_config = cg_identity::IdentityConfig {
        signing_key_publish_delay: Duration::from_secs(2),
        ..cg_identity::IdentityConfig::default()
    };
    let gateway_config = cg_gateway::GatewayConfig {
        jwks_refresh_interval: Duration::from_secs(1),
        ..Default::default()
    };
    let stack = TestStack::spawn_with(identity_config, gateway_config).await;
    create_enterprise(&stack, "keys").await;
    let before = signed_in(&stack, "keys", "rotor@keys.example").await;
    let list = |token: String| {
        let stack = &stack;
        async move {
            ClaimsServiceClient::new(stack.gateway().await)
                .list_properties(as_user(
                    "keys",
                    &token,
                    claims::ListPropertiesRequest::default(),
                ))
                .await
        }
    };
    list(before.access_token.clone())
        .await
        .expect("the first key verifies");

    let rotated = identity_client(&stack)
        .await
        .rotate_signing_key(stack.as_operator(identity::RotateSigningKeyRequest {}))
        .await
        .expect("rotate")
        .into_inner()
        .key
        .expect("new key")
        .kid;
    let published: Vec<String> = identity_client(&stack)
        .await
        .get_jwks(identity::GetJwksRequest {})
        .await
        .expect("jwks")
        .into_inner()
        .keys
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert!(
        published.contains(&rotated) && published.contains(&kid_of(&before.access_token)),
        "{published:?}"
    );

    // Within the publication delay the old key still signs.
    let during = login(&stack, "keys", "rotor@keys.example").await;
    assert_eq!(kid_of(&during.access_token), kid_of(&before.access_token));
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let after = login(&stack, "keys", "rotor@keys.example").await;
    assert_eq!(
        kid_of(&after.access_token),
        rotated,
        "the new key signs after the delay"
    );
    list(after.access_token)
        .await
        .expect("the gateway fetches the new key");
    list(before.access_token)
        .await
        .expect("tokens of the retired key still verify");
}

#[tokio::test]
async fn an_organization_that_requires_a_second_factor_gives_no_token_for_a_password_alone() {
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "twofa").await;
    let enrolled = signed_in(&stack, "twofa", "ready@twofa.example").await;
    let secret = enroll(&stack, "twofa", &enrolled.access_token).await;
    confirm(&stack, "twofa", &enrolled.access_token, &secret).await;
    join(
        &stack,
        "twofa",
        "late@twofa.example",
        identity::Role::Member,
    )
    .await;
    identity_client(&stack)
        .await
        .update_security_settings(stack.in_tenant(
            "twofa",
            identity::UpdateSecuritySettingsRequest {
                security_settings: Some(identity::SecuritySettings {
                    require_mfa: true,
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["require_mfa".to_owned()],
                }),
            },
        ))
        .await
        .expect("require MFA");

    match password_login(&stack, "twofa", "ready@twofa.example")
        .await
        .result
    {
        Some(identity::login_response::Result::MfaChallenge(challenge)) => {
            assert!(
                challenge
                    .expire_time
                    .is_some_and(|t| t.seconds <= chrono::Utc::now().timestamp() + 300)
            );
        }
        other => panic!("expected a challenge, got {other:?}"),
    }
    let refused = identity_client(&stack)
        .await
        .login(identity::LoginRequest {
            organization_code: "twofa".to_owned(),
            email: "late@twofa.example".to_owned(),
            password: PASSWORD.to_owned(),
        })
        .await;
    assert_reason(refused, Code::FailedPrecondition, "MFA_ENROLLMENT_REQUIRED");
}

#[tokio::test]
async fn a_member_learns_its_role_and_permissions() {
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "whoami").await;
    let member = signed_in(&stack, "whoami", "mem@whoami.example").await;
    join(
        &stack,
        "whoami",
        "boss@whoami.example",
        identity::Role::Manager,
    )
    .await;
    let manager = login(&stack, "whoami", "boss@whoami.example").await;
    let mut client = identity_client(&stack).await;

    let me = client
        .get_current_user(as_user(
            "whoami",
            &member.access_token,
            identity::GetCurrentUserRequest {},
        ))
        .await
        .expect("current user")
        .into_inner();
    assert_eq!(me.user.expect("user").email, "mem@whoami.example");
    assert_eq!(
        me.membership.expect("membership").role,
        identity::Role::Member as i32
    );
    assert!(me.permissions.contains(&"properties.write".to_owned()));
    assert!(!me.permissions.contains(&"users.read".to_owned()));

    let check = |permission: &str, user_id: &str| identity::CheckPermissionRequest {
        permission: permission.to_owned(),
        user_id: user_id.to_owned(),
    };
    let own = client
        .check_permission(as_user(
            "whoami",
            &member.access_token,
            check("audit.read", ""),
        ))
        .await
        .expect("check")
        .into_inner();
    assert!(!own.allowed);
    let about_other = client
        .check_permission(as_user(
            "whoami",
            &member.access_token,
            check("claims.approve", &manager.user_id),
        ))
        .await;
    assert_code(about_other, Code::PermissionDenied);
    let by_manager = client
        .check_permission(as_user(
            "whoami",
            &manager.access_token,
            check("properties.write", &member.user_id),
        ))
        .await
        .expect("a manager may ask")
        .into_inner();
    assert!(by_manager.allowed);
    assert_eq!(by_manager.role, identity::Role::Member as i32);
    let unknown = client
        .check_permission(as_user("whoami", &member.access_token, check("root", "")))
        .await;
    crate::assertions::assert_field_violation(unknown, "permission");

    // People of the organization, by a manager (users.read); not by a member.
    let listed = client
        .list_users(as_user(
            "whoami",
            &manager.access_token,
            identity::ListUsersRequest {
                prefix: "mem".to_owned(),
                ..Default::default()
            },
        ))
        .await
        .expect("list users")
        .into_inner()
        .users;
    assert_eq!(
        listed.iter().map(|u| u.email.as_str()).collect::<Vec<_>>(),
        ["mem@whoami.example"]
    );
    let got = client
        .get_user(as_user(
            "whoami",
            &manager.access_token,
            identity::GetUserRequest {
                id: member.user_id.clone(),
            },
        ))
        .await
        .expect("get user")
        .into_inner();
    assert_eq!(got.user.expect("user").id, member.user_id);
    let stranger = client
        .get_user(as_user(
            "whoami",
            &manager.access_token,
            identity::GetUserRequest {
                id: uuid::Uuid::now_v7().to_string(),
            },
        ))
        .await;
    assert_code(stranger, Code::NotFound);
    let denied = client
        .list_users(as_user(
            "whoami",
            &member.access_token,
            identity::ListUsersRequest::default(),
        ))
        .await;
    assert_reason(denied, Code::PermissionDenied, "PERMISSION_DENIED");
}

#[tokio::test]
async fn invitations_count_against_the_tiers_user_limit() {
    let stack = TestStack::spawn().await;
    crate::fixtures::create_organization(
        &stack,
        crate::fixtures::organization_request("small", "standard", &["FL"], "FL"),
    )
    .await
    .expect("a Standard organization: 50 users");
    for n in 0..50 {
        invite(
            &stack,
            "small",
            &format!("p{n}@small.example"),
            identity::Role::Viewer,
        )
        .await;
    }
    let over = identity_client(&stack)
        .await
        .create_invitation(stack.in_tenant(
            "small",
            identity::CreateInvitationRequest {
                email: "p50@small.example".to_owned(),
                role: identity::Role::Viewer.into(),
            },
        ))
        .await;
    let status = assert_reason(over, Code::ResourceExhausted, "USER_LIMIT_REACHED");
    let quota = status
        .get_error_details()
        .quota_failure()
        .cloned()
        .expect("QuotaFailure");
    assert_eq!(quota.violations[0].subject, "users");
}

#[tokio::test]
async fn a_member_changes_the_password_and_turns_the_second_factor_off() {
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "selfserve").await;
    let session = signed_in(&stack, "selfserve", "me@selfserve.example").await;
    let mut client = identity_client(&stack).await;
    let change = |current: &str, new: &str| identity::ChangePasswordRequest {
        current_password: current.to_owned(),
        new_password: new.to_owned(),
    };
    let wrong = client
        .change_password(as_user(
            "selfserve",
            &session.access_token,
            change("not it", "a brand new passphrase"),
        ))
        .await;
    assert_reason(wrong, Code::Unauthenticated, "INVALID_CREDENTIALS");
    let weak = client
        .change_password(as_user(
            "selfserve",
            &session.access_token,
            change(PASSWORD, "short"),
        ))
        .await;
    crate::assertions::assert_field_violation(weak, "new_password");
    client
        .change_password(as_user(
            "selfserve",
            &session.access_token,
            change(PASSWORD, "a brand new passphrase"),
        ))
        .await
        .expect("change");
    let old = client
        .login(identity::LoginRequest {
            organization_code: "selfserve".to_owned(),
            email: "me@selfserve.example".to_owned(),
            password: PASSWORD.to_owned(),
        })
        .await;
    assert_reason(old, Code::Unauthenticated, "INVALID_CREDENTIALS");
    let refreshed = client
        .refresh_token(identity::RefreshTokenRequest {
            refresh_token: session.refresh_token,
        })
        .await;
    assert_reason(refreshed, Code::Unauthenticated, "REFRESH_TOKEN_INVALID");

    let fresh = match client
        .login(identity::LoginRequest {
            organization_code: "selfserve".to_owned(),
            email: "me@selfserve.example".to_owned(),
            password: "a brand new passphrase".to_owned(),
        })
        .await
        .expect("new password")
        .into_inner()
        .result
    {
        Some(identity::login_response::Result::Tokens(tokens)) => tokens,
        other => panic!("expected tokens, got {other:?}"),
    };
    let secret = enroll(&stack, "selfserve", &fresh.access_token).await;
    confirm(&stack, "selfserve", &fresh.access_token, &secret).await;
    client
        .disable_totp(as_user(
            "selfserve",
            &fresh.access_token,
            identity::DisableTotpRequest {
                password: "a brand new passphrase".to_owned(),
                code: crate::identity_fixtures::next_code(&secret),
            },
        ))
        .await
        .expect("disable");
    let mine = client
        .list_my_organizations(as_user(
            "selfserve",
            &fresh.access_token,
            identity::ListMyOrganizationsRequest {},
        ))
        .await
        .expect("my organizations")
        .into_inner()
        .memberships;
    assert_eq!(mine.len(), 1);
    match client
        .login(identity::LoginRequest {
            organization_code: "selfserve".to_owned(),
            email: "me@selfserve.example".to_owned(),
            password: "a brand new passphrase".to_owned(),
        })
        .await
        .expect("login")
        .into_inner()
        .result
    {
        Some(identity::login_response::Result::Tokens(_)) => {}
        other => panic!("without a second factor the password gives tokens: {other:?}"),
    }
}

#[tokio::test]
async fn a_role_change_or_removal_holds_from_the_next_call_with_an_unexpired_token() {
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "demoted").await;
    let admin = join(
        &stack,
        "demoted",
        "admin@demoted.example",
        identity::Role::Admin,
    )
    .await;
    let session = login(&stack, "demoted", "admin@demoted.example").await;
    let invite_someone = |n: u32| {
        as_user(
            "demoted",
            &session.access_token,
            identity::CreateInvitationRequest {
                email: format!("new{n}@demoted.example"),
                role: identity::Role::Member.into(),
            },
        )
    };
    let mut client = identity_client(&stack).await;
    client
        .create_invitation(invite_someone(1))
        .await
        .expect("an admin invites");

    client
        .update_membership(stack.in_tenant(
            "demoted",
            identity::UpdateMembershipRequest {
                membership: Some(identity::Membership {
                    user_id: admin.clone(),
                    role: identity::Role::Viewer.into(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["role".to_owned()],
                }),
            },
        ))
        .await
        .expect("demote to viewer");
    // The token still says admin; the membership now says viewer.
    let refused = client.create_invitation(invite_someone(2)).await;
    let status = assert_reason(refused, Code::PermissionDenied, "PERMISSION_DENIED");
    let info = status
        .get_error_details()
        .error_info()
        .cloned()
        .expect("ErrorInfo");
    assert_eq!(
        info.metadata.get("role").map(String::as_str),
        Some("viewer")
    );

    client
        .remove_membership(stack.in_tenant(
            "demoted",
            identity::RemoveMembershipRequest { user_id: admin },
        ))
        .await
        .expect("remove");
    let removed = ClaimsServiceClient::new(stack.gateway().await)
        .list_properties(as_user(
            "demoted",
            &session.access_token,
            claims::ListPropertiesRequest::default(),
        ))
        .await;
    assert_reason(removed, Code::PermissionDenied, "MEMBERSHIP_INACTIVE");
}
