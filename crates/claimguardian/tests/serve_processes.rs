//! A deployment as `deploy/` runs it: each service and the gateway as its
//! own `claimguardian serve` process, sharing one database and mesh key; with
//! two gateways, what one changes holds on the next call through the other,
//! and a rate limit kept in one Redis holds across both.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cg_context::MeshKey;
use cg_proto::audit::v1 as audit;
use cg_proto::audit::v1::audit_service_client::AuditServiceClient;
use cg_proto::claims::v1 as claims;
use cg_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use cg_proto::identity::v1 as identity;
use cg_proto::identity::v1::identity_service_client::IdentityServiceClient;
use cg_proto::tenancy::v1 as tenancy;
use cg_proto::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use cg_testkit::with_bearer;
use claimguardian::database::migrate_all;
use claimguardian::platform::ServiceKind;
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_types::StatusExt;

struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn serve(args: &[&str], envs: &[(String, String)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_claimguardian"))
        .arg("serve")
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("CG_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start claimguardian serve")
}

async fn connect_when_ready(addr: &str) -> Channel {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect()
            .await
        {
            Ok(channel) => return channel,
            Err(error) if Instant::now() > deadline => panic!("{addr} never came up: {error}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Every service and `gateways` gateways, each its own process.
struct Deployment {
    gateway_addrs: Vec<String>,
    service_urls: Vec<(ServiceKind, String)>,
    /// Each service's environment, to start it again; its process is
    /// `children` at the same index.
    service_envs: Vec<Vec<(String, String)>>,
    operator_key: String,
    children: Processes,
    _database: cg_testkit::TestDatabase,
    _key_dir: tempfile::TempDir,
}

impl Deployment {
    fn operator<T>(&self, message: T) -> Request<T> {
        with_bearer(Request::new(message), &self.operator_key)
    }

    fn in_tenant<T>(&self, code: &str, message: T) -> Request<T> {
        in_tenant(code, &self.operator_key, message)
    }

    fn service_index(kind: ServiceKind) -> usize {
        ServiceKind::ALL
            .iter()
            .position(|k| *k == kind)
            .expect("every kind is deployed")
    }

    /// Kills the service's process, as a crash or a lost host would.
    fn stop_service(&mut self, kind: ServiceKind) {
        let child = &mut self.children.0[Self::service_index(kind)];
        child.kill().expect("kill the service");
        child.wait().expect("reap the service");
    }

    /// Starts the service again on the same address.
    fn restart_service(&mut self, kind: ServiceKind) {
        let index = Self::service_index(kind);
        self.children.0[index] = serve(&["service", kind.name()], &self.service_envs[index]);
    }
}

/// A request with `credential` acting within organization `code`.
fn in_tenant<T>(code: &str, credential: &str, message: T) -> Request<T> {
    let mut request = with_bearer(Request::new(message), credential);
    request
        .metadata_mut()
        .insert("x-tenant", code.parse().expect("ascii"));
    request
}

async fn deploy(gateways: usize) -> Deployment {
    deploy_with(gateways, &[]).await
}

/// Like [`deploy`], with `extra_gateway_env` added to every gateway's environment.
async fn deploy_with(gateways: usize, extra_gateway_env: &[(&str, String)]) -> Deployment {
    let database = cg_testkit::test_database().await;
    migrate_all(&database.url, &mut ()).await.expect("migrate");
    let pool = cg_db::connect_control(&database.url, 1)
        .await
        .expect("connect");
    let key = cg_identity::operator_keys::create(&pool, "deploy test")
        .await
        .expect("key")
        .secret_key;
    let mesh_key = MeshKey::generate().to_hex();

    let key_dir = tempfile::tempdir().expect("tempdir");
    claimguardian::audit_keys::load_or_create(key_dir.path()).expect("audit key");
    let key_file = key_dir
        .path()
        .join(claimguardian::audit_keys::SIGNING_KEY_FILE);
    let common = vec![
        ("DATABASE_URL".to_owned(), database.url.clone()),
        ("CG_MESH_KEY".to_owned(), mesh_key),
        ("CG_SECRETS_KEY".to_owned(), MeshKey::generate().to_hex()),
        (
            "CG_AUDIT_SIGNING_KEY_FILE".to_owned(),
            key_file.display().to_string(),
        ),
    ];
    let mut children = Processes(Vec::new());
    let mut gateway_env = common.clone();
    let mut service_envs = Vec::new();
    for kind in ServiceKind::ALL {
        let listen = format!("127.0.0.1:{}", free_port());
        let mut env = common.clone();
        env.push(("CG_LISTEN".to_owned(), listen.clone()));
        children.0.push(serve(&["service", kind.name()], &env));
        service_envs.push(env);
        gateway_env.push((
            format!("CG_{}_URL", kind.name().to_uppercase()),
            format!("http://{listen}"),
        ));
    }
    let mut service_urls = Vec::new();
    for kind in ServiceKind::ALL {
        let name = format!("CG_{}_URL", kind.name().to_uppercase());
        if let Some((_, url)) = gateway_env.iter().find(|(k, _)| *k == name) {
            service_urls.push((kind, url.clone()));
        }
    }
    let mut gateway_addrs = Vec::new();
    for _ in 0..gateways {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut env = gateway_env.clone();
        env.push(("CG_LISTEN".to_owned(), addr.clone()));
        env.extend(
            extra_gateway_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone())),
        );
        children.0.push(serve(&["gateway"], &env));
        gateway_addrs.push(addr);
    }
    Deployment {
        gateway_addrs,
        service_urls,
        service_envs,
        operator_key: key,
        children,
        _database: database,
        _key_dir: key_dir,
    }
}

/// Creates a Standard organization, retrying while services still start.
async fn create_organization(
    deployment: &Deployment,
    client: &mut TenancyServiceClient<Channel>,
    code: &str,
) -> tenancy::Organization {
    let request = tenancy::CreateOrganizationRequest {
        code: code.to_owned(),
        display_name: "Deployed Mutual".to_owned(),
        primary_contact_email: "ops@deployed.example".to_owned(),
        tier: "standard".to_owned(),
        allowed_states: vec!["FL".to_owned()],
        primary_state: "FL".to_owned(),
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match client
            .create_organization(deployment.operator(request.clone()))
            .await
        {
            Ok(response) => return response.into_inner().organization.expect("organization"),
            Err(status) if status.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(status) => panic!("create through separate processes: {status:?}"),
        }
    }
}

#[tokio::test]
async fn separate_service_and_gateway_processes_serve_a_tenant() {
    let mut deployment = deploy(1).await;
    let mut client =
        TenancyServiceClient::new(connect_when_ready(&deployment.gateway_addrs[0]).await);
    let created = create_organization(&deployment, &mut client, "deployed").await;
    assert_eq!(created.schema_name, "org_deployed");

    // Every service process is up, the audit service with its signing key.
    for (kind, url) in &deployment.service_urls {
        let addr = url.trim_start_matches("http://");
        let mut health =
            tonic_health::pb::health_client::HealthClient::new(connect_when_ready(addr).await);
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: kind.grpc_name().to_owned(),
            })
            .await
            .unwrap_or_else(|e| panic!("{}: {e:?}", kind.name()))
            .into_inner()
            .status;
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{}",
            kind.name()
        );
    }
    assert_eq!(deployment.service_urls.len(), ServiceKind::ALL.len());
    for child in &mut deployment.children.0 {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "a server process exited early"
        );
    }
}

