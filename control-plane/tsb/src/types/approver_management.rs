//! Approver management wire types (`approverKeyManagementToken`; onboarding uses
//! `approverToken`): HSM-generated approver keys handed out through one-time codes.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::TsbError;

/// `POST /v1/approverManagement/create` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateApproverRequest {
    /// Approver name (an e-mail address).
    pub approver_name: String,
    /// Key algorithm (`RSA`).
    pub algorithm: String,
    /// Key size (2048/3072/4096).
    pub key_size: u32,
    /// Password protecting the backup (char array).
    #[serde(with = "crate::serde_helpers::password")]
    pub backup_password: SecretString,
    /// Certificate validity in days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity: Option<u32>,
}

/// `{"oneTimeCode": "410447"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OneTimeCodeResponse {
    #[serde(with = "crate::serde_helpers::secret_str")]
    pub(crate) one_time_code: SecretString,
}

/// `{"approverName"}` body (renew one-time code, restore from backup).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApproverNameRequest<'a> {
    pub(crate) approver_name: &'a str,
}

/// `POST /v1/approverManagement/restoreFromBackup/forgotPassword` body.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ForgotPasswordRequest<'a> {
    pub(crate) approver_name: &'a str,
    #[serde(with = "crate::serde_helpers::password")]
    pub(crate) new_backup_password: SecretString,
}

/// `POST /v1/approver/onboard` body. `transportPassword` is sent as a plain string (its Java type
/// is unconfirmed and Jackson accepts a string for both `String` and `char[]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnboardApproverRequest {
    /// Approver name.
    pub approver_name: String,
    /// The one-time code from create/renew/restore (char array).
    #[serde(with = "crate::serde_helpers::password")]
    pub one_time_code: SecretString,
    /// 16 or 32 characters; SHA-256 of it is the AES key of the answer.
    #[serde(with = "crate::serde_helpers::secret_str")]
    pub transport_password: SecretString,
}

/// `{encryptedPayload, initializationVector}`: AES-256-GCM (128-bit tag appended to the
/// ciphertext), key = SHA-256(transportPassword), over the approver's key material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnboardApproverResponse {
    /// Ciphertext with the GCM tag appended.
    #[serde(with = "crate::serde_helpers::b64")]
    pub encrypted_payload: Vec<u8>,
    /// 96-bit GCM nonce.
    #[serde(with = "crate::serde_helpers::b64")]
    pub initialization_vector: Vec<u8>,
}

impl OnboardApproverResponse {
    /// Decrypts the payload with the transport password. The plaintext is the approver's key
    /// material in the format the TSB (or emulator) chose (PKCS#12 on a real TSB).
    pub fn decrypt(
        &self,
        transport_password: &SecretString,
    ) -> Result<Zeroizing<Vec<u8>>, TsbError> {
        use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
        use aws_lc_rs::digest::{SHA256, digest};

        let key_bytes = digest(&SHA256, transport_password.expose_secret().as_bytes());
        let key = UnboundKey::new(&AES_256_GCM, key_bytes.as_ref())
            .map_err(|_| TsbError::Crypto("cannot build AES-256-GCM key".into()))?;
        let key = LessSafeKey::new(key);
        let nonce = Nonce::try_assume_unique_for_key(&self.initialization_vector)
            .map_err(|_| TsbError::Crypto("onboarding IV is not 96 bits".into()))?;
        let mut buf = Zeroizing::new(self.encrypted_payload.clone());
        let plain_len = key
            .open_in_place(nonce, Aad::empty(), buf.as_mut_slice())
            .map_err(|_| {
                TsbError::Crypto(
                    "onboarding payload did not decrypt (wrong transport password?)".into(),
                )
            })?
            .len();
        buf.truncate(plain_len);
        Ok(buf)
    }
}

/// One approver in the onboarding status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApproverEntry {
    /// Approver name.
    pub approver_name: String,
    /// Approver certificate (base64 DER), when known.
    #[serde(default)]
    pub approver_certificate: Option<String>,
}

/// `GET /v1/approverManagement/onboarding/status`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnboardingStatus {
    /// Approvers who completed onboarding.
    #[serde(default, deserialize_with = "crate::serde_helpers::null_default")]
    pub onboarded: Vec<ApproverEntry>,
    /// Approvers created but not yet onboarded.
    #[serde(default, deserialize_with = "crate::serde_helpers::null_default")]
    pub pending: Vec<ApproverEntry>,
}
