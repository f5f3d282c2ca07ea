//! A partition's credentials: the JSON document kept in a vault. Secret fields are [`SecretText`]
//! (wiped on drop, redacted in `Debug`); the document exists in clear only inside this process.

use km_domain::AuthMode;
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use super::PartitionError;
use crate::{SecretText, SecretValue};

/// TSB API keys: one key for every API-key group, overridden per group where the TSB uses
/// different keys per group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiKeyCredentials {
    /// The key for every group without its own.
    pub default: Option<SecretText>,
    /// `keyManagementToken`.
    pub key_management: Option<SecretText>,
    /// `keyOperationToken`.
    pub key_operation: Option<SecretText>,
    /// `serviceToken`.
    pub service: Option<SecretText>,
    /// `approverToken`.
    pub approver: Option<SecretText>,
    /// `approverKeyManagementToken`.
    pub approver_key_management: Option<SecretText>,
}

impl ApiKeyCredentials {
    /// The same key for every group.
    pub fn single(key: SecretText) -> Self {
        Self {
            default: Some(key),
            ..Self::default()
        }
    }

    fn is_empty(&self) -> bool {
        self.default.is_none()
            && self.key_management.is_none()
            && self.key_operation.is_none()
            && self.service.is_none()
            && self.approver.is_none()
            && self.approver_key_management.is_none()
    }
}

/// Everything keymanager needs to authenticate to one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionCredentials {
    /// API keys (auth modes `api_keys`, and optionally `mtls`).
    pub api_keys: ApiKeyCredentials,
    /// Bearer JWT (auth mode `jwt`).
    pub bearer_token: Option<SecretText>,
    /// Client certificate chain, PEM (auth mode `mtls`; public).
    pub client_certificate_pem: Option<String>,
    /// Client private key, PEM (auth mode `mtls`).
    pub client_key_pem: Option<SecretText>,
}

/// The stored form. Dropped right after (de)serialising; `Drop` wipes every string.
#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_management: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_operation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    approver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    approver_key_management: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bearer_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_certificate_pem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_key_pem: Option<String>,
}

impl Drop for Stored {
    fn drop(&mut self) {
        for field in [
            &mut self.api_key,
            &mut self.key_management,
            &mut self.key_operation,
            &mut self.service,
            &mut self.approver,
            &mut self.approver_key_management,
            &mut self.bearer_token,
            &mut self.client_key_pem,
        ]
        .into_iter()
        .flatten()
        {
            field.zeroize();
        }
    }
}

fn reveal(secret: &Option<SecretText>) -> Option<String> {
    secret.as_ref().map(|s| s.expose_secret().to_owned())
}

fn hide(text: &Option<String>) -> Option<SecretText> {
    text.as_deref().map(SecretText::from)
}

impl PartitionCredentials {
    /// Checks that the credentials fit `mode` (e.g. mTLS needs a certificate and its key).
    pub fn check_against(&self, mode: AuthMode) -> Result<(), PartitionError> {
        let problem = match mode {
            AuthMode::ApiKeys if self.api_keys.is_empty() => {
                Some("the auth mode api_keys needs an API key")
            }
            AuthMode::Jwt if self.bearer_token.is_none() => {
                Some("the auth mode jwt needs a bearer token")
            }
            AuthMode::Mtls
                if self.client_certificate_pem.is_none() || self.client_key_pem.is_none() =>
            {
                Some("the auth mode mtls needs a client certificate and its private key (PEM)")
            }
            _ => None,
        };
        match problem {
            Some(problem) => Err(PartitionError::InvalidCredentials(problem.to_owned())),
            None => Ok(()),
        }
    }

    /// The document as stored in a vault.
    pub fn to_secret_value(&self) -> Result<SecretValue, PartitionError> {
        let stored = Stored {
            api_key: reveal(&self.api_keys.default),
            key_management: reveal(&self.api_keys.key_management),
            key_operation: reveal(&self.api_keys.key_operation),
            service: reveal(&self.api_keys.service),
            approver: reveal(&self.api_keys.approver),
            approver_key_management: reveal(&self.api_keys.approver_key_management),
            bearer_token: reveal(&self.bearer_token),
            client_certificate_pem: self.client_certificate_pem.clone(),
            client_key_pem: reveal(&self.client_key_pem),
        };
        let bytes = serde_json::to_vec(&stored).map_err(|error| {
            PartitionError::InvalidCredentials(format!("cannot encode credentials: {error}"))
        })?;
        let value = SecretValue::new(bytes);
        if value.len() > SecretValue::MAX_LEN {
            return Err(PartitionError::InvalidCredentials(format!(
                "the credentials take {} bytes; at most {} can be stored",
                value.len(),
                SecretValue::MAX_LEN
            )));
        }
        Ok(value)
    }

    /// Reads a document written by [`PartitionCredentials::to_secret_value`].
    pub fn from_secret_value(value: &SecretValue) -> Result<Self, PartitionError> {
        let stored: Stored = serde_json::from_slice(value.expose_secret()).map_err(|_| {
            PartitionError::InvalidCredentials(
                "the stored credentials are not a keymanager credentials document".to_owned(),
            )
        })?;
        Ok(Self {
            api_keys: ApiKeyCredentials {
                default: hide(&stored.api_key),
                key_management: hide(&stored.key_management),
                key_operation: hide(&stored.key_operation),
                service: hide(&stored.service),
                approver: hide(&stored.approver),
                approver_key_management: hide(&stored.approver_key_management),
            },
            bearer_token: hide(&stored.bearer_token),
            client_certificate_pem: stored.client_certificate_pem.clone(),
            client_key_pem: hide(&stored.client_key_pem),
        })
    }
}
