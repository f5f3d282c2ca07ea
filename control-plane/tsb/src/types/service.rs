//! Service-information endpoints (`serviceToken` group): used for health checks and to learn
//! what the TSB is licensed for.

use serde::{Deserialize, Serialize};

/// `GET /v1/versionInfo` → `{"Version": "2.1.0"}` (capital `V`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The TSB version string (may carry a build suffix; the emulator says so in it).
    #[serde(rename = "Version")]
    pub version: String,
}

/// `GET /v1/licenseInfo` → `{"clientFlags": ["REST_API", "TSB_ENGINE", ...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseInfo {
    /// Licensed features (`REST_API`, `TSB_ENGINE`, `KEY_AUTH`, ...).
    #[serde(default, deserialize_with = "crate::serde_helpers::null_default")]
    pub client_flags: Vec<String>,
}

impl LicenseInfo {
    /// Whether a licence flag is present (e.g. `"TSB_ENGINE"` for SKA workflows).
    pub fn has(&self, flag: &str) -> bool {
        self.client_flags.iter().any(|f| f == flag)
    }
}

/// `GET /v1/keystore/statistics`: object counts and capacity of the partition. Missing fields
/// decode as 0 so that a TSB with a slightly different shape still passes a health check.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KeystoreStatistics {
    /// Private keys.
    #[serde(deserialize_with = "crate::serde_helpers::null_default")]
    pub private_keys: u64,
    /// Public keys.
    #[serde(deserialize_with = "crate::serde_helpers::null_default")]
    pub public_keys: u64,
    /// Secret (symmetric) keys.
    #[serde(deserialize_with = "crate::serde_helpers::null_default")]
    pub secret_keys: u64,
    /// Certificates.
    #[serde(deserialize_with = "crate::serde_helpers::null_default")]
    pub certificates: u64,
    /// Data objects.
    #[serde(deserialize_with = "crate::serde_helpers::null_default")]
    pub data_objects: u64,
    /// Invalidated keys.
    #[serde(deserialize_with = "crate::serde_helpers::null_default")]
    pub invalidated_keys: u64,
    /// Used bytes.
    #[serde(deserialize_with = "crate::serde_helpers::null_default")]
    pub used_size: u64,
    /// Maximum bytes.
    #[serde(deserialize_with = "crate::serde_helpers::null_default")]
    pub max_size: u64,
    /// Objects that can still be created.
    #[serde(deserialize_with = "crate::serde_helpers::null_default")]
    pub remaining_objects: u64,
}
