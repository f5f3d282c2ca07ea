//! Key operation wire types: sign, verify, hmac, encrypt, decrypt, wrap, unwrap, and the key
//! state changes block/unblock/modify. Each is sent inside its TSB wrapper object
//! (`{"signRequest": {...}}` etc.); the client adds the wrapper.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::keys::KeyAttributes;
use super::policy::Policy;

/// Inner object of `signRequest` (`/v1/synchronousSign`, `/v1/sign`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignRequest {
    /// Data (or pre-computed digest for `NONE*` algorithms) to sign.
    #[serde(with = "crate::serde_helpers::b64")]
    pub payload: Vec<u8>,
    /// `UNSPECIFIED`, `ISO_20022`, `PDF`, `BTC`, `ETH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_type: Option<String>,
    /// Signing key label.
    pub sign_key_name: String,
    /// Key password (char array).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::password_opt"
    )]
    pub key_password: Option<SecretString>,
    /// e.g. `SHA256_WITH_ECDSA`, `SHA256_WITH_RSA`, `EDDSA`.
    pub signature_algorithm: String,
    /// `DER` (default), `RAW`, `ETH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_type: Option<String>,
    /// Base64 of a JSON object shown to approvers.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::b64_opt"
    )]
    pub meta_data: Option<Vec<u8>>,
    /// Signature over `meta_data`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::b64_opt"
    )]
    pub meta_data_signature: Option<Vec<u8>>,
    /// Pre-signed approvals for synchronous use of SKA keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_approvals: Option<Vec<String>>,
}

impl SignRequest {
    /// A sign request with only the mandatory fields.
    pub fn new(
        sign_key_name: impl Into<String>,
        signature_algorithm: impl Into<String>,
        payload: Vec<u8>,
    ) -> Self {
        SignRequest {
            payload,
            payload_type: None,
            sign_key_name: sign_key_name.into(),
            key_password: None,
            signature_algorithm: signature_algorithm.into(),
            signature_type: None,
            meta_data: None,
            meta_data_signature: None,
            signed_approvals: None,
        }
    }
}

/// Inner object of `verifySignatureRequest` (`/v1/verify`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyRequest {
    /// Key label.
    pub sign_key_name: String,
    /// Key password (char array).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::password_opt"
    )]
    pub master_key_password: Option<SecretString>,
    /// Signature algorithm used.
    pub signature_algorithm: String,
    /// Signed data.
    #[serde(with = "crate::serde_helpers::b64")]
    pub payload: Vec<u8>,
    /// Signature to check.
    #[serde(with = "crate::serde_helpers::b64")]
    pub signature: Vec<u8>,
}

/// Inner object of `hmacRequest` (`/v1/synchronousHmac`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HmacRequest {
    /// HMAC key label.
    pub key_name: String,
    /// Data to MAC.
    #[serde(with = "crate::serde_helpers::b64")]
    pub payload: Vec<u8>,
}

/// Inner object of `verifyHmacRequest` (`/v1/verify`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyHmacRequest {
    /// HMAC key label.
    pub key_name: String,
    /// MAC-ed data.
    #[serde(with = "crate::serde_helpers::b64")]
    pub payload: Vec<u8>,
    /// The MAC to check.
    #[serde(with = "crate::serde_helpers::b64")]
    pub signature: Vec<u8>,
}

/// Inner object of `encryptRequest` (`/v1/encrypt`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptRequest {
    /// Plaintext.
    #[serde(with = "crate::serde_helpers::b64")]
    pub payload: Vec<u8>,
    /// Key label.
    pub encrypt_key_name: String,
    /// Key password (char array).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::password_opt"
    )]
    pub key_password: Option<SecretString>,
    /// e.g. `AES_GCM`, `RSA_PADDING_OAEP_WITH_SHA256`.
    pub cipher_algorithm: String,
    /// GCM tag length in bits (0, 64, 96, 104, 112, 120, 128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_length: Option<u32>,
    /// Additional authenticated data (AEAD ciphers).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::b64_opt"
    )]
    pub additional_authentication_data: Option<Vec<u8>>,
}

