//! What the inventory shows per key: [`KeySummary`] (one row: a managed key's alias, or a key
//! keymanager does not manage), built from the HSM's report and the metadata record; and the
//! work the scheduler has pending on a record ([`pending_work`]).

use km_domain::{KeyAttributes, KeyState};

use super::record::{KeyRecord, StoredSpec};
use crate::HsmKeyInfo;

/// One row of the inventory. Only labels, attributes and metadata: never key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySummary {
    /// The alias of a managed key, or the HSM label of an unmanaged one.
    pub label: String,
    /// Whether keymanager keeps a metadata record for it.
    pub managed: bool,
    /// Lifecycle state: the current version's for managed keys; `active`/`suspended` from the
    /// HSM's blocked flag for unmanaged ones.
    pub state: KeyState,
    /// The HSM label of the version the alias points at (`None` once destroyed).
    pub current_label: Option<String>,
    /// That version's number (managed keys only).
    pub current_version: Option<u32>,
    /// Number of versions (1 for unmanaged keys).
    pub versions: u32,
    /// Algorithm with size or curve.
    pub spec: StoredSpec,
    /// Attributes as the HSM reports them (as recorded when the HSM key is gone).
    pub attributes: KeyAttributes,
    /// The HSM's blocked flag (`None` when the HSM key is gone).
    pub blocked: Option<bool>,
    /// Whether the key has an SKA policy (`None` when the HSM key is gone).
    pub has_policy: Option<bool>,
    /// Owner.
    pub owner: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Tags, sorted.
    pub tags: Vec<String>,
    /// When a pre-active key becomes active.
    pub activation_at: Option<u64>,
    /// End of the crypto-period.
    pub expires_at: Option<u64>,
    /// When keymanager created the key (or the HSM, for unmanaged keys, when it says).
    pub created_at: Option<u64>,
    /// Next automatic rotation.
    pub next_rotation_at: Option<u64>,
    /// When the current version is due for destruction, while `destroy-scheduled`.
    pub destruction_at: Option<u64>,
    /// The earliest time the scheduler has something to do for this key.
    pub next_due_at: Option<u64>,
    /// SKA-governed changes of this key waiting for approvals.
    pub pending_requests: u32,
    /// When the live HSM facts (`attributes`, `blocked`, `has_policy`) were read (`None` when
    /// the row has none).
    pub checked_at: Option<u64>,
}

/// The live HSM facts of a row, as the inventory reuses them between refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LiveFacts {
    pub(crate) attributes: KeyAttributes,
    pub(crate) blocked: bool,
    pub(crate) has_policy: bool,
    pub(crate) checked_at: u64,
}

impl KeySummary {
    /// The row of a key keymanager does not manage.
    pub fn unmanaged(info: &HsmKeyInfo) -> Self {
        Self {
            label: info.label.clone(),
            managed: false,
            state: if info.blocked {
                KeyState::Suspended
            } else {
                KeyState::Active
            },
            current_label: Some(info.label.clone()),
            current_version: None,
            versions: 1,
            spec: reported_spec(info),
            attributes: info.attributes,
            blocked: Some(info.blocked),
            has_policy: Some(info.is_ska()),
            owner: None,
            description: None,
            tags: Vec::new(),
            activation_at: None,
            expires_at: None,
            created_at: info.created_at,
            next_rotation_at: None,
            destruction_at: None,
            next_due_at: None,
            pending_requests: 0,
            checked_at: None,
        }
    }

    /// The row of a managed key; `current` is what the HSM reports about its current version.
    pub fn managed(record: &KeyRecord, current: Option<&HsmKeyInfo>) -> Self {
        let version = record.current();
        Self {
            label: record.label.clone(),
            managed: true,
            state: record.state(),
            current_label: version
                .filter(|v| v.state != KeyState::Destroyed)
                .map(|v| v.label.clone()),
            current_version: Some(record.current_version),
            versions: u32::try_from(record.versions.len()).unwrap_or(u32::MAX),
            spec: record.spec.clone(),
            attributes: current.map_or(record.attributes, |info| info.attributes),
            blocked: current.map(|info| info.blocked),
            has_policy: current.map(HsmKeyInfo::is_ska),
            owner: record.owner.clone(),
            description: record.description.clone(),
            tags: record.tags.clone(),
            activation_at: record.activation_at,
            expires_at: record.expires_at,
            created_at: Some(record.created_at),
            next_rotation_at: record.next_rotation_at(),
            destruction_at: version.and_then(|v| v.schedule).map(|s| s.at),
            next_due_at: pending_work(record).iter().map(|work| work.at).min(),
            pending_requests: u32::try_from(record.pending.len()).unwrap_or(u32::MAX),
            checked_at: None,
        }
    }

