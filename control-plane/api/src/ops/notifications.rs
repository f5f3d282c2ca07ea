//! Expiry notifications of a tenant (`/tenants/{tenant}/notifications`): the webhook settings
//! (anyone on the tenant reads them; administrators change them), a new signing secret (shown in
//! that answer only) and a signed test delivery. The signing secret is never part of a `GET`.

use km_core::notifications::DEFAULT_LEAD_DAYS;
use km_core::{
    App, DeliveryReport, NotificationSettings, NotificationUpdate, RotatedSecret,
    SavedNotifications,
};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::{ApiTags, fail, tenant};
use crate::context::{authenticate, request_id};
use crate::models::Text;
use crate::problem::ApiError;

/// The notification operations.
pub(crate) struct NotificationsApi;

/// A tenant's webhook settings (never the signing secret).
#[derive(Debug, Clone, Object)]
pub struct NotificationSettingsBody {
    /// Whether notices are sent.
    pub enabled: bool,
    /// The webhook (https://).
    pub url: Option<String>,
    /// Days before an expiry or destruction at which a notice is sent, largest first.
    pub lead_days: Vec<u16>,
    /// Whether a signing secret exists (it is shown only when made).
    pub signing_secret_set: bool,
    /// When the signing secret was made (Unix seconds).
    pub secret_created_at: Option<u64>,
}

impl From<NotificationSettings> for NotificationSettingsBody {
    fn from(settings: NotificationSettings) -> Self {
        Self {
            enabled: settings.enabled,
            url: settings.url,
            lead_days: settings.lead_days,
            signing_secret_set: settings.secret_created_at.is_some(),
            secret_created_at: settings.secret_created_at,
        }
    }
}

/// What to save.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct NotificationSettingsRequest {
    /// Send notices (needs `url`). The first save that enables them makes the signing secret
    /// and returns it once.
    pub enabled: bool,
    /// The webhook: `https://` (plain `http://` only to a loopback host where the deployment
    /// allows it), no credentials, no fragment, at most 2048 characters.
    pub url: Option<Text>,
    /// Days before the event (1-365, at most 5, no repeats). Default `[30, 7, 1]`.
    pub lead_days: Option<Vec<u16>>,
}

/// The saved settings, and the signing secret when this save made it.
#[derive(Clone, Object)]
pub struct NotificationSettingsSaved {
    /// The settings now in force.
    pub settings: NotificationSettingsBody,
    /// The signing secret, only when this save made it: keep it now, it is never shown again.
    pub signing_secret: Option<String>,
}

