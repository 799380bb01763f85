//! The canonical byte encoding of an entry, the input of its hash.
//!
//! `hash = SHA-256(encoding)`, where the encoding is, in this order:
//!
//! | # | field | bytes |
//! |---|---|---|
//! | 1 | domain prefix | `b"claimguardian.audit.entry.v1\0"` (29 bytes) |
//! | 2 | organization | `0x00` for the platform chain, or `0x01` + the 16 UUID bytes (RFC 4122 order) |
//! | 3 | sequence | i64 big-endian |
//! | 4 | time | i64 big-endian, microseconds since 1970-01-01T00:00:00Z |
//! | 5 | actor kind | string: `anonymous`, `user`, `api_key`, `operator`, `service` |
//! | 6 | actor id | string |
//! | 7 | action | string |
//! | 8 | resource type | string |
//! | 9 | resource id | string |
//! | 10 | outcome | string: `success`, `denied`, `failed` |
//! | 11 | request id | string |
//! | 12 | trace id | string |
//! | 13 | source IP | string |
//! | 14 | user agent | string |
//! | 15 | summary | string: its canonical JSON (below) |
//! | 16 | previous hash | 32 bytes |
//!
//! A *string* is its UTF-8 length as u32 big-endian followed by the UTF-8
//! bytes. Every field has either a fixed width or a length prefix, so two
//! different entries can never produce the same bytes. The domain prefix keeps
//! an entry's bytes from ever being mistaken for a checkpoint's (or a future
//! `v2` encoding's); changing anything here means a new prefix.
//!
//! *Canonical JSON* is compact JSON (no whitespace) with every object's keys
//! sorted by their UTF-8 bytes, recursively; strings escape only `"`, `\` and
//! control characters below U+0020 (`\b \t \n \f \r` short, others as
//! `\u00xx` with lowercase hex), all else is written as raw UTF-8; integers are
//! written in decimal, other numbers as serde_json writes an `f64` (shortest
//! round-trip form, e.g. `1.5`, `1e300`). This is exactly what serde_json
//! prints for a `Value` whose maps are sorted, but we write it ourselves so
//! that neither serde_json's `preserve_order` feature (enabled by any crate in
//! the build) nor a change of its escaping can change a hash.

use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::entry::AuditEntry;

/// Domain-separation prefix of the entry encoding.
pub const ENTRY_DOMAIN: &[u8] = b"claimguardian.audit.entry.v1\0";

/// Encodes and hashes entries with one reusable buffer, so that verifying a
/// long chain allocates nothing per entry.
#[derive(Debug, Default)]
pub struct EntryHasher {
    buf: Vec<u8>,
}

impl EntryHasher {
    pub fn new() -> EntryHasher {
        EntryHasher {
            buf: Vec::with_capacity(512),
        }
    }

    /// The canonical encoding of `entry`, valid until the next call.
    pub fn encode(&mut self, entry: &AuditEntry) -> &[u8] {
        self.buf.clear();
        encode_into(entry, &mut self.buf);
        &self.buf
    }

    /// SHA-256 of the canonical encoding of `entry`.
    pub fn hash(&mut self, entry: &AuditEntry) -> [u8; 32] {
        Sha256::digest(self.encode(entry)).into()
    }
}

/// The canonical encoding of `entry` in a fresh buffer.
pub fn encode(entry: &AuditEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    encode_into(entry, &mut out);
    out
}

/// The canonical JSON of `value` (see the module documentation).
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical_json(value, &mut out);
    out
}

fn encode_into(entry: &AuditEntry, out: &mut Vec<u8>) {
    out.extend_from_slice(ENTRY_DOMAIN);
    write_organization(entry.organization_id, out);
    out.extend_from_slice(&entry.sequence.to_be_bytes());
    out.extend_from_slice(&entry.time.timestamp_micros().to_be_bytes());
    write_str(entry.actor.kind.as_str(), out);
    write_str(&entry.actor.id, out);
    write_str(&entry.action, out);
    write_str(&entry.resource_type, out);
    write_str(&entry.resource_id, out);
    write_str(entry.outcome.as_str(), out);
    write_str(&entry.request_id, out);
    write_str(&entry.trace_id, out);
    write_str(&entry.source_ip, out);
    write_str(&entry.user_agent, out);
    // The summary's length is only known once written: reserve the prefix
    // and fill it in afterwards, which avoids a second buffer.
    let prefix_at = out.len();
    out.extend_from_slice(&[0; 4]);
    write_canonical_json(&entry.summary, out);
    let summary_len = length_prefix(out.len() - prefix_at - 4);
    out[prefix_at..prefix_at + 4].copy_from_slice(&summary_len);
    out.extend_from_slice(&entry.previous_hash);
}

