//! The state store: keymanager's only persistence. Every record is one HSM data object
//! `kms.<kind>.<id>` on the management partition, holding a JSON envelope
//! `{schema, kind, id, revision, updated_at, updated_by, sealed, body}`.
//!
//! - **Versioned**: every write bumps `revision`; [`StateStore::update`] and
//!   [`StateStore::delete`] name the revision they expect and get [`StoreError::Conflict`]
//!   otherwise; [`StateStore::modify`] is a read-modify-write that cannot lose updates.
//! - **Serialised across replicas**: all writes to a record happen under its lock object
//!   `kms.lock.<kind>.<id>` (see the `lock` module for the protocol and its residual race).
//! - **Durable before acknowledged**: every write is read back and compared byte for byte; a
//!   write whose answer was lost is decided by that read-back too ([`StoreError::NotDurable`] when
//!   the HSM holds something else).
//! - **Sealed secrets**: with [`Sealing::Sealed`], the body is AES-256-GCM ciphertext made *inside*
//!   the HSM under the seal key (no software key exists anywhere), with associated data binding it
//!   to kind, id and revision — a sealed body moved to another record or revision does not open.
//!   Note: an attacker who can write data objects can still roll a whole record back to an older
//!   envelope (revision and body together); detecting that needs the audit chain, not this store.
//! - **Cached reads**: [`StateStore::get`] serves from a cache of raw stored bytes that expires
//!   after [`StateStoreConfig::cache_ttl_secs`] on the [`Clock`] port and is refreshed by own
//!   writes, so replicas converge within the TTL. Reads under a lock always go to the HSM.

mod cache;
mod lock;
mod record;

#[cfg(test)]
pub(crate) mod test_hsm;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

pub use lock::LockRetry;

use crate::{Clock, DataObjectName, Hsm, HsmError, Timestamp};
use cache::ReadCache;
use lock::Lease;
use record::{Envelope, RecordKey, SCHEMA};

/// How often an operation that lost its lock (or raced a lock-less writer) starts over.
const MAX_OPERATION_ATTEMPTS: u32 = 5;

/// Whether a record's body is sealed by the HSM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealing {
    /// Body stored as readable JSON (non-secret state: partitions, config, roles).
    Plain,
    /// Body sealed with the HSM seal key (password hashes, TOTP secrets, credentials).
    Sealed,
}

/// A record as read or written, with the version facts from its envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The record.
    pub value: T,
    /// Starts at 1 and grows by one per write; pass it back to [`StateStore::update`].
    pub revision: u64,
    /// When the record was last written (by the writer's clock).
    pub updated_at: Timestamp,
    /// Who last wrote it (an actor id, for the audit trail).
    pub updated_by: String,
    /// Whether the body is sealed; a sealed record stays sealed on every update.
    pub sealed: bool,
}

/// Tunables of a [`StateStore`]. Every replica of an installation should use the same values
/// (apart from `replica`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateStoreConfig {
    /// This replica's name, written into the locks it holds so that a busy lock names its holder.
    pub replica: String,
    /// Label of the AES-256 seal key on the management partition.
    pub seal_key_label: String,
    /// How long a cached read is served without asking the HSM (0 = no cache). Bounds how long
    /// another replica's write stays invisible here.
    pub cache_ttl_secs: u64,
    /// Lifetime of a lock: after it, the lock of a crashed holder may be broken, so a crash
    /// blocks writes to the records it was changing for at most this long. Must exceed the
    /// longest operation plus the guard plus the clock skew between replicas.
    pub lock_ttl_secs: u64,
    /// A holder starts no write with less than this left on its lease (capped at half the TTL),
    /// so that a write in flight cannot land after the lease ended. Keep it at least the TSB
    /// client's request timeout.
    pub lock_guard_secs: u64,
    /// Waiting for busy locks.
    pub lock_retry: LockRetry,
}

