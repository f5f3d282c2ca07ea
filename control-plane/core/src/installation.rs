//! The installation record: the first thing keymanager writes to its management partition.
//!
//! It gives every deployment a stable identity (used later to sign audit checkpoints and to tell
//! replicas of one installation from another) and proves on every start that the management
//! partition accepts writes and keeps them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{Clock, DataObjectName, Hsm, HsmError, Timestamp};

/// The stored record `kms.install.main`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallationRecord {
    /// Record schema version, so later releases can migrate it.
    pub schema: u32,
    /// Random identity of this installation.
    pub installation_id: String,
    /// When the installation was first started.
    pub created_at: Timestamp,
}

/// Why the installation record could not be established.
#[derive(Debug, thiserror::Error)]
pub enum InstallationError {
    /// The management partition failed.
    #[error(transparent)]
    Hsm(#[from] HsmError),
    /// The stored record is not one we can read; refuse to start rather than overwrite it.
    #[error("the installation record {name} on the management partition is unreadable: {reason}")]
    Corrupt {
        /// Object name.
        name: String,
        /// Parser message.
        reason: String,
    },
}

/// Establishes (first start) or loads (every later start) the installation record.
#[derive(Clone)]
pub struct Installation {
    management: Arc<dyn Hsm>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Installation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Installation").finish_non_exhaustive()
    }
}

impl Installation {
    const SCHEMA: u32 = 1;

    /// Uses `management` (the management partition) and `clock`.
    pub fn new(management: Arc<dyn Hsm>, clock: Arc<dyn Clock>) -> Self {
        Self { management, clock }
    }

    fn record_name() -> DataObjectName {
        DataObjectName::record("install", "main")
    }

    /// Returns the existing record, or creates it. Safe to run concurrently from several replicas:
    /// creation is create-if-absent, and the loser of a race reads the winner's record.
    pub async fn ensure(&self) -> Result<InstallationRecord, InstallationError> {
        let name = Self::record_name();
        if let Some(existing) = self.load(&name).await? {
            return Ok(existing);
        }
        let record = InstallationRecord {
            schema: Self::SCHEMA,
            installation_id: uuid::Uuid::new_v4().to_string(),
            created_at: self.clock.now(),
        };
        let body = serde_json::to_vec(&record).map_err(|error| InstallationError::Corrupt {
            name: name.to_string(),
            reason: error.to_string(),
        })?;
        match self.management.create_data_object(&name, &body).await {
            Ok(()) => {}
            Err(HsmError::AlreadyExists(_)) => {}
            Err(error) => return Err(error.into()),
        }
        // Read back: the record is acknowledged only once the HSM returns it, and a concurrent
        // starter that won the race is honoured.
        self.load(&name).await?.ok_or_else(|| {
            InstallationError::Hsm(HsmError::Internal(format!(
                "{name} was written but cannot be read back"
            )))
        })
    }

    async fn load(
        &self,
        name: &DataObjectName,
    ) -> Result<Option<InstallationRecord>, InstallationError> {
        let Some(bytes) = self.management.read_data_object(name).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|error| InstallationError::Corrupt {
                name: name.to_string(),
                reason: error.to_string(),
            })
    }
}
