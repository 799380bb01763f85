//! Per-organization rate limits at the gateway: an organization that spends
//! its tier's allowance for a route class is refused with when to retry and
//! which limit it met; other organizations are unaffected.

use std::time::Instant;

use cg_proto::identity::v1 as identity;
use cg_proto::identity::v1::identity_service_client::IdentityServiceClient;
use cg_testkit::TestStack;
use tonic::Code;
use tonic_types::StatusExt;

use crate::assertions::assert_reason;
use crate::fixtures::{create_organization, organization_request};

/// The Standard tier's administration limit per minute.
const STANDARD_ADMIN_PER_MINUTE: u64 = 60;

fn revoke_unknown_invitation() -> identity::RevokeInvitationRequest {
    identity::RevokeInvitationRequest {
        id: uuid::Uuid::now_v7().to_string(),
    }
}

#[tokio::test]
async fn a_standard_organization_is_held_to_its_admin_limit_and_told_when_to_retry() {
    let stack = TestStack::spawn().await;
    for code in ["busy", "quiet"] {
        create_organization(
            &stack,
            organization_request(code, "standard", &["FL"], "FL"),
        )
        .await
        .expect("a Standard organization");
    }
    let mut client = IdentityServiceClient::new(stack.gateway().await);

    let started = Instant::now();
    let mut admitted = 0_u64;
    let refusal = loop {
        let answer = client
            .revoke_invitation(stack.in_tenant("busy", revoke_unknown_invitation()))
            .await;
        match answer {
            // Admitted calls reach identity, which has no such invitation.
            Err(status) if status.code() == Code::NotFound => admitted += 1,
            Err(status) if status.code() == Code::ResourceExhausted => break status,
            other => panic!("unexpected answer after {admitted} calls: {other:?}"),
        }
        assert!(
            admitted <= 2 * STANDARD_ADMIN_PER_MINUTE,
            "no limit met after {admitted} administration calls"
        );
    };
    // GCRA replenishes one call a second at 60 a minute: the burst is the
    // limit, plus whatever the elapsed time earned back.
    let earned = started.elapsed().as_secs() + 1;
    assert!(
        (STANDARD_ADMIN_PER_MINUTE..=STANDARD_ADMIN_PER_MINUTE + earned).contains(&admitted),
        "admitted {admitted} calls in {:?}",
        started.elapsed()
    );

    let status = assert_reason(
        Err::<(), _>(refusal),
        Code::ResourceExhausted,
        "RATE_LIMITED",
    );
    let details = status.get_error_details();
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(info.metadata["organization"], "busy");
    assert_eq!(info.metadata["route_class"], "admin");
    assert_eq!(info.metadata["limit"], "60");
    let delay = details
        .retry_info()
        .and_then(|r| r.retry_delay)
        .expect("RetryInfo");
    assert!(
        delay.as_millis() >= 1 && delay.as_millis() <= 1_000,
        "{delay:?}"
    );
    let quota = details.quota_failure().expect("QuotaFailure");
    assert_eq!(quota.violations[0].subject, "organization:busy:admin");
    assert_eq!(
        quota.violations[0].description,
        "the standard tier allows 60 admin calls per minute"
    );

    // Another organization's allowance is its own.
    let other = client
        .revoke_invitation(stack.in_tenant("quiet", revoke_unknown_invitation()))
        .await;
    assert_eq!(other.map(|_| ()).map_err(|s| s.code()), Err(Code::NotFound));
    // And the busy organization's reads draw on another class.
    client
        .list_invitations(stack.in_tenant("busy", identity::ListInvitationsRequest::default()))
        .await
        .expect("reads are within their own limit");
}
