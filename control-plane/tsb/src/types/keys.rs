//! Key management wire types (`keyManagementToken` group): create, list, attributes, delete,
//! import/export, password change.

use secrecy::{SecretSlice, SecretString};
use serde::{Deserialize, Serialize};

use super::policy::Policy;

/// Key attributes (the boolean map `attributes`). `None` entries are omitted from the JSON so
/// that the TSB applies its defaults; read-only flags appear only in responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyAttributes {
    /// May encrypt (public-key operation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypt: Option<bool>,
    /// May decrypt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decrypt: Option<bool>,
    /// May verify (public-key operation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<bool>,
    /// May sign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign: Option<bool>,
    /// May wrap other keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrap: Option<bool>,
    /// May unwrap keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unwrap: Option<bool>,
    /// May derive keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derive: Option<bool>,
    /// BIP32 derivation (EC with derive only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bip32: Option<bool>,
    /// SLIP-10 derivation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slip10: Option<bool>,
    /// May be exported (requires `policy: null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extractable: Option<bool>,
    /// Attributes may be made stricter later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modifiable: Option<bool>,
    /// May be deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destroyable: Option<bool>,
    /// Key material never leaves the HSM in plain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitive: Option<bool>,
    /// May be externalised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copyable: Option<bool>,
    /// Read-only: has always been sensitive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always_sensitive: Option<bool>,
    /// Read-only: has never been extractable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub never_extractable: Option<bool>,
    /// Read-only: EKA signing flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eka_sign: Option<bool>,
}

/// `addressFormat` for SKA crypto keys (e.g. `{"format": "BTC"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressFormat {
    /// `BTC`, `ETH`, ...
    pub format: String,
}

/// `POST /v1/key` body. `policy` is always sent: `None` → `null` (plain key, can never become
/// SKA); `Some(Policy::empty_ska())` → SKA key without approvals yet.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateKeyRequest {
    /// Unique key label.
    pub label: String,
    /// Algorithm name exactly as the TSB spells it (`RSA`, `EC`, `ED`, `AES`, `ChaCha20`, ...).
    pub algorithm: String,
    /// Key size in bits (RSA/DSA/AES/...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_size: Option<u32>,
    /// Curve OID for EC/ED keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve_oid: Option<String>,
    /// Optional key password (sent as a char array).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::password_opt"
    )]
    pub password: Option<SecretString>,
    /// Optional key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Optional algorithm OID (e.g. BLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm_oid: Option<String>,
    /// Address format (SKA keys only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_format: Option<AddressFormat>,
    /// Key attributes.
    pub attributes: KeyAttributes,
    /// SKA policy; `None` is serialised as explicit `null`.
    #[serde(default)]
    pub policy: Option<Policy>,
}

impl CreateKeyRequest {
    /// A request with only the mandatory fields; `policy` is `None` (plain key).
    pub fn new(
        label: impl Into<String>,
        algorithm: impl Into<String>,
        attributes: KeyAttributes,
    ) -> Self {
        CreateKeyRequest {
            label: label.into(),
            algorithm: algorithm.into(),
            key_size: None,
            curve_oid: None,
            password: None,
            id: None,
            algorithm_oid: None,
            address_format: None,
            attributes,
            policy: None,
        }
    }
}

/// `{label, password}` body of `POST /v1/key/attributes`, `/v1/key/export/plain`,
/// `/v1/key/deleteKey`, `/v1/key/keyAttestation`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyLabelRequest {
    /// Key label.
    pub label: String,
    /// Key password, if the key has one (char array).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::password_opt"
    )]
    pub password: Option<SecretString>,
}

/// `POST /v1/key/changePassword` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangePasswordRequest {
    /// Key label.
    pub label: String,
    /// Current password (char array; `null` if none).
    #[serde(default, with = "crate::serde_helpers::password_opt")]
    pub password: Option<SecretString>,
    /// New password (char array).
    #[serde(with = "crate::serde_helpers::password")]
    pub new_password: SecretString,
}

/// The key descriptor returned by key creation and `/v1/key/attributes`: attestation data at the
/// top level, key facts under `json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyDescriptor {
    /// Attestation XML (HSM-signed statement about the key).
    #[serde(default)]
    pub xml: Option<String>,
    /// Base64 signature over `xml` by the attestation key.
    #[serde(default)]
    pub xml_signature: Option<String>,
    /// Name of the attestation key (usually `attestation-key`).
    #[serde(default)]
    pub attestation_key_name: Option<String>,
    /// The key facts.
    pub json: KeyInfo,
}

