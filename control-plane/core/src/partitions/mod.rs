//! The partition registry: which HSM partitions keymanager serves as tenants, how to reach each,
//! and where each one's credentials are kept (DESIGN §4.1).
//!
//! - A registration is a plain state-store record `kms.partition.<tenant>` (name, colour, TSB
//!   endpoint, auth mode, optional private CA, status, and a [`CredentialRef`]). Credentials are
//!   never in it: they are a JSON document ([`PartitionCredentials`]) kept in the vault the
//!   operator chose for the partition.
//! - One HSM client per partition, built by the [`PartitionConnector`] port from that partition's
//!   own endpoint and credentials, cached per (tenant, credentials version, user) — nothing of one
//!   tenant is ever sent with another's credentials, and a credential rotation swaps the client
//!   without dropping requests in flight.
//! - Users may keep their own credentials for a partition (same vault as the partition); their
//!   requests then use a client built from those.

mod credentials;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use km_domain::{
    AuthMode, Colour, DisplayName, PartitionStatus, PrincipalId, TenantId, TsbEndpoint,
};
use serde::{Deserialize, Serialize};

pub use credentials::{ApiKeyCredentials, PartitionCredentials};

use crate::{
    CredentialRef, Hsm, HsmError, KeystoreStatistics, Sealing, SecretName, SecretVault,
    ServiceInfo, StateStore, StoreError, VaultError, VaultKind, Versioned,
};

/// State-store kind of partition registrations.
pub const PARTITION_KIND: &str = "partition";
/// State-store kind of per-user partition credential references (`<tenant>.<principal>`).
pub const USER_CREDENTIALS_KIND: &str = "partition-user-cred";

/// How to reach a partition's TSB (everything but the secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionTarget {
    /// The TSB REST base URL.
    pub endpoint: TsbEndpoint,
    /// How keymanager authenticates.
    pub auth: AuthMode,
    /// PEM of a private CA to trust for this endpoint (public data), if the TSB's certificate is
    /// not issued by a public CA.
    #[serde(default)]
    pub ca_pem: Option<String>,
}

/// A registered partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    /// The tenant id.
    pub id: TenantId,
    /// Display name.
    pub display_name: DisplayName,
    /// Accent colour.
    pub colour: Colour,
    /// How to reach the TSB.
    pub target: PartitionTarget,
    /// Where the partition's credentials are kept.
    pub credentials: CredentialRef,
    /// Grows by one per credential rotation; cached clients of an older version are replaced.
    pub credentials_version: u64,
    /// Served or suspended.
    pub status: PartitionStatus,
}

/// What "test connection" found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionReport {
    /// `versionInfo` and `licenseInfo`.
    pub service: ServiceInfo,
    /// Keystore object counts.
    pub statistics: KeystoreStatistics,
}

/// The port that turns a target plus credentials into an [`Hsm`] for that one partition
/// (km-hsm-tsb implements it with a TSB client).
pub trait PartitionConnector: Send + Sync + fmt::Debug {
    /// A client for `target` that authenticates with `credentials` only.
    fn connect(
        &self,
        target: &PartitionTarget,
        credentials: &PartitionCredentials,
    ) -> Result<Arc<dyn Hsm>, HsmError>;
}

/// The configured vaults by id. `hsm` (the management partition) is always there.
#[derive(Clone, Default)]
pub struct VaultSet {
    vaults: BTreeMap<String, Arc<dyn SecretVault>>,
    default: Option<String>,
}

impl fmt::Debug for VaultSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.vaults.iter().map(|(id, vault)| (id, vault.kind())))
            .finish()
    }
}

impl VaultSet {
    /// No vaults yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a vault under `id` (the first one added is the default for new partitions unless
    /// [`VaultSet::with_default`] says otherwise).
    pub fn with(mut self, id: impl Into<String>, vault: Arc<dyn SecretVault>) -> Self {
        let id = id.into();
        if self.default.is_none() {
            self.default = Some(id.clone());
        }
        self.vaults.insert(id, vault);
        self
    }

    /// Makes `id` the default vault.
    pub fn with_default(mut self, id: impl Into<String>) -> Self {
        self.default = Some(id.into());
        self
    }

    /// The vault `id`.
    pub fn get(&self, id: &str) -> Option<&Arc<dyn SecretVault>> {
        self.vaults.get(id)
    }

