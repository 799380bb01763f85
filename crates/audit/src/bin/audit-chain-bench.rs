//! Verification speed: builds one organization's chain in memory (1,000,000
//! entries unless a count is given, a signed checkpoint every 1,000) and
//! times `verify_chain` over it. Run in release mode:
//! `cargo run -p cg-audit --release --bin audit-chain-bench [COUNT]`.

use std::process::ExitCode;
use std::time::Instant;

use cg_audit::checkpoint::CheckpointSigner;
use cg_audit::entry::{Actor, ActorKind, AuditEntry, GENESIS_HASH, NewEntry, Outcome, chain};
use cg_audit::verify::{ChainExpectation, ChainHead, verify_chain};
use chrono::{Duration, TimeZone, Utc};
use uuid::Uuid;

const CHECKPOINT_EVERY: i64 = 1_000;

fn main() -> ExitCode {
    let count = match std::env::args().nth(1).map(|raw| raw.parse::<i64>()) {
        None => 1_000_000,
        Some(Ok(count)) if count > 0 => count,
        Some(_) => {
            eprintln!("usage: audit-chain-bench [COUNT > 0]");
            return ExitCode::FAILURE;
        }
    };
    let organization = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
    let signer = CheckpointSigner::generate();
    let start_time = Utc.timestamp_opt(1_700_000_000, 0).single();
    let Some(start_time) = start_time else {
        eprintln!("bad start time");
        return ExitCode::FAILURE;
    };

    let build = Instant::now();
    let mut entries: Vec<AuditEntry> = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut checkpoints = Vec::new();
    let mut previous = GENESIS_HASH;
    for sequence in 1..=count {
        // Realistic sizes: a UUID-like resource id, a W3C trace id, a small summary.
        let new = NewEntry {
            organization_id: Some(organization),
            time: start_time + Duration::milliseconds(sequence * 3),
            actor: Actor {
                kind: ActorKind::User,
                id: format!("0190a1b2-c3d4-7e5f-8a9b-{:012x}", sequence % 50),
            },
            action: "claims.property.update".to_owned(),
            resource_type: "property".to_owned(),
            resource_id: format!("0190a1b2-c3d4-7e5f-8a9b-{sequence:012x}"),
            outcome: Outcome::Success,
            request_id: format!("req-{sequence:016x}"),
            trace_id: format!("{:032x}", u128::from(sequence.unsigned_abs()) * 0x9e37_79b9),
            source_ip: "203.0.113.24".to_owned(),
            user_agent: "grpc-rust/0.14 claimguardian-web/1.0".to_owned(),
            summary: serde_json::json!({
                "fields": ["address", "year_built"],
                "address": {"state": "FL", "zip": "33101"},
                "year_built": 1990 + sequence % 30,
            }),
        };
        let entry = chain(new, sequence, previous);
        previous = entry.hash;
        if sequence % CHECKPOINT_EVERY == 0 {
            checkpoints.push(signer.checkpoint(&entry, entry.time));
        }
        entries.push(entry);
    }
    let built = build.elapsed();
    println!(
        "built {count} entries and {} checkpoints in {:.2} s",
        checkpoints.len(),
        built.as_secs_f64()
    );

    let head = ChainHead {
        sequence: count,
        hash: previous,
    };
    let expectation = ChainExpectation::genesis(Some(organization)).with_head(head);
    let verify = Instant::now();
    let report = verify_chain(&entries, &checkpoints, &signer.verifier(), expectation);
    let took = verify.elapsed().as_secs_f64();
    if !report.ok {
        eprintln!("verification failed: {report:?}");
        return ExitCode::FAILURE;
    }
    println!(
        "verified {} entries and {} checkpoints in {took:.2} s: {:.0} entries/s",
        report.entries_checked,
        checkpoints.len(),
        report.entries_checked as f64 / took
    );
    ExitCode::SUCCESS
}
