//! km-hsm-tsb — the adapter that implements km-core's [`Hsm`] port with the km-tsb SDK.
//!
//! Owns: translating port calls into TSB REST calls and TSB errors into [`HsmError`]s (one mapping,
//! `hsm_error`), and the shape of the seal key (AES-256, sensitive, never extractable, not
//! destroyable, empty SKA policy) with its AES-GCM seal/unseal calls, and of the signing key (EC
//! P-256, same hardening) with its ECDSA sign call; and the key methods of the port (inventory,
//! creation from a domain `KeySpec`, block/unblock, SKA policy, requests, deletion, public keys,
//! key attestation: the TSB's zip handed on as it is),
//! translating domain policies and attributes to the TSB's field by field (`keys`). One [`TsbHsm`]
//! wraps one `TsbClient`, i.e. one partition with its own credentials; [`TsbPartitionConnector`]
//! builds them from a partition's registration and vault credentials.
//!
//! Block, unblock and policy changes try the synchronous endpoint (`POST /v1/synchronousModify`,
//! ...) first and fall back to the asynchronous one (`POST /v1/modify`, ...) only when the TSB answers `missing.approval` (401): the TSB alone knows whether
//! the key's current rule is fulfilled without approvals (reference §6), so asking it costs
//! one call in the common case and never guesses from a policy read that may be stale.
//!
//! Must not depend on: other adapters, the HTTP server, or anything that knows about tenants'
//! other partitions.

mod connector;
mod keys;

pub use connector::TsbPartitionConnector;

use async_trait::async_trait;
use km_core::{
    DataObjectName, Hsm, HsmChange, HsmError, HsmKeyInfo, HsmRequest, KeystoreStatistics,
    NewHsmKey, OnboardedApprover, SealedBlob, ServiceInfo,
};
use km_domain::SkaPolicy;
use km_tsb::{
    CreateKeyRequest, DataObjectFlags, DecryptRequest, EncryptRequest, KeyAttributes, KeyInfo,
    Policy, RequestState, SignRequest, TsbClient, TsbError,
};
use zeroize::{Zeroize, Zeroizing};

/// The TSB's cipher name for sealing.
const SEAL_CIPHER: &str = "AES_GCM";
/// Full-length GCM tag: sealed state is long-lived, so no truncated tags.
const SEAL_TAG_BITS: u32 = 128;
/// AES-256.
const SEAL_KEY_BITS: u32 = 256;
/// TSB `key.not.existent`.
const KEY_NOT_EXISTENT: u32 = 650;
/// TSB `key.already.existing`.
const KEY_ALREADY_EXISTING: u32 = 608;
/// TSB `data.object.not.existent`.
const DATA_OBJECT_NOT_EXISTENT: u32 = 653;
/// TSB `decrypt.failed`: authenticated decryption rejected the input.
const DECRYPT_FAILED: u32 = 410;
/// TSB `missing.approval`: a synchronous call on an SKA key whose rule needs approvals.
const MISSING_APPROVAL: u32 = 401;
/// TSB `not.implemented`: an endpoint this TSB does not offer.
const NOT_IMPLEMENTED: u32 = 101;
/// The TSB's algorithm name for the signing key.
const SIGNING_ALGORITHM: &str = "EC";
/// NIST P-256 (secp256r1, prime256v1).
const SIGNING_CURVE_OID: &str = "1.2.840.10045.3.1.7";
/// ECDSA over SHA-256: what every offline verifier has.
const SIGNATURE_ALGORITHM: &str = "SHA256_WITH_ECDSA";
/// X9.62 DER `ECDSA-Sig-Value`, the form X.509 and most libraries verify.
const SIGNATURE_TYPE: &str = "DER";

/// One HSM partition reached through the TSB REST API.
#[derive(Debug, Clone)]
pub struct TsbHsm {
    client: TsbClient,
}

impl TsbHsm {
    /// Wraps a client already configured with the partition's URL and credentials.
    pub fn new(client: TsbClient) -> Self {
        Self { client }
    }

