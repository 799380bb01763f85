//! `claimguardian audit verify`: an export checked offline, with no
//! database, against the published public key.

use std::process::Command;

use cg_audit::store::checkpointer::{self, CheckpointPolicy};
use cg_proto::audit::v1 as audit;
use cg_proto::audit::v1::audit_service_client::AuditServiceClient;
use cg_proto::claims::v1 as claims;
use cg_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use cg_proto::tenancy::v1 as tenancy;
use cg_proto::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use cg_testkit::TestStack;

fn verify(file: &std::path::Path, key: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_claimguardian"))
        .args(["audit", "verify", "--file"])
        .arg(file)
        .arg("--public-key")
        .arg(key)
        .env("CG_LOG", "warn")
        .output()
        .expect("run claimguardian audit verify");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn an_export_verifies_offline_and_a_tampered_one_is_rejected_naming_the_entry() {
    let stack = TestStack::spawn().await;
    let mut tenancy = TenancyServiceClient::new(stack.gateway().await);
    tenancy
        .create_organization(stack.as_operator(tenancy::CreateOrganizationRequest {
            code: "exported".to_owned(),
            display_name: "Exported Mutual".to_owned(),
            primary_contact_email: "ops@exported.example".to_owned(),
            tier: "enterprise".to_owned(),
            allowed_states: vec!["FL".to_owned()],
            primary_state: "FL".to_owned(),
            ..Default::default()
        }))
        .await
        .expect("create");
    let mut claims_client = ClaimsServiceClient::new(stack.gateway().await);
    for n in 0..11 {
        let property = claims::Property {
            display_name: format!("Property {n:02}"),
            address: Some(claims::Address {
                line1: "1 Main St".to_owned(),
                city: "Tampa".to_owned(),
                state: "FL".to_owned(),
                postal_code: "33602".to_owned(),
                ..Default::default()
            }),
            property_type: claims::PropertyType::Condo.into(),
            ..Default::default()
        };
        claims_client
            .create_property(stack.in_tenant(
                "exported",
                claims::CreatePropertyRequest {
                    property: Some(property),
                },
            ))
            .await
            .expect("create property");
    }
    let policy = CheckpointPolicy {
        every_entries: 4,
        ..CheckpointPolicy::default()
    };
    checkpointer::checkpoint_schema(
        &stack.control,
        "org_exported",
        &stack.audit_signer,
        &policy,
        true,
    )
    .await
    .expect("checkpoints");

    let mut stream = AuditServiceClient::new(stack.gateway().await)
        .export_audit_log(stack.in_tenant("exported", audit::ExportAuditLogRequest::default()))
        .await
        .expect("export")
        .into_inner();
    let mut export = Vec::new();
    while let Some(chunk) = stream.message().await.expect("chunk") {
        export.extend(chunk.jsonl);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("export.jsonl");
    let key = dir.path().join("audit-public-key.pem");
    std::fs::write(&file, &export).expect("write export");
    std::fs::write(
        &key,
        stack
            .audit_signer
            .verifier()
            .to_public_key_pem()
            .expect("pem"),
    )
    .expect("write key");

    let (ok, report) = verify(&file, &key);
    assert!(ok, "clean export refused:\n{report}");
    assert!(report.contains("12 entries verified"), "{report}");

    // One byte of entry 7's summary changed: `Property 05` → `Property 95`.
    let text = String::from_utf8(export).expect("utf-8");
    assert!(text.contains("Property 05"));
    std::fs::write(&file, text.replacen("Property 05", "Property 95", 1)).expect("write tampered");
    let (ok, report) = verify(&file, &key);
    assert!(!ok, "tampered export accepted:\n{report}");
    assert!(report.contains("first bad entry 7"), "{report}");

    // A different key does not vouch for the checkpoints.
    std::fs::write(&file, &text).expect("restore");
    let other = dir.path().join("other.pem");
    let stranger = cg_audit::checkpoint::CheckpointSigner::generate();
    std::fs::write(
        &other,
        stranger.verifier().to_public_key_pem().expect("pem"),
    )
    .expect("write key");
    let (ok, report) = verify(&file, &other);
    assert!(!ok, "accepted under a stranger's key:\n{report}");
}