    /// Every vault: id and kind, sorted by id.
    pub fn list(&self) -> Vec<(String, VaultKind)> {
        self.vaults
            .iter()
            .map(|(id, vault)| (id.clone(), vault.kind()))
            .collect()
    }

    /// The default vault's id.
    pub fn default_id(&self) -> Option<&str> {
        self.default.as_deref()
    }
}

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    /// No such partition.
    #[error("no partition {0}")]
    NotFound(TenantId),
    /// The id is taken.
    #[error("a partition with id {0} is registered already")]
    Exists(TenantId),
    /// The partition is suspended: nothing is sent to its HSM.
    #[error("partition {0} is suspended; an operator must resume it first")]
    Suspended(TenantId),
    /// The named vault is not configured.
    #[error("there is no vault {0:?}; configured vaults: {1}")]
    UnknownVault(String, String),
    /// The partition's HSM refused or could not be reached with the given credentials.
    #[error("{0}")]
    Connection(HsmError),
    /// The vault failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The vault holds no credentials for the partition.
    #[error(
        "the credentials of partition {0} are missing from its vault; an operator must set them again"
    )]
    CredentialsMissing(TenantId),
    /// The credentials document is not usable.
    #[error("{0}")]
    InvalidCredentials(String),
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Explains a connection failure for the person onboarding a partition: the TSB's own error plus
/// what to check.
pub fn explain_connection_failure(error: &HsmError) -> String {
    match error {
        HsmError::Unauthorized(detail) => format!(
            "the TSB refused the credentials ({detail}); check the API key (each API-key group of the TSB needs a valid key), bearer token or client certificate for this partition"
        ),
        HsmError::Unavailable(detail) => format!(
            "the TSB could not be reached ({detail}); check the endpoint URL, the network path and, for https, the CA certificate"
        ),
        HsmError::Refused(detail) => format!(
            "the TSB answered but refused the request ({detail}); check that the partition's licence includes the REST API"
        ),
        other => format!("the TSB failed: {other}"),
    }
}

/// A user's own credentials for a partition: where they are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct UserCredentialRecord {
    credentials: CredentialRef,
    version: u64,
}

/// Cached clients: (tenant, user or None for the shared credentials) → (version, client).
type ClientCache = HashMap<(TenantId, Option<PrincipalId>), (u64, Arc<dyn Hsm>)>;

/// The partition registry and the per-partition HSM clients.
#[derive(Clone)]
pub struct Partitions {
    inner: Arc<Inner>,
}

struct Inner {
    store: StateStore,
    vaults: VaultSet,
    connector: Arc<dyn PartitionConnector>,
    clients: Mutex<ClientCache>,
}

impl fmt::Debug for Partitions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Partitions")
            .field("vaults", &self.inner.vaults)
            .finish_non_exhaustive()
    }
}

/// What an operator gives to register a partition.
#[derive(Debug, Clone)]
pub struct NewPartition {
    /// Tenant id (slug).
    pub id: TenantId,
    /// Display name.
    pub display_name: DisplayName,
    /// Accent colour; `None` = the id's palette colour.
    pub colour: Option<Colour>,
    /// How to reach the TSB.
    pub target: PartitionTarget,
    /// Vault id for the credentials; `None` = the default vault.
    pub vault: Option<String>,
    /// The credentials.
    pub credentials: PartitionCredentials,
}

/// A change of a registration (absent fields stay).
#[derive(Debug, Clone, Default)]
pub struct PartitionUpdate {
    /// New display name.
    pub display_name: Option<DisplayName>,
    /// New colour.
    pub colour: Option<Colour>,
    /// Suspend or resume.
    pub status: Option<PartitionStatus>,
}

impl Partitions {
    /// The registry over the management partition's `store`, with the configured vaults.
    pub fn new(
        store: StateStore,
        vaults: VaultSet,
        connector: Arc<dyn PartitionConnector>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                vaults,
                connector,
                clients: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The configured vaults.
    pub fn vaults(&self) -> &VaultSet {
        &self.inner.vaults
    }

    /// Every registered partition, sorted by display name.
    pub async fn list(&self) -> Result<Vec<Arc<Versioned<PartitionRecord>>>, PartitionError> {
        let ids = self.inner.store.list_ids(PARTITION_KIND).await?;
        let mut records = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(record) = self
                .inner
                .store
                .get_shared::<PartitionRecord>(PARTITION_KIND, &id)
                .await?
            {
                records.push(record);
            }
        }
        records.sort_by(|a, b| {
            a.value
                .display_name
                .as_str()
                .cmp(b.value.display_name.as_str())
                .then_with(|| a.value.id.cmp(&b.value.id))
        });
        Ok(records)
    }