    /// An SKA-governed change: the synchronous call first, the asynchronous one only when the
    /// TSB answers `missing.approval` (see the crate docs). A request the TSB executes at once
    /// (its rule needed no approval after all) counts as applied; one that failed at once is
    /// refused with the TSB's reason. `what` completes "the HSM did not …".
    async fn sync_or_request(
        &self,
        what: &str,
        synchronous: impl Future<Output = Result<(), TsbError>>,
        asynchronous: impl Future<Output = Result<String, TsbError>>,
    ) -> Result<HsmChange, HsmError> {
        match synchronous.await {
            Ok(()) => return Ok(HsmChange::Applied),
            Err(error) if error.tsb_code() == Some(MISSING_APPROVAL) => {}
            Err(error) => return Err(hsm_error(error)),
        }
        let request_id = asynchronous.await.map_err(hsm_error)?;
        match self.client.request_status(&request_id).await {
            Ok(status) if status.status == RequestState::Executed => Ok(HsmChange::Applied),
            Ok(status) if status.status == RequestState::Failed => Err(HsmError::Refused(format!(
                "the HSM did not {what}: {}",
                status.result.unwrap_or_default()
            ))),
            // Submitted: whatever the first look says (even a failed look), the request exists
            // and its id is what the caller follows.
            _ => Ok(HsmChange::Pending { request_id }),
        }
    }
}

/// Maps a TSB failure onto the port's error, keeping the TSB's own code and message for the
/// operator (they name the cause, e.g. `res.error.invalid.api.key`).
fn hsm_error(error: TsbError) -> HsmError {
    let text = error.to_string();
    match error.tsb_code() {
        Some(650..=654) => HsmError::NotFound(text),
        Some(608 | 615 | 632) => HsmError::AlreadyExists(text),
        Some(406 | 617 | 631) => HsmError::Unauthorized(text),
        Some(700..=799) => HsmError::Internal(text),
        Some(_) => HsmError::Refused(text),
        None if error.is_unauthorized() => HsmError::Unauthorized(text),
        None => HsmError::Unavailable(text),
    }
}

/// `error` with `context` (what we were doing) in front of its detail, for the variants whose
/// detail is shown to the operator as the reason.
fn in_context(error: HsmError, context: &str) -> HsmError {
    match error {
        HsmError::Refused(detail) => HsmError::Refused(format!("{context}: {detail}")),
        HsmError::Internal(detail) => HsmError::Internal(format!("{context}: {detail}")),
        other => other,
    }
}

#[async_trait]
impl Hsm for TsbHsm {
    async fn service_info(&self) -> Result<ServiceInfo, HsmError> {
        let version = self.client.version_info().await.map_err(hsm_error)?;
        let licenses = self.client.license_info().await.map_err(hsm_error)?;
        Ok(ServiceInfo {
            version: version.version,
            licenses: licenses.client_flags,
        })
    }

    async fn keystore_statistics(&self) -> Result<KeystoreStatistics, HsmError> {
        let stats = self.client.keystore_statistics().await.map_err(hsm_error)?;
        Ok(KeystoreStatistics {
            private_keys: stats.private_keys,
            public_keys: stats.public_keys,
            secret_keys: stats.secret_keys,
            certificates: stats.certificates,
            data_objects: stats.data_objects,
        })
    }

    async fn create_data_object(
        &self,
        name: &DataObjectName,
        value: &[u8],
    ) -> Result<(), HsmError> {
        self.client
            .create_data_object(name.as_str(), value, DataObjectFlags::default())
            .await
            .map_err(hsm_error)
    }

    async fn read_data_object(&self, name: &DataObjectName) -> Result<Option<Vec<u8>>, HsmError> {
        match self.client.get_data_object(name.as_str()).await {
            Ok(object) => Ok(Some(object.value)),
            Err(error) if error.tsb_code() == Some(DATA_OBJECT_NOT_EXISTENT) => Ok(None),
            Err(error) => Err(hsm_error(error)),
        }
    }

    async fn replace_data_object(
        &self,
        name: &DataObjectName,
        value: &[u8],
    ) -> Result<(), HsmError> {
        self.client
            .replace_data_object(name.as_str(), value)
            .await
            .map_err(hsm_error)
    }

    async fn delete_data_object(&self, name: &DataObjectName) -> Result<(), HsmError> {
        self.client
            .delete_data_object(name.as_str())
            .await
            .map_err(hsm_error)
    }

