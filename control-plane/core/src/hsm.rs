//! The HSM port: everything the control plane asks of one HSM partition.
//!
//! One value of this trait talks to exactly one partition with that partition's own credentials,
//! so nothing of one tenant can ever be sent with another tenant's credentials. The port grows with
//! the use cases (keys, crypto, certificates, requests); it holds no key material, only references.

use std::fmt;

use async_trait::async_trait;

/// The name of an HSM data object (`kms.<kind>.<id>` for keymanager's own records).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DataObjectName(String);

impl DataObjectName {
    /// The name of the record `kind`/`id`, e.g. `kms.install.main`.
    pub fn record(kind: &str, id: &str) -> Self {
        Self(format!("kms.{kind}.{id}"))
    }

    /// The name as sent to the HSM.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DataObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identity of the service behind a partition, as reported by the TSB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    /// TSB version string (the emulator says so in it).
    pub version: String,
    /// Licence flags such as `REST_API`, `TSB_ENGINE`, `KEY_AUTH`.
    pub licenses: Vec<String>,
}

/// Object counts of a partition's keystore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeystoreStatistics {
    /// Private keys.
    pub private_keys: u64,
    /// Public keys.
    pub public_keys: u64,
    /// Secret (symmetric) keys.
    pub secret_keys: u64,
    /// Certificates.
    pub certificates: u64,
    /// Data objects.
    pub data_objects: u64,
}

/// What can go wrong when talking to a partition. Adapters map their transport errors onto these so
/// that use cases can decide (retry, report "not found", refuse) without knowing the transport.
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    /// The object does not exist.
    #[error("HSM object {0} does not exist")]
    NotFound(String),
    /// A create-if-absent found the object already there.
    #[error("HSM object {0} already exists")]
    AlreadyExists(String),
    /// The partition refused our credentials.
    #[error("the HSM partition refused the credentials ({0}); check the partition's API keys or certificates")]
    Unauthorized(String),
    /// The request was well-formed for us but refused by the HSM (attributes, policy, licence).
    #[error("the HSM refused the operation: {0}")]
    Refused(String),
    /// The partition could not be reached or did not answer in time.
    #[error("the HSM partition is unreachable: {0}")]
    Unavailable(String),
    /// The HSM itself failed.
    #[error("the HSM reported an internal error: {0}")]
    Internal(String),
}

/// One HSM partition, as the control plane needs it.
#[async_trait]
pub trait Hsm: Send + Sync {
    /// Version and licence flags; also the cheapest connectivity check.
    async fn service_info(&self) -> Result<ServiceInfo, HsmError>;
    /// Object counts of the partition.
    async fn keystore_statistics(&self) -> Result<KeystoreStatistics, HsmError>;
    /// Creates a data object only if no object of that name exists ([`HsmError::AlreadyExists`]
    /// otherwise). Atomic in the HSM, so it doubles as a lock primitive across replicas.
    async fn create_data_object(&self, name: &DataObjectName, value: &[u8]) -> Result<(), HsmError>;
    /// Reads a data object; `Ok(None)` when it does not exist.
    async fn read_data_object(&self, name: &DataObjectName) -> Result<Option<Vec<u8>>, HsmError>;
}
