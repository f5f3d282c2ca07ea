//! Keys (DESIGN §4.2): the inventory of a partition's keys, creation for every TSB algorithm, the
//! lifecycle state machine applied to the HSM, rotation, scheduled work, public-key export.
//!
//! [`KeyService`] is the service the application layer ([`crate::App`]) calls after authorizing;
//! it takes the HSM client to act with (the caller's own credentials, or the partition's) and the
//! actor to record. The scheduler calls [`KeyService::run_due`] directly.
//!
//! - **Records**: one plain metadata record per managed key, `kms.key.<tenant>.<label>` (or
//!   `kms.key.<tenant>:<digest>` for labels outside the store's id charset); see [`KeyRecord`].
//!   A key is an alias over versions: version 1 is the HSM key with the base label itself,
//!   rotation `N` creates `<base>_v<N>`. A key found in the HSM without a record is shown as
//!   unmanaged (`active`/`suspended` from its blocked flag) and adopted — given a record — by the
//!   first keymanager write to it.
//! - **Lifecycle**: every change goes through `km_domain::transition()`; its [`TsbEffect`] is
//!   applied so that the HSM is never more permissive than the record: restrictive effects (block,
//!   block irreversibly, delete) hit the HSM before the record is written, an unblock only after
//!   (and the record is reverted if the unblock fails).
//! - **Inventory**: a per-tenant cache, see the `inventory` module.
//!
//! [`TsbEffect`]: km_domain::TsbEffect

mod attestation;
mod create;
mod due;
mod export;
mod index;
mod inventory;
mod lifecycle;
mod overview;
mod record;
mod requests;
mod settings;
mod summary;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use km_domain::{IllegalTransition, KeySpecError, KeyState, SkaPolicy, SkaPolicyError, TenantId};

pub use attestation::KeyAttestation;
pub use create::NewKey;
pub use due::{DueFailure, DueOutcome, DueReport, SCHEDULER};
pub use export::{Jwk, PublicKeyExport, PublicKeyFormat, PublicKeyMaterial};
pub use index::{InventoryIndex, KeyFilter, KeySort, SortKey};
pub use lifecycle::{KeyEvent, StateChange};
pub use overview::{InventoryOverview, UpcomingEvent, UpcomingKind};
pub use record::{
    DEFAULT_ROTATION_GRACE_SECS, HistoryEntry, KEY_RECORD_KIND, KeyRecord, KeyVersion,
    MAX_DESCRIPTION_LEN, MAX_LABEL_LEN, MAX_OWNER_LEN, MAX_REASON_LEN, MAX_TAGS, PendingChange,
    PendingRequest, RotationPolicy, StoredSpec, record_id, split_version_label, version_label,
};
pub use requests::{
    ApproverDecision, ApproverProgress, PolicyUpdate, RequestProgress, approver_fingerprint,
};
pub use settings::{TENANT_SETTINGS_KIND, TenantKeySettings};
pub use summary::{DueKind, DueWork, KeySummary, pending_work};

use inventory::Inventories;
use record::{clean_tags, clean_text, validate_any_label, validate_times};

use crate::audit::AuditError;
use crate::{
    AuditLog, Clock, Hsm, HsmError, HsmKeyInfo, PartitionError, Partitions, StateStore, StoreError,
    Versioned,
};

/// Tunables of the [`KeyService`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyServiceConfig {
    /// How old a tenant's inventory may get before a query starts a background refresh.
    pub inventory_ttl_secs: u64,
    /// How many `key_info` (and record) reads a build keeps in flight.
    pub inventory_concurrency: usize,
    /// How old a key's HSM facts (attributes, blocked flag, policy presence) may get before a
    /// refresh reads them again; younger ones are reused, so a refresh of a large partition asks
    /// the HSM only for new keys and a slice of the old ones. Own changes are always fresh.
    pub inventory_recheck_secs: u64,
}

impl Default for KeyServiceConfig {
    fn default() -> Self {
        Self {
            inventory_ttl_secs: 30,
            inventory_concurrency: 16,
            inventory_recheck_secs: 300,
        }
    }
}

