//! Verifying a chain: every hash, every link, the sequence, and the signed
//! checkpoints and recorded head that pin it down.
//!
//! Verification walks the entries once, in the order given (stored or
//! exported order, which must be ascending sequence), and stops at the first
//! problem. For each entry it checks, in this order: the organization, that
//! the sequence is the next one, that no entry lies beyond the recorded head,
//! that the hash matches the contents, that `previous_hash` is the hash of
//! the entry before, the recorded head if it is at this sequence, and then
//! every checkpoint at this sequence (named key, valid signature, head hash
//! equal to the entry's hash). Checkpoints before the first entry are checked
//! for their signature; one at the sequence just before it must equal the
//! expected previous hash. Checkpoints and a recorded head beyond the last
//! entry mean entries are missing.
//!
//! What this proves: the entries form one unbroken chain from the expected
//! start, and agree with every checkpoint and the head given. What it cannot:
//! a chain rewritten after its last checkpoint, or cut after it, looks intact
//! unless a later checkpoint or the recorded head says otherwise; that is why
//! checkpoints are signed often and the head is kept apart.

use std::borrow::Borrow;
use std::fmt;

use uuid::Uuid;

use crate::checkpoint::{Checkpoint, CheckpointError, CheckpointVerifier};
use crate::encoding::EntryHasher;
use crate::entry::{AuditEntry, GENESIS_HASH};

/// The hash of the entry at `sequence`, as recorded apart from the entries
/// (the database's head row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    pub sequence: i64,
    pub hash: [u8; 32],
}

/// Where the entries given to [`verify_chain`] are expected to start and end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainExpectation {
    /// The chain every entry and checkpoint must belong to.
    pub organization_id: Option<Uuid>,
    /// Sequence of the first entry.
    pub first_sequence: i64,
    /// `previous_hash` of the first entry: [`GENESIS_HASH`] at sequence 1.
    pub first_previous_hash: [u8; 32],
    /// The head recorded elsewhere; entries must end exactly there.
    pub head: Option<ChainHead>,
}

impl ChainExpectation {
    /// A whole chain, from sequence 1.
    pub fn genesis(organization_id: Option<Uuid>) -> ChainExpectation {
        ChainExpectation {
            organization_id,
            first_sequence: 1,
            first_previous_hash: GENESIS_HASH,
            head: None,
        }
    }

    /// A chain verified from `first` on, trusting its sequence and previous
    /// hash (for a range that starts mid-chain). At sequence 1 the previous
    /// hash must still be [`GENESIS_HASH`].
    pub fn starting_at(first: &AuditEntry) -> ChainExpectation {
        let first_previous_hash = if first.sequence == 1 {
            GENESIS_HASH
        } else {
            first.previous_hash
        };
        ChainExpectation {
            organization_id: first.organization_id,
            first_sequence: first.sequence,
            first_previous_hash,
            head: None,
        }
    }

    pub fn with_head(mut self, head: ChainHead) -> ChainExpectation {
        self.head = Some(head);
        self
    }
}

/// What kind of record a problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    Entry,
    Checkpoint,
}

/// The first thing found wrong with a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// An entry or checkpoint of another chain.
    WrongOrganization {
        record: Record,
        sequence: i64,
        expected: Option<Uuid>,
        found: Option<Uuid>,
    },
    /// `expected` is followed by a higher sequence and never appears: deleted.
    SequenceGap { expected: i64, found: i64 },
    /// `expected` appears later on: entries were reordered.
    OutOfOrder { expected: i64, found: i64 },
    /// A sequence number seen before appears again: an inserted entry.
    Duplicate { sequence: i64 },
    /// The entry's contents do not hash to its `hash`.
    HashMismatch { sequence: i64 },
    /// The entry's `previous_hash` is not the hash of the entry before.
    BrokenLink { sequence: i64 },
    /// The checkpoint is not signed by the published key.
    BadCheckpointSignature {
        sequence: i64,
        reason: CheckpointError,
    },
    /// A validly signed checkpoint disagrees with the entry at its sequence:
    /// entries from `unverified_from` (after the last checkpoint that did
    /// match) up to `sequence` were rewritten.
    CheckpointMismatch { sequence: i64, unverified_from: i64 },
    /// A checkpoint or the recorded head reaches `to`, the entries end before
    /// `from`.
    MissingEntries { from: i64, to: i64 },
    /// The entry at the recorded head's sequence has another hash.
    HeadMismatch { sequence: i64 },
    /// Entries continue after the recorded head.
    EntriesBeyondHead { head: i64 },
}