/// `0x00` for the platform chain, `0x01` + 16 bytes for an organization.
/// Shared with the checkpoint encoding.
pub(crate) fn write_organization(organization_id: Option<Uuid>, out: &mut Vec<u8>) {
    match organization_id {
        None => out.push(0),
        Some(id) => {
            out.push(1);
            out.extend_from_slice(id.as_bytes());
        }
    }
}

fn write_str(value: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&length_prefix(value.len()));
    out.extend_from_slice(value.as_bytes());
}

fn length_prefix(len: usize) -> [u8; 4] {
    // Entries come from the application or from export lines capped at
    // `export::MAX_LINE_BYTES`, so no field comes near 4 GiB.
    u32::try_from(len)
        .expect("an audit entry field is shorter than 4 GiB")
        .to_be_bytes()
}

fn write_canonical_json(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => write_number(number, out),
        Value::String(text) => write_json_string(text, out),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_canonical_json(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            // serde_json's default map is a BTreeMap and iterates sorted; only
            // an insertion-ordered map (`preserve_order`) needs sorting here,
            // which is the one case that pays for an allocation.
            if map.keys().is_sorted() {
                write_members(map.iter(), out);
            } else {
                let mut members: Vec<(&String, &Value)> = map.iter().collect();
                members.sort_unstable_by(|a, b| a.0.cmp(b.0));
                write_members(members.into_iter(), out);
            }
            out.push(b'}');
        }
    }
}

fn write_members<'a>(members: impl Iterator<Item = (&'a String, &'a Value)>, out: &mut Vec<u8>) {
    for (index, (key, value)) in members.enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_json_string(key, out);
        out.push(b':');
        write_canonical_json(value, out);
    }
}

fn write_number(number: &serde_json::Number, out: &mut Vec<u8>) {
    use std::io::Write as _;
    // Writing into a Vec cannot fail.
    let written = if let Some(integer) = number.as_i64() {
        write!(out, "{integer}")
    } else if let Some(integer) = number.as_u64() {
        write!(out, "{integer}")
    } else if let Some(float) = number.as_f64() {
        serde_json::to_writer(&mut *out, &float).map_err(std::io::Error::other)
    } else {
        // Only reachable with serde_json's `arbitrary_precision` and a number
        // beyond f64: keep its text, which is all there is.
        write!(out, "{number}")
    };
    written.expect("writing into a Vec cannot fail");
}