    /// One partition's registration.
    pub async fn get(
        &self,
        id: &TenantId,
    ) -> Result<Arc<Versioned<PartitionRecord>>, PartitionError> {
        self.inner
            .store
            .get_shared::<PartitionRecord>(PARTITION_KIND, id.as_str())
            .await?
            .ok_or_else(|| PartitionError::NotFound(id.clone()))
    }

    /// Connects with `credentials` and asks the TSB for its version, licence and keystore
    /// statistics. Nothing is stored.
    pub async fn test_connection(
        &self,
        target: &PartitionTarget,
        credentials: &PartitionCredentials,
    ) -> Result<ConnectionReport, PartitionError> {
        credentials.check_against(target.auth)?;
        let hsm = self
            .inner
            .connector
            .connect(target, credentials)
            .map_err(PartitionError::Connection)?;
        probe(hsm.as_ref()).await
    }

    /// Registers a partition: tests the connection, creates the registration, stores the
    /// credentials in the chosen vault (rolled back if that fails).
    pub async fn onboard(
        &self,
        new: NewPartition,
        actor: &str,
    ) -> Result<PartitionRecord, PartitionError> {
        let vault_id = match new.vault {
            Some(vault) => vault,
            None => self
                .inner
                .vaults
                .default_id()
                .map(str::to_owned)
                .ok_or_else(|| self.unknown_vault("(default)"))?,
        };
        let vault = self.vault(&vault_id)?.clone();
        if self
            .inner
            .store
            .get::<PartitionRecord>(PARTITION_KIND, new.id.as_str())
            .await?
            .is_some()
        {
            return Err(PartitionError::Exists(new.id));
        }
        self.test_connection(&new.target, &new.credentials).await?;
        let record = PartitionRecord {
            colour: new.colour.unwrap_or_else(|| Colour::default_for(&new.id)),
            credentials: CredentialRef {
                vault: vault_id,
                name: shared_secret_name(&new.id)?,
            },
            credentials_version: 1,
            status: PartitionStatus::Active,
            display_name: new.display_name,
            target: new.target,
            id: new.id,
        };
        match self
            .inner
            .store
            .create(
                PARTITION_KIND,
                record.id.as_str(),
                record.clone(),
                actor,
                Sealing::Plain,
            )
            .await
        {
            Ok(_) => {}
            Err(StoreError::AlreadyExists { .. }) => return Err(PartitionError::Exists(record.id)),
            Err(error) => return Err(error.into()),
        }
        if let Err(error) = vault
            .put(
                &record.credentials.name,
                &new.credentials.to_secret_value()?,
            )
            .await
        {
            if let Ok(current) = self.get(&record.id).await {
                let _ = self
                    .inner
                    .store
                    .delete(PARTITION_KIND, record.id.as_str(), current.revision)
                    .await;
            }
            return Err(error.into());
        }
        Ok(record)
    }

    /// Changes name, colour or status.
    pub async fn update(
        &self,
        id: &TenantId,
        update: PartitionUpdate,
        actor: &str,
    ) -> Result<PartitionRecord, PartitionError> {
        let changed = self
            .inner
            .store
            .modify(
                PARTITION_KIND,
                id.as_str(),
                Sealing::Plain,
                actor,
                |current: Option<Versioned<PartitionRecord>>| {
                    let mut record = current
                        .ok_or_else(|| PartitionError::NotFound(id.clone()))?
                        .value;
                    if let Some(name) = &update.display_name {
                        record.display_name = name.clone();
                    }
                    if let Some(colour) = &update.colour {
                        record.colour = colour.clone();
                    }
                    if let Some(status) = update.status {
                        record.status = status;
                    }
                    Ok::<_, PartitionError>(record)
                },
            )
            .await?;
        Ok(changed.value)
    }

