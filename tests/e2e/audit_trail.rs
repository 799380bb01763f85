//! The audit trail through the gateway: every mutating method records one
//! entry, refusals are recorded, chains stay linear under concurrency,
//! tenants read only their own chain, and the database keeps it append-only.

use std::collections::BTreeMap;

use cg_proto::audit::v1 as audit;
use cg_proto::audit::v1::audit_service_client::AuditServiceClient;
use cg_proto::claims::v1 as claims;
use cg_proto::policy::{MethodPolicy, methods};
use cg_proto::tenancy::v1 as tenancy;
use cg_testkit::TestStack;
use prost::Message as _;
use prost_types::FieldMask;
use sqlx::{Connection, PgConnection};
use tonic::{Code, Request};

use crate::assertions::assert_code;
use crate::fixtures::{
    claims_client, create_enterprise, create_organization, create_property, organization_request,
    property, tenancy_client,
};
use crate::identity_fixtures::Sso;
use crate::identity_fixtures::{
    as_user, confirm, create_key, enroll, invite, join, login, next_code, password_login, signed_in,
};
use crate::raw_call;
use cg_proto::identity::v1 as identity;
use cg_proto::identity::v1::identity_service_client::IdentityServiceClient;

/// One audit row, as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
struct Row {
    sequence: i64,
    organization_id: Option<uuid::Uuid>,
    actor_kind: String,
    actor_id: String,
    action: String,
    outcome: String,
    resource_id: String,
}

async fn rows(stack: &TestStack, schema: &str) -> Vec<Row> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT sequence, organization_id, actor_kind, actor_id, action, outcome, resource_id \
         FROM {schema}.audit_log ORDER BY sequence"
    )))
    .fetch_all(&stack.control)
    .await
    .expect("read audit rows")
}

/// Entries added to each chain by `act`.
async fn new_rows<F: std::future::Future<Output = ()>>(
    stack: &TestStack,
    schemas: &[&str],
    act: F,
) -> BTreeMap<String, Vec<Row>> {
    let mut before = BTreeMap::new();
    for schema in schemas {
        before.insert((*schema).to_owned(), rows(stack, schema).await.len());
    }
    act.await;
    let mut added = BTreeMap::new();
    for schema in schemas {
        let all = rows(stack, schema).await;
        added.insert((*schema).to_owned(), all[before[*schema]..].to_vec());
    }
    added
}

