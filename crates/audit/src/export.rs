//! The JSON Lines export, read back and verified offline.
//!
//! One JSON object per line, `"type"` first:
//!
//! ```text
//! {"type":"entry","organization_id":"…"|null,"sequence":1,"time":"2024-05-01T12:00:00.123456Z",
//!  "actor":{"kind":"user","id":"…"},"action":"…","resource_type":"…","resource_id":"…",
//!  "outcome":"success","request_id":"…","trace_id":"…","source_ip":"…","user_agent":"…",
//!  "summary":{…},"previous_hash":"<64 hex>","hash":"<64 hex>"}
//! {"type":"checkpoint","organization_id":"…"|null,"sequence":100,"head_hash":"<64 hex>",
//!  "time":"…","key_id":"<16 hex>","signature":"<128 hex>"}
//! ```
//!
//! Times are RFC 3339 in UTC with exactly six fractional digits. The reader
//! rejects unknown fields, times finer than a microsecond and malformed hex,
//! naming the line; it does not judge the chain, [`verify_export`] does.
//!
//! An export may cover a time range and so start mid-chain. Each
//! organization's entries are then verified from the first exported entry on,
//! trusting its sequence and previous hash: removing entries from the start
//! of such an export goes unnoticed unless it carries the checkpoint just
//! before its first entry (then `start_anchored` is true). Likewise the tail
//! is only proven up to the last checkpoint in the export, so the exporter
//! should end each organization's section with a checkpoint of its last
//! entry.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Read, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::checkpoint::{Checkpoint, CheckpointVerifier};
use crate::entry::{Actor, ActorKind, AuditEntry, Outcome, is_micros};
use crate::verify::{ChainExpectation, VerifyReport, verify_entries};

/// Longest line the reader accepts. Keeps a hostile file from exhausting
/// memory, and every field far below the 4 GiB the encoding can express.
pub const MAX_LINE_BYTES: u64 = 16 * 1024 * 1024;

/// The records of an export, in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Export {
    pub entries: Vec<AuditEntry>,
    pub checkpoints: Vec<Checkpoint>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("line {line}: could not read: {cause}")]
    Io { line: u64, cause: io::Error },
    #[error("line {line}: longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong { line: u64 },
    #[error("line {line}: not a valid record: {cause}")]
    Json { line: u64, cause: serde_json::Error },
    #[error("line {line}: {message}")]
    Invalid { line: u64, message: String },
}

#[derive(Serialize)]
struct EntryOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    organization_id: Option<Uuid>,
    sequence: i64,
    time: String,
    actor: ActorOut<'a>,
    action: &'a str,
    resource_type: &'a str,
    resource_id: &'a str,
    outcome: &'static str,
    request_id: &'a str,
    trace_id: &'a str,
    source_ip: &'a str,
    user_agent: &'a str,
    summary: &'a Value,
    previous_hash: String,
    hash: String,
}

#[derive(Serialize)]
struct ActorOut<'a> {
    kind: &'static str,
    id: &'a str,
}

