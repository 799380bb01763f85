//! The tamper matrix: a chain of 1,000 entries with a signed checkpoint every
//! 100, and every way of altering it the issue names, each caught with the
//! first bad sequence number and the right problem.
#![allow(clippy::unwrap_used)]

use cg_audit::checkpoint::{Checkpoint, CheckpointError, CheckpointSigner};
use cg_audit::entry::{Actor, ActorKind, AuditEntry, GENESIS_HASH, NewEntry, Outcome, chain};
use cg_audit::export::{Export, read_export, verify_export, write_export};
use cg_audit::verify::{ChainExpectation, ChainHead, Problem, VerifyReport, verify_chain};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

const ORG: Uuid = Uuid::from_u128(0x0190_5a5a_0000_7000_8000_0000_0000_00aa);
const LENGTH: i64 = 1_000;
const CHECKPOINT_EVERY: i64 = 100;

fn time(sequence: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_714_564_800, 0).unwrap() + Duration::microseconds(sequence * 1_250_001)
}

/// The deterministic action recorded at `sequence`; `variant` makes a
/// different but equally plausible one.
fn new_entry(sequence: i64, variant: &str) -> NewEntry {
    let kinds = ActorKind::ALL;
    let outcomes = Outcome::ALL;
    let index = usize::try_from(sequence).unwrap();
    NewEntry {
        organization_id: Some(ORG),
        time: time(sequence),
        actor: Actor {
            kind: kinds[index % kinds.len()],
            id: format!("actor-{}", sequence % 7),
        },
        action: "claims.property.update".into(),
        resource_type: "property".into(),
        resource_id: format!("prop-{}", sequence % 13),
        outcome: outcomes[index % outcomes.len()],
        request_id: format!("req-{sequence:06}"),
        trace_id: format!("{sequence:032x}"),
        source_ip: "198.51.100.7".into(),
        user_agent: "tamper-test/1".into(),
        summary: json!({
            "changed": ["address", "year_built"],
            "address": {"street": format!("{sequence} Main St"), "state": "FL"},
            "note": variant,
        }),
    }
}

/// Links `news` onto the chain after `previous` (sequence and hash).
fn extend(chain_so_far: &mut Vec<AuditEntry>, news: impl IntoIterator<Item = NewEntry>) {
    for new in news {
        let (sequence, previous) = chain_so_far
            .last()
            .map_or((1, GENESIS_HASH), |last| (last.sequence + 1, last.hash));
        chain_so_far.push(chain(new, sequence, previous));
    }
}

fn build(variant_at: impl Fn(i64) -> &'static str) -> Vec<AuditEntry> {
    let mut entries = Vec::new();
    extend(
        &mut entries,
        (1..=LENGTH).map(|s| new_entry(s, variant_at(s))),
    );
    entries
}

fn checkpoints(signer: &CheckpointSigner, entries: &[AuditEntry]) -> Vec<Checkpoint> {
    entries
        .iter()
        .filter(|entry| entry.sequence % CHECKPOINT_EVERY == 0)
        .map(|entry| signer.checkpoint(entry, entry.time + Duration::seconds(1)))
        .collect()
}

struct Fixture {
    signer: CheckpointSigner,
    entries: Vec<AuditEntry>,
    checkpoints: Vec<Checkpoint>,
}

impl Fixture {
    fn new() -> Fixture {
        let signer = CheckpointSigner::generate();
        let entries = build(|_| "original");
        let checkpoints = checkpoints(&signer, &entries);
        Fixture {
            signer,
            entries,
            checkpoints,
        }
    }

    fn head(&self) -> ChainHead {
        let last = self.entries.last().unwrap();
        ChainHead {
            sequence: last.sequence,
            hash: last.hash,
        }
    }

    /// Verifies `entries` from genesis against the published checkpoints.
    fn verify(&self, entries: &[AuditEntry]) -> VerifyReport {
        self.verify_with(entries, &self.checkpoints, None)
    }

    fn verify_with(
        &self,
        entries: &[AuditEntry],
        checkpoints: &[Checkpoint],
        head: Option<ChainHead>,
    ) -> VerifyReport {
        let mut expectation = ChainExpectation::genesis(Some(ORG));
        expectation.head = head;
        verify_chain(entries, checkpoints, &self.signer.verifier(), expectation)
    }
}

/// Asserts the report stops at `sequence` with `problem`.
fn assert_caught(report: &VerifyReport, sequence: i64, problem: Problem) {
    assert!(!report.ok, "tampering went unnoticed: {report:?}");
    assert_eq!(report.problem.as_ref(), Some(&problem), "{report:?}");
    assert_eq!(report.first_bad_sequence, Some(sequence), "{report:?}");
}

