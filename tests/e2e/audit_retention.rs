//! Signed checkpoints and retention: checkpoints every N entries (and for
//! stale chains), published key, purges only behind a checkpoint, legal hold.

use std::sync::Arc;
use std::time::Duration;

use cg_audit::checkpoint::CheckpointVerifier;
use cg_audit::store::checkpointer::{self, CheckpointPolicy};
use cg_audit::store::retention::{self, PurgeError};
use cg_proto::audit::v1 as audit;
use cg_proto::audit::v1::audit_service_client::AuditServiceClient;
use cg_testkit::TestStack;
use sqlx::{Connection, PgConnection};

use crate::fixtures::{create_enterprise, create_property, property};

async fn checkpoint_sequences(stack: &TestStack, schema: &str) -> Vec<i64> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT sequence FROM {schema}.audit_checkpoints ORDER BY sequence"
    )))
    .fetch_all(&stack.control)
    .await
    .expect("read checkpoints")
}

async fn add_properties(stack: &TestStack, code: &str, count: usize) {
    for n in 0..count {
        create_property(stack, code, property(&format!("p{n}"), "FL"))
            .await
            .expect("create");
    }
}

#[tokio::test]
async fn checkpoints_are_signed_every_n_entries_and_for_stale_chains() {
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "steady").await;
    add_properties(&stack, "steady", 24).await; // 25 entries with the creation

    let policy = CheckpointPolicy {
        every_entries: 10,
        max_age: Duration::from_secs(3600),
        tick: Duration::from_millis(50),
    };
    let written = checkpointer::checkpoint_schema(
        &stack.control,
        "org_steady",
        &stack.audit_signer,
        &policy,
        false,
    )
    .await
    .expect("checkpoint");
    assert_eq!(
        written.iter().map(|c| c.sequence).collect::<Vec<_>>(),
        [10, 20]
    );
    // Nothing more is due until 30 entries, unless the oldest uncovered one is stale.
    assert!(
        checkpointer::checkpoint_schema(
            &stack.control,
            "org_steady",
            &stack.audit_signer,
            &policy,
            false
        )
        .await
        .expect("checkpoint")
        .is_empty()
    );
    let stale = CheckpointPolicy {
        max_age: Duration::ZERO,
        ..policy
    };
    let written = checkpointer::checkpoint_schema(
        &stack.control,
        "org_steady",
        &stack.audit_signer,
        &stale,
        false,
    )
    .await
    .expect("checkpoint");
    assert_eq!(written.iter().map(|c| c.sequence).collect::<Vec<_>>(), [25]);

    // The running checkpointer finds grown chains by itself.
    let running = tokio::spawn(checkpointer::run(
        stack.control.clone(),
        stack.audit_signer.clone(),
        policy,
    ));
    add_properties(&stack, "steady", 10).await; // to 35
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !checkpoint_sequences(&stack, "org_steady")
        .await
        .contains(&30)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no checkpoint at 30 from the running checkpointer"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.abort();

    // Every checkpoint verifies under the published key.
    let key = AuditServiceClient::new(stack.gateway().await)
        .get_audit_public_key(audit::GetAuditPublicKeyRequest::default())
        .await
        .expect("public key")
        .into_inner();
    assert_eq!(key.algorithm, "Ed25519");
    assert_eq!(key.key_id, stack.audit_signer.key_id());
    let published = CheckpointVerifier::from_hex(&hex_of(&key.public_key)).expect("key");
    let checkpoints = AuditServiceClient::new(stack.gateway().await)
        .list_audit_checkpoints(
            stack.in_tenant("steady", audit::ListAuditCheckpointsRequest::default()),
        )
        .await
        .expect("list checkpoints")
        .into_inner()
        .audit_checkpoints;
    assert_eq!(
        checkpoints.iter().map(|c| c.sequence).collect::<Vec<_>>(),
        [30, 25, 20, 10]
    );
    let verified = AuditServiceClient::new(stack.gateway().await)
        .verify_audit_chain(stack.in_tenant("steady", audit::VerifyAuditChainRequest::default()))
        .await
        .expect("verify")
        .into_inner();
    assert!(verified.ok, "{verified:?}");
    assert_eq!(
        verified.last_verified_checkpoint.map(|c| c.sequence),
        Some(30)
    );
    assert_eq!(published.key_id(), key.key_id);
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn a_purge_keeps_the_chain_verifiable_and_a_legal_hold_stops_it() {
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "aging").await;
    add_properties(&stack, "aging", 11).await; // 12 entries
    let policy = CheckpointPolicy {
        every_entries: 5,
        ..CheckpointPolicy::default()
    };
    checkpointer::checkpoint_schema(
        &stack.control,
        "org_aging",
        &stack.audit_signer,
        &policy,
        false,
    )
    .await
    .expect("checkpoints at 5 and 10");

    // The application role cannot purge, and the retention role cannot
    // remove what no checkpoint covers.
    let mut conn = PgConnection::connect(&stack.database.url)
        .await
        .expect("connect");
    let org_id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM tenancy.organizations WHERE code = 'aging'")
            .fetch_one(&stack.control)
            .await
            .expect("id");
    let uncovered = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "BEGIN; SET LOCAL ROLE cg_audit_retention; SELECT set_config('app.org_id', '{org_id}', true); \
         DELETE FROM org_aging.audit_log WHERE sequence = 12; COMMIT;"
    )))
    .execute(&mut conn)
    .await;
    let error = uncovered.expect_err("an uncovered entry was deleted");
    assert!(
        error
            .to_string()
            .contains("not covered by a signed checkpoint"),
        "{error}"
    );
    drop(conn);
    for role in ["cg_app", "cg_audit_retention"] {
        let mut conn = PgConnection::connect(&stack.database.url)
            .await
            .expect("connect");
        let truncate = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "SET ROLE {role}; TRUNCATE org_aging.audit_log"
        )))
        .execute(&mut conn)
        .await;
        assert!(truncate.is_err(), "{role} truncated the audit log");
    }

    // Under legal hold, nothing is purged, even long after retention.
    let eight_years_on = chrono::Utc::now() + chrono::Duration::days(8 * 365);
    retention::set_legal_hold(&stack.control, "aging", true)
        .await
        .expect("hold");
    let held = retention::purge_organization(&stack.control, "aging", eight_years_on).await;
    assert!(matches!(held, Err(PurgeError::LegalHold(_))), "{held:?}");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM org_aging.audit_log")
        .fetch_one(&stack.control)
        .await
        .expect("count");
    assert_eq!(count, 12);

    // Lifted: entries older than retention (FL, GA and SC: the longest is
    // FL's 2555 days) go, up to the last checkpoint.
    retention::set_legal_hold(&stack.control, "aging", false)
        .await
        .expect("lift");
    let too_soon = retention::purge_organization(&stack.control, "aging", chrono::Utc::now())
        .await
        .expect("purge");
    assert_eq!((too_soon.deleted, too_soon.retention_days), (0, 2555));
    let purged = retention::purge_organization(&stack.control, "aging", eight_years_on)
        .await
        .expect("purge");
    assert_eq!((purged.deleted, purged.through_sequence), (10, Some(10)));

    let verified = AuditServiceClient::new(stack.gateway().await)
        .verify_audit_chain(stack.in_tenant("aging", audit::VerifyAuditChainRequest::default()))
        .await
        .expect("verify")
        .into_inner();
    assert!(
        verified.ok,
        "the chain verifies from its checkpoint after a purge: {verified:?}"
    );
    assert_eq!(verified.entries_checked, 2);
    let _ = Arc::clone(&stack.audit_signer);
}
