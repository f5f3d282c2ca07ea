//! The export format (JSON lines) and its offline verification.
//!
//! One JSON object per line, told apart by `"type"`:
//! - `{"type":"key","label":...,"algorithm":"ECDSA_P256_SHA256","public_key":<base64 SPKI DER>}`
//!   — the checkpoint key's public part as the HSM reported it at export time;
//! - `{"type":"event", <AuditEvent fields>}` — in seq order;
//! - `{"type":"checkpoint", <Checkpoint fields, signature hex>}`.
//!
//! [`verify_export`] needs no HSM and no network: it rebuilds every event hash
//! ([`verify_chain_from`]), checks every checkpoint signature with a public key (pinned by the
//! operator, or else the one in the export), checks each checkpoint against the events
//! ([`verify_checkpoint`]) and reports what no checkpoint covers. The signature check itself is a
//! [`SignatureVerifier`] supplied by the caller, so this crate stays free of crypto libraries
//! (the `keymanager` binary plugs in aws-lc-rs).

use std::fmt;

use km_domain::audit::{
    AuditEvent, ChainAnchor, ChainBreak, Checkpoint, CheckpointMismatch, FIRST_SEQ,
    verify_chain_from, verify_checkpoint,
};
use serde::{Deserialize, Serialize};

/// Algorithm name written into the key line: ECDSA on P-256 over SHA-256, DER signatures.
pub const CHECKPOINT_SIGNATURE_ALGORITHM: &str = "ECDSA_P256_SHA256";

/// The `"type":"key"` line: which key signs the checkpoints, and its public part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportKey {
    /// HSM label of the key (checkpoints name it in `key_label`).
    pub label: String,
    /// [`CHECKPOINT_SIGNATURE_ALGORITHM`].
    pub algorithm: String,
    /// DER `SubjectPublicKeyInfo`, base64 (standard) in JSON.
    #[serde(with = "b64")]
    pub public_key: Vec<u8>,
}

/// One line of an export, for reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ExportLine {
    /// The checkpoint key.
    Key(ExportKey),
    /// An event.
    Event(AuditEvent),
    /// A signed checkpoint.
    Checkpoint(Checkpoint),
}

/// One line of an export or stream, for writing without copying.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(crate) enum ExportLineRef<'a> {
    Key(&'a ExportKey),
    Event(&'a AuditEvent),
    Checkpoint(&'a Checkpoint),
}

/// Everything needed to check a log offline: made by
/// [`AuditLog::export`](super::AuditLog::export).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditExport {
    /// The checkpoint key.
    pub key: ExportKey,
    /// Events in seq order, exactly as stored (including any tampering — that is the point).
    pub events: Vec<AuditEvent>,
    /// Checkpoints in `up_to_seq` order; the last one covers the last event.
    pub checkpoints: Vec<Checkpoint>,
}

impl AuditExport {
    /// The export as JSON lines (key, then events with each checkpoint after the event it
    /// covers), each line ending in `\n`.
    pub fn to_json_lines(&self) -> Result<String, serde_json::Error> {
        let mut lines = vec![ExportLineRef::Key(&self.key)];
        let mut checkpoints = self.checkpoints.iter().peekable();
        for event in &self.events {
            while let Some(checkpoint) = checkpoints.next_if(|c| c.up_to_seq < event.seq) {
                lines.push(ExportLineRef::Checkpoint(checkpoint));
            }
            lines.push(ExportLineRef::Event(event));
        }
        lines.extend(checkpoints.map(ExportLineRef::Checkpoint));
        let mut out = String::new();
        for line in &lines {
            out.push_str(&serde_json::to_string(line)?);
            out.push('\n');
        }
        Ok(out)
    }
}

/// Checks one ECDSA signature. Implemented outside km-core with a real crypto library.
pub trait SignatureVerifier {
    /// Whether `signature_der` (X9.62 DER) is a valid ECDSA P-256 / SHA-256 signature of
    /// `message` under `public_key_spki_der`. A key that cannot be parsed is simply "not valid".
    fn verify_ecdsa_p256_sha256(
        &self,
        public_key_spki_der: &[u8],
        message: &[u8],
        signature_der: &[u8],
    ) -> bool;
}

/// How strict [`verify_export`] is, and which key it trusts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// The checkpoint key's SPKI DER as the operator knows it independently. Without it the key
    /// in the export is used — which proves integrity only against someone who could not also
    /// replace that key line (e.g. a rewritten export).
    pub pinned_public_key: Option<Vec<u8>>,
    /// Fail when events follow the last signed checkpoint (a live stream has such a tail; an
    /// export made by keymanager has none).
    pub require_full_coverage: bool,
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events checked.
    pub events: u64,
    /// First and last seq, if any events.
    pub first_seq: Option<u64>,
    /// Last seq.
    pub last_seq: Option<u64>,
    /// Checkpoints whose signature and content were verified.
    pub checkpoints: u64,
    /// The highest `up_to_seq` among them.
    pub last_checkpoint: Option<u64>,
    /// The key label the checkpoints name.
    pub key_label: Option<String>,
    /// The public key the signatures were checked with (SPKI DER).
    pub public_key: Option<Vec<u8>>,
    /// Whether that key was pinned by the caller (rather than taken from the export).
    pub key_pinned: bool,
    /// The export carried a different key than the pinned one (the pinned one was used).
    pub exported_key_differs: bool,
    /// Events after the last checkpoint `(first, last)`: their hashes chain, but nothing signed
    /// vouches for them, so the tail could have been cut off or its last event altered.
    pub uncovered: Option<(u64, u64)>,
}