impl EncryptRequest {
    /// An encrypt request with only the mandatory fields.
    pub fn new(
        encrypt_key_name: impl Into<String>,
        cipher_algorithm: impl Into<String>,
        payload: Vec<u8>,
    ) -> Self {
        EncryptRequest {
            payload,
            encrypt_key_name: encrypt_key_name.into(),
            key_password: None,
            cipher_algorithm: cipher_algorithm.into(),
            tag_length: None,
            additional_authentication_data: None,
        }
    }
}

/// `/v1/encrypt` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptResponse {
    /// Ciphertext (including the tag for AEAD ciphers).
    #[serde(with = "crate::serde_helpers::b64")]
    pub encrypted_payload: Vec<u8>,
    /// Ciphertext without the tag (AEAD ciphers).
    #[serde(default, with = "crate::serde_helpers::b64_opt")]
    pub encrypted_payload_without_message_authentication_code: Option<Vec<u8>>,
    /// IV / nonce generated by the HSM.
    #[serde(default, with = "crate::serde_helpers::b64_opt")]
    pub initialization_vector: Option<Vec<u8>>,
    /// The tag (AEAD ciphers).
    #[serde(default, with = "crate::serde_helpers::b64_opt")]
    pub message_authentication_code: Option<Vec<u8>>,
}

/// Inner object of `decryptRequest` (`/v1/synchronousDecrypt`, `/v1/decrypt`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecryptRequest {
    /// Ciphertext.
    #[serde(with = "crate::serde_helpers::b64")]
    pub encrypted_payload: Vec<u8>,
    /// Key label.
    pub decrypt_key_name: String,
    /// Key password (char array).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::password_opt"
    )]
    pub key_password: Option<SecretString>,
    /// Cipher algorithm used for encryption.
    pub cipher_algorithm: String,
    /// IV / nonce.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::b64_opt"
    )]
    pub initialization_vector: Option<Vec<u8>>,
    /// GCM tag length in bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_length: Option<u32>,
    /// Additional authenticated data.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::b64_opt"
    )]
    pub additional_authentication_data: Option<Vec<u8>>,
    /// Metadata for approvers (async).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::b64_opt"
    )]
    pub meta_data: Option<Vec<u8>>,
    /// Signature over `meta_data`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::b64_opt"
    )]
    pub meta_data_signature: Option<Vec<u8>>,
    /// Pre-signed approvals (sync, SKA keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_approvals: Option<Vec<String>>,
}

impl DecryptRequest {
    /// A decrypt request with only the mandatory fields.
    pub fn new(
        decrypt_key_name: impl Into<String>,
        cipher_algorithm: impl Into<String>,
        encrypted_payload: Vec<u8>,
    ) -> Self {
        DecryptRequest {
            encrypted_payload,
            decrypt_key_name: decrypt_key_name.into(),
            key_password: None,
            cipher_algorithm: cipher_algorithm.into(),
            initialization_vector: None,
            tag_length: None,
            additional_authentication_data: None,
            meta_data: None,
            meta_data_signature: None,
            signed_approvals: None,
        }
    }
}

/// Inner object of `wrapKeyRequest` (`/v1/wrap`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WrapKeyRequest {
    /// Label of the key to wrap.
    pub key_to_be_wrapped: String,
    /// Its password (char array).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::password_opt"
    )]
    pub key_to_be_wrapped_password: Option<SecretString>,
    /// Label of the wrapping key.
    pub wrap_key_name: String,
    /// Its password (char array).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::password_opt"
    )]
    pub wrap_key_password: Option<SecretString>,
    /// e.g. `AES_WRAP_PAD`, `RSA_WRAP_OAEP`.
    pub wrap_method: String,
}