/// Index of the entry at `sequence` in an untouched chain.
fn at(sequence: i64) -> usize {
    usize::try_from(sequence - 1).unwrap()
}

fn flip_one_byte(text: &mut String, position: usize) {
    let mut bytes = std::mem::take(text).into_bytes();
    assert!(bytes[position].is_ascii_alphanumeric());
    bytes[position] = if bytes[position] == b'a' { b'b' } else { b'a' };
    *text = String::from_utf8(bytes).unwrap();
}

#[test]
fn the_untouched_chain_verifies() {
    let fixture = Fixture::new();
    assert_eq!(fixture.checkpoints.len(), 10);
    let report = fixture.verify_with(&fixture.entries, &fixture.checkpoints, Some(fixture.head()));
    assert_eq!(report.problem, None);
    assert!(report.ok);
    assert_eq!(report.entries_checked, 1_000);
    assert_eq!(report.verified_through, Some(1_000));
    assert_eq!(report.last_verified_checkpoint, Some(1_000));
    assert!(report.start_anchored);
    assert_eq!(report.first_bad_sequence, None);
}

#[test]
fn one_byte_of_the_summary_of_entry_500() {
    let fixture = Fixture::new();
    let mut entries = fixture.entries.clone();
    let serde_json::Value::Object(summary) = &mut entries[at(500)].summary else {
        panic!("the summary is an object");
    };
    let serde_json::Value::String(note) = summary.get_mut("note").unwrap() else {
        panic!("the note is a string");
    };
    flip_one_byte(note, 0);
    let report = fixture.verify(&entries);
    assert_caught(&report, 500, Problem::HashMismatch { sequence: 500 });
    assert_eq!(report.entries_checked, 499);
    assert_eq!(report.last_verified_checkpoint, Some(400));
}

#[test]
fn one_byte_of_the_action_of_entry_500() {
    let fixture = Fixture::new();
    let mut entries = fixture.entries.clone();
    flip_one_byte(&mut entries[at(500)].action, 7);
    assert_caught(
        &fixture.verify(&entries),
        500,
        Problem::HashMismatch { sequence: 500 },
    );
}

#[test]
fn one_byte_of_the_hash_of_entry_500() {
    let fixture = Fixture::new();
    let mut entries = fixture.entries.clone();
    entries[at(500)].hash[17] ^= 0x01;
    assert_caught(
        &fixture.verify(&entries),
        500,
        Problem::HashMismatch { sequence: 500 },
    );
}

type Change = Box<dyn Fn(&mut AuditEntry)>;

#[test]
fn any_field_of_entry_500() {
    let fixture = Fixture::new();
    let changes: Vec<(&str, Change)> = vec![
        ("time", Box::new(|e| e.time += Duration::microseconds(1))),
        (
            "actor kind",
            Box::new(|e| e.actor.kind = ActorKind::Operator),
        ),
        ("actor id", Box::new(|e| e.actor.id.push('x'))),
        ("resource type", Box::new(|e| e.resource_type.truncate(7))),
        ("resource id", Box::new(|e| e.resource_id = "prop-0".into())),
        ("outcome", Box::new(|e| e.outcome = Outcome::Success)),
        ("request id", Box::new(|e| e.request_id.clear())),
        ("trace id", Box::new(|e| e.trace_id.insert(0, '0'))),
        (
            "source ip",
            Box::new(|e| e.source_ip = "198.51.100.8".into()),
        ),
        (
            "user agent",
            Box::new(|e| e.user_agent.make_ascii_uppercase()),
        ),
        ("summary key", Box::new(|e| e.summary["notes"] = json!("x"))),
        ("previous hash", Box::new(|e| e.previous_hash[0] ^= 0x80)),
        (
            "organization",
            Box::new(|e| e.organization_id = Some(Uuid::nil())),
        ),
        ("sequence", Box::new(|e| e.sequence = 499)),
    ];
    for (field, change) in changes {
        let mut entries = fixture.entries.clone();
        change(&mut entries[at(500)]);
        let report = fixture.verify(&entries);
        assert!(!report.ok, "{field}");
        let expected = match field {
            "organization" => 500,
            "sequence" => 499,
            _ => 500,
        };
        assert_eq!(
            report.first_bad_sequence,
            Some(expected),
            "{field}: {report:?}"
        );
        match field {
            "organization" => assert!(matches!(
                report.problem,
                Some(Problem::WrongOrganization { sequence: 500, .. })
            )),
            "sequence" => assert_eq!(report.problem, Some(Problem::Duplicate { sequence: 499 })),
            _ => assert_eq!(
                report.problem,
                Some(Problem::HashMismatch { sequence: 500 }),
                "{field}"
            ),
        }
    }
}

