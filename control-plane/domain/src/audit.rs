//! The audit event model (DESIGN §4.5): hash-chained events, their canonical encoding, offline
//! verification of a chain, and the content of signed checkpoints.
//!
//! Each event carries the hex SHA-256 of its predecessor (`prev_hash`; the first one carries
//! [`GENESIS_PREV_HASH`]), and its own hash covers every field including `prev_hash`. Altering,
//! removing or reordering an event therefore breaks the chain at that event or the next one, and
//! [`verify_chain`] names it. Cutting events off the *end* leaves a shorter valid chain; that is
//! what signed [`Checkpoint`]s catch ([`verify_checkpoint`]).
//!
//! Pure: time is passed in, signing happens elsewhere (an HSM key, via km-core); this module only
//! defines what is hashed and what is signed.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::TenantId;
use crate::rbac::{Denied, Grant};

/// `prev_hash` of the first event of a log: 64 zeros.
pub const GENESIS_PREV_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// Sequence number of the first event of a log.
pub const FIRST_SEQ: u64 = 1;

/// Domain-separation prefix of [`AuditEvent::canonical_bytes`]; a new encoding gets a new version.
const EVENT_DOMAIN: &[u8] = b"keymanager.audit.event.v1\0";
/// Domain-separation prefix of [`Checkpoint::signing_bytes`].
const CHECKPOINT_DOMAIN: &[u8] = b"keymanager.audit.checkpoint.v1\0";

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Done.
    Success,
    /// Refused by authorization or policy.
    Denied,
    /// Allowed but failed (HSM error, validation, conflict).
    Failed,
}

impl Outcome {
    /// Stable name, also the form that is hashed.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One audit record, as stored (data objects) and streamed (JSON lines).
///
/// `details` holds extra context (key label, algorithm, deny reason, ...). It must **never** contain a
/// secret, plaintext, password, token, TOTP seed or key material: the log is readable by auditors and
/// leaves the HSM as JSON lines. It is a sorted map so the encoding is deterministic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Position in the log, from [`FIRST_SEQ`], without gaps.
    pub seq: u64,
    /// When, in Unix seconds (from the caller's clock).
    pub time: u64,
    /// Who: a principal id such as `alice`, `tok_…` or `system:scheduler`.
    pub actor: String,
    /// The tenant concerned, if any.
    pub tenant: Option<TenantId>,
    /// What, e.g. an `Action` name such as `create_key`.
    pub action: String,
    /// What it was done to (key label, user id, ...), if anything.
    pub target: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The request id, to correlate with logs and the API response.
    pub request_id: String,
    /// Lowercase hex SHA-256 of the previous event ([`GENESIS_PREV_HASH`] for the first).
    pub prev_hash: String,
    /// Extra context; never secrets (see the type's documentation).
    #[serde(default)]
    pub details: BTreeMap<String, String>,
}

impl AuditEvent {
    /// The exact bytes that are hashed. Deterministic and unambiguous (length-prefixed), so an
    /// independent verifier can rebuild them from the JSON form:
    ///
    /// ```text
    /// "keymanager.audit.event.v1" 0x00
    /// u64 seq | u64 time | str actor | opt tenant | str action | opt target
    /// | str outcome | str request_id | str prev_hash
    /// | u64 number of details, then for each (sorted by key, bytewise): str key | str value
    ///
    /// u64 = 8 bytes big-endian; str = u64 byte length, then the UTF-8 bytes;
    /// opt = 0x00 when absent, or 0x01 then str
    /// ```
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(EVENT_DOMAIN);
        put_u64(&mut out, self.seq);
        put_u64(&mut out, self.time);
        put_str(&mut out, &self.actor);
        put_opt(&mut out, self.tenant.as_ref().map(TenantId::as_str));
        put_str(&mut out, &self.action);
        put_opt(&mut out, self.target.as_deref());
        put_str(&mut out, self.outcome.as_str());
        put_str(&mut out, &self.request_id);
        put_str(&mut out, &self.prev_hash);
        put_u64(&mut out, self.details.len() as u64);
        for (key, value) in &self.details {
            put_str(&mut out, key);
            put_str(&mut out, value);
        }
        out
    }

    /// SHA-256 of [`AuditEvent::canonical_bytes`]; the next event's `prev_hash` is its hex form.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.canonical_bytes()).into()
    }

    /// [`AuditEvent::hash`] as lowercase hex, the form `prev_hash` and checkpoints use.
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash())
    }
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_str(out: &mut Vec<u8>, value: &str) {
    put_u64(out, value.len() as u64);
    out.extend_from_slice(value.as_bytes());
}