/// A successful call of each implemented mutating method, against
/// organization `subject` (already created), except CreateOrganization.
async fn succeed(
    stack: &TestStack,
    path: &str,
    subject: &str,
    property_id: &str,
    sso: &Sso,
) -> Option<String> {
    let method = path.rsplit('/').next().unwrap_or_default();
    let mut tenancy = tenancy_client(stack).await;
    let mut claims = claims_client(stack).await;
    let resource = match method {
        "CreateOrganization" => {
            let org = create_organization(
                stack,
                organization_request("fresh", "standard", &["FL"], "FL"),
            )
            .await
            .expect("create");
            return Some(org.id);
        }
        "UpdateOrganization" => {
            tenancy
                .update_organization(stack.in_tenant(
                    subject,
                    tenancy::UpdateOrganizationRequest {
                        organization: Some(tenancy::Organization {
                            display_name: "Renamed".to_owned(),
                            ..Default::default()
                        }),
                        update_mask: Some(FieldMask {
                            paths: vec!["display_name".to_owned()],
                        }),
                    },
                ))
                .await
                .expect("update")
                .into_inner()
                .organization
                .expect("org")
                .id
        }
        "SuspendOrganization" => {
            let id = tenancy
                .suspend_organization(stack.as_operator(tenancy::SuspendOrganizationRequest {
                    code: subject.to_owned(),
                    reason: "audit".to_owned(),
                }))
                .await
                .expect("suspend")
                .into_inner()
                .organization
                .expect("org")
                .id;
            tenancy
                .reactivate_organization(stack.as_operator(
                    tenancy::ReactivateOrganizationRequest {
                        code: subject.to_owned(),
                    },
                ))
                .await
                .expect("reactivate after the probe");
            id
        }
        "ReactivateOrganization" => {
            tenancy
                .reactivate_organization(stack.as_operator(
                    tenancy::ReactivateOrganizationRequest {
                        code: subject.to_owned(),
                    },
                ))
                .await
                .expect("reactivate")
                .into_inner()
                .organization
                .expect("org")
                .id
        }
        "ChangeOrganizationTier" => {
            tenancy
                .change_organization_tier(stack.as_operator(
                    tenancy::ChangeOrganizationTierRequest {
                        code: subject.to_owned(),
                        tier: "custom".to_owned(),
                    },
                ))
                .await
                .expect("change tier")
                .into_inner()
                .organization
                .expect("org")
                .id
        }
        "SetFeatureOverride" => {
            // A grant leaves every feature the later probes rely on in place.
            tenancy
                .set_feature_override(stack.as_operator(tenancy::SetFeatureOverrideRequest {
                    code: subject.to_owned(),
                    feature: "custom_development".to_owned(),
                    r#override: tenancy::FeatureOverride::Enabled.into(),
                }))
                .await
                .expect("set a feature override")
                .into_inner()
                .organization
                .expect("org")
                .id
        }
        "CreateProperty" => {
            create_property(stack, subject, property("Audited", "FL"))
                .await
                .expect("create")
                .id
        }
        "UpdateProperty" => {
            claims
                .update_property(stack.in_tenant(
                    subject,
                    claims::UpdatePropertyRequest {
                        property: Some(claims::Property {
                            id: property_id.to_owned(),
                            display_name: "Audited again".to_owned(),
                            ..Default::default()
                        }),
                        update_mask: Some(FieldMask {
                            paths: vec!["display_name".to_owned()],
                        }),
                    },
                ))
                .await
                .expect("update property")
                .into_inner()
                .property
                .expect("property")
                .id
        }
        "CreateInvitation" => {
            invite(
                stack,
                subject,
                "invited@subject.example",
                identity::Role::Member,
            )
            .await
            .0
        }
        "AcceptInvitation" => {
            join(
                stack,
                subject,
                "accepted@subject.example",
                identity::Role::Member,
            )
            .await
        }
        "Login" => {
            join(
                stack,
                subject,
                "login@subject.example",
                identity::Role::Member,
            )
            .await;
            login(stack, subject, "login@subject.example").await.user_id
        }
        "UpdateMembership" => {
            let user = join(
                stack,
                subject,
                "promoted@subject.example",
                identity::Role::Member,
            )
            .await;
            IdentityServiceClient::new(stack.gateway().await)
                .update_membership(stack.in_tenant(
                    subject,
                    identity::UpdateMembershipRequest {
                        membership: Some(identity::Membership {
                            user_id: user.clone(),
                            role: identity::Role::Manager.into(),
                            ..Default::default()
                        }),
                        update_mask: Some(FieldMask {
                            paths: vec!["role".to_owned()],
                        }),
                    },
                ))
                .await
                .expect("update membership");
            user
        }
        "RemoveMembership" => {
            let user = join(
                stack,
                subject,
                "removed@subject.example",
                identity::Role::Viewer,
            )
            .await;
            IdentityServiceClient::new(stack.gateway().await)
                .remove_membership(stack.in_tenant(
                    subject,
                    identity::RemoveMembershipRequest {
                        user_id: user.clone(),
                    },
                ))
                .await
                .expect("remove membership");
            user
        }
        "EnrollTotp" => {
            let session = signed_in(stack, subject, "enrol@subject.example").await;
            enroll(stack, subject, &session.access_token).await;
            session.user_id
        }
        "ConfirmTotp" => {
            let session = signed_in(stack, subject, "confirm@subject.example").await;
            let secret = enroll(stack, subject, &session.access_token).await;
            confirm(stack, subject, &session.access_token, &secret).await;
            session.user_id
        }
        "CompleteMfaChallenge" => {
            let session = signed_in(stack, subject, "second@subject.example").await;
            let secret = enroll(stack, subject, &session.access_token).await;
            let recovery = confirm(stack, subject, &session.access_token, &secret).await;
            let challenge = match password_login(stack, subject, "second@subject.example")
                .await
                .result
            {
                Some(identity::login_response::Result::MfaChallenge(challenge)) => challenge,
                other => panic!("expected an MFA challenge, got {other:?}"),
            };
            IdentityServiceClient::new(stack.gateway().await)
                .complete_mfa_challenge(identity::CompleteMfaChallengeRequest {
                    challenge_token: challenge.challenge_token,
                    code: Some(
                        identity::complete_mfa_challenge_request::Code::RecoveryCode(
                            recovery[0].clone(),
                        ),
                    ),
                })
                .await
                .expect("complete the challenge")
                .into_inner()
                .tokens
                .expect("tokens")
                .user_id
        }
        "RefreshToken" => {
            let session = signed_in(stack, subject, "refresh@subject.example").await;
            IdentityServiceClient::new(stack.gateway().await)
                .refresh_token(identity::RefreshTokenRequest {
                    refresh_token: session.refresh_token,
                })
                .await
                .expect("refresh")
                .into_inner()
                .tokens
                .expect("tokens")
                .user_id
        }
        "Logout" => {
            let session = signed_in(stack, subject, "logout@subject.example").await;
            IdentityServiceClient::new(stack.gateway().await)
                .logout(as_user(
                    subject,
                    &session.access_token,
                    identity::LogoutRequest::default(),
                ))
                .await
                .expect("logout");
            session.user_id
        }
        "UpdateSecuritySettings" => {
            IdentityServiceClient::new(stack.gateway().await)
                .update_security_settings(stack.in_tenant(
                    subject,
                    identity::UpdateSecuritySettingsRequest {
                        security_settings: Some(identity::SecuritySettings {
                            ip_allowlist: vec!["127.0.0.0/8".to_owned(), "::1/128".to_owned()],
                            ..Default::default()
                        }),
                        update_mask: Some(FieldMask {
                            paths: vec!["ip_allowlist".to_owned()],
                        }),
                    },
                ))
                .await
                .expect("update security settings");
            subject.to_owned()
        }
        "CreateApiKey" => create_key(stack, subject, "probe").await.0,
        "RevokeApiKey" => {
            let (id, _) = create_key(stack, subject, "revoked").await;
            IdentityServiceClient::new(stack.gateway().await)
                .revoke_api_key(
                    stack.in_tenant(subject, identity::RevokeApiKeyRequest { id: id.clone() }),
                )
                .await
                .expect("revoke");
            id
        }
        "ResendInvitation" => {
            let (id, _) = invite(
                stack,
                subject,
                "again@subject.example",
                identity::Role::Viewer,
            )
            .await;
            IdentityServiceClient::new(stack.gateway().await)
                .resend_invitation(stack.in_tenant(
                    subject,
                    identity::ResendInvitationRequest { id: id.clone() },
                ))
                .await
                .expect("resend");
            id
        }
        "RevokeInvitation" => {
            let (id, _) = invite(
                stack,
                subject,
                "never@subject.example",
                identity::Role::Viewer,
            )
            .await;
            IdentityServiceClient::new(stack.gateway().await)
                .revoke_invitation(stack.in_tenant(
                    subject,
                    identity::RevokeInvitationRequest { id: id.clone() },
                ))
                .await
                .expect("revoke");
            id
        }
        "UpdateUser" => {
            let session = signed_in(stack, subject, "renamed@subject.example").await;
            IdentityServiceClient::new(stack.gateway().await)
                .update_user(as_user(
                    subject,
                    &session.access_token,
                    identity::UpdateUserRequest {
                        user: Some(identity::User {
                            display_name: "Renamed".to_owned(),
                            ..Default::default()
                        }),
                        update_mask: Some(FieldMask {
                            paths: vec!["display_name".to_owned()],
                        }),
                    },
                ))
                .await
                .expect("update user");
            session.user_id
        }
        "ChangePassword" => {
            let session = signed_in(stack, subject, "rekey@subject.example").await;
            IdentityServiceClient::new(stack.gateway().await)
                .change_password(as_user(
                    subject,
                    &session.access_token,
                    identity::ChangePasswordRequest {
                        current_password: crate::identity_fixtures::PASSWORD.to_owned(),
                        new_password: "an entirely new passphrase".to_owned(),
                    },
                ))
                .await
                .expect("change password");
            session.user_id
        }
        "DisableTotp" | "RegenerateRecoveryCodes" => {
            let email = format!("{}@subject.example", method.to_lowercase());
            let session = signed_in(stack, subject, &email).await;
            let secret = enroll(stack, subject, &session.access_token).await;
            confirm(stack, subject, &session.access_token, &secret).await;
            let mut client = IdentityServiceClient::new(stack.gateway().await);
            if method == "DisableTotp" {
                client
                    .disable_totp(as_user(
                        subject,
                        &session.access_token,
                        identity::DisableTotpRequest {
                            password: crate::identity_fixtures::PASSWORD.to_owned(),
                            code: next_code(&secret),
                        },
                    ))
                    .await
                    .expect("disable TOTP");
            } else {
                let codes = client
                    .regenerate_recovery_codes(as_user(
                        subject,
                        &session.access_token,
                        identity::RegenerateRecoveryCodesRequest {
                            totp_code: next_code(&secret),
                        },
                    ))
                    .await
                    .expect("regenerate")
                    .into_inner()
                    .recovery_codes;
                assert_eq!(codes.len(), 10);
            }
            session.user_id
        }
        "UpdateSsoConfiguration" => {
            sso.configure(stack, subject).await;
            subject.to_owned()
        }
        "StartSso" => {
            IdentityServiceClient::new(stack.gateway().await)
                .start_sso(identity::StartSsoRequest {
                    organization_code: subject.to_owned(),
                    login_hint: String::new(),
                })
                .await
                .expect("start SSO")
                .into_inner()
                .state
        }
        "CompleteSso" => {
            sso.sign_in(stack, subject, "carol")
                .await
                .tokens
                .expect("tokens")
                .user_id
        }
        "RotateSigningKey" => {
            IdentityServiceClient::new(stack.gateway().await)
                .rotate_signing_key(stack.as_operator(identity::RotateSigningKeyRequest {}))
                .await
                .expect("rotate")
                .into_inner()
                .key
                .expect("key")
                .kid
        }
        _ => return None,
    };
    Some(resource)
}