#[derive(Serialize)]
struct CheckpointOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    organization_id: Option<Uuid>,
    sequence: i64,
    head_hash: String,
    time: String,
    key_id: &'a str,
    signature: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryIn {
    organization_id: Option<Uuid>,
    sequence: i64,
    time: String,
    actor: ActorIn,
    action: String,
    resource_type: String,
    resource_id: String,
    outcome: String,
    request_id: String,
    trace_id: String,
    source_ip: String,
    user_agent: String,
    summary: Value,
    previous_hash: String,
    hash: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActorIn {
    kind: String,
    id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointIn {
    organization_id: Option<Uuid>,
    sequence: i64,
    head_hash: String,
    time: String,
    key_id: String,
    signature: String,
}

fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn to_line<T: Serialize>(record: &T) -> String {
    // Strings, integers and a `Value` under string keys always serialize.
    serde_json::to_string(record).expect("an audit record serializes to JSON")
}

/// One export line (without its newline) for `entry`.
pub fn to_json_line(entry: &AuditEntry) -> String {
    to_line(&EntryOut {
        kind: "entry",
        organization_id: entry.organization_id,
        sequence: entry.sequence,
        time: format_time(entry.time),
        actor: ActorOut {
            kind: entry.actor.kind.as_str(),
            id: &entry.actor.id,
        },
        action: &entry.action,
        resource_type: &entry.resource_type,
        resource_id: &entry.resource_id,
        outcome: entry.outcome.as_str(),
        request_id: &entry.request_id,
        trace_id: &entry.trace_id,
        source_ip: &entry.source_ip,
        user_agent: &entry.user_agent,
        summary: &entry.summary,
        previous_hash: hex::encode(entry.previous_hash),
        hash: hex::encode(entry.hash),
    })
}

/// One export line (without its newline) for `checkpoint`.
pub fn checkpoint_to_json_line(checkpoint: &Checkpoint) -> String {
    to_line(&CheckpointOut {
        kind: "checkpoint",
        organization_id: checkpoint.organization_id,
        sequence: checkpoint.sequence,
        head_hash: hex::encode(checkpoint.head_hash),
        time: format_time(checkpoint.time),
        key_id: &checkpoint.key_id,
        signature: hex::encode(checkpoint.signature),
    })
}

/// Writes every entry, then every checkpoint, one per line.
pub fn write_export(out: &mut impl Write, export: &Export) -> io::Result<()> {
    for entry in &export.entries {
        writeln!(out, "{}", to_json_line(entry))?;
    }
    for checkpoint in &export.checkpoints {
        writeln!(out, "{}", checkpoint_to_json_line(checkpoint))?;
    }
    Ok(())
}

/// Reads an export. Blank lines are skipped; any other line that is not a
/// well-formed entry or checkpoint is an error naming its line (1-based).
pub fn read_export(mut reader: impl BufRead) -> Result<Export, ExportError> {
    let mut export = Export::default();
    let mut text = String::new();
    let mut line = 0u64;
    loop {
        line += 1;
        text.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES + 1)
            .read_line(&mut text)
            .map_err(|cause| ExportError::Io { line, cause })?;
        if read == 0 {
            return Ok(export);
        }
        let record = text.trim_end_matches(['\n', '\r']);
        if record.len() as u64 > MAX_LINE_BYTES {
            return Err(ExportError::LineTooLong { line });
        }
        if record.trim().is_empty() {
            continue;
        }
        match parse_line(record, line)? {
            Parsed::Entry(entry) => export.entries.push(entry),
            Parsed::Checkpoint(checkpoint) => export.checkpoints.push(checkpoint),
        }
    }
}

enum Parsed {
    Entry(AuditEntry),
    Checkpoint(Checkpoint),
}

fn parse_line(record: &str, line: u64) -> Result<Parsed, ExportError> {
    let json = |cause| ExportError::Json { line, cause };
    let invalid = |message: String| ExportError::Invalid { line, message };
    // Through a `Value` first rather than an internally tagged enum: serde's
    // buffering for tagged enums mishandles numbers when serde_json's
    // `arbitrary_precision` is on, and the summary may hold any number.
    let mut object = match serde_json::from_str::<Value>(record).map_err(json)? {
        Value::Object(object) => object,
        _ => return Err(invalid("not a JSON object".into())),
    };
    let kind = match object.remove("type") {
        Some(Value::String(kind)) => kind,
        _ => return Err(invalid("`type` must be \"entry\" or \"checkpoint\"".into())),
    };
    match kind.as_str() {
        "entry" => {
            let raw: EntryIn = serde_json::from_value(Value::Object(object)).map_err(json)?;
            entry_from(raw).map(Parsed::Entry).map_err(invalid)
        }
        "checkpoint" => {
            let raw: CheckpointIn = serde_json::from_value(Value::Object(object)).map_err(json)?;
            checkpoint_from(raw)
                .map(Parsed::Checkpoint)
                .map_err(invalid)
        }
        other => Err(invalid(format!(
            "`type` must be \"entry\" or \"checkpoint\", not {other:?}"
        ))),
    }
}

fn entry_from(raw: EntryIn) -> Result<AuditEntry, String> {
    Ok(AuditEntry {
        organization_id: raw.organization_id,
        sequence: raw.sequence,
        time: parse_time(&raw.time)?,
        actor: Actor {
            kind: ActorKind::parse(&raw.actor.kind)
                .ok_or_else(|| format!("unknown actor kind {:?}", raw.actor.kind))?,
            id: raw.actor.id,
        },
        action: raw.action,
        resource_type: raw.resource_type,
        resource_id: raw.resource_id,
        outcome: Outcome::parse(&raw.outcome)
            .ok_or_else(|| format!("unknown outcome {:?}", raw.outcome))?,
        request_id: raw.request_id,
        trace_id: raw.trace_id,
        source_ip: raw.source_ip,
        user_agent: raw.user_agent,
        summary: raw.summary,
        previous_hash: parse_hex("previous_hash", &raw.previous_hash)?,
        hash: parse_hex("hash", &raw.hash)?,
    })
}

fn checkpoint_from(raw: CheckpointIn) -> Result<Checkpoint, String> {
    Ok(Checkpoint {
        organization_id: raw.organization_id,
        sequence: raw.sequence,
        head_hash: parse_hex("head_hash", &raw.head_hash)?,
        time: parse_time(&raw.time)?,
        key_id: raw.key_id,
        signature: parse_hex("signature", &raw.signature)?,
    })
}

fn parse_time(raw: &str) -> Result<DateTime<Utc>, String> {
    let time = DateTime::parse_from_rfc3339(raw)
        .map_err(|_| format!("time {raw:?} is not RFC 3339"))?
        .with_timezone(&Utc);
    // Digits below the microsecond are not covered by any hash.
    if !is_micros(time) {
        return Err(format!("time {raw:?} is finer than a microsecond"));
    }
    Ok(time)
}

fn parse_hex<const N: usize>(field: &str, raw: &str) -> Result<[u8; N], String> {
    let mut bytes = [0u8; N];
    hex::decode_to_slice(raw, &mut bytes)
        .map_err(|_| format!("`{field}` must be {} hex digits", N * 2))?;
    Ok(bytes)
}

/// The verification of one organization's chain in an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainVerification {
    pub organization_id: Option<Uuid>,
    pub report: VerifyReport,
}

