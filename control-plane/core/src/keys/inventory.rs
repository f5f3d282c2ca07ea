//! The per-tenant metadata cache behind the inventory (labels, attributes and metadata, never key
//! material).
//!
//! - **Built on first use** from the partition's key list, one `key_info` per key that needs one
//!   (bounded concurrency) and the tenant's metadata records.
//! - **Stale-while-revalidate**: a query on a cache older than the TTL answers from it at once and
//!   starts one background rebuild; a query never waits for a refresh of a warm cache, and every
//!   tenant has its own cache and its own refresh, so one slow partition delays nobody else.
//! - **Incremental refresh**: every refresh lists the partition's keys and reads the records, but
//!   asks the HSM for `key_info` only of new keys and of keys whose facts are older than their
//!   recheck age (between half and all of `inventory_recheck_secs`, fixed per label so re-reads
//!   spread out; others keep their row's facts), so a large partition costs the HSM a slice of
//!   its keys per refresh instead of all of them.
//! - **Own writes** update it synchronously. A write that lands while a rebuild is running is
//!   also kept aside and re-applied on top of the rebuilt index, so the rebuild (which may have
//!   read the key before the write) cannot undo it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use futures_util::{StreamExt as _, TryStreamExt as _, stream};
use km_domain::{KeyState, TenantId};

use super::index::InventoryIndex;
use super::record::{KEY_RECORD_KIND, KeyRecord, RESERVED_LABEL_PREFIX, is_record_of};
use super::summary::KeySummary;
use super::{KeyError, KeyService};
use crate::{Hsm, HsmError, HsmKeyInfo, PartitionError};

/// A row to insert or replace (with the HSM labels of its other versions), as applied to the
/// live index and replayed over a rebuilt one.
#[derive(Debug, Clone)]
pub(crate) struct RowChange {
    row: Arc<KeySummary>,
    other_labels: Vec<String>,
}

impl RowChange {
    fn apply(self, index: &mut InventoryIndex) {
        index.upsert(self.row, self.other_labels);
    }

    /// The change with its row's live facts marked as read at `at`.
    pub(crate) fn checked(self, at: u64) -> Self {
        Self {
            row: Arc::new(KeySummary::clone(&self.row).checked(at)),
            other_labels: self.other_labels,
        }
    }
}

struct Snapshot {
    index: InventoryIndex,
    built_at: u64,
}

/// One tenant's cache.
#[derive(Default)]
pub(crate) struct TenantInventory {
    snapshot: RwLock<Option<Snapshot>>,
    /// Serialises the first build, so concurrent first queries share it.
    first_build: tokio::sync::Mutex<()>,
    refreshing: AtomicBool,
    /// `Some` while a build runs: own writes made meanwhile, in order.
    pending: Mutex<Option<Vec<RowChange>>>,
}

impl TenantInventory {
    fn is_built(&self) -> bool {
        self.snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Whether the snapshot is older than `ttl` at `now`.
    fn is_stale(&self, now: u64, ttl: u64) -> bool {
        self.snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|s| now.saturating_sub(s.built_at) >= ttl)
    }

    /// Runs `f` on the index (an empty one if none is built).
    pub(crate) fn read<R>(&self, f: impl FnOnce(&InventoryIndex) -> R) -> R {
        let guard = self.snapshot.read().unwrap_or_else(PoisonError::into_inner);
        match guard.as_ref() {
            Some(snapshot) => f(&snapshot.index),
            None => f(&InventoryIndex::default()),
        }
    }

    fn begin_build(&self) {
        *self.pending.lock().unwrap_or_else(PoisonError::into_inner) = Some(Vec::new());
    }

    fn abort_build(&self) {
        *self.pending.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Installs a rebuilt index with the writes made during the build replayed on top.
    fn install(&self, mut index: InventoryIndex, built_at: u64) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        for change in pending.take().unwrap_or_default() {
            change.apply(&mut index);
        }
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Snapshot { index, built_at });
    }

    /// Applies an own write.
    pub(crate) fn apply(&self, change: RowChange) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(pending) = pending.as_mut() {
            pending.push(change.clone());
        }
        if let Some(snapshot) = self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            change.apply(&mut snapshot.index);
        }
    }
}

/// Every tenant's cache.
#[derive(Default)]
pub(crate) struct Inventories {
    tenants: Mutex<HashMap<TenantId, Arc<TenantInventory>>>,
}