fn put_opt(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        None => out.push(0),
        Some(value) => {
            out.push(1);
            put_str(out, value);
        }
    }
}

/// An event before it has a place in the chain: everything but `seq`, `time` and `prev_hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDraft {
    /// Who.
    pub actor: String,
    /// Which tenant, if any.
    pub tenant: Option<TenantId>,
    /// What.
    pub action: String,
    /// On what.
    pub target: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// Correlation id.
    pub request_id: String,
    /// Extra context; never secrets.
    pub details: BTreeMap<String, String>,
}

impl EventDraft {
    /// A draft with no tenant, target or details.
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        outcome: Outcome,
        request_id: impl Into<String>,
    ) -> Self {
        Self {
            actor: actor.into(),
            tenant: None,
            action: action.into(),
            target: None,
            outcome,
            request_id: request_id.into(),
            details: BTreeMap::new(),
        }
    }

    /// The record of an authorized action: actor, tenant and action come from the grant, so the audit
    /// names exactly what was allowed.
    pub fn for_grant(grant: &Grant, outcome: Outcome, request_id: impl Into<String>) -> Self {
        Self {
            tenant: grant.tenant().cloned(),
            ..Self::new(
                grant.principal().as_str(),
                grant.action().as_str(),
                outcome,
                request_id,
            )
        }
    }

    /// The record of a refused request (DESIGN: every denied request is audited), with the reason
    /// code in `details["reason"]`.
    pub fn for_denial(denied: &Denied, request_id: impl Into<String>) -> Self {
        Self {
            tenant: denied.tenant().cloned(),
            ..Self::new(
                denied.principal().as_str(),
                denied.action().as_str(),
                Outcome::Denied,
                request_id,
            )
        }
        .with_detail("reason", denied.reason().code())
    }

    /// Sets the tenant.
    pub fn with_tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = Some(tenant);
        self
    }

    /// Sets the target.
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Adds one detail. Never pass a secret.
    pub fn with_detail(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }
}

/// A position in a chain: the `seq` and `prev_hash` the next event must carry. Persist it as the
/// log's head; start verification of a log segment from it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChainAnchor {
    /// The next event's `seq`.
    pub next_seq: u64,
    /// The next event's `prev_hash`.
    pub prev_hash: String,
}

impl ChainAnchor {
    /// The start of a log.
    pub fn genesis() -> Self {
        Self {
            next_seq: FIRST_SEQ,
            prev_hash: GENESIS_PREV_HASH.to_owned(),
        }
    }

    /// The position right after `event`.
    pub fn after(event: &AuditEvent) -> Self {
        Self {
            next_seq: event.seq.wrapping_add(1),
            prev_hash: event.hash_hex(),
        }
    }

    /// The position right after the last event a checkpoint covers (to verify only what follows it).
    pub fn after_checkpoint(checkpoint: &Checkpoint) -> Self {
        Self {
            next_seq: checkpoint.up_to_seq.wrapping_add(1),
            prev_hash: checkpoint.head_hash.clone(),
        }
    }
}

impl Default for ChainAnchor {
    fn default() -> Self {
        Self::genesis()
    }
}

/// The writer's side of the chain: hands out `seq` and `prev_hash`.
///
/// `append` advances at once. Audit is fail-closed, so when storing the returned event fails the
/// caller must not keep the advanced chain: use [`AuditChain::prepare`] and
/// [`AuditChain::accept`] once the event is durable (or restore a clone).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditChain {
    head: ChainAnchor,
}

impl AuditChain {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Continues a log from a stored head.
    pub fn resume(head: ChainAnchor) -> Self {
        Self { head }
    }

    /// Where the next event goes.
    pub fn head(&self) -> &ChainAnchor {
        &self.head
    }

    /// Builds the next event without advancing the chain.
    pub fn prepare(&self, draft: EventDraft, time: u64) -> AuditEvent {
        AuditEvent {
            seq: self.head.next_seq,
            time,
            actor: draft.actor,
            tenant: draft.tenant,
            action: draft.action,
            target: draft.target,
            outcome: draft.outcome,
            request_id: draft.request_id,
            prev_hash: self.head.prev_hash.clone(),
            details: draft.details,
        }
    }