fn write_json_string(text: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ],
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..index]);
        out.extend_from_slice(escape);
        start = index + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::entry::{Actor, ActorKind, GENESIS_HASH, NewEntry, Outcome, chain};
    use chrono::{TimeZone, Utc};
    use serde_json::{Map, json};

    fn sample() -> AuditEntry {
        chain(
            NewEntry {
                organization_id: Some(Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef)),
                time: Utc.timestamp_opt(1_700_000_000, 123_456_000).unwrap(),
                actor: Actor {
                    kind: ActorKind::User,
                    id: "user-1".into(),
                },
                action: "claims.property.create".into(),
                resource_type: "property".into(),
                resource_id: "prop-1".into(),
                outcome: Outcome::Success,
                request_id: "req-1".into(),
                trace_id: "trace-1".into(),
                source_ip: "192.0.2.10".into(),
                user_agent: "grpcurl/1.9".into(),
                summary: json!({"name": "12 Main St", "state": "FL", "units": 3}),
            },
            1,
            GENESIS_HASH,
        )
    }

    /// Pins the format: if this changes, every stored hash breaks. The same
    /// vector is in docs/audit.md.
    #[test]
    fn known_answer() {
        let entry = sample();
        let bytes = encode(&entry);
        assert!(bytes.starts_with(ENTRY_DOMAIN));
        assert_eq!(bytes.len(), 268);
        assert_eq!(
            hex::encode(entry.hash),
            "e471f2dfc51535e37861018df0406cb92b1fa19b4e6a4016a4845f4f15acafbd"
        );
    }

    #[test]
    fn layout_is_as_documented() {
        let entry = sample();
        let bytes = encode(&entry);
        let mut at = ENTRY_DOMAIN.len();
        assert_eq!(bytes[at], 1);
        assert_eq!(
            &bytes[at + 1..at + 17],
            entry.organization_id.unwrap().as_bytes()
        );
        at += 17;
        assert_eq!(bytes[at..at + 8], 1i64.to_be_bytes());
        at += 8;
        assert_eq!(bytes[at..at + 8], 1_700_000_000_123_456i64.to_be_bytes());
        at += 8;
        assert_eq!(bytes[at..at + 4], 4u32.to_be_bytes());
        assert_eq!(&bytes[at + 4..at + 8], b"user");
        let summary = br#"{"name":"12 Main St","state":"FL","units":3}"#;
        let summary_at = bytes.len() - 32 - summary.len();
        assert_eq!(&bytes[summary_at..bytes.len() - 32], summary);
        assert_eq!(
            bytes[summary_at - 4..summary_at],
            u32::try_from(summary.len()).unwrap().to_be_bytes()
        );
        assert_eq!(&bytes[bytes.len() - 32..], &GENESIS_HASH);
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        assert_eq!(digest, entry.hash);
    }

    #[test]
    fn key_order_does_not_change_the_hash() {
        let mut forward = Map::new();
        forward.insert("alpha".into(), json!(1));
        forward.insert("beta".into(), json!({"x": 1, "y": [1, {"b": 2, "a": 1}]}));
        forward.insert("gamma".into(), json!("g"));
        let mut backward = Map::new();
        backward.insert("gamma".into(), json!("g"));
        let mut inner = Map::new();
        inner.insert("y".into(), json!([1, {"a": 1, "b": 2}]));
        inner.insert("x".into(), json!(1));
        backward.insert("beta".into(), Value::Object(inner));
        backward.insert("alpha".into(), json!(1));

        let mut one = sample();
        one.summary = Value::Object(forward);
        let mut two = sample();
        two.summary = Value::Object(backward);
        assert_eq!(encode(&one), encode(&two));
        assert_eq!(one.compute_hash(), two.compute_hash());
        assert_eq!(
            canonical_json(&one.summary),
            br#"{"alpha":1,"beta":{"x":1,"y":[1,{"a":1,"b":2}]},"gamma":"g"}"#
        );
    }

    #[test]
    fn canonical_json_matches_serde_json_for_sorted_values() {
        let value = json!({
            "b": "quote \" backslash \\ newline \n tab \t nul \u{0} unit \u{1f} del \u{7f} é 🦀 \u{2028}",
            "a": [null, true, false, 0, -1, 18446744073709551615u64, -9223372036854775808i64, 1.5, 1e300, -0.25],
            "c": {},
            "d": [],
        });
        let ours = canonical_json(&value);
        let theirs = serde_json::to_vec(&value).unwrap();
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            String::from_utf8(theirs).unwrap()
        );
    }

    #[test]
    fn canonical_json_survives_a_round_trip_through_text() {
        let value = json!({"amount": 0.1, "big": 12345678901234567890u64, "s": "x\u{1}"});
        let text = serde_json::to_string(&value).unwrap();
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(canonical_json(&value), canonical_json(&parsed));
    }

    #[test]
    fn every_field_changes_the_hash() {
        let base = sample();
        let mut variants: Vec<AuditEntry> = Vec::new();
        let mut push = |change: &dyn Fn(&mut AuditEntry)| {
            let mut entry = base.clone();
            change(&mut entry);
            variants.push(entry);
        };
        push(&|e| e.organization_id = None);
        push(&|e| e.organization_id = Some(Uuid::from_u128(1)));
        push(&|e| e.sequence = 2);
        push(&|e| e.time += chrono::Duration::microseconds(1));
        push(&|e| e.actor.kind = ActorKind::ApiKey);
        push(&|e| e.actor.id.push('x'));
        push(&|e| e.action.push('x'));
        push(&|e| e.resource_type.push('x'));
        push(&|e| e.resource_id.push('x'));
        push(&|e| e.outcome = Outcome::Denied);
        push(&|e| e.request_id.push('x'));
        push(&|e| e.trace_id.push('x'));
        push(&|e| e.source_ip.push('x'));
        push(&|e| e.user_agent.push('x'));
        push(&|e| e.summary = json!({"name": "12 Main St", "state": "FL", "units": 4}));
        push(&|e| e.previous_hash[31] = 1);
        for variant in &variants {
            assert_ne!(variant.compute_hash(), base.hash, "{variant:?}");
        }
    }

    #[test]
    fn moving_bytes_between_fields_changes_the_hash() {
        let base = sample();
        let mut moved = base.clone();
        moved.action = "claims.property.createproperty".into();
        moved.resource_type = String::new();
        assert_ne!(moved.compute_hash(), base.hash);
    }

    #[test]
    fn the_reusable_hasher_agrees_with_a_fresh_one() {
        let mut hasher = EntryHasher::new();
        let entry = sample();
        let mut other = sample();
        other.summary = json!({"much": "longer".repeat(200)});
        assert_eq!(hasher.hash(&other), other.compute_hash());
        assert_eq!(hasher.hash(&entry), entry.hash);
    }
}