impl Default for StateStoreConfig {
    fn default() -> Self {
        Self {
            replica: format!("replica-{}", uuid::Uuid::new_v4().simple()),
            seal_key_label: "kms.seal.v1".to_owned(),
            cache_ttl_secs: 2,
            lock_ttl_secs: 60,
            lock_guard_secs: 30,
            lock_retry: LockRetry::default(),
        }
    }
}

/// What can go wrong with a record.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The kind or id cannot name a record (see the naming rules on [`StateStore`]).
    #[error("invalid record name {kind:?}/{id:?}: {reason}")]
    InvalidName {
        /// Requested kind.
        kind: String,
        /// Requested id.
        id: String,
        /// The rule broken.
        reason: &'static str,
    },
    /// The record does not exist.
    #[error("record {kind}/{id} does not exist")]
    NotFound {
        /// Kind.
        kind: String,
        /// Id.
        id: String,
    },
    /// A create found the record already there.
    #[error("record {kind}/{id} already exists")]
    AlreadyExists {
        /// Kind.
        kind: String,
        /// Id.
        id: String,
    },
    /// Somebody else wrote the record since the caller read it.
    #[error("record {kind}/{id} changed meanwhile: expected revision {expected}, found {found}")]
    Conflict {
        /// Kind.
        kind: String,
        /// Id.
        id: String,
        /// The revision the caller based its change on.
        expected: u64,
        /// The revision stored now.
        found: u64,
    },
    /// Another replica held the record's lock for longer than this store waits.
    #[error("record {kind}/{id} is being changed by {holder}; try again")]
    LockBusy {
        /// Kind.
        kind: String,
        /// Id.
        id: String,
        /// The lock's owner as it names itself.
        holder: String,
    },
    /// The lock expired or was broken before the write; nothing was written.
    #[error("lost the lock on record {kind}/{id} before writing; nothing was written")]
    LockLost {
        /// Kind.
        kind: String,
        /// Id.
        id: String,
    },
    /// The stored record cannot be read (not an envelope, wrong name, unknown schema, or a sealed
    /// body that fails authentication). Never overwritten automatically.
    #[error("record {name} is unreadable: {reason}")]
    Corrupt {
        /// Data object name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The value could not be turned into JSON.
    #[error("record {name} could not be encoded: {reason}")]
    Encode {
        /// Data object name.
        name: String,
        /// Serializer message.
        reason: String,
    },
    /// The management partition failed.
    #[error(transparent)]
    Hsm(#[from] HsmError),
    /// The write's read-back did not return what was written: the write is not acknowledged.
    #[error("the write of {name} is not confirmed by the HSM: {reason}")]
    NotDurable {
        /// Data object name.
        name: String,
        /// What the read-back found.
        reason: String,
    },
}

impl StoreError {
    /// Whether trying the same operation again later may succeed without anybody intervening.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::LockBusy { .. } | Self::LockLost { .. } | Self::NotDurable { .. } => true,
            Self::Hsm(error) => matches!(error, HsmError::Unavailable(_) | HsmError::Internal(_)),
            _ => false,
        }
    }

    fn invalid(kind: &str, id: &str, reason: &'static str) -> Self {
        Self::InvalidName {
            kind: kind.to_owned(),
            id: id.to_owned(),
            reason,
        }
    }
}

/// Internal outcome of one locked attempt.
enum Attempt<R> {
    Done(R),
    /// Start over with a fresh lock (lock lost, or a lock-less writer got in between).
    Retry,
}