/// Actions a successful probe of `method` records, in order (probes that
/// need a member first invite and admit one).
fn expected_actions(method: &str, own: &str) -> Vec<String> {
    let joined = ["identity.invitation.create", "identity.invitation.accept"];
    let signed_in = [
        "identity.invitation.create",
        "identity.invitation.accept",
        "identity.session.login",
    ];
    let before: &[&str] = match method {
        "AcceptInvitation" => &joined[..1],
        "Login" | "UpdateMembership" | "RemoveMembership" => &joined,
        "EnrollTotp" | "RefreshToken" | "Logout" => &signed_in,
        "ChangePassword" | "UpdateUser" => &signed_in,
        "DisableTotp" | "RegenerateRecoveryCodes" => &[
            "identity.invitation.create",
            "identity.invitation.accept",
            "identity.session.login",
            "identity.totp.enroll",
            "identity.totp.confirm",
        ],
        "ConfirmTotp" => &[
            "identity.invitation.create",
            "identity.invitation.accept",
            "identity.session.login",
            "identity.totp.enroll",
        ],
        "CompleteMfaChallenge" => &[
            "identity.invitation.create",
            "identity.invitation.accept",
            "identity.session.login",
            "identity.totp.enroll",
            "identity.totp.confirm",
        ],
        "RevokeApiKey" => &["identity.api_key.create"],
        "ResendInvitation" | "RevokeInvitation" => &["identity.invitation.create"],
        _ => &[],
    };
    let mut actions: Vec<String> = before.iter().map(|a| (*a).to_owned()).collect();
    actions.push(own.to_owned());
    if method == "SuspendOrganization" {
        actions.push("tenancy.organization.reactivate".to_owned());
    }
    actions
}

