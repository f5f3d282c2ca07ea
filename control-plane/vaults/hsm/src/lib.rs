//! km-vault-hsm — keeps partition credentials as sealed records on the management partition.
//!
//! Owns: [`HsmVault`], the `SecretVault` backend that needs nothing but the HSM keymanager already
//! runs on. Each secret is one state-store record `kms.vault-secret.<name>`, sealed (AES-256-GCM
//! inside the HSM under the non-extractable seal key, associated data binding kind and id), written
//! under the record's lock and read back before the write is acknowledged — the same guarantees as
//! every other piece of keymanager state. The value never leaves the process unsealed.
//!
//! Must not depend on: the TSB SDK (it talks to the HSM only through km-core's `StateStore`), HTTP
//! servers, other vault adapters.

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use km_core::{
    Sealing, SecretName, SecretValue, SecretVault, StateStore, StoreError, VaultError, VaultKind,
};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

/// State-store kind of the vault's records.
pub const RECORD_KIND: &str = "vault-secret";
/// Actor written into the records' envelopes (the audit trail of who changed a partition's
/// credentials is kept by the use case that called the vault).
const ACTOR: &str = "system:vault";

/// The sealed record body. `Drop` wipes the base64 text.
#[derive(Serialize, Deserialize)]
struct StoredSecret {
    /// Base64 of the secret bytes.
    value: String,
}

impl Drop for StoredSecret {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

/// Secrets as sealed records in the management partition's state store.
#[derive(Debug, Clone)]
pub struct HsmVault {
    store: StateStore,
}

impl HsmVault {
    /// A vault over `store` (the management partition's state store).
    pub fn new(store: StateStore) -> Self {
        Self { store }
    }
}

fn vault_error(error: StoreError) -> VaultError {
    let detail = error.to_string();
    match error {
        StoreError::Hsm(km_core::HsmError::Unauthorized(_)) => VaultError::Denied {
            backend: VaultKind::Hsm,
            detail,
        },
        StoreError::Corrupt { .. } | StoreError::Hsm(km_core::HsmError::Integrity(_)) => {
            VaultError::Integrity {
                backend: VaultKind::Hsm,
                detail,
            }
        }
        error if error.is_transient() => VaultError::Unavailable {
            backend: VaultKind::Hsm,
            detail,
        },
        StoreError::Hsm(km_core::HsmError::Unavailable(_)) => VaultError::Unavailable {
            backend: VaultKind::Hsm,
            detail,
        },
        _ => VaultError::Rejected {
            backend: VaultKind::Hsm,
            detail,
        },
    }
}

#[async_trait]
impl SecretVault for HsmVault {
    fn kind(&self) -> VaultKind {
        VaultKind::Hsm
    }

    async fn put(&self, name: &SecretName, value: &SecretValue) -> Result<(), VaultError> {
        if value.len() > SecretValue::MAX_LEN {
            return Err(VaultError::Rejected {
                backend: VaultKind::Hsm,
                detail: format!(
                    "the value has {} bytes; at most {} are stored",
                    value.len(),
                    SecretValue::MAX_LEN
                ),
            });
        }
        let encoded = Zeroizing::new(STANDARD.encode(value.expose_secret()));
        self.store
            .modify(
                RECORD_KIND,
                name.as_str(),
                Sealing::Sealed,
                ACTOR,
                |_current: Option<km_core::Versioned<StoredSecret>>| {
                    Ok::<_, StoreError>(StoredSecret {
                        value: String::clone(&encoded),
                    })
                },
            )
            .await
            .map(drop)
            .map_err(vault_error)
    }

    async fn get(&self, name: &SecretName) -> Result<Option<SecretValue>, VaultError> {
        let Some(record) = self
            .store
            .get::<StoredSecret>(RECORD_KIND, name.as_str())
            .await
            .map_err(vault_error)?
        else {
            return Ok(None);
        };
        let bytes = STANDARD
            .decode(record.value.value.as_bytes())
            .map_err(|_| VaultError::Integrity {
                backend: VaultKind::Hsm,
                detail: format!("record {RECORD_KIND}/{name} does not hold base64"),
            })?;
        Ok(Some(SecretValue::new(bytes)))
    }

    async fn delete(&self, name: &SecretName) -> Result<(), VaultError> {
        // A concurrent put may bump the revision between the read and the delete; start over then.
        for _ in 0..5 {
            let Some(record) = self
                .store
                .get::<StoredSecret>(RECORD_KIND, name.as_str())
                .await
                .map_err(vault_error)?
            else {
                return Ok(());
            };
            match self
                .store
                .delete(RECORD_KIND, name.as_str(), record.revision)
                .await
            {
                Ok(()) | Err(StoreError::NotFound { .. }) => return Ok(()),
                Err(StoreError::Conflict { .. }) => {
                    self.store.invalidate_cache();
                    continue;
                }
                Err(error) => return Err(vault_error(error)),
            }
        }
        Err(VaultError::Unavailable {
            backend: VaultKind::Hsm,
            detail: format!("{name} kept changing while it was being deleted; try again"),
        })
    }

    async fn check(&self) -> Result<(), VaultError> {
        self.store.prepare().await.map_err(vault_error)
    }
}
