//! Expiry notifications of the current partition (`/settings/notifications`): the signed webhook
//! called before a key's expiry or scheduled destruction, its lead times, a new signing secret
//! (shown once, on the page that made it) and a test delivery with the receiver's answer.
//! Everyone on the partition sees the settings (never the secret); the forms are drawn for
//! administrators, and every post goes through an `App` use case, which authorizes (a forged post
//! by a reader is refused there, 403) and audits.

use super::keys::current_tenant;
use std::sync::Arc;

use askama::Template;
use km_core::notifications::{DEFAULT_LEAD_DAYS, SECRET_PREFIX};
use km_core::{AppError, DeliveryReport, NotificationSettings, NotificationUpdate, SecretText};
use km_domain::Action;
use poem::http::StatusCode;
use poem::web::{Data, Form};
use poem::{Request, Response, handler};
use serde::Deserialize;

use crate::fmt;
use crate::http;
use crate::pages::{errors, form_viewer};
use crate::viewer::{self, Console, Layout, Need, PageMeta, Viewer};

/// Where the page lives.
const PATH: &str = "/settings/notifications";

/// The outcome of a test delivery, as drawn.
pub(crate) struct TestView {
    delivered: bool,
    delivery_id: String,
    status: String,
    error: String,
}

impl From<DeliveryReport> for TestView {
    fn from(report: DeliveryReport) -> Self {
        Self {
            delivered: report.delivered(),
            status: report
                .status
                .map_or_else(|| "no answer".to_owned(), |status| status.to_string()),
            error: report.error.clone().unwrap_or_default(),
            delivery_id: report.delivery_id,
        }
    }
}

#[derive(Template)]
#[template(path = "pages/notifications.html")]
struct NotificationsPage {
    layout: Layout,
    can_edit: bool,
    enabled: bool,
    url: String,
    lead_days: String,
    secret_created: Option<String>,
    /// A secret made by this request: shown now, never again.
    new_secret: Option<SecretText>,
    test: Option<TestView>,
    error: Option<String>,
    secret_prefix: &'static str,
}

/// What a page shows besides the saved settings.
#[derive(Default)]
struct Extra {
    /// The form as typed, when it was refused.
    typed: Option<NotificationForm>,
    new_secret: Option<SecretText>,
    test: Option<TestView>,
    error: Option<String>,
    notice: Option<&'static str>,
}

