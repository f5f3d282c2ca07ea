//! The metadata record keymanager keeps beside each managed key (`kms.key.<id>` on the management
//! partition, plain): what the HSM does not know — owner, description, tags, crypto-period,
//! rotation schedule, versions with their lifecycle states, the destruction schedule and a short
//! history — plus the spec and attributes the key was created with. The HSM stays the source of
//! truth for the key itself (its material, policy and blocked flag).
//!
//! A managed key is an *alias* (its base label) over one or more *versions*: version 1 is the HSM
//! key with the base label itself, rotation `N` creates the HSM key `<base>_v<N>`.

use std::fmt::Write as _;

use km_domain::{
    Algorithm, DestructionSchedule, KeyAttributes, KeySpec, KeySpecError, KeyState, LifecycleEvent,
    SkaAction, SkaPolicy, TenantId,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::KeyError;

/// State-store kind of key metadata records.
pub const KEY_RECORD_KIND: &str = "key";
/// Labels with this prefix are keymanager's own (seal and signing keys) and never shown.
pub const RESERVED_LABEL_PREFIX: &str = "kms.";
/// Longest label keymanager creates (leaves room for `_v<N>` within the HSM's 256 characters and
/// keeps the record id within the store's 200).
pub const MAX_LABEL_LEN: usize = 100;
/// How many history entries a record keeps (the audit log is the full record).
pub const MAX_HISTORY: usize = 50;
/// Most tags per key.
pub const MAX_TAGS: usize = 32;
/// Longest tag.
pub const MAX_TAG_LEN: usize = 64;
/// Longest owner.
pub const MAX_OWNER_LEN: usize = 200;
/// Longest description.
pub const MAX_DESCRIPTION_LEN: usize = 1000;
/// Longest reason given for a lifecycle change.
pub const MAX_REASON_LEN: usize = 256;
/// Shortest rotation interval (one hour).
pub const MIN_ROTATION_INTERVAL_SECS: u64 = 60 * 60;
/// Longest rotation interval and grace period (ten years).
pub const MAX_PERIOD_SECS: u64 = 10 * 366 * 24 * 60 * 60;
/// Grace period of a rotation when the key has no rotation schedule (seven days).
pub const DEFAULT_ROTATION_GRACE_SECS: u64 = 7 * 24 * 60 * 60;

/// The algorithm with size or curve, as created or as the HSM reported it (kept as text so that
/// an adopted key of an algorithm keymanager cannot create still has a record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSpec {
    /// TSB algorithm name (`EC`, `RSA`, `ML-DSA-65`, ...).
    pub algorithm: String,
    /// Key size in bits, when the algorithm takes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_size: Option<u32>,
    /// Curve OID of EC/ED keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve_oid: Option<String>,
}

impl StoredSpec {
    /// The stored form of a validated spec.
    pub fn of(spec: &KeySpec) -> Self {
        Self {
            algorithm: spec.algorithm().as_tsb_str().to_owned(),
            key_size: spec.key_size(),
            curve_oid: spec.curve_oid().map(str::to_owned),
        }
    }

    /// The spec to create another version with; an error for algorithms keymanager cannot
    /// create.
    pub fn to_spec(&self) -> Result<KeySpec, KeySpecError> {
        KeySpec::from_reported(&self.algorithm, self.key_size, self.curve_oid.as_deref())
    }

    /// The algorithm, if keymanager knows it.
    pub fn known_algorithm(&self) -> Option<Algorithm> {
        Algorithm::parse(&self.algorithm).ok()
    }
}

/// When a key is rotated automatically, and how long old versions stay usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationPolicy {
    /// Seconds between rotations (the crypto-period of one version).
    pub interval_secs: u64,
    /// Seconds a replaced version stays active before the scheduler deactivates it.
    pub grace_secs: u64,
}