#[test]
fn deleting_entry_500() {
    let fixture = Fixture::new();
    let mut entries = fixture.entries.clone();
    entries.remove(at(500));
    let report = fixture.verify(&entries);
    assert_caught(
        &report,
        500,
        Problem::SequenceGap {
            expected: 500,
            found: 501,
        },
    );
    assert_eq!(report.entries_checked, 499);
}

#[test]
fn swapping_entries_500_and_501() {
    let fixture = Fixture::new();
    let mut entries = fixture.entries.clone();
    entries.swap(at(500), at(501));
    assert_caught(
        &fixture.verify(&entries),
        500,
        Problem::OutOfOrder {
            expected: 500,
            found: 501,
        },
    );
}

#[test]
fn swapping_the_contents_of_500_and_501_but_not_their_numbers() {
    let fixture = Fixture::new();
    let mut entries = fixture.entries.clone();
    entries.swap(at(500), at(501));
    entries[at(500)].sequence = 500;
    entries[at(501)].sequence = 501;
    assert_caught(
        &fixture.verify(&entries),
        500,
        Problem::HashMismatch { sequence: 500 },
    );
}

#[test]
fn inserting_a_forged_entry_after_500() {
    let fixture = Fixture::new();
    // A well-formed forgery: next sequence number, linked to 500, hashed.
    let forged = chain(new_entry(501, "forged"), 501, fixture.entries[at(500)].hash);
    let mut entries = fixture.entries.clone();
    entries.insert(at(501), forged.clone());
    assert_caught(
        &fixture.verify(&entries),
        501,
        Problem::Duplicate { sequence: 501 },
    );

    // A careless one that does not link.
    let mut careless = forged;
    careless.previous_hash = [0x5a; 32];
    careless.hash = careless.compute_hash();
    let mut entries = fixture.entries.clone();
    entries.insert(at(501), careless);
    assert_caught(
        &fixture.verify(&entries),
        501,
        Problem::BrokenLink { sequence: 501 },
    );
}

#[test]
fn inserting_a_forged_entry_after_500_and_renumbering_the_rest() {
    let fixture = Fixture::new();
    let mut entries = fixture.entries[..at(501)].to_vec();
    let mut news = vec![new_entry(501, "forged")];
    news.extend((501..LENGTH).map(|s| new_entry(s, "original")));
    extend(&mut entries, news);
    assert_eq!(entries.len(), 1_000);
    let report = fixture.verify(&entries);
    assert_caught(
        &report,
        600,
        Problem::CheckpointMismatch {
            sequence: 600,
            unverified_from: 501,
        },
    );
    assert_eq!(report.last_verified_checkpoint, Some(500));
}

#[test]
fn truncating_the_tail_at_950() {
    let fixture = Fixture::new();
    let entries = &fixture.entries[..at(951)];
    let missing = Problem::MissingEntries {
        from: 951,
        to: 1_000,
    };

    // The checkpoint at 1000 now lies beyond the end.
    let report = fixture.verify(entries);
    assert_caught(&report, 951, missing.clone());
    assert_eq!(report.entries_checked, 950);
    assert_eq!(report.last_verified_checkpoint, Some(900));

    // Without that checkpoint, the recorded head still reaches 1000.
    let report = fixture.verify_with(entries, &fixture.checkpoints[..9], Some(fixture.head()));
    assert_caught(&report, 951, missing);

    // With neither, nothing can tell: the limit the checkpoints and the head
    // exist for.
    assert!(
        fixture
            .verify_with(entries, &fixture.checkpoints[..9], None)
            .ok
    );
}

#[test]
fn truncating_at_950_and_appending_50_rehashed_entries() {
    let fixture = Fixture::new();
    let mut entries = fixture.entries[..at(951)].to_vec();
    extend(
        &mut entries,
        (951..=LENGTH).map(|s| new_entry(s, "replaced")),
    );
    assert_eq!(entries.len(), 1_000);

    let report = fixture.verify(&entries);
    assert_caught(
        &report,
        1_000,
        Problem::CheckpointMismatch {
            sequence: 1_000,
            unverified_from: 901,
        },
    );
    assert_eq!(report.entries_checked, 999);
    assert_eq!(report.last_verified_checkpoint, Some(900));

    // Before checkpoint 1000 is signed, the recorded head catches it.
    let report = fixture.verify_with(&entries, &fixture.checkpoints[..9], Some(fixture.head()));
    assert_caught(&report, 1_000, Problem::HeadMismatch { sequence: 1_000 });
}