fn reason_of(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_suspension_a_role_change_and_an_allow_list_made_through_one_gateway_hold_on_the_next_call_through_another()
 {
    let deployment = deploy(2).await;
    let mut first =
        TenancyServiceClient::new(connect_when_ready(&deployment.gateway_addrs[0]).await);
    let mut second =
        TenancyServiceClient::new(connect_when_ready(&deployment.gateway_addrs[1]).await);
    create_organization(&deployment, &mut first, "shared").await;
    let get = || deployment.in_tenant("shared", tenancy::GetOrganizationRequest {});
    second
        .get_organization(get())
        .await
        .expect("the second gateway serves the organization");

    first
        .suspend_organization(deployment.operator(tenancy::SuspendOrganizationRequest {
            code: "shared".to_owned(),
            reason: "unpaid invoices".to_owned(),
        }))
        .await
        .expect("suspend through the first gateway");
    let refused = second
        .get_organization(get())
        .await
        .expect_err("suspended on the next call through the second gateway");
    assert_eq!(
        (refused.code(), reason_of(&refused).as_str()),
        (Code::FailedPrecondition, "ORGANIZATION_SUSPENDED")
    );

    first
        .reactivate_organization(deployment.operator(tenancy::ReactivateOrganizationRequest {
            code: "shared".to_owned(),
        }))
        .await
        .expect("reactivate");
    second
        .get_organization(get())
        .await
        .expect("active again on the next call");

    // A member's token is checked against the membership as it is now.
    let mut identity_first =
        IdentityServiceClient::new(connect_when_ready(&deployment.gateway_addrs[0]).await);
    let mut identity_second =
        IdentityServiceClient::new(connect_when_ready(&deployment.gateway_addrs[1]).await);
    let clerk = sign_in_new_admin(&mut identity_first, &deployment, "shared").await;
    let invite = |email: &str| {
        in_tenant(
            "shared",
            &clerk.access_token,
            identity::CreateInvitationRequest {
                email: email.to_owned(),
                role: identity::Role::Member.into(),
            },
        )
    };
    identity_second
        .create_invitation(invite("one@shared.example"))
        .await
        .expect("an admin invites through the second gateway");
    identity_first
        .update_membership(deployment.in_tenant(
            "shared",
            identity::UpdateMembershipRequest {
                membership: Some(identity::Membership {
                    user_id: clerk.user_id.clone(),
                    role: identity::Role::Member.into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["role".to_owned()],
                }),
            },
        ))
        .await
        .expect("demote through the first gateway");
    let demoted = identity_second
        .create_invitation(invite("two@shared.example"))
        .await
        .expect_err("a member may not invite");
    assert_eq!(
        (demoted.code(), reason_of(&demoted).as_str()),
        (Code::PermissionDenied, "PERMISSION_DENIED")
    );

    identity_first
        .update_security_settings(deployment.in_tenant(
            "shared",
            identity::UpdateSecuritySettingsRequest {
                security_settings: Some(identity::SecuritySettings {
                    ip_allowlist: vec!["203.0.113.0/24".to_owned()],
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["ip_allowlist".to_owned()],
                }),
            },
        ))
        .await
        .expect("an allow-list without loopback");
    let fenced = second
        .get_organization(get())
        .await
        .expect_err("loopback is outside the allow-list");
    assert_eq!(
        (fenced.code(), reason_of(&fenced).as_str()),
        (Code::PermissionDenied, "IP_NOT_ALLOWED")
    );
}

#[tokio::test]
async fn a_feature_override_and_a_tier_change_made_through_one_gateway_hold_on_the_next_call_through_another()
 {
    let deployment = deploy(2).await;
    let mut first =
        TenancyServiceClient::new(connect_when_ready(&deployment.gateway_addrs[0]).await);
    let mut second =
        IdentityServiceClient::new(connect_when_ready(&deployment.gateway_addrs[1]).await);
    create_organization(&deployment, &mut first, "flagged").await;
    // GetSsoConfiguration needs `sso`, which the Standard tier lacks; the
    // refusal also puts the organization in the second gateway's cache.
    let sso = || deployment.in_tenant("flagged", identity::GetSsoConfigurationRequest {});
    let refused = second
        .get_sso_configuration(sso())
        .await
        .expect_err("Standard lacks sso");
    assert_eq!(
        (refused.code(), reason_of(&refused).as_str()),
        (Code::PermissionDenied, "FEATURE_NOT_IN_TIER")
    );

    let set_override = |setting: tenancy::FeatureOverride| {
        deployment.operator(tenancy::SetFeatureOverrideRequest {
            code: "flagged".to_owned(),
            feature: "sso".to_owned(),
            r#override: setting.into(),
        })
    };
    first
        .set_feature_override(set_override(tenancy::FeatureOverride::Enabled))
        .await
        .expect("grant sso through the first gateway");
    second
        .get_sso_configuration(sso())
        .await
        .expect("granted on the next call through the second gateway");

    first
        .set_feature_override(set_override(tenancy::FeatureOverride::Unspecified))
        .await
        .expect("remove the override");
    let refused = second
        .get_sso_configuration(sso())
        .await
        .expect_err("the Standard tier decides again");
    assert_eq!(
        (refused.code(), reason_of(&refused).as_str()),
        (Code::PermissionDenied, "FEATURE_NOT_IN_TIER")
    );

    first
        .change_organization_tier(deployment.operator(tenancy::ChangeOrganizationTierRequest {
            code: "flagged".to_owned(),
            tier: "enterprise".to_owned(),
        }))
        .await
        .expect("upgrade through the first gateway");
    second
        .get_sso_configuration(sso())
        .await
        .expect("the Enterprise tier's sso on the next call through the second gateway");
}

struct SignedIn {
    user_id: String,
    access_token: String,
}

/// Invites, admits and signs in an admin of `code`.
async fn sign_in_new_admin(
    client: &mut IdentityServiceClient<Channel>,
    deployment: &Deployment,
    code: &str,
) -> SignedIn {
    const PASSWORD: &str = "correct horse battery staple";
    let email = format!("admin@{code}.example");
    let invitation = client
        .create_invitation(deployment.in_tenant(
            code,
            identity::CreateInvitationRequest {
                email: email.clone(),
                role: identity::Role::Admin.into(),
            },
        ))
        .await
        .expect("invite")
        .into_inner();
    let user_id = client
        .accept_invitation(identity::AcceptInvitationRequest {
            token: invitation.token,
            password: PASSWORD.to_owned(),
            display_name: "Admin".to_owned(),
        })
        .await
        .expect("accept")
        .into_inner()
        .user
        .expect("user")
        .id;
    let login = client
        .login(identity::LoginRequest {
            organization_code: code.to_owned(),
            email,
            password: PASSWORD.to_owned(),
        })
        .await
        .expect("login")
        .into_inner();
    match login.result {
        Some(identity::login_response::Result::Tokens(tokens)) => SignedIn {
            user_id,
            access_token: tokens.access_token,
        },
        other => panic!("no tokens: {other:?}"),
    }
}

fn list_properties(
    deployment: &Deployment,
    deadline: Duration,
) -> Request<claims::ListPropertiesRequest> {
    let mut request = deployment.in_tenant("resilient", claims::ListPropertiesRequest::default());
    request.set_timeout(deadline);
    request
}

#[tokio::test]
async fn a_stopped_service_is_refused_within_the_deadline_while_the_others_answer_and_is_used_again_after_a_restart()
 {
    const DEADLINE: Duration = Duration::from_secs(3);
    let mut deployment = deploy(1).await;
    let channel = connect_when_ready(&deployment.gateway_addrs[0]).await;
    let mut tenancy_client = TenancyServiceClient::new(channel.clone());
    let mut claims_client = ClaimsServiceClient::new(channel.clone());
    create_organization(&deployment, &mut tenancy_client, "resilient").await;
    claims_client
        .list_properties(list_properties(&deployment, DEADLINE))
        .await
        .expect("claims answers while it runs");

    deployment.stop_service(ServiceKind::Claims);
    for attempt in 0..5 {
        let started = Instant::now();
        let refused = claims_client
            .list_properties(list_properties(&deployment, DEADLINE))
            .await
            .expect_err("claims is down");
        let took = started.elapsed();
        assert_eq!(
            (refused.code(), reason_of(&refused).as_str()),
            (Code::Unavailable, "UPSTREAM_UNAVAILABLE"),
            "attempt {attempt}: {refused:?}"
        );
        assert!(took < DEADLINE, "attempt {attempt} took {took:?}");
        assert!(
            refused.get_error_details().retry_info().is_some(),
            "the caller is told when to retry"
        );
        assert!(
            !refused.message().contains("tcp") && !refused.message().contains("refused"),
            "no transport detail leaks: {}",
            refused.message()
        );
        // The other services keep answering through the same gateway.
        tenancy_client
            .get_organization(deployment.in_tenant("resilient", tenancy::GetOrganizationRequest {}))
            .await
            .expect("tenancy answers while claims is down");
    }

    deployment.restart_service(ServiceKind::Claims);
    let back_by = Instant::now() + Duration::from_secs(20);
    loop {
        match claims_client
            .list_properties(list_properties(&deployment, DEADLINE))
            .await
        {
            Ok(_) => break,
            Err(status) if status.code() == Code::Unavailable && Instant::now() < back_by => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => panic!("claims never came back through the gateway: {status:?}"),
        }
    }
    let gateway = deployment.children.0.last_mut().expect("the gateway");
    assert!(
        gateway.try_wait().expect("wait").is_none(),
        "the gateway kept running throughout"
    );
}

/// The Standard tier's export limit: 30 calls an hour, one back every two
/// minutes, so the count below is exact however slow the machine is.
const STANDARD_EXPORTS_PER_HOUR: usize = 30;

#[tokio::test]
async fn two_gateway_processes_sharing_one_redis_admit_exactly_the_tiers_limit_between_them() {
    let redis = cg_testkit::TestRedis::start();
    let deployment = deploy_with(2, &[("CG_RATE_LIMIT_REDIS", redis.url())]).await;
    let mut organizations =
        TenancyServiceClient::new(connect_when_ready(&deployment.gateway_addrs[0]).await);
    let organization = create_organization(&deployment, &mut organizations, "limited").await;
    let mut gateways = Vec::new();
    for addr in &deployment.gateway_addrs {
        gateways.push(AuditServiceClient::new(connect_when_ready(addr).await));
    }
    let verify = || deployment.in_tenant("limited", audit::VerifyAuditChainRequest::default());

    // Alternating, each gateway admits ten: twenty of the thirty are spent.
    for call in 0..20 {
        let answer = gateways[call % 2]
            .verify_audit_chain(verify())
            .await
            .unwrap_or_else(|status| {
                panic!("call {call} through gateway {}: {status:?}", call % 2)
            });
        assert!(
            answer.into_inner().ok,
            "a fresh organization's chain verifies"
        );
    }

    // Forty more at once through both: exactly the ten left are admitted.
    let mut calls = tokio::task::JoinSet::new();
    for call in 0..40 {
        let mut gateway = gateways[call % 2].clone();
        let request = verify();
        calls.spawn(async move { gateway.verify_audit_chain(request).await });
    }
    let mut admitted = 20;
    let mut refused = Vec::new();
    while let Some(answer) = calls.join_next().await {
        match answer.expect("task") {
            Ok(_) => admitted += 1,
            Err(status) => refused.push(status),
        }
    }
    assert_eq!(admitted, STANDARD_EXPORTS_PER_HOUR);
    assert_eq!(refused.len(), 60 - STANDARD_EXPORTS_PER_HOUR);
    for status in &refused {
        assert_eq!(
            (status.code(), reason_of(status).as_str()),
            (Code::ResourceExhausted, "RATE_LIMITED"),
            "{status:?}"
        );
        let details = status.get_error_details();
        let delay = details
            .retry_info()
            .and_then(|info| info.retry_delay)
            .expect("RetryInfo");
        assert!(
            delay > Duration::ZERO && delay <= Duration::from_secs(120),
            "retry delay {delay:?}"
        );
        let quota = details.quota_failure().expect("QuotaFailure");
        assert_eq!(quota.violations.len(), 1);
        assert_eq!(quota.violations[0].subject, "organization:limited:export");
        assert_eq!(
            quota.violations[0].description,
            "the standard tier allows 30 export calls per hour"
        );
    }

    // Either gateway alone would have admitted thirty: the state is in
    // Redis, under the organization's key for the class.
    let mut raw = redis::Client::open(redis.url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the test Redis");
    let key = format!("cg:rl:{}:export:standard", organization.id);
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .expect("PTTL");
    // Thirty calls two minutes apart: the arrival time is an hour ahead.
    assert!(
        (3_500_000..=3_600_000).contains(&ttl),
        "{key} expires in {ttl} ms"
    );
}