impl RotationPolicy {
    /// Checks the bounds: interval at least an hour, both at most ten years.
    pub fn validate(&self) -> Result<(), KeyError> {
        if self.interval_secs < MIN_ROTATION_INTERVAL_SECS || self.interval_secs > MAX_PERIOD_SECS {
            return Err(KeyError::invalid(
                "invalid_rotation",
                format!(
                    "rotation interval_secs must be {MIN_ROTATION_INTERVAL_SECS} to {MAX_PERIOD_SECS}, got {}",
                    self.interval_secs
                ),
            ));
        }
        if self.grace_secs > MAX_PERIOD_SECS {
            return Err(KeyError::invalid(
                "invalid_rotation",
                format!(
                    "rotation grace_secs must be at most {MAX_PERIOD_SECS}, got {}",
                    self.grace_secs
                ),
            ));
        }
        Ok(())
    }
}

/// One HSM key behind an alias.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVersion {
    /// 1 for the original key, `N` for the key made by the `(N-1)`th rotation.
    pub number: u32,
    /// The HSM label: the base label for version 1, `<base>_v<N>` after that.
    pub label: String,
    /// Where this version is in its lifecycle.
    pub state: KeyState,
    /// When keymanager created (or adopted) it.
    pub created_at: u64,
    /// When the scheduler deactivates it (set on the replaced version by a rotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deactivate_after: Option<u64>,
    /// The pending destruction, while `destroy-scheduled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<DestructionSchedule>,
    /// When its material was deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destroyed_at: Option<u64>,
}

/// One lifecycle change or rotation, for the key's own short history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Unix seconds.
    pub at: u64,
    /// Who (a principal id, or `system:scheduler`).
    pub actor: String,
    /// Which version it concerned.
    pub version: u32,
    /// What happened (`create`, `adopt`, `rotate`, a lifecycle event name, ...).
    pub event: String,
    /// The state before, if the event changed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<KeyState>,
    /// The state after.
    pub to: KeyState,
    /// Why, as given by the actor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The metadata record of one managed key (alias).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The partition.
    pub tenant: TenantId,
    /// The base label (the alias).
    pub label: String,
    /// Algorithm with size or curve.
    pub spec: StoredSpec,
    /// The attributes every version is created with.
    pub attributes: KeyAttributes,
    /// Who is responsible for the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// What the key is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Free-form tags, sorted and unique.
    #[serde(default)]
    pub tags: Vec<String>,
    /// When a pre-active key becomes active (the scheduler activates it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_at: Option<u64>,
    /// End of the key's crypto-period: the scheduler deactivates its usable versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Automatic rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationPolicy>,
    /// Every version, ascending by number.
    pub versions: Vec<KeyVersion>,
    /// The version the alias points at.
    pub current_version: u32,
    /// When keymanager created or adopted the key.
    pub created_at: u64,
    /// Who.
    pub created_by: String,
    /// Whether the key was found in the HSM rather than created by keymanager.
    #[serde(default)]
    pub adopted: bool,
    /// The last [`MAX_HISTORY`] changes, oldest first.
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
    /// SKA-governed changes waiting for approvals in the HSM, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<PendingRequest>,
}

/// A change of one version that the HSM holds as an approval request (its SKA rule asks for
/// approvals). Nothing changes — in the HSM or the record — until the request executes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRequest {
    /// The HSM's request id.
    pub request_id: String,
    /// The version it concerns.
    pub version: u32,
    /// What executes when approved.
    pub change: PendingChange,
    /// The SKA rule that governs the request (whose approvers are asked).
    pub governed_by: SkaAction,
    /// Who asked (a principal id, or `system:scheduler`).
    pub requested_by: String,
    /// When (Unix seconds).
    pub requested_at: u64,
    /// Why, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a [`PendingRequest`] does once it executes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PendingChange {
    /// A lifecycle event whose block or unblock waits; the version moves when it executes.
    Lifecycle {
        /// The domain event (re-decided against the version's state on execution).
        event: LifecycleEvent,
    },
    /// A new SKA policy.
    Policy {
        /// The policy asked for.
        policy: SkaPolicy,
    },
    /// Freezing the unblock rule of a compromised key.
    FreezeUnblock,
}

