//! The HSM port: everything the control plane asks of one HSM partition.
//!
//! One value of this trait talks to exactly one partition with that partition's own credentials,
//! so nothing of one tenant can ever be sent with another tenant's credentials. The port grows with
//! the use cases (keys, crypto, certificates, requests); it holds no key material, only references.
//! It speaks domain and core types only ([`NewHsmKey`], [`HsmKeyInfo`], [`SkaPolicy`], ...): the
//! adapter translates them to its wire format.

mod keys;

use std::fmt;

use async_trait::async_trait;
use km_domain::SkaPolicy;
use zeroize::Zeroizing;

pub use keys::{HsmChange, HsmKeyInfo, HsmRequest, HsmRequestStatus, NewHsmKey, OnboardedApprover};

/// The name of an HSM data object (`kms.<kind>.<id>` for keymanager's own records).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DataObjectName(String);

impl DataObjectName {
    /// Longest label the TSB accepts.
    pub const MAX_LEN: usize = 256;

    /// A label as the HSM knows it: 1–256 characters of `[A-Za-z0-9._:@/-]` (the TSB's data-object
    /// label rule). Validated here so that a bad label fails before a round trip, with our message.
    pub fn new(label: impl Into<String>) -> Result<Self, InvalidDataObjectName> {
        let label = label.into();
        let reason = if label.is_empty() {
            Some("it is empty")
        } else if label.len() > Self::MAX_LEN {
            Some("it is longer than 256 characters")
        } else if !label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '/' | '-'))
        {
            Some("only A-Z, a-z, 0-9 and . _ : @ / - are allowed")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(InvalidDataObjectName { label, reason }),
            None => Ok(Self(label)),
        }
    }

    /// The name of the record `kind`/`id`, e.g. `kms.install.main`. Not validated: callers with
    /// untrusted parts go through the state store, which validates kind and id.
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

/// A string that cannot be an HSM data-object label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{label:?} is not a valid HSM data object label: {reason}")]
pub struct InvalidDataObjectName {
    /// The rejected label.
    pub label: String,
    /// Which rule it broke.
    pub reason: &'static str,
}