/// Inner object of `unwrapKeyRequest` (`/v1/synchronousUnwrap`, `/v1/unwrap`).
/// `policy` is always sent (`None` → `null`, a plain key); it is honoured on the sync path only.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnwrapKeyRequest {
    /// Wrapped key bytes.
    #[serde(with = "crate::serde_helpers::b64")]
    pub wrapped_key: Vec<u8>,
    /// Label of the new (unwrapped) key.
    pub label: String,
    /// Label of the unwrapping key.
    pub unwrap_key_name: String,
    /// Its password (char array).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::password_opt"
    )]
    pub unwrap_key_password: Option<SecretString>,
    /// Wrap method used.
    pub wrap_method: String,
    /// Attributes of the new key.
    pub attributes: KeyAttributes,
    /// Policy of the new key (sync only).
    #[serde(default)]
    pub policy: Option<Policy>,
    /// Metadata for approvers (async).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::b64_opt"
    )]
    pub meta_data: Option<Vec<u8>>,
    /// Signature over `meta_data`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::b64_opt"
    )]
    pub meta_data_signature: Option<Vec<u8>>,
    /// Pre-signed approvals (sync, SKA keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_approvals: Option<Vec<String>>,
}

/// Inner object of `blockRequest` (`/v1/synchronousBlock`, `/v1/block`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockRequest {
    /// Key label.
    pub block_key_name: String,
    /// Key password (char array).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::password_opt"
    )]
    pub key_password: Option<SecretString>,
    /// Metadata for approvers.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::b64_opt"
    )]
    pub meta_data: Option<Vec<u8>>,
    /// Signature over `meta_data`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::b64_opt"
    )]
    pub meta_data_signature: Option<Vec<u8>>,
    /// Pre-signed approvals (sync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_approvals: Option<Vec<String>>,
}

impl BlockRequest {
    /// Block `label` with no password/metadata.
    pub fn new(label: impl Into<String>) -> Self {
        BlockRequest {
            block_key_name: label.into(),
            key_password: None,
            meta_data: None,
            meta_data_signature: None,
            signed_approvals: None,
        }
    }
}

/// Inner object of `unblockRequest` (`/v1/synchronousUnblock`, `/v1/unblock`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnblockRequest {
    /// Key label.
    pub unblock_key_name: String,
    /// Key password (char array).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::password_opt"
    )]
    pub key_password: Option<SecretString>,
    /// Metadata for approvers.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::b64_opt"
    )]
    pub meta_data: Option<Vec<u8>>,
    /// Signature over `meta_data`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::b64_opt"
    )]
    pub meta_data_signature: Option<Vec<u8>>,
    /// Pre-signed approvals (sync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_approvals: Option<Vec<String>>,
}

impl UnblockRequest {
    /// Unblock `label` with no password/metadata.
    pub fn new(label: impl Into<String>) -> Self {
        UnblockRequest {
            unblock_key_name: label.into(),
            key_password: None,
            meta_data: None,
            meta_data_signature: None,
            signed_approvals: None,
        }
    }
}

/// Inner object of `modifyRequest` (`/v1/synchronousModify`, `/v1/modify`): replaces the whole
/// SKA policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModifyRequest {
    /// Key label.
    pub modify_key_name: String,
    /// Key password (char array).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::password_opt"
    )]
    pub key_password: Option<SecretString>,
    /// The full new policy.
    pub policy: Policy,
    /// Metadata for approvers.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::b64_opt"
    )]
    pub meta_data: Option<Vec<u8>>,
    /// Signature over `meta_data`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::b64_opt"
    )]
    pub meta_data_signature: Option<Vec<u8>>,
    /// Pre-signed approvals (sync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_approvals: Option<Vec<String>>,
}

impl ModifyRequest {
    /// Replace the policy of `label` with `policy`.
    pub fn new(label: impl Into<String>, policy: Policy) -> Self {
        ModifyRequest {
            modify_key_name: label.into(),
            key_password: None,
            policy,
            meta_data: None,
            meta_data_signature: None,
            signed_approvals: None,
        }
    }
}