impl PendingChange {
    /// A short name for lists and history (`suspend`, `policy`, `freeze_unblock`).
    pub fn name(&self) -> &'static str {
        match self {
            PendingChange::Lifecycle { event } => event.as_str(),
            PendingChange::Policy { .. } => "policy",
            PendingChange::FreezeUnblock => "freeze_unblock",
        }
    }
}

impl KeyRecord {
    /// The version the alias points at.
    pub fn current(&self) -> Option<&KeyVersion> {
        self.version(self.current_version)
    }

    /// Version `number`.
    pub fn version(&self, number: u32) -> Option<&KeyVersion> {
        self.versions.iter().find(|v| v.number == number)
    }

    /// Version `number`, to change.
    pub(crate) fn version_mut(&mut self, number: u32) -> Option<&mut KeyVersion> {
        self.versions.iter_mut().find(|v| v.number == number)
    }

    /// The state shown for the key: its current version's.
    pub fn state(&self) -> KeyState {
        self.current().map_or(KeyState::Destroyed, |v| v.state)
    }

    /// The highest version number.
    pub fn latest_number(&self) -> u32 {
        self.versions.iter().map(|v| v.number).max().unwrap_or(0)
    }

    /// When the scheduler rotates the key next: `interval` after the current version was
    /// created, while that version is active.
    pub fn next_rotation_at(&self) -> Option<u64> {
        let rotation = self.rotation?;
        let current = self.current()?;
        (current.state == KeyState::Active)
            .then(|| current.created_at.saturating_add(rotation.interval_secs))
    }

    /// The lifecycle request waiting for approvals on version `number`, if any.
    pub fn pending_lifecycle(&self, number: u32) -> Option<&PendingRequest> {
        self.pending
            .iter()
            .find(|p| p.version == number && matches!(p.change, PendingChange::Lifecycle { .. }))
    }

    /// Appends a history entry, keeping the last [`MAX_HISTORY`].
    pub(crate) fn remember(&mut self, entry: HistoryEntry) {
        self.history.push(entry);
        if self.history.len() > MAX_HISTORY {
            let excess = self.history.len() - MAX_HISTORY;
            self.history.drain(..excess);
        }
    }
}

/// The record id of the key `label` of `tenant`: `<tenant>.<label>` for labels keymanager could
/// have created (`[A-Za-z0-9._-]`, at most [`MAX_LABEL_LEN`]), else `<tenant>:<digest>` — the
/// store's id charset has no room for everything the HSM allows in a label.
pub fn record_id(tenant: &TenantId, label: &str) -> String {
    if label.len() <= MAX_LABEL_LEN && label.bytes().all(is_plain_label_byte) {
        format!("{tenant}.{label}")
    } else {
        let digest = Sha256::digest(label.as_bytes());
        let mut hex = String::with_capacity(40);
        for byte in &digest[..20] {
            let _ = write!(hex, "{byte:02x}");
        }
        format!("{tenant}:{hex}")
    }
}

/// Whether `id` is the record id of a key of `tenant`.
pub fn is_record_of(tenant: &TenantId, id: &str) -> bool {
    id.strip_prefix(tenant.as_str())
        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with(':'))
}

fn is_plain_label_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-')
}

/// The label of version `number` of the alias `base`.
pub fn version_label(base: &str, number: u32) -> String {
    if number <= 1 {
        base.to_owned()
    } else {
        format!("{base}_v{number}")
    }
}

/// `(base, N)` when `label` is shaped like a rotated version `<base>_v<N>` (N ≥ 2).
pub fn split_version_label(label: &str) -> Option<(&str, u32)> {
    let (base, number) = label.rsplit_once("_v")?;
    let canonical = !base.is_empty()
        && !number.is_empty()
        && !number.starts_with('0')
        && number.bytes().all(|b| b.is_ascii_digit());
    let number: u32 = number.parse().ok().filter(|_| canonical)?;
    (number >= 2).then_some((base, number))
}