    async fn list_data_objects(&self) -> Result<Vec<DataObjectName>, HsmError> {
        let labels = self.client.list_data_objects().await.map_err(hsm_error)?;
        // The TSB validates labels on creation, so every label it lists is valid; one that is not
        // could not be addressed through the API anyway and is left out.
        Ok(labels
            .into_iter()
            .filter_map(|label| DataObjectName::new(label).ok())
            .collect())
    }

    async fn ensure_seal_key(&self, label: &str) -> Result<(), HsmError> {
        match self.client.key_attributes(label, None).await {
            Ok(existing) => return check_seal_key(label, &existing.json),
            Err(error) if error.tsb_code() == Some(KEY_NOT_EXISTENT) => {}
            Err(error) => return Err(hsm_error(error)),
        }
        match self.client.create_key(&seal_key_request(label)).await {
            Ok(created) => check_seal_key(label, &created.json),
            // Another replica created it between our look-up and our create: check theirs.
            Err(error) if error.tsb_code() == Some(KEY_ALREADY_EXISTING) => {
                let existing = self
                    .client
                    .key_attributes(label, None)
                    .await
                    .map_err(hsm_error)?;
                check_seal_key(label, &existing.json)
            }
            Err(error) => Err(hsm_error(error)),
        }
    }

    async fn seal(
        &self,
        label: &str,
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<SealedBlob, HsmError> {
        let mut request = EncryptRequest::new(label, SEAL_CIPHER, plaintext.to_vec());
        request.tag_length = Some(SEAL_TAG_BITS);
        request.additional_authentication_data = (!aad.is_empty()).then(|| aad.to_vec());
        let result = self.client.encrypt(&request).await;
        // Our copy of the plaintext is wiped whatever the outcome.
        request.payload.zeroize();
        let response = result.map_err(hsm_error)?;
        let iv = response.initialization_vector.ok_or_else(|| {
            HsmError::Internal(format!(
                "the HSM returned no nonce for AES-GCM with key {label}"
            ))
        })?;
        Ok(SealedBlob {
            ciphertext: response.encrypted_payload,
            iv,
        })
    }

    async fn unseal(
        &self,
        label: &str,
        blob: &SealedBlob,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, HsmError> {
        let mut request = DecryptRequest::new(label, SEAL_CIPHER, blob.ciphertext.clone());
        request.initialization_vector = Some(blob.iv.clone());
        request.tag_length = Some(SEAL_TAG_BITS);
        request.additional_authentication_data = (!aad.is_empty()).then(|| aad.to_vec());
        match self.client.decrypt(&request).await {
            Ok(plaintext) => Ok(plaintext),
            Err(error) if error.tsb_code() == Some(DECRYPT_FAILED) => {
                Err(HsmError::Integrity(error.to_string()))
            }
            Err(error) => Err(hsm_error(error)),
        }
    }

    async fn ensure_signing_key(&self, label: &str) -> Result<(), HsmError> {
        match self.client.key_attributes(label, None).await {
            Ok(existing) => return check_signing_key(label, &existing.json),
            Err(error) if error.tsb_code() == Some(KEY_NOT_EXISTENT) => {}
            Err(error) => return Err(hsm_error(error)),
        }
        match self.client.create_key(&signing_key_request(label)).await {
            Ok(created) => check_signing_key(label, &created.json),
            // Another replica created it between our look-up and our create: check theirs.
            Err(error) if error.tsb_code() == Some(KEY_ALREADY_EXISTING) => {
                let existing = self
                    .client
                    .key_attributes(label, None)
                    .await
                    .map_err(hsm_error)?;
                check_signing_key(label, &existing.json)
            }
            Err(error) => Err(hsm_error(error)),
        }
    }

    async fn sign(&self, label: &str, payload: &[u8]) -> Result<Vec<u8>, HsmError> {
        let mut request = SignRequest::new(label, SIGNATURE_ALGORITHM, payload.to_vec());
        request.signature_type = Some(SIGNATURE_TYPE.to_owned());
        self.client.sign(&request).await.map_err(hsm_error)
    }

    async fn public_key(&self, label: &str) -> Result<Vec<u8>, HsmError> {
        let key = self
            .client
            .key_attributes(label, None)
            .await
            .map_err(hsm_error)?;
        key.json.public_key.ok_or_else(|| {
            HsmError::Refused(format!("the HSM reports no public key for key {label}"))
        })
    }

    async fn list_keys(&self) -> Result<Vec<String>, HsmError> {
        self.client.list_keys().await.map_err(hsm_error)
    }

    async fn key_info(&self, label: &str) -> Result<Option<HsmKeyInfo>, HsmError> {
        match self.client.key_attributes(label, None).await {
            Ok(key) => Ok(Some(keys::key_info(&key.json))),
            Err(error) if error.tsb_code() == Some(KEY_NOT_EXISTENT) => Ok(None),
            Err(error) => Err(hsm_error(error)),
        }
    }

    async fn create_key(&self, request: &NewHsmKey) -> Result<HsmKeyInfo, HsmError> {
        let wire = keys::create_request(request)?;
        let created = self.client.create_key(&wire).await.map_err(|error| {
            in_context(
                hsm_error(error),
                &format!("cannot create key {} ({})", request.label, request.spec),
            )
        })?;
        Ok(keys::key_info(&created.json))
    }

    async fn block_key(&self, label: &str) -> Result<HsmChange, HsmError> {
        self.sync_or_request(
            &format!("block key {label}"),
            self.client.block(label),
            self.client.block_async(label),
        )
        .await
    }

    async fn unblock_key(&self, label: &str) -> Result<HsmChange, HsmError> {
        self.sync_or_request(
            &format!("unblock key {label}"),
            self.client.unblock(label),
            self.client.unblock_async(label),
        )
        .await
    }

    async fn modify_policy(&self, label: &str, policy: &SkaPolicy) -> Result<HsmChange, HsmError> {
        policy.validate().map_err(|error| {
            HsmError::Refused(format!("cannot set the SKA policy of key {label}: {error}"))
        })?;
        let wire = keys::tsb_policy(policy, false);
        self.sync_or_request(
            &format!("apply the new SKA policy of key {label}"),
            self.client.modify(label, &wire),
            self.client.modify_async(label, &wire),
        )
        .await
    }

    async fn request_status(&self, id: &str) -> Result<HsmRequest, HsmError> {
        let status = self.client.request_status(id).await.map_err(hsm_error)?;
        Ok(keys::request(status))
    }

    async fn cancel_request(&self, id: &str) -> Result<(), HsmError> {
        self.client.cancel_request(id).await.map_err(hsm_error)
    }

    async fn onboarded_approvers(&self) -> Result<Vec<OnboardedApprover>, HsmError> {
        let status = self
            .client
            .approver_onboarding_status()
            .await
            .map_err(hsm_error)?;
        Ok(status
            .onboarded
            .into_iter()
            .map(|entry| OnboardedApprover {
                name: entry.approver_name,
                certificate_base64: entry.approver_certificate,
            })
            .collect())
    }

    async fn delete_key(&self, label: &str) -> Result<(), HsmError> {
        self.client.delete_key(label).await.map_err(hsm_error)
    }

    async fn key_public_key(&self, label: &str) -> Result<Option<Vec<u8>>, HsmError> {
        let key = self
            .client
            .key_attributes(label, None)
            .await
            .map_err(hsm_error)?;
        Ok(key.json.public_key)
    }

    async fn key_attestation(&self, label: &str) -> Result<Vec<u8>, HsmError> {
        self.client
            .key_attestation(label, None)
            .await
            .map_err(|error| match (error.tsb_code(), error.http_status()) {
                // A TSB without the endpoint (an older release, or one that does not offer it).
                (None, Some(404 | 405 | 501)) | (Some(NOT_IMPLEMENTED), _) => {
                    HsmError::Refused(format!("this TSB offers no key attestation: {error}"))
                }
                _ => in_context(hsm_error(error), &format!("cannot attest key {label}")),
            })
    }
}

/// The signing key (audit checkpoints): EC P-256 generated in the HSM, usable for signing only,
/// sensitive and never extractable, not destroyable (deleting it would leave every checkpoint
/// unverifiable against a key the HSM can still vouch for) and not modifiable. Like the seal key
/// it is an SKA key with the *empty* policy, so an operator can later govern or block it.
fn signing_key_request(label: &str) -> CreateKeyRequest {
    let attributes = KeyAttributes {
        encrypt: Some(false),
        decrypt: Some(false),
        sign: Some(true),
        verify: Some(false),
        wrap: Some(false),
        unwrap: Some(false),
        derive: Some(false),
        extractable: Some(false),
        sensitive: Some(true),
        destroyable: Some(false),
        modifiable: Some(false),
        ..KeyAttributes::default()
    };
    let mut request = CreateKeyRequest::new(label, SIGNING_ALGORITHM, attributes);
    request.curve_oid = Some(SIGNING_CURVE_OID.to_owned());
    request.policy = Some(Policy::empty_ska());
    request
}

/// Refuses a key under the signing label that is not what [`signing_key_request`] makes, or is
/// weaker (e.g. planted with an exportable private key so that checkpoints could be forged
/// outside the HSM). Attributes the HSM does not report are not held against it.
fn check_signing_key(label: &str, key: &KeyInfo) -> Result<(), HsmError> {
    let attributes = &key.attributes;
    let problem = if key
        .algorithm
        .as_deref()
        .is_some_and(|a| !a.eq_ignore_ascii_case(SIGNING_ALGORITHM))
    {
        Some("it is not an EC key")
    } else if key
        .curve_oid
        .as_deref()
        .is_some_and(|oid| oid != SIGNING_CURVE_OID)
    {
        Some("it is not on the P-256 curve")
    } else if attributes.extractable == Some(true) {
        Some("it is extractable")
    } else if attributes.sensitive == Some(false) {
        Some("it is not sensitive")
    } else if attributes.sign == Some(false) {
        Some("it may not sign")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(HsmError::Refused(format!(
            "the key {label} cannot be used as the audit signing key: {problem}"
        ))),
        None => Ok(()),
    }
}

/// The seal key: AES-256 generated in the HSM, usable for encrypt/decrypt only, sensitive and
/// never extractable (its material cannot leave the HSM), not destroyable (deleting it would
/// destroy every sealed record) and not modifiable (its attributes are already the strictest
/// that still work).
///
/// It is an SKA key with the *empty* policy rather than `policy: null`: no approvals are needed
/// today, but an operator can later put block/unblock/modify rules on it, or block it in an
/// emergency to freeze all sealed state — a `policy: null` key could never become SKA.
fn seal_key_request(label: &str) -> CreateKeyRequest {
    let attributes = KeyAttributes {
        encrypt: Some(true),
        decrypt: Some(true),
        sign: Some(false),
        verify: Some(false),
        wrap: Some(false),
        unwrap: Some(false),
        derive: Some(false),
        extractable: Some(false),
        sensitive: Some(true),
        destroyable: Some(false),
        modifiable: Some(false),
        ..KeyAttributes::default()
    };
    let mut request = CreateKeyRequest::new(label, "AES", attributes);
    request.key_size = Some(SEAL_KEY_BITS);
    request.policy = Some(Policy::empty_ska());
    request
}

/// Refuses a key under the seal label that is weaker than [`seal_key_request`] would make it
/// (e.g. planted by someone with key-management rights so that its material can be exported).
/// Attributes the HSM does not report are not held against it.
fn check_seal_key(label: &str, key: &KeyInfo) -> Result<(), HsmError> {
    let attributes = &key.attributes;
    let problem = if key
        .algorithm
        .as_deref()
        .is_some_and(|a| !a.eq_ignore_ascii_case("AES"))
    {
        Some("it is not an AES key")
    } else if key.key_size.is_some_and(|bits| bits != SEAL_KEY_BITS) {
        Some("it is not a 256-bit key")
    } else if attributes.extractable == Some(true) {
        Some("it is extractable")
    } else if attributes.sensitive == Some(false) {
        Some("it is not sensitive")
    } else if attributes.encrypt == Some(false) || attributes.decrypt == Some(false) {
        Some("it may not encrypt and decrypt")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(HsmError::Refused(format!(
            "the key {label} cannot be used as the seal key: {problem}"
        ))),
        None => Ok(()),
    }
}