impl Problem {
    /// The lowest sequence number that can no longer be trusted. For a
    /// checkpoint mismatch that is the checkpoint's own sequence: the
    /// rewrite happened somewhere from `unverified_from` on.
    pub fn first_bad_sequence(&self) -> i64 {
        match *self {
            Problem::WrongOrganization { sequence, .. }
            | Problem::Duplicate { sequence }
            | Problem::HashMismatch { sequence }
            | Problem::BrokenLink { sequence }
            | Problem::BadCheckpointSignature { sequence, .. }
            | Problem::CheckpointMismatch { sequence, .. }
            | Problem::HeadMismatch { sequence } => sequence,
            Problem::SequenceGap { expected, .. } | Problem::OutOfOrder { expected, .. } => {
                expected
            }
            Problem::MissingEntries { from, .. } => from,
            Problem::EntriesBeyondHead { head } => head.saturating_add(1),
        }
    }
}

/// `entry N` or `entries N to M`.
struct Span(i64, i64);

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == self.1 {
            write!(f, "entry {}", self.0)
        } else {
            write!(f, "entries {} to {}", self.0, self.1)
        }
    }
}

struct Chain(Option<Uuid>);

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("the platform chain"),
            Some(id) => write!(f, "organization {id}"),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::WrongOrganization {
                record,
                sequence,
                expected,
                found,
            } => {
                let record = match record {
                    Record::Entry => "entry",
                    Record::Checkpoint => "checkpoint",
                };
                write!(
                    f,
                    "{record} at sequence {sequence} belongs to {}, not to {}",
                    Chain(*found),
                    Chain(*expected)
                )
            }
            Problem::SequenceGap { expected, found } => write!(
                f,
                "expected entry {expected}, found {found}: {} missing",
                Span(*expected, found.saturating_sub(1))
            ),
            Problem::OutOfOrder { expected, found } => write!(
                f,
                "expected entry {expected}, found {found}: entries are out of order"
            ),
            Problem::Duplicate { sequence } => {
                write!(f, "entry {sequence} appears more than once")
            }
            Problem::HashMismatch { sequence } => write!(
                f,
                "entry {sequence} was altered: its hash does not match its contents"
            ),
            Problem::BrokenLink { sequence } => {
                write!(f, "entry {sequence} does not link to the entry before it")
            }
            Problem::BadCheckpointSignature { sequence, reason } => write!(
                f,
                "checkpoint at sequence {sequence} is not valid under the published key: {reason}"
            ),
            Problem::CheckpointMismatch {
                sequence,
                unverified_from,
            } => write!(
                f,
                "checkpoint at sequence {sequence} does not match entry {sequence}: {} altered, \
                 removed or replaced",
                Span(*unverified_from, *sequence)
            ),
            Problem::MissingEntries { from, to } => write!(
                f,
                "{} missing: a checkpoint or the recorded head reaches {to}",
                Span(*from, *to)
            ),
            Problem::HeadMismatch { sequence } => write!(
                f,
                "entry {sequence} does not match the recorded head of the chain"
            ),
            Problem::EntriesBeyondHead { head } => write!(
                f,
                "entries continue after the recorded head at sequence {head}"
            ),
        }
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub ok: bool,
    /// Entries that passed every check before the first problem.
    pub entries_checked: u64,
    /// Sequence of the last entry that passed every check.
    pub verified_through: Option<i64>,
    /// [`Problem::first_bad_sequence`] of `problem`.
    pub first_bad_sequence: Option<i64>,
    pub problem: Option<Problem>,
    /// Sequence of the last checkpoint found valid and matching.
    pub last_verified_checkpoint: Option<i64>,
    /// Whether the start is proven, not just assumed: the chain starts at
    /// genesis, or a valid checkpoint at the sequence before the first entry
    /// matched its previous hash.
    pub start_anchored: bool,
}