    /// This row with its live HSM facts read at `at`.
    pub(crate) fn checked(mut self, at: u64) -> Self {
        if self.blocked.is_some() {
            self.checked_at = Some(at);
        }
        self
    }

    /// The row of a managed key with live facts read earlier (instead of a fresh `key_info`).
    pub(crate) fn managed_with(record: &KeyRecord, facts: LiveFacts) -> Self {
        Self {
            attributes: facts.attributes,
            blocked: Some(facts.blocked),
            has_policy: Some(facts.has_policy),
            checked_at: Some(facts.checked_at),
            ..Self::managed(record, None)
        }
    }

    /// The live facts of this row, if it has them.
    pub(crate) fn facts(&self) -> Option<LiveFacts> {
        Some(LiveFacts {
            attributes: self.attributes,
            blocked: self.blocked?,
            has_policy: self.has_policy?,
            checked_at: self.checked_at?,
        })
    }
}

/// The spec as the HSM reports it.
pub(crate) fn reported_spec(info: &HsmKeyInfo) -> StoredSpec {
    match info.spec() {
        Ok(spec) => StoredSpec::of(&spec),
        Err(_) => StoredSpec {
            algorithm: info.algorithm.clone(),
            key_size: info.key_size,
            curve_oid: info.curve_oid.clone(),
        },
    }
}

/// What the scheduler does to a key when due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DueKind {
    /// Delete a `destroy-scheduled` version whose waiting period is over.
    Destroy,
    /// Activate a pre-active version at `activation_at`.
    Activate,
    /// Deactivate a usable version at the key's `expires_at`.
    Expire,
    /// Rotate the key at its rotation interval.
    Rotate,
    /// Deactivate a replaced version after its grace period.
    RetireOldVersion,
}

impl DueKind {
    /// Stable name (audit `operation`, report).
    pub const fn as_str(self) -> &'static str {
        match self {
            DueKind::Destroy => "destroy_key",
            DueKind::Activate => "activate_key",
            DueKind::Expire => "expire_key",
            DueKind::Rotate => "scheduled_rotation",
            DueKind::RetireOldVersion => "deactivate_old_version",
        }
    }
}

/// One piece of scheduled work on a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueWork {
    /// What.
    pub kind: DueKind,
    /// On which version.
    pub version: u32,
    /// From when.
    pub at: u64,
}

/// Everything the scheduler will have to do for `record`, due or not, in the order it does it:
/// destructions, activations, expiries, then rotation (not of an expired key), then old versions.
/// A version with a lifecycle change waiting for approvals has nothing due until it is settled.
pub fn pending_work(record: &KeyRecord) -> Vec<DueWork> {
    let mut work = scheduled_work(record);
    work.retain(|w| record.pending_lifecycle(w.version).is_none());
    work
}

fn scheduled_work(record: &KeyRecord) -> Vec<DueWork> {
    let mut work = Vec::new();
    let usable = |state: KeyState| matches!(state, KeyState::Active | KeyState::Suspended);
    for v in &record.versions {
        if let (KeyState::DestroyScheduled, Some(schedule)) = (v.state, v.schedule) {
            work.push(DueWork {
                kind: DueKind::Destroy,
                version: v.number,
                at: schedule.at,
            });
        }
    }
    for v in &record.versions {
        if let (KeyState::PreActive, Some(at)) = (v.state, record.activation_at) {
            work.push(DueWork {
                kind: DueKind::Activate,
                version: v.number,
                at,
            });
        }
    }
    if let Some(at) = record.expires_at {
        for v in record.versions.iter().filter(|v| usable(v.state)) {
            work.push(DueWork {
                kind: DueKind::Expire,
                version: v.number,
                at,
            });
        }
    }
    if let Some(at) = record.next_rotation_at()
        && record.expires_at.is_none_or(|expiry| at < expiry)
    {
        work.push(DueWork {
            kind: DueKind::Rotate,
            version: record.current_version,
            at,
        });
    }
    for v in record.versions.iter().filter(|v| usable(v.state)) {
        if let Some(at) = v.deactivate_after {
            work.push(DueWork {
                kind: DueKind::RetireOldVersion,
                version: v.number,
                at,
            });
        }
    }
    work
}
