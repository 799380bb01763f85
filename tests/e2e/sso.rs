//! Single sign-on through the gateway against a real OpenID provider.

use cg_proto::claims::v1 as claims;
use cg_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use cg_proto::identity::v1 as identity;
use cg_proto::identity::v1::identity_service_client::IdentityServiceClient;
use cg_testkit::TestStack;
use prost_types::FieldMask;
use tonic::Code;

use crate::assertions::assert_reason;
use crate::fixtures::create_enterprise;
use crate::identity_fixtures::{PASSWORD, Sso, as_user, join};

#[tokio::test]
async fn sso_signs_a_person_in_just_in_time_and_the_token_works() {
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "ssoco").await;
    let sso = Sso::start("ssoco");
    sso.configure(&stack, "ssoco").await;

    let signed_in = sso.sign_in(&stack, "ssoco", "alice").await;
    assert!(
        signed_in.provisioned,
        "the first sign-in creates the membership"
    );
    let tokens = signed_in.tokens.expect("tokens");
    assert_eq!(tokens.amr, ["sso"]);
    assert_eq!(tokens.role, identity::Role::Member as i32);
    ClaimsServiceClient::new(stack.gateway().await)
        .list_properties(as_user(
            "ssoco",
            &tokens.access_token,
            claims::ListPropertiesRequest::default(),
        ))
        .await
        .expect("the SSO token works");

    let again = sso.sign_in(&stack, "ssoco", "alice").await;
    assert!(
        !again.provisioned,
        "the second sign-in finds the membership"
    );

    // The configuration never gives its secret back.
    let shown = IdentityServiceClient::new(stack.gateway().await)
        .get_sso_configuration(stack.in_tenant("ssoco", identity::GetSsoConfigurationRequest {}))
        .await
        .expect("get")
        .into_inner()
        .sso_configuration
        .expect("configuration");
    assert!(shown.client_secret.is_empty() && shown.client_secret_set);
}

#[tokio::test]
async fn an_organization_that_requires_sso_refuses_password_sign_in() {
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "strict").await;
    join(
        &stack,
        "strict",
        "pat@strict.example",
        identity::Role::Member,
    )
    .await;
    IdentityServiceClient::new(stack.gateway().await)
        .update_security_settings(stack.in_tenant(
            "strict",
            identity::UpdateSecuritySettingsRequest {
                security_settings: Some(identity::SecuritySettings {
                    require_sso: true,
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["require_sso".to_owned()],
                }),
            },
        ))
        .await
        .expect("require SSO");
    let refused = IdentityServiceClient::new(stack.gateway().await)
        .login(identity::LoginRequest {
            organization_code: "strict".to_owned(),
            email: "pat@strict.example".to_owned(),
            password: PASSWORD.to_owned(),
        })
        .await;
    assert_reason(refused, Code::FailedPrecondition, "SSO_REQUIRED");
}
