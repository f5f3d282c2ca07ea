//! # km-tsb — a standalone Rust SDK for the Securosys TSB REST API
//!
//! Owns: the TSB wire types (JSON names exactly as the TSB uses them, binary values as standard
//! base64, key passwords as char arrays on the wire and [`SecretString`] in Rust), the
//! [`TsbClient`] (reqwest + rustls with aws-lc-rs; API-key groups with rollover, bearer JWT,
//! mTLS and private CAs, all combinable; timeouts on every call; retries only for idempotent
//! GETs) and approver-side signing ([`ApproverKey`]).
//!
//! Must not depend on any other keymanager crate: it is usable on its own against a real TSB or
//! the keymanager TSB emulator. No OpenSSL anywhere.
//!
//! Applications should install the rustls provider once at start-up
//! (`rustls::crypto::aws_lc_rs::default_provider().install_default()`); the client works
//! without it too, because reqwest then uses aws-lc-rs explicitly.
//!
//! ```no_run
//! use std::time::Duration;
//! use km_tsb::{ApiKeys, ApproverKey, ApprovalTaskFilter, CreateKeyRequest, KeyAttributes,
//!     Policy, Approval, SignRequest, TsbClient};
//! use secrecy::SecretString;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = TsbClient::builder("https://tsb.example.com:8080")
//!     .api_keys(ApiKeys {
//!         key_management: vec![SecretString::from("km-key-new"), SecretString::from("km-key-old")],
//!         key_operation: vec![SecretString::from("op-key")],
//!         service: vec![SecretString::from("svc-key")],
//!         ..ApiKeys::default()
//!     })
//!     .root_ca_pem(&std::fs::read("ca.pem")?)
//!     .client_identity_pem(&std::fs::read("client.crt")?, &std::fs::read("client.key")?)
//!     .timeout(Duration::from_secs(20))
//!     .build()?;
//!
//! println!("TSB {}", client.version_info().await?.version);
//!
//! // An SKA key that needs one approval to sign.
//! let approver = ApproverKey::from_pkcs8_der(&std::fs::read("approver.pk8")?)?;
//! let policy = Policy::simplified(
//!     vec![Approval::public_key(Some("alice".into()), approver.public_key_spki_der())], 1, 0, 0);
//! let mut create = CreateKeyRequest::new("payments-signing", "EC", KeyAttributes {
//!     sign: Some(true), ..KeyAttributes::default() });
//! create.curve_oid = Some("1.2.840.10045.3.1.7".into());
//! create.policy = Some(policy);
//! client.create_key(&create).await?;
//!
//! let request_id = client
//!     .sign_async(&SignRequest::new("payments-signing", "SHA256_WITH_ECDSA", b"pay 10".to_vec()))
//!     .await?;
//! for task in client.fetch_approval_tasks(&approver, &ApprovalTaskFilter::default()).await? {
//!     client.approve(&approver, &task).await?;
//! }
//! let done = client
//!     .wait_for_request(&request_id, Duration::from_millis(500), Duration::from_secs(60))
//!     .await?;
//! let signature = done.result_bytes().transpose()?;
//! # let _ = signature;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod approver;
mod client;
mod endpoints;
pub mod error;
mod serde_helpers;
pub mod types;

#[cfg(test)]
mod tests;

pub use approver::{ApproverKey, ApproverKeyType};
pub use client::{
    ApiKeys, DEFAULT_CONNECT_TIMEOUT, DEFAULT_GET_RETRIES, DEFAULT_RETRY_BACKOFF, DEFAULT_TIMEOUT,
    KeyGroup, TsbClient, TsbClientBuilder,
};
pub use endpoints::APPROVER_TIMESTAMP_SKEW_MARGIN;
pub use error::TsbError;
pub use secrecy::SecretString;
pub use types::approvals::{
    ApprovalRequest, ApprovalTask, ApprovalTaskFilter, FilteredApprovalTaskRequest, Paging,
    RejectTaskRequest, TaskKind, TaskType,
};
pub use types::approver_management::{
    ApproverEntry, CreateApproverRequest, OnboardApproverRequest, OnboardApproverResponse,
    OnboardingStatus,
};
pub use types::certificates::{
    CertificateResponse, CsrRequest, CsrResponse, ExtendedKeyUsage, ImportCertificateRequest,
    KeyUsage, SelfSignCertificateRequest, SignCertificateRequest, StandardCertificateAttributes,
};
pub use types::crypto::{
    BlockRequest, DecryptRequest, EncryptRequest, EncryptResponse, HmacRequest, ModifyRequest,
    SignRequest, UnblockRequest, UnwrapKeyRequest, VerifyHmacRequest, VerifyRequest,
    WrapKeyRequest,
};
pub use types::data_objects::{CreateDataObjectRequest, DataObject, DataObjectFlags};
pub use types::keys::{
    AddressFormat, ChangePasswordRequest, CreateKeyRequest, ExportedKey, ImportPlainKeyRequest,
    KeyAttributes, KeyDescriptor, KeyInfo, KeyLabelRequest, TruncatedAddress,
};
pub use types::policy::{Approval, ApprovalType, Group, KeyStatus, Policy, Rule, Token};
pub use types::requests::{RequestFilter, RequestState, RequestStatus};
pub use types::service::{KeystoreStatistics, LicenseInfo, VersionInfo};