/// Why an export does not verify. Every variant that concerns an event names its seq.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyFailure {
    /// A line is not JSON of the export format.
    #[error("line {line} is not a valid audit export line{}: {reason}", seq_note(*.seq))]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// The `seq` the line claims, if it has one.
        seq: Option<u64>,
        /// Parser message.
        reason: String,
    },
    /// The export carries two different keys.
    #[error("line {line} names a second, different checkpoint key")]
    ConflictingKeys {
        /// 1-based line number of the second key.
        line: usize,
    },
    /// The hash chain is broken; `first_bad_seq` is the first event that cannot be trusted.
    #[error(transparent)]
    Chain {
        /// Where and how.
        source: ChainBreak,
    },
    /// The events start after the genesis, but no checkpoint vouches for where they start.
    #[error(
        "the export starts at event {first_seq}, and no valid checkpoint covers event {}: events before it were removed, or it was altered",
        .first_seq.saturating_sub(1)
    )]
    NoAnchor {
        /// The first event's seq.
        first_seq: u64,
    },
    /// Checkpoints to check but no key to check them with.
    #[error(
        "the export has checkpoints but no public key; pass the checkpoint key with --public-key"
    )]
    NoKey,
    /// A checkpoint names another key than the export's key line.
    #[error(
        "the checkpoint over events up to {up_to_seq} names key {found}, but the export's key is {expected}"
    )]
    WrongKey {
        /// The checkpoint's `up_to_seq`.
        up_to_seq: u64,
        /// The key line's label.
        expected: String,
        /// The checkpoint's label.
        found: String,
    },
    /// A checkpoint signature does not verify.
    #[error(
        "the checkpoint over events up to {up_to_seq} has an invalid signature: the checkpoint was altered or not made by the audit key"
    )]
    BadSignature {
        /// The checkpoint's `up_to_seq`.
        up_to_seq: u64,
    },
    /// A correctly signed checkpoint disagrees with the events.
    #[error("{source}")]
    Checkpoint {
        /// The checkpoint's `up_to_seq`.
        up_to_seq: u64,
        /// How.
        #[source]
        source: CheckpointMismatch,
    },
    /// Events, but no valid checkpoint at all: nothing authenticates them.
    #[error(
        "none of the {events} events is covered by a signed checkpoint: the log cannot be authenticated"
    )]
    Unsigned {
        /// Number of events.
        events: u64,
    },
    /// Events after the last checkpoint, and full coverage was required.
    #[error(
        "events {first} to {last} are not covered by a signed checkpoint: they could have been altered or cut off"
    )]
    Uncovered {
        /// First uncovered seq.
        first: u64,
        /// Last uncovered seq.
        last: u64,
    },
}

fn seq_note(seq: Option<u64>) -> String {
    seq.map(|seq| format!(" (event {seq})")).unwrap_or_default()
}

impl VerifyFailure {
    /// The event the failure points at, when it points at one: the first untrustworthy event of a
    /// broken chain, the event a checkpoint disagrees with, the first uncovered event.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Self::Malformed { seq, .. } => *seq,
            Self::Chain { source } => Some(source.first_bad_seq()),
            Self::NoAnchor { first_seq } => Some(*first_seq),
            Self::Checkpoint { source, .. } => Some(match source {
                CheckpointMismatch::HeadMismatch { seq } => *seq,
                CheckpointMismatch::Truncated { last_seq, .. } => last_seq.saturating_add(1),
                CheckpointMismatch::BeforeSegment { first_seq, .. } => *first_seq,
            }),
            Self::Uncovered { first, .. } => Some(*first),
            Self::ConflictingKeys { .. }
            | Self::NoKey
            | Self::WrongKey { .. }
            | Self::BadSignature { .. }
            | Self::Unsigned { .. } => None,
        }
    }
}

/// Parsed content of an export.
struct Parsed {
    key: Option<ExportKey>,
    events: Vec<AuditEvent>,
    checkpoints: Vec<Checkpoint>,
}

fn parse(text: &str) -> Result<Parsed, VerifyFailure> {
    let mut parsed = Parsed {
        key: None,
        events: Vec::new(),
        checkpoints: Vec::new(),
    };
    for (index, line) in text.lines().enumerate() {
        let number = index.saturating_add(1);
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<ExportLine>(line) {
            Ok(ExportLine::Key(key)) => match &parsed.key {
                Some(existing) if *existing != key => {
                    return Err(VerifyFailure::ConflictingKeys { line: number });
                }
                _ => parsed.key = Some(key),
            },
            Ok(ExportLine::Event(event)) => parsed.events.push(event),
            Ok(ExportLine::Checkpoint(checkpoint)) => parsed.checkpoints.push(checkpoint),
            Err(error) => {
                let seq = serde_json::from_str::<serde_json::Value>(line)
                    .ok()
                    .and_then(|value| value.get("seq").and_then(serde_json::Value::as_u64));
                return Err(VerifyFailure::Malformed {
                    line: number,
                    seq,
                    reason: error.to_string(),
                });
            }
        }
    }
    parsed
        .checkpoints
        .sort_by_key(|checkpoint| checkpoint.up_to_seq);
    Ok(parsed)
}