/// What a probe of `method` also records in the platform chain.
fn platform_side_effects(method: &str) -> Vec<&'static str> {
    match method {
        "CompleteSso" => vec!["identity.sso.start"],
        _ => vec![],
    }
}

/// The chain a successful probe of `method` writes to.
fn chain_of(method: &str) -> &'static str {
    match method {
        "CreateOrganization" => "org_fresh",
        "RotateSigningKey" | "StartSso" => "audit",
        _ => "org_subject",
    }
}

#[tokio::test]
async fn every_mutating_method_writes_exactly_one_entry_with_action_actor_and_organization() {
    let stack = TestStack::spawn().await;
    let subject = create_organization(
        &stack,
        organization_request("subject", "enterprise", &["FL"], "FL"),
    )
    .await
    .expect("create subject");
    let property = create_property(&stack, "subject", property("Base", "FL"))
        .await
        .expect("property");
    let operator = stack.operator_key_id.to_string();
    let sso = Sso::start("subject");
    sso.configure(&stack, "subject").await;

    let all = methods(cg_proto::FILE_DESCRIPTOR_SET).expect("descriptor set");
    let mutating: Vec<MethodPolicy> = all
        .iter()
        .filter_map(MethodPolicy::from_method)
        .filter(|p| p.audit_action.is_some())
        .collect();
    assert!(
        mutating.len() > 40,
        "only {} mutating methods found",
        mutating.len()
    );

    let mut succeeded = 0;
    for policy in &mutating {
        let action = policy.audit_action.clone().expect("filtered");

        // Refused for want of credentials: one denied entry in the platform chain.
        if policy.scope != cg_proto::access::v1::Scope::Public {
            let added = new_rows(&stack, &["audit", "org_subject"], async {
                let mut request = Request::new(Vec::new());
                request
                    .metadata_mut()
                    .insert("x-tenant", "subject".parse().expect("ascii"));
                let refused = raw_call::unary(stack.gateway().await, &policy.path, request).await;
                assert_code(refused, Code::Unauthenticated);
            })
            .await;
            assert_eq!(
                added["org_subject"],
                vec![],
                "{}: an anonymous caller wrote into the tenant's chain",
                policy.path
            );
            let platform = &added["audit"];
            assert_eq!(
                platform.len(),
                1,
                "{}: refusal entries {platform:?}",
                policy.path
            );
            assert_eq!(
                (
                    platform[0].action.as_str(),
                    platform[0].outcome.as_str(),
                    platform[0].actor_kind.as_str()
                ),
                (action.as_str(), "denied", "anonymous"),
                "{}",
                policy.path
            );
            assert_eq!(platform[0].organization_id, None);
        }

        // Done successfully: exactly the expected entries, in the chain
        // of the organization (a new organization's own chain for
        // CreateOrganization, the platform's for platform-wide changes).
        let method = policy
            .path
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let mut implemented = false;
        let added = new_rows(&stack, &["audit", "org_subject"], async {
            if succeed(&stack, &policy.path, "subject", &property.id, &sso).await.is_some() {
                implemented = true;
            } else {
                let call = raw_call::unary(stack.gateway().await, &policy.path, stack.in_tenant("subject", Vec::new())).await;
                let status = call.expect_err(&format!("{} answered: add a call for it to `succeed`", policy.path));
                assert_eq!(
                    status.code(),
                    Code::Unimplemented,
                    "{} is implemented but this test has no call for it: add one to `succeed` ({status:?})",
                    policy.path
                );
            }
        })
        .await;
        let chain = chain_of(&method);
        let written = if chain == "org_fresh" {
            rows(&stack, chain).await
        } else {
            added[chain].clone()
        };
        for (other, other_rows) in &added {
            if other != chain {
                let side: Vec<&str> = other_rows.iter().map(|r| r.action.as_str()).collect();
                let allowed = if other == "audit" {
                    platform_side_effects(&method)
                } else {
                    vec![]
                };
                assert_eq!(
                    side, allowed,
                    "{}: wrote to {other}: {other_rows:?}",
                    policy.path
                );
            }
        }
        let expected = if implemented {
            expected_actions(&method, &action)
        } else {
            vec![]
        };
        let actions: Vec<&str> = written.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(actions, expected, "{}", policy.path);
        if implemented {
            succeeded += 1;
        }
        for entry in &written {
            assert_eq!(entry.outcome, "success", "{}: {entry:?}", policy.path);
            let by_user = matches!(
                entry.action.as_str(),
                "identity.invitation.accept"
                    | "identity.session.login"
                    | "identity.totp.enroll"
                    | "identity.totp.confirm"
                    | "identity.mfa_challenge.complete"
                    | "identity.token.refresh"
                    | "identity.session.logout"
                    | "identity.sso.complete"
                    | "identity.password.change"
                    | "identity.user.update"
                    | "identity.totp.disable"
                    | "identity.recovery_codes.regenerate"
            );
            if entry.action == "identity.sso.start" {
                // Nobody is signed in yet when a sign-in starts.
                assert_eq!(entry.actor_kind, "anonymous", "{}: {entry:?}", policy.path);
            } else if by_user {
                assert_eq!(entry.actor_kind, "user", "{}: {entry:?}", policy.path);
            } else {
                assert_eq!(
                    (entry.actor_kind.as_str(), entry.actor_id.as_str()),
                    ("operator", operator.as_str()),
                    "{}",
                    policy.path
                );
            }
            let expected_org: Option<uuid::Uuid> = match chain {
                "audit" => None,
                "org_fresh" => Some(
                    entry
                        .resource_id
                        .parse()
                        .expect("the new organization's id"),
                ),
                _ => Some(subject.id.parse().expect("uuid")),
            };
            assert_eq!(entry.organization_id, expected_org, "{}", policy.path);
        }
    }
    assert_eq!(
        succeeded, 31,
        "every implemented mutating method was exercised"
    );
}