/// The verification of a whole export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportVerification {
    pub ok: bool,
    /// One per organization, platform chain first, then by id.
    pub chains: Vec<ChainVerification>,
}

impl ExportVerification {
    /// The first chain that failed.
    pub fn first_failure(&self) -> Option<&ChainVerification> {
        self.chains.iter().find(|chain| !chain.report.ok)
    }
}

/// Verifies each organization's entries and checkpoints in `export`, in
/// file order, from that organization's first exported entry on (see the
/// module documentation for what a partial export can prove). An
/// organization with checkpoints but no entries reports them as missing.
pub fn verify_export(export: &Export, verifier: &CheckpointVerifier) -> ExportVerification {
    type Group<'a> = (Vec<&'a AuditEntry>, Vec<&'a Checkpoint>);
    let mut groups: BTreeMap<Option<Uuid>, Group<'_>> = BTreeMap::new();
    for entry in &export.entries {
        groups
            .entry(entry.organization_id)
            .or_default()
            .0
            .push(entry);
    }
    for checkpoint in &export.checkpoints {
        groups
            .entry(checkpoint.organization_id)
            .or_default()
            .1
            .push(checkpoint);
    }
    let chains: Vec<ChainVerification> = groups
        .into_iter()
        .map(|(organization_id, (entries, checkpoints))| {
            let expectation = match entries.first() {
                Some(first) => ChainExpectation::starting_at(first),
                None => ChainExpectation::genesis(organization_id),
            };
            ChainVerification {
                organization_id,
                report: verify_entries(&entries, &checkpoints, verifier, expectation),
            }
        })
        .collect();
    ExportVerification {
        ok: chains.iter().all(|chain| chain.report.ok),
        chains,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::checkpoint::CheckpointSigner;
    use crate::entry::{GENESIS_HASH, NewEntry, chain};
    use crate::verify::Problem;
    use chrono::TimeZone;
    use serde_json::json;

    fn entries(organization_id: Option<Uuid>, count: i64) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for sequence in 1..=count {
            let previous = out.last().map_or(GENESIS_HASH, |e| e.hash);
            let new = NewEntry {
                organization_id,
                time: Utc
                    .timestamp_opt(1_700_000_000 + sequence, 500_000_000)
                    .unwrap(),
                actor: Actor {
                    kind: ActorKind::ApiKey,
                    id: "key\"1".into(),
                },
                action: "claims.property.create".into(),
                resource_type: "property".into(),
                resource_id: format!("p{sequence}"),
                outcome: Outcome::Denied,
                request_id: "r".into(),
                trace_id: "t".into(),
                source_ip: "::1".into(),
                user_agent: "ua\n".into(),
                summary: json!({"z": [1, 2.5, null], "a": {"nested": "é"}}),
            };
            out.push(chain(new, sequence, previous));
        }
        out
    }

    fn text(export: &Export) -> String {
        let mut out = Vec::new();
        write_export(&mut out, export).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn lines_look_as_documented() {
        let entry = &entries(None, 1)[0];
        let line = to_json_line(entry);
        assert!(line.starts_with(r#"{"type":"entry","organization_id":null,"sequence":1,"time":"2023-11-14T22:13:21.500000Z","actor":{"kind":"api_key""#), "{line}");
        assert!(line.ends_with(&format!(r#""hash":"{}"}}"#, hex::encode(entry.hash))));
        assert!(!line.contains('\n'));
    }

    #[test]
    fn round_trips() {
        let signer = CheckpointSigner::generate();
        let org = Some(Uuid::from_u128(9));
        let mut all = entries(org, 5);
        all.extend(entries(None, 3));
        let export = Export {
            checkpoints: vec![
                signer.checkpoint(&all[4], all[4].time),
                signer.checkpoint(&all[7], all[7].time),
            ],
            entries: all,
        };
        let reread = read_export(text(&export).as_bytes()).unwrap();
        assert_eq!(reread, export);
        let verification = verify_export(&reread, &signer.verifier());
        assert!(verification.ok, "{verification:?}");
        assert_eq!(verification.chains.len(), 2);
        assert_eq!(verification.chains[0].organization_id, None);
        assert_eq!(verification.chains[1].report.entries_checked, 5);
        assert_eq!(
            verification.chains[1].report.last_verified_checkpoint,
            Some(5)
        );
    }

    #[test]
    fn a_mid_chain_export_verifies_from_its_first_entry() {
        let signer = CheckpointSigner::generate();
        let all = entries(None, 10);
        let export = Export {
            entries: all[4..].to_vec(),
            checkpoints: vec![signer.checkpoint(&all[9], all[9].time)],
        };
        let verification = verify_export(&export, &signer.verifier());
        assert!(verification.ok);
        assert!(!verification.chains[0].report.start_anchored);
    }

    #[test]
    fn checkpoints_without_entries_are_missing_entries() {
        let signer = CheckpointSigner::generate();
        let all = entries(None, 10);
        let export = Export {
            entries: Vec::new(),
            checkpoints: vec![signer.checkpoint(&all[9], all[9].time)],
        };
        let verification = verify_export(&export, &signer.verifier());
        assert_eq!(
            verification.first_failure().unwrap().report.problem,
            Some(Problem::MissingEntries { from: 1, to: 10 })
        );
    }

    #[test]
    fn errors_name_the_line() {
        let export = Export {
            entries: entries(None, 3),
            checkpoints: Vec::new(),
        };
        let good = text(&export);
        let lines: Vec<&str> = good.lines().collect();

        let cases: Vec<(String, &str)> = vec![
            (
                format!("{}\n{{not json\n", lines[0]),
                "line 2: not a valid record",
            ),
            (
                format!("\n\n{}", lines[0].replace("\"entry\"", "\"entrie\"")),
                "line 3: `type`",
            ),
            (
                lines[0].replace("\"outcome\"", "\"extra\":1,\"outcome\""),
                "line 1: not a valid record: unknown field `extra`",
            ),
            (lines[0].replace(".500000Z", ".500000001Z"), "line 1: time"),
            (
                lines[0].replace("\"api_key\"", "\"robot\""),
                "line 1: unknown actor kind",
            ),
            (
                lines[0].replace("\"denied\"", "\"maybe\""),
                "line 1: unknown outcome",
            ),
            (
                lines[0].replace("\"hash\":\"", "\"hash\":\"zz"),
                "line 1: `hash` must be 64 hex digits",
            ),
            ("[1,2]".to_owned(), "line 1: not a JSON object"),
        ];
        for (input, expected) in cases {
            let error = read_export(input.as_bytes()).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{error} / {expected}");
        }
    }

    #[test]
    fn an_overlong_line_is_refused() {
        let long = "x".repeat(usize::try_from(MAX_LINE_BYTES).unwrap() + 1);
        let error = read_export(format!("\n{long}").as_bytes()).unwrap_err();
        assert!(matches!(error, ExportError::LineTooLong { line: 2 }));
    }
}