/// Checks a label for a key keymanager creates: 1–100 of `[A-Za-z0-9._-]`, not keymanager's own
/// `kms.` prefix, and not shaped like a rotated version (`<x>_v<N>`), which rotation reserves.
pub fn validate_new_label(label: &str) -> Result<(), KeyError> {
    let problem = if label.is_empty() || label.len() > MAX_LABEL_LEN {
        Some(format!("a key label has 1 to {MAX_LABEL_LEN} characters"))
    } else if !label.bytes().all(is_plain_label_byte) {
        Some("a key label may contain only A-Z, a-z, 0-9, '.', '_' and '-'".to_owned())
    } else if label.starts_with(RESERVED_LABEL_PREFIX) {
        Some(format!(
            "labels starting with '{RESERVED_LABEL_PREFIX}' are reserved for keymanager's own keys"
        ))
    } else if split_version_label(label).is_some() {
        Some(
            "labels ending in _v<number> are reserved for rotated versions; choose another suffix"
                .to_owned(),
        )
    } else {
        None
    };
    match problem {
        Some(problem) => Err(KeyError::invalid("invalid_label", problem)),
        None => Ok(()),
    }
}

/// Checks a label given in a path (any HSM label may be addressed, but not keymanager's own).
pub fn validate_any_label(label: &str) -> Result<(), KeyError> {
    if label.is_empty() || label.len() > 256 || label.chars().any(char::is_control) {
        return Err(KeyError::invalid(
            "invalid_label",
            "a key label has 1 to 256 characters and no control characters",
        ));
    }
    if label.starts_with(RESERVED_LABEL_PREFIX) || label.contains('/') {
        return Err(KeyError::NotFound);
    }
    Ok(())
}

/// A printable text of at most `max` characters (no control characters); trimmed; empty is
/// `None`.
pub fn clean_text(
    field: &'static str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, KeyError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let value = value.trim();
    if value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(KeyError::invalid(
            "invalid_text",
            format!("{field} has at most {max} characters and no control characters"),
        ));
    }
    Ok((!value.is_empty()).then(|| value.to_owned()))
}

/// Validates tags (each 1–64 of `[A-Za-z0-9._:=/-]`, at most 32) and returns them sorted, without
/// duplicates.
pub fn clean_tags(tags: Vec<String>) -> Result<Vec<String>, KeyError> {
    let mut tags: Vec<String> = tags.into_iter().map(|t| t.trim().to_owned()).collect();
    tags.sort();
    tags.dedup();
    if tags.len() > MAX_TAGS {
        return Err(KeyError::invalid(
            "invalid_tag",
            format!("a key has at most {MAX_TAGS} tags"),
        ));
    }
    if let Some(bad) = tags.iter().find(|tag| !is_valid_tag(tag)) {
        return Err(KeyError::invalid(
            "invalid_tag",
            format!(
                "tag {bad:?} is not valid: 1 to {MAX_TAG_LEN} of A-Z, a-z, 0-9 and . _ : = / -"
            ),
        ));
    }
    Ok(tags)
}

/// Whether `tag` is a valid tag.
pub fn is_valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= MAX_TAG_LEN
        && tag.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'=' | b'/' | b'-')
        })
}

/// Checks activation and expiry against now: an expiry must lie in the future and after the
/// activation.
pub fn validate_times(
    now: u64,
    activation_at: Option<u64>,
    expires_at: Option<u64>,
) -> Result<(), KeyError> {
    if let Some(expires_at) = expires_at {
        let start = activation_at.unwrap_or(now).max(now);
        if expires_at <= start {
            return Err(KeyError::invalid(
                "invalid_expiry",
                format!(
                    "expires_at ({expires_at}) must be after the activation time and now ({start})"
                ),
            ));
        }
    }
    Ok(())
}
