//! km-hsm-tsb — the adapter that implements km-core's [`Hsm`] port with the km-tsb SDK.
//!
//! Owns: translating port calls into TSB REST calls and TSB errors into [`HsmError`]s. One
//! [`TsbHsm`] wraps one `TsbClient`, i.e. one partition with its own credentials.
//!
//! Must not depend on: other adapters, the HTTP server, or anything that knows about tenants'
//! other partitions.

use async_trait::async_trait;
use km_core::{DataObjectName, Hsm, HsmError, KeystoreStatistics, ServiceInfo};
use km_tsb::{DataObjectFlags, TsbClient, TsbError};

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

#[async_trait]
impl Hsm for TsbHsm {
    async fn service_info(&self) -> Result<ServiceInfo, HsmError> {
        let version = self.client.version_info().await.map_err(hsm_error)?;
        let licenses = self.client.license_info().await.map_err(hsm_error)?;
        Ok(ServiceInfo { version: version.version, licenses: licenses.client_flags })
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

    async fn create_data_object(&self, name: &DataObjectName, value: &[u8]) -> Result<(), HsmError> {
        self.client
            .create_data_object(name.as_str(), value, DataObjectFlags::default())
            .await
            .map_err(hsm_error)
    }

    async fn read_data_object(&self, name: &DataObjectName) -> Result<Option<Vec<u8>>, HsmError> {
        match self.client.get_data_object(name.as_str()).await {
            Ok(object) => Ok(Some(object.value)),
            Err(error) if error.tsb_code() == Some(653) => Ok(None),
            Err(error) => Err(hsm_error(error)),
        }
    }
}