/// Why a key operation did not run. The app layer maps it onto its stable codes.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No such key in the partition (or one of keymanager's own, which are never shown).
    #[error("no such key")]
    NotFound,
    /// Malformed input, with a stable sub-code.
    #[error("{message}")]
    Invalid {
        /// Stable sub-code (`invalid_label`, `invalid_tag`, ...).
        reason: &'static str,
        /// What to change.
        message: String,
    },
    /// The request contradicts the key's state, with a stable sub-code.
    #[error("{message}")]
    Conflict {
        /// Stable sub-code (`key_exists`, `key_not_active`, ...).
        reason: &'static str,
        /// What is in the way.
        message: String,
    },
    /// The spec or attributes break the TSB's rules (explained by km-domain).
    #[error(transparent)]
    Spec(#[from] KeySpecError),
    /// The SKA policy breaks keymanager's authoring rules.
    #[error(transparent)]
    Policy(#[from] SkaPolicyError),
    /// The lifecycle does not allow the change (SP 800-57).
    #[error(transparent)]
    Transition(#[from] IllegalTransition),
    /// The tenant's partition failed or refused.
    #[error(transparent)]
    Hsm(#[from] HsmError),
    /// The partition is unknown, suspended or unreachable.
    #[error(transparent)]
    Partition(#[from] PartitionError),
    /// The metadata store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The audit log could not record a scheduled action (nothing was done).
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl KeyError {
    /// Invalid input with a sub-code.
    pub fn invalid(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            reason,
            message: message.into(),
        }
    }

    /// A conflict with a sub-code.
    pub fn conflict(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            reason,
            message: message.into(),
        }
    }

    /// A stable code for the failure (recorded in audit results of scheduled actions).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "key_not_found",
            Self::Invalid { reason, .. } | Self::Conflict { reason, .. } => reason,
            Self::Spec(error) => error.code(),
            Self::Policy(error) => error.code(),
            Self::Transition(error) => error.code(),
            Self::Hsm(HsmError::Refused(_)) => "hsm_refused",
            Self::Hsm(_) | Self::Partition(_) => "partition_unavailable",
            Self::Store(_) => "store_unavailable",
            Self::Audit(_) => "audit_unavailable",
        }
    }
}

/// Everything about one key: its row plus, for managed keys, versions, history and schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDetail {
    /// The inventory row (with live HSM facts of the current version).
    pub summary: KeySummary,
    /// Versions, ascending (empty for unmanaged keys).
    pub versions: Vec<KeyVersion>,
    /// The last lifecycle changes, oldest first.
    pub history: Vec<HistoryEntry>,
    /// Automatic rotation.
    pub rotation: Option<RotationPolicy>,
    /// Who created (or adopted) the key in keymanager.
    pub created_by: Option<String>,
    /// Whether it was adopted from the HSM rather than created by keymanager.
    pub adopted: bool,
    /// Its SKA policy as the HSM reports it (`None` for a plain key, or once destroyed).
    pub policy: Option<SkaPolicy>,
    /// SKA-governed changes waiting for approvals (see [`KeyService::requests`] for progress).
    pub pending: Vec<PendingRequest>,
}

impl KeyDetail {
    fn of(record: &KeyRecord, current: Option<&HsmKeyInfo>) -> Self {
        Self {
            summary: KeySummary::managed(record, current),
            versions: record.versions.clone(),
            history: record.history.clone(),
            rotation: record.rotation,
            created_by: Some(record.created_by.clone()),
            adopted: record.adopted,
            policy: current.and_then(|info| info.policy.clone()),
            pending: record.pending.clone(),
        }
    }

    fn unmanaged(info: &HsmKeyInfo) -> Self {
        Self {
            summary: KeySummary::unmanaged(info),
            versions: Vec::new(),
            history: Vec::new(),
            rotation: None,
            created_by: None,
            adopted: false,
            policy: info.policy.clone(),
            pending: Vec::new(),
        }
    }
}

/// A change of a key's metadata; `None` fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyMetadataUpdate {
    /// New owner (`Some(None)` clears it).
    pub owner: Option<Option<String>>,
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// New tags (replacing the old ones).
    pub tags: Option<Vec<String>>,
    /// New end of the crypto-period (`Some(None)` clears it).
    pub expires_at: Option<Option<u64>>,
    /// New rotation schedule (`Some(None)` stops automatic rotation).
    pub rotation: Option<Option<RotationPolicy>>,
}