#[test]
fn rewriting_the_whole_chain_from_genesis_with_another_key() {
    let fixture = Fixture::new();
    // Every hash is correct: entry 50 says something else and all after it
    // were re-linked. The forger signs new checkpoints with its own key.
    let rewritten = build(|s| if s == 50 { "rewritten" } else { "original" });
    assert_ne!(rewritten[at(50)].hash, fixture.entries[at(50)].hash);
    let forger = CheckpointSigner::generate();
    let forged_checkpoints = checkpoints(&forger, &rewritten);
    let report = fixture.verify_with(&rewritten, &forged_checkpoints, None);
    assert_caught(
        &report,
        100,
        Problem::BadCheckpointSignature {
            sequence: 100,
            reason: CheckpointError::UnknownKey {
                expected: fixture.signer.key_id().to_owned(),
                found: forger.key_id().to_owned(),
            },
        },
    );
    assert_eq!(report.entries_checked, 99);
    assert_eq!(report.last_verified_checkpoint, None);

    // Claiming the published key's id does not make the signature valid.
    let relabelled: Vec<Checkpoint> = forged_checkpoints
        .into_iter()
        .map(|mut checkpoint| {
            checkpoint.key_id = fixture.signer.key_id().to_owned();
            checkpoint
        })
        .collect();
    let report = fixture.verify_with(&rewritten, &relabelled, None);
    assert_caught(
        &report,
        100,
        Problem::BadCheckpointSignature {
            sequence: 100,
            reason: CheckpointError::BadSignature,
        },
    );

    // Keeping the published checkpoints instead: the head at 100 differs.
    let report = fixture.verify(&rewritten);
    assert_caught(
        &report,
        100,
        Problem::CheckpointMismatch {
            sequence: 100,
            unverified_from: 1,
        },
    );
}

fn export_text(fixture: &Fixture) -> String {
    let export = Export {
        entries: fixture.entries.clone(),
        checkpoints: fixture.checkpoints.clone(),
    };
    let mut out = Vec::new();
    write_export(&mut out, &export).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn the_export_round_trips_and_verifies() {
    let fixture = Fixture::new();
    let text = export_text(&fixture);
    assert_eq!(text.lines().count(), 1_010);
    let export = read_export(text.as_bytes()).unwrap();
    assert_eq!(export.entries, fixture.entries);
    assert_eq!(export.checkpoints, fixture.checkpoints);
    let verification = verify_export(&export, &fixture.signer.verifier());
    assert!(verification.ok, "{verification:?}");
    assert_eq!(verification.chains.len(), 1);
    assert_eq!(verification.chains[0].organization_id, Some(ORG));
    assert_eq!(verification.chains[0].report.entries_checked, 1_000);
    assert_eq!(
        verification.chains[0].report.last_verified_checkpoint,
        Some(1_000)
    );
}

#[test]
fn a_tampered_export_is_rejected_naming_the_entry() {
    let fixture = Fixture::new();
    let text = export_text(&fixture);
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    // One byte of entry 500's summary, in the file itself.
    let line = &mut lines[at(500)];
    assert!(line.contains("\"sequence\":500,"));
    let position = line.find("500 Main St").unwrap() + 4;
    flip_one_byte(line, position);
    let tampered = lines.join("\n");

    let export = read_export(tampered.as_bytes()).unwrap();
    let verification = verify_export(&export, &fixture.signer.verifier());
    assert!(!verification.ok);
    let failure = verification.first_failure().unwrap();
    assert_eq!(failure.organization_id, Some(ORG));
    assert_eq!(failure.report.first_bad_sequence, Some(500));
    let problem = failure.report.problem.as_ref().unwrap();
    assert_eq!(problem, &Problem::HashMismatch { sequence: 500 });
    assert!(problem.to_string().contains("entry 500"), "{problem}");
}

#[test]
fn an_export_missing_a_line_is_rejected() {
    let fixture = Fixture::new();
    let text = export_text(&fixture);
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| !line.contains("\"sequence\":700,\"time\""))
        .collect();
    assert_eq!(kept.len(), 1_009);
    let export = read_export(kept.join("\n").as_bytes()).unwrap();
    let verification = verify_export(&export, &fixture.signer.verifier());
    let report = &verification.first_failure().unwrap().report;
    assert_eq!(report.first_bad_sequence, Some(700));
    assert_eq!(
        report.problem,
        Some(Problem::SequenceGap {
            expected: 700,
            found: 701
        })
    );
}