/// Verifies `entries` (ascending sequence, one chain) against each other,
/// `checkpoints` (any order) under `verifier`, and `expectation`.
pub fn verify_chain(
    entries: &[AuditEntry],
    checkpoints: &[Checkpoint],
    verifier: &CheckpointVerifier,
    expectation: ChainExpectation,
) -> VerifyReport {
    verify_entries(entries, checkpoints, verifier, expectation)
}

/// [`verify_chain`] over slices of records or of references to them.
pub(crate) fn verify_entries<E: Borrow<AuditEntry>, C: Borrow<Checkpoint>>(
    entries: &[E],
    checkpoints: &[C],
    verifier: &CheckpointVerifier,
    expectation: ChainExpectation,
) -> VerifyReport {
    let mut walk = Walk {
        verifier,
        organization_id: expectation.organization_id,
        first_sequence: expectation.first_sequence,
        entries_checked: 0,
        verified_through: None,
        last_verified_checkpoint: None,
        start_anchored: expectation.first_sequence == 1
            && expectation.first_previous_hash == GENESIS_HASH,
        unverified_from: expectation.first_sequence,
    };
    let problem = walk.run(entries, checkpoints, &expectation).err();
    VerifyReport {
        ok: problem.is_none(),
        entries_checked: walk.entries_checked,
        verified_through: walk.verified_through,
        first_bad_sequence: problem.as_ref().map(Problem::first_bad_sequence),
        problem,
        last_verified_checkpoint: walk.last_verified_checkpoint,
        start_anchored: walk.start_anchored,
    }
}

/// The progress of one verification, kept when it stops at a problem.
struct Walk<'a> {
    verifier: &'a CheckpointVerifier,
    organization_id: Option<Uuid>,
    first_sequence: i64,
    entries_checked: u64,
    verified_through: Option<i64>,
    last_verified_checkpoint: Option<i64>,
    start_anchored: bool,
    unverified_from: i64,
}