/// Where a label points.
#[derive(Debug)]
enum Located {
    /// A managed key: its record and the addressed version.
    Managed {
        record: Box<Versioned<KeyRecord>>,
        version: u32,
    },
    /// No record: an HSM key keymanager does not manage (if it exists).
    Unmanaged,
}

/// A key ready to be changed: its record (not stored yet when just adopted) and the version.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    record: KeyRecord,
    /// The stored revision; `None` for a key adopted by this change.
    revision: Option<u64>,
    version: u32,
}

/// Keys of every tenant. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct KeyService {
    inner: Arc<Inner>,
}

struct Inner {
    store: StateStore,
    partitions: Partitions,
    clock: Arc<dyn Clock>,
    audit: AuditLog,
    config: KeyServiceConfig,
    inventories: Inventories,
}

impl std::fmt::Debug for KeyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyService")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl KeyService {
    /// The service over the metadata store, the partition registry (for the inventory's and the
    /// scheduler's HSM clients), the clock and the audit log (for scheduled actions).
    pub fn new(
        store: StateStore,
        partitions: Partitions,
        clock: Arc<dyn Clock>,
        audit: AuditLog,
        config: KeyServiceConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                partitions,
                clock,
                audit,
                config,
                inventories: Inventories::default(),
            }),
        }
    }

    fn now(&self) -> u64 {
        self.inner.clock.now()
    }

    /// One page of the tenant's inventory (see [`InventoryIndex::page`]), from the cache.
    pub async fn list(
        &self,
        tenant: &TenantId,
        filter: &KeyFilter,
        sort: KeySort,
        after: Option<&SortKey>,
        limit: usize,
    ) -> Result<(Vec<Arc<KeySummary>>, Option<SortKey>), KeyError> {
        self.with_inventory(tenant, |index| index.page(filter, sort, after, limit))
            .await
    }

    /// Everything about the key `label` (an alias, a version's label or an unmanaged key), with
    /// live HSM facts.
    pub async fn get(
        &self,
        hsm: &dyn Hsm,
        tenant: &TenantId,
        label: &str,
    ) -> Result<KeyDetail, KeyError> {
        match self.locate(tenant, label, None).await? {
            Located::Managed { record, .. } => {
                let record = if record.value.pending.is_empty() {
                    record.value
                } else {
                    self.settle_record(hsm, tenant, label)
                        .await?
                        .ok_or(KeyError::NotFound)?
                };
                let current = self.current_info(hsm, &record).await?;
                Ok(KeyDetail::of(&record, current.as_ref()))
            }
            Located::Unmanaged => {
                let info = hsm.key_info(label).await?.ok_or(KeyError::NotFound)?;
                Ok(KeyDetail::unmanaged(&info))
            }
        }
    }

    /// Changes owner, description, tags, expiry or rotation (adopting an unmanaged key).
    pub async fn update_metadata(
        &self,
        hsm: &dyn Hsm,
        tenant: &TenantId,
        label: &str,
        update: KeyMetadataUpdate,
        actor: &str,
    ) -> Result<KeyDetail, KeyError> {
        let now = self.now();
        let target = self.target(hsm, tenant, label, None, actor).await?;
        let mut record = target.record.clone();
        if let Some(owner) = update.owner {
            record.owner = clean_text("owner", owner, record::MAX_OWNER_LEN)?;
        }
        if let Some(description) = update.description {
            record.description = clean_text("description", description, MAX_DESCRIPTION_LEN)?;
        }
        if let Some(tags) = update.tags {
            record.tags = clean_tags(tags)?;
        }
        if let Some(expires_at) = update.expires_at {
            validate_times(now, record.activation_at, expires_at)?;
            record.expires_at = expires_at;
        }
        if let Some(rotation) = update.rotation {
            if let Some(rotation) = &rotation {
                rotation.validate()?;
            }
            record.rotation = rotation;
        }
        let saved = self.save(&target, record, actor).await?;
        self.publish(hsm, tenant, &saved.value).await
    }

    /// Finds the record a label belongs to: an alias, or a rotated version `<base>_v<N>` of one.
    async fn locate(
        &self,
        tenant: &TenantId,
        label: &str,
        version: Option<u32>,
    ) -> Result<Located, KeyError> {
        validate_any_label(label)?;
        let by_alias = self.read_record(tenant, label).await?;
        let (record, implied) = match by_alias {
            Some(record) => (record, None),
            None => match split_version_label(label) {
                Some((base, number)) => match self.read_record(tenant, base).await? {
                    Some(record)
                        if record
                            .value
                            .version(number)
                            .is_some_and(|v| v.label == label) =>
                    {
                        (record, Some(number))
                    }
                    _ => return Ok(Located::Unmanaged),
                },
                None => return Ok(Located::Unmanaged),
            },
        };
        let version = match (implied, version) {
            (Some(implied), Some(asked)) if implied != asked => {
                return Err(KeyError::invalid(
                    "version_mismatch",
                    format!("{label} is version {implied}, not {asked}"),
                ));
            }
            (Some(number), _) | (None, Some(number)) => number,
            (None, None) => record.value.current_version,
        };
        if record.value.version(version).is_none() {
            return Err(KeyError::invalid(
                "unknown_version",
                format!("{} has no version {version}", record.value.label),
            ));
        }
        Ok(Located::Managed {
            record: Box::new(record),
            version,
        })
    }

    async fn read_record(
        &self,
        tenant: &TenantId,
        label: &str,
    ) -> Result<Option<Versioned<KeyRecord>>, KeyError> {
        let id = record_id(tenant, label);
        let record = self
            .inner
            .store
            .get::<KeyRecord>(KEY_RECORD_KIND, &id)
            .await?;
        // A digest id cannot collide in practice, but a record must name what it is for.
        Ok(record.filter(|r| r.value.label == label && r.value.tenant == *tenant))
    }

    /// The key to change: its record, or a new record adopting the unmanaged HSM key `label`.
    async fn target(
        &self,
        hsm: &dyn Hsm,
        tenant: &TenantId,
        label: &str,
        version: Option<u32>,
        actor: &str,
    ) -> Result<Target, KeyError> {
        match self.locate(tenant, label, version).await? {
            Located::Managed { record, version } => Ok(Target {
                record: record.value,
                revision: Some(record.revision),
                version,
            }),
            Located::Unmanaged => {
                if version.is_some_and(|v| v != 1) {
                    return Err(KeyError::invalid(
                        "unknown_version",
                        format!("{label} is not managed and has only version 1"),
                    ));
                }
                let info = hsm.key_info(label).await?.ok_or(KeyError::NotFound)?;
                Ok(Target {
                    record: lifecycle::adopted(tenant, &info, self.now(), actor),
                    revision: None,
                    version: 1,
                })
            }
        }
    }

    /// Writes `record` over `target`'s stored revision (or creates it for an adopted key).
    async fn save(
        &self,
        target: &Target,
        record: KeyRecord,
        actor: &str,
    ) -> Result<Versioned<KeyRecord>, KeyError> {
        let id = record_id(&record.tenant, &record.label);
        let store = &self.inner.store;
        let saved = match target.revision {
            Some(revision) => {
                store
                    .update(KEY_RECORD_KIND, &id, revision, record, actor)
                    .await
            }
            None => {
                store
                    .create(KEY_RECORD_KIND, &id, record, actor, crate::Sealing::Plain)
                    .await
            }
        };
        saved.map_err(|error| match error {
            StoreError::AlreadyExists { .. } => KeyError::conflict(
                "concurrent_change",
                "the key was adopted by another request meanwhile; reload and try again",
            ),
            other => other.into(),
        })
    }

    /// What the HSM says about the record's current version (`None` once destroyed).
    async fn current_info(
        &self,
        hsm: &dyn Hsm,
        record: &KeyRecord,
    ) -> Result<Option<HsmKeyInfo>, KeyError> {
        match record.current() {
            Some(v) if v.state != KeyState::Destroyed => Ok(hsm.key_info(&v.label).await?),
            _ => Ok(None),
        }
    }

    /// Updates the inventory after a write and returns the key's detail.
    async fn publish(
        &self,
        hsm: &dyn Hsm,
        tenant: &TenantId,
        record: &KeyRecord,
    ) -> Result<KeyDetail, KeyError> {
        // The write is done; a failing read only leaves the row without live facts.
        let current = self.current_info(hsm, record).await.unwrap_or_else(|error| {
            tracing::warn!(%tenant, label = %record.label, %error, "could not read a key back after a change");
            None
        });
        self.inventory_changed(
            tenant,
            Self::row_of(record, current.as_ref()).checked(self.now()),
        );
        Ok(KeyDetail::of(record, current.as_ref()))
    }
}