    /// Builds the next event and advances the chain past it.
    pub fn append(&mut self, draft: EventDraft, time: u64) -> AuditEvent {
        let event = self.prepare(draft, time);
        self.head = ChainAnchor::after(&event);
        event
    }

    /// Advances past `event` if it is the next link (e.g. one this replica prepared and stored, or
    /// one another replica wrote); otherwise says where the chain breaks and stays put.
    pub fn accept(&mut self, event: &AuditEvent) -> Result<(), ChainBreak> {
        if event.seq != self.head.next_seq {
            return Err(ChainBreak::SeqMismatch {
                expected: self.head.next_seq,
                found: event.seq,
            });
        }
        if event.prev_hash != self.head.prev_hash {
            return Err(ChainBreak::LinkBroken { seq: event.seq });
        }
        self.head = ChainAnchor::after(event);
        Ok(())
    }
}

/// Where and how a chain is broken. Always names a `seq`, so an operator knows which record to look at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// An event is missing, duplicated or out of order: the log jumps from `expected` to `found`.
    #[error(
        "expected event {expected} but found event {found}: events were removed, reordered or duplicated"
    )]
    SeqMismatch {
        /// The seq that should have come next.
        expected: u64,
        /// The seq that did.
        found: u64,
    },
    /// Event `seq` does not chain to its predecessor: the predecessor (`seq - 1`) was altered or
    /// removed, or this event's `prev_hash` was altered.
    #[error("event {} was altered or removed: event {seq} does not chain to it", .seq.wrapping_sub(1))]
    LinkBroken {
        /// The first event whose `prev_hash` does not match.
        seq: u64,
    },
    /// The first event does not continue from the genesis (or the given anchor): events before it
    /// were removed, or it was altered.
    #[error(
        "event {seq} does not continue the log from where it must start: earlier events were removed or event {seq} was altered"
    )]
    BadStart {
        /// The first event's seq.
        seq: u64,
    },
}

impl ChainBreak {
    /// The seq of the position where verification stopped (the event that should have been there, or
    /// the one that does not chain).
    pub fn detected_at(&self) -> u64 {
        match self {
            ChainBreak::SeqMismatch { expected, .. } => *expected,
            ChainBreak::LinkBroken { seq } | ChainBreak::BadStart { seq } => *seq,
        }
    }

    /// The first event that cannot be trusted: the missing one for a gap, the predecessor for a
    /// broken link.
    pub fn first_bad_seq(&self) -> u64 {
        match self {
            ChainBreak::SeqMismatch { expected, .. } => *expected,
            ChainBreak::LinkBroken { seq } => seq.wrapping_sub(1),
            ChainBreak::BadStart { seq } => *seq,
        }
    }
}

/// What a verified chain (segment) contains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainSummary {
    /// Number of events verified.
    pub count: u64,
    /// The first event's seq, if any.
    pub first_seq: Option<u64>,
    /// The last event's seq, if any.
    pub last_seq: Option<u64>,
    /// Where the verified chain ends: the next seq and the last event's hash (what a checkpoint over
    /// it would sign, and where the next segment must continue).
    pub head: ChainAnchor,
}

/// Verifies a whole log offline, from the genesis. See [`verify_chain_from`].
pub fn verify_chain(events: &[AuditEvent]) -> Result<ChainSummary, ChainBreak> {
    verify_chain_from(ChainAnchor::genesis(), events)
}

/// Verifies a log segment that must continue from `anchor` (e.g. [`ChainAnchor::after_checkpoint`]):
/// consecutive `seq`s and each `prev_hash` equal to the hash of the event before. Stops at the first
/// break. Removal of events from the end is not visible here; use [`verify_checkpoint`] for that.
pub fn verify_chain_from(
    anchor: ChainAnchor,
    events: &[AuditEvent],
) -> Result<ChainSummary, ChainBreak> {
    let mut chain = AuditChain::resume(anchor);
    for (index, event) in events.iter().enumerate() {
        match chain.accept(event) {
            Ok(()) => {}
            Err(ChainBreak::LinkBroken { seq }) if index == 0 => {
                return Err(ChainBreak::BadStart { seq });
            }
            Err(other) => return Err(other),
        }
    }
    Ok(ChainSummary {
        count: events.len() as u64,
        first_seq: events.first().map(|event| event.seq),
        last_seq: events.last().map(|event| event.seq),
        head: chain.head,
    })
}