/// Key facts inside [`KeyDescriptor::json`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    /// Key label.
    pub label: String,
    /// Key id.
    #[serde(default)]
    pub id: Option<String>,
    /// HSM-assigned UUID.
    #[serde(default)]
    pub uuid: Option<String>,
    /// Algorithm name.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// Algorithm OID.
    #[serde(default)]
    pub algorithm_oid: Option<String>,
    /// Curve OID (EC/ED).
    #[serde(default)]
    pub curve_oid: Option<String>,
    /// Key size in bits.
    #[serde(default)]
    pub key_size: Option<u32>,
    /// How often the key was used.
    #[serde(default)]
    pub key_usage_count: Option<u64>,
    /// Creation time (ISO-8601); parse with [`KeyInfo::created_at`].
    #[serde(default)]
    pub create_time: Option<String>,
    /// Attestation time (ISO-8601).
    #[serde(default)]
    pub attest_time: Option<String>,
    /// Public key (SPKI DER) for asymmetric keys.
    #[serde(default, with = "crate::serde_helpers::b64_opt")]
    pub public_key: Option<Vec<u8>>,
    /// Truncated crypto address, if an address format was set.
    #[serde(default)]
    pub address_truncated: Option<TruncatedAddress>,
    /// Derivation facts for derived keys (shape not pinned down by the reference).
    #[serde(default)]
    pub derived_attributes: Option<serde_json::Value>,
    /// Attributes as the HSM reports them.
    #[serde(default, deserialize_with = "crate::serde_helpers::null_default")]
    pub attributes: KeyAttributes,
    /// SKA policy (with `keyStatus`), or `None` for plain keys.
    #[serde(default)]
    pub policy: Option<Policy>,
}

impl KeyInfo {
    /// Parses `createTime` (RFC 3339 / ISO-8601); `None` if absent or not parseable.
    pub fn created_at(&self) -> Option<time::OffsetDateTime> {
        self.create_time.as_deref().and_then(parse_time)
    }

    /// Whether the key is SKA-governed (has a policy).
    pub fn is_ska(&self) -> bool {
        self.policy.is_some()
    }

    /// Whether the key is blocked (`policy.keyStatus.blocked`).
    pub fn is_blocked(&self) -> bool {
        self.policy.as_ref().is_some_and(Policy::is_blocked)
    }
}

pub(crate) fn parse_time(text: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

/// `addressTruncated` in a key descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TruncatedAddress {
    /// The (truncated) address.
    #[serde(default)]
    pub address: Option<String>,
    /// Its format (`BTC`, `ETH`, ...).
    #[serde(default)]
    pub format: Option<String>,
}

/// `POST /v1/key/import/plain` body. Key material is held in secret buffers and base64-encoded
/// on the wire; a private key must come with its public key or certificate.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportPlainKeyRequest {
    /// Label of the imported key.
    pub label: String,
    /// Algorithm name.
    pub algorithm: String,
    /// Private key (PKCS#8 DER).
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::secret_b64_opt"
    )]
    pub private_key: Option<SecretSlice<u8>>,
    /// Public key (SPKI DER).
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::b64_opt"
    )]
    pub public_key: Option<Vec<u8>>,
    /// Secret (symmetric) key bytes.
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::secret_b64_opt"
    )]
    pub secret_key: Option<SecretSlice<u8>>,
    /// Certificate (DER).
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::b64_opt"
    )]
    pub certificate: Option<Vec<u8>>,
    /// Curve OID (EC/ED).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curve_oid: Option<String>,
    /// Attributes of the imported key.
    pub attributes: KeyAttributes,
    /// SKA policy; `None` → `null` (plain key).
    pub policy: Option<Policy>,
}

/// `POST /v1/key/export/plain` response (field names not confirmed by the reference; the
/// likely `privateKey`/`publicKey`/`secretKey` are read, anything else is ignored).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedKey {
    /// Private key (PKCS#8 DER).
    #[serde(default, with = "crate::serde_helpers::secret_b64_opt")]
    pub private_key: Option<SecretSlice<u8>>,
    /// Public key (SPKI DER).
    #[serde(default, with = "crate::serde_helpers::b64_opt")]
    pub public_key: Option<Vec<u8>>,
    /// Secret (symmetric) key bytes.
    #[serde(default, with = "crate::serde_helpers::secret_b64_opt")]
    pub secret_key: Option<SecretSlice<u8>>,
}