impl Inventories {
    fn tenant(&self, tenant: &TenantId) -> Arc<TenantInventory> {
        self.tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(tenant.clone())
            .or_default()
            .clone()
    }

    /// The tenant's cache, if one was started.
    pub(crate) fn existing(&self, tenant: &TenantId) -> Option<Arc<TenantInventory>> {
        self.tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tenant)
            .cloned()
    }

    fn forget(&self, tenant: &TenantId) {
        self.tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(tenant);
    }
}

impl KeyService {
    /// Runs `f` on the tenant's inventory: built first if this is its first use; answered from
    /// the cache (and refreshed in the background) when it is older than the TTL.
    pub(crate) async fn with_inventory<R>(
        &self,
        tenant: &TenantId,
        f: impl FnOnce(&InventoryIndex) -> R,
    ) -> Result<R, KeyError> {
        let inventory = self.inner.inventories.tenant(tenant);
        if inventory.is_built() {
            if inventory.is_stale(self.now(), self.inner.config.inventory_ttl_secs) {
                self.spawn_refresh(tenant.clone(), inventory.clone());
            }
        } else {
            let _first = inventory.first_build.lock().await;
            if !inventory.is_built()
                && let Err(error) = self.rebuild(tenant, &inventory).await
            {
                if matches!(error, KeyError::Partition(PartitionError::NotFound(_))) {
                    self.inner.inventories.forget(tenant);
                }
                return Err(error);
            }
        }
        Ok(inventory.read(f))
    }

    /// Applies an own write to the tenant's inventory, if it has one.
    pub(crate) fn inventory_changed(&self, tenant: &TenantId, change: RowChange) {
        if let Some(inventory) = self.inner.inventories.existing(tenant) {
            inventory.apply(change);
        }
    }

    /// The row change for `record` with what the HSM says about its current version.
    pub(crate) fn row_of(record: &KeyRecord, current: Option<&HsmKeyInfo>) -> RowChange {
        RowChange {
            row: Arc::new(KeySummary::managed(record, current)),
            other_labels: other_labels(record),
        }
    }

    fn spawn_refresh(&self, tenant: TenantId, inventory: Arc<TenantInventory>) {
        if inventory.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let service = self.clone();
        tokio::spawn(async move {
            if let Err(error) = service.rebuild(&tenant, &inventory).await {
                tracing::warn!(%tenant, %error, "key inventory refresh failed; serving the previous one");
                if matches!(error, KeyError::Partition(PartitionError::NotFound(_))) {
                    service.inner.inventories.forget(&tenant);
                }
            }
            inventory.refreshing.store(false, Ordering::Release);
        });
    }

    async fn rebuild(
        &self,
        tenant: &TenantId,
        inventory: &TenantInventory,
    ) -> Result<(), KeyError> {
        let started = self.now();
        inventory.begin_build();
        match self.build_index(tenant, inventory).await {
            Ok(index) => {
                tracing::debug!(%tenant, rows = index.len(), "key inventory built");
                inventory.install(index, started);
                Ok(())
            }
            Err(error) => {
                inventory.abort_build();
                Err(error)
            }
        }
    }