    /// Replaces a partition's credentials (and, optionally, its endpoint or auth mode) without
    /// downtime: the new ones are tested first, then stored, then the registration's credentials
    /// version moves on so every replica builds a new client; requests in flight finish on the
    /// old one.
    pub async fn rotate_credentials(
        &self,
        id: &TenantId,
        target: Option<PartitionTarget>,
        credentials: PartitionCredentials,
        actor: &str,
    ) -> Result<PartitionRecord, PartitionError> {
        let current = self.get(id).await?;
        let target = target.unwrap_or_else(|| current.value.target.clone());
        self.test_connection(&target, &credentials).await?;
        let vault = self.vault(&current.value.credentials.vault)?.clone();
        vault
            .put(
                &current.value.credentials.name,
                &credentials.to_secret_value()?,
            )
            .await?;
        let changed = self
            .inner
            .store
            .modify(
                PARTITION_KIND,
                id.as_str(),
                Sealing::Plain,
                actor,
                |stored: Option<Versioned<PartitionRecord>>| {
                    let mut record = stored
                        .ok_or_else(|| PartitionError::NotFound(id.clone()))?
                        .value;
                    record.target = target.clone();
                    record.credentials_version += 1;
                    Ok::<_, PartitionError>(record)
                },
            )
            .await?;
        Ok(changed.value)
    }

    /// Removes a partition from keymanager: its registration, its credentials and its users' own
    /// credentials. Nothing in the partition's HSM is touched.
    pub async fn offboard(&self, id: &TenantId) -> Result<(), PartitionError> {
        let current = self.get(id).await?;
        let vault = self.vault(&current.value.credentials.vault)?.clone();
        for user_record in self.user_credential_ids(id).await? {
            if let Some(stored) = self
                .inner
                .store
                .get::<UserCredentialRecord>(USER_CREDENTIALS_KIND, &user_record)
                .await?
            {
                vault.delete(&stored.value.credentials.name).await?;
                self.inner
                    .store
                    .delete(USER_CREDENTIALS_KIND, &user_record, stored.revision)
                    .await?;
            }
        }
        vault.delete(&current.value.credentials.name).await?;
        self.inner
            .store
            .delete(PARTITION_KIND, id.as_str(), current.revision)
            .await?;
        self.forget_clients(id);
        Ok(())
    }

    /// Stores `user`'s own credentials for partition `id` (tested first), in the partition's vault.
    pub async fn set_user_credentials(
        &self,
        id: &TenantId,
        user: &PrincipalId,
        credentials: PartitionCredentials,
        actor: &str,
    ) -> Result<ConnectionReport, PartitionError> {
        let partition = self.get(id).await?;
        let report = self
            .test_connection(&partition.value.target, &credentials)
            .await?;
        let vault = self.vault(&partition.value.credentials.vault)?.clone();
        let name = user_secret_name(id, user)?;
        vault.put(&name, &credentials.to_secret_value()?).await?;
        let vault_id = partition.value.credentials.vault.clone();
        self.inner
            .store
            .modify(
                USER_CREDENTIALS_KIND,
                &user_record_id(id, user),
                Sealing::Plain,
                actor,
                |stored: Option<Versioned<UserCredentialRecord>>| {
                    Ok::<_, StoreError>(UserCredentialRecord {
                        credentials: CredentialRef {
                            vault: vault_id.clone(),
                            name: name.clone(),
                        },
                        version: stored.map_or(1, |s| s.value.version + 1),
                    })
                },
            )
            .await?;
        Ok(report)
    }

    /// Removes `user`'s own credentials for `id` (absent is fine).
    pub async fn clear_user_credentials(
        &self,
        id: &TenantId,
        user: &PrincipalId,
    ) -> Result<(), PartitionError> {
        let record_id = user_record_id(id, user);
        let Some(stored) = self
            .inner
            .store
            .get::<UserCredentialRecord>(USER_CREDENTIALS_KIND, &record_id)
            .await?
        else {
            return Ok(());
        };
        self.vault(&stored.value.credentials.vault)?
            .delete(&stored.value.credentials.name)
            .await?;
        self.inner
            .store
            .delete(USER_CREDENTIALS_KIND, &record_id, stored.revision)
            .await?;
        if let Ok(mut clients) = self.inner.clients.lock() {
            clients.remove(&(id.clone(), Some(user.clone())));
        }
        Ok(())
    }

    /// Whether `user` keeps own credentials for `id`.
    pub async fn has_user_credentials(
        &self,
        id: &TenantId,
        user: &PrincipalId,
    ) -> Result<bool, PartitionError> {
        Ok(self
            .inner
            .store
            .get::<UserCredentialRecord>(USER_CREDENTIALS_KIND, &user_record_id(id, user))
            .await?
            .is_some())
    }