/// A signed statement "the log up to `up_to_seq` ends in `head_hash`", made periodically with an
/// HSM key so that truncation or wholesale rewriting of the log can be detected offline.
///
/// The domain only defines what is signed ([`Checkpoint::signing_bytes`]); km-core signs and the
/// verifier checks the signature with the key's public part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Last event covered (0 for an empty log).
    pub up_to_seq: u64,
    /// Hex hash of that event ([`GENESIS_PREV_HASH`] for an empty log).
    pub head_hash: String,
    /// When the checkpoint was made, Unix seconds.
    pub time: u64,
    /// Signature over [`Checkpoint::signing_bytes`]; empty until signed. Hex in JSON.
    #[serde(with = "hex")]
    pub signature: Vec<u8>,
    /// Label of the HSM key that signs, so the verifier knows which public key to use.
    pub key_label: String,
}

impl Checkpoint {
    /// An unsigned checkpoint over everything before `head` (the chain's current head or a
    /// [`ChainSummary::head`]).
    pub fn unsigned(head: &ChainAnchor, time: u64, key_label: impl Into<String>) -> Self {
        Self {
            up_to_seq: head.next_seq.wrapping_sub(1),
            head_hash: head.prev_hash.clone(),
            time,
            signature: Vec::new(),
            key_label: key_label.into(),
        }
    }

    /// The bytes the HSM key signs: everything but the signature, length-prefixed like
    /// [`AuditEvent::canonical_bytes`]:
    ///
    /// ```text
    /// "keymanager.audit.checkpoint.v1" 0x00 | u64 up_to_seq | str head_hash | u64 time | str key_label
    /// ```
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CHECKPOINT_DOMAIN.len() + 128);
        out.extend_from_slice(CHECKPOINT_DOMAIN);
        put_u64(&mut out, self.up_to_seq);
        put_str(&mut out, &self.head_hash);
        put_u64(&mut out, self.time);
        put_str(&mut out, &self.key_label);
        out
    }
}

/// A log disagrees with a (signature-checked) checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointMismatch {
    /// The checkpoint covers events the log does not have: events were removed from the end (or the
    /// log segment given does not reach that far).
    #[error(
        "checkpoint covers event {up_to_seq} but the log ends at event {last_seq}: events were removed from the end"
    )]
    Truncated {
        /// What the checkpoint covers.
        up_to_seq: u64,
        /// Where the log ends (0 when empty).
        last_seq: u64,
    },
    /// The checkpoint is about events before the segment that was given.
    #[error(
        "checkpoint covers event {up_to_seq}, before this log segment (which starts at event {first_seq})"
    )]
    BeforeSegment {
        /// What the checkpoint covers.
        up_to_seq: u64,
        /// Where the segment starts.
        first_seq: u64,
    },
    /// The event the checkpoint covers hashes differently: it or an earlier one was altered (and the
    /// chain re-hashed to hide it).
    #[error("event {seq} does not match the signed checkpoint: the log up to it was altered")]
    HeadMismatch {
        /// The checkpoint's `up_to_seq`.
        seq: u64,
    },
}

/// Checks a log segment that [`verify_chain_from`] accepted against a checkpoint whose signature the
/// caller has verified: the event at `up_to_seq` must hash to `head_hash`. A checkpoint at the
/// position just before the segment is checked against the first event's `prev_hash`.
pub fn verify_checkpoint(
    events: &[AuditEvent],
    checkpoint: &Checkpoint,
) -> Result<(), CheckpointMismatch> {
    let up_to_seq = checkpoint.up_to_seq;
    let last_seq = events.last().map_or(0, |event| event.seq);
    let first_seq = events.first().map_or(FIRST_SEQ, |event| event.seq);
    let observed = if let Some(event) = events.iter().find(|event| event.seq == up_to_seq) {
        event.hash_hex()
    } else if up_to_seq.wrapping_add(1) == first_seq {
        match events.first() {
            Some(first) => first.prev_hash.clone(),
            None => GENESIS_PREV_HASH.to_owned(),
        }
    } else if up_to_seq > last_seq {
        return Err(CheckpointMismatch::Truncated {
            up_to_seq,
            last_seq,
        });
    } else {
        return Err(CheckpointMismatch::BeforeSegment {
            up_to_seq,
            first_seq,
        });
    };
    if observed == checkpoint.head_hash {
        Ok(())
    } else {
        Err(CheckpointMismatch::HeadMismatch { seq: up_to_seq })
    }
}

#[cfg(test)]
mod tests;
