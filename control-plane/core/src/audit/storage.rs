//! How the audit log looks on the HSM: object names and the stored batch format. Kept apart from
//! the protocol that appends to it.
//!
//! - `kms.audit.<first seq, 20 digits>`: one *batch* of consecutive events, `{"schema":1,
//!   "events":[...]}`, created with create-if-absent and never replaced. The name carries the
//!   first event's seq, so the object holding event `n` is found by walking from the genesis or
//!   from a known batch start; the zero padding makes names sort in log order.
//! - `kms.audit.checkpoint.<up_to_seq, 20 digits>`: one signed [`Checkpoint`] as JSON.
//!
//! The record kind `audit` is therefore reserved for the audit log: the state store must never
//! hold records of that kind.

use km_domain::audit::{AuditEvent, Checkpoint};
use serde::{Deserialize, Serialize};

use super::AuditError;
use crate::DataObjectName;

/// Schema of a stored batch. Readers refuse other values rather than guess.
const BATCH_SCHEMA: u32 = 1;
/// Record-kind part of every audit object name.
const KIND: &str = "audit";
/// `kms.audit.` — prefix of every audit object.
const PREFIX: &str = "kms.audit.";
/// `kms.audit.checkpoint.` — prefix of checkpoint objects.
const CHECKPOINT_PREFIX: &str = "kms.audit.checkpoint.";

/// A stored batch of events.
#[derive(Debug, Serialize, Deserialize)]
struct Batch {
    schema: u32,
    events: Vec<AuditEvent>,
}

/// What an audit object name denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuditObject {
    /// A batch whose first event has this seq.
    Events(u64),
    /// A checkpoint covering events up to this seq.
    Checkpoint(u64),
}

/// The object holding the batch that starts at `first_seq`.
pub(crate) fn event_object(first_seq: u64) -> DataObjectName {
    DataObjectName::record(KIND, &format!("{first_seq:020}"))
}

/// The object holding the checkpoint over events up to `up_to_seq`.
pub(crate) fn checkpoint_object(up_to_seq: u64) -> DataObjectName {
    DataObjectName::record(KIND, &format!("checkpoint.{up_to_seq:020}"))
}

/// Classifies a data-object name; `None` for anything that is not an audit object.
pub(crate) fn parse_name(name: &DataObjectName) -> Option<AuditObject> {
    let digits = |text: &str| {
        (text.len() == 20 && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse::<u64>().ok())
            .flatten()
    };
    let name = name.as_str();
    if let Some(rest) = name.strip_prefix(CHECKPOINT_PREFIX) {
        digits(rest).map(AuditObject::Checkpoint)
    } else {
        name.strip_prefix(PREFIX)
            .and_then(digits)
            .map(AuditObject::Events)
    }
}

/// The stored bytes of a batch.
pub(crate) fn encode_batch(events: &[AuditEvent]) -> Result<Vec<u8>, String> {
    #[derive(Serialize)]
    struct BatchRef<'a> {
        schema: u32,
        events: &'a [AuditEvent],
    }
    serde_json::to_vec(&BatchRef {
        schema: BATCH_SCHEMA,
        events,
    })
    .map_err(|error| error.to_string())
}

/// Parses a batch as stored, without judging its content (export passes whatever is stored to
/// the offline verifier, which names what is wrong).
pub(crate) fn decode_batch(raw: &[u8]) -> Result<Vec<AuditEvent>, String> {
    let batch: Batch =
        serde_json::from_slice(raw).map_err(|error| format!("not an audit batch: {error}"))?;
    if batch.schema != BATCH_SCHEMA {
        return Err(format!(
            "unknown audit batch schema {} (this release reads {BATCH_SCHEMA})",
            batch.schema
        ));
    }
    Ok(batch.events)
}

/// Parses a batch the writer is about to chain onto: it must be non-empty and start at the seq
/// its name says, with consecutive seqs (the chain check itself is the caller's).
pub(crate) fn decode_batch_at(
    name: &DataObjectName,
    first_seq: u64,
    raw: &[u8],
) -> Result<Vec<AuditEvent>, AuditError> {
    let damaged = |reason: String| AuditError::Damaged {
        object: name.to_string(),
        reason,
    };
    let events = decode_batch(raw).map_err(damaged)?;
    if events.is_empty() {
        return Err(damaged("the batch holds no events".to_owned()));
    }
    for (offset, event) in (0u64..).zip(&events) {
        let expected = first_seq.saturating_add(offset);
        if event.seq != expected {
            return Err(damaged(format!(
                "expected event {expected} in this batch but found event {}",
                event.seq
            )));
        }
    }
    Ok(events)
}

/// The stored bytes of a checkpoint.
pub(crate) fn encode_checkpoint(checkpoint: &Checkpoint) -> Result<Vec<u8>, String> {
    serde_json::to_vec(checkpoint).map_err(|error| error.to_string())
}

/// Parses a stored checkpoint.
pub(crate) fn decode_checkpoint(raw: &[u8]) -> Result<Checkpoint, String> {
    serde_json::from_slice(raw).map_err(|error| format!("not an audit checkpoint: {error}"))
}