    /// Reads the partition's keys and the tenant's records into a fresh index, reusing the live
    /// facts of `previous` rows that are younger than the recheck age.
    async fn build_index(
        &self,
        tenant: &TenantId,
        previous: &TenantInventory,
    ) -> Result<InventoryIndex, KeyError> {
        let hsm = self.inner.partitions.hsm_for(tenant, None).await?;
        let labels: Vec<String> = hsm
            .list_keys()
            .await?
            .into_iter()
            .filter(|label| !label.starts_with(RESERVED_LABEL_PREFIX))
            .collect();
        let records = self.load_records(tenant).await?;
        let present: HashSet<&str> = labels.iter().map(String::as_str).collect();
        // An alias keeps its label for good; a destroyed version's label is free again.
        let claimed: HashSet<&str> = records
            .iter()
            .flat_map(|r| {
                r.versions
                    .iter()
                    .filter(|v| v.state != KeyState::Destroyed)
                    .map(|v| v.label.as_str())
            })
            .chain(records.iter().map(|r| r.label.as_str()))
            .collect();
        let current_labels = records.iter().filter_map(|r| {
            r.current()
                .filter(|v| v.state != KeyState::Destroyed && present.contains(v.label.as_str()))
                .map(|v| v.label.clone())
        });
        let unmanaged = labels
            .iter()
            .filter(|label| !claimed.contains(label.as_str()))
            .cloned();
        let wanted: Vec<String> = current_labels.chain(unmanaged).collect();
        let now = self.now();
        let recheck = self.inner.config.inventory_recheck_secs;
        // Rows whose facts are young enough, by HSM label.
        let kept: HashMap<String, Arc<KeySummary>> = previous.read(|index| {
            wanted
                .iter()
                .filter_map(|label| {
                    let row = index.row_of_hsm_label(label)?;
                    let checked = row.checked_at?;
                    // A key that changed hands (adopted, or its record gone) is read again.
                    let same_kind = row.managed == claimed.contains(label.as_str());
                    (same_kind && now >= checked && now - checked < recheck_age(label, recheck))
                        .then(|| (label.clone(), row.clone()))
                })
                .collect()
        });
        let to_read: Vec<String> = wanted
            .into_iter()
            .filter(|label| !kept.contains_key(label))
            .collect();
        let infos = self.key_infos(&*hsm, to_read).await?;

        let mut index = InventoryIndex::default();
        for record in &records {
            let current_label = record.current().map(|v| v.label.as_str());
            let facts = current_label
                .and_then(|label| kept.get(label))
                .and_then(|row| row.facts());
            let change = match (current_label.and_then(|l| infos.get(l)), facts) {
                (None, Some(facts)) => RowChange {
                    row: Arc::new(KeySummary::managed_with(record, facts)),
                    other_labels: other_labels(record),
                },
                (current, _) => Self::row_of(record, current).checked(now),
            };
            change.apply(&mut index);
        }
        for label in labels.iter().filter(|l| !claimed.contains(l.as_str())) {
            if let Some(info) = infos.get(label) {
                let row = KeySummary::unmanaged(info).checked(now);
                index.upsert(Arc::new(row), Vec::new());
            } else if let Some(row) = kept.get(label) {
                index.upsert(row.clone(), Vec::new());
            }
        }
        Ok(index)
    }

    /// `key_info` of every label, `concurrency` at a time; keys deleted meanwhile are left out.
    async fn key_infos(
        &self,
        hsm: &dyn Hsm,
        labels: Vec<String>,
    ) -> Result<HashMap<String, HsmKeyInfo>, KeyError> {
        let infos: Vec<Option<HsmKeyInfo>> = stream::iter(labels)
            .map(|label| async move {
                match hsm.key_info(&label).await {
                    Err(HsmError::NotFound(_)) => Ok(None),
                    other => other,
                }
            })
            .buffer_unordered(self.inner.config.inventory_concurrency.max(1))
            .try_collect()
            .await?;
        Ok(infos
            .into_iter()
            .flatten()
            .map(|info| (info.label.clone(), info))
            .collect())
    }

    /// Every metadata record of the tenant.
    pub(crate) async fn load_records(&self, tenant: &TenantId) -> Result<Vec<KeyRecord>, KeyError> {
        let store = &self.inner.store;
        let ids: Vec<String> = store
            .list_ids(KEY_RECORD_KIND)
            .await?
            .into_iter()
            .filter(|id| is_record_of(tenant, id))
            .collect();
        let records: Vec<Option<KeyRecord>> = stream::iter(ids)
            .map(|id| async move {
                let record = store.get::<KeyRecord>(KEY_RECORD_KIND, &id).await?;
                Ok::<_, KeyError>(record.map(|r| r.value).filter(|r| r.tenant == *tenant))
            })
            .buffer_unordered(self.inner.config.inventory_concurrency.max(1))
            .try_collect()
            .await?;
        Ok(records.into_iter().flatten().collect())
    }
}

/// The HSM labels of a record's versions other than its alias (folded into the alias's row).
fn other_labels(record: &KeyRecord) -> Vec<String> {
    record
        .versions
        .iter()
        .filter(|v| v.label != record.label && v.state != KeyState::Destroyed)
        .map(|v| v.label.clone())
        .collect()
}

/// How old `label`'s facts may get: between half and all of `recheck`, fixed per label, so the
/// re-reads of a large partition spread over several refreshes instead of all falling due in the
/// same one.
fn recheck_age(label: &str, recheck: u64) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::hash::DefaultHasher::new();
    label.hash(&mut hasher);
    let spread = recheck / 2;
    recheck - hasher.finish() % spread.max(1)
}