impl Walk<'_> {
    fn run<E: Borrow<AuditEntry>, C: Borrow<Checkpoint>>(
        &mut self,
        entries: &[E],
        checkpoints: &[C],
        expectation: &ChainExpectation,
    ) -> Result<(), Problem> {
        let mut sorted: Vec<&Checkpoint> = checkpoints.iter().map(Borrow::borrow).collect();
        sorted.sort_by_key(|checkpoint| checkpoint.sequence);
        let mut pending = sorted.into_iter().peekable();

        // Before the range: only signatures can be checked, except just
        // before it, where the checkpoint must name the first previous hash.
        let anchor_sequence = self.first_sequence.saturating_sub(1);
        while let Some(checkpoint) = pending.next_if(|c| c.sequence < self.first_sequence) {
            self.check_signed(checkpoint)?;
            if checkpoint.sequence == anchor_sequence {
                if checkpoint.head_hash != expectation.first_previous_hash {
                    return Err(Problem::BrokenLink {
                        sequence: self.first_sequence,
                    });
                }
                self.start_anchored = true;
                self.last_verified_checkpoint = Some(checkpoint.sequence);
            }
        }

        let head = expectation.head;
        let mut hasher = EntryHasher::new();
        let mut expected = self.first_sequence;
        let mut previous_hash = expectation.first_previous_hash;
        for (index, entry) in entries.iter().enumerate() {
            let entry = entry.borrow();
            self.check_organization(Record::Entry, entry.sequence, entry.organization_id)?;
            if entry.sequence != expected {
                return Err(self.misplaced(expected, entry.sequence, &entries[index + 1..]));
            }
            if let Some(head) = head
                && entry.sequence > head.sequence
            {
                return Err(Problem::EntriesBeyondHead {
                    head: head.sequence,
                });
            }
            if hasher.hash(entry) != entry.hash {
                return Err(Problem::HashMismatch {
                    sequence: entry.sequence,
                });
            }
            if entry.previous_hash != previous_hash {
                return Err(Problem::BrokenLink {
                    sequence: entry.sequence,
                });
            }
            if let Some(head) = head
                && head.sequence == entry.sequence
                && head.hash != entry.hash
            {
                return Err(Problem::HeadMismatch {
                    sequence: entry.sequence,
                });
            }
            while let Some(checkpoint) = pending.next_if(|c| c.sequence == entry.sequence) {
                self.check_signed(checkpoint)?;
                if checkpoint.head_hash != entry.hash {
                    return Err(Problem::CheckpointMismatch {
                        sequence: checkpoint.sequence,
                        unverified_from: self.unverified_from,
                    });
                }
                self.last_verified_checkpoint = Some(checkpoint.sequence);
                self.unverified_from = checkpoint.sequence.saturating_add(1);
            }
            self.entries_checked += 1;
            self.verified_through = Some(entry.sequence);
            previous_hash = entry.hash;
            expected = expected.saturating_add(1);
        }

        // After the last entry: anything that reaches further means the tail
        // is gone. Missing entries come first, they start lower than any
        // checkpoint that reaches past them.
        let last = expected.saturating_sub(1);
        let mut reaches = None;
        let mut first_invalid = None;
        for checkpoint in pending {
            match self.check_signed(checkpoint) {
                Ok(()) => reaches = reaches.max(Some(checkpoint.sequence)),
                Err(problem) => {
                    first_invalid.get_or_insert(problem);
                }
            }
        }
        if let Some(head) = head {
            if head.sequence > last {
                reaches = reaches.max(Some(head.sequence));
            } else if head.sequence == last && head.hash != previous_hash {
                return Err(Problem::HeadMismatch { sequence: last });
            }
        }
        if let Some(to) = reaches {
            return Err(Problem::MissingEntries { from: expected, to });
        }
        first_invalid.map_or(Ok(()), Err)
    }

    fn check_organization(
        &self,
        record: Record,
        sequence: i64,
        found: Option<Uuid>,
    ) -> Result<(), Problem> {
        if found == self.organization_id {
            return Ok(());
        }
        Err(Problem::WrongOrganization {
            record,
            sequence,
            expected: self.organization_id,
            found,
        })
    }

    fn check_signed(&self, checkpoint: &Checkpoint) -> Result<(), Problem> {
        self.check_organization(
            Record::Checkpoint,
            checkpoint.sequence,
            checkpoint.organization_id,
        )?;
        self.verifier
            .verify(checkpoint)
            .map_err(|reason| Problem::BadCheckpointSignature {
                sequence: checkpoint.sequence,
                reason,
            })
    }

    /// Names what happened when `found` stands where `expected` should.
    /// Runs once, on the way out, so the scan of the rest costs nothing on a
    /// good chain.
    fn misplaced<E: Borrow<AuditEntry>>(&self, expected: i64, found: i64, rest: &[E]) -> Problem {
        if found < expected && found >= self.first_sequence {
            Problem::Duplicate { sequence: found }
        } else if found < expected || rest.iter().any(|e| e.borrow().sequence == expected) {
            Problem::OutOfOrder { expected, found }
        } else {
            Problem::SequenceGap { expected, found }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::checkpoint::CheckpointSigner;
    use crate::entry::{Actor, ActorKind, NewEntry, Outcome, chain};
    use chrono::{DateTime, TimeZone, Utc};

    const ORG: Uuid = Uuid::from_u128(42);

    fn at(second: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + second, 0).unwrap()
    }

    fn build(count: i64) -> Vec<AuditEntry> {
        let mut entries: Vec<AuditEntry> = Vec::new();
        for sequence in 1..=count {
            let previous = entries.last().map_or(GENESIS_HASH, |e| e.hash);
            let new = NewEntry {
                organization_id: Some(ORG),
                time: at(sequence),
                actor: Actor {
                    kind: ActorKind::Service,
                    id: "svc".into(),
                },
                action: "claims.property.update".into(),
                resource_type: "property".into(),
                resource_id: format!("p-{sequence}"),
                outcome: Outcome::Success,
                request_id: format!("r-{sequence}"),
                trace_id: String::new(),
                source_ip: String::new(),
                user_agent: String::new(),
                summary: serde_json::json!({"n": sequence}),
            };
            entries.push(chain(new, sequence, previous));
        }
        entries
    }

    fn head_of(entries: &[AuditEntry]) -> ChainHead {
        let last = entries.last().unwrap();
        ChainHead {
            sequence: last.sequence,
            hash: last.hash,
        }
    }

    #[test]
    fn an_empty_chain_verifies() {
        let signer = CheckpointSigner::generate();
        let report = verify_chain(
            &[],
            &[],
            &signer.verifier(),
            ChainExpectation::genesis(None),
        );
        assert!(report.ok);
        assert_eq!(report.entries_checked, 0);
        assert!(report.start_anchored);
        let empty_head = ChainExpectation::genesis(None).with_head(ChainHead {
            sequence: 0,
            hash: GENESIS_HASH,
        });
        assert!(verify_chain(&[], &[], &signer.verifier(), empty_head).ok);
    }

    #[test]
    fn a_good_chain_with_head_and_checkpoints_verifies() {
        let signer = CheckpointSigner::generate();
        let entries = build(30);
        let checkpoints = vec![
            signer.checkpoint(&entries[19], at(100)),
            signer.checkpoint(&entries[9], at(100)),
            signer.checkpoint(&entries[29], at(100)),
        ];
        let expectation = ChainExpectation::genesis(Some(ORG)).with_head(head_of(&entries));
        let report = verify_chain(&entries, &checkpoints, &signer.verifier(), expectation);
        assert_eq!(report.problem, None);
        assert!(report.ok);
        assert_eq!(report.entries_checked, 30);
        assert_eq!(report.verified_through, Some(30));
        assert_eq!(report.last_verified_checkpoint, Some(30));
    }

    #[test]
    fn a_range_is_anchored_by_the_checkpoint_before_it() {
        let signer = CheckpointSigner::generate();
        let entries = build(30);
        let checkpoints = vec![signer.checkpoint(&entries[9], at(100))];
        let range = &entries[10..];
        let report = verify_chain(
            range,
            &checkpoints,
            &signer.verifier(),
            ChainExpectation::starting_at(&range[0]),
        );
        assert!(report.ok);
        assert!(report.start_anchored);

        let unanchored = verify_chain(
            range,
            &[],
            &signer.verifier(),
            ChainExpectation::starting_at(&range[0]),
        );
        assert!(unanchored.ok);
        assert!(!unanchored.start_anchored);

        // A first entry rewritten to link elsewhere no longer meets the anchor.
        let mut rewritten = range.to_vec();
        rewritten[0].previous_hash = [9; 32];
        rewritten[0].hash = rewritten[0].compute_hash();
        let report = verify_chain(
            &rewritten,
            &checkpoints,
            &signer.verifier(),
            ChainExpectation::starting_at(&rewritten[0]),
        );
        assert_eq!(report.problem, Some(Problem::BrokenLink { sequence: 11 }));
    }

    #[test]
    fn sequence_one_must_start_at_genesis() {
        let signer = CheckpointSigner::generate();
        let mut entries = build(3);
        entries[0].previous_hash = [1; 32];
        entries[0].hash = entries[0].compute_hash();
        let report = verify_chain(
            &entries,
            &[],
            &signer.verifier(),
            ChainExpectation::starting_at(&entries[0]),
        );
        assert_eq!(report.problem, Some(Problem::BrokenLink { sequence: 1 }));
    }

    #[test]
    fn a_foreign_entry_is_named() {
        let signer = CheckpointSigner::generate();
        let mut entries = build(5);
        entries[2].organization_id = None;
        let report = verify_chain(
            &entries,
            &[],
            &signer.verifier(),
            ChainExpectation::genesis(Some(ORG)),
        );
        assert_eq!(report.first_bad_sequence, Some(3));
        assert!(matches!(
            report.problem,
            Some(Problem::WrongOrganization {
                record: Record::Entry,
                found: None,
                ..
            })
        ));
        assert_eq!(report.entries_checked, 2);
    }

    #[test]
    fn a_moved_entry_is_out_of_order() {
        let signer = CheckpointSigner::generate();
        let mut entries = build(10);
        let moved = entries.remove(3);
        entries.push(moved);
        let report = verify_chain(
            &entries,
            &[],
            &signer.verifier(),
            ChainExpectation::genesis(Some(ORG)),
        );
        assert_eq!(
            report.problem,
            Some(Problem::OutOfOrder {
                expected: 4,
                found: 5
            })
        );
    }

    #[test]
    fn the_head_bounds_the_chain() {
        let signer = CheckpointSigner::generate();
        let entries = build(10);
        let verifier = signer.verifier();
        let early_head = ChainHead {
            sequence: 8,
            hash: entries[7].hash,
        };
        let report = verify_chain(
            &entries,
            &[],
            &verifier,
            ChainExpectation::genesis(Some(ORG)).with_head(early_head),
        );
        assert_eq!(report.problem, Some(Problem::EntriesBeyondHead { head: 8 }));
        assert_eq!(report.first_bad_sequence, Some(9));

        let wrong_head = ChainHead {
            sequence: 10,
            hash: [3; 32],
        };
        let report = verify_chain(
            &entries,
            &[],
            &verifier,
            ChainExpectation::genesis(Some(ORG)).with_head(wrong_head),
        );
        assert_eq!(report.problem, Some(Problem::HeadMismatch { sequence: 10 }));
    }

    #[test]
    fn a_forged_checkpoint_past_the_end_is_reported() {
        let signer = CheckpointSigner::generate();
        let forger = CheckpointSigner::generate();
        let entries = build(10);
        let forged = forger.sign(Some(ORG), 20, [0; 32], at(1));
        let report = verify_chain(
            &entries,
            &[forged],
            &signer.verifier(),
            ChainExpectation::genesis(Some(ORG)),
        );
        assert_eq!(report.first_bad_sequence, Some(20));
        assert!(matches!(
            report.problem,
            Some(Problem::BadCheckpointSignature {
                reason: CheckpointError::UnknownKey { .. },
                ..
            })
        ));
    }

    #[test]
    fn problems_read_well() {
        let problem = Problem::CheckpointMismatch {
            sequence: 1000,
            unverified_from: 901,
        };
        assert_eq!(
            problem.to_string(),
            "checkpoint at sequence 1000 does not match entry 1000: entries 901 to 1000 \
             altered, removed or replaced"
        );
        assert_eq!(
            Problem::SequenceGap {
                expected: 500,
                found: 501
            }
            .to_string(),
            "expected entry 500, found 501: entry 500 missing"
        );
        let foreign = Problem::WrongOrganization {
            record: Record::Checkpoint,
            sequence: 3,
            expected: Some(ORG),
            found: None,
        };
        assert_eq!(
            foreign.to_string(),
            format!(
                "checkpoint at sequence 3 belongs to the platform chain, not to organization {ORG}"
            )
        );
    }
}