    /// The HSM client for requests on partition `id` made by `user`: built from the user's own
    /// credentials when they keep some, from the partition's otherwise. Refused while the
    /// partition is suspended.
    pub async fn hsm_for(
        &self,
        id: &TenantId,
        user: Option<&PrincipalId>,
    ) -> Result<Arc<dyn Hsm>, PartitionError> {
        let partition = self.get(id).await?;
        if partition.value.status == PartitionStatus::Suspended {
            return Err(PartitionError::Suspended(id.clone()));
        }
        if let Some(user) = user
            && let Some(own) = self
                .inner
                .store
                .get::<UserCredentialRecord>(USER_CREDENTIALS_KIND, &user_record_id(id, user))
                .await?
        {
            let key = (id.clone(), Some(user.clone()));
            return self
                .client(
                    key,
                    own.value.version,
                    &partition.value,
                    &own.value.credentials,
                )
                .await;
        }
        self.client(
            (id.clone(), None),
            partition.value.credentials_version,
            &partition.value,
            &partition.value.credentials,
        )
        .await
    }

    async fn client(
        &self,
        key: (TenantId, Option<PrincipalId>),
        version: u64,
        partition: &PartitionRecord,
        credentials: &CredentialRef,
    ) -> Result<Arc<dyn Hsm>, PartitionError> {
        if let Ok(clients) = self.inner.clients.lock()
            && let Some((cached_version, hsm)) = clients.get(&key)
            && *cached_version == version
        {
            return Ok(hsm.clone());
        }
        let secret = self
            .vault(&credentials.vault)?
            .get(&credentials.name)
            .await?
            .ok_or_else(|| PartitionError::CredentialsMissing(partition.id.clone()))?;
        let credentials = PartitionCredentials::from_secret_value(&secret)?;
        let hsm = self
            .inner
            .connector
            .connect(&partition.target, &credentials)
            .map_err(PartitionError::Connection)?;
        if let Ok(mut clients) = self.inner.clients.lock() {
            clients.insert(key, (version, hsm.clone()));
        }
        Ok(hsm)
    }

    fn forget_clients(&self, id: &TenantId) {
        if let Ok(mut clients) = self.inner.clients.lock() {
            clients.retain(|(tenant, _), _| tenant != id);
        }
    }

    async fn user_credential_ids(&self, id: &TenantId) -> Result<Vec<String>, PartitionError> {
        let prefix = format!("{id}.");
        Ok(self
            .inner
            .store
            .list_ids(USER_CREDENTIALS_KIND)
            .await?
            .into_iter()
            .filter(|record| record.starts_with(&prefix))
            .collect())
    }

    fn vault(&self, id: &str) -> Result<&Arc<dyn SecretVault>, PartitionError> {
        self.inner
            .vaults
            .get(id)
            .ok_or_else(|| self.unknown_vault(id))
    }

    fn unknown_vault(&self, id: &str) -> PartitionError {
        let known: Vec<String> = self
            .inner
            .vaults
            .list()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        PartitionError::UnknownVault(id.to_owned(), known.join(", "))
    }
}

/// Asks a partition for what "test connection" shows.
async fn probe(hsm: &dyn Hsm) -> Result<ConnectionReport, PartitionError> {
    let service = hsm
        .service_info()
        .await
        .map_err(PartitionError::Connection)?;
    let statistics = hsm
        .keystore_statistics()
        .await
        .map_err(PartitionError::Connection)?;
    Ok(ConnectionReport {
        service,
        statistics,
    })
}

/// Vault secret name of a partition's shared credentials.
fn shared_secret_name(id: &TenantId) -> Result<SecretName, PartitionError> {
    SecretName::new(format!("km-partition-{id}"))
        .map_err(|invalid| PartitionError::InvalidCredentials(invalid.to_string()))
}

/// A short stable digest of (tenant, user): principal ids may be long and contain characters that
/// record ids and vault secret names may not.
fn user_key(id: &TenantId, user: &PrincipalId) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::new()
        .chain_update(id.as_str().as_bytes())
        .chain_update([0u8])
        .chain_update(user.as_str().as_bytes())
        .finalize();
    digest
        .iter()
        .take(20)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Vault secret name of a user's own credentials for a partition.
fn user_secret_name(id: &TenantId, user: &PrincipalId) -> Result<SecretName, PartitionError> {
    SecretName::new(format!("km-user-{}", user_key(id, user)))
        .map_err(|invalid| PartitionError::InvalidCredentials(invalid.to_string()))
}

/// State-store id of a user's own-credentials record: `<tenant>.<digest>`.
fn user_record_id(id: &TenantId, user: &PrincipalId) -> String {
    format!("{id}.{}", user_key(id, user))
}
