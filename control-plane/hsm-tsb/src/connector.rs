//! [`TsbPartitionConnector`]: builds one TSB client per partition from its registration and the
//! credentials read from its vault.

use std::sync::Arc;
use std::time::Duration;

use km_core::{
    Hsm, HsmError, PartitionConnector, PartitionCredentials, PartitionTarget, SecretText,
};
use km_domain::AuthMode;
use km_tsb::{ApiKeys, TsbClient};
use secrecy::SecretString;

use crate::{TsbHsm, hsm_error};

/// Builds [`TsbHsm`]s for tenant partitions.
#[derive(Debug, Clone)]
pub struct TsbPartitionConnector {
    timeout: Duration,
}

impl TsbPartitionConnector {
    /// Clients with `timeout` per request (connect timeout: a fifth of it, at least 1 s).
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
}

impl Default for TsbPartitionConnector {
    fn default() -> Self {
        Self::new(Duration::from_secs(30))
    }
}

fn secret(text: &SecretText) -> SecretString {
    SecretString::from(text.expose_secret().to_owned())
}

/// The group's own key if set, otherwise the default key (none: no header for that group).
fn group(own: &Option<SecretText>, default: &Option<SecretText>) -> Vec<SecretString> {
    own.as_ref()
        .or(default.as_ref())
        .map(secret)
        .into_iter()
        .collect()
}

impl PartitionConnector for TsbPartitionConnector {
    fn connect(
        &self,
        target: &PartitionTarget,
        credentials: &PartitionCredentials,
    ) -> Result<Arc<dyn Hsm>, HsmError> {
        let keys = &credentials.api_keys;
        let mut builder = TsbClient::builder(target.endpoint.as_str())
            .timeout(self.timeout)
            .connect_timeout((self.timeout / 5).max(Duration::from_secs(1)))
            .api_keys(ApiKeys {
                key_management: group(&keys.key_management, &keys.default),
                key_operation: group(&keys.key_operation, &keys.default),
                approver: group(&keys.approver, &keys.default),
                service: group(&keys.service, &keys.default),
                approver_key_management: group(&keys.approver_key_management, &keys.default),
            });
        if let Some(ca) = &target.ca_pem {
            builder = builder.root_ca_pem(ca.as_bytes());
        }
        if target.auth == AuthMode::Jwt
            && let Some(token) = &credentials.bearer_token
        {
            builder = builder.bearer_token(secret(token));
        }
        if target.auth == AuthMode::Mtls
            && let (Some(cert), Some(key)) = (
                &credentials.client_certificate_pem,
                &credentials.client_key_pem,
            )
        {
            builder = builder.client_identity_pem(cert.as_bytes(), key.expose_secret().as_bytes());
        }
        let client = builder.build().map_err(|error| match hsm_error(error) {
            // A client that cannot even be built has bad local input (URL, PEM), not a dead TSB.
            HsmError::Unavailable(detail) => HsmError::Refused(detail),
            other => other,
        })?;
        Ok(Arc::new(TsbHsm::new(client)))
    }
}
