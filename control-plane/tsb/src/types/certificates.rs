//! Certificate wire types (`keyOperationToken` group): CSR, self-signed, issue-from-CSR (sync
//! and SKA-async), import, get, delete. Certificates and CSRs come back as PEM text.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// X.509 key usage (marked critical by the TSB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum KeyUsage {
    DigitalSignature,
    ContentCommitment,
    KeyEncipherment,
    DataEncipherment,
    KeyAgreement,
    KeyCertSign,
    CrlSign,
    EncipherOnly,
    DecipherOnly,
}

/// X.509 extended key usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum ExtendedKeyUsage {
    AnyExtendedKeyUsage,
    ServerAuth,
    ClientAuth,
    CodeSigning,
    EmailProtection,
    TimeStamping,
    OcspSigning,
}

/// Subject fields of a CSR (`standardCertificateAttributes`); only `commonName` is required.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct StandardCertificateAttributes {
    pub common_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_or_province_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_unit_name: Option<String>,
    /// OID 2.5.4.97.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_identifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initials: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pseudonym: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_qualifier: Option<String>,
}

/// CSR creation (`/v1/certificate/synchronous/request`; async wrapper `csrSignRequest` on
/// `/v1/certificate/request`). As a side effect the key gets a self-signed certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CsrRequest {
    /// Key whose public key goes into the CSR (and which signs it).
    pub sign_key_name: String,
    /// Key password (char array).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::password_opt"
    )]
    pub key_password: Option<SecretString>,
    /// e.g. `SHA256_WITH_RSA`, `SHA256_WITH_ECDSA`.
    pub signature_algorithm: String,
    /// Validity in days (of the side-effect self-signed certificate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity: Option<u32>,
    /// Subject.
    pub standard_certificate_attributes: StandardCertificateAttributes,
    /// Key usages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_usage: Option<Vec<KeyUsage>>,
    /// Extended key usages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_key_usage: Option<Vec<ExtendedKeyUsage>>,
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
}

/// `{"label", "certificateSigningRequest"}` — CSR in PEM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CsrResponse {
    /// Key label.
    #[serde(default)]
    pub label: Option<String>,
    /// PEM CSR.
    pub certificate_signing_request: String,
}

/// Self-signed certificate (`/v1/certificate/synchronous/selfsign`; async wrapper
/// `selfSignCertificateRequest` on `/v1/certificate/selfsign`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelfSignCertificateRequest {
    /// Key to certify (and sign with).
    pub sign_key_name: String,
    /// Key password (char array).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::password_opt"
    )]
    pub key_password: Option<SecretString>,
    /// Signature algorithm.
    pub signature_algorithm: String,
    /// Validity in days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity: Option<u32>,
    /// Subject common name.
    pub common_name: String,
    /// Key usages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_usage: Option<Vec<KeyUsage>>,
    /// Extended key usages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_key_usage: Option<Vec<ExtendedKeyUsage>>,
    /// Adds basicConstraints CA:TRUE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority: Option<bool>,
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
}

/// Issue a certificate from a CSR with a CA key (`/v1/certificate/synchronous/sign`; async
/// wrapper `signCertificateRequest` on `/v1/certificate/sign`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignCertificateRequest {
    /// CA key label.
    pub sign_key_name: String,
    /// CA key password (char array).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::password_opt"
    )]
    pub key_password: Option<SecretString>,
    /// Signature algorithm.
    pub signature_algorithm: String,
    /// Subject common name.
    pub common_name: String,
    /// PEM CSR to certify.
    pub certificate_signing_request: String,
    /// Issue a CA certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority: Option<bool>,
    /// Key usages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_usage: Option<Vec<KeyUsage>>,
    /// Extended key usages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_key_usage: Option<Vec<ExtendedKeyUsage>>,
    /// Validity in days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity: Option<u32>,
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
}

/// `POST /v1/certificate/import/plain` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportCertificateRequest {
    /// Key label the certificate belongs to (overwrites an existing certificate).
    pub label: String,
    /// Certificate DER (bare base64 on the wire).
    #[serde(with = "crate::serde_helpers::b64")]
    pub certificate: Vec<u8>,
}

/// `{"label", "certificate"}` — certificate in PEM (or as the TSB returns it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateResponse {
    /// Key label.
    #[serde(default)]
    pub label: Option<String>,
    /// The certificate (PEM).
    pub certificate: String,
}
