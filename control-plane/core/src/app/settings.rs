//! Runtime settings use cases (`kms.config.public`).

use km_domain::Action;

use super::{App, AppError, Gate, RequestId};
use crate::identity::Caller;
use crate::settings::Settings;

impl App {
    /// The runtime settings in force (`read_platform_settings`).
    pub async fn get_settings(
        &self,
        caller: &Caller,
        rid: &RequestId,
    ) -> Result<Settings, AppError> {
        self.permit(caller, rid, Gate::Full, None, Action::ReadPlatformSettings)
            .await?;
        Ok(self.inner.settings.get().await?)
    }

    /// Validates and saves the runtime settings (`update_platform_settings`); they apply to
    /// every session on every replica within the store's cache TTL.
    pub async fn update_settings(
        &self,
        caller: &Caller,
        rid: &RequestId,
        settings: Settings,
    ) -> Result<Settings, AppError> {
        let grant = self
            .permit(
                caller,
                rid,
                Gate::Full,
                None,
                Action::UpdatePlatformSettings,
            )
            .await?;
        // Refuse bad values before anything is recorded as admitted.
        settings
            .validate()
            .map_err(|invalid| AppError::invalid("invalid_setting", invalid.to_string()))?;
        let draft = Self::draft(&grant, rid, "update_settings", Some("kms.config.public"))
            .with_detail("second_factor", settings.second_factor.as_str())
            .with_detail("reverify_hours", settings.reverify_hours.to_string())
            .with_detail(
                "session_idle_minutes",
                settings.session_idle_minutes.to_string(),
            )
            .with_detail(
                "session_absolute_hours",
                settings.session_absolute_hours.to_string(),
            )
            .with_detail("lockout_threshold", settings.lockout_threshold.to_string())
            .with_detail("lockout_minutes", settings.lockout_minutes.to_string());
        self.audited(draft, async {
            Ok(self.inner.settings.update(&grant, settings).await?)
        })
        .await
    }
}