/// Versioned, optionally sealed records on the management partition, shared by every service.
///
/// Cheap to clone (one shared cache). Several instances — in one process or in several replicas —
/// may work on the same partition at once; that is what the locks are for.
///
/// Naming: kind is 1–32 of `[a-z0-9_-]` starting with a letter (`lock` is reserved); id is 1–200
/// of `[A-Za-z0-9._:@-]` starting with a letter or digit.
#[derive(Clone)]
pub struct StateStore {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) hsm: Arc<dyn Hsm>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: StateStoreConfig,
    cache: ReadCache,
    seal_key_ready: AtomicBool,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl StateStore {
    /// A store on `management` (the management partition's port) using `clock` for record times,
    /// lock expiry and cache freshness.
    pub fn new(management: Arc<dyn Hsm>, clock: Arc<dyn Clock>, config: StateStoreConfig) -> Self {
        let cache = ReadCache::new(config.cache_ttl_secs);
        Self {
            inner: Arc::new(Inner {
                hsm: management,
                clock,
                config,
                cache,
                seal_key_ready: AtomicBool::new(false),
            }),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &StateStoreConfig {
        &self.inner.config
    }

    /// Makes sure the seal key exists (creating it on first start). Call at start-up to fail early;
    /// sealing calls it by itself otherwise.
    pub async fn prepare(&self) -> Result<(), StoreError> {
        self.inner.ensure_seal_key().await
    }

    /// Re-reads a cached object in the background when its entry is past half its TTL (see the
    /// cache's refresh-ahead), so no request waits for the HSM when a hot entry would expire.
    fn refresh_ahead(&self, name: &DataObjectName) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Some(generation) = self.inner.cache.claim_refresh(name, self.inner.clock.now()) else {
            return;
        };
        let inner = self.inner.clone();
        let name = name.clone();
        runtime.spawn(async move {
            let read = inner.hsm.read_data_object(&name).await;
            let value = match &read {
                Ok(raw) => Some(raw.as_deref()),
                Err(error) => {
                    tracing::debug!(%name, %error, "a cache refresh-ahead failed; the entry ages out");
                    None
                }
            };
            inner
                .cache
                .put_refreshed(&name, generation, value, inner.clock.now());
        });
    }

    /// Forgets every cached read (e.g. after restoring a backup under a running replica).
    pub fn invalidate_cache(&self) {
        self.inner.cache.clear();
    }

    /// Reads a record, from the cache when it is fresh. `Ok(None)` when it does not exist.
    pub async fn get<T: DeserializeOwned>(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<Versioned<T>>, StoreError> {
        let key =
            RecordKey::new(kind, id).map_err(|reason| StoreError::invalid(kind, id, reason))?;
        let name = key.object_name();
        let raw = match self.inner.cache.get(&name, self.inner.clock.now()) {
            Some(cached) => {
                self.refresh_ahead(&name);
                cached.map(|bytes| bytes.to_vec())
            }
            None => self.inner.read_fresh(&name).await?,
        };
        match raw {
            None => Ok(None),
            Some(raw) => {
                let envelope = self.inner.parse(&key, &raw)?;
                self.inner.open(&key, envelope).await.map(Some)
            }
        }
    }

    /// Like [`StateStore::get`], but always asks the HSM (and refreshes the cache with the
    /// answer): for decisions that must not rest on another replica's write being up to
    /// [`StateStoreConfig::cache_ttl_secs`] old, such as whether a lease has expired.
    pub async fn get_fresh<T: DeserializeOwned>(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<Versioned<T>>, StoreError> {
        let key =
            RecordKey::new(kind, id).map_err(|reason| StoreError::invalid(kind, id, reason))?;
        match self.inner.read_fresh(&key.object_name()).await? {
            None => Ok(None),
            Some(raw) => {
                let envelope = self.inner.parse(&key, &raw)?;
                self.inner.open(&key, envelope).await.map(Some)
            }
        }
    }

    /// Like [`StateStore::get`] for hot paths (every session check): a cache hit returns the
    /// record decoded from the same bytes earlier, without parsing them again. Sealed records are
    /// opened on every read and never kept decoded, so no plaintext is cached.
    pub async fn get_shared<T: DeserializeOwned + Send + Sync + 'static>(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<Arc<Versioned<T>>>, StoreError> {
        let key =
            RecordKey::new(kind, id).map_err(|reason| StoreError::invalid(kind, id, reason))?;
        let name = key.object_name();
        let now = self.inner.clock.now();
        let cache = &self.inner.cache;
        let (raw, cached) = match cache.get_with_decoded::<Versioned<T>>(&name, now) {
            Some((_, Some(hit))) => {
                self.refresh_ahead(&name);
                return Ok(Some(hit));
            }
            Some((raw, None)) => (raw, true),
            None => {
                let fresh = self.inner.read_fresh(&name).await?;
                match cache.get_with_decoded::<Versioned<T>>(&name, now) {
                    Some((raw, _)) => (raw, true),
                    None => (fresh.map(Arc::from), false),
                }
            }
        };
        let Some(raw) = raw else {
            return Ok(None);
        };
        let envelope = self.inner.parse(&key, &raw)?;
        let sealed = envelope.sealed;
        let record = Arc::new(self.inner.open::<T>(&key, envelope).await?);
        if cached && !sealed {
            cache.remember_decoded(&name, &raw, record.clone());
        }
        Ok(Some(record))
    }

    /// Like [`StateStore::get`], but a missing record is [`StoreError::NotFound`].
    pub async fn require<T: DeserializeOwned>(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Versioned<T>, StoreError> {
        self.get(kind, id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: kind.to_owned(),
                id: id.to_owned(),
            })
    }

    /// Creates a record at revision 1; [`StoreError::AlreadyExists`] if it exists.
    pub async fn create<T: Serialize>(
        &self,
        kind: &str,
        id: &str,
        value: T,
        actor: &str,
        sealing: Sealing,
    ) -> Result<Versioned<T>, StoreError> {
        let key =
            RecordKey::new(kind, id).map_err(|reason| StoreError::invalid(kind, id, reason))?;
        let sealed = sealing == Sealing::Sealed;
        for _ in 0..MAX_OPERATION_ATTEMPTS {
            let lease = self.inner.acquire(&key).await?;
            let outcome = async {
                if self.inner.read_fresh(&key.object_name()).await?.is_some() {
                    return Err(key.already_exists());
                }
                self.inner
                    .write(&key, &lease, None, &value, actor, sealed)
                    .await
            }
            .await;
            self.inner.release(lease).await;
            match outcome {
                Err(StoreError::LockLost { .. }) => continue,
                other => return other.map(|meta| meta.with(value)),
            }
        }
        Err(key.lock_lost())
    }

    /// Replaces a record whose stored revision is `expected_revision` ([`StoreError::Conflict`]
    /// otherwise, [`StoreError::NotFound`] if it is gone). Sealing stays as created.
    pub async fn update<T: Serialize>(
        &self,
        kind: &str,
        id: &str,
        expected_revision: u64,
        value: T,
        actor: &str,
    ) -> Result<Versioned<T>, StoreError> {
        let key =
            RecordKey::new(kind, id).map_err(|reason| StoreError::invalid(kind, id, reason))?;
        for _ in 0..MAX_OPERATION_ATTEMPTS {
            let lease = self.inner.acquire(&key).await?;
            let outcome = async {
                let current = self.inner.current(&key, expected_revision).await?;
                let revision = Some(current.revision);
                self.inner
                    .write(&key, &lease, revision, &value, actor, current.sealed)
                    .await
            }
            .await;
            self.inner.release(lease).await;
            match outcome {
                Err(StoreError::LockLost { .. }) => continue,
                other => return other.map(|meta| meta.with(value)),
            }
        }
        Err(key.lock_lost())
    }

    /// Read-modify-write under the record's lock: `change` sees the current record (`None` if
    /// absent) and returns the new value, or an error that aborts without writing. Retried (with
    /// `change` called again on the then-current record) only when the lock was lost before the
    /// write, so `change` must be a pure function of its input. A new record gets `sealing`; an
    /// existing one stays sealed if it was, and becomes sealed if `sealing` asks for it.
    pub async fn modify<T, E, F>(
        &self,
        kind: &str,
        id: &str,
        sealing: Sealing,
        actor: &str,
        mut change: F,
    ) -> Result<Versioned<T>, E>
    where
        T: Serialize + DeserializeOwned,
        E: From<StoreError>,
        F: FnMut(Option<Versioned<T>>) -> Result<T, E>,
    {
        let key =
            RecordKey::new(kind, id).map_err(|reason| StoreError::invalid(kind, id, reason))?;
        for _ in 0..MAX_OPERATION_ATTEMPTS {
            let lease = self.inner.acquire(&key).await?;
            let outcome = self
                .modify_once(&key, &lease, sealing, actor, &mut change)
                .await;
            self.inner.release(lease).await;
            match outcome {
                Ok(Attempt::Done(written)) => return Ok(written),
                Ok(Attempt::Retry) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(key.lock_lost().into())
    }

    async fn modify_once<T, E, F>(
        &self,
        key: &RecordKey,
        lease: &Lease,
        sealing: Sealing,
        actor: &str,
        change: &mut F,
    ) -> Result<Attempt<Versioned<T>>, E>
    where
        T: Serialize + DeserializeOwned,
        E: From<StoreError>,
        F: FnMut(Option<Versioned<T>>) -> Result<T, E>,
    {
        let inner = &self.inner;
        let current = match inner.read_fresh(&key.object_name()).await? {
            None => None,
            Some(raw) => {
                let envelope = inner.parse(key, &raw)?;
                Some(inner.open::<T>(key, envelope).await?)
            }
        };
        let previous = current.as_ref().map(|c| (c.revision, c.sealed));
        let value = change(current)?;
        let sealed = sealing == Sealing::Sealed || previous.is_some_and(|(_, sealed)| sealed);
        let revision = previous.map(|(revision, _)| revision);
        match inner
            .write(key, lease, revision, &value, actor, sealed)
            .await
        {
            Ok(meta) => Ok(Attempt::Done(meta.with(value))),
            // Lost the lock before writing, or a writer that takes no lock created the record
            // between our read and our create: read again under a fresh lock.
            Err(StoreError::LockLost { .. } | StoreError::AlreadyExists { .. }) => {
                Ok(Attempt::Retry)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Deletes a record whose stored revision is `expected_revision`.
    pub async fn delete(
        &self,
        kind: &str,
        id: &str,
        expected_revision: u64,
    ) -> Result<(), StoreError> {
        let key =
            RecordKey::new(kind, id).map_err(|reason| StoreError::invalid(kind, id, reason))?;
        for _ in 0..MAX_OPERATION_ATTEMPTS {
            let lease = self.inner.acquire(&key).await?;
            let outcome = async {
                self.inner.current(&key, expected_revision).await?;
                self.inner.remove(&key, &lease).await
            }
            .await;
            self.inner.release(lease).await;
            match outcome {
                Err(StoreError::LockLost { .. }) => continue,
                other => return other,
            }
        }
        Err(key.lock_lost())
    }

    /// Ids of all records of `kind`, sorted. Lists the partition's data objects (never cached).
    pub async fn list_ids(&self, kind: &str) -> Result<Vec<String>, StoreError> {
        record::validate_kind(kind).map_err(|reason| StoreError::invalid(kind, "", reason))?;
        let prefix = format!("kms.{kind}.");
        let mut ids: Vec<String> = self
            .inner
            .hsm
            .list_data_objects()
            .await?
            .iter()
            .filter_map(|name| name.as_str().strip_prefix(&prefix))
            .filter(|id| record::validate_id(id).is_ok())
            .map(str::to_owned)
            .collect();
        ids.sort();
        Ok(ids)
    }
}

/// The stored facts of a record needed to check a revision, without opening its body.
struct Current {
    revision: u64,
    sealed: bool,
}

/// The envelope facts of a successful write.
struct Written {
    revision: u64,
    updated_at: Timestamp,
    updated_by: String,
    sealed: bool,
}

impl Written {
    fn with<T>(self, value: T) -> Versioned<T> {
        Versioned {
            value,
            revision: self.revision,
            updated_at: self.updated_at,
            updated_by: self.updated_by,
            sealed: self.sealed,
        }
    }
}

impl RecordKey {
    fn already_exists(&self) -> StoreError {
        StoreError::AlreadyExists {
            kind: self.kind().to_owned(),
            id: self.id().to_owned(),
        }
    }

    fn lock_lost(&self) -> StoreError {
        StoreError::LockLost {
            kind: self.kind().to_owned(),
            id: self.id().to_owned(),
        }
    }

    fn not_found(&self) -> StoreError {
        StoreError::NotFound {
            kind: self.kind().to_owned(),
            id: self.id().to_owned(),
        }
    }
}

impl Inner {
    /// Reads a data object from the HSM (never the cache) and refreshes the cache with it.
    async fn read_fresh(&self, name: &DataObjectName) -> Result<Option<Vec<u8>>, StoreError> {
        let raw = self.hsm.read_data_object(name).await?;
        self.cache.put(name, raw.as_deref(), self.clock.now());
        Ok(raw)
    }

    fn parse(&self, key: &RecordKey, raw: &[u8]) -> Result<Envelope, StoreError> {
        Envelope::parse(key, raw).map_err(|reason| StoreError::Corrupt {
            name: key.object_name().to_string(),
            reason,
        })
    }

    /// Under the lock: the stored record must exist at `expected_revision`.
    async fn current(
        &self,
        key: &RecordKey,
        expected_revision: u64,
    ) -> Result<Current, StoreError> {
        let raw = self
            .read_fresh(&key.object_name())
            .await?
            .ok_or_else(|| key.not_found())?;
        let envelope = self.parse(key, &raw)?;
        if envelope.revision != expected_revision {
            return Err(StoreError::Conflict {
                kind: key.kind().to_owned(),
                id: key.id().to_owned(),
                expected: expected_revision,
                found: envelope.revision,
            });
        }
        Ok(Current {
            revision: envelope.revision,
            sealed: envelope.sealed,
        })
    }

    /// Decodes (and, if sealed, unseals in the HSM) an envelope's body.
    async fn open<T: DeserializeOwned>(
        &self,
        key: &RecordKey,
        envelope: Envelope,
    ) -> Result<Versioned<T>, StoreError> {
        let name = key.object_name();
        let corrupt = |reason: String| StoreError::Corrupt {
            name: name.to_string(),
            reason,
        };
        let value = if envelope.sealed {
            let (label, blob) = record::decode_sealed(&envelope.body)
                .map_err(|reason| corrupt(reason.to_owned()))?;
            if label != self.config.seal_key_label {
                return Err(corrupt(format!(
                    "sealed under key {label}, but this store seals with {}",
                    self.config.seal_key_label
                )));
            }
            let plaintext = match self
                .hsm
                .unseal(&label, &blob, &key.aad(envelope.revision))
                .await
            {
                Ok(plaintext) => plaintext,
                Err(HsmError::Integrity(reason)) => {
                    return Err(corrupt(format!(
                        "the sealed body fails authentication (altered, or copied from another \
                         record or revision): {reason}"
                    )));
                }
                Err(error) => return Err(error.into()),
            };
            // The error text of serde_json never quotes the input, so no secret leaks into it.
            serde_json::from_slice(&plaintext).map_err(|error| {
                corrupt(format!("the sealed body is not the expected JSON: {error}"))
            })?
        } else {
            serde_json::from_value(envelope.body)
                .map_err(|error| corrupt(format!("the body is not the expected JSON: {error}")))?
        };
        Ok(Versioned {
            value,
            revision: envelope.revision,
            updated_at: envelope.updated_at,
            updated_by: envelope.updated_by,
            sealed: envelope.sealed,
        })
    }

    async fn ensure_seal_key(&self) -> Result<(), StoreError> {
        if !self.seal_key_ready.load(Ordering::Acquire) {
            self.hsm
                .ensure_seal_key(&self.config.seal_key_label)
                .await?;
            self.seal_key_ready.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Under the lock: writes `value` as the revision after `previous` (or as revision 1 with a
    /// create-if-absent when `previous` is `None`), then reads it back.
    async fn write<T: Serialize>(
        &self,
        key: &RecordKey,
        lease: &Lease,
        previous: Option<u64>,
        value: &T,
        actor: &str,
        sealed: bool,
    ) -> Result<Written, StoreError> {
        let name = key.object_name();
        let encode_error = |error: serde_json::Error| StoreError::Encode {
            name: name.to_string(),
            reason: error.to_string(),
        };
        let revision = previous.map_or(1, |revision| revision.saturating_add(1));
        let body = if sealed {
            self.ensure_seal_key().await?;
            let plaintext = Zeroizing::new(serde_json::to_vec(value).map_err(encode_error)?);
            let label = &self.config.seal_key_label;
            let blob = self.hsm.seal(label, &plaintext, &key.aad(revision)).await?;
            let framed =
                record::encode_sealed(label, &blob).map_err(|reason| StoreError::Encode {
                    name: name.to_string(),
                    reason: reason.to_owned(),
                })?;
            serde_json::Value::String(framed)
        } else {
            serde_json::to_value(value).map_err(encode_error)?
        };
        let envelope = Envelope {
            schema: SCHEMA,
            kind: key.kind().to_owned(),
            id: key.id().to_owned(),
            revision,
            updated_at: self.clock.now(),
            updated_by: actor.to_owned(),
            sealed,
            body,
        };
        let bytes = serde_json::to_vec(&envelope).map_err(encode_error)?;

        self.verify(key, lease).await?;
        let written = match previous {
            None => self.hsm.create_data_object(&name, &bytes).await,
            Some(_) => self.hsm.replace_data_object(&name, &bytes).await,
        };
        if let Err(error) = written {
            // The answer may have been lost after the HSM applied the write: the stored value
            // decides. Anything but our bytes means the write did not happen.
            self.cache.invalidate(&name);
            match self.hsm.read_data_object(&name).await {
                Ok(Some(stored)) if stored == bytes => {}
                _ => {
                    return Err(match error {
                        HsmError::AlreadyExists(_) => key.already_exists(),
                        HsmError::NotFound(_) => key.not_found(),
                        error => error.into(),
                    });
                }
            }
        }
        self.confirm(&name, Some(&bytes)).await?;
        Ok(Written {
            revision,
            updated_at: envelope.updated_at,
            updated_by: envelope.updated_by,
            sealed,
        })
    }

    /// Under the lock: deletes the record and confirms it is gone.
    async fn remove(&self, key: &RecordKey, lease: &Lease) -> Result<(), StoreError> {
        let name = key.object_name();
        self.verify(key, lease).await?;
        if let Err(error) = self.hsm.delete_data_object(&name).await {
            self.cache.invalidate(&name);
            match self.hsm.read_data_object(&name).await {
                Ok(None) => {}
                _ => return Err(error.into()),
            }
        }
        self.confirm(&name, None).await
    }

    /// Reads `name` back and requires exactly `expected`; only then is a write acknowledged (and
    /// the cache refreshed with it).
    async fn confirm(
        &self,
        name: &DataObjectName,
        expected: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let not_durable = |reason: String| StoreError::NotDurable {
            name: name.to_string(),
            reason,
        };
        match self.hsm.read_data_object(name).await {
            Ok(stored) if stored.as_deref() == expected => {
                self.cache.put(name, expected, self.clock.now());
                Ok(())
            }
            Ok(stored) => {
                self.cache.invalidate(name);
                Err(not_durable(match stored {
                    None => "the object is missing after the write".to_owned(),
                    Some(_) if expected.is_none() => {
                        "the object is still there after the delete".to_owned()
                    }
                    Some(_) => "the object holds other bytes than were written".to_owned(),
                }))
            }
            Err(error) => {
                self.cache.invalidate(name);
                Err(not_durable(format!("the read-back failed: {error}")))
            }
        }
    }
}