/// Output of [`Hsm::seal`]: AES-GCM ciphertext made inside the HSM. Not secret by itself, but
/// only the HSM that holds the seal key can open it, and only with the same associated data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBlob {
    /// Ciphertext followed by the 128-bit GCM tag.
    pub ciphertext: Vec<u8>,
    /// The 96-bit nonce the HSM chose (never chosen by us, so it cannot be reused by mistake).
    pub iv: Vec<u8>,
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
    #[error(
        "the HSM partition refused the credentials ({0}); check the partition's API keys or certificates"
    )]
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
    /// Authenticated decryption failed: the ciphertext, nonce or associated data were altered,
    /// or it was sealed under another key. Never retried; the stored value is not trustworthy.
    #[error("authenticated decryption failed: {0}")]
    Integrity(String),
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
    async fn create_data_object(&self, name: &DataObjectName, value: &[u8])
    -> Result<(), HsmError>;
    /// Reads a data object; `Ok(None)` when it does not exist.
    async fn read_data_object(&self, name: &DataObjectName) -> Result<Option<Vec<u8>>, HsmError>;
    /// Replaces the value of an existing data object ([`HsmError::NotFound`] if there is none).
    /// Unconditional in the HSM: callers that need compare-and-set hold a lock object.
    async fn replace_data_object(
        &self,
        name: &DataObjectName,
        value: &[u8],
    ) -> Result<(), HsmError>;
    /// Deletes a data object ([`HsmError::NotFound`] if there is none).
    async fn delete_data_object(&self, name: &DataObjectName) -> Result<(), HsmError>;
    /// Names of all data objects of the partition (ours and anyone else's).
    async fn list_data_objects(&self) -> Result<Vec<DataObjectName>, HsmError>;

    /// Makes sure the AES-256 seal key `label` exists (creating it if absent) and is fit for
    /// sealing: AES-256, encrypt/decrypt, sensitive, never extractable, not destroyable. The key is
    /// generated inside the HSM and never leaves it; [`HsmError::Refused`] if a key of that label
    /// exists but is weaker. Safe to call concurrently from several replicas.
    async fn ensure_seal_key(&self, label: &str) -> Result<(), HsmError>;
    /// Encrypts `plaintext` inside the HSM with AES-GCM under the seal key `label`, binding `aad`
    /// (additional authenticated data) to the result.
    async fn seal(&self, label: &str, plaintext: &[u8], aad: &[u8])
    -> Result<SealedBlob, HsmError>;
    /// Opens a [`SealedBlob`] inside the HSM; [`HsmError::Integrity`] if it or `aad` was altered.
    async fn unseal(
        &self,
        label: &str,
        blob: &SealedBlob,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, HsmError>;

    /// Makes sure the signing key `label` exists (creating it if absent) and is fit for signing
    /// keymanager's own statements (audit checkpoints): EC P-256, sign only, sensitive, never
    /// extractable, not destroyable, empty SKA policy — the same hardening as the seal key, so the
    /// private key never leaves the HSM and cannot be deleted to make old signatures unverifiable.
    /// [`HsmError::Refused`] if a key of that label exists but is weaker. Safe to call
    /// concurrently from several replicas.
    ///
    /// The default answers [`HsmError::Refused`]: adapters (and test fakes) that do not sign keep
    /// compiling, and a service that needs signing fails closed on them.
    async fn ensure_signing_key(&self, label: &str) -> Result<(), HsmError> {
        Err(HsmError::Refused(format!(
            "this HSM adapter cannot provide the signing key {label}"
        )))
    }
    /// Signs `payload` inside the HSM with the signing key `label` (ECDSA P-256 over SHA-256,
    /// the signature DER-encoded as in X9.62 / RFC 3279), so that anyone holding the public key
    /// can check it offline with any ECDSA library.
    async fn sign(&self, label: &str, payload: &[u8]) -> Result<Vec<u8>, HsmError> {
        let _ = payload;
        Err(HsmError::Refused(format!(
            "this HSM adapter cannot sign with key {label}"
        )))
    }
    /// The public part of the key `label` as DER `SubjectPublicKeyInfo` — what an offline
    /// verifier pins or is given.
    async fn public_key(&self, label: &str) -> Result<Vec<u8>, HsmError> {
        Err(HsmError::Refused(format!(
            "this HSM adapter cannot read the public key of {label}"
        )))
    }

    // ----- keys (inventory, creation, lifecycle, SKA policy) -----

    /// Labels of all keys of the partition, keymanager's own (seal, signing) included: the
    /// inventory starts here and filters.
    async fn list_keys(&self) -> Result<Vec<String>, HsmError>;
    /// What the HSM reports about the key `label`; `Ok(None)` when there is none.
    async fn key_info(&self, label: &str) -> Result<Option<HsmKeyInfo>, HsmError>;
    /// Generates a key inside the HSM and returns what the HSM reports about it.
    /// [`HsmError::AlreadyExists`] if the label is taken; [`HsmError::Refused`] with the reason
    /// for attributes that do not fit the spec, an invalid policy, or an algorithm the HSM
    /// cannot generate (the message names the spec).
    async fn create_key(&self, request: &NewHsmKey) -> Result<HsmKeyInfo, HsmError>;
    /// Blocks the key: every use of its private/secret half is refused until unblocked.
    /// [`HsmChange::Pending`] when the key's block rule asks for approvals;
    /// [`HsmError::Refused`] for a plain (non-SKA) key or a frozen block rule.
    async fn block_key(&self, label: &str) -> Result<HsmChange, HsmError>;
    /// Unblocks the key. [`HsmChange::Pending`] when the key's unblock rule asks for approvals;
    /// [`HsmError::Refused`] for a plain key or a frozen unblock rule.
    async fn unblock_key(&self, label: &str) -> Result<HsmChange, HsmError>;
    /// Replaces the key's SKA policy (its blocked state is kept: that changes only through
    /// block/unblock). [`HsmChange::Pending`] when the key's current modify rule asks for
    /// approvals; [`HsmError::Refused`] for a plain key, an invalid policy or a frozen modify
    /// rule.
    async fn modify_policy(&self, label: &str, policy: &SkaPolicy) -> Result<HsmChange, HsmError>;
    /// The state and approval progress of an approval request ([`HsmError::NotFound`] for an
    /// unknown id).
    async fn request_status(&self, id: &str) -> Result<HsmRequest, HsmError>;
    /// Withdraws an approval request that has not executed ([`HsmError::NotFound`] for an
    /// unknown id). Cancelling a request that already ended is not an error.
    async fn cancel_request(&self, id: &str) -> Result<(), HsmError>;
    /// The HSM's signed attestation of the key `label`, as the HSM hands it out (the TSB: a zip
    /// of the attestation XML, its signature, the attestation key and its certificate).
    /// [`HsmError::NotFound`] if there is no such key; [`HsmError::Refused`] when the HSM
    /// offers no attestation.
    ///
    /// The default refuses: adapters without attestation keep compiling.
    async fn key_attestation(&self, label: &str) -> Result<Vec<u8>, HsmError> {
        Err(HsmError::Refused(format!(
            "this HSM adapter cannot attest key {label}"
        )))
    }
    /// Approvers onboarded through the HSM's approver management (names policies may use).
    /// [`HsmError::Unauthorized`] when the partition's credentials do not include approver
    /// management.
    ///
    /// The default knows none.
    async fn onboarded_approvers(&self) -> Result<Vec<OnboardedApprover>, HsmError> {
        Ok(Vec::new())
    }
    /// Deletes the key material for good ([`HsmError::NotFound`] if there is no such key,
    /// [`HsmError::Refused`] if it was created not destroyable). Its open requests are cancelled.
    async fn delete_key(&self, label: &str) -> Result<(), HsmError>;
    /// The key's public key as DER `SubjectPublicKeyInfo`; `Ok(None)` for a symmetric key,
    /// [`HsmError::NotFound`] if there is no such key.
    async fn key_public_key(&self, label: &str) -> Result<Option<Vec<u8>>, HsmError>;
}
