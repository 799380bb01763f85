//! Every method carries an access policy; the gateway denies any that does not.

use std::net::SocketAddr;

use cg_gateway::{Gateway, GatewayConfig, PolicyTable, Upstreams};
use cg_proto::billing::v1 as billing;
use cg_proto::billing::v1::billing_service_client::BillingServiceClient;
use cg_proto::claims::v1 as claims;
use cg_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use cg_proto::policy::{MethodPolicy, methods};
use cg_runtime::{GrpcServer, ServerLimits};
use cg_testkit::TestStack;
use claimguardian::platform::ServiceKind;
use prost::Message as _;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::assertions::{assert_code, assert_reason};
use crate::fixtures::create_enterprise;

#[test]
fn every_method_in_the_descriptor_set_has_a_complete_access_policy() {
    let all = methods(cg_proto::FILE_DESCRIPTOR_SET).expect("descriptor set decodes");
    let services: std::collections::BTreeSet<&str> =
        all.iter().map(|m| m.service.as_str()).collect();
    assert_eq!(
        services.into_iter().collect::<Vec<_>>(),
        [
            "claimguardian.audit.v1.AuditService",
            "claimguardian.billing.v1.BillingService",
            "claimguardian.claims.v1.ClaimsService",
            "claimguardian.identity.v1.IdentityService",
            "claimguardian.tenancy.v1.TenancyService",
        ]
    );
    let missing: Vec<&str> = all
        .iter()
        .filter(|m| MethodPolicy::from_method(m).is_none())
        .map(|m| m.path.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "methods without a complete access policy: {missing:?}"
    );
    // Every method that changes state names what the audit trail records;
    // reads name nothing.
    for method in &all {
        let policy = MethodPolicy::from_method(method).expect("checked above");
        match (method.is_read_only(), &policy.audit_action) {
            (true, Some(action)) => {
                panic!("{} reads but declares audit action {action}", method.path)
            }
            (false, None) => panic!("{} changes state but declares no audit_action", method.path),
            (false, Some(action)) => {
                let domain = method
                    .service
                    .split('.')
                    .nth(1)
                    .expect("claimguardian.<domain>.v1");
                assert!(
                    action.starts_with(&format!("{domain}.")),
                    "{}: {action}",
                    method.path
                );
                assert_eq!(action.split('.').count(), 3, "{}: {action}", method.path);
            }
            (true, None) => {}
        }
    }
    let table = PolicyTable::from_descriptor_set(cg_proto::FILE_DESCRIPTOR_SET).expect("table");
    assert_eq!(table.len(), all.len());
    for method in &all {
        let policy = table.get(&method.path).expect("policy present");
        if let Some(permission) = &policy.permission {
            permission
                .parse::<cg_context::Permission>()
                .unwrap_or_else(|_| {
                    panic!("{} names unknown permission {permission}", method.path)
                });
        }
    }
}

/// The platform's descriptor set with every access option removed (prost
/// drops extension fields it does not know when re-encoding).
fn descriptor_set_without_policies() -> Vec<u8> {
    prost_types::FileDescriptorSet::decode(cg_proto::FILE_DESCRIPTOR_SET)
        .expect("decodes")
        .encode_to_vec()
}

async fn gateway_with(stack: &TestStack, policies: PolicyTable) -> Channel {
    let mut upstreams = Upstreams::default();
    for kind in ServiceKind::ALL {
        upstreams
            .add(
                kind.grpc_name(),
                &format!("http://{}", stack.service_addr(kind)),
            )
            .expect("upstream");
    }
    let gateway = Gateway::with_policies(
        GatewayConfig::default(),
        policies,
        upstreams,
        stack.control.clone(),
        stack.mesh_key.clone(),
    );
    let server = GrpcServer::bind("gateway", SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let addr = server.local_addr().expect("addr");
    tokio::spawn(server.serve(
        gateway.routes(),
        &[],
        ServerLimits::default(),
        std::future::pending(),
    ));
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

#[tokio::test]
async fn a_method_without_a_policy_is_denied() {
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "guarded").await;
    let stripped =
        PolicyTable::from_descriptor_set(&descriptor_set_without_policies()).expect("table");
    assert!(stripped.is_empty());
    assert!(stripped.is_known_method("/claimguardian.claims.v1.ClaimsService/ListProperties"));

    let mut client = ClaimsServiceClient::new(gateway_with(&stack, stripped).await);
    let denied = client
        .list_properties(stack.in_tenant("guarded", claims::ListPropertiesRequest::default()))
        .await;
    assert_reason(denied, Code::PermissionDenied, "METHOD_NOT_ALLOWED");

    // The same call through the platform's own gateway is served.
    ClaimsServiceClient::new(stack.gateway().await)
        .list_properties(stack.in_tenant("guarded", claims::ListPropertiesRequest::default()))
        .await
        .expect("served where the policy exists");
}

#[tokio::test]
async fn methods_of_later_issues_answer_unimplemented_through_the_gateway() {
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "early").await;
    let claims = ClaimsServiceClient::new(stack.gateway().await)
        .create_policy(stack.in_tenant("early", claims::CreatePolicyRequest::default()))
        .await;
    assert_code(claims, Code::Unimplemented);
    let billing = BillingServiceClient::new(stack.gateway().await)
        .get_price_book(stack.in_tenant("early", billing::GetPriceBookRequest::default()))
        .await;
    assert_code(billing, Code::Unimplemented);
}

#[tokio::test]
async fn every_server_reports_its_health() {
    let stack = TestStack::spawn().await;
    for kind in ServiceKind::ALL {
        let mut health = HealthClient::new(stack.service(kind).await);
        let response = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: kind.grpc_name().to_owned(),
            })
            .await
            .unwrap_or_else(|status| panic!("{}: {status:?}", kind.name()))
            .into_inner();
        assert_eq!(
            response.status,
            ServingStatus::Serving as i32,
            "{}",
            kind.name()
        );
    }
    let mut gateway_health = HealthClient::new(stack.gateway().await);
    let overall = gateway_health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("gateway health")
        .into_inner();
    assert_eq!(overall.status, ServingStatus::Serving as i32);
}