fn lead_days_text(days: &[u16]) -> String {
    days.iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

async fn page(console: &Console, viewer: &Viewer, req: &Request, extra: Extra) -> Response {
    let tenant = match current_tenant(viewer, req) {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let settings: NotificationSettings = match console
        .app
        .get_notification_settings(&viewer.caller, &http::request_id(req), &tenant)
        .await
    {
        Ok(settings) => settings,
        Err(error) => return errors::app_error(viewer, req, &error),
    };
    let mut layout = viewer.layout(
        PageMeta::new("notifications", "Partition", "Expiry notifications").subtitle(
            "A signed webhook called before a key's crypto-period ends or its destruction is due.",
        ),
        req,
    );
    if let Some(notice) = extra.notice {
        layout.notice("success", notice);
    }
    let status = if extra.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let (enabled, url, lead_days) = match extra.typed {
        Some(form) => (form.enabled.is_some(), form.url, form.lead_days),
        None => (
            settings.enabled,
            settings.url.clone().unwrap_or_default(),
            lead_days_text(&settings.lead_days),
        ),
    };
    http::html(
        status,
        &NotificationsPage {
            layout,
            can_edit: viewer.may(Action::UpdateSettings, Some(&tenant)),
            enabled,
            url,
            lead_days,
            secret_created: settings.secret_created_at.map(fmt::datetime),
            new_secret: extra.new_secret,
            test: extra.test,
            error: extra.error,
            secret_prefix: SECRET_PREFIX,
        },
    )
}

/// `GET /settings/notifications`.
#[handler]
pub(crate) async fn show(req: &Request, console: Data<&Arc<Console>>) -> Response {
    match viewer::viewer(&console, req, Need::Full).await {
        Ok(viewer) => {
            let notice = (viewer::query_param(req, "done").as_deref() == Some("saved"))
                .then_some("Notification settings saved.");
            let extra = Extra {
                notice,
                ..Extra::default()
            };
            page(&console, &viewer, req, extra).await
        }
        Err(response) => response,
    }
}

/// The settings form as posted.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct NotificationForm {
    #[serde(default)]
    csrf: String,
    /// Present (`on`) when the switch is on.
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    url: String,
    #[serde(default)]
    lead_days: String,
}

impl NotificationForm {
    fn parse(&self) -> Result<NotificationUpdate, String> {
        let mut lead_days = Vec::new();
        for part in self
            .lead_days
            .split([',', ' ', ';'])
            .filter(|p| !p.is_empty())
        {
            let days = part.parse::<u16>().map_err(|_| {
                format!("Lead times: `{part}` is not a whole number of days; write e.g. 30, 7, 1")
            })?;
            lead_days.push(days);
        }
        if lead_days.is_empty() {
            lead_days = DEFAULT_LEAD_DAYS.to_vec();
        }
        let url = self.url.trim();
        Ok(NotificationUpdate {
            enabled: self.enabled.is_some(),
            url: (!url.is_empty()).then(|| url.to_owned()),
            lead_days,
        })
    }
}

/// `POST /settings/notifications`: saves the settings.
#[handler]
pub(crate) async fn save(
    req: &Request,
    console: Data<&Arc<Console>>,
    Form(form): Form<NotificationForm>,
) -> Response {
    let viewer = match form_viewer(&console, req, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let tenant = match current_tenant(&viewer, req) {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let update = match form.parse() {
        Ok(update) => update,
        Err(message) => {
            let extra = Extra {
                typed: Some(form),
                error: Some(message),
                ..Extra::default()
            };
            return page(&console, &viewer, req, extra).await;
        }
    };
    match console
        .app
        .update_notification_settings(&viewer.caller, &http::request_id(req), &tenant, update)
        .await
    {
        // The first enabling made the secret: show it on this answer, never again.
        Ok(saved) if saved.new_secret.is_some() => {
            let extra = Extra {
                new_secret: saved.new_secret,
                notice: Some("Notification settings saved, and a signing secret was made."),
                ..Extra::default()
            };
            page(&console, &viewer, req, extra).await
        }
        Ok(_) => http::redirect(&format!("{PATH}?done=saved"), &[]),
        Err(error @ AppError::InvalidInput { .. }) => {
            let extra = Extra {
                typed: Some(form),
                error: Some(error.to_string()),
                ..Extra::default()
            };
            page(&console, &viewer, req, extra).await
        }
        Err(error) => errors::app_error(&viewer, req, &error),
    }
}

/// A form that carries only its CSRF token (new secret, test delivery).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /settings/notifications/secret`: a new signing secret, shown on the answer only.
#[handler]
pub(crate) async fn rotate_secret(
    req: &Request,
    console: Data<&Arc<Console>>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let viewer = match form_viewer(&console, req, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let tenant = match current_tenant(&viewer, req) {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    match console
        .app
        .rotate_notification_secret(&viewer.caller, &http::request_id(req), &tenant)
        .await
    {
        Ok(rotated) => {
            let extra = Extra {
                new_secret: Some(rotated.secret),
                notice: Some("A new signing secret is in force; the previous one no longer signs."),
                ..Extra::default()
            };
            page(&console, &viewer, req, extra).await
        }
        Err(error) => errors::app_error(&viewer, req, &error),
    }
}

/// `POST /settings/notifications/test`: a signed test delivery, its outcome on the answer.
#[handler]
pub(crate) async fn send_test(
    req: &Request,
    console: Data<&Arc<Console>>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let viewer = match form_viewer(&console, req, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let tenant = match current_tenant(&viewer, req) {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    match console
        .app
        .send_test_notification(&viewer.caller, &http::request_id(req), &tenant)
        .await
    {
        Ok(report) => {
            let extra = Extra {
                test: Some(report.into()),
                ..Extra::default()
            };
            page(&console, &viewer, req, extra).await
        }
        Err(error @ (AppError::InvalidInput { .. } | AppError::Conflict { .. })) => {
            let extra = Extra {
                error: Some(error.to_string()),
                ..Extra::default()
            };
            page(&console, &viewer, req, extra).await
        }
        Err(error) => errors::app_error(&viewer, req, &error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(enabled: bool, url: &str, lead_days: &str) -> NotificationForm {
        NotificationForm {
            csrf: String::new(),
            enabled: enabled.then(|| "on".to_owned()),
            url: url.to_owned(),
            lead_days: lead_days.to_owned(),
        }
    }

    #[test]
    fn the_form_reads_lead_times_as_a_list_and_defaults_them() {
        let update = form(true, " https://h.example/x ", "30, 7,1")
            .parse()
            .unwrap();
        assert!(update.enabled);
        assert_eq!(update.url.as_deref(), Some("https://h.example/x"));
        assert_eq!(update.lead_days, vec![30, 7, 1]);
        let update = form(false, "", "").parse().unwrap();
        assert_eq!(update.url, None);
        assert_eq!(update.lead_days, DEFAULT_LEAD_DAYS.to_vec());
        let error = form(true, "", "30, soon").parse().unwrap_err();
        assert!(error.contains("soon"), "{error}");
    }
}