impl std::fmt::Debug for NotificationSettingsSaved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationSettingsSaved")
            .field("settings", &self.settings)
            .field(
                "signing_secret",
                &self.signing_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl From<SavedNotifications> for NotificationSettingsSaved {
    fn from(saved: SavedNotifications) -> Self {
        Self {
            signing_secret: saved
                .new_secret
                .map(|secret| secret.expose_secret().to_owned()),
            settings: saved.settings.into(),
        }
    }
}

/// A new signing secret: shown in this answer only.
#[derive(Clone, Object)]
pub struct SigningSecretBody {
    /// HMAC-SHA256 key of the `Keymanager-Signature` header (`t=<unix>,v1=<hex HMAC of
    /// "<t>.<body>">`): keep it now, it is never shown again. The previous secret stopped
    /// working.
    pub signing_secret: String,
    /// When it was made (Unix seconds).
    pub created_at: u64,
}

impl std::fmt::Debug for SigningSecretBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningSecretBody")
            .field("signing_secret", &"<redacted>")
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl From<RotatedSecret> for SigningSecretBody {
    fn from(rotated: RotatedSecret) -> Self {
        Self {
            signing_secret: rotated.secret.expose_secret().to_owned(),
            created_at: rotated.created_at,
        }
    }
}

/// How a test delivery went.
#[derive(Debug, Clone, Object)]
pub struct TestDeliveryBody {
    /// The receiver answered 2xx.
    pub delivered: bool,
    /// The delivery's id (`id` in the body, `Keymanager-Delivery` header).
    pub delivery_id: String,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Why it was not delivered (no connection, TLS, timeout, a non-2xx status).
    pub error: Option<String>,
}

impl From<DeliveryReport> for TestDeliveryBody {
    fn from(report: DeliveryReport) -> Self {
        Self {
            delivered: report.delivered(),
            delivery_id: report.delivery_id,
            status: report.status,
            error: report.error,
        }
    }
}

/// The settings.
#[derive(Debug, ApiResponse)]
enum NotificationSettingsResponse {
    /// The settings.
    #[oai(status = 200)]
    Ok(Json<NotificationSettingsBody>),
}

/// Saved.
#[derive(Debug, ApiResponse)]
enum NotificationSettingsSavedResponse {
    /// The saved settings (with the signing secret when this save made it).
    #[oai(status = 200)]
    Ok(Json<NotificationSettingsSaved>),
}

/// A new signing secret.
#[derive(Debug, ApiResponse)]
enum SigningSecretResponse {
    /// The secret, shown once.
    #[oai(status = 200)]
    Ok(Json<SigningSecretBody>),
}

/// A test delivery's outcome.
#[derive(Debug, ApiResponse)]
enum TestDeliveryResponse {
    /// What the receiver answered (or why it could not be reached).
    #[oai(status = 200)]
    Ok(Json<TestDeliveryBody>),
}

#[OpenApi(tag = "ApiTags::Notifications")]
impl NotificationsApi {
    /// The tenant's expiry-notification settings (anyone on the tenant; never the secret).
    #[oai(
        path = "/tenants/:tenant/notifications",
        method = "get",
        operation_id = "get_notification_settings"
    )]
    async fn get_settings(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
    ) -> Result<NotificationSettingsResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = self::tenant(&tenant.0, &rid)?;
        let settings = app
            .get_notification_settings(&caller, &rid, &tenant)
            .await
            .map_err(fail(&rid))?;
        Ok(NotificationSettingsResponse::Ok(Json(settings.into())))
    }

    /// Saves the tenant's expiry-notification settings (tenant administrators). A URL that is not
    /// `https://` answers 400 `invalid_input` with reason `invalid_webhook_url`.
    #[oai(
        path = "/tenants/:tenant/notifications",
        method = "put",
        operation_id = "update_notification_settings"
    )]
    async fn update_settings(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
        body: Json<NotificationSettingsRequest>,
    ) -> Result<NotificationSettingsSavedResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = self::tenant(&tenant.0, &rid)?;
        let body = body.0;
        let update = NotificationUpdate {
            enabled: body.enabled,
            url: body.url.map(|url| url.0),
            lead_days: body.lead_days.unwrap_or_else(|| DEFAULT_LEAD_DAYS.to_vec()),
        };
        let saved = app
            .update_notification_settings(&caller, &rid, &tenant, update)
            .await
            .map_err(fail(&rid))?;
        Ok(NotificationSettingsSavedResponse::Ok(Json(saved.into())))
    }

    /// Makes a new signing secret and returns it, once (tenant administrators). The previous
    /// one stops working at once.
    #[oai(
        path = "/tenants/:tenant/notifications/secret",
        method = "post",
        operation_id = "rotate_notification_secret"
    )]
    async fn rotate_secret(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
    ) -> Result<SigningSecretResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = self::tenant(&tenant.0, &rid)?;
        let rotated = app
            .rotate_notification_secret(&caller, &rid, &tenant)
            .await
            .map_err(fail(&rid))?;
        Ok(SigningSecretResponse::Ok(Json(rotated.into())))
    }

    /// Sends a signed `test` delivery to the saved webhook (tenant administrators) and reports
    /// the receiver's status or why it could not be reached. 409 `signing_secret_missing` before
    /// a secret exists; 400 `webhook_url_required` without a URL.
    #[oai(
        path = "/tenants/:tenant/notifications/test",
        method = "post",
        operation_id = "send_test_notification"
    )]
    async fn send_test(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
    ) -> Result<TestDeliveryResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = self::tenant(&tenant.0, &rid)?;
        let report = app
            .send_test_notification(&caller, &rid, &tenant)
            .await
            .map_err(fail(&rid))?;
        Ok(TestDeliveryResponse::Ok(Json(report.into())))
    }
}
