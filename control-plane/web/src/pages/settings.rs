//! Settings: how the current partition appears, and the deployment-wide sign-in and session
//! settings (read for platform readers, editable for platform admins).

use std::sync::Arc;

use askama::Template;
use km_core::AppError;
use km_core::settings::{SecondFactorSetting, Settings};
use km_domain::Action;
use poem::http::StatusCode;
use poem::web::{Data, Form};
use poem::{Request, Response, handler};
use serde::Deserialize;

use crate::http;
use crate::pages::{errors, form_ok};
use crate::viewer::{self, Console, Layout, Need, PageMeta, Viewer};

pub(crate) struct PlatformView {
    second_factor: &'static str,
    reverify_hours: u32,
    session_idle_minutes: u32,
    session_absolute_hours: u32,
    lockout_threshold: u32,
    lockout_minutes: u32,
}

impl From<&Settings> for PlatformView {
    fn from(settings: &Settings) -> Self {
        Self {
            second_factor: settings.second_factor.as_str(),
            reverify_hours: settings.reverify_hours,
            session_idle_minutes: settings.session_idle_minutes,
            session_absolute_hours: settings.session_absolute_hours,
            lockout_threshold: settings.lockout_threshold,
            lockout_minutes: settings.lockout_minutes,
        }
    }
}

#[derive(Template)]
#[template(path = "pages/settings.html")]
struct SettingsPage {
    layout: Layout,
    can_read_partition: bool,
    can_update_platform: bool,
    platform: Option<PlatformView>,
    error: Option<String>,
}

async fn settings_page(
    console: &Console,
    viewer: &Viewer,
    req: &Request,
    shown: Option<Settings>,
    error: Option<String>,
) -> Response {
    let can_read_partition = viewer.may_here(Action::ReadSettings);
    let can_read_platform = viewer.may(Action::ReadPlatformSettings, None);
    if !can_read_partition && !can_read_platform {
        // Let the app refuse (and audit the refusal) rather than deciding here alone.
        let refused = console
            .app
            .get_settings(&viewer.caller, &http::request_id(req))
            .await
            .err()
            .unwrap_or(AppError::Forbidden {
                reason: "role_too_low",
                message: String::new(),
            });
        return errors::app_error(viewer, req, &refused);
    }
    let platform = if can_read_platform {
        match shown {
            Some(settings) => Some(PlatformView::from(&settings)),
            None => match console
                .app
                .get_settings(&viewer.caller, &http::request_id(req))
                .await
            {
                Ok(settings) => Some(PlatformView::from(&settings)),
                Err(error) => return errors::app_error(viewer, req, &error),
            },
        }
    } else {
        None
    };
    let layout = viewer.layout(
        PageMeta::new("settings", "Settings", "Settings")
            .subtitle("Partition appearance and deployment-wide sign-in rules."),
        req,
    );
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    http::html(
        status,
        &SettingsPage {
            layout,
            can_read_partition,
            can_update_platform: viewer.may(Action::UpdatePlatformSettings, None),
            platform,
            error,
        },
    )
}

#[handler]
pub(crate) async fn show_settings(req: &Request, console: Data<&Arc<Console>>) -> Response {
    match viewer::viewer(&console, req, Need::Full).await {
        Ok(viewer) => settings_page(&console, &viewer, req, None, None).await,
        Err(response) => response,
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct SettingsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    second_factor: String,
    #[serde(default)]
    reverify_hours: String,
    #[serde(default)]
    session_idle_minutes: String,
    #[serde(default)]
    session_absolute_hours: String,
    #[serde(default)]
    lockout_threshold: String,
    #[serde(default)]
    lockout_minutes: String,
}

impl SettingsForm {
    fn parse(&self) -> Result<Settings, String> {
        let number = |field: &str, text: &str| {
            text.trim()
                .parse::<u32>()
                .map_err(|_| format!("{field}: enter a whole number"))
        };
        Ok(Settings {
            second_factor: match self.second_factor.as_str() {
                "mandatory" => SecondFactorSetting::Mandatory,
                "optional" => SecondFactorSetting::Optional,
                _ => return Err("Choose whether two-step verification is mandatory.".to_owned()),
            },
            reverify_hours: number("Second factor again after", &self.reverify_hours)?,
            session_idle_minutes: number("Idle timeout", &self.session_idle_minutes)?,
            session_absolute_hours: number("Session lifetime", &self.session_absolute_hours)?,
            lockout_threshold: number("Lock after failed sign-ins", &self.lockout_threshold)?,
            lockout_minutes: number("Lock duration", &self.lockout_minutes)?,
        })
    }
}

#[handler]
pub(crate) async fn update_settings(
    req: &Request,
    console: Data<&Arc<Console>>,
    Form(form): Form<SettingsForm>,
) -> Response {
    let viewer = match viewer::viewer(&console, req, Need::Full).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    if !form_ok(&console, &viewer, req, &form.csrf) {
        return errors::app_error(&viewer, req, &AppError::CsrfInvalid);
    }
    let settings = match form.parse() {
        Ok(settings) => settings,
        Err(message) => return settings_page(&console, &viewer, req, None, Some(message)).await,
    };
    match console
        .app
        .update_settings(&viewer.caller, &http::request_id(req), settings)
        .await
    {
        Ok(_) => http::redirect("/settings?done=settings_saved", &[]),
        Err(error @ AppError::InvalidInput { .. }) => {
            settings_page(
                &console,
                &viewer,
                req,
                Some(settings),
                Some(error.to_string()),
            )
            .await
        }
        Err(error) => errors::app_error(&viewer, req, &error),
    }
}
