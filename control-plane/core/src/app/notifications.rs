//! Expiry-notification use cases (`kms.notifications.<tenant>`): read the settings
//! (`read_settings`), save them, make a new signing secret and send a test delivery
//! (`update_settings`, audited). The signing secret leaves only in the answer of the use case that
//! made it; audit events name the operation, the enabled flag, the lead times and the receiver's
//! host — never the secret or the URL's path and query (which may carry a receiver's token).

use std::sync::Arc;

use km_domain::{Action, TenantId};

use super::{App, AppError, Gate, RequestId};
use crate::identity::Caller;
use crate::notifications::{
    DeliveryReport, NotificationConfig, NotificationError, NotificationService,
    NotificationSettings, NotificationUpdate, RotatedSecret, SavedNotifications, WebhookSender,
};

impl From<NotificationError> for AppError {
    fn from(error: NotificationError) -> Self {
        match error {
            NotificationError::InvalidUrl(message) => Self::invalid("invalid_webhook_url", message),
            NotificationError::InvalidLeadDays(message) => {
                Self::invalid("invalid_lead_days", message)
            }
            error @ NotificationError::UrlMissing => {
                Self::invalid("webhook_url_required", error.to_string())
            }
            error @ NotificationError::SecretMissing => {
                Self::conflict("signing_secret_missing", error.to_string())
            }
            NotificationError::Crypto(error) => {
                Self::internal("notification crypto failure", &error)
            }
            NotificationError::Audit(error) => error.into(),
            NotificationError::Store(error) => error.into(),
        }
    }
}

/// The host of a webhook URL, for audit details (never its path or query).
fn host_of(url: Option<&str>) -> String {
    url.and_then(|url| url::Url::parse(url).ok())
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_default()
}

impl App {
    /// The same app delivering notices through `sender` under the deployment's `config` (the
    /// binary wires the reqwest adapter; [`App::new`] has none, so deliveries report
    /// "unavailable").
    pub fn with_webhooks(self, sender: Arc<dyn WebhookSender>, config: NotificationConfig) -> Self {
        let mut inner = super::AppInner::clone(&self.inner);
        inner.notifications = inner.notifications.with_sender(sender, config);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The notification service (for the scheduler's expiry notices; use cases go through
    /// `App`).
    pub fn notifications(&self) -> &NotificationService {
        &self.inner.notifications
    }

    /// The tenant's notification settings, without the signing secret (`read_settings`).
    pub async fn get_notification_settings(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
    ) -> Result<NotificationSettings, AppError> {
        self.permit(caller, rid, Gate::Full, Some(tenant), Action::ReadSettings)
            .await?;
        Ok(self.inner.notifications.settings(tenant).await?)
    }

    /// Validates and saves the tenant's notification settings (`update_settings`, audited). The
    /// first save that enables them makes the signing secret and returns it, once.
    pub async fn update_notification_settings(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
        update: NotificationUpdate,
    ) -> Result<SavedNotifications, AppError> {
        let grant = self
            .permit(
                caller,
                rid,
                Gate::Full,
                Some(tenant),
                Action::UpdateSettings,
            )
            .await?;
        // Refuse bad values before anything is recorded as admitted.
        let update = self.inner.notifications.check(&update)?;
        let lead_days: Vec<String> = update.lead_days.iter().map(u16::to_string).collect();
        let draft = Self::draft(
            &grant,
            rid,
            "update_notification_settings",
            Some(tenant.as_str()),
        )
        .with_detail("enabled", update.enabled.to_string())
        .with_detail("lead_days", lead_days.join(","))
        .with_detail("webhook_host", host_of(update.url.as_deref()));
        let actor = caller.principal().subject.to_string();
        self.audited(draft, async {
            Ok(self
                .inner
                .notifications
                .save(tenant, update, &actor)
                .await?)
        })
        .await
    }

    /// Replaces the tenant's signing secret and returns the new one, once (`update_settings`,
    /// audited).
    pub async fn rotate_notification_secret(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
    ) -> Result<RotatedSecret, AppError> {
        let grant = self
            .permit(
                caller,
                rid,
                Gate::Full,
                Some(tenant),
                Action::UpdateSettings,
            )
            .await?;
        let draft = Self::draft(
            &grant,
            rid,
            "rotate_notification_secret",
            Some(tenant.as_str()),
        );
        let actor = caller.principal().subject.to_string();
        self.audited(draft, async {
            Ok(self
                .inner
                .notifications
                .rotate_secret(tenant, &actor)
                .await?)
        })
        .await
    }

    /// Sends a signed `test` delivery to the tenant's saved webhook (`update_settings`, audited:
    /// it reaches out of the installation). The receiver's status or error is the answer; the
    /// use case fails only when there is no URL or secret yet.
    pub async fn send_test_notification(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
    ) -> Result<DeliveryReport, AppError> {
        let grant = self
            .permit(
                caller,
                rid,
                Gate::Full,
                Some(tenant),
                Action::UpdateSettings,
            )
            .await?;
        let settings = self.inner.notifications.settings(tenant).await?;
        let draft = Self::draft(&grant, rid, "send_test_notification", Some(tenant.as_str()))
            .with_detail("webhook_host", host_of(settings.url.as_deref()));
        // Audited by hand: an undelivered test is a report to the caller, but a failure in the
        // log.
        let action = self.inner.audit.begin(draft).await?;
        let (result, recorded) = match self.inner.notifications.send_test(tenant).await {
            Ok(report) if report.delivered() => (Ok(report), action.succeeded().await),
            Ok(report) => {
                tracing::info!(request_id = %rid, %tenant, status = ?report.status,
                    error = report.error.as_deref().unwrap_or(""), "test notification not delivered");
                let recorded = action.failed(&report.failure_code()).await;
                (Ok(report), recorded)
            }
            Err(error) => {
                let error = AppError::from(error);
                let recorded = action.failed(error.reason()).await;
                (Err(error), recorded)
            }
        };
        if let Err(error) = recorded {
            tracing::error!(request_id = %rid, %error,
                "the result of a test notification is not recorded yet (kept in the outbox)");
        }
        result
    }
}
