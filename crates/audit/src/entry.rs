//! The audit entry: what one recorded action looks like, and how a new
//! action is linked onto the end of its organization's chain.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::encoding::EntryHasher;

/// The `previous_hash` of the first entry (sequence 1) of every chain.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActorKind {
    /// No credential was presented (recorded for refused calls).
    Anonymous,
    User,
    ApiKey,
    Operator,
    Service,
}

impl ActorKind {
    pub const ALL: [ActorKind; 5] = [
        ActorKind::Anonymous,
        ActorKind::User,
        ActorKind::ApiKey,
        ActorKind::Operator,
        ActorKind::Service,
    ];

    /// The name used in the canonical encoding, the export and the database.
    /// Renaming one would change every hash that covers it, so these strings
    /// are frozen.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Anonymous => "anonymous",
            ActorKind::User => "user",
            ActorKind::ApiKey => "api_key",
            ActorKind::Operator => "operator",
            ActorKind::Service => "service",
        }
    }

    pub fn parse(raw: &str) -> Option<ActorKind> {
        ActorKind::ALL.into_iter().find(|kind| kind.as_str() == raw)
    }
}

/// The actor of an entry: its kind and the id of that kind (user id, API key
/// prefix, operator key prefix, service name; empty when anonymous).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: String,
}

/// How the action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Success,
    /// Refused for authentication or authorization.
    Denied,
    /// Attempted and failed for another reason.
    Failed,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Success, Outcome::Denied, Outcome::Failed];

    /// Frozen like [`ActorKind::as_str`].
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Outcome> {
        Outcome::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == raw)
    }
}

/// An action to record, before it has a place in a chain.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    /// `None` records a platform-level action in the platform chain.
    pub organization_id: Option<Uuid>,
    /// Truncated to microseconds by [`chain`]: PostgreSQL keeps no more, and
    /// the hash must cover exactly what is stored.
    pub time: DateTime<Utc>,
    pub actor: Actor,
    /// `claims.property.create` style, derived from the RPC method.
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub outcome: Outcome,
    pub request_id: String,
    pub trace_id: String,
    pub source_ip: String,
    pub user_agent: String,
    /// A redacted JSON object describing the change.
    pub summary: serde_json::Value,
}

/// One entry of a chain. `hash` is SHA-256 of the canonical encoding of all
/// other fields (see [`crate::encoding`]), which include `previous_hash`.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub organization_id: Option<Uuid>,
    /// 1-based and contiguous within one chain.
    pub sequence: i64,
    /// Always at microsecond precision.
    pub time: DateTime<Utc>,
    pub actor: Actor,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub outcome: Outcome,
    pub request_id: String,
    pub trace_id: String,
    pub source_ip: String,
    pub user_agent: String,
    pub summary: serde_json::Value,
    /// [`GENESIS_HASH`] for sequence 1, else the hash of the entry before.
    pub previous_hash: [u8; 32],
    pub hash: [u8; 32],
}

impl AuditEntry {
    /// Recomputes the hash from the other fields; compare it with `hash` to
    /// check the entry.
    pub fn compute_hash(&self) -> [u8; 32] {
        EntryHasher::new().hash(self)
    }
}

/// Places `new` at `sequence` after the entry whose hash is `previous_hash`
/// ([`GENESIS_HASH`] for sequence 1) and computes its hash.
pub fn chain(new: NewEntry, sequence: i64, previous_hash: [u8; 32]) -> AuditEntry {
    let mut entry = AuditEntry {
        organization_id: new.organization_id,
        sequence,
        time: truncate_to_micros(new.time),
        actor: new.actor,
        action: new.action,
        resource_type: new.resource_type,
        resource_id: new.resource_id,
        outcome: new.outcome,
        request_id: new.request_id,
        trace_id: new.trace_id,
        source_ip: new.source_ip,
        user_agent: new.user_agent,
        summary: new.summary,
        previous_hash,
        hash: [0; 32],
    };
    entry.hash = entry.compute_hash();
    entry
}

/// Drops the nanoseconds below the microsecond.
pub fn truncate_to_micros(time: DateTime<Utc>) -> DateTime<Utc> {
    let extra_nanos = i64::from(time.timestamp_subsec_nanos() % 1_000);
    time - chrono::Duration::nanoseconds(extra_nanos)
}

/// Whether `time` carries nothing below the microsecond.
pub fn is_micros(time: DateTime<Utc>) -> bool {
    time.timestamp_subsec_nanos().is_multiple_of(1_000)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use chrono::TimeZone;

    fn new_entry() -> NewEntry {
        NewEntry {
            organization_id: Some(Uuid::from_u128(7)),
            time: Utc.timestamp_opt(1_700_000_000, 123_456_789).unwrap(),
            actor: Actor {
                kind: ActorKind::User,
                id: "u-1".into(),
            },
            action: "claims.property.create".into(),
            resource_type: "property".into(),
            resource_id: "p-1".into(),
            outcome: Outcome::Success,
            request_id: "r-1".into(),
            trace_id: "t-1".into(),
            source_ip: "192.0.2.1".into(),
            user_agent: "test".into(),
            summary: serde_json::json!({"name": "Main St"}),
        }
    }

    #[test]
    fn names_round_trip() {
        for kind in ActorKind::ALL {
            assert_eq!(ActorKind::parse(kind.as_str()), Some(kind));
        }
        for outcome in Outcome::ALL {
            assert_eq!(Outcome::parse(outcome.as_str()), Some(outcome));
        }
        assert_eq!(ActorKind::ApiKey.as_str(), "api_key");
        assert_eq!(ActorKind::parse("API_KEY"), None);
        assert_eq!(Outcome::parse(""), None);
    }

    #[test]
    fn chain_truncates_time_and_hashes() {
        let entry = chain(new_entry(), 1, GENESIS_HASH);
        assert_eq!(entry.time.timestamp_subsec_nanos(), 123_456_000);
        assert!(is_micros(entry.time));
        assert_eq!(entry.hash, entry.compute_hash());
        assert_ne!(entry.hash, [0; 32]);
    }

    #[test]
    fn truncation_keeps_times_before_the_epoch_in_order() {
        let before = Utc.timestamp_opt(-1, 999_999_999).unwrap();
        let truncated = truncate_to_micros(before);
        assert_eq!(truncated.timestamp_micros(), before.timestamp_micros());
        assert!(truncated <= before);
    }

    #[test]
    fn the_link_is_part_of_the_hash() {
        let first = chain(new_entry(), 1, GENESIS_HASH);
        let second = chain(new_entry(), 2, first.hash);
        let relinked = chain(new_entry(), 2, [1; 32]);
        assert_ne!(second.hash, relinked.hash);
        assert_ne!(first.hash, second.hash);
    }
}