async fn audit_client(stack: &TestStack) -> AuditServiceClient<tonic::transport::Channel> {
    AuditServiceClient::new(stack.gateway().await)
}

async fn verify(stack: &TestStack, code: &str) -> audit::VerifyAuditChainResponse {
    audit_client(stack)
        .await
        .verify_audit_chain(stack.in_tenant(code, audit::VerifyAuditChainRequest::default()))
        .await
        .expect("verify")
        .into_inner()
}

#[tokio::test]
async fn eight_concurrent_writers_make_one_contiguous_chain_that_verifies() {
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "busy").await;
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let stack = &stack;
            async move {
                for n in 0..25 {
                    create_property(stack, "busy", property(&format!("w{writer}-{n}"), "GA"))
                        .await
                        .expect("create");
                }
            }
        })
        .collect();
    futures::future::join_all(writers).await;

    let chain = rows(&stack, "org_busy").await;
    assert_eq!(chain.len(), 201, "the creation plus 200 properties");
    let sequences: Vec<i64> = chain.iter().map(|r| r.sequence).collect();
    assert_eq!(
        sequences,
        (1..=201).collect::<Vec<_>>(),
        "contiguous, no gaps"
    );
    let verdict = verify(&stack, "busy").await;
    assert!(verdict.ok, "{verdict:?}");
    assert_eq!(verdict.entries_checked, 201);
}