/// Verifies an export (or a captured stream) offline. Order of checks: format; the chain from
/// the genesis (or from a signed checkpoint right before the first event); every checkpoint's
/// key, signature and agreement with the events; coverage. The first failure is returned and
/// names the event (see [`VerifyFailure::seq`]).
pub fn verify_export(
    text: &str,
    options: &VerifyOptions,
    verifier: &dyn SignatureVerifier,
) -> Result<VerifyReport, VerifyFailure> {
    let Parsed {
        key,
        events,
        checkpoints,
    } = parse(text)?;
    let public_key = options
        .pinned_public_key
        .clone()
        .or_else(|| key.as_ref().map(|key| key.public_key.clone()));
    let exported_key_differs = match (&options.pinned_public_key, &key) {
        (Some(pinned), Some(key)) => *pinned != key.public_key,
        _ => false,
    };
    let signature_ok = |checkpoint: &Checkpoint| -> Result<(), VerifyFailure> {
        let public_key = public_key.as_deref().ok_or(VerifyFailure::NoKey)?;
        if let Some(key) = &key
            && checkpoint.key_label != key.label
        {
            return Err(VerifyFailure::WrongKey {
                up_to_seq: checkpoint.up_to_seq,
                expected: key.label.clone(),
                found: checkpoint.key_label.clone(),
            });
        }
        if verifier.verify_ecdsa_p256_sha256(
            public_key,
            &checkpoint.signing_bytes(),
            &checkpoint.signature,
        ) {
            Ok(())
        } else {
            Err(VerifyFailure::BadSignature {
                up_to_seq: checkpoint.up_to_seq,
            })
        }
    };

    // 1. The chain, from where it must start.
    let anchor = match events.first() {
        Some(first) if first.seq != FIRST_SEQ => {
            let before = first.seq.saturating_sub(1);
            let checkpoint = checkpoints
                .iter()
                .find(|checkpoint| checkpoint.up_to_seq == before)
                .ok_or(VerifyFailure::NoAnchor {
                    first_seq: first.seq,
                })?;
            signature_ok(checkpoint)?;
            ChainAnchor::after_checkpoint(checkpoint)
        }
        _ => ChainAnchor::genesis(),
    };
    let summary =
        verify_chain_from(anchor, &events).map_err(|source| VerifyFailure::Chain { source })?;

    // 2. Every checkpoint: key, signature, agreement with the events.
    let mut verified = 0u64;
    let mut last_checkpoint = None;
    for checkpoint in &checkpoints {
        signature_ok(checkpoint)?;
        match verify_checkpoint(&events, checkpoint) {
            Ok(()) => {}
            // A checkpoint about events before this (partial) export says nothing about it.
            Err(CheckpointMismatch::BeforeSegment { .. }) => continue,
            Err(source) => {
                return Err(VerifyFailure::Checkpoint {
                    up_to_seq: checkpoint.up_to_seq,
                    source,
                });
            }
        }
        verified = verified.saturating_add(1);
        last_checkpoint = Some(checkpoint.up_to_seq);
    }

    // 3. Coverage.
    let uncovered = match (summary.last_seq, last_checkpoint) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(VerifyFailure::Unsigned {
                events: summary.count,
            });
        }
        (Some(last), Some(covered)) if last > covered => Some((covered.saturating_add(1), last)),
        (Some(_), Some(_)) => None,
    };
    if let (Some((first, last)), true) = (uncovered, options.require_full_coverage) {
        return Err(VerifyFailure::Uncovered { first, last });
    }

    Ok(VerifyReport {
        events: summary.count,
        first_seq: summary.first_seq,
        last_seq: summary.last_seq,
        checkpoints: verified,
        last_checkpoint,
        key_label: key
            .map(|key| key.label)
            .or_else(|| checkpoints.first().map(|c| c.key_label.clone())),
        public_key,
        key_pinned: options.pinned_public_key.is_some(),
        exported_key_differs,
        uncovered,
    })
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.first_seq, self.last_seq) {
            (Some(first), Some(last)) => write!(
                f,
                "{} events ({first} to {last}) chain correctly; ",
                self.events
            )?,
            _ => f.write_str("no events; ")?,
        }
        let plural = if self.checkpoints == 1 { "" } else { "s" };
        write!(f, "{} signed checkpoint{plural} verified", self.checkpoints)?;
        if let Some(last) = self.last_checkpoint {
            write!(f, " (the last covers event {last})")?;
        }
        Ok(())
    }
}

/// Base64 (standard) for byte fields of the key line.
mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}
