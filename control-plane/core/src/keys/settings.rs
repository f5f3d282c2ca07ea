//! Per-tenant key settings (`kms.tenant-settings.<tenant>`, plain): for now the destruction waiting
//! period (DESIGN §4.2: default 7 days, at least 1 day). A tenant that never saved them gets the
//! defaults.

use km_domain::{TenantId, WaitingPeriod};
use serde::{Deserialize, Serialize};

use super::{KeyError, KeyService};
use crate::Sealing;

/// State-store kind of the record.
pub const TENANT_SETTINGS_KIND: &str = "tenant-settings";

/// A tenant's key settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantKeySettings {
    /// How long a scheduled destruction waits at least (cancellable meanwhile).
    #[serde(default, rename = "destruction_waiting_period_secs")]
    pub waiting_period: WaitingPeriod,
}

impl KeyService {
    /// The tenant's key settings (the defaults until saved).
    pub async fn settings(&self, tenant: &TenantId) -> Result<TenantKeySettings, KeyError> {
        Ok(self
            .inner
            .store
            .get::<TenantKeySettings>(TENANT_SETTINGS_KIND, tenant.as_str())
            .await?
            .map(|record| record.value)
            .unwrap_or_default())
    }

    /// Saves the tenant's key settings. Schedules made earlier keep their times.
    pub async fn update_settings(
        &self,
        tenant: &TenantId,
        settings: TenantKeySettings,
        actor: &str,
    ) -> Result<TenantKeySettings, KeyError> {
        let saved = self
            .inner
            .store
            .modify::<_, KeyError, _>(
                TENANT_SETTINGS_KIND,
                tenant.as_str(),
                Sealing::Plain,
                actor,
                |_| Ok(settings),
            )
            .await?;
        Ok(saved.value)
    }
}