#[tokio::test]
async fn tampering_in_the_database_is_found_at_the_first_bad_entry() {
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "tampered").await;
    for n in 0..9 {
        create_property(&stack, "tampered", property(&format!("p{n}"), "FL"))
            .await
            .expect("create");
    }
    assert!(verify(&stack, "tampered").await.ok);

    // A superuser with triggers switched off rewrites entry 5.
    let mut conn = PgConnection::connect(&stack.database.url)
        .await
        .expect("connect");
    sqlx::raw_sql(
        "SET session_replication_role = replica; \
         UPDATE org_tampered.audit_log SET actor_id = 'someone-else' WHERE sequence = 5; \
         SET session_replication_role = origin;",
    )
    .execute(&mut conn)
    .await
    .expect("tamper");
    let verdict = verify(&stack, "tampered").await;
    assert!(!verdict.ok);
    assert_eq!(verdict.first_bad_sequence, 5, "{verdict:?}");
    assert!(!verdict.problem.is_empty());
}

#[tokio::test]
async fn the_audit_table_refuses_update_delete_and_truncate() {
    let stack = TestStack::spawn().await;
    let org = create_enterprise(&stack, "sealed").await;
    let written = cg_audit::store::checkpointer::checkpoint_schema(
        &stack.control,
        "org_sealed",
        &stack.audit_signer,
        &cg_audit::store::checkpointer::CheckpointPolicy::default(),
        true,
    )
    .await
    .expect("checkpoint");
    assert_eq!(written.len(), 1);
    for (role, setup) in [
        (
            "cg_app",
            format!(
                "SET ROLE cg_app; SET search_path TO org_sealed; SELECT set_config('app.org_id', '{}', false);",
                org.id
            ),
        ),
        ("owner", "SET search_path TO org_sealed;".to_owned()),
    ] {
        for statement in [
            "UPDATE audit_log SET action = 'x' WHERE sequence = 1",
            "DELETE FROM audit_log WHERE sequence = 1",
            "TRUNCATE audit_log",
            "UPDATE audit_checkpoints SET key_id = 'x'",
            "DELETE FROM audit_head",
        ] {
            let mut conn = PgConnection::connect(&stack.database.url)
                .await
                .expect("connect");
            sqlx::raw_sql(sqlx::AssertSqlSafe(setup.clone()))
                .execute(&mut conn)
                .await
                .expect("setup");
            let result = sqlx::raw_sql(statement).execute(&mut conn).await;
            let error = result.expect_err(&format!("{role} could run {statement}"));
            let code = error
                .as_database_error()
                .and_then(|e| e.code())
                .map(|c| c.into_owned());
            assert_eq!(
                code.as_deref(),
                Some("42501"),
                "{role}: {statement}: {error}"
            );
        }
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM org_sealed.audit_log")
        .fetch_one(&stack.control)
        .await
        .expect("count");
    assert_eq!(count, 1, "the creation entry is still there");
}

#[tokio::test]
async fn a_tenant_reads_and_exports_only_its_own_chain() {
    let stack = TestStack::spawn().await;
    let a = create_enterprise(&stack, "tenant-a").await;
    let b = create_enterprise(&stack, "tenant-b").await;
    let bs_property = create_property(&stack, "tenant-b", property("B only", "FL"))
        .await
        .expect("create");
    create_property(&stack, "tenant-a", property("A only", "FL"))
        .await
        .expect("create");

    let mut client = audit_client(&stack).await;
    let listed = client
        .list_audit_entries(stack.in_tenant("tenant-a", audit::ListAuditEntriesRequest::default()))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.audit_entries.len(), 2);
    assert!(
        listed
            .audit_entries
            .iter()
            .all(|e| e.organization_id == a.id),
        "{listed:?}"
    );
    let by_b_resource = client
        .list_audit_entries(stack.in_tenant(
            "tenant-a",
            audit::ListAuditEntriesRequest {
                resource_id: bs_property.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("list")
        .into_inner();
    assert!(
        by_b_resource.audit_entries.is_empty(),
        "B's entry reached A: {by_b_resource:?}"
    );

    let mut stream = client
        .export_audit_log(stack.in_tenant("tenant-a", audit::ExportAuditLogRequest::default()))
        .await
        .expect("export")
        .into_inner();
    let mut exported = Vec::new();
    while let Some(chunk) = stream.message().await.expect("chunk") {
        exported.extend(chunk.jsonl);
    }
    let text = String::from_utf8(exported).expect("utf-8");
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("\"type\":\"entry\""))
            .count(),
        2
    );
    assert!(
        !text.contains(&b.id) && !text.contains(&bs_property.id),
        "B leaked into A's export"
    );

    // Filters and pages.
    let page = client
        .list_audit_entries(stack.in_tenant(
            "tenant-a",
            audit::ListAuditEntriesRequest {
                page_size: 1,
                action_prefix: "claims.".to_owned(),
                ..Default::default()
            },
        ))
        .await
        .expect("filtered")
        .into_inner();
    assert_eq!(page.audit_entries.len(), 1);
    assert_eq!(page.audit_entries[0].action, "claims.property.create");
    assert!(page.next_page_token.is_empty());
    let summary = page.audit_entries[0].summary.clone().expect("summary");
    assert!(summary.fields.contains_key("display_name"));
}

#[tokio::test]
async fn no_secret_reaches_the_audit_trail() {
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "secretive").await;
    create_property(&stack, "secretive", property("Home", "FL"))
        .await
        .expect("create");
    // A refused call with a made-up key, and one without a tenant.
    let mut request = Request::new(Vec::new());
    let forged = "cgo_AAAAAAAAAAAA_bm90LWEtcmVhbC1rZXktYnV0LWxvbmctZW5vdWdoLXRvLXBhc3M";
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {forged}").parse().expect("ascii"),
    );
    request
        .metadata_mut()
        .insert("x-tenant", "secretive".parse().expect("ascii"));
    let refused = raw_call::unary(
        stack.gateway().await,
        "/claimguardian.claims.v1.ClaimsService/CreateProperty",
        request,
    )
    .await;
    assert_code(refused, Code::Unauthenticated);

    for schema in ["audit", "org_secretive"] {
        let dump: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT coalesce(string_agg(t::text, ' '), '') FROM {schema}.audit_log t"
        )))
        .fetch_one(&stack.control)
        .await
        .expect("dump");
        assert!(!dump.is_empty());
        for secret in [
            stack.operator_key.as_str(),
            forged,
            &stack.operator_key[17..],
        ] {
            assert!(!dump.contains(secret), "{schema} holds a credential");
        }
    }
    let _ = claims::ListPropertiesRequest::default().encode_to_vec();
}

#[tokio::test]
async fn an_entry_carries_the_trace_id_of_the_call_that_wrote_it() {
    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "traced").await;
    let mut request = stack.in_tenant(
        "traced",
        claims::CreatePropertyRequest {
            property: Some(property("Traced House", "FL")),
        },
    );
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-00f067aa0ba902b7-01")
            .parse()
            .expect("ascii"),
    );
    claims_client(&stack)
        .await
        .create_property(request)
        .await
        .expect("created");
    let traced: Vec<String> = sqlx::query_scalar(
        "SELECT trace_id FROM org_traced.audit_log WHERE action = 'claims.property.create'",
    )
    .fetch_all(&stack.control)
    .await
    .expect("audit rows");
    assert_eq!(traced, vec![TRACE_ID.to_owned()]);
}
